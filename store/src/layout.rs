//! Where instances live on disk.
//!
//! `ROOT/studies/STUDY/SERIES/SOP.dcm` for the first version of an instance,
//! `SOP.vN.dcm` for later versions, and `ROOT/incoming/` for files still being
//! received. `incoming/` is on the same file system as the final tree so that
//! the last step is an atomic `rename`. Paths are only ever built from UIDs
//! that passed [`crate::uid::validate_uid`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Creates the folders if needed and removes what an interrupted run left
    /// in `incoming/`: those instances were never acknowledged.
    pub fn open(root: &Path) -> io::Result<Layout> {
        let layout = Layout {
            root: root.to_path_buf(),
        };
        fs::create_dir_all(layout.studies_dir())?;
        fs::create_dir_all(layout.incoming_dir())?;
        for entry in fs::read_dir(layout.incoming_dir())? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
            }
        }
        Ok(layout)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn incoming_dir(&self) -> PathBuf {
        self.root.join("incoming")
    }

    pub fn studies_dir(&self) -> PathBuf {
        self.root.join("studies")
    }

    /// Path relative to the storage root, as stored in the index.
    pub fn relative_instance_path(study: &str, series: &str, sop: &str, version: i64) -> String {
        if version <= 1 {
            format!("studies/{study}/{series}/{sop}.dcm")
        } else {
            format!("studies/{study}/{series}/{sop}.v{version}.dcm")
        }
    }

    pub fn absolute(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }
}

/// Makes a directory entry durable: after a rename, the new name survives a
/// power loss only once its directory is synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing parents, syncing each parent that gained an
/// entry so the chain from the root is durable.
pub fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Another association created it first, and may not have synced the
        // parent yet: sync it here too rather than rely on that.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}
