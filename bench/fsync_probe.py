#!/usr/bin/env python3
"""How many files per second can this disk make durable, the way telerad does?

telerad acknowledges a C-STORE only after, for each instance:
  1. writing the file to DATA/incoming/ as it arrives, asking the kernel to
     start writing back each 256 kB written (sync_file_range),
  2. rename()ing it into DATA/studies/STUDY/SERIES/, then fsync()ing the
     file and that directory in parallel (a rename is durable only once its
     directory is synced),
  3. committing one SQLite transaction in WAL mode with synchronous=FULL,
     which appends a few pages to the WAL and fsync()s it.

So the disk, not the CPU or the network, bounds a durable receiver: this
probe measures that bound with nothing else in the way (no DICOM, no
parsing, no database engine), in five patterns:

  file           write + fsync(file)                           1 fsync/file
  file+dir       ... + rename + fsync(dir)                     2 fsyncs/file
  serial         ... + 8 kB append to a log + fsync(log)       3 fsyncs/file
                 (telerad's order up to commit 5af0ecf)
  telerad        write with write-back requests, rename, fsync(file) and
                 fsync(dir) in parallel, then the log          3 fsyncs/file
  telerad x W    the same from W threads at once (W parallel associations;
                 ext4's journal may then commit several fsyncs together)

Usage: fsync_probe.py DIR [FILES_PER_PATTERN] [FILE_KB] [WRITERS]
Prints one line per pattern: "<pattern>\t<files/s>\t<ms per file>".
DIR must be on the file system being measured; the probe cleans up after
itself.
"""

import ctypes
import ctypes.util
import os
import shutil
import sys
import threading
import time


CHUNK = 128 * 1024
WRITEBACK_EVERY = 256 * 1024
SYNC_FILE_RANGE_WRITE = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def start_writeback(fd, offset, length):
    """Linux sync_file_range(SYNC_FILE_RANGE_WRITE); a hint, as in telerad."""
    if hasattr(_libc, "sync_file_range"):
        _libc.sync_file_range(fd, ctypes.c_longlong(offset), ctypes.c_longlong(length),
                              ctypes.c_uint(SYNC_FILE_RANGE_WRITE))


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_file(incoming, final_dir, name, payload, log_fd, log_lock, mode):
    tmp = os.path.join(incoming, name + ".part")
    final = os.path.join(final_dir, name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        if mode == "telerad":
            requested = 0
            for at in range(0, len(payload), CHUNK):
                os.write(fd, payload[at:at + CHUNK])
                written = min(at + CHUNK, len(payload))
                if written - requested >= WRITEBACK_EVERY:
                    start_writeback(fd, requested, written - requested)
                    requested = written
            os.rename(tmp, final)
            name_synced = threading.Thread(target=fsync_path, args=(final_dir,))
            name_synced.start()
            os.fsync(fd)
            name_synced.join()
        else:
            os.write(fd, payload)
            os.fsync(fd)
    finally:
        os.close(fd)
    if mode == "file":
        return
    if mode != "telerad":
        os.rename(tmp, final)
        fsync_path(final_dir)
    if mode == "file+dir":
        return
    # A stand-in for SQLite's WAL commit: append two pages, fsync the log.
    # (A lock, like SQLite's single writer.)
    with log_lock:
        os.write(log_fd, b"\0" * 8192)
        os.fsync(log_fd)


def run(root, mode, files, payload, writers):
    incoming = os.path.join(root, "incoming")
    final_dir = os.path.join(root, "studies", "series")
    os.makedirs(incoming)
    os.makedirs(final_dir)
    log_fd = os.open(os.path.join(root, "wal"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    log_lock = threading.Lock()
    errors = []

    def worker(w):
        try:
            for i in range(w, files, writers):
                durable_file(incoming, final_dir, f"{i:06d}.dcm", payload, log_fd, log_lock, mode)
        except OSError as e:  # reported, not swallowed
            errors.append(e)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    os.close(log_fd)
    shutil.rmtree(root)
    if errors:
        raise errors[0]
    return files / elapsed


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    base = sys.argv[1]
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    kb = int(sys.argv[3]) if len(sys.argv) > 3 else 512
    writers = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    # Random bytes: a file system or virtual disk that compresses or
    # deduplicates zeros would flatter the result.
    payload = os.urandom(kb * 1024)
    patterns = [("file", "file", 1), ("file+dir", "file+dir", 1), ("serial", "serial", 1),
                ("telerad", "telerad", 1), (f"telerad x{writers}", "telerad", writers)]
    for label, mode, w in patterns:
        os.sync()  # start each pattern without someone else's dirty pages
        rate = run(os.path.join(base, f"probe-{mode}-{w}"), mode, files, payload, w)
        print(f"{label}\t{rate:.0f}\t{1000 / rate:.2f}", flush=True)


if __name__ == "__main__":
    main()
