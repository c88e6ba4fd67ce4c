//! Early write-back of an instance's pages while it is still arriving.
//!
//! An instance is acknowledged only after `fsync`. Left to itself, the kernel
//! keeps a 0.5 MB CT slice dirty in the page cache until that `fsync`, which
//! then waits for the whole file to reach the disk: on one association the
//! sender sits idle for that time. Asking for write-back of each chunk as it
//! is written (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`, which starts
//! the I/O without waiting for it) overlaps the disk with the network, so the
//! final `fsync` waits only for the tail and the metadata. It is a hint: it
//! does not replace the `fsync`, and a failure is ignored.

use std::fs::File;

/// Bytes written before write-back of them is requested.
const CHUNK: u64 = 256 * 1024;

#[derive(Debug, Default)]
pub struct Writeback {
    /// Everything before this offset has been handed to the kernel.
    requested_to: u64,
}

impl Writeback {
    /// Called after each write, with the file's length so far.
    pub fn written(&mut self, file: &File, len: u64) {
        if len.saturating_sub(self.requested_to) >= CHUNK {
            start(file, self.requested_to, len - self.requested_to);
            self.requested_to = len;
        }
    }
}

#[cfg(target_os = "linux")]
fn start(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is owned by `file`, which outlives the call; the
    // call reads no memory of ours and only schedules I/O on that file.
    let rc = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if rc != 0 {
        tracing::trace!(
            "sync_file_range: {}: the final fsync will do all the work",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn requests_each_full_chunk_once() {
        let mut file = tempfile::tempfile().expect("temp file");
        let mut writeback = Writeback::default();
        let block = vec![7u8; 100 * 1024];
        let mut len = 0u64;
        let mut requested = Vec::new();
        for _ in 0..6 {
            file.write_all(&block).expect("write");
            len += block.len() as u64;
            writeback.written(&file, len);
            requested.push(writeback.requested_to);
        }
        // 100 kB steps: a request at 300 kB (3 blocks) and at 600 kB.
        assert_eq!(
            requested,
            [0, 0, 300 * 1024, 300 * 1024, 300 * 1024, 600 * 1024]
        );
    }
}
