//! Delivering studies to radiologists' workstations: instances stored in a
//! real archive are enqueued in the outbox and sent by the forwarder to
//! DCMTK `storescp`, which writes what it receives exactly as received.
//! What a radiologist would see is checked: every image there, identical,
//! once; and what an operator would see: each job's state, attempts and
//! error.

mod common;

use common::*;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;
use telerad_scp::FileToSend;
use telerad_store::outbox::{ForwardJob, JobState, Outbox, OutboxError};
use telerad_store::{ForwardJobId, ManualClock};

telerad_fixtures::on_every_backend!(
    a_study_arrives_identical_and_jobs_are_sent,
    retries_with_backoff_until_the_destination_is_up,
    a_graceful_restart_loses_nothing_and_sends_nothing_twice,
    a_crash_resends_only_what_was_in_flight_and_flags_it,
    jobs_die_after_max_attempts_and_retry_brings_one_back,
    a_second_destination_gets_its_own_copy,
    a_refused_compressed_syntax_kills_its_job_at_once_and_spares_the_others,
    enqueueing_twice_adds_nothing_and_late_images_are_added,
    uncompressed_instances_are_reencoded_for_the_destination,
    two_forwarders_on_one_database_send_each_instance_once,
    batch_marks_flag_only_what_may_have_been_sent,
    a_stat_study_overtakes_routine_work_and_its_plain_series_goes_first,
    a_stat_study_enqueued_while_routine_work_is_sent_goes_next,
    a_study_made_stat_after_it_was_queued_moves_up,
    a_workstation_behind_a_slow_link_that_dies_mid_study_gets_everything_once,
);

const LONG: Duration = Duration::from_secs(60);
/// Where the backoff test's clock starts: any instant will do.
const START_MS: i64 = 1_773_800_000_000;
const JPEG_2000: &str = "1.2.840.10008.1.2.4.91";

fn synthetic_ct(dir: &Path, slices: usize) -> (SyntheticStudy, Vec<PathBuf>) {
    let study = SyntheticStudy::ct(slices);
    let files = study
        .write_to(&dir.join(format!("ct-{}", study.study_instance_uid)))
        .expect("write a synthetic CT");
    (study, files)
}

fn sample(file_name: &str) -> telerad_fixtures::Sample {
    telerad_fixtures::samples()
        .into_iter()
        .find(|s| s.file_name == file_name)
        .unwrap_or_else(|| panic!("no sample {file_name}"))
}

fn study_uid_of(path: &Path) -> String {
    let object = dicom_object::open_file(path).expect("open a DICOM file");
    text(&object, tags::STUDY_INSTANCE_UID)
}

fn text(object: &dicom_object::InMemDicomObject, tag: dicom_core::Tag) -> String {
    object
        .element(tag)
        .expect("the element")
        .to_str()
        .expect("a text value")
        .trim_end_matches(['\0', ' '])
        .to_string()
}

/// The stored data set of each job's instance version, byte for byte, is
/// what the workstation received for that SOP Instance UID.
fn assert_received_identical(archive: &TestArchive, scp: &Storescp, jobs: &[ForwardJob]) {
    let received = scp.received_by_sop();
    for job in jobs {
        let files = received
            .get(&job.sop_instance_uid)
            .unwrap_or_else(|| panic!("{} never reached {}", job.sop_instance_uid, scp.ae_title));
        let stored = dataset_bytes(&archive.stored_file(&job.path));
        assert!(
            files.iter().any(|f| dataset_bytes(f) == stored),
            "{} reached {} with a different data set",
            job.sop_instance_uid,
            scp.ae_title
        );
        let file = FileToSend::read(&files[0]).expect("a received file");
        assert_eq!(
            file.transfer_syntax_uid, job.transfer_syntax_uid,
            "sent in its stored syntax"
        );
    }
}

fn counts(received: &BTreeMap<String, Vec<PathBuf>>) -> BTreeMap<String, usize> {
    received
        .iter()
        .map(|(sop, files)| (sop.clone(), files.len()))
        .collect()
}

// (a)
async fn a_study_arrives_identical_and_jobs_are_sent(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let (study, files) = synthetic_ct(archive.dir.path(), 20);
    archive.store_all(&files).await;
    // --fork: two associations really run side by side.
    let scp = Storescp::start(archive.dir.path(), "MARTIN_WS", &["--fork"]);
    let outbox = archive.outbox(quick_retries(5));
    let added = outbox
        .enqueue_study(&study.study_instance_uid, &scp.destination("dr-martin"))
        .await
        .expect("enqueue");
    assert_eq!(added, 20);
    let forwarder = RunningForwarder::start(&outbox, &archive, 2);

    let jobs = wait_for_state(&outbox, &study.study_instance_uid, JobState::Sent, LONG).await;
    forwarder.stop().await;
    assert_eq!(jobs.len(), 20);
    for job in &jobs {
        assert_eq!(job.attempts, 1, "{job:?}");
        assert!(!job.possible_duplicate, "{job:?}");
        assert!(job.sent_at.is_some() && job.claimed_by.is_none(), "{job:?}");
        assert_eq!(job.destination.name, "dr-martin");
    }
    let received = scp.received_by_sop();
    assert_eq!(received.len(), 20, "{:?}", counts(&received));
    assert!(
        received.values().all(|f| f.len() == 1),
        "sent once each: {:?}",
        counts(&received)
    );
    assert_received_identical(&archive, &scp, &jobs);
    // And identical to what the hospital sent.
    for path in &files {
        let original = FileToSend::read(path).expect("a fixture");
        let got = &received[&original.sop_instance_uid][0];
        assert_eq!(
            dataset_bytes(got),
            dataset_bytes(path),
            "{}",
            path.display()
        );
    }
}

