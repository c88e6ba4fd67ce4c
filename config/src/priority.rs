//! How soon a study must be read: the urgency written on a request form,
//! the priority a routing rule gives a study, and the key of `[sla]`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Reading priority, most urgent first: `Stat < Urgent < Routine`, so that
/// sorting studies by priority puts the ones to read first at the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Read now: a stroke, a trauma patient on the table.
    Stat,
    /// Read within the hour.
    Urgent,
    /// Read within the night.
    Routine,
}

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 3] = [Priority::Stat, Priority::Urgent, Priority::Routine];

    /// The word used in the configuration and the database.
    pub fn as_str(&self) -> &'static str {
        match self {
            Priority::Stat => "stat",
            Priority::Urgent => "urgent",
            Priority::Routine => "routine",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of `stat`, `urgent`, `routine`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a priority: expected stat, urgent or routine")]
pub struct UnknownPriority(pub String);

impl FromStr for Priority {
    type Err = UnknownPriority;

    /// Exactly the words of the configuration, lowercase: the database and
    /// the API store them that way, so a different spelling is a defect to
    /// report, not to guess at.
    fn from_str(text: &str) -> Result<Priority, UnknownPriority> {
        Priority::ALL
            .into_iter()
            .find(|priority| priority.as_str() == text)
            .ok_or_else(|| UnknownPriority(text.to_owned()))
    }
}

/// For rows read with `#[sqlx(try_from = "String")]`: a stored word that is
/// not a priority is an error, never a default.
impl TryFrom<String> for Priority {
    type Error = UnknownPriority;

    fn try_from(text: String) -> Result<Priority, UnknownPriority> {
        text.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_urgent_sorts_first() {
        let mut priorities = vec![Priority::Routine, Priority::Stat, Priority::Urgent];
        priorities.sort();
        assert_eq!(priorities, Priority::ALL);
    }

    #[test]
    fn words_read_back() {
        for priority in Priority::ALL {
            assert_eq!(priority.as_str().parse(), Ok(priority));
            assert_eq!(priority.to_string(), priority.as_str());
        }
        assert_eq!(
            "STAT".parse::<Priority>(),
            Err(UnknownPriority("STAT".to_owned()))
        );
    }
}
