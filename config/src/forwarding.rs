//! `[forwarding]`: how images are delivered to radiologists' workstations
//! (C-STORE from the outbox): parallelism and the retry policy.

use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Config;
use crate::problem::Problem;

const ASSOCIATIONS: RangeInclusive<usize> = 1..=16;
const RETRY_BASE_SECS: RangeInclusive<u64> = 1..=3_600;
const RETRY_MAX_DELAY_SECS: RangeInclusive<u64> = 1..=86_400;
const MAX_ATTEMPTS: RangeInclusive<u32> = 1..=1_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardingConfig {
    /// Associations opened in parallel to one workstation. Two keep a study
    /// flowing while one waits for a slow response, without crowding a
    /// workstation sized for a single modality sending to it.
    pub associations_per_destination: usize,
    /// First wait after a failed delivery; doubled at each failure.
    pub retry_base_secs: u64,
    /// The longest wait between two attempts.
    pub retry_max_delay_secs: u64,
    /// Attempts before a delivery is given up (dead letter, visible in
    /// `GET /api/forwards?state=dead` and retried by hand).
    pub max_attempts: u32,
}

impl Default for ForwardingConfig {
    /// 15 s doubling to 10 min, 20 attempts: about two and a half hours of
    /// trying, enough to ride out a workstation reboot or a VPN outage.
    fn default() -> ForwardingConfig {
        ForwardingConfig {
            associations_per_destination: 2,
            retry_base_secs: 15,
            retry_max_delay_secs: 600,
            max_attempts: 20,
        }
    }
}

impl ForwardingConfig {
    pub fn retry_base(&self) -> Duration {
        Duration::from_secs(self.retry_base_secs)
    }
    pub fn retry_max_delay(&self) -> Duration {
        Duration::from_secs(self.retry_max_delay_secs)
    }
}

fn out_of_range<T: PartialOrd + std::fmt::Display>(
    problems: &mut Vec<Problem>,
    key: &str,
    value: T,
    range: RangeInclusive<T>,
) {
    if !range.contains(&value) {
        problems.push(Problem::new(
            format!("forwarding.{key}"),
            format!(
                "must be between {} and {}, not {value}",
                range.start(),
                range.end()
            ),
        ));
    }
}

/// The problems of `[forwarding]`.
pub(crate) fn problems(config: &Config) -> Vec<Problem> {
    let f = &config.forwarding;
    let mut problems = Vec::new();
    out_of_range(
        &mut problems,
        "associations_per_destination",
        f.associations_per_destination,
        ASSOCIATIONS,
    );
    out_of_range(
        &mut problems,
        "retry_base_secs",
        f.retry_base_secs,
        RETRY_BASE_SECS,
    );
    out_of_range(
        &mut problems,
        "retry_max_delay_secs",
        f.retry_max_delay_secs,
        RETRY_MAX_DELAY_SECS,
    );
    out_of_range(&mut problems, "max_attempts", f.max_attempts, MAX_ATTEMPTS);
    if f.retry_base_secs > f.retry_max_delay_secs {
        problems.push(Problem::new(
            "forwarding.retry_base_secs",
            format!(
                "{} seconds is longer than retry_max_delay_secs ({})",
                f.retry_base_secs, f.retry_max_delay_secs
            ),
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn paths(text: &str) -> Vec<String> {
        let site = "\n[[sites]]\nname = \"a\"\nae_titles = [\"A\"]\ntime_zone = \"Europe/Paris\"\n";
        match Config::from_toml_str(&format!("{text}{site}")) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().iter().map(|p| p.path.clone()).collect(),
        }
    }

    #[test]
    fn defaults_are_valid_and_bounds_are_checked() {
        assert!(paths("").is_empty());
        assert_eq!(
            paths("[forwarding]\nassociations_per_destination = 0\n"),
            ["forwarding.associations_per_destination"]
        );
        assert_eq!(
            paths("[forwarding]\nmax_attempts = 0\n"),
            ["forwarding.max_attempts"]
        );
        assert_eq!(
            paths("[forwarding]\nretry_base_secs = 700\nretry_max_delay_secs = 600\n"),
            ["forwarding.retry_base_secs"]
        );
        assert_eq!(paths("[forwarding]\nretries = 3\n"), ["forwarding.retries"]);
    }
}
