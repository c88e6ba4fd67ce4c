//! Whose patient data a read may return. Every repository read of patient
//! data takes a scope, so that a caller cannot forget to narrow it: the
//! access policy (`telerad-access`) derives it from the account, telerad's
//! own work (routing, forwarding) uses [`Scope::All`].

/// The studies a read may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every site: administrators, and telerad's own processing.
    All,
    /// Only these sites (possibly none).
    Sites(Vec<String>),
    /// A radiologist: the studies assigned to them, the pool of their
    /// licensed sites (unassigned, or escalated and not yet acknowledged),
    /// and the studies a colleague asked their opinion on, until they
    /// answer.
    Reader {
        radiologist: String,
        sites: Vec<String>,
    },
}

impl Scope {
    pub fn site(name: &str) -> Scope {
        Scope::Sites(vec![name.to_string()])
    }

    /// Whether every study of `site` is in the scope (what filing for the
    /// site asks): never for a radiologist, who sees part of a site.
    pub fn covers_site(&self, site: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Sites(sites) => sites.iter().any(|s| s == site),
            Scope::Reader { .. } => false,
        }
    }

    /// A SQL condition on the studies table or alias `study`, whose
    /// parameters are numbered from `first`; bind [`Scope::values`] in
    /// order after the others.
    pub(crate) fn condition(&self, study: &str, first: usize) -> String {
        let placeholders = |from: usize, sites: &[String]| -> String {
            (from..from + sites.len())
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Scope::All => "1 = 1".to_string(),
            Scope::Sites(sites) if sites.is_empty() => "1 = 0".to_string(),
            Scope::Sites(sites) => {
                format!("{study}.site IN ({})", placeholders(first, sites))
            }
            Scope::Reader { sites, .. } => {
                let pool = if sites.is_empty() {
                    "1 = 0".to_string()
                } else {
                    format!(
                        "{study}.site IN ({}) AND (a.state = 'unassigned' OR \
                         (a.state = 'assigned' AND a.escalation_level > 0))",
                        placeholders(first + 1, sites)
                    )
                };
                format!(
                    "(EXISTS (SELECT 1 FROM assignments a WHERE a.study_id = {study}.id \
                     AND (a.radiologist_id = ${first} OR ({pool}))) OR {consulted})",
                    consulted = consulted(study, first),
                )
            }
        }
    }

    /// [`Scope::condition`] for a query that has the study's assignment
    /// joined already as `assignment`: a radiologist's pool is read off that
    /// row rather than looked up again (which PostgreSQL would plan as a
    /// join over every study the radiologist ever read). Same parameters.
    pub(crate) fn condition_with_assignment(
        &self,
        study: &str,
        assignment: &str,
        first: usize,
    ) -> String {
        match self {
            Scope::Reader { sites, .. } => {
                let a = assignment;
                let pool = if sites.is_empty() {
                    "1 = 0".to_string()
                } else {
                    let placeholders = (first + 1..first + 1 + sites.len())
                        .map(|n| format!("${n}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!(
                        "{study}.site IN ({placeholders}) AND ({a}.state = 'unassigned' OR \
                         ({a}.state = 'assigned' AND {a}.escalation_level > 0))"
                    )
                };
                format!(
                    "({a}.radiologist_id = ${first} OR ({pool}) OR {consulted})",
                    consulted = consulted(study, first),
                )
            }
            _ => self.condition(study, first),
        }
    }

    pub(crate) fn values(&self) -> Vec<&str> {
        match self {
            Scope::All => Vec::new(),
            Scope::Sites(sites) => sites.iter().map(String::as_str).collect(),
            Scope::Reader { radiologist, sites } => std::iter::once(radiologist.as_str())
                .chain(sites.iter().map(String::as_str))
                .collect(),
        }
    }
}

/// A second opinion asked of the radiologist bound at `$first`, while it
/// is open: the study is theirs to read until they answer.
fn consulted(study: &str, first: usize) -> String {
    format!(
        "EXISTS (SELECT 1 FROM consults c WHERE c.study_id = {study}.id \
         AND c.consultant = ${first} AND c.state = 'open')"
    )
}

#[cfg(test)]
mod tests {
    use super::Scope;

    #[test]
    fn conditions_number_their_parameters() {
        assert_eq!(Scope::All.condition("studies", 3), "1 = 1");
        assert_eq!(Scope::Sites(Vec::new()).condition("st", 3), "1 = 0");
        let two = Scope::Sites(vec!["a".into(), "b".into()]);
        assert_eq!(two.condition("st", 3), "st.site IN ($3, $4)");
        assert_eq!(two.values(), ["a", "b"]);
        let reader = Scope::Reader {
            radiologist: "dr".into(),
            sites: vec!["a".into()],
        };
        let condition = reader.condition("st", 2);
        assert!(condition.contains("a.radiologist_id = $2"), "{condition}");
        assert!(condition.contains("st.site IN ($3)"), "{condition}");
        assert_eq!(reader.values(), ["dr", "a"]);
    }
}
