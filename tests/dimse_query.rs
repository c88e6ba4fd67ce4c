//! Workstations and sites query telerad over DIMSE (Study Root C-FIND,
//! DICOM PS3.4 C.4.1), with DCMTK `findscu` (and pynetdicom) as the peer. A site's AE sees
//! its site's studies only; a radiologist's workstation sees what its
//! radiologist may read (the study given to them, the pool of their
//! sites), not a colleague's study nor another site's. Studies, series and
//! images are matched on the keys workstations send (wildcards, dates,
//! UIDs) and answered with the keys asked. Bad identifiers are refused with
//! a status, unknown AE titles with an association rejection; each query
//! is audited. The workstation then retrieves (C-MOVE, PS3.4 C.4.2, DCMTK
//! `movescu`) studies, series and images into its own receiver (DCMTK
//! `storescp`) or on its own association (C-GET, C.4.3, DCMTK `getscu`),
//! and nothing it may not read or to anywhere else.

mod common;

use common::*;
use dicom_dictionary_std::tags;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(
    workstations_and_sites_query_within_their_scope,
    a_workstation_retrieves_what_it_may_read
);

/// A Wednesday night in Paris: both radiologists are on duty.
const NIGHT: &str = "2026-03-18T03:00:00+01:00";

fn config(workstation_port: u16) -> String {
    format!(
        r#"
[[radiologists]]
id = "dr-neuro"
name = "Dr Neuro"
subspecialties = ["neuro"]
sites = ["site-a"]
max_open_studies = 10

[radiologists.workstation]
ae_title = "NEURO_WS"
host = "127.0.0.1"
port = {workstation_port}

[[radiologists]]
id = "dr-general"
name = "Dr General"
subspecialties = ["general"]
sites = ["site-a", "site-b"]
max_open_studies = 10

[rota]
time_zone = "Europe/Paris"

[[rota.shifts]]
radiologist = "dr-neuro"
role = "primary"
subspecialty = "neuro"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"

[[rota.shifts]]
radiologist = "dr-general"
role = "primary"
subspecialty = "general"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"

[[rules]]
name = "stroke-request"
stroke = true
subspecialty = "neuro"
priority = "stat"
"#
    )
}

fn study(patient_name: &str, patient: &str, slices: usize) -> SyntheticStudy {
    let mut study = SyntheticStudy::ct(slices);
    study.patient_name = patient_name.into();
    study.patient_id = patient.into();
    study.accession_number = format!("ACC-{patient}");
    study.study_date = "20260318".into();
    study
}

/// What `findscu` answered: the identifiers of the matches (in order) and
/// its output, which names the final status.
struct Answer {
    matches: Vec<dicom_object::DefaultDicomObject>,
    output: String,
    success: bool,
}

impl Answer {
    fn values(&self, tag: dicom_core::Tag) -> Vec<String> {
        self.matches
            .iter()
            .map(|m| {
                m.element(tag)
                    .ok()
                    .and_then(|e| e.to_str().ok())
                    .map(|v| v.trim_end_matches([' ', '\0']).to_string())
                    .unwrap_or_else(|| "<absent>".into())
            })
            .collect()
    }
}

fn findscu(server: &TestServer, calling: &str, keys: &[&str]) -> Answer {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut command = telerad_fixtures::dcmtk::command("findscu");
    command.args(["-v", "-S", "-aet", calling, "-aec", SERVER_AE, "-X", "-od"]);
    command.arg(dir.path());
    for key in keys {
        command.args(["-k", key]);
    }
    command.args(["127.0.0.1", &server.dicom_port.to_string()]);
    let out = run(&mut command);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("the output folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    Answer {
        matches: files
            .iter()
            .map(|f| dicom_object::open_file(f).unwrap_or_else(|e| panic!("{f:?}: {e}")))
            .collect(),
        output: text(&out),
        success: out.status.success(),
    }
}

