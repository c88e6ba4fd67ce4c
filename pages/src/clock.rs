//! Durations as a reader glances at them ("1 h 05", "12 min", "40 s"); the
//! page's script ticks them with the same rules (`assets/telerad.js`).

/// `ms` (its magnitude) written shortly.
pub fn span(ms: i64) -> String {
    let seconds = ms.unsigned_abs() / 1000;
    if seconds < 60 {
        format!("{seconds} s")
    } else if seconds < 3600 {
        format!("{} min", seconds / 60)
    } else {
        format!("{} h {:02}", seconds / 3600, seconds % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans_read_at_a_glance() {
        assert_eq!(span(40_000), "40 s");
        assert_eq!(span(-12 * 60_000 - 5_000), "12 min");
        assert_eq!(span(65 * 60_000), "1 h 05");
        assert_eq!(span(i64::MIN), "2562047788015 h 12");
    }
}
