//! The asynchronous operations window (DICOM PS3.7 D.3.3.3) on the way to
//! a workstation behind a long link: where the workstation negotiates one,
//! the forwarder sends the next images before the response to the last
//! comes back, and everything still arrives once, identical.
//!
//! DCMTK's storescp negotiates no window (the other forwarding tests show
//! the forwarder then sends one image at a time, as before). The receivers
//! here are pynetdicom, which performs queued requests in order but always
//! answers a window of (1, 1) (its documentation says so): the test widens
//! that answer to 16, the rest of its DIMSE stack untouched; and telerad's
//! own receiver, as a second telerad would take a study.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;
use telerad_fixtures::slow_link::{LinkShape, SlowLink};
use telerad_scp::FileToSend;
use telerad_scp::scu::Negotiation;
use telerad_store::outbox::{Destination, JobState};

telerad_fixtures::on_every_backend!(
    a_workstation_taking_a_window_gets_the_next_image_before_answering_the_last,
    a_second_telerad_takes_a_pipelined_study_whole,
);

const LONG: Duration = Duration::from_secs(60);
const SLICES: usize = 24;

/// 15 ms each way, 8 MB/s: a radiologist's home on a fibre line.
fn home_link(port: u16) -> SlowLink {
    SlowLink::start(
        ([127, 0, 0, 1], port).into(),
        LinkShape {
            one_way: Duration::from_millis(15),
            rate: 8_000_000,
        },
    )
    .expect("a slow link")
}

fn synthetic_ct(dir: &Path) -> (SyntheticStudy, Vec<PathBuf>) {
    let study = SyntheticStudy::ct(SLICES);
    let files = study
        .write_to(&dir.join(format!("ct-{}", study.study_instance_uid)))
        .expect("write a synthetic CT");
    (study, files)
}

/// pynetdicom as a storage SCP answering a window of 16 (the requester may
/// invoke 16, PS3.7 D.3.3.3.1): writes each data
/// set as received, and notes how many complete requests were already
/// queued behind the one it is handling (the first waits up to 5 s for
/// one to arrive). Exits after `count` images.
const RECEIVER: &str = r#"
import json, os, sys, threading, time
from pynetdicom import AE, evt, StoragePresentationContexts, acse
from pynetdicom.pdu_primitives import AsynchronousOperationsWindowNegotiation

port, out_dir, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
asked, queued, received, done = [], [], [], threading.Event()

def window(self):
    asked.append(list(self.requestor.asynchronous_operations))
    item = AsynchronousOperationsWindowNegotiation()
    item.maximum_number_operations_invoked = 16
    item.maximum_number_operations_performed = 1
    return item
acse.ACSE._check_async_ops = window

def on_store(event):
    waiting = event.assoc.dimse.msg_queue
    if not received:
        deadline = time.time() + 5
        while waiting.qsize() == 0 and time.time() < deadline:
            time.sleep(0.005)
    queued.append(waiting.qsize())
    sop = event.request.AffectedSOPInstanceUID
    with open(os.path.join(out_dir, sop + ".dcm"), "wb") as f:
        f.write(event.encoded_dataset(include_meta=True))
    received.append(sop)
    if len(received) >= count:
        done.set()
    return 0x0000

