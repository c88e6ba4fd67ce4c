//! Orthanc as a DICOMweb client of telerad: Debian's `orthanc` with its
//! DICOMweb plugin (`orthanc-dicomweb`), configured with telerad as a
//! remote DICOMweb server (`DicomWeb.Servers`, the site's token in its
//! `HttpHeaders`), searches telerad's studies through its plugin (QIDO-RS)
//! and retrieves one (WADO-RS) into its own store; the same server with a
//! token of another site finds nothing and retrieves nothing.
//!
//! Without Orthanc or its plugin installed the test is reported as ignored.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

const ORTHANC: &str = "/usr/sbin/Orthanc";
const PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

/// An Orthanc of its own: killed when dropped.
struct Orthanc {
    child: Child,
    http: u16,
    log: std::path::PathBuf,
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Orthanc {
    /// Starts Orthanc in `dir` with telerad's DICOMweb root as its server
    /// `telerad`, each request carrying the tokens given (by server name).
    fn start(dir: &Path, telerad_http: u16, tokens: &[(&str, &str)]) -> Orthanc {
        let (http, dicom) = (free_port(), free_port());
        let servers: serde_json::Map<String, Value> = tokens
            .iter()
            .map(|(name, token)| {
                let server = json!({
                    "Url": format!("http://127.0.0.1:{telerad_http}/dicom-web/"),
                    "HttpHeaders": { "Authorization": format!("Bearer {token}") },
                });
                (name.to_string(), server)
            })
            .collect();
        let storage = dir.join("orthanc-storage");
        let config = json!({
            "Name": "telerad-test",
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "HttpPort": http,
            "DicomPort": dicom,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "Plugins": [PLUGIN],
            "DicomWeb": { "Enable": true, "Servers": servers },
        });
        let config_path = dir.join("orthanc.json");
        std::fs::write(&config_path, config.to_string()).expect("write orthanc.json");
        let log = dir.join("orthanc.log");
        let child = Command::new(ORTHANC)
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("Orthanc's log"))
            .spawn()
            .expect("start Orthanc (apt-get install orthanc orthanc-dicomweb)");
        let orthanc = Orthanc { child, http, log };
        eventually("Orthanc listening", Duration::from_secs(30), || {
            orthanc.call("GET", "/system", None).ok()
        });
        orthanc
    }

    /// A call to Orthanc's REST API: the JSON answer, or the status and
    /// text of a refusal.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let url = format!("http://127.0.0.1:{}{path}", self.http);
        let answer = match (method, body) {
            ("GET", _) => agent.get(&url).call(),
            (_, Some(body)) => agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body.to_string()),
            (_, None) => agent.post(&url).send_empty(),
        };
        let mut answer = answer.map_err(|e| e.to_string())?;
        let status = answer.status().as_u16();
        let text = answer.body_mut().read_to_string().unwrap_or_default();
        if status != 200 {
            return Err(format!("{status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A tag's first value in a data set as Orthanc's plugin hands it back
/// (its own rendering of the DICOM JSON telerad sent: a single value is a
/// string, not an array).
fn first<'a>(set: &'a Value, tag: &str) -> Option<&'a str> {
    let value = &set[tag]["Value"];
    value.as_str().or_else(|| value[0].as_str())
}

/// The Study Instance UIDs of a QIDO-RS answer.
fn study_uids(found: &Value) -> Vec<String> {
    found
        .as_array()
        .map(|sets| {
            sets.iter()
                .filter_map(|set| first(set, "0020000D").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[cfg_attr(
    not(telerad_orthanc),
    ignore = "Orthanc or its DICOMweb plugin is not installed"
)]
fn orthanc_searches_and_retrieves_through_its_dicomweb_plugin() {
    let server = TestServer::start(&Backend::Sqlite);
    let ct = SyntheticStudy::ct(3);
    let other_site = SyntheticStudy::ct(1);
    telerad_push(&server, "SITE_A", &ct);
    telerad_push(&server, "SITE_B", &other_site);
    let site_a = server.user_token("clin-a", &["--role", "clinician", "--site", "site-a"]);
    let site_c = server.user_token("clin-c", &["--role", "clinician", "--site", "site-c"]);
    let orthanc = Orthanc::start(
        server.dir.path(),
        server.http_port,
        &[("telerad", &site_a), ("elsewhere", &site_c)],
    );
    let uid = ct.study_instance_uid.as_str();

    // QIDO-RS through the plugin: the site's study, not the other site's.
    let found = orthanc
        .call(
            "POST",
            "/dicom-web/servers/telerad/qido",
            Some(&json!({ "Uri": "/studies" })),
        )
        .unwrap_or_else(|e| panic!("QIDO-RS through Orthanc: {e}\n{}", orthanc.log()));
    assert_eq!(study_uids(&found), [uid], "{found}");
    let series = orthanc
        .call(
            "POST",
            "/dicom-web/servers/telerad/get",
            Some(&json!({ "Uri": format!("/studies/{uid}/series") })),
        )
        .unwrap_or_else(|e| panic!("series through Orthanc: {e}\n{}", orthanc.log()));
    assert_eq!(
        first(&series[0], "0020000E"),
        Some(ct.series_instance_uid.as_str()),
        "{series}"
    );

    // WADO-RS through the plugin: Orthanc stores the whole study.
    orthanc
        .call(
            "POST",
            "/dicom-web/servers/telerad/retrieve",
            Some(&json!({ "Resources": [{ "Study": uid }] })),
        )
        .unwrap_or_else(|e| panic!("WADO-RS through Orthanc: {e}\n{}", orthanc.log()));
    let found = orthanc
        .call(
            "POST",
            "/tools/find",
            Some(&json!({ "Level": "Instance", "Query": { "StudyInstanceUID": uid } })),
        )
        .expect("Orthanc's own search");
    let ids: Vec<&str> = found
        .as_array()
        .map(|ids| ids.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(ids.len(), ct.slices, "{found}");
    let mut sop_uids: Vec<String> = ids
        .iter()
        .map(|id| {
            let tags = orthanc
                .call("GET", &format!("/instances/{id}/simplified-tags"), None)
                .expect("an instance's tags");
            assert_eq!(tags["PatientID"], ct.patient_id, "{tags}");
            tags["SOPInstanceUID"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    sop_uids.sort();
    let mut sent: Vec<String> = (0..ct.slices).map(|i| ct.sop_instance_uid(i)).collect();
    sent.sort();
    assert_eq!(sop_uids, sent);

    // Another site's token: nothing found, nothing retrieved.
    let none = orthanc
        .call(
            "POST",
            "/dicom-web/servers/elsewhere/qido",
            Some(&json!({ "Uri": "/studies" })),
        )
        .unwrap_or_else(|e| panic!("QIDO-RS through Orthanc: {e}\n{}", orthanc.log()));
    assert_eq!(study_uids(&none), Vec::<String>::new(), "{none}");
    let refused = orthanc.call(
        "POST",
        "/dicom-web/servers/elsewhere/retrieve",
        Some(&json!({ "Resources": [{ "Study": other_site.study_instance_uid }] })),
    );
    let stored = orthanc
        .call(
            "POST",
            "/tools/find",
            Some(&json!({
                "Level": "Study",
                "Query": { "StudyInstanceUID": other_site.study_instance_uid },
            })),
        )
        .expect("Orthanc's own search");
    assert_eq!(
        stored,
        json!([]),
        "another site's study retrieved: {refused:?}"
    );
}