/// (patient, reader) of the worklist, once its `n` studies are all given.
fn readers(server: &TestServer, admin: &str, n: usize) -> Vec<(String, String)> {
    eventually("the studies given", Duration::from_secs(30), || {
        let (status, page) = server.get_as(Some(admin), "/api/worklist?status=all");
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let readers: Vec<(String, String)> = items
            .iter()
            .map(|i| {
                let text = |v: &Value| v.as_str().unwrap_or("").to_string();
                (text(&i["patient"]["id"]), text(&i["reader"]["id"]))
            })
            .collect();
        (readers.len() == n && readers.iter().all(|(_, r)| !r.is_empty())).then_some(readers)
    })
}

/// pynetdicom as Dr Neuro's workstation: the PatientIDs of a study level
/// C-FIND, and how many images a C-GET of `study` brought.
fn pynetdicom_workstation(server: &TestServer, study: &str) -> (Vec<String>, usize) {
    let script = r#"
import json, sys
from pydicom.dataset import Dataset
from pynetdicom import AE, evt, build_role
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind as FIND,
    StudyRootQueryRetrieveInformationModelGet as GET,
)

port, study = int(sys.argv[1]), sys.argv[2]
received = []
def on_store(event):
    received.append(event.dataset.SOPInstanceUID)
    return 0x0000

ae = AE(ae_title="NEURO_WS")
ae.add_requested_context(FIND)
ae.add_requested_context(GET)
ae.add_requested_context(CTImageStorage)
assoc = ae.associate(
    "127.0.0.1", port, ae_title="TELERAD",
    ext_neg=[build_role(CTImageStorage, scp_role=True)],
    evt_handlers=[(evt.EVT_C_STORE, on_store)],
)
assert assoc.is_established, "association refused"
query = Dataset()
query.QueryRetrieveLevel = "STUDY"
query.PatientID = ""
found = [ident.PatientID for status, ident in assoc.send_c_find(query, FIND)
         if status and status.Status == 0xFF00]
get = Dataset()
get.QueryRetrieveLevel = "STUDY"
get.StudyInstanceUID = study
statuses = [status.Status for status, _ in assoc.send_c_get(get, GET) if status]
assoc.release()
assert statuses and statuses[-1] == 0, statuses
print(json.dumps({"found": found, "got": len(received)}))
"#;
    let out = run(std::process::Command::new("python3").args([
        "-c",
        script,
        &server.dicom_port.to_string(),
        study,
    ]));
    assert!(out.status.success(), "pynetdicom: {}", text(&out));
    let answer: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let found = answer["found"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    (found, answer["got"].as_u64().unwrap_or(0) as usize)
}

/// A night with Dr Neuro's workstation at `workstation_port`: a stroke
/// (with its form, for Dr Neuro) and another study (Dr General's) pushed
/// by site A.
struct Night {
    server: TestServer,
    admin: String,
    stroke: SyntheticStudy,
    other: SyntheticStudy,
}

fn night(backend: &Backend, workstation_port: u16) -> Night {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            quiet_period_secs: 1,
            extra_config: config(workstation_port),
            clock_start: Some(NIGHT.into()),
            ..ServerOptions::default()
        },
    );
    let tech = server.user_token("tech-a", &["--role", "technician", "--site", "site-a"]);
    let admin = server.admin_token();
    let stroke = study("DOE^JANE", "P-STROKE", 3);
    let other = study("DUPONT^MARC", "P-OTHER", 2);
    let form = json!({
        "patient_id": "P-STROKE",
        "accession_number": "ACC-P-STROKE",
        "study_date": "20260318",
        "urgency": "stroke",
        "symptom_onset": "2026-03-18T01:40:00+01:00",
        "nihss": 12,
        "clinical_question": "Thrombolysis?",
        "requested_examination": "CT head stroke protocol",
        "requesting_physician": "Dr Urgences",
        "callback_number": "1234",
    });
    let (status, body) = server.post_as(Some(&tech), "/api/forms", &form.to_string());
    assert_eq!(status, 201, "{body}");
    storescu_push(&server, &stroke, "SITE_A");
    storescu_push(&server, &other, "SITE_A");
    Night {
        server,
        admin,
        stroke,
        other,
    }
}

fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values
}