// (b)
async fn retries_with_backoff_until_the_destination_is_up(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let (study, files) = synthetic_ct(archive.dir.path(), 10);
    archive.store_all(&files).await;
    let port = free_port();
    let destination = telerad_store::outbox::Destination {
        name: "dr-martin".into(),
        ae_title: "MARTIN_WS".into(),
        host: "127.0.0.1".into(),
        port,
    };
    // The outbox's clock is the test's and moves only when told: every
    // failure of one round is recorded at the same instant, and no job
    // comes due before the test moves the clock to its recorded time.
    let clock = Arc::new(ManualClock::new(START_MS));
    let outbox = Arc::new(
        Outbox::new(
            archive.archive.index().database().clone(),
            quick_retries(1000),
        )
        .with_clock(clock.clone()),
    );
    outbox
        .enqueue_study(&study.study_instance_uid, &destination)
        .await
        .expect("enqueue");
    let forwarder = RunningForwarder::start(&outbox, &archive, 2);

    // Nothing listens on the port: each round fails at once, and each job
    // is due again after base 50 ms doubled per failure, capped at 300 ms.
    let mut now = START_MS;
    let mut waits = Vec::new();
    for attempt in 1..=6 {
        let failed = eventually(&format!("attempt {attempt} failed"), LONG, || async {
            let jobs = jobs_of(&outbox, &study.study_instance_uid).await;
            jobs.iter().all(|j| j.attempts >= attempt).then_some(jobs)
        })
        .await;
        assert_eq!(failed.len(), 10);
        let due = failed[0].next_attempt_at;
        for job in &failed {
            assert_eq!(
                (job.state, job.attempts, job.next_attempt_at),
                (JobState::Pending, attempt, due),
                "{job:?}"
            );
            let error = job.last_error.as_deref().unwrap_or_default();
            assert!(
                error.contains("cannot open an association with MARTIN_WS@127.0.0.1")
                    && error.contains(&port.to_string()),
                "{error}"
            );
        }
        waits.push(due - now);
        now = due;
        if attempt < 6 {
            clock.set(now);
        }
    }
    assert_eq!(waits, [50, 100, 200, 300, 300, 300], "the retry schedule");

    // The workstation is up when the seventh attempt comes due.
    let dir = archive.dir.path().to_path_buf();
    let scp = Storescp::start_on(&dir, "MARTIN_WS", port, &[]);
    clock.set(now);
    let jobs = wait_for_state(&outbox, &study.study_instance_uid, JobState::Sent, LONG).await;
    forwarder.stop().await;
    assert_received_identical(&archive, &scp, &jobs);
    assert_eq!(scp.received().len(), 10);
    for job in &jobs {
        assert_eq!(
            (job.attempts, job.sent_at, job.possible_duplicate),
            (7, Some(now), false),
            "{job:?}"
        );
    }
}

/// storescp that waits a second before answering each C-STORE (after
/// writing the file), so that a test can stop the forwarder mid-study.
fn slow_workstation(dir: &Path, port: u16) -> Storescp {
    Storescp::start_on(dir, "MARTIN_WS", port, &["--sleep-after", "1"])
}

// (c), a stop as `telerad serve` does on SIGTERM.
async fn a_graceful_restart_loses_nothing_and_sends_nothing_twice(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let (study, files) = synthetic_ct(archive.dir.path(), 20);
    archive.store_all(&files).await;
    let port = free_port();
    let mut scp = slow_workstation(archive.dir.path(), port);
    let outbox = archive.outbox(quick_retries(5));
    outbox
        .enqueue_study(&study.study_instance_uid, &scp.destination("dr-martin"))
        .await
        .expect("enqueue");
    let forwarder = RunningForwarder::start(&outbox, &archive, 1);
    scp.wait_for_files(3, LONG).await;
    forwarder.stop().await;

    let jobs = jobs_of(&outbox, &study.study_instance_uid).await;
    let sent = jobs.iter().filter(|j| j.state == JobState::Sent).count();
    let pending = jobs.iter().filter(|j| j.state == JobState::Pending).count();
    assert!((3..20).contains(&sent), "{sent} sent at the stop");
    assert_eq!(
        sent + pending,
        20,
        "a stop leaves jobs sent or pending, never sending: {jobs:#?}"
    );
    assert!(
        jobs.iter()
            .all(|j| j.attempts == i64::from(j.state == JobState::Sent) && j.claimed_by.is_none())
    );
    assert_eq!(
        scp.received().len(),
        sent,
        "the stop finished the C-STORE under way and began no other"
    );

    scp.restart(&[]);
    // A new forwarder, with a new outbox, on the same database: as after
    // restarting the process.
    let outbox = archive.outbox(quick_retries(5));
    let forwarder = RunningForwarder::start(&outbox, &archive, 2);
    let jobs = wait_for_state(&outbox, &study.study_instance_uid, JobState::Sent, LONG).await;
    forwarder.stop().await;
    let received = scp.received_by_sop();
    assert_eq!(received.len(), 20, "nothing lost");
    assert!(
        received.values().all(|f| f.len() == 1),
        "nothing sent twice: {:?}",
        counts(&received)
    );
    assert!(
        jobs.iter()
            .all(|j| !j.possible_duplicate && j.attempts == 1),
        "{jobs:#?}"
    );
    assert_received_identical(&archive, &scp, &jobs);
}

