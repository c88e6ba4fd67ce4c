//! Nothing acknowledged is ever lost: a SIGKILL in the middle of a push, a
//! SIGTERM, a full disk. After each, every instance the sender saw
//! acknowledged is on disk, intact and indexed, and nothing half-written is
//! indexed or left visible.

mod common;

use common::dicom::dataset_hash;
use common::*;
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;
use telerad_scp::{ClientAssociation, FileToSend};

on_every_backend!(
    kill_9_mid_push_loses_no_acknowledged_instance,
    sigterm_lets_running_associations_finish,
    full_disk_answers_out_of_resources,
    an_instance_that_cannot_be_placed_leaves_no_index_row,
    kill_9_after_reads_keeps_each_read_audited_once,
);

/// Every indexed instance has its file, complete (the indexed checksum
/// matches the bytes on disk).
fn assert_index_matches_disk(server: &TestServer, study_uid: &str) -> BTreeSet<String> {
    let rt = runtime();
    let instances = rt
        .block_on(
            server
                .index(&rt)
                .instances_of(study_uid, &telerad_store::Scope::All),
        )
        .expect("query the index");
    for instance in &instances {
        let path = server.data_dir.join(&instance.path);
        assert!(
            path.is_file(),
            "indexed but missing on disk: {}",
            instance.path
        );
        assert_eq!(
            dataset_hash(&path).to_hex().to_string(),
            instance.checksum,
            "indexed file {} is not what was acknowledged",
            instance.path
        );
    }
    instances.into_iter().map(|i| i.sop_instance_uid).collect()
}

fn kill_9_mid_push_loses_no_acknowledged_instance(backend: &Backend) {
    let mut server = TestServer::start(backend);
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut study = SyntheticStudy::ct(150);
    study.rows = 256;
    study.columns = 256;
    let paths = study.write_to(dir.path()).expect("generate a CT");
    let files: Vec<FileToSend> = paths
        .iter()
        .map(|p| FileToSend::read(p).expect("a slice"))
        .collect();

    // Our SCU records exactly which instances were acknowledged; a killer
    // thread strikes while later ones are in flight.
    let pid = server.pid();
    let acknowledged_count = Arc::new(AtomicUsize::new(0));
    let killer = {
        let count = acknowledged_count.clone();
        std::thread::spawn(move || {
            while count.load(Ordering::SeqCst) < 40 {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(3));
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        })
    };
    let rt = runtime();
    let acknowledged: Vec<String> = rt.block_on(async {
        let proposals = [(
            files[0].sop_class_uid.clone(),
            files[0].transfer_syntax_uid.clone(),
        )];
        let mut association = ClientAssociation::connect(
            "SITE_A",
            &server.destination(),
            &proposals,
            Duration::from_secs(10),
        )
        .await
        .expect("associate");
        let mut acknowledged = Vec::new();
        for file in &files {
            match association.store(file).await {
                Ok(response) if response.is_success() => {
                    acknowledged.push(file.sop_instance_uid.clone());
                    acknowledged_count.fetch_add(1, Ordering::SeqCst);
                }
                Ok(response) => panic!("refused before the crash: {response:?}"),
                Err(_) => break,
            }
        }
        acknowledged
    });
    killer.join().expect("the killer thread");
    assert!(
        acknowledged.len() >= 40 && acknowledged.len() < files.len(),
        "the kill did not land mid-push ({} acknowledged)",
        acknowledged.len()
    );

    server.kill9();
    server.restart();
    assert!(
        server.incoming_files().is_empty(),
        "partial files survived a restart: {:?}",
        server.incoming_files()
    );
    let indexed = assert_index_matches_disk(&server, &study.study_instance_uid);
    for uid in &acknowledged {
        assert!(
            indexed.contains(uid),
            "acknowledged instance {uid} lost in the crash"
        );
    }
    // At most the one in flight may have been committed without its answer.
    assert!(
        indexed.len() <= acknowledged.len() + 1,
        "{} indexed, {} acknowledged",
        indexed.len(),
        acknowledged.len()
    );
    // The restart did not forget the study: it completes after the quiet period.
    server.wait_for_study(
        &study.study_instance_uid,
        "complete",
        indexed.len() as u64,
        Duration::from_secs(20),
    );

    // The sender resumes: everything arrives, nothing twice.
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination])
        .arg(dir.path()));
    assert!(out.status.success(), "{}", text(&out));
    server.wait_for_study(
        &study.study_instance_uid,
        "complete",
        150,
        Duration::from_secs(20),
    );
    assert_eq!(server.stored_files().len(), 150);
}

fn sigterm_lets_running_associations_finish(backend: &Backend) {
    let mut server = TestServer::start(backend);
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut study = SyntheticStudy::ct(60);
    study.rows = 256;
    study.columns = 256;
    study.write_to(dir.path()).expect("generate a CT");
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let push = Command::new(telerad_bin())
        .args(["push", "--to", &destination])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start telerad push");
    // Wait until the association is running, then ask the server to stop.
    let started = std::time::Instant::now();
    while !server.log().contains("association accepted") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "push never associated"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = server.terminate();
    assert!(
        status.success(),
        "telerad exited with {status} on SIGTERM:\n{}",
        server.log()
    );
    let out = push.wait_with_output().expect("push output");
    // The running association was allowed to finish within the grace period.
    assert!(
        out.status.success(),
        "the running push was cut: {}",
        text(&out)
    );
    assert!(server.incoming_files().is_empty());
    server.restart();
    let indexed = assert_index_matches_disk(&server, &study.study_instance_uid);
    assert_eq!(indexed.len(), 60);
    // A new association after the stop is refused: nobody listens any more.
    server.terminate();
    let out = run(Command::new(telerad_bin()).args(["echo", &destination, "--timeout-secs", "5"]));
    assert!(!out.status.success());
}

