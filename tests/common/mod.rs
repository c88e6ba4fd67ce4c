//! The end-to-end harness: a real `telerad serve` process on free ports, a
//! real database (SQLite file, or a fresh PostgreSQL database per server
//! when `TELERAD_TEST_POSTGRES_URL` is set), real peers (DCMTK, telerad's
//! own SCU), and the helpers the tests share to look at what a user would
//! see: the HTTP API, the files on disk, the index.

#![allow(dead_code)]

pub mod dicom;

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

// Each test binary compiles this module; not all of them use every name.
#[allow(unused_imports)]
pub use telerad_fixtures::database::{Backend, POSTGRES_URL_VAR, PgDatabase};
pub const SERVER_AE: &str = "TELERAD";

/// Runs a test body against SQLite and, when configured, PostgreSQL; the
/// PostgreSQL variants are reported ignored when it is not (see `build.rs`).
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&$crate::common::Backend::Sqlite) } )*
        }
        mod postgres {
            $(
                #[test]
                #[cfg_attr(not(telerad_postgres), ignore = "TELERAD_TEST_POSTGRES_URL is not set")]
                fn $name() {
                    super::$name(&$crate::common::Backend::required_postgres())
                }
            )*
        }
    };
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the test")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn rand_suffix() -> String {
    telerad_fixtures::database::unique_suffix()
}

/// Settings a test may change; the rest is the harness's fixed config.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub quiet_period_secs: u64,
    /// Where received files go; a tmpfs for the disk-full test.
    pub data_dir: Option<PathBuf>,
    pub extra_dicom: String,
    pub max_associations: usize,
    pub artim_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    /// Appended to the configuration: radiologists, rota, rules, SLA.
    pub extra_config: String,
    /// `--clock-start`: the instant the server believes it is at start-up.
    pub clock_start: Option<String>,
    /// Another server's database, to run two processes on one index.
    pub shared_database_url: Option<String>,
    /// Keys added to site-a's table (its e-mail, its webhook).
    pub site_a_extra: String,
    /// Keys added to `[http]`.
    pub extra_http: String,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            quiet_period_secs: 2,
            data_dir: None,
            extra_dicom: String::new(),
            max_associations: 32,
            artim_timeout_secs: 5,
            idle_timeout_secs: 30,
            extra_config: String::new(),
            clock_start: None,
            shared_database_url: None,
            site_a_extra: String::new(),
            extra_http: String::new(),
        }
    }
}

#[derive(Debug)]
pub struct TestServer {
    child: Option<Child>,
    pub dir: TempDir,
    pub dicom_port: u16,
    pub http_port: u16,
    pub database_url: String,
    pub data_dir: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    clock_start: Option<String>,
    /// An administrator's API token, made on first use.
    admin_token: std::sync::OnceLock<String>,
    _pg: Option<PgDatabase>,
}

/// Starts `telerad serve` with `args` (its log on a pipe) and reads the
/// log until the "telerad ready" line; the process, and the lines read.
pub fn serve_until_ready(args: &[&std::ffi::OsStr]) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(telerad_bin())
        .arg("serve")
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start telerad serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let ready = line.contains("telerad ready");
        lines.push(line);
        if ready {
            break;
        }
    }
    let log = lines.join("\n");
    assert!(log.contains("telerad ready"), "never ready:\n{log}");
    (child, log)
}

pub fn telerad_bin() -> &'static str {
    env!("CARGO_BIN_EXE_telerad")
}

impl TestServer {
    pub fn start(backend: &Backend) -> TestServer {
        TestServer::start_with(backend, ServerOptions::default())
    }

