//! DICOMweb searches (QIDO-RS) and retrievals (WADO-RS) against a running
//! server, made by a client
//! of someone else's making: the PyPI `dicomweb-client` package (installed
//! by `.ci/run`), as a viewer would, with the caller's Bearer token; and
//! the refusals a viewer must get: no token, another site's study, an
//! Accept header that allows no JSON, malformed matching values.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(
    a_viewer_searches_studies_series_and_instances,
    a_viewer_retrieves_instances_as_stored,
    a_viewer_reads_metadata_written_when_the_images_were_stored,
    a_completed_study_is_rendered_ahead_and_a_new_version_anew
);

/// Runs `dicomweb-client` with `token` against the server: `calls` is a
/// Python expression over `client` whose value is printed as JSON.
fn dicomweb_client(server: &TestServer, token: &str, calls: &str) -> Value {
    let script = format!(
        "import json, sys\n\
         from dicomweb_client.api import DICOMwebClient\n\
         client = DICOMwebClient(url='http://127.0.0.1:{port}/dicom-web', \
         headers={{'Authorization': 'Bearer {token}'}})\n\
         json.dump({calls}, sys.stdout)\n",
        port = server.http_port,
    );
    let out = run(Command::new("python3").args(["-c", &script]));
    assert!(
        out.status.success(),
        "dicomweb-client (pip install dicomweb-client): {}",
        text(&out)
    );
    serde_json::from_slice(&out.stdout).expect("the script's JSON")
}

/// The first value of attribute `tag` in a DICOM JSON data set.
fn value<'a>(set: &'a Value, tag: &str) -> &'a Value {
    &set[tag]["Value"][0]
}

