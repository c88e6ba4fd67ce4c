//! The report's life: draft → preliminary → final → addendum, and which
//! step is allowed from where. A pure function of the stored status, so
//! that every refusal has one wording, checked inside the transaction that
//! makes the step.
//!
//! Statuses map onto FHIR R4 `DiagnosticReport.status` and HL7 v2 OBR-25
//! (result status): preliminary `preliminary`/P, final `final`/F, and an
//! addendum after the final `appended`/C (new content appended; the signed
//! text itself never changes, so `amended`/`corrected` do not arise).

use serde::Serialize;
use telerad_store::reports::{Status, VersionKind};

/// What a request asks to do with a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    SaveDraft,
    Issue(VersionKind),
}

/// A step the report's status does not allow: a 409 with this reason, in
/// English and in French.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Illegal(pub &'static str, pub &'static str);

impl Illegal {
    pub fn said(&self) -> telerad_lang::Said {
        telerad_lang::Said::new(self.0, self.1)
    }
}

/// Whether `step` may be taken from `status` (`None`: no report yet), and
/// whether there is a working copy to issue.
pub fn check(status: Option<Status>, has_draft: bool, step: Step) -> Result<(), Illegal> {
    use Status::*;
    use VersionKind::{
        Addendum as AddendumKind, Final as FinalKind, Preliminary as PreliminaryKind,
    };
    match (step, status) {
        (Step::SaveDraft, None | Some(Draft | Preliminary)) => Ok(()),
        (Step::SaveDraft, Some(Final | Addendum)) => Err(Illegal(
            "the report is signed and cannot change: write an addendum",
            "le compte rendu est signé et ne peut plus changer : rédigez un addendum",
        )),
        (Step::Issue(PreliminaryKind), Some(Draft | Preliminary)) if has_draft => Ok(()),
        (Step::Issue(PreliminaryKind), None | Some(Draft | Preliminary)) => Err(Illegal(
            "nothing to issue: save a draft of the report first",
            "rien à émettre : enregistrez d'abord un brouillon du compte rendu",
        )),
        (Step::Issue(PreliminaryKind | FinalKind), Some(Final | Addendum)) => Err(Illegal(
            "the report is already signed: write an addendum",
            "le compte rendu est déjà signé : rédigez un addendum",
        )),
        // The final signs the working copy, or else the preliminary as it was issued.
        (Step::Issue(FinalKind), Some(Preliminary)) => Ok(()),
        (Step::Issue(FinalKind), Some(Draft)) if has_draft => Ok(()),
        (Step::Issue(FinalKind), None | Some(Draft)) => Err(Illegal(
            "nothing to sign: save a draft of the report first",
            "rien à signer : enregistrez d'abord un brouillon du compte rendu",
        )),
        (Step::Issue(AddendumKind), Some(Final | Addendum)) => Ok(()),
        (Step::Issue(AddendumKind), None | Some(Draft | Preliminary)) => Err(Illegal(
            "an addendum follows a signed final report: sign the report first",
            "un addendum suit un compte rendu définitif signé : signez d'abord le compte rendu",
        )),
    }
}

/// A status as other systems name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Interop {
    /// FHIR R4 `DiagnosticReport.status`.
    pub fhir: &'static str,
    /// HL7 v2 OBR-25 result status; none for a draft, which no other
    /// system is told of.
    pub hl7v2: Option<&'static str>,
}

pub fn interop(status: Status) -> Interop {
    match status {
        Status::Draft => Interop {
            fhir: "registered",
            hl7v2: None,
        },
        Status::Preliminary => Interop {
            fhir: "preliminary",
            hl7v2: Some("P"),
        },
        Status::Final => Interop {
            fhir: "final",
            hl7v2: Some("F"),
        },
        Status::Addendum => Interop {
            fhir: "appended",
            hl7v2: Some("C"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;
    use VersionKind as K;

    /// Every (status, draft, step) with the expected answer: the whole
    /// table, so that a change to one rule shows up here.
    #[test]
    fn the_transition_table() {
        let statuses = [
            None,
            Some(Draft),
            Some(Preliminary),
            Some(Final),
            Some(Addendum),
        ];
        let steps = [
            Step::SaveDraft,
            Step::Issue(K::Preliminary),
            Step::Issue(K::Final),
            Step::Issue(K::Addendum),
        ];
        for status in statuses {
            for has_draft in [false, true] {
                for step in steps {
                    let allowed = match (step, status) {
                        (Step::SaveDraft, s) => !s.is_some_and(Status::is_signed),
                        (Step::Issue(K::Preliminary), Some(Draft | Preliminary)) => has_draft,
                        (Step::Issue(K::Final), Some(Draft)) => has_draft,
                        (Step::Issue(K::Final), Some(Preliminary)) => true,
                        (Step::Issue(K::Addendum), Some(s)) => s.is_signed(),
                        _ => false,
                    };
                    assert_eq!(
                        check(status, has_draft, step).is_ok(),
                        allowed,
                        "{status:?} draft={has_draft} {step:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn statuses_map_onto_fhir_and_hl7() {
        let mapped: Vec<_> = [Draft, Preliminary, Final, Addendum]
            .into_iter()
            .map(|s| (interop(s).fhir, interop(s).hl7v2))
            .collect();
        assert_eq!(
            mapped,
            [
                ("registered", None),
                ("preliminary", Some("P")),
                ("final", Some("F")),
                ("appended", Some("C")),
            ]
        );
    }
}
