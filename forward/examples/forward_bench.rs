//! The forwarder end to end, for `bench/wan.sh`: stores the files of one
//! study in a fresh archive (SQLite in a temporary folder, as `telerad
//! serve` opens it), enqueues the study for one workstation and times the
//! forwarder (claims, marks, C-STOREs, records) from its start until every
//! job is `sent`. Prints the seconds on standard output.
//!
//! cargo run --release -p telerad-forward --example forward_bench -- \
//!     --to AE@HOST:PORT [--associations N] [--compress] [--window N] FOLDER

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use telerad_forward::forwarder::{Sender, run_forwarder};
use telerad_scp::FileToSend;
use telerad_store::outbox::{Destination, JobState, Outbox, RetryPolicy};
use telerad_store::{Archive, InstanceHeader, SystemClock};

const SITE: &str = "bench";
const SENDER_AE: &str = "MODALITY";

struct Args {
    ae_title: String,
    host: String,
    port: u16,
    associations: usize,
    compress: bool,
    /// The asynchronous operations window proposed (1: none).
    window: u16,
    folder: PathBuf,
}

fn parse() -> Result<Args, String> {
    let mut to = None;
    let mut associations = 2;
    let mut compress = false;
    let mut window = telerad_forward::forwarder::DEFAULT_OPERATIONS_WINDOW;
    let mut folder = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--to" => to = args.next(),
            "--associations" => {
                associations = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--associations takes a number")?
            }
            "--compress" => compress = true,
            "--window" => {
                window = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--window takes a number")?
            }
            other => folder = Some(PathBuf::from(other)),
        }
    }
    let to = to.ok_or("--to AE@HOST:PORT is required")?;
    let (ae_title, address) = to.split_once('@').ok_or("--to AE@HOST:PORT")?;
    let (host, port) = address.rsplit_once(':').ok_or("--to AE@HOST:PORT")?;
    Ok(Args {
        ae_title: ae_title.into(),
        host: host.into(),
        port: port.parse().map_err(|_| "a port number")?,
        associations,
        compress,
        window,
        folder: folder.ok_or("a folder of DICOM files")?,
    })
}

fn files_under(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .expect("read the folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[tokio::main]
async fn main() {
    let args = parse().unwrap_or_else(|e| {
        eprintln!("forward_bench: {e}");
        std::process::exit(2)
    });
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = format!(
        "[storage]\ndata_dir = \"{}\"\ndatabase_url = \"sqlite://{}?mode=rwc\"\n\n\
         [[sites]]\nname = \"{SITE}\"\nae_titles = [\"{SENDER_AE}\"]\nallowed_networks = []\n\
         time_zone = \"Europe/Paris\"\n",
        dir.path().join("data").display(),
        dir.path().join("index.db").display()
    );
    let config = telerad_config::Config::from_toml_str(&config).expect("a valid config");
    let archive = Arc::new(
        Archive::open(&config, Arc::new(SystemClock))
            .await
            .expect("open the archive"),
    );
    let mut study = None;
    for path in files_under(&args.folder) {
        let file = FileToSend::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut pending = archive
            .begin(InstanceHeader {
                sop_class_uid: file.sop_class_uid.clone(),
                sop_instance_uid: file.sop_instance_uid.clone(),
                transfer_syntax_uid: file.transfer_syntax_uid.clone(),
                calling_ae_title: SENDER_AE.into(),
            })
            .expect("begin storing");
        pending.write(&telerad_fixtures::harness::dataset_bytes(&path));
        archive.commit(pending, SITE).await.expect("store");
        if study.is_none() {
            let object = dicom_object::open_file(&path).expect("a DICOM file");
            let element = object
                .element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID)
                .expect("a Study Instance UID");
            let uid = element.to_str().expect("a text value");
            study = Some(uid.trim_end_matches(['\0', ' ']).to_string());
        }
    }
    let study = study.expect("at least one file");
    let outbox = Arc::new(Outbox::new(
        archive.index().database().clone(),
        RetryPolicy {
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(1),
            max_attempts: 1,
        },
    ));
    let destination = Destination {
        name: "bench".into(),
        ae_title: args.ae_title.clone(),
        host: args.host.clone(),
        port: args.port,
    };
    outbox
        .enqueue_study(&study, &destination)
        .await
        .expect("enqueue");
    let mut sender =
        Sender::plain("TELERAD").with_operations_window(&args.host, args.port, args.window);
    if args.compress {
        sender = sender.with_compression(&args.host, args.port);
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let forwarder = tokio::spawn(run_forwarder(
        outbox.clone(),
        archive.clone(),
        sender,
        args.associations,
        stopped,
    ));
    loop {
        let jobs = outbox.jobs_of_study(&study).await.expect("list the jobs");
        if jobs.iter().all(|j| j.state == JobState::Sent) {
            break;
        }
        if let Some(dead) = jobs.iter().find(|j| j.state == JobState::Dead) {
            eprintln!("forward_bench: a job failed: {:?}", dead.last_error);
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    let _ = forwarder.await;
    println!("{:.3}", elapsed.as_secs_f64());
}
