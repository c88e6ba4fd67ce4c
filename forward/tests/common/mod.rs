//! The forwarding tests' harness: a real archive (storage folder and index
//! database: SQLite, or a fresh PostgreSQL database per test when
//! `TELERAD_TEST_POSTGRES_URL` is set) filled through the same commit path
//! as received instances, and DCMTK `storescp` as the radiologist's
//! workstation on a free port.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use telerad_scp::FileToSend;
use telerad_store::outbox::{Destination, ForwardJob, JobState, Outbox, RetryPolicy};
use telerad_store::{Archive, InstanceHeader, Stored, SystemClock};
use tempfile::TempDir;
use tokio::sync::watch;

// Each test binary compiles this module; not all of them use every name.
#[allow(unused_imports)]
pub use telerad_fixtures::database::{Backend, POSTGRES_URL_VAR, PgDatabase};
#[allow(unused_imports)]
pub use telerad_fixtures::harness::{dataset_bytes, runtime};
pub const SITE: &str = "site-a";
pub const SENDER_AE: &str = "SITE_A";
pub const TELERAD_AE: &str = "TELERAD";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// telerad's storage: a folder and an index database, opened as the
/// server opens them.
pub struct TestArchive {
    pub dir: TempDir,
    pub database_url: String,
    pub archive: Arc<Archive>,
    _pg: Option<PgDatabase>,
}

impl TestArchive {
    pub async fn open(backend: &Backend) -> TestArchive {
        let dir = tempfile::Builder::new()
            .prefix("telerad-fwd-")
            .tempdir()
            .expect("a temp dir");
        let (database_url, pg) = match backend {
            Backend::Sqlite => (
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("index.db").display()
                ),
                None,
            ),
            Backend::Postgres { admin_url } => {
                let db = PgDatabase::create(admin_url).await;
                (db.url.clone(), Some(db))
            }
        };
        let config = format!(
            r#"
[storage]
data_dir = "{data_dir}"
database_url = "{database_url}"

[[sites]]
name = "{SITE}"
ae_titles = ["{SENDER_AE}"]
allowed_networks = []
time_zone = "Europe/Paris"
"#,
            data_dir = dir.path().join("data").display(),
        );
        let config = telerad_config::Config::from_toml_str(&config).expect("a valid test config");
        let archive = Archive::open(&config, Arc::new(SystemClock))
            .await
            .expect("open the archive");
        TestArchive {
            dir,
            database_url,
            archive: Arc::new(archive),
            _pg: pg,
        }
    }

    /// Stores a Part 10 file as if a hospital had sent it: its data set
    /// bytes through `Archive::begin`/`commit`.
    pub async fn store(&self, path: &Path) -> Stored {
        let file = FileToSend::read(path).unwrap_or_else(|e| panic!("{e}"));
        let bytes = dataset_bytes(path);
        let mut pending = self
            .archive
            .begin(InstanceHeader {
                sop_class_uid: file.sop_class_uid.clone(),
                sop_instance_uid: file.sop_instance_uid.clone(),
                transfer_syntax_uid: file.transfer_syntax_uid.clone(),
                calling_ae_title: SENDER_AE.into(),
            })
            .expect("begin storing");
        pending.write(&bytes);
        self.archive
            .commit(pending, SITE)
            .await
            .unwrap_or_else(|e| panic!("store {}: {e}", path.display()))
    }

    pub async fn store_all(&self, paths: &[PathBuf]) {
        for path in paths {
            self.store(path).await;
        }
    }

    /// The outbox on this archive's database.
    pub fn outbox(&self, policy: RetryPolicy) -> Arc<Outbox> {
        Arc::new(Outbox::new(self.archive.index().database().clone(), policy))
    }

    /// The stored file of the latest version of an instance.
    pub fn stored_file(&self, relative: &str) -> PathBuf {
        self.archive.layout().absolute(relative)
    }
}

/// Tiny delays, so that retries happen within a test.
pub fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(50),
        max_delay: Duration::from_millis(300),
        max_attempts,
    }
}

/// A running forwarder, stoppable gracefully or killed.
pub struct RunningForwarder {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningForwarder {
    pub fn start(
        outbox: &Arc<Outbox>,
        archive: &TestArchive,
        associations: usize,
    ) -> RunningForwarder {
        RunningForwarder::start_sending(
            outbox,
            archive,
            associations,
            telerad_forward::forwarder::Sender::plain(TELERAD_AE),
        )
    }

