//! Where instances live on disk.
//!
//! `ROOT/studies/STUDY/SERIES/SOP.dcm` for the first version of an instance,
//! `SOP.vN.dcm` for later versions, and `ROOT/incoming/NODE/` for files
//! still being received by node NODE (nodes may share the folder). `incoming/` is on the same file system as the final tree so that
//! the last step is an atomic `rename`. Paths are only ever built from UIDs
//! that passed [`telerad_dicom::uid::validate_uid`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    node_id: String,
}

impl Layout {
    /// Creates the folders if needed and removes what an interrupted run of
    /// this node left in its `incoming/` folder: those instances were never
    /// acknowledged. Other nodes' receptions in progress are left alone.
    pub fn open(root: &Path, node_id: &str) -> io::Result<Layout> {
        let layout = Layout {
            root: root.to_path_buf(),
            node_id: node_id.to_string(),
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
        self.root.join("incoming").join(&self.node_id)
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn studies_dir(&self) -> PathBuf {
        self.root.join("studies")
    }

    /// The Study Instance UID in a path made by
    /// [`Layout::relative_instance_path`].
    pub fn study_of(relative: &str) -> Option<&str> {
        relative
            .strip_prefix("studies/")?
            .split('/')
            .next()
            .filter(|study| !study.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_clears_only_its_own_receptions_in_progress() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let a = Layout::open(dir.path(), "node-a").expect("node a");
        let b = Layout::open(dir.path(), "node-b").expect("node b");
        fs::write(a.incoming_dir().join("rx-1.part"), b"a").expect("a's file");
        fs::write(b.incoming_dir().join("rx-2.part"), b"b").expect("b's file");
        // Node A restarts.
        let a = Layout::open(dir.path(), "node-a").expect("node a again");
        assert!(!a.incoming_dir().join("rx-1.part").exists());
        assert!(b.incoming_dir().join("rx-2.part").exists());
    }
}