fn a_viewer_searches_studies_series_and_instances(backend: &Backend) {
    let server = TestServer::start(backend);
    let mut ct = SyntheticStudy::ct(3);
    ct.patient_name = "DUPONT^JEANNE".into();
    let mr = SyntheticStudy::mr(2);
    let other_site = SyntheticStudy::ct(2);
    telerad_push(&server, "SITE_A", &ct);
    telerad_push(&server, "SITE_A", &mr);
    telerad_push(&server, "SITE_B", &other_site);
    let clinician = server.user_token("clin-a", &["--role", "clinician", "--site", "site-a"]);

    // Studies: every one the clinician may see, and only those.
    let all = dicomweb_client(&server, &clinician, "client.search_for_studies()");
    let mut uids: Vec<&str> = all
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|s| value(s, "0020000D").as_str())
        .collect();
    uids.sort_unstable();
    let mut expected = vec![
        ct.study_instance_uid.as_str(),
        mr.study_instance_uid.as_str(),
    ];
    expected.sort_unstable();
    assert_eq!(uids, expected, "{all}");

    // Matching: a name by wildcard and in another case, a modality, an
    // exact patient ID, a date range.
    let found = dicomweb_client(
        &server,
        &clinician,
        "client.search_for_studies(search_filters={'PatientName': 'dupont*'})",
    );
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    let study = &found[0];
    assert_eq!(value(study, "0020000D"), ct.study_instance_uid.as_str());
    assert_eq!(value(study, "00100010")["Alphabetic"], "DUPONT^JEANNE");
    assert_eq!(value(study, "00100020"), ct.patient_id.as_str());
    assert_eq!(value(study, "00080050"), ct.accession_number.as_str());
    assert_eq!(value(study, "00080061"), "CT");
    assert_eq!(value(study, "00201206"), 1, "{study}");
    assert_eq!(value(study, "00201208"), 3, "{study}");
    for (filters, expected) in [
        ("{'ModalitiesInStudy': 'MR'}", &mr),
        (&format!("{{'PatientID': '{}'}}", mr.patient_id), &mr),
        (
            &format!(
                "{{'StudyDate': '{}-{}', 'ModalitiesInStudy': 'CT'}}",
                ct.study_date, ct.study_date
            ),
            &ct,
        ),
    ] {
        let found = dicomweb_client(
            &server,
            &clinician,
            &format!("client.search_for_studies(search_filters={filters})"),
        );
        assert_eq!(
            found.as_array().map(Vec::len),
            Some(1),
            "{filters}: {found}"
        );
        assert_eq!(
            value(&found[0], "0020000D"),
            expected.study_instance_uid.as_str(),
            "{filters}"
        );
    }
    // SQL's own wildcards are text, not wildcards.
    for filters in [
        "{'StudyDate': '19000101-19000102'}",
        "{'ModalitiesInStudy': '%'}",
        "{'PatientName': 'dup%'}",
        "{'PatientName': '_upont*'}",
    ] {
        let none = dicomweb_client(
            &server,
            &clinician,
            &format!("client.search_for_studies(search_filters={filters})"),
        );
        assert_eq!(none, Value::Array(vec![]), "{filters}");
    }

    // Series, then instances, of the CT.
    let series = dicomweb_client(
        &server,
        &clinician,
        &format!(
            "client.search_for_series(study_instance_uid='{}')",
            ct.study_instance_uid
        ),
    );
    assert_eq!(series.as_array().map(Vec::len), Some(1), "{series}");
    assert_eq!(
        value(&series[0], "0020000E"),
        ct.series_instance_uid.as_str()
    );
    assert_eq!(value(&series[0], "00080060"), "CT");
    assert_eq!(value(&series[0], "00201209"), 3);
    let instances = dicomweb_client(
        &server,
        &clinician,
        &format!(
            "client.search_for_instances(study_instance_uid='{}', series_instance_uid='{}')",
            ct.study_instance_uid, ct.series_instance_uid
        ),
    );
    let numbers: Vec<i64> = instances
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|i| value(i, "00200013").as_i64())
        .collect();
    assert_eq!(numbers, [1, 2, 3], "{instances}");
    let paged = dicomweb_client(
        &server,
        &clinician,
        &format!(
            "client.search_for_instances(study_instance_uid='{}', \
             series_instance_uid='{}', limit=2, offset=2)",
            ct.study_instance_uid, ct.series_instance_uid
        ),
    );
    assert_eq!(paged.as_array().map(Vec::len), Some(1), "{paged}");

    // Across studies: the series and instances of the caller's sites only.
    let everywhere = dicomweb_client(&server, &clinician, "client.search_for_series()");
    let mut series_uids: Vec<&str> = everywhere
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|s| value(s, "0020000E").as_str())
        .collect();
    series_uids.sort_unstable();
    let mut expected = vec![
        ct.series_instance_uid.as_str(),
        mr.series_instance_uid.as_str(),
    ];
    expected.sort_unstable();
    assert_eq!(series_uids, expected, "{everywhere}");
    let mr_series = dicomweb_client(
        &server,
        &clinician,
        "client.search_for_series(search_filters={'Modality': 'MR'})",
    );
    assert_eq!(mr_series.as_array().map(Vec::len), Some(1), "{mr_series}");
    assert_eq!(
        value(&mr_series[0], "0020000D"),
        mr.study_instance_uid.as_str()
    );
    let mr_instances = dicomweb_client(
        &server,
        &clinician,
        &format!(
            "client.search_for_instances(search_filters={{'StudyInstanceUID': '{}'}})",
            mr.study_instance_uid
        ),
    );
    assert_eq!(
        mr_instances.as_array().map(Vec::len),
        Some(2),
        "{mr_instances}"
    );
    let hidden = dicomweb_client(
        &server,
        &clinician,
        &format!(
            "client.search_for_instances(search_filters={{'StudyInstanceUID': '{}'}})",
            other_site.study_instance_uid
        ),
    );
    assert_eq!(hidden, Value::Array(vec![]), "another site's instances");

    // Refusals, through a plain HTTP client.
    let other = &other_site.study_instance_uid;
    let (status, body) = server.get_as(None, "/dicom-web/studies");
    assert_eq!(status, 401, "{body}");
    let (status, body) = server.get_as(
        Some(&clinician),
        &format!("/dicom-web/studies/{other}/series"),
    );
    assert_eq!(status, 404, "another site's study: {body}");
    let (status, body) = server.get_as(
        Some(&clinician),
        &format!(
            "/dicom-web/studies/{}/series/1.2.3/instances",
            ct.study_instance_uid
        ),
    );
    assert_eq!(status, 404, "an unknown series: {body}");
    for (path, mentions) in [
        ("/dicom-web/studies?StudyDate=yesterday", "StudyDate"),
        ("/dicom-web/studies?limit=0", "limit"),
        (
            "/dicom-web/studies?StudyInstanceUID=1.2.x",
            "StudyInstanceUID",
        ),
        ("/dicom-web/studies/not-a-uid/series", "study"),
    ] {
        let (status, body) = server.get_as(Some(&clinician), path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|m| m.contains(mentions)),
            "{path}: {body}"
        );
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .get(format!(
            "http://127.0.0.1:{}/dicom-web/studies",
            server.http_port
        ))
        .header("authorization", format!("Bearer {clinician}"))
        .header("accept", "application/dicom+xml")
        .call()
        .expect("an answer");
    assert_eq!(response.status().as_u16(), 406);

    // Each search is in the audit trail.
    let (status, trail) = server.get("/api/audit?limit=1000");
    assert_eq!(status, 200, "{trail}");
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["action"].as_str()).collect())
        .unwrap_or_default();
    for action in [
        "dicomweb.search",
        "dicomweb.search_series",
        "dicomweb.search_instances",
    ] {
        assert!(actions.contains(&action), "{action} not audited");
    }
}