// (c), a crash: the forwarder's task is dropped mid-C-STORE.
async fn a_crash_resends_only_what_was_in_flight_and_flags_it(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let (study, files) = synthetic_ct(archive.dir.path(), 20);
    archive.store_all(&files).await;
    let port = free_port();
    let mut scp = slow_workstation(archive.dir.path(), port);
    let outbox = archive.outbox(quick_retries(5));
    outbox
        .enqueue_study(&study.study_instance_uid, &scp.destination("dr-martin"))
        .await
        .expect("enqueue");
    let forwarder = RunningForwarder::start(&outbox, &archive, 1);
    // The third file is written; its response comes a second later.
    scp.wait_for_files(3, LONG).await;
    forwarder.kill().await;

    let jobs = jobs_of(&outbox, &study.study_instance_uid).await;
    let in_flight: Vec<&ForwardJob> = jobs
        .iter()
        .filter(|j| j.state == JobState::Sending)
        .collect();
    assert!(
        !in_flight.is_empty(),
        "the crash left claimed jobs: {jobs:#?}"
    );

    scp.restart(&[]);
    // On PostgreSQL another live process could hold those claims, so they
    // are taken back only once expired: a short lease for the test.
    let outbox = std::sync::Arc::new(
        Outbox::new(archive.archive.index().database().clone(), quick_retries(5))
            .with_claim_lease(Duration::from_secs(1)),
    );
    let forwarder = RunningForwarder::start(&outbox, &archive, 1);
    let jobs = wait_for_state(&outbox, &study.study_instance_uid, JobState::Sent, LONG).await;
    forwarder.stop().await;

    let received = scp.received_by_sop();
    assert_eq!(received.len(), 20, "nothing lost: {:?}", counts(&received));
    let flagged: BTreeSet<&str> = jobs
        .iter()
        .filter(|j| j.possible_duplicate)
        .map(|j| j.sop_instance_uid.as_str())
        .collect();
    let twice: BTreeSet<&str> = received
        .iter()
        .filter(|(_, f)| f.len() > 1)
        .map(|(sop, _)| sop.as_str())
        .collect();
    assert!(
        !flagged.is_empty(),
        "the C-STORE under way at the crash is re-sent flagged: {jobs:#?}"
    );
    assert!(
        twice.is_subset(&flagged),
        "every instance received twice is flagged: twice {twice:?}, flagged {flagged:?}"
    );
    assert!(
        received.values().all(|f| f.len() <= 2),
        "{:?}",
        counts(&received)
    );
    for job in jobs.iter().filter(|j| j.possible_duplicate) {
        assert!(
            job.last_error
                .as_deref()
                .unwrap_or_default()
                .contains("interrupted"),
            "{job:?}"
        );
    }
    // Claimed but never begun: given back without a flag.
    assert!(
        flagged.len() < in_flight.len() || in_flight.len() == 1,
        "only begun C-STOREs are flagged: {flagged:?}"
    );
    assert_received_identical(&archive, &scp, &jobs);
}

// (d)
async fn jobs_die_after_max_attempts_and_retry_brings_one_back(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let (study, files) = synthetic_ct(archive.dir.path(), 3);
    archive.store_all(&files).await;
    let port = free_port();
    let destination = telerad_store::outbox::Destination {
        name: "dr-martin".into(),
        ae_title: "MARTIN_WS".into(),
        host: "127.0.0.1".into(),
        port,
    };
    let outbox = archive.outbox(quick_retries(3));
    outbox
        .enqueue_study(&study.study_instance_uid, &destination)
        .await
        .expect("enqueue");
    let forwarder = RunningForwarder::start(&outbox, &archive, 1);
    let dead = wait_for_state(&outbox, &study.study_instance_uid, JobState::Dead, LONG).await;
    for job in &dead {
        assert_eq!(job.attempts, 3, "{job:?}");
        assert!(
            job.last_error
                .as_deref()
                .unwrap_or_default()
                .contains("cannot open an association with MARTIN_WS"),
            "{job:?}"
        );
    }
    let listed = outbox
        .list(Some("dead"), 100)
        .await
        .expect("list dead jobs");
    assert_eq!(listed.len(), 3);
    assert!(listed.windows(2).all(|w| w[0].id > w[1].id), "newest first");

    // The workstation comes back: dead jobs stay dead until asked. The
    // one retried is claimed with whatever else is pending for that
    // destination, so once it is sent the others' fate is decided.
    let scp = Storescp::start_on(archive.dir.path(), "MARTIN_WS", port, &[]);
    let first = dead[0].id;
    let retried = outbox
        .retry(first, &operator())
        .await
        .expect("retry")
        .expect("the job exists");
    assert_eq!((retried.state, retried.attempts), (JobState::Pending, 0));
    let database = archive.archive.index().database().clone();
    let trail = telerad_store::audit::verify(&database)
        .await
        .expect("verify");
    assert_eq!(
        (trail.records, trail.broken),
        (1, None),
        "committed with the retry"
    );
    let sent = eventually("the retried job sent", LONG, || async {
        let job = outbox
            .job(first)
            .await
            .expect("read a job")
            .expect("the job");
        (job.state == JobState::Sent).then_some(job)
    })
    .await;
    assert_eq!(sent.attempts, 1);
    // After the stop the forwarder sends nothing more: what reached the
    // workstation is final.
    forwarder.stop().await;
    assert_eq!(scp.received().len(), 1);
    assert_received_identical(&archive, &scp, std::slice::from_ref(&sent));
    let states: Vec<(JobState, i64)> = jobs_of(&outbox, &study.study_instance_uid)
        .await
        .iter()
        .map(|j| (j.state, j.attempts))
        .collect();
    assert_eq!(
        states,
        [
            (JobState::Sent, 1),
            (JobState::Dead, 3),
            (JobState::Dead, 3)
        ]
    );

    assert!(
        outbox
            .retry(ForwardJobId(987_654_321), &operator())
            .await
            .expect("retry")
            .is_none(),
        "unknown id"
    );
    match outbox.retry(first, &operator()).await {
        Err(OutboxError::NotRetryable {
            id,
            state: JobState::Sent,
        }) => assert_eq!(id, first),
        other => panic!("a sent job cannot be retried: {other:?}"),
    }
    assert!(matches!(
        outbox.list(Some("lost"), 10).await,
        Err(OutboxError::InvalidState(_))
    ));
    // The refused retries changed nothing and committed no record.
    let trail = telerad_store::audit::verify(&database)
        .await
        .expect("verify");
    assert_eq!(trail.records, 1);
}

