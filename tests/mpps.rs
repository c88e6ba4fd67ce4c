//! Modality Performed Procedure Step (DICOM PS3.4 Annex F), with
//! pynetdicom as the modality and DCMTK `storescu` sending the images: a
//! step set COMPLETED completes its study as soon as the instances it
//! names are all indexed, without the quiet period (here ten minutes, so
//! that only the step can complete the study within the test).

mod common;

use common::dicom::RawPeer;
use common::{ServerOptions, TestServer, eventually, run, text};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

const MPPS: &str = "1.2.840.10008.3.1.2.3.3";

/// Plays `operations` (N-CREATE / N-SET of steps) against the server as
/// the modality `calling_ae`, over one association, and returns each
/// operation's status.
fn modality(server: &TestServer, calling_ae: &str, operations: Value) -> Vec<u16> {
    let script = r#"
import json, sys
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep as MPPS

calling, port, plan = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
ae = AE(ae_title=calling)
ae.add_requested_context(MPPS)
assoc = ae.associate("127.0.0.1", port, ae_title="TELERAD")
assert assoc.is_established, "association refused"

def step(op):
    ds = Dataset()
    if "status" in op:
        ds.PerformedProcedureStepStatus = op["status"]
    if op["op"] == "create":
        scheduled = Dataset()
        scheduled.StudyInstanceUID = op["study"]
        scheduled.AccessionNumber = op.get("accession", "")
        ds.ScheduledStepAttributesSequence = [scheduled]
        ds.PatientID = op.get("patient", "")
        ds.Modality = "CT"
        ds.PerformedProcedureStepID = "PPS1"
        ds.PerformedProcedureStepStartDate = "20261127"
        ds.PerformedProcedureStepStartTime = "031500"
        ds.PerformedProcedureStepDescription = "CT head"
    if "series" in op:
        ds.PerformedProcedureStepEndDate = "20261127"
        ds.PerformedProcedureStepEndTime = "032000"
        items = []
        for series in op["series"]:
            item = Dataset()
            item.SeriesInstanceUID = series["uid"]
            refs = []
            for sop in series["instances"]:
                ref = Dataset()
                ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
                ref.ReferencedSOPInstanceUID = sop
                refs.append(ref)
            item.ReferencedImageSequence = refs
            items.append(item)
        ds.PerformedSeriesSequence = items
    return ds

statuses = []
for op in plan:
    if op["op"] == "create":
        status, _ = assoc.send_n_create(step(op), MPPS, op["uid"])
    else:
        status, _ = assoc.send_n_set(step(op), MPPS, op["uid"])
    statuses.append(status.Status if "Status" in status else -1)
assoc.release()
print(json.dumps(statuses))
"#;
    let out = run(Command::new("python3").args([
        "-c",
        script,
        calling_ae,
        &server.dicom_port.to_string(),
        &operations.to_string(),
    ]));
    assert!(out.status.success(), "pynetdicom: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// Sends the first `count` slices of `study` with DCMTK's storescu.
fn send_slices(server: &TestServer, study: &SyntheticStudy, range: std::ops::Range<usize>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let files = study.write_to(dir.path()).expect("generate");
    for (i, file) in files.iter().enumerate() {
        if !range.contains(&i) {
            std::fs::remove_file(file).expect("remove a slice");
        }
    }
    let out = run(telerad_fixtures::dcmtk::command("storescu")
        .args([
            "-aet",
            "STORESCU",
            "-aec",
            common::SERVER_AE,
            "+sd",
            "127.0.0.1",
        ])
        .arg(server.dicom_port.to_string())
        .arg(dir.path()));
    assert!(out.status.success(), "storescu: {}", text(&out));
}

fn steps(server: &TestServer, study: &SyntheticStudy) -> (Value, Vec<Value>) {
    let detail = server.study(&study.study_instance_uid);
    let steps = detail["performed_procedure_steps"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no steps in {detail}"));
    (detail, steps)
}

fn long_quiet_period() -> ServerOptions {
    ServerOptions {
        quiet_period_secs: 600,
        ..ServerOptions::default()
    }
}

fn a_completed_step_completes_its_study_once_its_images_are_all_here(backend: &common::Backend) {
    let server = TestServer::start_with(backend, long_quiet_period());
    let study = SyntheticStudy::ct(4);
    let step_uid = format!("{}.77", study.study_instance_uid);
    let create = json!({
        "op": "create", "uid": step_uid, "status": "IN PROGRESS",
        "study": study.study_instance_uid, "patient": study.patient_id,
        "accession": study.accession_number,
    });
    assert_eq!(modality(&server, "STORESCU", json!([create])), [0x0000]);

    // Three of the four slices, then the modality says it is done.
    send_slices(&server, &study, 0..3);
    let all: Vec<String> = (0..4).map(|i| study.sop_instance_uid(i)).collect();
    let completed = json!({
        "op": "set", "uid": step_uid, "status": "COMPLETED",
        "series": [{ "uid": study.series_instance_uid, "instances": all }],
    });
    assert_eq!(modality(&server, "STORESCU", json!([completed])), [0x0000]);

    // The missing slice is visible, and the study waits for it.
    let (detail, listed) = steps(&server, &study);
    assert_eq!(detail["status"], "receiving", "{detail}");
    assert_eq!(listed.len(), 1, "{detail}");
    assert_eq!(listed[0]["status"], "COMPLETED");
    assert_eq!(listed[0]["referenced_instances"], 4);
    assert_eq!(listed[0]["missing_instances"], 1);
    assert_eq!(listed[0]["missing_sop_instance_uids"], json!([all[3]]));
    assert_eq!(listed[0]["accession_number"], study.accession_number);
    assert!(listed[0]["settled_at"].is_null());

    // The last slice comes: the study completes well within its ten-minute
    // quiet period, and is routed.
    send_slices(&server, &study, 3..4);
    let detail = eventually(
        "the study completed by its step",
        Duration::from_secs(20),
        || {
            let detail = server.study(&study.study_instance_uid);
            (detail["status"] == "complete").then_some(detail)
        },
    );
    assert_eq!(detail["instance_count"], 4);
    let step = &detail["performed_procedure_steps"][0];
    assert_eq!(step["missing_instances"], 0, "{detail}");
    assert_eq!(
        step["outcome"],
        "all instances received: completed the study"
    );
    let rt = common::runtime();
    let events = rt
        .block_on(server.index(&rt).events_after(0, 1000))
        .expect("the event log");
    let completes = events
        .iter()
        .filter(|e| e.study_instance_uid == study.study_instance_uid)
        .filter(|e| e.kind == telerad_store::events::EventKind::Complete)
        .count();
    assert_eq!(completes, 1, "one complete event: {events:?}");

    // A completed step is final; unknown and duplicate steps are refused,
    // and another site cannot touch this one.
    let again = json!({ "op": "set", "uid": step_uid, "status": "DISCONTINUED" });
    let unknown = json!({ "op": "set", "uid": "1.2.3.999.1", "status": "COMPLETED" });
    assert_eq!(
        modality(&server, "STORESCU", json!([again, unknown, create])),
        [0x0110, 0x0112, 0x0111]
    );
    let foreign = json!({ "op": "set", "uid": step_uid, "status": "IN PROGRESS" });
    assert_eq!(modality(&server, "SITE_B", json!([foreign])), [0x0112]);

    // The trail names each operation.
    let audit = server
        .get(&format!(
            "/api/audit?study={}&limit=100",
            study.study_instance_uid
        ))
        .1
        .to_string();
    assert!(
        audit.contains("N-CREATE") && audit.contains("N-SET"),
        "{audit}"
    );
}

fn a_step_completed_before_any_image_waits_and_a_discontinued_one_never_completes(
    backend: &common::Backend,
) {
    let server = TestServer::start_with(backend, long_quiet_period());
    // DISCONTINUED, with all its images: recorded on the study, which the
    // quiet period alone may complete.
    let stopped = SyntheticStudy::ct(2);
    let stopped_uid = format!("{}.1", stopped.study_instance_uid);
    let sops: Vec<String> = (0..2).map(|i| stopped.sop_instance_uid(i)).collect();
    send_slices(&server, &stopped, 0..2);
    let plan = json!([
        { "op": "create", "uid": stopped_uid, "status": "IN PROGRESS",
          "study": stopped.study_instance_uid, "patient": stopped.patient_id },
        { "op": "set", "uid": stopped_uid, "status": "DISCONTINUED",
          "series": [{ "uid": stopped.series_instance_uid, "instances": sops }] },
    ]);
    assert_eq!(modality(&server, "STORESCU", plan), [0x0000, 0x0000]);

    // COMPLETED before the first image: nothing to complete yet; the
    // completion sweep completes the study when the images come.
    let early = SyntheticStudy::ct(2);
    let early_uid = format!("{}.1", early.study_instance_uid);
    let sops: Vec<String> = (0..2).map(|i| early.sop_instance_uid(i)).collect();
    let plan = json!([
        { "op": "create", "uid": early_uid, "status": "IN PROGRESS",
          "study": early.study_instance_uid, "patient": early.patient_id },
        { "op": "set", "uid": early_uid, "status": "COMPLETED",
          "series": [{ "uid": early.series_instance_uid, "instances": sops }] },
    ]);
    assert_eq!(modality(&server, "STORESCU", plan), [0x0000, 0x0000]);
    send_slices(&server, &early, 0..2);
    let detail = eventually(
        "the early step's study completed",
        Duration::from_secs(20),
        || {
            let detail = server.study(&early.study_instance_uid);
            (detail["status"] == "complete").then_some(detail)
        },
    );
    let step = &detail["performed_procedure_steps"][0];
    assert!(step["settled_at"].is_string(), "{detail}");

    // That sweep came after the discontinuation, and left its study alone.
    let (detail, listed) = steps(&server, &stopped);
    assert_eq!(listed[0]["status"], "DISCONTINUED", "{detail}");
    assert_eq!(listed[0]["missing_instances"], 0);
    assert!(listed[0]["settled_at"].is_null(), "{detail}");
    assert_eq!(
        detail["status"], "receiving",
        "a discontinued step completes nothing: {detail}"
    );
}

/// Refusals with the status PS3.7 C.5 gives them; the association goes on.
fn bad_steps_get_the_right_status(backend: &common::Backend) {
    let server = TestServer::start_with(backend, long_quiet_period());
    let study = SyntheticStudy::ct(1);
    send_slices(&server, &study, 0..1);
    let uid = format!("{}.5", study.study_instance_uid);
    let plan = json!([
        // A step is created IN PROGRESS.
        { "op": "create", "uid": uid, "status": "COMPLETED", "study": study.study_instance_uid },
        // No status at all.
        { "op": "create", "uid": uid, "study": study.study_instance_uid },
        { "op": "create", "uid": uid, "status": "IN PROGRESS", "study": study.study_instance_uid },
        // A status PS3.3 does not know.
        { "op": "set", "uid": uid, "status": "DONE" },
        { "op": "set", "uid": uid, "status": "COMPLETED",
          "series": [{ "uid": study.series_instance_uid, "instances": ["1.2.x.3"] }] },
    ]);
    assert_eq!(
        modality(&server, "STORESCU", plan),
        [0x0106, 0x0120, 0x0000, 0x0106, 0x0106]
    );

    // Data sets that are not one (a length running past its end, bytes
    // that are no element), sent raw: refused with a processing failure
    // that says why, and the association goes on.
    let mut peer = RawPeer::connect(&server.dicom_address());
    peer.expect_accepted(
        "STORESCU",
        &[
            (MPPS, "1.2.840.10008.1.2.1"),
            ("1.2.840.10008.1.1", "1.2.840.10008.1.2"),
        ],
    );
    let other = format!("{}.6", study.study_instance_uid);
    peer.send_command(1, telerad_scp::dimse::n_create_rq(1, MPPS, &other));
    peer.send_data(
        1,
        &[0x40, 0x00, 0x52, 0x02, b'C', b'S', 0x40, 0x00, b'I'],
        true,
    );
    let answer = peer.receive_command();
    assert_eq!(answer.status, 0x0110, "{answer:?}");
    assert!(answer.error_comment.contains("malformed"), "{answer:?}");
    peer.send_command(1, telerad_scp::dimse::n_set_rq(2, MPPS, &uid));
    peer.send_data(1, &[0xFF; 7], true);
    let answer = peer.receive_command();
    assert_eq!(answer.status, 0x0110, "{answer:?}");
    peer.send_command(3, telerad_scp::dimse::echo_rq(3));
    assert_eq!(peer.receive_command().status, 0x0000);

    // None of that touched the step: still IN PROGRESS, completable.
    let (detail, listed) = steps(&server, &study);
    assert_eq!(listed.len(), 1, "{detail}");
    assert_eq!(listed[0]["status"], "IN PROGRESS", "{detail}");
    let done = json!([{ "op": "set", "uid": uid, "status": "COMPLETED",
        "series": [{ "uid": study.series_instance_uid,
                     "instances": [study.sop_instance_uid(0)] }] }]);
    assert_eq!(modality(&server, "STORESCU", done), [0x0000]);
    eventually(
        "the study completed by its step",
        Duration::from_secs(20),
        || (server.study(&study.study_instance_uid)["status"] == "complete").then_some(()),
    );
}

on_every_backend!(
    a_completed_step_completes_its_study_once_its_images_are_all_here,
    a_step_completed_before_any_image_waits_and_a_discontinued_one_never_completes,
    bad_steps_get_the_right_status,
);
