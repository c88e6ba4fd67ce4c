//! Receiving studies as a hospital sends them: DCMTK and telerad's own SCU
//! push real-world samples and a synthetic CT; every acknowledged instance
//! must be on disk byte for byte, indexed, and its study must complete.

mod common;

use common::dicom::{dataset_hash, same_content, stored_versions};
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;
use telerad_scp::FileToSend;

on_every_backend!(
    echo_answers_dcmtk_and_telerad,
    every_sample_arrives_byte_identical_and_indexed,
    synthetic_ct_arrives_and_completes,
    resending_identical_instances_adds_nothing,
    sixteen_associations_from_several_sites,
    late_images_reopen_a_complete_study,
);

fn study_uid_of(path: &std::path::Path) -> String {
    let object = dicom_object::open_file(path).expect("open a sample");
    let element = object
        .element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID)
        .expect("a Study Instance UID");
    element
        .to_str()
        .expect("a text UID")
        .trim_end_matches('\0')
        .to_string()
}

/// storescu proposes only uncompressed syntaxes unless told which
/// compressed one to offer; without it, it would transcode (or fail).
fn storescu_proposal(transfer_syntax_uid: &str) -> &'static str {
    match transfer_syntax_uid {
        "1.2.840.10008.1.2" => "-xi",
        "1.2.840.10008.1.2.2" => "-xb",
        "1.2.840.10008.1.2.1.99" => "-xd",
        "1.2.840.10008.1.2.4.50" => "-xy",
        "1.2.840.10008.1.2.4.51" => "-xx",
        "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => "-xs",
        "1.2.840.10008.1.2.4.80" => "-xt",
        "1.2.840.10008.1.2.4.81" => "-xu",
        "1.2.840.10008.1.2.4.90" => "-xv",
        "1.2.840.10008.1.2.4.91" => "-xw",
        "1.2.840.10008.1.2.5" => "-xr",
        _ => "-xe",
    }
}

fn storescu_sample(server: &TestServer, sample: &telerad_fixtures::Sample) -> std::process::Output {
    let port = server.dicom_port.to_string();
    let mut command = telerad_fixtures::dcmtk::command("storescu");
    command
        .env("TCP_NODELAY", "1")
        // One context listing the file's own syntax first (+C): telerad
        // accepts the sender's first choice, so nothing is transcoded.
        // (The synthetic CT test covers storescu's default, one context per
        // transfer syntax.)
        .args(["-aet", "STORESCU", "-aec", SERVER_AE, "-R", "+C"])
        .arg(storescu_proposal(sample.transfer_syntax_uid))
        .args(["127.0.0.1", &port])
        .arg(&sample.path);
    run(&mut command)
}

fn echo_answers_dcmtk_and_telerad(backend: &Backend) {
    let server = TestServer::start(backend);
    let port = server.dicom_port.to_string();
    let out = run(telerad_fixtures::dcmtk::command("echoscu").args([
        "-aet",
        "ECHOSCU",
        "-aec",
        SERVER_AE,
        "127.0.0.1",
        &port,
    ]));
    assert!(out.status.success(), "echoscu: {}", text(&out));

    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let out = run(Command::new(telerad_bin()).args(["echo", &destination]));
    assert!(out.status.success(), "telerad echo: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("success"),
        "{}",
        text(&out)
    );
}

