//! The `[studies]` section: how telerad decides that a study is complete.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// DICOM has no "end of study" message: a study is taken as complete when no
/// new instance of it has arrived for a quiet period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StudiesConfig {
    /// Quiet period for sites that do not set their own, in seconds.
    pub default_quiet_period_secs: u64,
}

impl StudiesConfig {
    pub fn default_quiet_period(&self) -> Duration {
        Duration::from_secs(self.default_quiet_period_secs)
    }
}

impl Default for StudiesConfig {
    fn default() -> StudiesConfig {
        StudiesConfig {
            default_quiet_period_secs: 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_quiet_period_is_twenty_seconds() {
        let studies = StudiesConfig::default();
        assert_eq!(studies.default_quiet_period_secs, 20);
        assert_eq!(studies.default_quiet_period(), Duration::from_secs(20));
    }
}