fn workstations_and_sites_query_within_their_scope(backend: &Backend) {
    let Night {
        server,
        admin,
        stroke,
        other,
    } = night(backend, free_port());
    let far = study("DOE^JOHN", "P-FAR", 1);
    storescu_push(&server, &far, "SITE_B");
    let readers = readers(&server, &admin, 3);
    assert!(
        readers.contains(&("P-STROKE".into(), "dr-neuro".into()))
            && readers.contains(&("P-OTHER".into(), "dr-general".into())),
        "{readers:?}"
    );

    // A site's system: its studies, with the keys asked.
    let study_keys = [
        "QueryRetrieveLevel=STUDY",
        "PatientName",
        "PatientID",
        "StudyInstanceUID",
        "StudyDate",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedInstances",
        "InstitutionName",
    ];
    let site_a = findscu(&server, "SITE_A", &study_keys);
    assert!(site_a.success, "{}", site_a.output);
    assert_eq!(
        sorted(site_a.values(tags::PATIENT_ID)),
        ["P-OTHER", "P-STROKE"]
    );
    let stroke_answer = site_a
        .matches
        .iter()
        .position(|m| {
            m.element(tags::PATIENT_ID)
                .ok()
                .and_then(|e| e.to_str().ok())
                .is_some_and(|v| v.trim() == "P-STROKE")
        })
        .expect("the stroke study answered");
    let field = |tag| site_a.values(tag)[stroke_answer].clone();
    assert_eq!(field(tags::STUDY_INSTANCE_UID), stroke.study_instance_uid);
    assert_eq!(field(tags::PATIENT_NAME), "DOE^JANE");
    assert_eq!(field(tags::MODALITIES_IN_STUDY), "CT");
    assert_eq!(field(tags::NUMBER_OF_STUDY_RELATED_INSTANCES), "3");
    assert_eq!(field(tags::STUDY_DATE), "20260318");
    assert_eq!(
        field(tags::INSTITUTION_NAME),
        "",
        "asked, not indexed: empty"
    );
    assert_eq!(field(tags::RETRIEVE_AE_TITLE), SERVER_AE);
    assert_eq!(field(tags::QUERY_RETRIEVE_LEVEL), "STUDY");

    // Matching: a name with a wildcard, a date range, a UID of another site.
    let named = findscu(
        &server,
        "SITE_A",
        &["QueryRetrieveLevel=STUDY", "PatientName=DOE*", "PatientID"],
    );
    assert_eq!(named.values(tags::PATIENT_ID), ["P-STROKE"]);
    let dated = findscu(
        &server,
        "SITE_A",
        &[
            "QueryRetrieveLevel=STUDY",
            "StudyDate=20260319-",
            "PatientID",
        ],
    );
    assert!(
        dated.success && dated.matches.is_empty(),
        "{}",
        dated.output
    );
    let elsewhere = format!("StudyInstanceUID={}", far.study_instance_uid);
    let hidden = findscu(
        &server,
        "SITE_A",
        &["QueryRetrieveLevel=STUDY", &elsewhere, "PatientID"],
    );
    assert!(
        hidden.success && hidden.matches.is_empty(),
        "{}",
        hidden.output
    );
    let site_b = findscu(
        &server,
        "SITE_B",
        &["QueryRetrieveLevel=STUDY", "PatientID"],
    );
    assert_eq!(site_b.values(tags::PATIENT_ID), ["P-FAR"]);

    // Down the hierarchy: the stroke study's series, then its images.
    let of_study = format!("StudyInstanceUID={}", stroke.study_instance_uid);
    let series = findscu(
        &server,
        "SITE_A",
        &[
            "QueryRetrieveLevel=SERIES",
            &of_study,
            "SeriesInstanceUID",
            "Modality",
            "NumberOfSeriesRelatedInstances",
        ],
    );
    assert_eq!(
        series.values(tags::SERIES_INSTANCE_UID),
        [stroke.series_instance_uid.as_str()]
    );
    assert_eq!(series.values(tags::MODALITY), ["CT"]);
    assert_eq!(
        series.values(tags::NUMBER_OF_SERIES_RELATED_INSTANCES),
        ["3"]
    );
    let of_series = format!("SeriesInstanceUID={}", stroke.series_instance_uid);
    let images = findscu(
        &server,
        "SITE_A",
        &[
            "QueryRetrieveLevel=IMAGE",
            &of_study,
            &of_series,
            "SOPInstanceUID",
            "InstanceNumber",
        ],
    );
    assert_eq!(
        sorted(images.values(tags::SOP_INSTANCE_UID)),
        sorted((0..3).map(|i| stroke.sop_instance_uid(i)).collect())
    );

    // Dr Neuro's workstation: the study given to them, not Dr General's,
    // not another site's.
    let workstation = findscu(
        &server,
        "NEURO_WS",
        &["QueryRetrieveLevel=STUDY", "PatientID"],
    );
    assert!(workstation.success, "{}", workstation.output);
    assert_eq!(workstation.values(tags::PATIENT_ID), ["P-STROKE"]);
    let colleague = format!("StudyInstanceUID={}", other.study_instance_uid);
    let colleagues = findscu(
        &server,
        "NEURO_WS",
        &["QueryRetrieveLevel=SERIES", &colleague, "SeriesInstanceUID"],
    );
    assert!(colleagues.matches.is_empty(), "{}", colleagues.output);

    // pynetdicom's workstation sees the same, and gets the images.
    let (found, got) = pynetdicom_workstation(&server, &stroke.study_instance_uid);
    assert_eq!(found, ["P-STROKE"]);
    assert_eq!(got, 3);

    // Refusals: a level Study Root does not have, a date that is not one,
    // an AE title nobody configured.
    for keys in [
        &["QueryRetrieveLevel=PATIENT", "PatientID"][..],
        &["QueryRetrieveLevel=STUDY", "StudyDate=yesterday"][..],
    ] {
        let refused = findscu(&server, "SITE_A", keys);
        assert!(refused.matches.is_empty(), "{keys:?}: {}", refused.output);
        assert!(
            refused
                .output
                .contains("Final Find Response (Error: DataSetDoesNotMatchSOPClass)"),
            "{keys:?}: {}",
            refused.output
        );
    }
    let stranger = findscu(
        &server,
        "STRANGER",
        &["QueryRetrieveLevel=STUDY", "PatientID"],
    );
    assert!(!stranger.success, "{}", stranger.output);
    assert!(stranger.matches.is_empty());

    // Every query answered is in the audit trail, with its scope, level
    // and count.
    let finds = |actor: &str| -> Vec<Value> {
        let (status, trail) = server.get_as(
            Some(&admin),
            &format!("/api/audit?user=dicom:{actor}&limit=1000"),
        );
        assert_eq!(status, 200, "{trail}");
        trail["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|r| r["action"] == "dicom.find")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let workstation_finds = finds("NEURO_WS");
    // findscu's two, pynetdicom's one.
    assert_eq!(workstation_finds.len(), 3, "{workstation_finds:?}");
    assert!(workstation_finds.iter().all(|r| r["role"] == "workstation"));
    assert!(
        workstation_finds
            .iter()
            .all(|r| r["detail"].to_string().contains("radiologist dr-neuro")),
        "{workstation_finds:?}"
    );
    assert_eq!(finds("SITE_A").len(), 6);
}

/// What `getscu` received (file names) and said.
fn getscu(server: &TestServer, calling: &str, keys: &[&str]) -> (Vec<String>, String) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut command = telerad_fixtures::dcmtk::command("getscu");
    command.args(["-v", "-S", "-aet", calling, "-aec", SERVER_AE, "-od"]);
    command.arg(dir.path());
    for key in keys {
        command.args(["-k", key]);
    }
    command.args(["127.0.0.1", &server.dicom_port.to_string()]);
    let out = text(&run(&mut command));
    let files = files_under(dir.path())
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    (files, out)
}

/// An audit record's detail, as JSON.
fn detail(record: &Value) -> Value {
    match &record["detail"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        other => other.clone(),
    }
}

/// What `movescu` said: whether it ended well, and its output (which
/// names the final status).
fn movescu(server: &TestServer, destination: &str, keys: &[&str]) -> (bool, String) {
    let mut command = telerad_fixtures::dcmtk::command("movescu");
    command.args([
        "-v",
        "-S",
        "-aet",
        "NEURO_WS",
        "-aem",
        destination,
        "-aec",
        SERVER_AE,
    ]);
    for key in keys {
        command.args(["-k", key]);
    }
    command.args(["127.0.0.1", &server.dicom_port.to_string()]);
    let out = run(&mut command);
    (out.status.success(), text(&out))
}

fn a_workstation_retrieves_what_it_may_read(backend: &Backend) {
    let workstation_port = free_port();
    let workstation = Workstation::start("NEURO_WS", workstation_port);
    let Night {
        server,
        admin,
        stroke,
        other,
    } = night(backend, workstation_port);
    assert!(readers(&server, &admin, 2).contains(&("P-OTHER".into(), "dr-general".into())));
    // The router sends the stroke to Dr Neuro's workstation by itself.
    workstation.wait_for(3, Duration::from_secs(30));
    let received = |uid: &str| {
        files_under(workstation.dir.path())
            .iter()
            .filter(|f| f.to_string_lossy().contains(uid))
            .count()
    };
    let forget = || {
        for file in files_under(workstation.dir.path()) {
            std::fs::remove_file(&file).expect("the workstation loses its copy");
        }
    };
    forget();

    // The whole study again, asked by the workstation.
    let of_study = format!("StudyInstanceUID={}", stroke.study_instance_uid);
    let (ok, out) = movescu(
        &server,
        "NEURO_WS",
        &["QueryRetrieveLevel=STUDY", &of_study],
    );
    assert!(ok, "{out}");
    assert!(out.contains("Final Move Response (Success)"), "{out}");
    // The final response comes once each image was acknowledged there.
    assert_eq!(workstation.received(), 3, "{out}");
    for i in 0..3 {
        assert_eq!(received(&stroke.sop_instance_uid(i)), 1, "slice {i}");
    }

    // One image (the receiver keeps one file per instance: emptied first).
    forget();
    let of_series = format!("SeriesInstanceUID={}", stroke.series_instance_uid);
    let one = format!("SOPInstanceUID={}", stroke.sop_instance_uid(1));
    let (ok, out) = movescu(
        &server,
        "NEURO_WS",
        &["QueryRetrieveLevel=IMAGE", &of_study, &of_series, &one],
    );
    assert!(ok && out.contains("Final Move Response (Success)"), "{out}");
    assert_eq!(workstation.received(), 1, "{out}");
    assert_eq!(received(&stroke.sop_instance_uid(1)), 1);

    // Dr General's study is not Dr Neuro's to retrieve: nothing is sent.
    let colleague = format!("StudyInstanceUID={}", other.study_instance_uid);
    let (_, out) = movescu(
        &server,
        "NEURO_WS",
        &["QueryRetrieveLevel=STUDY", &colleague],
    );
    assert!(out.contains("Final Move Response (Success)"), "{out}");
    assert_eq!(workstation.received(), 1, "{out}");
    // Elsewhere than its own receiver, or without naming what: refused.
    let (_, out) = movescu(
        &server,
        "SOMEWHERE",
        &["QueryRetrieveLevel=STUDY", &of_study],
    );
    assert!(out.contains("MoveDestinationUnknown"), "{out}");
    let (_, out) = movescu(
        &server,
        "NEURO_WS",
        &["QueryRetrieveLevel=STUDY", "PatientID=P-STROKE"],
    );
    assert!(out.contains("DataSetDoesNotMatchSOPClass"), "{out}");
    assert_eq!(workstation.received(), 1);
    // A site's system may query, not retrieve (no C-MOVE context for it).
    let mut site = telerad_fixtures::dcmtk::command("movescu");
    site.args([
        "-v", "-S", "-aet", "SITE_A", "-aem", "NEURO_WS", "-aec", SERVER_AE,
    ])
    .args(["-k", "QueryRetrieveLevel=STUDY", "-k", &of_study])
    .args(["127.0.0.1", &server.dicom_port.to_string()]);
    let refused = text(&run(&mut site));
    assert!(
        refused.contains("No valid Presentation Context"),
        "{refused}"
    );
    assert_eq!(workstation.received(), 1);

    // C-GET, for a workstation that cannot take connections: the images
    // come back on its own association.
    let (files, out) = getscu(
        &server,
        "NEURO_WS",
        &["QueryRetrieveLevel=STUDY", &of_study],
    );
    assert_eq!(files.len(), 3, "{out}");
    assert!(
        files
            .iter()
            .all(|f| f.contains(&stroke.series_instance_uid)),
        "{files:?}"
    );
    let (files, out) = getscu(
        &server,
        "NEURO_WS",
        &["QueryRetrieveLevel=STUDY", &colleague],
    );
    assert!(files.is_empty(), "{out}");
    let (files, out) = getscu(&server, "SITE_A", &["QueryRetrieveLevel=STUDY", &of_study]);
    assert!(files.is_empty(), "{out}");
    assert!(
        out.contains("No adequate Presentation Contexts for sending C-GET"),
        "{out}"
    );

    // Nor does a workstation store anything here.
    let dir = tempfile::tempdir().expect("a temp dir");
    study("INTRUDER^X", "P-X", 1)
        .write_to(dir.path())
        .expect("generate");
    let push = run(telerad_fixtures::dcmtk::command("storescu")
        .args(["-aet", "NEURO_WS", "-aec", SERVER_AE, "+sd", "127.0.0.1"])
        .arg(server.dicom_port.to_string())
        .arg(dir.path()));
    assert!(!push.status.success(), "{}", text(&push));
    let (status, found) = server.get_as(Some(&admin), "/api/studies?limit=1000");
    assert_eq!(status, 200, "{found}");
    assert!(!found.to_string().contains("\"P-X\""), "{found}");
    assert!(found.to_string().contains("\"P-STROKE\""), "{found}");

    let (status, trail) = server.get_as(Some(&admin), "/api/audit?user=dicom:NEURO_WS&limit=1000");
    assert_eq!(status, 200, "{trail}");
    let moves: Vec<&Value> = trail["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|r| r["action"] == "dicom.move")
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(moves.len(), 3, "{moves:?}");
    let gets = trail["items"]
        .as_array()
        .map(|items| items.iter().filter(|r| r["action"] == "dicom.get").count())
        .unwrap_or(0);
    assert_eq!(gets, 2);
    assert!(
        moves
            .iter()
            .any(|r| r["study_uid"] == stroke.study_instance_uid.as_str()
                && detail(r)["sent"] == 3),
        "{moves:?}"
    );
}

/// A workstation is told which images did not reach it (the Failed SOP
/// Instance UID List of the final response, PS3.4 C.4.3.1.3.1 and
/// C.4.2.1.4.1): pynetdicom refuses one image of a C-GET, then asks a
/// C-MOVE to its receiver, which is down. During the C-GET it also sends
/// a C-CANCEL naming another message, which must not cancel it.
#[test]
fn a_workstation_is_told_which_images_failed() {
    // Nothing listens at the workstation's receiver.
    let Night {
        server,
        admin,
        stroke,
        ..
    } = night(&Backend::Sqlite, free_port());
    // The stroke is Dr Neuro's, so their workstation may retrieve it.
    assert!(readers(&server, &admin, 2).contains(&("P-STROKE".into(), "dr-neuro".into())));
    let script = r#"
import json, sys
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role
from pynetdicom import evt
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelGet as GET,
    StudyRootQueryRetrieveInformationModelMove as MOVE,
)

port, study, refused = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cancelled_another = []
def on_store(event):
    # Before answering the first image, a C-CANCEL naming another message
    # than the C-GET (ID 1): it must not cancel the C-GET (PS3.7 9.3.2.3).
    if not cancelled_another:
        context = [c.context_id for c in assoc.accepted_contexts if c.abstract_syntax == GET][0]
        assoc.send_c_cancel(99, context)
        cancelled_another.append(99)
    return 0xA700 if event.request.AffectedSOPInstanceUID == refused else 0x0000

def failed_list(identifier):
    if identifier is None or "FailedSOPInstanceUIDList" not in identifier:
        return None
    value = identifier.FailedSOPInstanceUIDList
    return [value] if isinstance(value, str) else list(value)

ae = AE(ae_title="NEURO_WS")
ae.add_requested_context(GET)
ae.add_requested_context(MOVE)
ae.add_requested_context(CTImageStorage)
assoc = ae.associate(
    "127.0.0.1", port, ae_title="TELERAD",
    ext_neg=[build_role(CTImageStorage, scp_role=True)],
    evt_handlers=[(evt.EVT_C_STORE, on_store)],
)
assert assoc.is_established, "association refused"
query = Dataset()
query.QueryRetrieveLevel = "STUDY"
query.StudyInstanceUID = study
get = [(s.Status, failed_list(i)) for s, i in assoc.send_c_get(query, GET, msg_id=1) if s]
move = [(s.Status, failed_list(i)) for s, i in assoc.send_c_move(query, "NEURO_WS", MOVE) if s]
assoc.release()
print(json.dumps({"get": get[-1], "move": move[-1], "cancelled_another": cancelled_another}))
"#;
    let refused = stroke.sop_instance_uid(1);
    let out = run(std::process::Command::new("python3").args([
        "-c",
        script,
        &server.dicom_port.to_string(),
        &stroke.study_instance_uid,
        &refused,
    ]));
    assert!(out.status.success(), "pynetdicom: {}", text(&out));
    let answer: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    // C-GET: two of three stored, a warning, the refused one named; the
    // C-CANCEL of message 99 sent during it changed nothing.
    assert_eq!(answer["cancelled_another"], json!([99]), "{answer}");
    assert_eq!(answer["get"], json!([0xB000, [refused]]), "{answer}");
    // C-MOVE: none delivered (the outbox goes on trying), all named.
    let all: Vec<String> = (0..stroke.slices)
        .map(|i| stroke.sop_instance_uid(i))
        .collect();
    assert_eq!(answer["move"][0], 0xA702, "{answer}");
    assert_eq!(
        sorted(
            answer["move"][1]
                .as_array()
                .map(|uids| {
                    uids.iter()
                        .filter_map(|u| u.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        ),
        sorted(all),
        "{answer}"
    );
}

/// A C-CANCEL during a C-MOVE ends it (PS3.4 C.4.2.3.1): the workstation's
/// receiver takes the connection and never answers, so the move stays
/// pending until pynetdicom cancels it; the final status is Cancel (FE00)
/// with the sub-operations still remaining.
#[test]
fn a_workstation_cancels_a_move_that_does_not_progress() {
    // A receiver that holds connections and says nothing.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = silent.local_addr().expect("its address").port();
    let held = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().take(4).flatten() {
            held.push(stream);
        }
        held
    });
    let Night {
        server,
        admin,
        stroke,
        ..
    } = night(&Backend::Sqlite, port);
    assert!(readers(&server, &admin, 2).contains(&("P-STROKE".into(), "dr-neuro".into())));
    let script = r#"
import json, sys
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE

port, study = int(sys.argv[1]), sys.argv[2]
ae = AE(ae_title="NEURO_WS")
ae.add_requested_context(MOVE)
assoc = ae.associate("127.0.0.1", port, ae_title="TELERAD")
assert assoc.is_established, "association refused"
context = [c.context_id for c in assoc.accepted_contexts if c.abstract_syntax == MOVE][0]
query = Dataset()
query.QueryRetrieveLevel = "STUDY"
query.StudyInstanceUID = study
statuses = []
for status, _ in assoc.send_c_move(query, "NEURO_WS", MOVE, msg_id=7):
    if not status:
        break
    statuses.append(status.Status)
    if status.Status == 0xFF00 and len(statuses) == 1:
        assoc.send_c_cancel(7, context)
    if status.Status != 0xFF00:
        remaining = status.get("NumberOfRemainingSuboperations")
assoc.release()
print(json.dumps({"statuses": statuses, "remaining": remaining}))
"#;
    let out = run(std::process::Command::new("python3").args([
        "-c",
        script,
        &server.dicom_port.to_string(),
        &stroke.study_instance_uid,
    ]));
    assert!(out.status.success(), "pynetdicom: {}", text(&out));
    let answer: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let statuses = answer["statuses"].as_array().cloned().unwrap_or_default();
    assert_eq!(statuses.first(), Some(&json!(0xFF00)), "{answer}");
    assert_eq!(statuses.last(), Some(&json!(0xFE00)), "{answer}");
    assert!(
        answer["remaining"].as_u64().is_some_and(|n| n > 0),
        "{answer}"
    );
    drop(server);
    drop(held);
}