fn every_sample_arrives_byte_identical_and_indexed(backend: &Backend) {
    let server = TestServer::start(backend);
    let samples = telerad_fixtures::samples();
    assert!(samples.len() >= 10, "the real-world samples are missing");

    // DCMTK first: storescu re-encodes what it reads and drops Data Set
    // Trailing Padding (FFFC,FFFC), so what it sent equals the file minus
    // that element.
    for sample in &samples {
        let out = storescu_sample(&server, sample);
        assert!(
            out.status.success(),
            "storescu {}: {}",
            sample.file_name,
            text(&out)
        );
    }
    let stored = server.stored_files();
    let mut instances_per_study: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for sample in &samples {
        let sent = FileToSend::read(&sample.path).expect("a sample");
        let mut expected = dicom_object::open_file(&sample.path)
            .expect("a sample")
            .into_inner();
        expected.remove_element(dicom_dictionary_std::tags::DATA_SET_TRAILING_PADDING);
        let versions = stored_versions(&stored, &sent.sop_instance_uid);
        let copy = versions
            .iter()
            .find(|v| {
                let stored = dicom_object::open_file(v).expect("a stored file opens");
                stored.meta().transfer_syntax() == sample.transfer_syntax_uid
                    && same_content(&stored, &expected).is_ok()
            })
            .unwrap_or_else(|| panic!("{}: sent by storescu, no copy with the same content and transfer syntax among {versions:?}", sample.file_name));
        let received = FileToSend::read(copy).expect("a valid Part 10 file");
        assert_eq!(received.sop_class_uid, sample.sop_class_uid);
        let object = dicom_object::open_file(copy).expect("the stored file opens");
        assert_eq!(
            object
                .meta()
                .source_application_entity_title
                .as_deref()
                .map(str::trim),
            Some("STORESCU")
        );
        instances_per_study
            .entry(study_uid_of(&sample.path))
            .or_default()
            .insert(sent.sop_instance_uid);
    }

    // telerad's own SCU sends the file's data set bytes as they are: the
    // stored data set must be the same bytes.
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination])
        .arg(telerad_fixtures::samples_dir()));
    assert!(out.status.success(), "telerad push: {}", text(&out));
    let stored = server.stored_files();
    for sample in &samples {
        let sent = FileToSend::read(&sample.path).expect("a sample");
        let hash = dataset_hash(&sample.path);
        let versions = stored_versions(&stored, &sent.sop_instance_uid);
        assert!(
            versions.iter().any(|v| dataset_hash(v) == hash),
            "{}: no byte-identical copy among {versions:?}",
            sample.file_name
        );
    }

    // An independent implementation reads every received file as valid
    // Part 10 (preamble, file meta, data set in the received syntax).
    for file in server.stored_files() {
        let out = run(telerad_fixtures::dcmtk::command("dcmdump")
            .arg("-q")
            .arg(&file));
        assert!(
            out.status.success(),
            "dcmdump {}: {}",
            file.display(),
            text(&out)
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("E: "),
            "dcmdump {}: {}",
            file.display(),
            text(&out)
        );
    }

    for (study, instances) in instances_per_study {
        let body = server.wait_for_study(
            &study,
            "complete",
            instances.len() as u64,
            Duration::from_secs(20),
        );
        assert_eq!(body["site"], "site-a");
        assert!(
            body["series"].as_array().is_some_and(|s| !s.is_empty()),
            "{body}"
        );
    }
    assert!(
        server.incoming_files().is_empty(),
        "partial files left: {:?}",
        server.incoming_files()
    );
}

fn synthetic_ct_arrives_and_completes(backend: &Backend) {
    let server = TestServer::start(backend);
    let dir = tempfile::tempdir().expect("a temp dir");
    let study = SyntheticStudy::ct(300);
    let files = study.write_to(dir.path()).expect("generate a CT");
    let port = server.dicom_port.to_string();
    let out = run(telerad_fixtures::dcmtk::command("storescu")
        .env("TCP_NODELAY", "1")
        .args([
            "-aet",
            "STORESCU",
            "-aec",
            SERVER_AE,
            "--max-pdu",
            "131072",
            "+sd",
            "127.0.0.1",
            &port,
        ])
        .arg(dir.path()));
    assert!(out.status.success(), "storescu: {}", text(&out));

    let body = server.wait_for_study(
        &study.study_instance_uid,
        "complete",
        300,
        Duration::from_secs(30),
    );
    assert_eq!(body["modalities"], "CT");
    assert_eq!(body["body_parts"], "HEAD");
    assert_eq!(body["patient_id"], study.patient_id.as_str());
    assert_eq!(body["series"][0]["instance_count"], 300);

    let rt = runtime();
    let instances = rt
        .block_on(
            server
                .index(&rt)
                .instances_of(&study.study_instance_uid, &telerad_store::Scope::All),
        )
        .expect("query the index");
    assert_eq!(instances.len(), 300);
    let by_uid: BTreeMap<_, _> = instances
        .iter()
        .map(|i| (i.sop_instance_uid.clone(), i))
        .collect();
    for (index, file) in files.iter().enumerate() {
        let uid = study.sop_instance_uid(index);
        let record = by_uid
            .get(&uid)
            .unwrap_or_else(|| panic!("slice {index} not indexed"));
        let stored = server.data_dir.join(&record.path);
        assert_eq!(
            dataset_hash(&stored),
            dataset_hash(file),
            "slice {index} differs"
        );
        assert_eq!(
            record.checksum,
            dataset_hash(file).to_hex().to_string(),
            "indexed checksum of slice {index}"
        );
        assert_eq!(record.version, 1);
    }
    // Health data: readable by telerad's own system user only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let first = server.data_dir.join(&instances[0].path);
        let mut private = vec![
            first.clone(),
            first.parent().expect("a series folder").to_path_buf(),
            server.data_dir.join("studies"),
        ];
        if matches!(backend, Backend::Sqlite) {
            // The harness keeps the test index beside the data folder.
            private.push(server.dir.path().join("index.db"));
        }
        for path in private {
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", path.display());
        }
    }
}

