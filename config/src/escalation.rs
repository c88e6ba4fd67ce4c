//! `[escalation]`: who is called when nobody on duty takes a study.

use serde::{Deserialize, Serialize};

use crate::Config;
use crate::problem::Problem;
use crate::radiologist::unknown_radiologist;
use crate::unread::Unread;

/// The last resort after the on-duty candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationConfig {
    /// Radiologist ids, tried in this order, whether on duty or not.
    pub chain: Vec<String>,
}

/// The problems of `[escalation]`.
pub(crate) fn problems(config: &Config, unread: &Unread) -> Vec<Problem> {
    let mut problems = Vec::new();
    let chain = &config.escalation.chain;
    for (i, id) in chain.iter().enumerate() {
        let path = format!("escalation.chain[{i}]");
        if let Some(message) = unknown_radiologist(config, unread, id) {
            problems.push(Problem::new(path, message));
        } else if let Some(first) = chain[..i].iter().position(|other| other == id) {
            problems.push(Problem::new(
                path,
                format!(
                    "{id:?} is already escalation.chain[{first}]: calling them twice \
                     only delays the next one"
                ),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use crate::radiologist::check::{assert_one, paths, problems};

    #[test]
    fn chain_names_known_radiologists_once() {
        assert_eq!(
            problems("[escalation]\nchain = [\"dr-b\", \"dr-a\"]\n"),
            vec![]
        );
        assert_one(
            "[escalation]\nchain = [\"dr-b\", \"dr-chef\"]\n",
            "escalation.chain[1]",
            "no radiologist has id \"dr-chef\"",
        );
        assert_one(
            "[escalation]\nchain = [\"dr-b\", \"dr-a\", \"dr-b\"]\n",
            "escalation.chain[2]",
            "\"dr-b\" is already escalation.chain[0]",
        );
        assert_eq!(
            paths(&problems("[escalation]\nchain = []\n")),
            Vec::<&str>::new()
        );
    }
}