    /// The same with a sender of the test's making (compression, TLS).
    pub fn start_sending(
        outbox: &Arc<Outbox>,
        archive: &TestArchive,
        associations: usize,
        sender: telerad_forward::forwarder::Sender,
    ) -> RunningForwarder {
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(telerad_forward::forwarder::run_forwarder(
            outbox.clone(),
            archive.archive.clone(),
            sender,
            associations,
            rx,
        ));
        RunningForwarder { shutdown, task }
    }

    /// The same, returning once the forwarder's start-up recovery is done:
    /// from then on it takes back no claim another forwarder holds.
    pub async fn start_recovered(
        outbox: &Arc<Outbox>,
        archive: &TestArchive,
        associations: usize,
    ) -> RunningForwarder {
        telerad_forward::forwarder::recover_at_start_up(outbox).await;
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(telerad_forward::forwarder::serve_outbox(
            outbox.clone(),
            archive.archive.clone(),
            telerad_forward::forwarder::Sender::plain(TELERAD_AE),
            associations,
            rx,
        ));
        RunningForwarder { shutdown, task }
    }

    /// Asks it to stop and waits until it has.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the forwarder stops within 60 s")
            .expect("the forwarder task ends cleanly");
    }

    /// A crash: the task is dropped wherever it is, nothing more is
    /// written to the database or the network.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// DCMTK `storescp` playing a radiologist's workstation.
pub struct Storescp {
    child: Option<Child>,
    pub ae_title: String,
    pub port: u16,
    pub out: PathBuf,
    log: PathBuf,
    args: Vec<String>,
}

impl Storescp {
    /// `+B`: files are written exactly as received (so a data set can be
    /// compared byte for byte); `+uf`: a re-sent instance gets a file of
    /// its own, so duplicates can be counted.
    pub fn start(dir: &Path, ae_title: &str, extra: &[&str]) -> Storescp {
        Storescp::start_on(dir, ae_title, free_port(), extra)
    }

    pub fn start_on(dir: &Path, ae_title: &str, port: u16, extra: &[&str]) -> Storescp {
        let out = dir.join(format!("received-{ae_title}-{port}"));
        std::fs::create_dir_all(&out).expect("a folder for storescp");
        let mut scp = Storescp {
            child: None,
            ae_title: ae_title.to_string(),
            port,
            log: dir.join(format!("storescp-{ae_title}-{port}.log")),
            out,
            args: extra.iter().map(|s| (*s).to_string()).collect(),
        };
        scp.launch();
        scp
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("a storescp log");
        let child = telerad_fixtures::dcmtk::command("storescp")
            .args(["-aet", &self.ae_title, "+B", "+uf", "-od"])
            .arg(&self.out)
            .args(&self.args)
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run storescp (is DCMTK installed? `apt-get install dcmtk`): {e}")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "storescp not listening after 10 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn destination(&self, name: &str) -> Destination {
        Destination {
            name: name.to_string(),
            ae_title: self.ae_title.clone(),
            host: "127.0.0.1".into(),
            port: self.port,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Files written so far (complete ones: storescp writes each before it
    /// answers, so a file counted here was acknowledged or is about to be).
    pub fn received(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// SOP Instance UID → files received for it.
    pub fn received_by_sop(&self) -> std::collections::BTreeMap<String, Vec<PathBuf>> {
        let mut out: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
        for path in self.received() {
            let file =
                FileToSend::read(&path).unwrap_or_else(|e| panic!("received file unreadable: {e}"));
            out.entry(file.sop_instance_uid).or_default().push(path);
        }
        out
    }

    pub async fn wait_for_files(&self, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.received().len();
            if n >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "storescp {} has {n} of {count} files after {timeout:?}:\n{}",
                self.ae_title,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops it (SIGKILL; it keeps no state worth a clean stop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and folder.
    pub fn restart(&mut self, extra: &[&str]) {
        self.stop();
        self.args = extra.iter().map(|s| (*s).to_string()).collect();
        self.launch();
    }
}

impl Drop for Storescp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `check` until it returns `Some`, or fails with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn jobs_of(outbox: &Outbox, study_instance_uid: &str) -> Vec<ForwardJob> {
    outbox
        .jobs_of_study(study_instance_uid)
        .await
        .expect("list the study's jobs")
}

/// Waits until every job of the study is in `state`, and returns them.
pub async fn wait_for_state(
    outbox: &Outbox,
    study_instance_uid: &str,
    state: JobState,
    timeout: Duration,
) -> Vec<ForwardJob> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let jobs = jobs_of(outbox, study_instance_uid).await;
        if !jobs.is_empty() && jobs.iter().all(|j| j.state == state) {
            return jobs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "jobs of {study_instance_uid} not all {state} after {timeout:?}: {:#?}",
            jobs.iter()
                .map(|j| (j.id, j.state, j.attempts, j.last_error.clone()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
