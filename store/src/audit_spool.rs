//! The records of reads and refusals, written to a local file before the
//! answer and chained a little later, many at a time.
//!
//! A read must not be answered before its record is safe; committing each
//! one (or each handful) to the database made every other connection drop
//! its page cache at every commit, and cost reads a third of their
//! throughput (BENCHMARKS.md, "Authentication and audit"). A record is
//! instead appended as a line to a spool file of this process (one
//! `write`: it survives a crash of telerad, as a commit with
//! `synchronous = NORMAL` did, but not of the machine before the next
//! move), and a task moves each file's records into the chain every
//! [`MOVE_EVERY`], in one fully durable transaction that also names the
//! file in `audit_spool_moved` (migration 0028). A file found again after
//! a crash is chained then removed, or only removed if its name is
//! already there: never chained twice. Records of changes do not come
//! here as a rule: they are appended in the change's own transaction.
//!
//! Each process writes a file of its own, locked (`flock`) for as long as
//! it writes to it; files that no live process holds are moved by the
//! server's next pass ([`Orphans::Adopt`]); a command run beside it
//! (`telerad user …`, perhaps on another database) leaves them. Each node
//! spools in a folder of its own, so that the locks are never asked to
//! hold across machines on shared storage.

use crate::Database;
use crate::audit::{self, AuditRecord};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long a record waits in the spool at most, under load; a search of
/// the trail in this process moves it first.
pub const MOVE_EVERY: Duration = Duration::from_millis(200);
/// A file with this many records is moved without waiting.
pub const MOVE_AT: usize = 2_048;
/// Files waiting to be chained beyond which appends are refused.
pub const MAX_PENDING_FILES: usize = 64;
/// Names in `audit_spool_moved` older than this, whose file is gone, are
/// forgotten.
const FORGET_AFTER_MS: i64 = 24 * 3_600 * 1_000;
/// The bytes of one spool file read at most; the writer starts another
/// file long before ([`MOVE_AT`] records of under a few kilobytes).
const MAX_FILE: u64 = 256 << 20;
const EXTENSION: &str = "jsonl";
/// A file being created, until it is locked.
const CREATING: &str = "new";
/// Time after which a file still being created was left by a crash.
const CREATION_TIME: Duration = Duration::from_secs(60);
/// A file set aside for a person to look at.
const SET_ASIDE: &str = "rejected";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot write the audit spool {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot chain the audit spool's records: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot write an audit record as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the audit spool lock is poisoned")]
    Poisoned,
    #[error(
        "the audit spool {0} is full: its records cannot be chained (is the database reachable?)"
    )]
    Full(PathBuf),
}

/// Whether a spool takes over the files no live process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orphans {
    /// The server: it chains what a crash left in its folder.
    Adopt,
    /// A command run beside it (perhaps on another database): its own
    /// files only.
    Leave,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Appends records to this process's spool file; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditSpool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    db: Database,
    /// The file being written, opened at the first record after a move.
    current: Mutex<Option<Current>>,
    orphans: Orphans,
    /// Files let go and not chained yet, as the last pass left them.
    pending: AtomicUsize,
    /// What a file's name is prefixed with in `audit_spool_moved`: the
    /// folder's own name (a node's id), so that each node forgets only
    /// its own files' names.
    key_prefix: String,
    /// One move at a time: the task's and a search's.
    moving: tokio::sync::Mutex<()>,
    /// Wakes the mover when a file fills.
    due: Arc<tokio::sync::Notify>,
}

#[derive(Debug)]
struct Current {
    file: File,
    name: String,
    records: usize,
}

