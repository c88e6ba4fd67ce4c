//! One serving process per SQLite database. SQLite locks its file for each
//! write, but two telerad servers on one file would each sweep, route and
//! forward as if alone; several nodes need PostgreSQL. The second is
//! refused at start with a message that says so, rather than left to
//! contend.

use crate::db::sqlite_path;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Held for as long as the process serves; released by the kernel when the
/// process ends, however it ends.
#[derive(Debug)]
pub struct ProcessLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another telerad process{} already serves the SQLite database {path}: \
         SQLite serves one process; stop it first, or use PostgreSQL for several nodes"
    , .holder.as_deref().map(|pid| format!(" (pid {pid})")).unwrap_or_default())]
    Held {
        path: PathBuf,
        holder: Option<String>,
    },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Takes the database's process lock (`<database>.lock`), or says who holds
/// it. `None` for PostgreSQL and in-memory databases.
pub fn lock_for_serving(database_url: &str) -> Result<Option<ProcessLock>, LockError> {
    let Some(database) = sqlite_path(database_url) else {
        return Ok(None);
    };
    let mut path = database.into_os_string();
    path.push(".lock");
    let path = PathBuf::from(path);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    // SAFETY: flock on a file descriptor this function owns.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = Some(holder.trim().to_string()).filter(|h| !h.is_empty());
            return Err(LockError::Held { path, holder });
        }
        return Err(io(error));
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(Some(ProcessLock { _file: file }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_database_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let first = lock_for_serving(&url).expect("first").expect("a lock");
        let refused = lock_for_serving(&url).expect_err("second refused");
        let message = refused.to_string();
        assert!(
            message.contains(&format!("(pid {})", std::process::id())),
            "{message}"
        );
        assert!(message.contains("PostgreSQL"), "{message}");
        drop(first);
        assert!(lock_for_serving(&url).expect("after release").is_some());
        assert!(
            lock_for_serving("postgres://u@h/db")
                .expect("no lock")
                .is_none()
        );
    }
}
