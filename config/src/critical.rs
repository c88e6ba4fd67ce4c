//! `[critical_results]`: how soon the site must acknowledge a critical
//! finding of each ACR category (ACR practice parameter on communication:
//! category 1 within minutes, directly; 2 within hours; 3 within days)
//! before it is escalated.

use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Config;
use crate::problem::Problem;

/// A minute to a week.
const DELAY_SECS: RangeInclusive<u64> = 60..=604_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CriticalResultsConfig {
    pub category_1_secs: u64,
    pub category_2_secs: u64,
    pub category_3_secs: u64,
}

impl Default for CriticalResultsConfig {
    /// Category 1 in 30 minutes (a night's emergency department answers the
    /// phone sooner, or something is wrong), 2 in 3 hours, 3 in 3 days.
    fn default() -> CriticalResultsConfig {
        CriticalResultsConfig {
            category_1_secs: 1_800,
            category_2_secs: 10_800,
            category_3_secs: 259_200,
        }
    }
}

impl CriticalResultsConfig {
    /// The acknowledgement delay of an ACR category (1, 2 or 3).
    pub fn delay(&self, category: u8) -> Option<Duration> {
        let secs = match category {
            1 => self.category_1_secs,
            2 => self.category_2_secs,
            3 => self.category_3_secs,
            _ => return None,
        };
        Some(Duration::from_secs(secs))
    }
}

/// The problems of `[critical_results]`.
pub(crate) fn problems(config: &Config) -> Vec<Problem> {
    let c = &config.critical_results;
    let mut problems = Vec::new();
    let delays = [
        ("category_1_secs", c.category_1_secs),
        ("category_2_secs", c.category_2_secs),
        ("category_3_secs", c.category_3_secs),
    ];
    for (key, value) in delays {
        if !DELAY_SECS.contains(&value) {
            problems.push(Problem::new(
                format!("critical_results.{key}"),
                format!(
                    "must be between {} and {} seconds, not {value}",
                    DELAY_SECS.start(),
                    DELAY_SECS.end()
                ),
            ));
        }
    }
    for pair in delays.windows(2) {
        if pair[0].1 > pair[1].1 {
            problems.push(Problem::new(
                format!("critical_results.{}", pair[0].0),
                format!(
                    "{} seconds is longer than {} ({}): a more urgent category is acknowledged sooner",
                    pair[0].1, pair[1].0, pair[1].1
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
    fn delays_follow_the_categories() {
        let c = CriticalResultsConfig::default();
        assert_eq!(c.delay(1), Some(Duration::from_secs(30 * 60)));
        assert_eq!(c.delay(2), Some(Duration::from_secs(3 * 3600)));
        assert_eq!(c.delay(3), Some(Duration::from_secs(3 * 86_400)));
        assert_eq!(c.delay(4), None);
    }

    #[test]
    fn out_of_order_or_out_of_range_delays_are_problems() {
        let mut config = Config::example();
        config.critical_results.category_1_secs = 20_000;
        config.critical_results.category_3_secs = 10;
        let found: Vec<String> = problems(&config)
            .into_iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found
                .iter()
                .any(|p| p.contains("critical_results.category_3_secs")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("critical_results.category_1_secs")),
            "{found:?}"
        );
    }
}