/// GET `path` with `token` and `accept`: status, content type, body.
fn get_bytes(server: &TestServer, token: &str, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(format!("http://127.0.0.1:{}{path}", server.http_port))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", accept)
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    (status, content_type, body)
}

const ANY_SYNTAX: &str = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";

fn a_viewer_retrieves_instances_as_stored(backend: &Backend) {
    let server = TestServer::start(backend);
    let ct = SyntheticStudy::ct(3);
    let other_site = SyntheticStudy::ct(1);
    telerad_push(&server, "SITE_A", &ct);
    telerad_push(&server, "SITE_B", &other_site);
    let clinician = server.user_token("clin-a", &["--role", "clinician", "--site", "site-a"]);
    let (study, series) = (&ct.study_instance_uid, &ct.series_instance_uid);

    // dicomweb-client reads the parts back as data sets: every instance,
    // with its pixels.
    let got = dicomweb_client(
        &server,
        &clinician,
        &format!(
            "sorted([d.SOPInstanceUID, int(d.InstanceNumber), len(d.PixelData)] \
             for d in client.retrieve_series('{study}', '{series}'))"
        ),
    );
    let rows = got.as_array().expect("a list");
    assert_eq!(rows.len(), 3, "{got}");
    let pixels = usize::from(ct.rows) * usize::from(ct.columns) * 2;
    for row in rows {
        assert_eq!(row[2], pixels, "{row}");
    }
    let whole = dicomweb_client(
        &server,
        &clinician,
        &format!("len(client.retrieve_study('{study}'))"),
    );
    assert_eq!(whole, 3);
    let sop = rows[0][0].as_str().expect("a SOP Instance UID");
    let one = dicomweb_client(
        &server,
        &clinician,
        &format!("client.retrieve_instance('{study}', '{series}', '{sop}').SOPInstanceUID"),
    );
    assert_eq!(one, sop);

    // The part is the stored file, byte for byte.
    let path = format!("/dicom-web/studies/{study}/series/{series}/instances/{sop}");
    let (status, content_type, body) = get_bytes(&server, &clinician, &path, ANY_SYNTAX);
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("multipart/related; type=\"application/dicom\"; boundary="),
        "{content_type}"
    );
    let stored = server
        .stored_files()
        .into_iter()
        .find(|f| f.to_string_lossy().contains(sop))
        .expect("the stored file");
    let file = std::fs::read(&stored).expect("read the stored file");
    let start = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
        .expect("a part header");
    assert_eq!(&body[start..start + file.len()], &file[..]);
    assert!(body.ends_with(b"--\r\n"), "the closing boundary");

    // Another syntax than the stored one is refused before anything is
    // sent; another site's study and an unknown series are not found.
    let (status, _, _) = get_bytes(
        &server,
        &clinician,
        &path,
        "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.90",
    );
    assert_eq!(status, 406);
    let (status, _, _) = get_bytes(&server, &clinician, &path, "image/jpeg");
    assert_eq!(status, 406);
    let (status, _, _) = get_bytes(
        &server,
        &clinician,
        &format!("/dicom-web/studies/{}", other_site.study_instance_uid),
        ANY_SYNTAX,
    );
    assert_eq!(status, 404, "another site's study");
    let (status, _, _) = get_bytes(
        &server,
        &clinician,
        &format!("/dicom-web/studies/{study}/series/1.2.3"),
        ANY_SYNTAX,
    );
    assert_eq!(status, 404, "an unknown series");
    let (status, body) = server.get_as(None, &path);
    assert_eq!(status, 401, "{body}");
}