fn resending_identical_instances_adds_nothing(backend: &Backend) {
    let server = TestServer::start(backend);
    let dir = tempfile::tempdir().expect("a temp dir");
    let study = SyntheticStudy::mr(20);
    study.write_to(dir.path()).expect("generate an MR");
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    for associations in ["1", "3"] {
        let out = run(Command::new(telerad_bin())
            .args(["push", "--to", &destination, "--associations", associations])
            .arg(dir.path()));
        assert!(out.status.success(), "telerad push: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("sent 20/20 files"),
            "{}",
            text(&out)
        );
    }
    server.wait_for_study(
        &study.study_instance_uid,
        "complete",
        20,
        Duration::from_secs(20),
    );
    assert_eq!(
        server.stored_files().len(),
        20,
        "a re-sent identical instance was stored twice"
    );

    // Same SOP Instance UID, different content: kept as version 2.
    let mut changed = study.instance(0);
    changed.put(dicom_core::DataElement::new(
        dicom_dictionary_std::tags::SERIES_DESCRIPTION,
        dicom_core::VR::LO,
        dicom_core::PrimitiveValue::from("CORRECTED"),
    ));
    let changed_path = dir.path().join("changed.dcm");
    changed
        .write_to_file(&changed_path)
        .expect("write the changed instance");
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination])
        .arg(&changed_path));
    assert!(out.status.success(), "{}", text(&out));
    let versions = stored_versions(&server.stored_files(), &study.sop_instance_uid(0));
    assert_eq!(versions.len(), 2, "{versions:?}");
    let body = server.study(&study.study_instance_uid);
    assert_eq!(
        body["instance_count"], 20,
        "a new version is not a new instance"
    );
    assert!(
        server
            .log()
            .contains("same SOP Instance UID with different content: stored as version 2"),
        "the new version was not logged"
    );
}

fn sixteen_associations_from_several_sites(backend: &Backend) {
    let server = TestServer::start(backend);
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let senders = [
        ("SITE_A", "site-a"),
        ("SITE_B", "site-b"),
        ("SITE_C", "site-c"),
        ("STORESCU", "site-a"),
    ];
    let dirs: Vec<_> = senders
        .iter()
        .map(|_| tempfile::tempdir().expect("a temp dir"))
        .collect();
    let mut studies = Vec::new();
    for dir in &dirs {
        let mut study = SyntheticStudy::ct(48);
        study.rows = 128;
        study.columns = 128;
        study.write_to(dir.path()).expect("generate a CT");
        studies.push(study);
    }
    // Four processes of four associations each, all at once.
    let children: Vec<_> = senders
        .iter()
        .zip(&dirs)
        .map(|((calling, _), dir)| {
            Command::new(telerad_bin())
                .args([
                    "push",
                    "--to",
                    &destination,
                    "--associations",
                    "4",
                    "--calling-ae",
                    calling,
                ])
                .arg(dir.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start telerad push")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("push output");
        assert!(out.status.success(), "push: {}", text(&out));
    }
    for ((_, site), study) in senders.iter().zip(&studies) {
        let body = server.wait_for_study(
            &study.study_instance_uid,
            "complete",
            48,
            Duration::from_secs(30),
        );
        assert_eq!(body["site"], *site);
    }
    assert_eq!(server.stored_files().len(), 4 * 48);
    let (status, list) = server.get("/api/studies?site=site-a");
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list}");
}

fn late_images_reopen_a_complete_study(backend: &Backend) {
    let server = TestServer::start(backend);
    let dir = tempfile::tempdir().expect("a temp dir");
    let study = SyntheticStudy::ct(6);
    let files = study.write_to(dir.path()).expect("generate a CT");
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let push = |files: &[std::path::PathBuf]| {
        let out = run(Command::new(telerad_bin())
            .args(["push", "--to", &destination])
            .args(files));
        assert!(out.status.success(), "{}", text(&out));
    };
    push(&files[..4]);
    server.wait_for_study(
        &study.study_instance_uid,
        "complete",
        4,
        Duration::from_secs(20),
    );
    push(&files[4..]);
    let (_, body) = server.get(&format!("/api/studies/{}", study.study_instance_uid));
    assert_eq!(body["instance_count"], 6);
    // Late images reopen the study until the quiet period passes again.
    server.wait_for_study(
        &study.study_instance_uid,
        "complete",
        6,
        Duration::from_secs(20),
    );

    let rt = runtime();
    let events = rt
        .block_on(server.index(&rt).events_after(0, 100))
        .expect("events");
    let kinds: Vec<_> = events
        .iter()
        // The images' events; the workflow's (an escalation here) are
        // the notifiers'.
        .filter(|e| e.study_instance_uid == study.study_instance_uid && !e.kind.is_workflow())
        .map(|e| (e.kind.as_str(), e.instance_count))
        .collect();
    assert_eq!(kinds, [("complete", 4), ("receiving", 4), ("complete", 6)]);
}
