//! Service-level deadlines of a priority, as durations from the moment a
//! study is complete.

use std::time::Duration;

use telerad_config::{Priority, SlaConfig};

/// The time allowed for `priority` to have the study accepted by a
/// radiologist (acknowledged), then to have a preliminary report.
pub fn sla_for(config: &SlaConfig, priority: Priority) -> (Duration, Duration) {
    let targets = config.for_priority(priority);
    (targets.acknowledge(), targets.preliminary())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_per_priority() {
        let sla = SlaConfig::default();
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(sla_for(&sla, Priority::Stat), (minutes(5), minutes(20)));
        assert_eq!(sla_for(&sla, Priority::Urgent), (minutes(15), minutes(60)));
        assert_eq!(
            sla_for(&sla, Priority::Routine),
            (minutes(60), minutes(12 * 60))
        );
    }
}