// (e)
async fn a_second_destination_gets_its_own_copy(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let (study, files) = synthetic_ct(archive.dir.path(), 10);
    archive.store_all(&files).await;
    let martin = Storescp::start(archive.dir.path(), "MARTIN_WS", &[]);
    let dupont = Storescp::start(archive.dir.path(), "DUPONT_WS", &[]);
    let outbox = archive.outbox(quick_retries(5));
    assert_eq!(
        outbox
            .enqueue_study(&study.study_instance_uid, &martin.destination("dr-martin"))
            .await
            .expect("enqueue"),
        10
    );
    assert_eq!(
        outbox
            .enqueue_study(&study.study_instance_uid, &dupont.destination("dr-dupont"))
            .await
            .expect("enqueue"),
        10
    );
    let forwarder = RunningForwarder::start(&outbox, &archive, 2);
    let jobs = wait_for_state(&outbox, &study.study_instance_uid, JobState::Sent, LONG).await;
    forwarder.stop().await;
    assert_eq!(jobs.len(), 20);
    for scp in [&martin, &dupont] {
        let mine: Vec<ForwardJob> = jobs
            .iter()
            .filter(|j| j.destination.ae_title == scp.ae_title)
            .cloned()
            .collect();
        assert_eq!(mine.len(), 10);
        let received = scp.received_by_sop();
        assert_eq!(received.len(), 10);
        assert!(received.values().all(|f| f.len() == 1));
        assert_received_identical(&archive, scp, &mine);
    }
}

// (f)
async fn a_refused_compressed_syntax_kills_its_job_at_once_and_spares_the_others(
    backend: &Backend,
) {
    let archive = TestArchive::open(backend).await;
    let (ct, files) = synthetic_ct(archive.dir.path(), 5);
    archive.store_all(&files).await;
    let j2k = sample("JPEG2000.dcm");
    assert_eq!(j2k.transfer_syntax_uid, JPEG_2000);
    archive.store(&j2k.path).await;
    let j2k_study = study_uid_of(&j2k.path);
    // storescp's default: uncompressed syntaxes only.
    let martin = Storescp::start(archive.dir.path(), "MARTIN_WS", &[]);
    // +xa: every syntax DCMTK knows, JPEG 2000 included.
    let accepting = Storescp::start(archive.dir.path(), "DUPONT_WS", &["+xa"]);
    let outbox = archive.outbox(quick_retries(5));
    // Both studies before the forwarder starts: one batch, one association.
    for study in [&ct.study_instance_uid, &j2k_study] {
        outbox
            .enqueue_study(study, &martin.destination("dr-martin"))
            .await
            .expect("enqueue");
    }
    outbox
        .enqueue_study(&j2k_study, &accepting.destination("dr-dupont"))
        .await
        .expect("enqueue");
    let forwarder = RunningForwarder::start(&outbox, &archive, 1);

    let ct_jobs = wait_for_state(&outbox, &ct.study_instance_uid, JobState::Sent, LONG).await;
    let j2k_jobs = eventually("the JPEG 2000 jobs settled", LONG, || async {
        let jobs = jobs_of(&outbox, &j2k_study).await;
        jobs.iter()
            .all(|j| matches!(j.state, JobState::Sent | JobState::Dead))
            .then_some(jobs)
    })
    .await;
    // `dead` is final: only an operator's retry makes a job pending again,
    // so the row read back after the stop is the decision.
    forwarder.stop().await;

    let refused = j2k_jobs
        .iter()
        .find(|j| j.destination.ae_title == "MARTIN_WS")
        .expect("a job for MARTIN_WS");
    let refused = outbox
        .job(refused.id)
        .await
        .expect("read")
        .expect("the job");
    assert_eq!(refused.state, JobState::Dead);
    assert_eq!(refused.attempts, 1, "dead at once: retrying cannot help");
    assert_eq!(
        refused.last_error.as_deref(),
        Some(
            "destination MARTIN_WS refused JPEG 2000 Image Compression (1.2.840.10008.1.2.4.91) for \
             Secondary Capture Image Storage (1.2.840.10008.5.1.4.1.1.7); telerad does not decompress"
        )
    );
    assert_eq!(martin.received_by_sop().len(), 5, "the CT went through");
    assert_received_identical(&archive, &martin, &ct_jobs);

    let delivered = j2k_jobs
        .iter()
        .find(|j| j.destination.ae_title == "DUPONT_WS")
        .expect("a job for DUPONT_WS");
    assert_eq!(delivered.state, JobState::Sent);
    assert_received_identical(&archive, &accepting, std::slice::from_ref(delivered));
}