fn a_viewer_reads_metadata_written_when_the_images_were_stored(backend: &Backend) {
    let server = TestServer::start(backend);
    let ct = SyntheticStudy::ct(3);
    let other_site = SyntheticStudy::ct(1);
    telerad_push(&server, "SITE_A", &ct);
    telerad_push(&server, "SITE_B", &other_site);
    let clinician = server.user_token("clin-a", &["--role", "clinician", "--site", "site-a"]);
    let (study, series) = (&ct.study_instance_uid, &ct.series_instance_uid);

    let series_metadata = || {
        dicomweb_client(
            &server,
            &clinician,
            &format!("client.retrieve_series_metadata('{study}', '{series}')"),
        )
    };
    let first = series_metadata();
    let sets = first.as_array().expect("a list");
    assert_eq!(sets.len(), 3, "{first}");
    for set in sets {
        assert_eq!(value(set, "0020000D"), study.as_str());
        assert_eq!(value(set, "0020000E"), series.as_str());
        assert_eq!(value(set, "00280010"), ct.rows, "{set}");
        assert_eq!(value(set, "00280011"), ct.columns, "{set}");
        assert_eq!(value(set, "00100020"), ct.patient_id.as_str());
        // The pixels are named, not sent.
        let sop = value(set, "00080018").as_str().expect("a SOP Instance UID");
        assert_eq!(
            set["7FE00010"]["BulkDataURI"],
            format!("/dicom-web/studies/{study}/series/{series}/instances/{sop}/bulkdata/7FE00010"),
            "{set}"
        );
        assert!(set["7FE00010"].get("InlineBinary").is_none());
    }
    let sop = value(&sets[0], "00080018")
        .as_str()
        .expect("a SOP Instance UID");
    let one = dicomweb_client(
        &server,
        &clinician,
        &format!("client.retrieve_instance_metadata('{study}', '{series}', '{sop}')"),
    );
    assert_eq!(value(&one, "00080018"), sop, "{one}");
    let whole = dicomweb_client(
        &server,
        &clinician,
        &format!("len(client.retrieve_study_metadata('{study}'))"),
    );
    assert_eq!(whole, 3);

    // Answered from the index, once the metadata written behind the
    // acknowledgements is there: with the files out of reach, the same.
    let rt = runtime();
    let index = server.index(&rt);
    let count = || {
        rt.block_on(
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM instance_metadata")
                .fetch_one(index.database().pool()),
        )
        .expect("count")
    };
    eventually(
        "one metadata row per stored instance",
        Duration::from_secs(30),
        || (count() == 4).then_some(()),
    );
    let studies = server.data_dir.join("studies");
    let away = server.data_dir.join("studies.away");
    std::fs::rename(&studies, &away).expect("move the stored files away");
    let without_files = series_metadata();
    std::fs::rename(&away, &studies).expect("put them back");
    assert_eq!(without_files, first);

    // An instance stored before metadata was kept (an older database) has
    // it built from its file at its first request, and kept.
    rt.block_on(sqlx::query("DELETE FROM instance_metadata").execute(index.database().pool()))
        .expect("forget the metadata");
    assert_eq!(series_metadata(), first);
    assert_eq!(count(), 3, "the series' metadata kept");

    // Refusals: no token, another site's study, an unknown series, an
    // Accept without JSON.
    let path = format!("/dicom-web/studies/{study}/series/{series}/metadata");
    let (status, body) = server.get_as(None, &path);
    assert_eq!(status, 401, "{body}");
    let (status, body) = server.get_as(
        Some(&clinician),
        &format!(
            "/dicom-web/studies/{}/metadata",
            other_site.study_instance_uid
        ),
    );
    assert_eq!(status, 404, "another site's study: {body}");
    let (status, body) = server.get_as(
        Some(&clinician),
        &format!("/dicom-web/studies/{study}/series/1.2.3/metadata"),
    );
    assert_eq!(status, 404, "an unknown series: {body}");
    let (status, _, _) = get_bytes(&server, &clinician, &path, "application/dicom+xml");
    assert_eq!(status, 406);

    let (status, trail) = server.get(&format!("/api/audit?study={study}&limit=1000"));
    assert_eq!(status, 200, "{trail}");
    let audited = trail["items"].as_array().map_or(0, |records| {
        records
            .iter()
            .filter(|r| r["action"] == "dicomweb.metadata" && r["outcome"] == "success")
            .count()
    });
    assert_eq!(audited, 5, "every metadata read audited: {trail}");
    let refused = trail["items"].as_array().map_or(0, |records| {
        records
            .iter()
            .filter(|r| r["action"] == "dicomweb.metadata" && r["outcome"] == "failed")
            .count()
    });
    // The unknown series and the Accept without JSON.
    assert_eq!(refused, 2, "refusals audited too: {trail}");
}

