//! Bad input gets a clear answer and nothing else: garbage, truncated and
//! oversized PDUs, aborts mid-instance, unknown AE titles, unsupported SOP
//! classes, hostile UIDs, truncated data sets. After each, the server still
//! serves others.

mod common;

use common::dicom::{CT_IMAGE_STORAGE, EXPLICIT_VR_LE, RawPeer, dataset_bytes, write_with_uids};
use common::*;
use dicom_ul::pdu::{
    AbortRQSource, AssociationRJResult, AssociationRJServiceUserReason, AssociationRJSource, Pdu,
    PresentationContextResultReason,
};
use std::process::Command;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

on_every_backend!(
    garbage_and_truncated_pdus_are_dropped,
    oversized_pdu_is_aborted,
    abort_or_disconnect_mid_instance_leaves_nothing,
    unknown_ae_titles_and_addresses_are_rejected,
    unsupported_sop_classes_and_syntaxes_are_refused_per_context,
    hostile_uids_never_become_paths,
    malformed_data_sets_get_a_failure_status,
    other_associations_are_unaffected,
    lengths_that_lie_cost_no_memory,
);

fn assert_still_serving(server: &TestServer) {
    let status = runtime()
        .block_on(telerad_scp::scu::echo(
            "SITE_A",
            &server.destination(),
            Duration::from_secs(10),
        ))
        .unwrap_or_else(|e| panic!("the server no longer answers C-ECHO: {e}\n{}", server.log()));
    assert_eq!(status, 0);
}

fn ct_context(peer: &mut RawPeer) -> u8 {
    let ac = peer.expect_accepted("SITE_A", &[(CT_IMAGE_STORAGE, EXPLICIT_VR_LE)]);
    assert_eq!(
        ac.presentation_contexts[0].reason,
        PresentationContextResultReason::Acceptance
    );
    ac.presentation_contexts[0].id
}

fn garbage_and_truncated_pdus_are_dropped(backend: &Backend) {
    let server = TestServer::start(backend);
    // Unknown PDU type.
    let mut peer = RawPeer::connect(&server.dicom_address());
    peer.send_bytes(&[0xAB; 200]);
    match peer.receive() {
        Some(Pdu::AbortRQ {
            source: AbortRQSource::ServiceProvider(_),
        })
        | None => {}
        other => panic!("garbage answered with {other:?}"),
    }
    assert!(peer.closed_by_server());
    // An association request cut short, then the sender goes away.
    let mut peer = RawPeer::connect(&server.dicom_address());
    peer.send_bytes(&[0x01, 0x00, 0x00, 0x00, 0x03, 0xE8, 0x00, 0x01, 0x00, 0x00]);
    let _ = peer.stream.shutdown(std::net::Shutdown::Write);
    assert!(matches!(peer.receive(), None | Some(Pdu::AbortRQ { .. })));
    // A well-framed PDU whose content is nonsense.
    let mut peer = RawPeer::connect(&server.dicom_address());
    let mut bad = vec![0x01, 0x00, 0x00, 0x00, 0x00, 0x40];
    bad.extend_from_slice(&[0x55; 0x40]);
    peer.send_bytes(&bad);
    assert!(matches!(peer.receive(), None | Some(Pdu::AbortRQ { .. })));
    assert_still_serving(&server);
}