impl AuditSpool {
    /// Spools into `dir` (created if missing) and starts the task that
    /// moves the records into the chain, on the current runtime; the task
    /// ends when the last `AuditSpool` is dropped, and its first pass
    /// moves what earlier processes left.
    pub fn start(db: Database, dir: PathBuf, orphans: Orphans) -> Result<AuditSpool, SpoolError> {
        // Its lines name patients: the owner's alone.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io(&dir))?;
        let key_prefix = format!(
            "{}/",
            dir.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        let shared = Arc::new(Shared {
            key_prefix,
            dir,
            db,
            current: Mutex::new(None),
            orphans,
            pending: AtomicUsize::new(0),
            moving: tokio::sync::Mutex::new(()),
            due: Arc::new(tokio::sync::Notify::new()),
        });
        tokio::spawn(mover(Arc::downgrade(&shared), shared.due.clone()));
        Ok(AuditSpool { shared })
    }

    /// Writes `record` to the spool file; once this returns, a crash of
    /// telerad does not lose it.
    pub fn append(&self, record: &AuditRecord) -> Result<(), SpoolError> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        let mut current = self
            .shared
            .current
            .lock()
            .map_err(|_| SpoolError::Poisoned)?;
        if current.is_none() && self.shared.pending.load(Ordering::Relaxed) >= MAX_PENDING_FILES {
            // The chain has not taken the spool for a while (the database
            // is away): refuse, as a failed commit did, rather than let
            // the disk fill.
            return Err(SpoolError::Full(self.shared.dir.clone()));
        }
        let file = match current.as_mut() {
            Some(file) => file,
            None => current.insert(self.shared.create()?),
        };
        // One `write` of the whole line: a crash leaves it whole or absent.
        if let Err(e) = file.file.write_all(&line) {
            // Part of the line may be written (a full disk): the next
            // record must not be glued to it. The file is let go; its
            // reader skips the cut line.
            let path = self.shared.dir.join(&file.name);
            *current = None;
            return Err(io(&path)(e));
        }
        file.records += 1;
        if file.records >= MOVE_AT {
            // Let go: the file is the mover's now, and the next record
            // starts another (a file stays small while the database is
            // away).
            *current = None;
            self.shared.pending.fetch_add(1, Ordering::Relaxed);
            self.shared.due.notify_one();
        }
        Ok(())
    }

    /// Moves every record spooled so far into the chain, and what other
    /// processes left; returns how many records were chained.
    pub async fn flush(&self) -> Result<usize, SpoolError> {
        self.shared.flush().await
    }
}

/// Moves the spool on a timer, or sooner when a file fills; holds the
/// spool only while it moves, so that the last `AuditSpool` dropped ends it.
async fn mover(shared: Weak<Shared>, due: Arc<tokio::sync::Notify>) {
    loop {
        let Some(spool) = shared.upgrade() else {
            return;
        };
        if let Err(e) = spool.flush().await {
            tracing::error!(error = %e, "audit spool not moved; trying again");
        }
        drop(spool);
        let _ = tokio::time::timeout(MOVE_EVERY, due.notified()).await;
    }
}

impl Shared {
    /// A new file, locked before it takes the name other processes look
    /// for, lest one of them take it for a dead process's.
    fn create(&self) -> Result<Current, SpoolError> {
        let base = random_name();
        let name = format!("{base}.{EXTENSION}");
        let path = self.dir.join(&name);
        let new = self.dir.join(format!("{base}.{CREATING}"));
        let file = OpenOptions::new()
            .append(true)
            .read(true)
            .create_new(true)
            .open(&new)
            .map_err(io(&new))?;
        file.try_lock().map_err(|e| SpoolError::Io {
            path: new.clone(),
            source: e.into(),
        })?;
        std::fs::rename(&new, &path).map_err(io(&path))?;
        Ok(Current {
            file,
            name,
            records: 0,
        })
    }

    /// Moves the files left (oldest first, so that the chain keeps about
    /// the order of time) then this process's own, taken out so that
    /// writers start another. A file that cannot be read is reported and
    /// skipped, and tried again at the next pass; a database error ends
    /// the pass (the other files would meet it too).
    async fn flush(&self) -> Result<usize, SpoolError> {
        let _moving = self.moving.lock().await;
        let mut files = match self.orphans {
            Orphans::Adopt => self.orphans()?,
            Orphans::Leave => Vec::new(),
        };
        let taken = self
            .current
            .lock()
            .map_err(|_| SpoolError::Poisoned)?
            .take();
        files.extend(taken.map(|c| (c.file, c.name)));
        let mut chained = 0;
        let mut outcome = Ok(());
        let mut left = 0;
        for (file, name) in files {
            if outcome.is_err() {
                left += 1;
                continue;
            }
            match self.move_file(file, &name).await {
                Ok(count) => chained += count,
                Err(e @ SpoolError::Database(_)) => {
                    left += 1;
                    outcome = Err(e);
                }
                Err(e) => {
                    left += 1;
                    tracing::error!(file = %name, error = %e, "audit spool file not moved");
                }
            }
        }
        self.pending.store(left, Ordering::Relaxed);
        outcome.map(|()| chained)
    }

