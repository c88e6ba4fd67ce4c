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

/// A duration as a person reads it: "30 s", "5 min", "1 h 30 min",
/// "2 min 5 s". Whole seconds; parts that are zero are left out.
pub fn human_duration(duration: Duration) -> String {
    let total = duration.as_secs();
    if total == 0 {
        return "0 s".to_owned();
    }
    let parts = [
        (total / 3600, "h"),
        (total % 3600 / 60, "min"),
        (total % 60, "s"),
    ];
    parts
        .iter()
        .filter(|(value, _)| *value > 0)
        .map(|(value, unit)| format!("{value} {unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_human_units() {
        let cases = [
            (0, "0 s"),
            (30, "30 s"),
            (60, "1 min"),
            (125, "2 min 5 s"),
            (300, "5 min"),
            (3600, "1 h"),
            (5400, "1 h 30 min"),
            (43_200, "12 h"),
            (90_061, "25 h 1 min 1 s"),
        ];
        for (secs, text) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), text, "{secs} s");
        }
        // Below a second is not a unit anyone set an SLA in.
        assert_eq!(human_duration(Duration::from_millis(1500)), "1 s");
    }

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
