//! `[sla]`: how soon a study of each priority must be acknowledged by a
//! radiologist and given a preliminary report.

use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Config;
use crate::priority::Priority;
use crate::problem::Problem;

/// A day: an acknowledgement slower than that is no service level.
const ACKNOWLEDGE_SECS: RangeInclusive<u64> = 1..=86_400;
/// A week: routine studies of a long weekend.
const PRELIMINARY_SECS: RangeInclusive<u64> = 1..=604_800;

/// Service levels per priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlaConfig {
    pub stat: SlaTargets,
    pub urgent: SlaTargets,
    pub routine: SlaTargets,
}

impl Default for SlaConfig {
    /// Usual teleradiology contract values: a stroke CT acknowledged in
    /// 5 minutes and read in 20, a routine study read within the night.
    fn default() -> SlaConfig {
        SlaConfig {
            stat: SlaTargets {
                acknowledge_secs: 300,
                preliminary_secs: 1_200,
            },
            urgent: SlaTargets {
                acknowledge_secs: 900,
                preliminary_secs: 3_600,
            },
            routine: SlaTargets {
                acknowledge_secs: 3_600,
                preliminary_secs: 43_200,
            },
        }
    }
}

impl SlaConfig {
    pub fn for_priority(&self, priority: Priority) -> &SlaTargets {
        match priority {
            Priority::Stat => &self.stat,
            Priority::Urgent => &self.urgent,
            Priority::Routine => &self.routine,
        }
    }
}

/// The two deadlines of one priority, counted from when the study is
/// complete. Both keys are required in a table that is written: the
/// defaults differ by priority, so a half-written table is more likely a
/// mistake than a wish to mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaTargets {
    /// Seconds within which an assigned radiologist must accept the study,
    /// or it is escalated.
    pub acknowledge_secs: u64,
    /// Seconds within which a preliminary report is due.
    pub preliminary_secs: u64,
}

impl SlaTargets {
    pub fn acknowledge(&self) -> Duration {
        Duration::from_secs(self.acknowledge_secs)
    }

    pub fn preliminary(&self) -> Duration {
        Duration::from_secs(self.preliminary_secs)
    }
}

/// The problems of `[sla]`.
pub(crate) fn problems(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    for priority in Priority::ALL {
        let targets = config.sla.for_priority(priority);
        let path = format!("sla.{priority}");
        for (key, value, range) in [
            (
                "acknowledge_secs",
                targets.acknowledge_secs,
                ACKNOWLEDGE_SECS,
            ),
            (
                "preliminary_secs",
                targets.preliminary_secs,
                PRELIMINARY_SECS,
            ),
        ] {
            if !range.contains(&value) {
                problems.push(Problem::new(
                    format!("{path}.{key}"),
                    format!(
                        "must be between {} and {} seconds, not {value}",
                        range.start(),
                        range.end()
                    ),
                ));
            }
        }
        if targets.acknowledge_secs > targets.preliminary_secs {
            problems.push(Problem::new(
                format!("{path}.acknowledge_secs"),
                format!(
                    "{} seconds is longer than preliminary_secs ({}): a study must be \
                     accepted before it can be reported",
                    targets.acknowledge_secs, targets.preliminary_secs
                ),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_contract_values() {
        let sla = SlaConfig::default();
        assert_eq!(sla.stat.acknowledge(), Duration::from_secs(5 * 60));
        assert_eq!(sla.stat.preliminary(), Duration::from_secs(20 * 60));
        assert_eq!(sla.urgent.acknowledge(), Duration::from_secs(15 * 60));
        assert_eq!(sla.urgent.preliminary(), Duration::from_secs(60 * 60));
        assert_eq!(sla.routine.acknowledge(), Duration::from_secs(60 * 60));
        assert_eq!(sla.routine.preliminary(), Duration::from_secs(12 * 3600));
    }

    use crate::radiologist::check::{assert_one, parse_problem, paths, problems};

    #[test]
    fn targets_are_checked() {
        assert_one(
            "[sla]\nstat = { acknowledge_secs = 0, preliminary_secs = 1200 }\n",
            "sla.stat.acknowledge_secs",
            "must be between 1 and 86400 seconds, not 0",
        );
        assert_one(
            "[sla]\nurgent = { acknowledge_secs = 900, preliminary_secs = 604801 }\n",
            "sla.urgent.preliminary_secs",
            "not 604801",
        );
        assert_one(
            "[sla]\nroutine = { acknowledge_secs = 7200, preliminary_secs = 3600 }\n",
            "sla.routine.acknowledge_secs",
            "7200 seconds is longer than preliminary_secs (3600)",
        );
        // Only the table written changes; the others keep their defaults.
        let config = Config::from_toml_str(&format!(
            "{}\n[sla]\nstat = {{ acknowledge_secs = 120, preliminary_secs = 600 }}\n",
            crate::radiologist::check::BASE
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.sla.stat.acknowledge_secs, 120);
        assert_eq!(config.sla.urgent, SlaConfig::default().urgent);
        assert_eq!(paths(&problems("")), Vec::<&str>::new());
    }

    #[test]
    fn half_written_table_is_a_parse_error() {
        let problem = parse_problem("[sla]\nstat = { acknowledge_secs = 300 }\n");
        assert_eq!(problem.path, "sla.stat");
        assert!(
            problem.message.contains("missing field `preliminary_secs`"),
            "{problem}"
        );
        let problem =
            parse_problem("[sla]\nasap = { acknowledge_secs = 1, preliminary_secs = 2 }\n");
        assert_eq!(problem.path, "sla.asap");
    }

    #[test]
    fn example_states_the_defaults() {
        assert_eq!(Config::example().sla, SlaConfig::default());
    }
}
