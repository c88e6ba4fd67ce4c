//! The durability rule seen from the kernel: before telerad answers a
//! C-STORE with success, the instance's file and its folder are fsynced and
//! the index commit is synced, in that order.
//!
//! A SIGKILL keeps the page cache, so the crash tests would pass with every
//! fsync removed. Here `strace` records the server's renames, fsyncs and
//! socket writes while DCMTK `storescu` sends a study on one association,
//! and each C-STORE response must come after its instance's syncs. SQLite
//! only: on PostgreSQL the commit's sync happens in the database server.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use telerad_fixtures::SyntheticStudy;

const SLICES: usize = 5;

/// One system call of the trace, with when it started and returned.
#[derive(Debug, Clone)]
struct Call {
    start: f64,
    end: f64,
    text: String,
}

/// Reads `strace -f -ttt -T` output, joining `<unfinished ...>` with its
/// `<... resumed>` line.
fn parse(trace: &str) -> Vec<Call> {
    let mut pending: std::collections::HashMap<&str, (f64, String)> = Default::default();
    let mut calls = Vec::new();
    for line in trace.lines() {
        // strace pads the pid column: "7657  1795654994.727340 fsync(…".
        let Some((pid, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Some((ts, rest)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(ts) = ts.parse::<f64>() else { continue };
        if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, (ts, head.to_string()));
            continue;
        }
        let (start, text) = match rest.strip_prefix("<... ") {
            Some(resumed) => match pending.remove(pid) {
                Some((start, head)) => {
                    let tail = resumed.split_once("resumed>").map_or("", |(_, t)| t);
                    (start, format!("{head}{tail}"))
                }
                None => continue,
            },
            None => (ts, rest.to_string()),
        };
        // `-T`: the time spent in the call, last on the line.
        let spent = text
            .rsplit_once('<')
            .and_then(|(_, t)| t.trim_end_matches('>').parse::<f64>().ok())
            .unwrap_or(0.0);
        calls.push(Call {
            start,
            end: start.max(ts).max(start + spent),
            text,
        });
    }
    calls
}

/// The path `strace -y` shows for the first file descriptor argument.
fn fd_path(text: &str) -> Option<&str> {
    let open = text.find('<')?;
    let close = text[open..].find('>')? + open;
    Some(&text[open + 1..close])
}

fn is_sync(call: &Call) -> bool {
    call.text.starts_with("fsync(") || call.text.starts_with("fdatasync(")
}

fn strace() -> PathBuf {
    ["/usr/bin/strace", "/usr/local/bin/strace"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("strace is needed to record system calls: `apt-get install strace`")
        })
}