// (g)
async fn enqueueing_twice_adds_nothing_and_late_images_are_added(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let dir = archive.dir.path().to_path_buf();
    let (study, files) = synthetic_ct(&dir, 20);
    archive.store_all(&files).await;
    let scp = Storescp::start(&dir, "MARTIN_WS", &[]);
    let destination = scp.destination("dr-martin");
    let outbox = archive.outbox(quick_retries(5));
    assert_eq!(
        outbox
            .enqueue_study(&study.study_instance_uid, &destination)
            .await
            .expect("enqueue"),
        20
    );
    assert_eq!(
        outbox
            .enqueue_study(&study.study_instance_uid, &destination)
            .await
            .expect("enqueue"),
        0
    );
    // The label is not part of the identity: same workstation, same jobs.
    let relabelled = telerad_store::outbox::Destination {
        name: "dr-martin-home".into(),
        ..destination.clone()
    };
    assert_eq!(
        outbox
            .enqueue_study(&study.study_instance_uid, &relabelled)
            .await
            .expect("enqueue"),
        0
    );
    assert_eq!(jobs_of(&outbox, &study.study_instance_uid).await.len(), 20);

    // A late image, and a corrected re-send of slice 1 (same SOP Instance
    // UID, new content: a second version).
    let late_study = SyntheticStudy {
        slices: 21,
        ..study.clone()
    };
    let late = dir.join("late.dcm");
    late_study
        .instance(20)
        .write_to_file(&late)
        .expect("write the late image");
    archive.store(&late).await;
    let mut corrected = study.instance(0);
    corrected.put(DataElement::new(
        tags::SERIES_DESCRIPTION,
        VR::LO,
        PrimitiveValue::from("CORRECTED"),
    ));
    let corrected_path = dir.join("corrected.dcm");
    corrected
        .write_to_file(&corrected_path)
        .expect("write the corrected image");
    assert!(matches!(
        archive.store(&corrected_path).await,
        telerad_store::Stored::New { version: 2, .. }
    ));
    assert_eq!(
        outbox
            .enqueue_study(&study.study_instance_uid, &destination)
            .await
            .expect("enqueue"),
        2
    );
    assert_eq!(
        outbox
            .enqueue_study(&study.study_instance_uid, &destination)
            .await
            .expect("enqueue"),
        0
    );
    let jobs = jobs_of(&outbox, &study.study_instance_uid).await;
    assert_eq!(jobs.len(), 22);
    let first = study.sop_instance_uid(0);
    let versions: Vec<i64> = jobs
        .iter()
        .filter(|j| j.sop_instance_uid == first)
        .map(|j| j.version)
        .collect();
    assert_eq!(versions, [1, 2]);

    let forwarder = RunningForwarder::start(&outbox, &archive, 2);
    let jobs = wait_for_state(&outbox, &study.study_instance_uid, JobState::Sent, LONG).await;
    forwarder.stop().await;
    let received = scp.received_by_sop();
    assert_eq!(received.len(), 21);
    assert_eq!(
        received[&first].len(),
        2,
        "both versions of slice 1 delivered"
    );
    assert_received_identical(&archive, &scp, &jobs);

    // Errors a caller can act on.
    assert!(matches!(
        outbox.enqueue_study("1.2.3.4.5.999", &destination).await,
        Err(OutboxError::UnknownStudy(_))
    ));
    let nameless = telerad_store::outbox::Destination {
        ae_title: "".into(),
        ..destination
    };
    assert!(matches!(
        outbox
            .enqueue_study(&study.study_instance_uid, &nameless)
            .await,
        Err(OutboxError::InvalidDestination { .. })
    ));
}

/// Same elements with the same values, whatever the encoding: text
/// padding aside, values compared in their little-endian bytes.
fn same_content(
    a: &dicom_object::InMemDicomObject,
    b: &dicom_object::InMemDicomObject,
) -> Result<(), String> {
    let wanted = |e: &&dicom_object::mem::InMemElement| e.header().tag.element() != 0;
    let tags_a: Vec<_> = a.iter().filter(wanted).map(|e| e.header().tag).collect();
    let tags_b: Vec<_> = b.iter().filter(wanted).map(|e| e.header().tag).collect();
    if tags_a != tags_b {
        return Err(format!("different elements: {tags_a:?} vs {tags_b:?}"));
    }
    for (x, y) in a.iter().filter(wanted).zip(b.iter().filter(wanted)) {
        let tag = x.header().tag;
        match (x.value(), y.value()) {
            (Value::Primitive(p), Value::Primitive(q)) => {
                let unpadded =
                    |v: &PrimitiveValue| v.to_str().trim_end_matches([' ', '\0']).to_string();
                if p.to_bytes() != q.to_bytes() && unpadded(p) != unpadded(q) {
                    return Err(format!("{tag}: {p:?} vs {q:?}"));
                }
            }
            (Value::Sequence(s), Value::Sequence(t)) => {
                if s.items().len() != t.items().len() {
                    return Err(format!("{tag}: item counts differ"));
                }
                for (i, j) in s.items().iter().zip(t.items()) {
                    same_content(i, j).map_err(|e| format!("{tag} > {e}"))?;
                }
            }
            _ => return Err(format!("{tag}: different kinds of value")),
        }
    }
    Ok(())
}