ae = AE(ae_title="HOME_WS")
ae.supported_contexts = StoragePresentationContexts
server = ae.start_server(("127.0.0.1", port), block=False,
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
print("ready", flush=True)
done.wait(60)
# Until telerad has had the last answers and released: going away first
# would lose them, and telerad would send those images again.
deadline = time.time() + 10
while server.active_associations and time.time() < deadline:
    time.sleep(0.02)
server.shutdown()
print(json.dumps({"asked": asked, "max_queued": max(queued or [0]), "received": len(received)}))
"#;

async fn a_workstation_taking_a_window_gets_the_next_image_before_answering_the_last(
    backend: &Backend,
) {
    let archive = TestArchive::open(backend).await;
    let (study, files) = synthetic_ct(archive.dir.path());
    archive.store_all(&files).await;
    let out = archive.dir.path().join("home");
    std::fs::create_dir_all(&out).expect("a folder");
    let port = free_port();
    let mut receiver = Command::new("python3")
        .args(["-c", RECEIVER, &port.to_string()])
        .arg(&out)
        .arg(SLICES.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start pynetdicom");
    let mut stdout = BufReader::new(receiver.stdout.take().expect("its output"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read its first line");
    assert_eq!(line.trim(), "ready");

    let link = home_link(port);
    let outbox = archive.outbox(quick_retries(5));
    outbox
        .enqueue_study(
            &study.study_instance_uid,
            &Destination {
                name: "dr-home".into(),
                ae_title: "HOME_WS".into(),
                host: "127.0.0.1".into(),
                port: link.port,
            },
        )
        .await
        .expect("enqueue");
    // One association: what the window does is not hidden by a second.
    let forwarder = RunningForwarder::start(&outbox, &archive, 1);
    let jobs = wait_for_state(&outbox, &study.study_instance_uid, JobState::Sent, LONG).await;
    forwarder.stop().await;

    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read its report");
    let _ = receiver.wait();
    let report: serde_json::Value =
        serde_json::from_str(rest.trim()).unwrap_or_else(|e| panic!("{e}: {rest:?}"));
    assert_eq!(report["asked"][0], serde_json::json!([16, 1]), "{report}");
    assert_eq!(report["received"], SLICES, "{report}");
    assert!(
        report["max_queued"].as_u64().unwrap_or(0) >= 1,
        "no request came before the response to the one before: {report}"
    );
    for job in &jobs {
        assert_eq!(job.attempts, 1, "{job:?}");
        assert!(!job.possible_duplicate, "{job:?}");
        let got = out.join(format!("{}.dcm", job.sop_instance_uid));
        assert_eq!(
            dataset_bytes(&got),
            dataset_bytes(&archive.stored_file(&job.path)),
            "{}",
            job.sop_instance_uid
        );
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("read a folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// A second telerad's receiver, as a hub or a second hospital runs it.
struct Hub {
    archive: Arc<telerad_store::Archive>,
    port: u16,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Hub {
    async fn start() -> Hub {
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = format!(
            r#"
[dicom]
ae_title = "HUB"

[storage]
data_dir = "{data}"
database_url = "sqlite://{db}?mode=rwc"

[[sites]]
name = "spoke"
ae_titles = ["{TELERAD_AE}"]
allowed_networks = ["127.0.0.0/8"]
time_zone = "Europe/Paris"
"#,
            data = dir.path().join("data").display(),
            db = dir.path().join("index.db").display(),
        );
        let config = Arc::new(telerad_config::Config::from_toml_str(&config).expect("a config"));
        let clock: Arc<dyn telerad_store::Clock> = Arc::new(telerad_store::SystemClock);
        let archive = Arc::new(
            telerad_store::Archive::open(&config, clock.clone())
                .await
                .expect("open the hub's archive"),
        );
        let database = archive.index().database().clone();
        let context = telerad_scp::AssociationContext {
            policy: telerad_scp::Policy::from_config(config),
            archive: archive.clone(),
            artim_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            sites: Default::default(),
            outbox: Arc::new(telerad_store::outbox::Outbox::new(
                database.clone(),
                quick_retries(1),
            )),
            commitment_reports: Arc::new(
                telerad_store::commitment_reports::CommitmentReports::new(database, clock),
            ),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let port = listener.local_addr().expect("its address").port();
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        let scp = telerad_scp::Scp::new(listener, context, 8, Duration::from_secs(2));
        let task = tokio::spawn(scp.run(rx));
        Hub {
            archive,
            port,
            shutdown,
            task,
            _dir: dir,
        }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

async fn a_second_telerad_takes_a_pipelined_study_whole(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let (study, files) = synthetic_ct(archive.dir.path());
    archive.store_all(&files).await;
    let hub = Hub::start().await;
    let link = home_link(hub.port);

    // The two telerads agree on a window: the hub performs 16.
    let destination = telerad_scp::Destination {
        ae_title: "HUB".into(),
        address: format!("127.0.0.1:{}", link.port),
    };
    let verification = [(
        telerad_dicom::sop_class::VERIFICATION.to_string(),
        telerad_dicom::transfer_syntax::IMPLICIT_VR_LITTLE_ENDIAN.to_string(),
    )];
    let probe = telerad_scp::ClientAssociation::connect_as(
        TELERAD_AE,
        &destination,
        &verification,
        Negotiation {
            operations_window: 32,
            ..Negotiation::default()
        },
        LONG,
        None,
    )
    .await
    .expect("associate with the hub");
    assert_eq!(probe.operations_window(), 16);
    probe.release().await.expect("release");

    let outbox = archive.outbox(quick_retries(5));
    outbox
        .enqueue_study(
            &study.study_instance_uid,
            &Destination {
                name: "hub".into(),
                ae_title: "HUB".into(),
                host: "127.0.0.1".into(),
                port: link.port,
            },
        )
        .await
        .expect("enqueue");
    let forwarder = RunningForwarder::start(&outbox, &archive, 1);
    let jobs = wait_for_state(&outbox, &study.study_instance_uid, JobState::Sent, LONG).await;
    forwarder.stop().await;

    // Each image is in the hub's archive, once, with the same data set.
    let mut held: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in files_under(&hub.archive.layout().studies_dir()) {
        let file = FileToSend::read(&path).expect("a stored file");
        assert!(
            held.insert(file.sop_instance_uid.clone(), path).is_none(),
            "{} stored twice",
            file.sop_instance_uid
        );
    }
    assert_eq!(held.len(), SLICES);
    for job in &jobs {
        assert_eq!(job.attempts, 1, "{job:?}");
        assert_eq!(
            dataset_bytes(&held[&job.sop_instance_uid]),
            dataset_bytes(&archive.stored_file(&job.path)),
        );
    }
    hub.stop().await;
}
