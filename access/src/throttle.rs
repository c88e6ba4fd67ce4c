//! Login throttling: after too many failures for one account or from one
//! address within a window, further attempts are refused until the oldest
//! failure leaves it, without checking the password.
//!
//! Kept in memory, per process: a restart forgets it, and several nodes
//! each count their own. Memory is bounded: past [`MAX_KEYS`] keys, those
//! whose failures have all left the window are dropped, and if none has,
//! new keys are not tracked (and are not refused either).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_KEYS: usize = 100_000;

#[derive(Debug)]
pub struct Throttle {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    pub fn new(max_failures: usize, window: Duration) -> Throttle {
        Throttle {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Begins an attempt for `key`: `Err(wait)` while it has had too many
    /// failures, else the attempt is counted as a failure at once, under
    /// the same lock, so that attempts sent together cannot all pass the
    /// check before any is counted. A success takes it back
    /// ([`Throttle::forgive`], [`Throttle::clear`]).
    pub fn begin(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = failures.get_mut(key) {
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                times.pop_front();
            }
            if times.len() >= self.max_failures {
                let oldest = times.front().copied().unwrap_or(now);
                return Err(self.window.saturating_sub(now.duration_since(oldest)));
            }
        } else if failures.len() >= MAX_KEYS {
            let window = self.window;
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
            if failures.len() >= MAX_KEYS {
                return Ok(());
            }
        }
        failures.entry(key.to_string()).or_default().push_back(now);
        Ok(())
    }

    /// Takes back one attempt of `key` that succeeded.
    pub fn forgive(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = failures.get_mut(key) {
            times.pop_back();
            if times.is_empty() {
                failures.remove(key);
            }
        }
    }

    /// Forgets every failure of `key`.
    pub fn clear(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_until_the_window_passes() {
        let throttle = Throttle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for i in 0..3 {
            let at = start + Duration::from_secs(i);
            assert!(throttle.begin("a", at).is_ok(), "attempt {i}");
        }
        let wait = throttle
            .begin("a", start + Duration::from_secs(10))
            .expect_err("a fourth attempt is refused");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(throttle.begin("b", start).is_ok(), "other keys are not");
        // The first failure leaves the window at 60 s.
        assert!(throttle.begin("a", start + Duration::from_secs(60)).is_ok());
        throttle.clear("a");
        assert!(throttle.begin("a", start + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn a_forgiven_success_does_not_count() {
        let throttle = Throttle::new(2, Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..5 {
            assert!(throttle.begin("a", now).is_ok());
            throttle.forgive("a");
        }
        assert!(throttle.begin("a", now).is_ok());
        assert!(throttle.begin("a", now).is_ok());
        assert!(throttle.begin("a", now).is_err(), "two failures kept");
    }

    #[test]
    fn attempts_sent_together_are_counted_before_any_is_checked() {
        let throttle = std::sync::Arc::new(Throttle::new(5, Duration::from_secs(60)));
        let now = Instant::now();
        let admitted: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..50)
                .map(|_| {
                    let throttle = throttle.clone();
                    scope.spawn(move || usize::from(throttle.begin("a", now).is_ok()))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        assert_eq!(admitted, 5);
    }
}