// Not in the brief's list, but the other half of "send in the stored
// syntax, else re-encode": a workstation that takes implicit VR only.
async fn uncompressed_instances_are_reencoded_for_the_destination(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let (ct, files) = synthetic_ct(archive.dir.path(), 3);
    archive.store_all(&files).await;
    let big_endian = sample("MR_small_bigendian.dcm");
    archive.store(&big_endian.path).await;
    let mr_study = study_uid_of(&big_endian.path);
    // +xi: implicit VR little endian only.
    let scp = Storescp::start(archive.dir.path(), "IMPLICIT_WS", &["+xi"]);
    let outbox = archive.outbox(quick_retries(5));
    for study in [&ct.study_instance_uid, &mr_study] {
        outbox
            .enqueue_study(study, &scp.destination("dr-old"))
            .await
            .expect("enqueue");
    }
    let forwarder = RunningForwarder::start(&outbox, &archive, 1);
    wait_for_state(&outbox, &ct.study_instance_uid, JobState::Sent, LONG).await;
    wait_for_state(&outbox, &mr_study, JobState::Sent, LONG).await;
    forwarder.stop().await;

    let received = scp.received_by_sop();
    assert_eq!(received.len(), 4);
    for original in files.iter().chain([&big_endian.path]) {
        let sent = FileToSend::read(original).expect("a fixture");
        let got = &received[&sent.sop_instance_uid];
        assert_eq!(got.len(), 1);
        let got_file = FileToSend::read(&got[0]).expect("a received file");
        assert_eq!(
            got_file.transfer_syntax_uid, "1.2.840.10008.1.2",
            "re-encoded to implicit VR LE"
        );
        let a = dicom_object::open_file(original).expect("open the original");
        let b = dicom_object::open_file(&got[0]).expect("open the received file");
        if let Err(e) = same_content(&a, &b) {
            panic!("{} changed on the way: {e}", original.display());
        }
    }
}

// The property the claim protocol exists for: two telerad processes
// sharing a database never both send a job.
async fn two_forwarders_on_one_database_send_each_instance_once(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let (study, files) = synthetic_ct(archive.dir.path(), 30);
    archive.store_all(&files).await;
    let scp = Storescp::start(archive.dir.path(), "MARTIN_WS", &["--fork"]);
    // Each with its own connection pool, as two processes would have.
    let first = archive.outbox(quick_retries(5));
    let second_db = telerad_store::Database::connect(&archive.database_url)
        .await
        .expect("a second connection pool");
    let second = std::sync::Arc::new(Outbox::new(second_db, quick_retries(5)));
    // Both past their start-up recovery before there is anything to take.
    let one = RunningForwarder::start_recovered(&first, &archive, 2).await;
    let two = RunningForwarder::start_recovered(&second, &archive, 2).await;
    first
        .enqueue_study(&study.study_instance_uid, &scp.destination("dr-martin"))
        .await
        .expect("enqueue");
    // The second learns of the work by polling, the first by being woken.
    let jobs = wait_for_state(&first, &study.study_instance_uid, JobState::Sent, LONG).await;
    one.stop().await;
    two.stop().await;
    let received = scp.received_by_sop();
    assert_eq!(received.len(), 30);
    assert!(
        received.values().all(|f| f.len() == 1),
        "{:?}",
        counts(&received)
    );
    assert!(
        jobs.iter()
            .all(|j| j.attempts == 1 && !j.possible_duplicate),
        "{jobs:#?}"
    );
}

/// The forwarder marks a batch of jobs before sending it and records the
/// batch after: what a crash leaves marked is re-sent flagged, what was
/// unmarked (never sent) is re-sent unflagged, and what was recorded sent is
/// not re-sent. A job another forwarder took over is neither marked nor
/// recorded by this one.
async fn batch_marks_flag_only_what_may_have_been_sent(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let dir = archive.dir.path().to_path_buf();
    let (study, files) = synthetic_ct(&dir, 6);
    archive.store_all(&files).await;
    let destination = telerad_store::outbox::Destination {
        name: "dr-martin".into(),
        ae_title: "MARTIN_WS".into(),
        host: "127.0.0.1".into(),
        port: free_port(),
    };
    let outbox = archive.outbox(quick_retries(5));
    outbox
        .enqueue_study(&study.study_instance_uid, &destination)
        .await
        .expect("enqueue");
    let claimed = outbox
        .claim(&destination, "worker-a", 5)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 5);
    let ids: Vec<ForwardJobId> = claimed.iter().map(|j| j.id).collect();
    let unclaimed = jobs_of(&outbox, &study.study_instance_uid)
        .await
        .into_iter()
        .find(|j| !ids.contains(&j.id))
        .expect("the sixth job");

    // Another worker's marks and records touch none of worker-a's jobs.
    assert!(
        outbox
            .begin_send(&ids, "worker-b")
            .await
            .expect("mark")
            .is_empty()
    );
    // The unclaimed job cannot be marked without a claim.
    let mut asked = ids.clone();
    asked.push(unclaimed.id);
    let marked = outbox.begin_send(&asked, "worker-a").await.expect("mark");
    assert_eq!(marked, ids);
    // Jobs 0 and 1 were sent and recorded; 2 was in flight at the crash;
    // 3 and 4 were given back unmarked when the association broke.
    assert_eq!(
        outbox
            .record_sent(&ids[..2], "worker-a")
            .await
            .expect("record"),
        ids[..2]
    );
    assert!(
        outbox
            .record_sent(&ids[2..], "worker-b")
            .await
            .expect("record")
            .is_empty()
    );
    outbox
        .unmark_unsent(&ids[3..], "worker-a")
        .await
        .expect("unmark");

    // The crash: every `sending` job is recovered.
    let abandoned = outbox.requeue_abandoned(true).await.expect("requeue");
    let flagged: BTreeSet<ForwardJobId> = abandoned
        .iter()
        .filter(|a| a.send_started)
        .map(|a| a.job.id)
        .collect();
    let untouched: BTreeSet<ForwardJobId> = abandoned
        .iter()
        .filter(|a| !a.send_started)
        .map(|a| a.job.id)
        .collect();
    assert_eq!(flagged, BTreeSet::from([ids[2]]));
    assert_eq!(untouched, ids[3..].iter().copied().collect());
    for job in jobs_of(&outbox, &study.study_instance_uid).await {
        let expected = if ids[..2].contains(&job.id) {
            (JobState::Sent, false, 1)
        } else if job.id == ids[2] {
            (JobState::Pending, true, 1)
        } else {
            (JobState::Pending, false, 0)
        };
        assert_eq!(
            (job.state, job.possible_duplicate, job.attempts),
            expected,
            "{job:?}"
        );
    }
}