/// Every thread of `pid` is traced.
fn wait_until_traced(pid: u32, tracer: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tasks: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let traced = !tasks.is_empty()
            && tasks.iter().all(|task| {
                std::fs::read_to_string(task.join("status")).is_ok_and(|status| {
                    status
                        .lines()
                        .any(|l| l.starts_with("TracerPid:") && l.trim_end() != "TracerPid:\t0")
                })
            });
        if traced {
            return;
        }
        if let Ok(Some(status)) = tracer.try_wait() {
            panic!("strace ended with {status} before attaching");
        }
        assert!(
            Instant::now() < deadline,
            "strace did not attach within 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn success_is_answered_only_after_the_file_the_folder_and_the_index_are_synced() {
    let server = TestServer::start(&Backend::Sqlite);
    let trace_path = server.dir.path().join("syscalls.trace");
    let mut tracer = Command::new(strace())
        .args(["-f", "-ttt", "-T", "-yy", "-s", "8", "-qq"])
        .args([
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2,write,writev,sendto,sendmsg",
        ])
        .arg("-o")
        .arg(&trace_path)
        .args(["-p", &server.pid().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strace");
    wait_until_traced(server.pid(), &mut tracer);

    let dir = tempfile::tempdir().expect("a temp dir");
    let mut study = SyntheticStudy::ct(SLICES);
    study.rows = 64;
    study.columns = 64;
    let paths = study.write_to(dir.path()).expect("generate");
    let out = run(telerad_fixtures::dcmtk::command("storescu")
        .env("TCP_NODELAY", "1")
        .args(["-aet", "STORESCU", "-aec", SERVER_AE, "127.0.0.1"])
        .arg(server.dicom_port.to_string())
        .args(&paths));
    assert!(out.status.success(), "{}\n{}", text(&out), server.log());

    // SIGINT: strace detaches and flushes its log.
    let _ = Command::new("kill")
        .args(["-INT", &tracer.id().to_string()])
        .status();
    let traced = tracer.wait_with_output().expect("strace ends");
    let trace = std::fs::read_to_string(&trace_path).expect("the trace");
    assert!(
        !trace.is_empty(),
        "strace recorded nothing ({}): {}",
        traced.status,
        String::from_utf8_lossy(&traced.stderr)
    );
    let calls = parse(&trace);

    let renames: Vec<(&Call, PathBuf)> = calls
        .iter()
        .filter(|c| c.text.starts_with("rename"))
        .filter_map(|c| {
            let target = c.text.rsplit('"').nth(1)?;
            target
                .contains("/studies/")
                .then(|| (c, PathBuf::from(target)))
        })
        .collect();
    let socket = format!("TCP:[127.0.0.1:{}->", server.dicom_port);
    // P-DATA-TF (type 04) on the association's socket: the C-STORE
    // responses (the association answer is 02, the release 06).
    let responses: Vec<&Call> = calls
        .iter()
        .filter(|c| {
            c.text.contains(&socket)
                && (c.text.starts_with("sendto(")
                    || c.text.starts_with("write(")
                    || c.text.starts_with("writev("))
                && c.text.contains(", \"\\4\\0")
        })
        .collect();
    let shown = || {
        calls
            .iter()
            .filter(|c| is_sync(c) || c.text.starts_with("rename") || c.text.contains(&socket))
            .map(|c| format!("{:.6}-{:.6} {}", c.start, c.end, c.text))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        renames.len(),
        SLICES,
        "one rename per instance:\n{}",
        shown()
    );
    assert_eq!(
        responses.len(),
        SLICES,
        "one response per instance:\n{}",
        shown()
    );

    let wal = server.dir.path().join("index.db-wal");
    let synced = |path: &Path, after: f64, before: f64| {
        calls.iter().find(|c| {
            is_sync(c) && fd_path(&c.text) == path.to_str() && c.start >= after && c.end <= before
        })
    };
    for (k, ((rename, target), response)) in renames.iter().zip(&responses).enumerate() {
        let answer = response.start;
        assert!(
            rename.end <= answer,
            "instance {k}: answered before its file took its name:\n{}",
            shown()
        );
        let file = synced(target, rename.start, answer).unwrap_or_else(|| {
            panic!(
                "instance {k}: no fsync of {} between its rename and its response:\n{}",
                target.display(),
                shown()
            )
        });
        let folder = target.parent().expect("a folder");
        let folder = synced(folder, rename.start, answer).unwrap_or_else(|| {
            panic!(
                "instance {k}: no fsync of {} between its rename and its response:\n{}",
                folder.display(),
                shown()
            )
        });
        // The index rows become visible only once the file is durable.
        synced(&wal, file.end.max(folder.end), answer).unwrap_or_else(|| {
            panic!(
                "instance {k}: the index commit is not synced after the file's syncs and \
                 before the response:\n{}",
                shown()
            )
        });
    }
}

#[test]
fn the_trace_parser_joins_interrupted_calls() {
    let trace = "\
7  1.000000 fsync(9</d/a.dcm> <unfinished ...>
18 1.000100 sendto(5<TCP:[127.0.0.1:1->127.0.0.1:2]>, \"\\4\\0\"..., 10, 0, NULL, 0) = 10 <0.000010>
7  1.000500 <... fsync resumed>) = 0 <0.000500>
";
    let calls = parse(trace);
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].text,
        "sendto(5<TCP:[127.0.0.1:1->127.0.0.1:2]>, \"\\4\\0\"..., 10, 0, NULL, 0) = 10 <0.000010>"
    );
    assert_eq!(fd_path(&calls[1].text), Some("/d/a.dcm"));
    assert!((calls[1].start - 1.0).abs() < 1e-9 && (calls[1].end - 1.0005).abs() < 1e-9);
}