/// A small tmpfs as the storage folder: a real ENOSPC, not a simulation.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).expect("create the mount point");
        let out = run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path));
        assert!(
            out.status.success(),
            "this test mounts a tmpfs and needs root (CI runs as root): {}",
            text(&out)
        );
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn full_disk_answers_out_of_resources(backend: &Backend) {
    let mount_dir = tempfile::tempdir().expect("a temp dir");
    let data_dir = mount_dir.path().join("data");
    let _tmpfs = Tmpfs::mount(&data_dir, "3m");
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            data_dir: Some(data_dir.clone()),
            ..ServerOptions::default()
        },
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let study = SyntheticStudy::ct(12); // 12 × 525 kB: more than 3 MB
    study.write_to(dir.path()).expect("generate a CT");
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let out = run(Command::new(telerad_bin())
        .args(["push", "--to", &destination])
        .arg(dir.path()));
    let said = text(&out);
    assert!(!out.status.success(), "a full disk went unnoticed: {said}");
    assert!(said.contains("status 0xA700"), "{said}");
    assert!(said.contains("No space left on device"), "{said}");

    let indexed = assert_index_matches_disk(&server, &study.study_instance_uid);
    assert!(
        !indexed.is_empty() && indexed.len() < 12,
        "{} stored",
        indexed.len()
    );
    assert_eq!(
        server.stored_files().len(),
        indexed.len(),
        "a file is on disk but not indexed"
    );
    assert!(
        server.incoming_files().is_empty(),
        "partial files left on the full disk"
    );
    // Still answering, and storing again once space is freed.
    let status = runtime()
        .block_on(telerad_scp::scu::echo(
            "SITE_A",
            &server.destination(),
            Duration::from_secs(10),
        ))
        .expect("echo after a full disk");
    assert_eq!(status, 0);
}

/// The index rows of an instance are written while its file is synced, and
/// committed only once it is durable at its place: when placing fails, they
/// must be rolled back with everything they counted.
fn an_instance_that_cannot_be_placed_leaves_no_index_row(backend: &Backend) {
    let server = TestServer::start(backend);
    let dir = tempfile::tempdir().expect("a temp dir");
    let study = SyntheticStudy::ct(3);
    study.write_to(dir.path()).expect("generate a CT");
    // A folder where the first slice's file belongs: the data set passes
    // every check, then the rename onto it fails (even for root).
    let blocker = server
        .data_dir
        .join("studies")
        .join(&study.study_instance_uid)
        .join(&study.series_instance_uid)
        .join(format!("{}.dcm", study.sop_instance_uid(0)));
    std::fs::create_dir_all(blocker.join("inside")).expect("create the blocking folder");
    let destination = format!("{SERVER_AE}@{}", server.dicom_address());
    let push = || {
        run(Command::new(telerad_bin())
            .args(["push", "--to", &destination])
            .arg(dir.path()))
    };
    let out = push();
    let said = text(&out);
    assert!(
        !out.status.success(),
        "the failed placing went unnoticed: {said}"
    );
    assert!(said.contains("status 0xA700"), "{said}");

    let indexed = assert_index_matches_disk(&server, &study.study_instance_uid);
    assert_eq!(indexed.len(), 2, "{indexed:?}");
    assert!(!indexed.contains(&study.sop_instance_uid(0)));
    assert_eq!(
        server.study(&study.study_instance_uid)["instance_count"],
        2,
        "the study counts an instance whose rows were rolled back"
    );
    assert!(server.incoming_files().is_empty());

    // Once the way is clear, a re-send stores it.
    std::fs::remove_dir_all(&blocker).expect("remove the blocking folder");
    let out = push();
    assert!(out.status.success(), "{}", text(&out));
    let indexed = assert_index_matches_disk(&server, &study.study_instance_uid);
    assert_eq!(indexed.len(), 3);
    assert_eq!(server.study(&study.study_instance_uid)["instance_count"], 3);
}

/// A read is answered only once its record is safe: reads answered up to
/// the SIGKILL are all in the trail after the restart, each once (their
/// records are spooled before the answer and chained later, some before
/// the kill, the rest by the next start).
fn kill_9_after_reads_keeps_each_read_audited_once(backend: &Backend) {
    let mut server = TestServer::start(backend);
    let admin = server.admin_token();
    let reads = 40;
    let object = |i: usize| format!("study/1.2.826.0.1.3680043.10.999.{i}");
    for i in 0..reads {
        let (status, _) = server.get_as(
            Some(&admin),
            &format!("/api/studies/1.2.826.0.1.3680043.10.999.{i}"),
        );
        assert_eq!(status, 404, "no such study");
    }
    server.kill9();
    server.restart();
    let (status, trail) = server.get_as(Some(&admin), "/api/audit?user=admin&limit=1000");
    assert_eq!(status, 200, "{trail}");
    let objects: Vec<&str> = trail["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|record| record["object"].as_str())
        .collect();
    for i in 0..reads {
        let found = objects.iter().filter(|o| **o == object(i)).count();
        assert_eq!(found, 1, "read {i} audited {found} times: {objects:?}");
    }
}