/// The audit record an operator's retry commits with.
fn operator() -> telerad_store::audit::AuditRecord {
    telerad_store::audit::AuditRecord {
        at: 0,
        actor: "operator".into(),
        role: "admin".into(),
        sites: String::new(),
        action: "forward.retry".into(),
        object: "forwards".into(),
        study_uid: None,
        patient_id: None,
        outcome: telerad_store::audit::Outcome::Success,
        source: "test".into(),
        detail: "{}".into(),
    }
}

/// A workstation's queue: a STAT study's jobs are claimed before routine
/// work queued earlier, and within the stroke study the non-contrast head
/// before the angiography that arrived first.
async fn a_stat_study_overtakes_routine_work_and_its_plain_series_goes_first(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let dir = archive.dir.path().to_path_buf();
    let (routine, routine_files) = synthetic_ct(&dir.join("routine"), 3);
    archive.store_all(&routine_files).await;

    let plain = SyntheticStudy::ct(2);
    let angio = SyntheticStudy {
        series_instance_uid: telerad_fixtures::new_uid(),
        ..plain.clone()
    };
    let mut stroke_files = Vec::new();
    for i in 0..2 {
        let mut instance = angio.instance(i);
        instance.put(DataElement::new(
            tags::SERIES_DESCRIPTION,
            VR::LO,
            PrimitiveValue::from("ANGIO TSA"),
        ));
        let path = dir.join(format!("angio-{i}.dcm"));
        instance
            .write_to_file(&path)
            .expect("write an angiography slice");
        stroke_files.push(path);
    }
    stroke_files.extend(
        plain
            .write_to(&dir.join("plain"))
            .expect("write the plain series"),
    );
    // The angiography is stored (and so indexed) first.
    archive.store_all(&stroke_files).await;
    make_stat(&archive, &plain.study_instance_uid).await;

    let outbox = archive.outbox(quick_retries(5));
    let destination = enqueue_for_neuro(
        &outbox,
        &[&routine.study_instance_uid, &plain.study_instance_uid],
    )
    .await;
    let claimed = claim_all(&outbox, &destination).await;
    let expected: Vec<String> = [plain.sop_instance_uid(0), plain.sop_instance_uid(1)]
        .into_iter()
        .chain([angio.sop_instance_uid(0), angio.sop_instance_uid(1)])
        .chain((0..3).map(|i| routine.sop_instance_uid(i)))
        .collect();
    assert_eq!(claimed, expected);
}

/// Enqueues the studies, in this order, for a workstation nobody listens
/// on (the tests that use it only claim).
async fn enqueue_for_neuro(
    outbox: &Outbox,
    studies: &[&str],
) -> telerad_store::outbox::Destination {
    let destination = telerad_store::outbox::Destination {
        name: "dr-neuro".into(),
        ae_title: "NEURO_WS".into(),
        host: "127.0.0.1".into(),
        port: free_port(),
    };
    for study in studies {
        outbox
            .enqueue_study(study, &destination)
            .await
            .expect("enqueue");
    }
    destination
}

/// Claims every due job of `destination`: SOP Instance UIDs in queue order.
async fn claim_all(
    outbox: &Outbox,
    destination: &telerad_store::outbox::Destination,
) -> Vec<String> {
    outbox
        .claim(destination, "worker", 100)
        .await
        .expect("claim")
        .into_iter()
        .map(|job| job.sop_instance_uid)
        .collect()
}

/// Gives the study a STAT assignment, as the router does for a stroke.
async fn make_stat(archive: &TestArchive, study_instance_uid: &str) {
    sqlx::query(
        "INSERT INTO assignments (study_id, state, subspecialty, priority, rule, assigned_at, \
         preliminary_by, assigned_instance_count, explanation, updated_at) \
         SELECT id, 'unassigned', 'neuro', 'stat', 'stroke', 0, 0, 4, '{}', 0 \
         FROM studies WHERE study_instance_uid = $1",
    )
    .bind(study_instance_uid)
    .execute(archive.archive.index().database().pool())
    .await
    .expect("a STAT assignment");
}

