//! Compression on the way to a workstation: an uncompressed CT forwarded to
//! DCMTK `storescp` arrives JPEG-LS Lossless when the workstation accepts
//! it, and DCMTK's own decoder (`dcmdjpls`) gives back the stored pixels
//! bit for bit; a workstation that accepts only uncompressed syntaxes gets
//! the images as stored.

mod common;

use common::*;
use dicom_dictionary_std::tags;
use std::path::{Path, PathBuf};
use std::time::Duration;
use telerad_dicom::compress::JPEG_LS_LOSSLESS;
use telerad_fixtures::SyntheticStudy;
use telerad_forward::forwarder::Sender;
use telerad_scp::FileToSend;
use telerad_store::outbox::JobState;

telerad_fixtures::on_every_backend!(
    a_ct_travels_jpeg_ls_and_decodes_to_the_stored_pixels,
    a_workstation_without_jpeg_ls_gets_the_images_as_stored,
);

const LONG: Duration = Duration::from_secs(60);
const SLICES: usize = 8;

fn pixel_data(path: &Path) -> Vec<u8> {
    let object =
        dicom_object::open_file(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    object
        .element(tags::PIXEL_DATA)
        .expect("pixel data")
        .to_bytes()
        .expect("native pixel data")
        .into_owned()
}

/// Forwards a `slices`-slice CT, compressing for the workstation, to a
/// storescp started with `storescp_args`; returns once every job is sent,
/// each at the first attempt.
async fn forward_compressing(
    archive: &TestArchive,
    slices: usize,
    storescp_args: &[&str],
) -> (Vec<PathBuf>, Storescp) {
    let study = SyntheticStudy::ct(slices);
    let files = study
        .write_to(&archive.dir.path().join("ct"))
        .expect("write a synthetic CT");
    archive.store_all(&files).await;
    let scp = Storescp::start(archive.dir.path(), "MARTIN_WS", storescp_args);
    let outbox = archive.outbox(quick_retries(3));
    outbox
        .enqueue_study(&study.study_instance_uid, &scp.destination("dr-martin"))
        .await
        .expect("enqueue");
    let sender = Sender::plain(TELERAD_AE).with_compression("127.0.0.1", scp.port);
    let forwarder = RunningForwarder::start_sending(&outbox, archive, 1, sender);
    let jobs = wait_for_state(&outbox, &study.study_instance_uid, JobState::Sent, LONG).await;
    forwarder.stop().await;
    assert!(jobs.iter().all(|j| j.attempts == 1), "{jobs:?}");
    (files, scp)
}

async fn a_ct_travels_jpeg_ls_and_decodes_to_the_stored_pixels(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    // +xa: storescp accepts every syntax it knows, JPEG-LS among them.
    let (files, scp) = forward_compressing(&archive, SLICES, &["+xa"]).await;

    let received = scp.received_by_sop();
    assert_eq!(received.len(), SLICES);
    let decoded_dir = archive.dir.path().join("decoded");
    std::fs::create_dir_all(&decoded_dir).expect("a folder");
    let (mut sent_bytes, mut stored_bytes) = (0u64, 0u64);
    for original in &files {
        let stored = FileToSend::read(original).expect("a fixture");
        let got = &received[&stored.sop_instance_uid];
        assert_eq!(got.len(), 1, "sent once");
        let arrived = FileToSend::read(&got[0]).expect("a received file");
        assert_eq!(arrived.transfer_syntax_uid, JPEG_LS_LOSSLESS);
        sent_bytes += arrived.size;
        stored_bytes += stored.size;
        let decoded = decoded_dir.join(format!("{}.dcm", stored.sop_instance_uid));
        let status = telerad_fixtures::dcmtk::command("dcmdjpls")
            .arg(&got[0])
            .arg(&decoded)
            .status()
            .expect("run dcmdjpls (apt-get install dcmtk)");
        assert!(status.success(), "dcmdjpls failed on {}", got[0].display());
        assert!(
            pixel_data(&decoded) == pixel_data(original),
            "{}: pixels differ after DCMTK's decoding",
            original.display()
        );
    }
    // Noise of +-8 around each tissue leaves ~5 bits of 16 to code.
    assert!(
        sent_bytes * 2 < stored_bytes,
        "{sent_bytes} bytes sent for {stored_bytes} stored"
    );
}

async fn a_workstation_without_jpeg_ls_gets_the_images_as_stored(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    // storescp's default: uncompressed syntaxes only.
    let (files, scp) = forward_compressing(&archive, 3, &[]).await;
    for original in &files {
        let stored = FileToSend::read(original).expect("a fixture");
        let got = &scp.received_by_sop()[&stored.sop_instance_uid];
        assert_eq!(
            dataset_bytes(&got[0]),
            dataset_bytes(original),
            "sent as stored"
        );
    }
}
