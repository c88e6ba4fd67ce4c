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

    /// `Err(wait)` while `key` has had too many failures.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = failures.get_mut(key) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() >= self.max_failures {
            let oldest = times.front().copied().unwrap_or(now);
            Err(self.window.saturating_sub(now.duration_since(oldest)))
        } else {
            Ok(())
        }
    }

    pub fn fail(&self, key: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if !failures.contains_key(key) && failures.len() >= MAX_KEYS {
            let window = self.window;
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
            if failures.len() >= MAX_KEYS {
                return;
            }
        }
        let times = failures.entry(key.to_string()).or_default();
        times.push_back(now);
        while times.len() > self.max_failures {
            times.pop_front();
        }
    }

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
            assert!(throttle.check("a", start).is_ok(), "attempt {i}");
            throttle.fail("a", start + Duration::from_secs(i));
        }
        let wait = throttle
            .check("a", start + Duration::from_secs(10))
            .expect_err("a fourth attempt is refused");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(throttle.check("b", start).is_ok(), "other keys are not");
        assert!(throttle.check("a", start + Duration::from_secs(60)).is_ok());
        throttle.fail("a", start + Duration::from_secs(61));
        throttle.clear("a");
        assert!(throttle.check("a", start + Duration::from_secs(61)).is_ok());
    }
}
