//! Credentials verified recently, kept in memory so that a request does not
//! look its token up in the database every time.
//!
//! An entry is trusted for at most [`MAX_AGE`], never past its credential's
//! expiry, and not at all once the credentials epoch moved: a change made
//! by this process forgets everything at once ([`Verified::forget_all`]); a
//! change made elsewhere (the command line, another node) bumps the
//! database's epoch, which [`watch`] polls every [`POLL`].

use crate::service::Authenticated;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use telerad_store::{Database, accounts};

/// How long an entry is trusted without a new lookup (which also notes the
/// credential's last use).
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// How often the database's credentials epoch is read.
pub const POLL: Duration = Duration::from_millis(200);
/// Entries at most: beyond, the oldest half goes.
const CAPACITY: usize = 4096;

#[derive(Debug, Clone)]
struct Entry {
    who: Authenticated,
    /// When the credential expires (ms since the epoch), if it does.
    expires_at: Option<i64>,
    verified: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Moves on whenever everything is forgotten: a lookup that started
    /// before may not store what it read.
    generation: u64,
}

#[derive(Debug, Default)]
pub struct Verified {
    inner: Mutex<Inner>,
}

impl Verified {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // An entry is plain data: a panic elsewhere leaves it consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The caller for `token_hash`, if verified recently and still valid
    /// at `now_ms`; else the generation to pass to [`Verified::remember`].
    pub fn get(&self, token_hash: &str, now_ms: i64) -> Result<Authenticated, u64> {
        let inner = self.lock();
        match inner.entries.get(token_hash) {
            Some(entry)
                if entry.verified.elapsed() < MAX_AGE
                    && entry.expires_at.is_none_or(|at| at > now_ms) =>
            {
                Ok(entry.who.clone())
            }
            _ => Err(inner.generation),
        }
    }

    /// Keeps what a lookup begun at `generation` found, unless everything
    /// was forgotten since.
    pub fn remember(
        &self,
        token_hash: String,
        who: Authenticated,
        expires_at: Option<i64>,
        generation: u64,
    ) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= CAPACITY {
            let mut ages: Vec<Instant> = inner.entries.values().map(|e| e.verified).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            inner.entries.retain(|_, e| e.verified > cut);
        }
        inner.entries.insert(
            token_hash,
            Entry {
                who,
                expires_at,
                verified: Instant::now(),
            },
        );
    }

    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.generation += 1;
    }
}

/// Polls the database's credentials epoch until `verified` is dropped,
/// forgetting every entry when it moves. A failed read forgets them too:
/// what cannot be checked is not trusted.
pub async fn watch(db: Database, verified: Weak<Verified>) {
    let mut last: Option<i64> = None;
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(verified) = verified.upgrade() else {
            return;
        };
        match accounts::credentials_epoch(&db).await {
            Ok(epoch) if last == Some(epoch) => {}
            Ok(epoch) => {
                // The first read too: entries made before it are of an
                // epoch not known.
                verified.forget_all();
                last = Some(epoch);
            }
            Err(e) => {
                tracing::warn!("cannot read the credentials epoch: {e}");
                verified.forget_all();
                last = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Principal;
    use telerad_store::accounts::{CredentialKind, Role, User};
    use telerad_store::{CredentialId, UserId};

    fn who() -> Authenticated {
        Authenticated {
            principal: Principal {
                user: User {
                    id: UserId(1),
                    login: "clin".into(),
                    name: "Dr Clin".into(),
                    role: Role::Clinician,
                    radiologist_id: None,
                    sites: vec!["site-a".into()],
                    disabled: false,
                },
                licensed_sites: Vec::new(),
            },
            credential: CredentialId(7),
            kind: CredentialKind::Session,
        }
    }

    #[test]
    fn a_remembered_credential_is_served_until_it_expires() {
        let verified = Verified::default();
        let generation = verified.get("h", 1_000).expect_err("not known yet");
        verified.remember("h".into(), who(), Some(2_000), generation);
        let found = verified.get("h", 1_999).expect("remembered");
        assert_eq!(found.credential, CredentialId(7));
        assert!(verified.get("h", 2_000).is_err(), "expired at 2,000");
        assert!(verified.get("other", 1_000).is_err());
        // A token that never expires.
        verified.remember("forever".into(), who(), None, generation);
        assert!(verified.get("forever", i64::MAX).is_ok());
    }

    #[test]
    fn forgetting_drops_entries_and_what_lookups_begun_before_found() {
        let verified = Verified::default();
        let before = verified.get("h", 0).expect_err("not known");
        verified.remember("h".into(), who(), None, before);
        verified.forget_all();
        assert!(verified.get("h", 0).is_err(), "forgotten");
        // A lookup that began before the change may have read the old row:
        // it is not kept.
        verified.remember("h".into(), who(), None, before);
        let after = verified.get("h", 0).expect_err("not kept");
        assert_ne!(after, before);
        verified.remember("h".into(), who(), None, after);
        assert!(verified.get("h", 0).is_ok());
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let verified = Verified::default();
        for i in 0..(3 * CAPACITY) {
            let generation = verified.get("x", 0).expect_err("not known");
            verified.remember(format!("token-{i}"), who(), None, generation);
        }
        assert!(verified.lock().entries.len() <= CAPACITY);
        let last = format!("token-{}", 3 * CAPACITY - 1);
        assert!(verified.get(&last, 0).is_ok(), "the newest is kept");
    }
}