fn oversized_pdu_is_aborted(backend: &Backend) {
    let server = TestServer::start(backend);
    let mut peer = RawPeer::connect(&server.dicom_address());
    ct_context(&mut peer);
    // A P-DATA-TF announcing 64 MiB, far over the 128 kB we announced.
    peer.send_bytes(&[0x04, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    match peer.receive() {
        Some(Pdu::AbortRQ {
            source: AbortRQSource::ServiceProvider(_),
        }) => {}
        other => panic!("oversized PDU answered with {other:?}"),
    }
    assert!(peer.closed_by_server());
    assert!(
        server.log().contains("exceeds the limit"),
        "{}",
        server.log()
    );
    assert_still_serving(&server);
}

fn abort_or_disconnect_mid_instance_leaves_nothing(backend: &Backend) {
    let server = TestServer::start(backend);
    let dir = tempfile::tempdir().expect("a temp dir");
    let study = SyntheticStudy::ct(2);
    let files = study.write_to(dir.path()).expect("generate a CT");
    let data = dataset_bytes(&files[0]);
    for abort in [true, false] {
        let mut peer = RawPeer::connect(&server.dicom_address());
        let context = ct_context(&mut peer);
        peer.send_command(
            context,
            telerad_scp::dimse::store_rq(1, CT_IMAGE_STORAGE, &study.sop_instance_uid(0)),
        );
        peer.send_data(context, &data[..8000], false);
        peer.send_data(context, &data[8000..16000], false);
        if abort {
            peer.send(&Pdu::AbortRQ {
                source: AbortRQSource::ServiceUser,
            });
        }
        drop(peer);
    }
    // Both associations decided: each instance logged as discarded (the
    // abort, then the dropped connection), its partial file then removed.
    eventually(
        "both partial instances discarded and their files removed",
        Duration::from_secs(20),
        || {
            let discarded = server.log().matches("never acknowledged").count();
            (discarded == 2 && server.incoming_files().is_empty()).then_some(())
        },
    );
    assert!(
        server
            .log()
            .contains("aborted by the peer in the middle of an instance")
            && server
                .log()
                .contains("connection closed in the middle of an instance"),
        "{}",
        server.log()
    );
    assert!(
        server.stored_files().is_empty(),
        "{:?}",
        server.stored_files()
    );
    let (status, _) = server.get(&format!("/api/studies/{}", study.study_instance_uid));
    assert_eq!(status, 404, "an instance never acknowledged was indexed");
    // The same instance, sent properly, is stored.
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination])
        .arg(dir.path()));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.stored_files().len(), 2);
}

fn rejection(pdu: Pdu) -> (AssociationRJResult, AssociationRJSource) {
    match pdu {
        Pdu::AssociationRJ(rj) => (rj.result, rj.source),
        other => panic!("expected A-ASSOCIATE-RJ, got {other:?}"),
    }
}

fn unknown_ae_titles_and_addresses_are_rejected(backend: &Backend) {
    let server = TestServer::start(backend);
    let contexts = [(CT_IMAGE_STORAGE, EXPLICIT_VR_LE)];
    let calling_unknown = AssociationRJSource::ServiceUser(
        AssociationRJServiceUserReason::CallingAETitleNotRecognized,
    );
    // An AE title no site has.
    let (result, source) =
        rejection(RawPeer::connect(&server.dicom_address()).associate("NOBODY", &contexts));
    assert_eq!(
        (result, source),
        (AssociationRJResult::Permanent, calling_unknown.clone())
    );
    // A site's AE title, from an address outside its networks.
    let (_, source) =
        rejection(RawPeer::connect(&server.dicom_address()).associate("SITE_FAR", &contexts));
    assert_eq!(source, calling_unknown);
    // The wrong called AE title.
    let port = server.dicom_port.to_string();
    let out = run(telerad_fixtures::dcmtk::command("echoscu").args([
        "-aet",
        "ECHOSCU",
        "-aec",
        "NOT_TELERAD",
        "127.0.0.1",
        &port,
    ]));
    assert!(!out.status.success());
    assert!(
        text(&out).contains("Called AE Title Not Recognized"),
        "{}",
        text(&out)
    );
    // DCMTK sees the calling AE rejection too.
    let out = run(telerad_fixtures::dcmtk::command("echoscu").args([
        "-aet",
        "NOBODY",
        "-aec",
        SERVER_AE,
        "127.0.0.1",
        &port,
    ]));
    assert!(!out.status.success());
    assert!(
        text(&out).contains("Calling AE Title Not Recognized"),
        "{}",
        text(&out)
    );
    assert!(server.log().contains("is not configured for any site"));
    assert_still_serving(&server);
}

