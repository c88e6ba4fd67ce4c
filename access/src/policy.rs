//! The access policy: one function, [`decide`], says whether an account
//! may perform an action, and on which studies.
//!
//! - Administrators do everything, on every site, except what is a
//!   person's own word: acknowledging a study, writing a report, receiving
//!   a critical result.
//! - Radiologists read the studies assigned to them and the pool of their
//!   licensed sites (unassigned, or escalated and not yet acknowledged),
//!   and acknowledge what is theirs.
//! - Clinicians, technicians and integrations read their sites' studies
//!   and file their request forms.
//! - Whoever may read a study writes in its message thread.
//! - A site's clinicians acknowledge its critical results.
//!
//! A study outside the scope is answered as if it did not exist (404), so
//! that another site's patients cannot even be probed; an action the role
//! never has is a 403.

use telerad_lang::Said;
use telerad_store::Scope;
use telerad_store::accounts::{Role, User};

/// What a request does. Each handler names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// List studies, or read one with its series and assignment.
    ReadStudies,
    /// Take the study one was assigned.
    AcknowledgeStudy,
    /// Give a study to a radiologist.
    AssignStudy,
    /// File a request form for a site's patient.
    FileForm,
    /// Send a site's images over HTTP (STOW-RS).
    StoreImages,
    /// Write, issue and sign the report of a study one has claimed.
    WriteReport,
    /// Read and write a study's message thread.
    Message,
    /// Acknowledge a critical result for the site.
    AcknowledgeCritical,
    /// The operators' views and repairs: forwards, conflicts, failed events.
    Operate,
    /// Create, change and list accounts.
    ManageUsers,
    /// Read the audit trail.
    ReadAudit,
}

/// Who is asking: an account, and for a radiologist the sites their
/// licence covers (from the configuration).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub licensed_sites: Vec<String>,
}

impl Principal {
    /// The sites the account acts for, as audit records name them.
    pub fn sites(&self) -> &[String] {
        match self.user.role {
            Role::Radiologist => &self.licensed_sites,
            _ => &self.user.sites,
        }
    }
}

/// The action may not be performed by this role at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {role} account may not {}", .action.0)]
pub struct Refused {
    pub role: Role,
    /// The action in English and in French.
    pub action: (&'static str, &'static str),
}

impl Refused {
    pub fn said(&self) -> Said {
        Said::new(
            self.to_string(),
            format!(
                "un compte {} ne peut pas {}",
                role_fr(self.role),
                self.action.1
            ),
        )
    }
}

/// A role as the French pages name an account of it ("un compte …").
pub fn role_fr(role: Role) -> &'static str {
    match role {
        Role::Admin => "administrateur",
        Role::Radiologist => "radiologue",
        Role::Clinician => "clinicien",
        Role::Technician => "manipulateur",
        Role::Integration => "d'intégration",
    }
}

fn describe(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::ReadStudies => ("read studies", "lire les examens"),
        Action::AcknowledgeStudy => ("acknowledge studies", "prendre d'examens"),
        Action::AssignStudy => ("assign studies", "attribuer d'examens"),
        Action::FileForm => ("file request forms", "déposer de demandes d'examen"),
        Action::StoreImages => ("send images", "envoyer d'images"),
        Action::WriteReport => ("write reports", "rédiger de comptes rendus"),
        Action::Message => ("exchange messages", "échanger de messages"),
        Action::AcknowledgeCritical => (
            "acknowledge critical results",
            "accuser réception de résultats critiques",
        ),
        Action::Operate => (
            "use the operators' endpoints",
            "utiliser les fonctions d'exploitation",
        ),
        Action::ManageUsers => ("manage accounts", "gérer les comptes"),
        Action::ReadAudit => ("read the audit trail", "lire la piste d'audit"),
    }
}

/// Whether `principal` may perform `action`, and on which studies.
pub fn decide(principal: &Principal, action: Action) -> Result<Scope, Refused> {
    let user = &principal.user;
    let refused = || Refused {
        role: user.role,
        action: describe(action),
    };
    match (user.role, action) {
        // An acknowledgement and a report are the reader's own word, and the
        // receipt of a critical result the site physician's: given by no
        // one else.
        (
            Role::Admin,
            Action::AcknowledgeStudy | Action::WriteReport | Action::AcknowledgeCritical,
        ) => Err(refused()),
        (Role::Admin, _) => Ok(Scope::All),
        (
            Role::Radiologist,
            Action::ReadStudies | Action::AcknowledgeStudy | Action::WriteReport | Action::Message,
        ) => {
            let radiologist = user.radiologist_id.clone().ok_or_else(refused)?;
            Ok(Scope::Reader {
                radiologist,
                sites: principal.licensed_sites.clone(),
            })
        }
        (
            Role::Clinician | Role::Technician | Role::Integration,
            Action::ReadStudies | Action::FileForm | Action::Message,
        ) => Ok(Scope::Sites(user.sites.clone())),
        // Images come from the site's staff and systems, as its modalities
        // send them over DICOM.
        (Role::Technician | Role::Integration, Action::StoreImages) => {
            Ok(Scope::Sites(user.sites.clone()))
        }
        // The site's physicians receive critical results.
        (Role::Clinician, Action::AcknowledgeCritical) => Ok(Scope::Sites(user.sites.clone())),
        _ => Err(refused()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telerad_store::UserId;

    fn principal(role: Role) -> Principal {
        Principal {
            user: User {
                id: UserId(1),
                login: "someone".into(),
                name: "Someone".into(),
                role,
                radiologist_id: (role == Role::Radiologist).then(|| "dr-a".to_string()),
                sites: vec!["site-a".into()],
                disabled: false,
            },
            licensed_sites: vec!["site-a".into(), "site-b".into()],
        }
    }

    #[test]
    fn each_role_gets_exactly_its_actions() {
        use Action::*;
        let actions = [
            ReadStudies,
            AcknowledgeStudy,
            AssignStudy,
            FileForm,
            StoreImages,
            WriteReport,
            Message,
            AcknowledgeCritical,
            Operate,
            ManageUsers,
            ReadAudit,
        ];
        for role in Role::ALL {
            let allowed: Vec<Action> = actions
                .into_iter()
                .filter(|a| decide(&principal(role), *a).is_ok())
                .collect();
            let expected: &[Action] = match role {
                Role::Admin => &[
                    ReadStudies,
                    AssignStudy,
                    FileForm,
                    StoreImages,
                    Message,
                    Operate,
                    ManageUsers,
                    ReadAudit,
                ],
                Role::Radiologist => &[ReadStudies, AcknowledgeStudy, WriteReport, Message],
                Role::Clinician => &[ReadStudies, FileForm, Message, AcknowledgeCritical],
                _ => &[ReadStudies, FileForm, StoreImages, Message],
            };
            assert_eq!(allowed, expected, "{role}");
        }
    }

    #[test]
    fn scopes_follow_the_sites_of_the_account_or_the_licence() {
        assert_eq!(
            decide(&principal(Role::Clinician), Action::ReadStudies),
            Ok(Scope::site("site-a"))
        );
        assert_eq!(
            decide(&principal(Role::Radiologist), Action::ReadStudies),
            Ok(Scope::Reader {
                radiologist: "dr-a".into(),
                sites: vec!["site-a".into(), "site-b".into()],
            })
        );
        assert_eq!(
            decide(&principal(Role::Admin), Action::ReadStudies),
            Ok(Scope::All)
        );
    }
}