    /// Spool files that no process holds, locked by this one, oldest
    /// first (names begin with the time). A file being created that its
    /// creator did not live to name is removed: it holds nothing.
    fn orphans(&self) -> Result<Vec<(File, String)>, SpoolError> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            let extension = path.extension().and_then(|e| e.to_str());
            if extension != Some(EXTENSION) && extension != Some(CREATING) {
                continue;
            }
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let file = match File::open(&path) {
                Ok(file) => file,
                // Moved and removed by another process meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "audit spool file unreadable");
                    continue;
                }
            };
            if extension == Some(CREATING) {
                // Its creator locks it at once: only an old one is dead.
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > CREATION_TIME);
                if old && file.try_lock().is_ok() {
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            }
            if file.try_lock().is_err() {
                continue;
            }
            found.push((file, name.to_string()));
        }
        found.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(found)
    }

    /// Chains the records of `file` (locked by this process) unless its
    /// name says it was chained already, then removes it.
    async fn move_file(&self, file: File, name: &str) -> Result<usize, SpoolError> {
        let path = self.dir.join(name);
        let key = format!("{}{name}", self.key_prefix);
        let records = read_records(&file, &path)?;
        let now = now_ms();
        let mut tx = self.db.begin_write().await?;
        let known: Option<(i64,)> =
            sqlx::query_as("SELECT moved_at FROM audit_spool_moved WHERE name = $1")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await?;
        let chained = if known.is_some() || records.is_empty() {
            0
        } else {
            let count = records.len();
            audit::append_all(&mut tx, records).await?;
            sqlx::query("INSERT INTO audit_spool_moved (name, moved_at) VALUES ($1, $2)")
                .bind(&key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            count
        };
        self.forget_removed(&mut tx, now).await?;
        tx.commit().await?;
        // Removed while still locked: no other process reads it meanwhile.
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path)(e)),
            _ => {}
        }
        drop(file);
        Ok(chained)
    }

    /// Forgets old names of this folder whose file is gone: a file still
    /// there (its removal failed) keeps its name, lest it be chained
    /// again; another node's names are that node's to forget.
    async fn forget_removed(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let old: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM audit_spool_moved WHERE moved_at < $1 \
             AND substr(name, 1, length($2)) = $2 ORDER BY moved_at LIMIT 64",
        )
        .bind(now - FORGET_AFTER_MS)
        .bind(&self.key_prefix)
        .fetch_all(&mut **tx)
        .await?;
        for (key,) in old {
            let name = &key[self.key_prefix.len()..];
            if !self.dir.join(name).exists() {
                sqlx::query("DELETE FROM audit_spool_moved WHERE name = $1")
                    .bind(&key)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }
}

/// The records of a spool file. A line cut short (the machine stopped in
/// the middle of a write) or unreadable is reported and skipped: the rest
/// of the file is still chained.
fn read_records(mut file: &File, path: &Path) -> Result<Vec<AuditRecord>, SpoolError> {
    let size = file.metadata().map_err(io(path))?.len();
    if size > MAX_FILE {
        // Never written by telerad: set aside for a person to look at,
        // rather than chained in part and removed, or read at every pass.
        let aside = path.with_extension(SET_ASIDE);
        std::fs::rename(path, &aside).map_err(io(path))?;
        return Err(io(&aside)(std::io::Error::other(format!(
            "{size} bytes, more than a spool file holds: set aside"
        ))));
    }
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(io(path))?;
    file.read_to_end(&mut bytes).map_err(io(path))?;
    let mut records = Vec::new();
    for (number, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<AuditRecord>(line) {
            Ok(record) => records.push(record),
            Err(e) => tracing::error!(
                file = %path.display(),
                line = number + 1,
                error = %e,
                "an audit spool line cannot be read; skipped"
            ),
        }
    }
    Ok(records)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A name no other process picks: the time (so that names sort as files
/// were begun) and 128 random bits.
fn random_name() -> String {
    format!("{:016}-{:032x}", now_ms(), rand::random::<u128>())
}