/// The Study and Series Instance UIDs of a sample file, and its pixel
/// data's first fragment (or value).
fn sample(name: &str) -> (std::path::PathBuf, String, String, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/samples")
        .join(name);
    let object = dicom_object::open_file(&path).expect("a sample");
    let uid = |tag| {
        object
            .element(tag)
            .expect("a UID")
            .to_str()
            .expect("text")
            .trim_end_matches('\0')
            .to_string()
    };
    use dicom_dictionary_std::tags;
    let (study, series, sop) = (
        uid(tags::STUDY_INSTANCE_UID),
        uid(tags::SERIES_INSTANCE_UID),
        uid(tags::SOP_INSTANCE_UID),
    );
    (path, study, series, sop)
}

/// Frames: the uncompressed CT as octets, the JPEG 2000 MR as its code
/// stream or decoded, the bulk data its metadata names; frames that do not
/// exist are not found. Then rendered frames and thumbnails.
/// `body` (a multipart answer) holds the pixels of the uncompressed copy
/// of pydicom's small MR, which its compressed copies must decode to.
fn assert_holds_uncompressed_mr(body: &[u8]) {
    let (original, ..) = sample("MR_small.dcm");
    let original = dicom_object::open_file(original).expect("the original");
    let pixels = original
        .element(dicom_dictionary_std::tags::PIXEL_DATA)
        .expect("pixels")
        .to_bytes()
        .expect("bytes")
        .into_owned();
    assert_eq!(pixels.len(), 64 * 64 * 2);
    assert!(
        body.windows(pixels.len()).any(|w| w == pixels),
        "the decoded frame is the original's pixels"
    );
}

/// Sends the sample file `name` to the server as site A's modality and
/// waits until its study is indexed.
fn push_sample(server: &TestServer, name: &str) {
    let (path, study, ..) = sample(name);
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::copy(&path, dir.path().join("sample.dcm")).expect("copy");
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination, "--calling-ae", "SITE_A"])
        .arg(dir.path()));
    assert!(out.status.success(), "{}", text(&out));
    eventually("the sample indexed", Duration::from_secs(30), || {
        let (status, _) = server.get(&format!("/api/studies/{study}"));
        (status == 200).then_some(())
    });
}