    pub fn start_with(backend: &Backend, options: ServerOptions) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("telerad-e2e-")
            .tempdir()
            .expect("a temp dir");
        let data_dir = options
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let (database_url, pg) = match (&options.shared_database_url, backend) {
            (Some(url), _) => (url.clone(), None),
            // Kept outside the data dir so a full data disk does not also
            // take the index down (the disk-full test wants the file write
            // to be what fails).
            (None, Backend::Sqlite) => (
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("index.db").display()
                ),
                None,
            ),
            (None, Backend::Postgres { admin_url }) => {
                let db = PgDatabase::create_blocking(admin_url);
                (db.url.clone(), Some(db))
            }
        };
        let dicom_port = free_port();
        let http_port = free_port();
        let config = format!(
            r#"
[dicom]
ae_title = "{SERVER_AE}"
bind = "127.0.0.1"
port = {dicom_port}
max_associations = {max_assoc}
artim_timeout_secs = {artim}
idle_timeout_secs = {idle}
shutdown_grace_secs = 5
{extra_dicom}

[http]
bind = "127.0.0.1"
port = {http_port}
{extra_http}

[storage]
data_dir = "{data_dir}"
database_url = "{database_url}"

[studies]
default_quiet_period_secs = {quiet}

[[sites]]
name = "site-a"
ae_titles = ["STORESCU", "ECHOSCU", "TELERAD_SCU", "SITE_A"]
allowed_networks = []
time_zone = "Europe/Paris"
{site_a_extra}

[[sites]]
name = "site-b"
ae_titles = ["SITE_B"]
allowed_networks = ["127.0.0.0/8"]
time_zone = "America/Martinique"

[[sites]]
name = "site-c"
ae_titles = ["SITE_C"]
allowed_networks = ["127.0.0.0/8"]
time_zone = "Europe/Paris"

[[sites]]
name = "site-far"
ae_titles = ["SITE_FAR"]
allowed_networks = ["10.99.0.0/16"]
time_zone = "Europe/Paris"

{extra_config}
"#,
            extra_config = options.extra_config,
            site_a_extra = options.site_a_extra,
            extra_http = options.extra_http,
            max_assoc = options.max_associations,
            artim = options.artim_timeout_secs,
            idle = options.idle_timeout_secs,
            extra_dicom = options.extra_dicom,
            data_dir = data_dir.display(),
            quiet = options.quiet_period_secs,
        );
        let config_path = dir.path().join("telerad.toml");
        std::fs::write(&config_path, config).expect("write the test config");
        let log_path = dir.path().join("server.log");
        let mut server = TestServer {
            child: None,
            dicom_port,
            http_port,
            database_url,
            data_dir,
            config_path,
            log_path,
            clock_start: options.clock_start.clone(),
            admin_token: std::sync::OnceLock::new(),
            dir,
            _pg: pg,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the server log");
        let mut command = Command::new(telerad_bin());
        command.args(["serve", "--config"]).arg(&self.config_path);
        if let Some(start) = &self.clock_start {
            command.args(["--clock-start", start]);
        }
        let stdout = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path.with_extension("stdout"))
            .expect("open the server's standard output");
        let child = command
            .env("RUST_LOG", "info,telerad_scp=debug")
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .expect("start telerad serve");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "telerad serve exited with {status} during start-up:\n{}",
                    self.log()
                );
            }
            if let Ok((200, _)) = self.try_get("/healthz") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "telerad serve not ready after 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// What the server printed on its standard output (not its log).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.log_path.with_extension("stdout")).unwrap_or_default()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("a running server")
    }

    /// SIGKILL: the crash the durability rules are about.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and how the process ended.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a running server");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "telerad did not stop within 30 s of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        self.launch();
    }

    pub fn dicom_address(&self) -> String {
        format!("127.0.0.1:{}", self.dicom_port)
    }

    pub fn destination(&self) -> telerad_scp::Destination {
        telerad_scp::Destination {
            ae_title: SERVER_AE.into(),
            address: self.dicom_address(),
        }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into()
    }

    /// An administrator's API token (`telerad token create admin`, on the
    /// account the first start created).
    pub fn admin_token(&self) -> String {
        self.admin_token
            .get_or_init(|| self.create_token("admin"))
            .clone()
    }

    /// Runs `telerad ARGS… --config <this server's>`, expecting success;
    /// its standard output.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.cli_output(args, stdin);
        assert!(
            output.status.success(),
            "telerad {args:?}: {}",
            text(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `telerad ARGS… --config <this server's>`, expecting a refusal;
    /// what it said.
    pub fn cli_refused(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.cli_output(args, stdin);
        assert!(!output.status.success(), "telerad {args:?} succeeded");
        text(&output)
    }

    fn cli_output(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let mut command = Command::new(telerad_bin());
        command
            .args(args)
            .arg("--config")
            .arg(&self.config_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("run telerad");
        if let Some(mut pipe) = child.stdin.take() {
            use std::io::Write;
            if let Some(text) = stdin {
                pipe.write_all(text.as_bytes())
                    .expect("write to telerad's stdin");
            }
        }
        child.wait_with_output().expect("telerad's output")
    }

    /// A new API token for `login`.
    pub fn create_token(&self, login: &str) -> String {
        self.cli(&["token", "create", login, "--name", "tests"], None)
            .trim()
            .to_string()
    }

    /// Creates an account (`telerad user add LOGIN ARGS…`) and returns an
    /// API token for it.
    pub fn user_token(&self, login: &str, args: &[&str]) -> String {
        let mut all = vec!["user", "add", login];
        all.extend_from_slice(args);
        self.cli(&all, Some("a password for the tests\n"));
        self.create_token(login)
    }

    /// A request with an optional bearer token and JSON body: (status,
    /// JSON body, or the text as a JSON string).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, Value), String> {
        self.request_with(method, path, token, body, &[])
            .map(|(status, _, json)| (status, json))
    }

    /// [`Self::request`] with more request headers; the answer's headers
    /// too.
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, ureq::http::HeaderMap, Value), String> {
        let url = format!("http://127.0.0.1:{}{path}", self.http_port);
        let agent = Self::agent();
        let bearer = token.map(|t| format!("Bearer {t}"));
        let result = match (method, body) {
            ("GET", _) => {
                let mut request = agent.get(&url);
                if let Some(b) = &bearer {
                    request = request.header("authorization", b);
                }
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            (_, body) => {
                let mut request = match method {
                    "POST" => agent.post(&url),
                    "PUT" => agent.put(&url),
                    "PATCH" => agent.patch(&url),
                    other => panic!("method {other} is not used by the tests"),
                };
                if let Some(b) = &bearer {
                    request = request.header("authorization", b);
                }
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                match body {
                    Some(json) => request
                        .header("content-type", "application/json")
                        .send(json),
                    None => request.send_empty(),
                }
            }
        };
        let mut response = result.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, response.headers().clone(), json))
    }

    /// A POST of raw bytes of `content_type`: (status, JSON body, or the
    /// text as a JSON string).
    pub fn post_bytes(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}{path}", self.http_port);
        let mut request = Self::agent()
            .post(&url)
            .header("content-type", content_type);
        if let Some(token) = token {
            request = request.header("authorization", &format!("Bearer {token}"));
        }
        let mut response = request.send(body).expect("an answer");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("a body");
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// GET as an administrator (`/healthz` without a token: it is open,
    /// and polled before the first account exists).
    pub fn try_get(&self, path: &str) -> Result<(u16, Value), String> {
        let token = (path != "/healthz").then(|| self.admin_token());
        self.request("GET", path, token.as_deref(), None)
    }

    /// POST as an administrator.
    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let token = self.admin_token();
        self.request("POST", path, Some(&token), Some(body))
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.log()))
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.try_get(path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()))
    }

    /// GET with `token`, or none.
    pub fn get_as(&self, token: Option<&str>, path: &str) -> (u16, Value) {
        self.request("GET", path, token, None)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()))
    }

    /// POST with `token`, or none.
    pub fn post_as(&self, token: Option<&str>, path: &str, body: &str) -> (u16, Value) {
        self.request("POST", path, token, Some(body))
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.log()))
    }

    pub fn study(&self, study_uid: &str) -> Value {
        let (status, body) = self.get(&format!("/api/studies/{study_uid}"));
        assert_eq!(status, 200, "GET study {study_uid}: {body}\n{}", self.log());
        body
    }

    /// Waits until the study has `count` instances and the given status.
    pub fn wait_for_study(
        &self,
        study_uid: &str,
        status: &str,
        count: u64,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (code, body) = self.get(&format!("/api/studies/{study_uid}"));
            if code == 200 && body["status"] == status && body["instance_count"] == count {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "study {study_uid} not {status} with {count} instances after {timeout:?}: {body}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Opens the index as the server sees it (the real store code).
    pub fn index(&self, rt: &tokio::runtime::Runtime) -> telerad_store::StudyIndex {
        let db = rt
            .block_on(telerad_store::Database::connect(&self.database_url))
            .expect("open the index database");
        telerad_store::StudyIndex::new(db)
    }

    /// Files still in `incoming/`: partial receptions.
    pub fn incoming_files(&self) -> Vec<PathBuf> {
        files_under(&self.data_dir.join("incoming"))
    }

    pub fn stored_files(&self) -> Vec<PathBuf> {
        files_under(&self.data_dir.join("studies"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Pushes `study` to the server with DCMTK's `storescu`, as the scanner
/// `calling_ae`.
pub fn storescu_push(
    server: &TestServer,
    study: &telerad_fixtures::SyntheticStudy,
    calling_ae: &str,
) {
    let dir = tempfile::tempdir().expect("a temp dir");
    study.write_to(dir.path()).expect("generate");
    let port = server.dicom_port.to_string();
    let out = run(telerad_fixtures::dcmtk::command("storescu")
        .args([
            "-aet",
            calling_ae,
            "-aec",
            SERVER_AE,
            "+sd",
            "127.0.0.1",
            &port,
        ])
        .arg(dir.path()));
    assert!(out.status.success(), "storescu: {}", text(&out));
}

/// Pushes `study` with `telerad push` as the scanner `calling_ae`, and
/// waits until the study is indexed whole.
pub fn telerad_push(
    server: &TestServer,
    calling_ae: &str,
    study: &telerad_fixtures::SyntheticStudy,
) {
    let dir = tempfile::tempdir().expect("a temp dir");
    study.write_to(dir.path()).expect("generate");
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination, "--calling-ae", calling_ae])
        .arg(dir.path()));
    assert!(out.status.success(), "{}", text(&out));
    let uid = &study.study_instance_uid;
    eventually("the study indexed", Duration::from_secs(30), || {
        let (status, body) = server.get(&format!("/api/studies/{uid}"));
        (status == 200 && body["instance_count"] == study.slices).then_some(())
    });
}

/// Polls `check` every 20 ms until it returns `Some`, and returns that; fails
/// the test with `what` (and the value `check` last saw, through `what`'s
/// caller) once `timeout` has passed.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not after {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A time of the HTTP API (RFC 3339, UTC) in Unix milliseconds; `None`
/// when the value is not such a time.
pub fn ms(value: &Value) -> Option<i64> {
    let text = value.as_str()?;
    assert!(text.ends_with('Z'), "API times are UTC: {text}");
    text.parse::<jiff::Timestamp>()
        .ok()
        .map(|at| at.as_millisecond())
}

/// Runs a peer program to completion, with a time limit.
pub fn run(command: &mut Command) -> Output {
    let program = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} (is DCMTK installed? `apt-get install dcmtk`): {e}")
        });
    child.wait_with_output().expect("peer output")
}

pub fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// DCMTK's storescp as a radiologist's workstation.
pub struct Workstation {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Workstation {
    pub fn start(ae_title: &str, port: u16) -> Workstation {
        let dir = tempfile::tempdir().expect("a temp dir");
        let child = telerad_fixtures::dcmtk::command("storescp")
            .args(["-aet", ae_title, "-od"])
            .arg(dir.path())
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start storescp (is DCMTK installed?)");
        Workstation { child, dir }
    }

    pub fn received(&self) -> usize {
        files_under(self.dir.path()).len()
    }

    pub fn wait_for(&self, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.received() < count {
            assert!(
                Instant::now() < deadline,
                "workstation got {} of {count} images",
                self.received()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Workstation {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