fn unsupported_sop_classes_and_syntaxes_are_refused_per_context(backend: &Backend) {
    let options = ServerOptions {
        // Restricted to CT and MR by configuration.
        extra_dicom:
            r#"accepted_sop_classes = ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"]"#
                .into(),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(backend, options);
    let mut peer = RawPeer::connect(&server.dicom_address());
    let ac = peer.expect_accepted(
        "SITE_A",
        &[
            ("1.2.840.10008.5.1.4.1.1.481.5", EXPLICIT_VR_LE), // RT Plan: not for a teleradiology reader
            ("1.2.840.10008.5.1.4.1.1.7", EXPLICIT_VR_LE), // Secondary Capture: excluded by config
            (CT_IMAGE_STORAGE, "1.2.840.10008.1.2.4.110"), // JPEG XL: not a syntax we store
            (CT_IMAGE_STORAGE, EXPLICIT_VR_LE),
        ],
    );
    let reasons: Vec<_> = ac
        .presentation_contexts
        .iter()
        .map(|pc| pc.reason.clone())
        .collect();
    assert_eq!(
        reasons,
        [
            PresentationContextResultReason::AbstractSyntaxNotSupported,
            PresentationContextResultReason::AbstractSyntaxNotSupported,
            PresentationContextResultReason::TransferSyntaxesNotSupported,
            PresentationContextResultReason::Acceptance,
        ]
    );
    // Sending an instance on a context that was refused is a protocol error.
    peer.send_command(
        1,
        telerad_scp::dimse::store_rq(1, "1.2.840.10008.5.1.4.1.1.481.5", "1.2.3"),
    );
    assert!(matches!(peer.receive(), Some(Pdu::AbortRQ { .. }) | None));
    assert_still_serving(&server);
}

fn push_output(server: &TestServer, file: &std::path::Path) -> std::process::Output {
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    run(Command::new(telerad_bin())
        .args(["push", "--to", &destination])
        .arg(file))
}

fn hostile_uids_never_become_paths(backend: &Backend) {
    let server = TestServer::start(backend);
    let dir = tempfile::tempdir().expect("a temp dir");
    let study = SyntheticStudy::ct(1);
    let files = study.write_to(dir.path()).expect("generate a CT");
    let data = dataset_bytes(&files[0]);

    // In the command: only a raw peer sends these (our SCU, like DCMTK,
    // refuses to read such a file).
    let mut peer = RawPeer::connect(&server.dicom_address());
    let context = ct_context(&mut peer);
    for (id, sop) in ["../../x", "1.2.3.4abc", "1.2.3/4", "..", "/etc/passwd"]
        .into_iter()
        .enumerate()
    {
        let id = u16::try_from(id).expect("few cases") + 1;
        peer.send_command(
            context,
            telerad_scp::dimse::store_rq(id, CT_IMAGE_STORAGE, sop),
        );
        peer.send_data(context, &data, true);
        let response = peer.receive_command();
        assert_eq!(response.status, 0xC000, "{sop:?}: {response:?}");
        assert!(
            response.error_comment.contains("SOP Instance UID"),
            "{sop:?}: {response:?}"
        );
    }
    drop(peer);

    // In the data set, from a file an SCU happily sends.
    for (sop, study_uid) in [
        ("1.2.826.0.1.3680043.99.1", "../../../../tmp/telerad-escape"),
        ("1.2.826.0.1.3680043.99.2", "1.2.3/../../4"),
    ] {
        let file = write_with_uids(&study, dir.path(), sop, Some(study_uid));
        let out = push_output(&server, &file);
        let said = text(&out);
        assert!(
            !out.status.success(),
            "hostile Study UID {study_uid:?} accepted: {said}"
        );
        assert!(said.contains("status 0xC000"), "{said}");
        assert!(said.contains("Study Instance UID"), "{said}");
    }
    assert!(
        server.stored_files().is_empty(),
        "{:?}",
        server.stored_files()
    );
    assert!(server.incoming_files().is_empty());
    assert!(!std::path::Path::new("/tmp/telerad-escape").exists());
    assert!(
        !server
            .data_dir
            .parent()
            .map(|p| p.join("x").exists())
            .unwrap_or(false)
    );
    assert_still_serving(&server);
}

fn malformed_data_sets_get_a_failure_status(backend: &Backend) {
    let server = TestServer::start(backend);
    let dir = tempfile::tempdir().expect("a temp dir");
    let study = SyntheticStudy::ct(1);
    let files = study.write_to(dir.path()).expect("generate a CT");
    let data = dataset_bytes(&files[0]);
    let mut peer = RawPeer::connect(&server.dicom_address());
    let context = ct_context(&mut peer);
    let sop = study.sop_instance_uid(0);

    // Truncated: the data set stops in the middle of the pixel data.
    peer.send_command(
        context,
        telerad_scp::dimse::store_rq(1, CT_IMAGE_STORAGE, &sop),
    );
    peer.send_data(context, &data[..data.len() * 3 / 5], true);
    let response = peer.receive_command();
    assert_eq!(response.status, 0xC000, "{response:?}");
    assert!(response.error_comment.contains("malformed"), "{response:?}");

    // Garbage bytes as a data set.
    peer.send_command(
        context,
        telerad_scp::dimse::store_rq(2, CT_IMAGE_STORAGE, &sop),
    );
    peer.send_data(context, &[0xFF; 333], true);
    let response = peer.receive_command();
    assert_eq!(response.status, 0xC000, "{response:?}");

    // A data set for another instance than the command announces.
    peer.send_command(
        context,
        telerad_scp::dimse::store_rq(3, CT_IMAGE_STORAGE, "1.2.826.0.1.3680043.99.7"),
    );
    peer.send_data(context, &data, true);
    let response = peer.receive_command();
    assert_eq!(response.status, 0xA900, "{response:?}");
    assert!(
        response.error_comment.contains("SOP Instance UID"),
        "{response:?}"
    );

    // The same association still stores a good instance.
    peer.send_command(
        context,
        telerad_scp::dimse::store_rq(4, CT_IMAGE_STORAGE, &sop),
    );
    peer.send_data(context, &data, true);
    assert_eq!(peer.receive_command().status, 0x0000);
    assert_eq!(server.stored_files().len(), 1);
    assert!(server.incoming_files().is_empty());
}

fn other_associations_are_unaffected(backend: &Backend) {
    let server = TestServer::start(backend);
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut study = SyntheticStudy::ct(120);
    study.rows = 256;
    study.columns = 256;
    study.write_to(dir.path()).expect("generate a CT");
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let push = Command::new(telerad_bin())
        .args(["push", "--to", &destination, "--associations", "2"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start telerad push");
    // Meanwhile, hostile peers.
    for _ in 0..5 {
        let mut peer = RawPeer::connect(&server.dicom_address());
        peer.send_bytes(&[0x07; 64]);
        let mut peer = RawPeer::connect(&server.dicom_address());
        ct_context(&mut peer);
        peer.send_bytes(&[0x04, 0x00, 0xFF, 0xFF, 0xFF, 0xF0]);
        let _ = peer.receive();
    }
    let out = push.wait_with_output().expect("push output");
    assert!(
        out.status.success(),
        "the legitimate push suffered: {}",
        text(&out)
    );
    server.wait_for_study(
        &study.study_instance_uid,
        "complete",
        120,
        Duration::from_secs(30),
    );
}

/// A field of /proc/PID/status, in kB (VmHWM: the peak resident set).
fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// One implicit VR little endian command element (PS3.7 §6.3.1).
fn command_element(element: u16, length: u32, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0];
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn lengths_that_lie_cost_no_memory(backend: &Backend) {
    let server = TestServer::start(backend);
    let dir = tempfile::tempdir().expect("a temp dir");
    let study = SyntheticStudy::ct(1);
    let files = study.write_to(dir.path()).expect("generate a CT");
    let data = dataset_bytes(&files[0]);
    assert_still_serving(&server);
    // An association opened before the attacks, used after them.
    let mut bystander = RawPeer::connect(&server.dicom_address());
    let bystander_context = ct_context(&mut bystander);
    let peak_before = proc_status_kb(server.pid(), "VmHWM");

    // 26 bytes of command set: a C-ECHO-RQ Command Field, then a Message ID
    // claiming 1 GiB (then 0xFFFFFFF0) of which 8 bytes follow.
    for claimed in [1u32 << 30, 0xFFFF_FFF0] {
        let mut command = command_element(0x0100, 2, &0x0030u16.to_le_bytes());
        command.extend(command_element(0x0110, claimed, &[1, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(command.len(), 26);
        let mut peer = RawPeer::connect(&server.dicom_address());
        let context = ct_context(&mut peer);
        peer.send_command(context, command);
        match peer.receive() {
            Some(Pdu::AbortRQ {
                source: AbortRQSource::ServiceProvider(_),
            }) => {}
            other => panic!("a lying command set answered with {other:?}"),
        }
        assert!(peer.closed_by_server());
    }
    let peak = proc_status_kb(server.pid(), "VmHWM");
    assert!(
        peak < peak_before + 64 * 1024,
        "the server's peak memory grew from {peak_before} kB to {peak} kB"
    );
    for claimed in [1u32 << 30, 0xFFFF_FFF0] {
        let said = format!("claims {claimed} bytes but only 8 follow");
        assert!(server.log().contains(&said), "{}", server.log());
    }

    // An association request whose User Information item claims 64 kB.
    let mut rq = vec![0, 1, 0, 0];
    rq.extend_from_slice(format!("{SERVER_AE:<16}{:<16}", "SITE_A").as_bytes());
    rq.extend_from_slice(&[0; 32]);
    rq.extend_from_slice(&[0x50, 0, 0xFF, 0xFF, 0x51, 0, 0, 4]);
    let mut pdu = vec![0x01, 0];
    pdu.extend_from_slice(&u32::try_from(rq.len()).expect("small").to_be_bytes());
    pdu.extend_from_slice(&rq);
    let mut peer = RawPeer::connect(&server.dicom_address());
    peer.send_bytes(&pdu);
    assert!(matches!(peer.receive(), None | Some(Pdu::AbortRQ { .. })));
    assert!(peer.closed_by_server());

    let peak_after = proc_status_kb(server.pid(), "VmHWM");
    assert!(
        peak_after < peak_before + 64 * 1024,
        "the server's peak memory grew from {peak_before} kB to {peak_after} kB"
    );
    // The association opened before still stores, and new ones are served.
    bystander.send_command(
        bystander_context,
        telerad_scp::dimse::store_rq(1, CT_IMAGE_STORAGE, &study.sop_instance_uid(0)),
    );
    bystander.send_data(bystander_context, &data, true);
    assert_eq!(bystander.receive_command().status, 0x0000);
    assert_still_serving(&server);
}

mod limits {
    //! Limits from the configuration: how many associations, how long a
    //! silent peer may hold a connection.

    use super::*;

    on_every_backend!(
        associations_over_the_limit_are_rejected_as_transient,
        silent_peers_are_dropped_after_the_timeouts,
        instances_over_the_size_limit_are_refused_and_the_association_goes_on,
        deflated_data_sets_may_not_inflate_past_the_size_limit,
        a_flood_of_silent_connections_holds_few_descriptors,
    );

    fn associations_over_the_limit_are_rejected_as_transient(backend: &Backend) {
        let server = TestServer::start_with(
            backend,
            ServerOptions {
                max_associations: 2,
                ..ServerOptions::default()
            },
        );
        let mut first = RawPeer::connect(&server.dicom_address());
        ct_context(&mut first);
        let mut second = RawPeer::connect(&server.dicom_address());
        ct_context(&mut second);
        let (result, source) = rejection(
            RawPeer::connect(&server.dicom_address())
                .associate("SITE_A", &[(CT_IMAGE_STORAGE, EXPLICIT_VR_LE)]),
        );
        assert_eq!(
            result,
            AssociationRJResult::Transient,
            "the sender should retry later"
        );
        assert_eq!(
            source,
            AssociationRJSource::ServiceProviderPresentation(
                dicom_ul::pdu::AssociationRJServiceProviderPresentationReason::LocalLimitExceeded
            )
        );
        // A slot frees when an association ends: the server keeps it until
        // the association's task has finished, a moment after the
        // A-RELEASE-RP, and refuses as transient until then.
        first.send(&Pdu::ReleaseRQ);
        assert!(matches!(first.receive(), Some(Pdu::ReleaseRP)));
        drop(first);
        let mut third = eventually(
            "a third association accepted once the first was released",
            Duration::from_secs(10),
            || {
                let mut peer = RawPeer::connect(&server.dicom_address());
                match peer.associate("SITE_A", &[(CT_IMAGE_STORAGE, EXPLICIT_VR_LE)]) {
                    Pdu::AssociationAC(_) => Some(peer),
                    Pdu::AssociationRJ(rj) if rj.result == AssociationRJResult::Transient => None,
                    other => panic!("while the slot frees: {other:?}"),
                }
            },
        );
        // Still one slot only: the second holds the other.
        let (result, _) = rejection(
            RawPeer::connect(&server.dicom_address())
                .associate("SITE_A", &[(CT_IMAGE_STORAGE, EXPLICIT_VR_LE)]),
        );
        assert_eq!(result, AssociationRJResult::Transient);
        third.send(&Pdu::ReleaseRQ);
        assert!(matches!(third.receive(), Some(Pdu::ReleaseRP)));
    }

    fn silent_peers_are_dropped_after_the_timeouts(backend: &Backend) {
        let server = TestServer::start_with(
            backend,
            ServerOptions {
                artim_timeout_secs: 1,
                idle_timeout_secs: 2,
                ..ServerOptions::default()
            },
        );
        // Connects and says nothing: closed once the ARTIM timer runs out.
        let started = std::time::Instant::now();
        let mut silent = RawPeer::connect(&server.dicom_address());
        assert!(silent.closed_by_server());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
            "closed after {waited:?}"
        );
        // Associates, then idles: aborted once the idle timeout runs out.
        let started = std::time::Instant::now();
        let mut idle = RawPeer::connect(&server.dicom_address());
        ct_context(&mut idle);
        assert!(matches!(idle.receive(), Some(Pdu::AbortRQ { .. })));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1900) && waited < Duration::from_secs(15),
            "aborted after {waited:?}"
        );
        assert_still_serving(&server);
    }

    fn instances_over_the_size_limit_are_refused_and_the_association_goes_on(backend: &Backend) {
        let limit = 64 * 1024;
        let server = TestServer::start_with(
            backend,
            ServerOptions {
                extra_dicom: format!("max_instance_bytes = {limit}"),
                ..ServerOptions::default()
            },
        );
        let dir = tempfile::tempdir().expect("a temp dir");
        // 512 x 512 x 2 bytes of pixels: over the limit.
        let big = SyntheticStudy::ct(1);
        let big_file = &big
            .write_to(&dir.path().join("big"))
            .expect("generate a CT")[0];
        let big_data = dataset_bytes(big_file);
        assert!(big_data.len() > limit);
        // 64 x 64 x 2: under it.
        let mut small = SyntheticStudy::ct(1);
        small.rows = 64;
        small.columns = 64;
        let small_file = &small
            .write_to(&dir.path().join("small"))
            .expect("generate a CT")[0];
        let small_data = dataset_bytes(small_file);
        assert!(small_data.len() < limit);

        let mut peer = RawPeer::connect(&server.dicom_address());
        let context = ct_context(&mut peer);
        peer.send_command(
            context,
            telerad_scp::dimse::store_rq(1, CT_IMAGE_STORAGE, &big.sop_instance_uid(0)),
        );
        // Past the limit, but not finished: once the server says it refused
        // the instance, its partial file is gone.
        peer.send_data(context, &big_data[..limit + 32 * 1024], false);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !server.log().contains("larger than max_instance_bytes") {
            assert!(
                std::time::Instant::now() < deadline,
                "no refusal logged: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            server.incoming_files().is_empty(),
            "the partial file of a refused instance stays: {:?}",
            server.incoming_files()
        );
        peer.send_data(context, &big_data[limit + 32 * 1024..], true);
        let response = peer.receive_command();
        assert_eq!(response.status, 0xA700, "{response:?}");
        assert!(
            response
                .error_comment
                .contains(&format!("over the {limit}-byte limit")),
            "{response:?}"
        );
        // The same association goes on and stores an instance under it.
        peer.send_command(
            context,
            telerad_scp::dimse::store_rq(2, CT_IMAGE_STORAGE, &small.sop_instance_uid(0)),
        );
        peer.send_data(context, &small_data, true);
        assert_eq!(peer.receive_command().status, 0x0000);
        assert_eq!(server.stored_files().len(), 1);
        assert!(server.incoming_files().is_empty());
        // DCMTK sees the refusal as a failure status.
        let out = Command::new("/usr/bin/storescu")
            .args(["-v", "-aet", "SITE_A", "-aec", SERVER_AE, "127.0.0.1"])
            .arg(server.dicom_port.to_string())
            .arg(big_file)
            .output()
            .expect("run storescu");
        let said = text(&out).to_lowercase();
        assert!(!out.status.success(), "{said}");
        assert!(
            said.contains("a700") || said.contains("outofresources"),
            "{said}"
        );
        assert_eq!(server.stored_files().len(), 1);
        assert_still_serving(&server);
    }

    fn deflated_data_sets_may_not_inflate_past_the_size_limit(backend: &Backend) {
        use std::io::Write;
        const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
        let limit = 1024 * 1024;
        let server = TestServer::start_with(
            backend,
            ServerOptions {
                extra_dicom: format!("max_instance_bytes = {limit}"),
                ..ServerOptions::default()
            },
        );
        // A bomb: 64 MiB of zeros, about 64 kB once deflated.
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0u8; 64 * limit]).expect("deflate");
        let bomb = encoder.finish().expect("deflate");
        assert!(bomb.len() < limit / 8);
        let mut peer = RawPeer::connect(&server.dicom_address());
        let ac = peer.expect_accepted("SITE_A", &[(CT_IMAGE_STORAGE, DEFLATED)]);
        assert_eq!(
            ac.presentation_contexts[0].reason,
            PresentationContextResultReason::Acceptance
        );
        let context = ac.presentation_contexts[0].id;
        peer.send_command(
            context,
            telerad_scp::dimse::store_rq(1, CT_IMAGE_STORAGE, "1.2.826.0.1.3680043.99.3"),
        );
        peer.send_data(context, &bomb, true);
        let response = peer.receive_command();
        assert_eq!(response.status, 0xA700, "{response:?}");
        assert!(
            response.error_comment.contains("inflates past"),
            "{response:?}"
        );
        drop(peer);
        // A data set DCMTK deflated, under the limit once inflated, is stored.
        let dir = tempfile::tempdir().expect("a temp dir");
        let deflated = dir.path().join("CT_small_deflated.dcm");
        let out = run(Command::new("/usr/bin/dcmconv")
            .arg("+td")
            .arg(telerad_fixtures::samples_dir().join("CT_small.dcm"))
            .arg(&deflated));
        assert!(out.status.success(), "{}", text(&out));
        let out = run(Command::new("/usr/bin/storescu")
            .args(["-xd", "-aet", "SITE_A", "-aec", SERVER_AE, "127.0.0.1"])
            .arg(server.dicom_port.to_string())
            .arg(&deflated));
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(server.stored_files().len(), 1);
        assert!(server.incoming_files().is_empty());
    }

    fn open_descriptors(pid: u32) -> usize {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| fds.count())
            .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
    }

    fn a_flood_of_silent_connections_holds_few_descriptors(backend: &Backend) {
        use std::io::Read;
        let max_associations = 2;
        let server = TestServer::start_with(
            backend,
            ServerOptions {
                max_associations,
                // Longer than the test waits: a connection the server holds
                // is not closed by the timer meanwhile.
                artim_timeout_secs: 60,
                ..ServerOptions::default()
            },
        );
        assert_still_serving(&server);
        let baseline = open_descriptors(server.pid());
        // Associations, plus as many waiting for their refusal.
        let held = 2 * max_associations;
        let flood = 300;
        let connections: Vec<std::net::TcpStream> = (0..flood)
            .map(|_| {
                let stream = std::net::TcpStream::connect(server.dicom_address()).expect("connect");
                stream.set_nonblocking(true).expect("non-blocking");
                stream
            })
            .collect();
        // Wait until the server has closed all it does not hold.
        let closed = |connections: &[std::net::TcpStream]| {
            connections
                .iter()
                .filter(|stream| {
                    let mut stream: &std::net::TcpStream = stream;
                    let read = stream.read(&mut [0u8; 1]);
                    !matches!(read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                })
                .count()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while closed(&connections) < flood - held {
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {flood} silent connections closed: {}",
                closed(&connections),
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let during = open_descriptors(server.pid());
        assert!(
            during <= baseline + held + 16,
            "{during} descriptors open with {flood} silent connections, {baseline} before"
        );
        assert!(server.log().contains("closing without reading"));
        drop(connections);
        // Once they are gone, DCMTK is served again.
        let port = server.dicom_port.to_string();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let out = run(Command::new("/usr/bin/echoscu").args([
                "-aet",
                "SITE_A",
                "-aec",
                SERVER_AE,
                "127.0.0.1",
                &port,
            ]));
            if out.status.success() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "echoscu is not served after the flood: {}",
                text(&out)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