#[test]
fn a_viewer_retrieves_frames_as_stored() {
    let server = TestServer::start(&Backend::Sqlite);
    let ct = SyntheticStudy::ct(2);
    telerad_push(&server, "SITE_A", &ct);
    let (_, j2k_study, j2k_series, j2k_sop) = sample("MR_small_jp2klossless.dcm");
    push_sample(&server, "MR_small_jp2klossless.dcm");
    let clinician = server.user_token("clin-a", &["--role", "clinician", "--site", "site-a"]);

    // The CT's frame through dicomweb-client: the stored pixels, which end
    // the stored file.
    let (study, series) = (&ct.study_instance_uid, &ct.series_instance_uid);
    let sets = dicomweb_client(
        &server,
        &clinician,
        &format!("client.retrieve_series_metadata('{study}', '{series}')"),
    );
    let sop = value(&sets[0], "00080018")
        .as_str()
        .expect("a SOP Instance UID")
        .to_string();
    let frame = dicomweb_client(
        &server,
        &clinician,
        &format!(
            "[list(f) for f in client.retrieve_instance_frames('{study}', '{series}', '{sop}', \
             frame_numbers=[1], media_types=('application/octet-stream',))]"
        ),
    );
    let frame: Vec<u8> = serde_json::from_value(frame[0].clone()).expect("bytes");
    assert_eq!(
        frame.len(),
        usize::from(ct.rows) * usize::from(ct.columns) * 2
    );
    let stored = server
        .stored_files()
        .into_iter()
        .find(|f| f.to_string_lossy().contains(&sop))
        .expect("the stored file");
    let file = std::fs::read(&stored).expect("read");
    assert_eq!(&file[file.len() - frame.len()..], &frame[..]);
    // The metadata's bulk data URI gives the same bytes.
    let uri = sets[0]["7FE00010"]["BulkDataURI"].as_str().expect("a URI");
    let (status, content_type, body) = get_bytes(&server, &clinician, uri, "*/*");
    assert_eq!(status, 200, "{uri}");
    assert!(content_type.starts_with("multipart/related; type=\"application/octet-stream\""));
    assert!(
        body.windows(frame.len()).any(|w| w == &frame[..]),
        "the pixels in the part"
    );

    // The JPEG 2000 frame as its code stream.
    let base = format!("/dicom-web/studies/{j2k_study}/series/{j2k_series}/instances/{j2k_sop}");
    let (status, content_type, body) = get_bytes(
        &server,
        &clinician,
        &format!("{base}/frames/1"),
        "multipart/related; type=\"image/jp2\"",
    );
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("multipart/related; type=\"image/jp2\""),
        "{content_type}"
    );
    let start = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
        .expect("a part header");
    let header = String::from_utf8_lossy(&body[..start]).to_string();
    assert!(
        header.contains("transfer-syntax=1.2.840.10008.1.2.4.90"),
        "{header}"
    );
    assert_eq!(
        &body[start..start + 4],
        &[0xFF, 0x4F, 0xFF, 0x51],
        "SOC, SIZ"
    );
    // Asked for uncompressed: decoded, the pixels of the uncompressed copy
    // of the same MR.
    let (status, content_type, body) = get_bytes(
        &server,
        &clinician,
        &format!("{base}/frames/1"),
        "multipart/related; type=\"application/octet-stream\"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        content_type.contains("application/octet-stream"),
        "{content_type}"
    );
    assert_holds_uncompressed_mr(&body);
    let (status, _, _) = get_bytes(
        &server,
        &clinician,
        &format!("{base}/frames/1"),
        "multipart/related; type=\"image/jpeg\"",
    );
    assert_eq!(status, 406, "not transcoded to another compression");

    // Frames and attributes that are not there; malformed lists.
    let ct_base = format!("/dicom-web/studies/{study}/series/{series}/instances/{sop}");
    for (path, expected) in [
        (format!("{ct_base}/frames/2"), 404),
        (format!("{ct_base}/frames/1,2"), 404),
        (format!("{ct_base}/frames/0"), 400),
        (format!("{ct_base}/frames/1;2"), 400),
        (format!("{ct_base}/bulkdata/00100010"), 404),
        (format!("{ct_base}/bulkdata/7FE0"), 400),
        (
            format!("/dicom-web/studies/{study}/series/{series}/instances/1.2.3/frames/1"),
            404,
        ),
    ] {
        let (status, body) = server.get_as(Some(&clinician), &path);
        assert_eq!(status, expected, "{path}: {body}");
    }
    let (status, body) = server.get_as(None, &format!("{ct_base}/frames/1"));
    assert_eq!(status, 401, "{body}");

    // Rendered: the real client's PNG, then windows, presets, viewports
    // and thumbnails read back as pictures.
    let png = dicomweb_client(
        &server,
        &clinician,
        &format!(
            "list(client.retrieve_instance_rendered('{study}', '{series}', '{sop}', \
             media_types=('image/png',))[:8])"
        ),
    );
    assert_eq!(
        png,
        serde_json::json!([137, 80, 78, 71, 13, 10, 26, 10]),
        "a PNG"
    );
    let picture = |path: &str, accept: &str| {
        let (status, content_type, body) = get_bytes(&server, &clinician, path, accept);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        let format = match content_type.as_str() {
            "image/png" => image::ImageFormat::Png,
            "image/jpeg" => image::ImageFormat::Jpeg,
            other => panic!("{path}: {other}"),
        };
        image::load_from_memory_with_format(&body, format)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .to_luma8()
    };
    let full = picture(&format!("{ct_base}/rendered?preset=brain"), "image/png");
    assert_eq!(
        (full.width(), full.height()),
        (u32::from(ct.columns), u32::from(ct.rows))
    );
    let bone = picture(&format!("{ct_base}/rendered?preset=bone"), "image/png");
    assert_ne!(
        full.as_raw(),
        bone.as_raw(),
        "another window, another picture"
    );
    let same = picture(
        &format!("{ct_base}/frames/1/rendered?window=40,80"),
        "image/png",
    );
    assert_eq!(full.as_raw(), same.as_raw(), "the brain preset is 40,80");
    let small = picture(&format!("{ct_base}/rendered?viewport=64,64"), "image/jpeg");
    assert_eq!((small.width(), small.height()), (64, 64));
    let j2k = picture(&format!("{base}/rendered"), "*/*");
    assert_eq!((j2k.width(), j2k.height()), (64, 64));
    for path in [
        format!("/dicom-web/studies/{study}/series/{series}/thumbnail"),
        format!("/dicom-web/studies/{study}/thumbnail"),
        format!("{ct_base}/thumbnail"),
    ] {
        let thumbnail = picture(&path, "image/jpeg");
        assert!(
            thumbnail.width() <= 128 && thumbnail.height() <= 128,
            "{path}"
        );
    }
    for (path, accept, expected) in [
        (
            format!("{ct_base}/rendered?preset=cardiac"),
            "image/png",
            400,
        ),
        (format!("{ct_base}/rendered?window=40,0"), "image/png", 400),
        (
            format!("{ct_base}/rendered?viewport=0,10"),
            "image/png",
            400,
        ),
        (format!("{ct_base}/rendered?quality=101"), "image/jpeg", 400),
        (format!("{ct_base}/frames/2/rendered"), "image/png", 404),
        (format!("{ct_base}/frames/1,2/rendered"), "image/png", 400),
        (format!("{ct_base}/rendered"), "application/pdf", 406),
    ] {
        let (status, _, body) = get_bytes(&server, &clinician, &path, accept);
        assert_eq!(
            status,
            expected,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
    }
}

