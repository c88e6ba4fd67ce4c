//! Whose patient data a read may return. Every repository read of patient
//! data takes a scope, so that a caller cannot forget to narrow it: the
//! HTTP layer derives it from the user's sites, telerad's own work (routing,
//! forwarding) and operators use [`Scope::All`].

/// The sites whose studies a read may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every site: operators, and telerad's own processing.
    All,
    /// Only these sites (possibly none).
    Sites(Vec<String>),
}

impl Scope {
    pub fn site(name: &str) -> Scope {
        Scope::Sites(vec![name.to_string()])
    }

    /// Whether a study of `site` is visible.
    pub fn allows(&self, site: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Sites(sites) => sites.iter().any(|s| s == site),
        }
    }

    /// A SQL condition on `column` whose parameters are numbered from
    /// `first`; bind [`Scope::values`] in order after the others.
    pub(crate) fn condition(&self, column: &str, first: usize) -> String {
        match self {
            Scope::All => "1 = 1".to_string(),
            Scope::Sites(sites) if sites.is_empty() => "1 = 0".to_string(),
            Scope::Sites(sites) => {
                let placeholders: Vec<String> = (first..first + sites.len())
                    .map(|n| format!("${n}"))
                    .collect();
                format!("{column} IN ({})", placeholders.join(", "))
            }
        }
    }

    pub(crate) fn values(&self) -> &[String] {
        match self {
            Scope::All => &[],
            Scope::Sites(sites) => sites,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Scope;

    #[test]
    fn conditions_number_their_parameters() {
        assert_eq!(Scope::All.condition("site", 3), "1 = 1");
        assert_eq!(Scope::Sites(Vec::new()).condition("site", 3), "1 = 0");
        let two = Scope::Sites(vec!["a".into(), "b".into()]);
        assert_eq!(two.condition("st.site", 3), "st.site IN ($3, $4)");
        assert_eq!(two.values(), ["a", "b"]);
        assert!(two.allows("b") && !two.allows("c"));
        assert!(Scope::All.allows("c"));
    }
}