async fn a_stat_study_enqueued_while_routine_work_is_sent_goes_next(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let dir = archive.dir.path().to_path_buf();
    let (routine, routine_files) = synthetic_ct(&dir.join("routine"), 6);
    archive.store_all(&routine_files).await;
    let (stat, stat_files) = synthetic_ct(&dir.join("stat"), 2);
    archive.store_all(&stat_files).await;
    make_stat(&archive, &stat.study_instance_uid).await;
    // Each C-STORE takes a second at this workstation: the routine study
    // is still on its way when the STAT one is enqueued.
    let scp = Storescp::start(&dir, "NEURO_WS", &["--sleep-after", "1"]);
    let destination = scp.destination("dr-neuro");
    let outbox = archive.outbox(quick_retries(5));
    outbox
        .enqueue_study(&routine.study_instance_uid, &destination)
        .await
        .expect("enqueue the routine study");
    let forwarder = RunningForwarder::start(&outbox, &archive, 1);
    scp.wait_for_files(1, LONG).await;
    outbox
        .enqueue_study(&stat.study_instance_uid, &destination)
        .await
        .expect("enqueue the STAT study");
    let stat_jobs = wait_for_state(&outbox, &stat.study_instance_uid, JobState::Sent, LONG).await;
    let routine_jobs =
        wait_for_state(&outbox, &routine.study_instance_uid, JobState::Sent, LONG).await;
    forwarder.stop().await;

    // The order the workstation wrote them in (a batch's jobs share one
    // `sent_at`, recorded after the batch).
    let written = |job: &ForwardJob| {
        let files = &scp.received_by_sop()[&job.sop_instance_uid];
        std::fs::metadata(&files[0])
            .and_then(|m| m.modified())
            .expect("a received file's time")
    };
    let stat_done = stat_jobs.iter().map(written).max();
    let routine_after_stat = routine_jobs
        .iter()
        .filter(|j| Some(written(j)) > stat_done)
        .count();
    // The routine slice under way when the STAT arrived is finished; the
    // rest wait: 4 or 5 of 6 go after the STAT (none without overtaking).
    assert!(
        routine_after_stat >= 3,
        "only {routine_after_stat} routine slices went after the STAT study: {routine_jobs:#?}"
    );
    for job in stat_jobs.iter().chain(&routine_jobs) {
        assert_eq!(job.attempts, 1, "given back, not failed: {job:?}");
        assert!(!job.possible_duplicate, "{job:?}");
    }
    assert_eq!(scp.received().len(), 8, "each slice once");
}

async fn a_study_made_stat_after_it_was_queued_moves_up(backend: &Backend) {
    let archive = TestArchive::open(backend).await;
    let dir = archive.dir.path().to_path_buf();
    let (first, first_files) = synthetic_ct(&dir.join("first"), 2);
    let (late, late_files) = synthetic_ct(&dir.join("late"), 2);
    archive.store_all(&first_files).await;
    archive.store_all(&late_files).await;
    let outbox = archive.outbox(quick_retries(5));
    let destination = enqueue_for_neuro(
        &outbox,
        &[&first.study_instance_uid, &late.study_instance_uid],
    )
    .await;
    // The form arrives: the router raises the assignment to STAT and
    // re-ranks the queued images in the same transaction.
    make_stat(&archive, &late.study_instance_uid).await;
    let database = archive.archive.index().database();
    let mut tx = database.begin_write().await.expect("a transaction");
    let moved = telerad_store::outbox::rerank_study(&mut tx, &late.study_instance_uid)
        .await
        .expect("re-rank");
    tx.commit().await.expect("commit");
    assert_eq!(moved, 2);
    let claimed = claim_all(&outbox, &destination).await;
    let expected: Vec<String> = (0..2)
        .map(|i| late.sop_instance_uid(i))
        .chain((0..2).map(|i| first.sop_instance_uid(i)))
        .collect();
    assert_eq!(claimed, expected, "the STAT study first");
}

async fn a_workstation_behind_a_slow_link_that_dies_mid_study_gets_everything_once(
    backend: &Backend,
) {
    use telerad_fixtures::slow_link::{LinkShape, SlowLink};
    const SLICES: usize = 30;
    let archive = TestArchive::open(backend).await;
    let (study, files) = synthetic_ct(archive.dir.path(), SLICES);
    archive.store_all(&files).await;
    let mut scp = Storescp::start(archive.dir.path(), "HOME_WS", &[]);
    // 15 ms each way, 8 MB/s: a radiologist's home on a fibre line.
    let link = SlowLink::start(
        ([127, 0, 0, 1], scp.port).into(),
        LinkShape {
            one_way: Duration::from_millis(15),
            rate: 8_000_000,
        },
    )
    .expect("a slow link");
    let destination = telerad_store::outbox::Destination {
        name: "dr-home".into(),
        ae_title: "HOME_WS".into(),
        host: "127.0.0.1".into(),
        port: link.port,
    };
    let outbox = archive.outbox(quick_retries(50));
    outbox
        .enqueue_study(&study.study_instance_uid, &destination)
        .await
        .expect("enqueue");
    let forwarder = RunningForwarder::start(&outbox, &archive, 2);

    // The workstation dies a third of the way through, and comes back
    // once the forwarder has seen the failure.
    scp.wait_for_files(SLICES / 3, LONG).await;
    scp.stop();
    let deadline = std::time::Instant::now() + LONG;
    while !jobs_of(&outbox, &study.study_instance_uid)
        .await
        .iter()
        .any(|j| j.last_error.is_some())
    {
        assert!(std::time::Instant::now() < deadline, "no failure recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    scp.restart(&[]);
    let jobs = wait_for_state(&outbox, &study.study_instance_uid, JobState::Sent, LONG).await;
    forwarder.stop().await;

    // What the killed storescp was writing may be a partial file: only
    // readable files are what the workstation holds.
    let mut held: BTreeMap<String, usize> = BTreeMap::new();
    for path in scp.received() {
        match FileToSend::read(&path) {
            Ok(file) => *held.entry(file.sop_instance_uid).or_default() += 1,
            // A workstation discards what it did not finish receiving.
            Err(_) => std::fs::remove_file(&path).expect("remove a partial file"),
        }
    }
    assert_eq!(held.len(), SLICES, "every slice arrived: {held:?}");
    for job in &jobs {
        let copies = held[&job.sop_instance_uid];
        assert!(
            copies == 1 || job.possible_duplicate,
            "{} arrived {copies} times without being flagged: {job:?}",
            job.sop_instance_uid
        );
    }
    assert_received_identical(&archive, &scp, &jobs);
}