/// A JPEG-LS instance (as a modality or PACS sends it; the sample was
/// encoded by CharLS): its frame as stored, decompressed for a client that
/// asks for uncompressed pixels (the uncompressed copy's, bit for bit), and
/// rendered as the uncompressed copy renders.
#[test]
fn a_jpeg_ls_instance_is_decoded_for_viewers() {
    let server = TestServer::start(&Backend::Sqlite);
    let clinician = server.user_token("clin-a", &["--role", "clinician", "--site", "site-a"]);
    let (_, study, series, sop) = sample("MR_small_jpeg_ls_lossless.dcm");
    push_sample(&server, "MR_small_jpeg_ls_lossless.dcm");
    let base = format!("/dicom-web/studies/{study}/series/{series}/instances/{sop}");
    let (status, content_type, body) = get_bytes(
        &server,
        &clinician,
        &format!("{base}/frames/1"),
        "multipart/related; type=\"image/jls\"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(content_type.contains("image/jls"), "{content_type}");
    assert!(
        body.windows(2).any(|w| w == [0xFF, 0xF7]),
        "a JPEG-LS frame header"
    );

    let (status, _, body) = get_bytes(
        &server,
        &clinician,
        &format!("{base}/frames/1"),
        "multipart/related; type=\"application/octet-stream\"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_holds_uncompressed_mr(&body);

    let (status, content_type, body) = get_bytes(
        &server,
        &clinician,
        &format!("{base}/rendered"),
        "image/png",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "image/png");
    let rendered = image::load_from_memory_with_format(&body, image::ImageFormat::Png)
        .expect("a PNG")
        .to_luma8();
    assert_eq!((rendered.width(), rendered.height()), (64, 64));
}

/// A viewer served from another origin: the browser's preflight and its
/// GET are answered for the configured origin, on DICOMweb only.
#[test]
fn a_viewer_of_a_configured_origin_may_call_from_the_browser() {
    let server = TestServer::start_with(
        &Backend::Sqlite,
        ServerOptions {
            extra_http: r#"cors_allowed_origins = ["https://viewer.example.org"]"#.into(),
            ..ServerOptions::default()
        },
    );
    let token = server.admin_token();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let call = |method: &str, path: &str, origin: &str| {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("http://127.0.0.1:{}{path}", server.http_port))
            .header("origin", origin);
        if method == "OPTIONS" {
            request = request
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization");
        } else {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = agent
            .run(request.body(()).expect("a request"))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let allowed = response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (response.status().as_u16(), allowed)
    };
    let viewer = "https://viewer.example.org";
    let (status, allowed) = call("OPTIONS", "/dicom-web/studies", viewer);
    assert!((200..300).contains(&status), "preflight: {status}");
    assert_eq!(allowed.as_deref(), Some(viewer));
    let (status, allowed) = call("GET", "/dicom-web/studies", viewer);
    assert_eq!(status, 200);
    assert_eq!(allowed.as_deref(), Some(viewer));
    // Another origin, and the rest of the API, get no CORS answer.
    let (_, allowed) = call("GET", "/dicom-web/studies", "https://elsewhere.example.org");
    assert_eq!(allowed, None);
    let (_, allowed) = call("GET", "/api/studies", viewer);
    assert_eq!(allowed, None);
    let (_, allowed) = call("OPTIONS", "/api/studies", viewer);
    assert_eq!(allowed, None);
}

/// When a study completes its first frames are rendered ahead (the log
/// says how many) and answered as asked; an instance sent again with other
/// pixels is a new stored version, rendered anew rather than answered
/// from what was kept of the first.
fn a_completed_study_is_rendered_ahead_and_a_new_version_anew(backend: &Backend) {
    let server = TestServer::start(backend);
    let token = server.admin_token();
    let study = SyntheticStudy::ct(3);
    telerad_push(&server, "STORESCU", &study);
    let uid = &study.study_instance_uid;
    server.wait_for_study(uid, "complete", 3, Duration::from_secs(30));
    eventually("the frames rendered ahead", Duration::from_secs(30), || {
        let log = server.log();
        log.lines()
            .any(|l| {
                l.contains("first frames rendered ahead")
                    && l.contains(uid)
                    && l.contains("frames=3")
            })
            .then_some(())
    });
    let path = format!(
        "/dicom-web/studies/{uid}/series/{}/instances/{}/rendered",
        study.series_instance_uid,
        study.sop_instance_uid(0)
    );
    let (status, media, first) = get_bytes(&server, &token, &path, "image/jpeg");
    assert_eq!((status, media.as_str()), (200, "image/jpeg"));
    let picture =
        image::load_from_memory_with_format(&first, image::ImageFormat::Jpeg).expect("a JPEG");
    assert_eq!((picture.width(), picture.height()), (512, 512));
    // The same picture by its frame, and again.
    let framed = format!("{}/frames/1/rendered", path.trim_end_matches("/rendered"));
    assert_eq!(get_bytes(&server, &token, &framed, "image/jpeg").2, first);
    assert_eq!(get_bytes(&server, &token, &path, "image/jpeg").2, first);

    // Slice 1's pixels sent as slice 0: version 2 of the same instance.
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut other = study.instance(1);
    let sop = study.sop_instance_uid(0);
    other.put(dicom_core::DataElement::new(
        dicom_dictionary_std::tags::SOP_INSTANCE_UID,
        dicom_core::VR::UI,
        dicom_core::PrimitiveValue::from(sop.as_str()),
    ));
    other.meta_mut().media_storage_sop_instance_uid = sop.clone();
    other.meta_mut().update_information_group_length();
    other
        .write_to_file(dir.path().join("again.dcm"))
        .expect("write the file");
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination, "--calling-ae", "STORESCU"])
        .arg(dir.path()));
    assert!(out.status.success(), "{}", text(&out));
    let again = eventually("the new version answered", Duration::from_secs(30), || {
        let (status, _, body) = get_bytes(&server, &token, &path, "image/jpeg");
        (status == 200 && body != first).then_some(body)
    });
    image::load_from_memory_with_format(&again, image::ImageFormat::Jpeg).expect("a JPEG");
}
