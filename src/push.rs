//! `telerad push`: sends files to a DICOM peer over one or more associations,
//! each file in its own transfer syntax, and says what happened to each.

use crate::cli::PushArgs;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeSet, VecDeque};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use telerad_scp::{ClientAssociation, FileToSend};

#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    bytes: u64,
    failures: Vec<String>,
}

pub async fn push(args: PushArgs) -> anyhow::Result<ExitCode> {
    let mut paths = Vec::new();
    for root in &args.paths {
        collect_files(root, &mut paths)?;
    }
    let mut files = Vec::with_capacity(paths.len());
    let mut skipped = Vec::new();
    for path in paths {
        match FileToSend::read(&path) {
            Ok(file) => files.push(file),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    for reason in &skipped {
        eprintln!("skipped: {reason}");
    }
    if files.is_empty() {
        anyhow::bail!("no DICOM file to send");
    }
    let proposals: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.sop_class_uid.clone(), f.transfer_syntax_uid.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if proposals.len() > 128 {
        anyhow::bail!(
            "{} distinct SOP class / transfer syntax pairs: more than the 128 presentation contexts of one association",
            proposals.len()
        );
    }
    let total_bytes: u64 = files.iter().map(|f| f.size).sum();
    let total_files = files.len() as u64;
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total_bytes);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {msg} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let queue = Arc::new(Mutex::new(VecDeque::from(files)));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args
        .associations
        .min(u16::try_from(total_files).unwrap_or(u16::MAX))
    {
        let queue = queue.clone();
        let tally = tally.clone();
        let progress = progress.clone();
        let calling = args.calling_ae.clone();
        let destination = args.to.clone();
        let proposals = proposals.clone();
        let timeout = Duration::from_secs(args.timeout_secs);
        workers.push(tokio::spawn(async move {
            let association =
                ClientAssociation::connect(&calling, &destination, &proposals, timeout).await;
            let mut association = match association {
                Ok(a) => a,
                Err(e) => {
                    // Files stay queued for the other associations.
                    tally
                        .lock()
                        .map(|mut t| t.failures.push(format!("association: {e}")))
                        .ok();
                    return;
                }
            };
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some(file) = next else { break };
                let outcome = association.store(&file).await;
                let Ok(mut t) = tally.lock() else { return };
                match outcome {
                    Ok(response) if response.is_success() => {
                        t.sent += 1;
                        t.bytes += file.size;
                    }
                    Ok(response) => t.failures.push(format!(
                        "{}: status 0x{:04X} {}",
                        file.path.display(),
                        response.status,
                        response.error_comment
                    )),
                    Err(e) => {
                        t.failures.push(format!("{}: {e}", file.path.display()));
                        // The association is no longer usable.
                        return;
                    }
                }
                progress.set_message(format!("{}/{total_files} files", t.sent));
                progress.inc(file.size);
            }
            if let Err(e) = association.release().await {
                tracing::warn!("release: {e}");
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let tally = tally
        .lock()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
    let unsent = queue.lock().map(|q| q.len()).unwrap_or(0);
    for failure in &tally.failures {
        eprintln!("failed: {failure}");
    }
    let failed = total_files - tally.sent;
    println!(
        "sent {}/{} files ({:.1} MB) in {:.2} s: {:.1} images/s, {:.1} MB/s; {} failed{}{}",
        tally.sent,
        total_files,
        tally.bytes as f64 / 1e6,
        elapsed,
        tally.sent as f64 / elapsed,
        tally.bytes as f64 / 1e6 / elapsed,
        failed,
        if unsent > 0 {
            format!(" ({unsent} never sent)")
        } else {
            String::new()
        },
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; {} skipped (not DICOM)", skipped.len())
        },
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        collect_files(&entry, out)?;
    }
    Ok(())
}
