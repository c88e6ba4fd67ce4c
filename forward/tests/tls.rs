//! DICOM TLS to a workstation: the forwarder sends a study over TLS to
//! DCMTK's `storescp +tls`, presenting telerad's certificate, and refuses
//! a workstation whose certificate its configured authority did not sign.

mod common;

use common::*;
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;
use telerad_fixtures::pki::issue;
use telerad_forward::forwarder::Sender;
use telerad_store::outbox::JobState;

#[test]
fn a_study_goes_over_tls_to_a_workstation_of_the_trusted_authority_only() {
    let rt = runtime();
    rt.block_on(async {
        let archive = TestArchive::open(&Backend::Sqlite).await;
        let dir = archive.dir.path();
        issue(dir, "hospital-ca", "workstation");
        issue(dir, "hospital-ca", "telerad");
        issue(dir, "rogue-ca", "impostor");
        let path = |name: &str| dir.join(name).display().to_string();
        let study = SyntheticStudy::ct(4);
        let files = study.write_to(&dir.join("ct")).expect("generate");
        archive.store_all(&files).await;

        // The workstation requires a client certificate from the hospital's
        // authority (+cf: the authority it trusts; -rc, the default:
        // a client certificate is required).
        let tls_args = |name: &str| {
            vec![
                "+tls".to_string(),
                path(&format!("{name}.key")),
                path(&format!("{name}.pem")),
                "+cf".to_string(),
                path("hospital-ca.pem"),
            ]
        };
        let good_args = tls_args("workstation");
        let good = Storescp::start(
            dir,
            "MARTIN_WS",
            &good_args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let bad_args = tls_args("impostor");
        let impostor = Storescp::start(
            dir,
            "ROGUE_WS",
            &bad_args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let client = |_: ()| {
            telerad_scp::tls::client(
                "127.0.0.1",
                &dir.join("hospital-ca.pem"),
                Some((&dir.join("telerad.pem"), &dir.join("telerad.key"))),
            )
            .expect("a TLS client")
        };
        let sender = Sender::plain(TELERAD_AE)
            .with_tls("127.0.0.1", good.port, client(()))
            .with_tls("127.0.0.1", impostor.port, client(()));
        let outbox = archive.outbox(quick_retries(1));
        for scp in [&good, &impostor] {
            outbox
                .enqueue_study(&study.study_instance_uid, &scp.destination(&scp.ae_title))
                .await
                .expect("enqueue");
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let forwarder = tokio::spawn(telerad_forward::forwarder::run_forwarder(
            outbox.clone(),
            archive.archive.clone(),
            sender,
            1,
            stopped,
        ));
        good.wait_for_files(4, Duration::from_secs(60)).await;
        let dead = eventually("the impostor's jobs dead", Duration::from_secs(60), || {
            let outbox = outbox.clone();
            async move {
                let jobs = outbox.list(Some("dead"), 100).await.expect("list");
                (jobs.len() == 4).then_some(jobs)
            }
        })
        .await;
        let _ = stop.send(true);
        forwarder.await.expect("the forwarder stops");
        assert!(
            dead.iter()
                .all(|job| job.destination.ae_title == "ROGUE_WS")
        );
        assert!(
            dead.iter().all(|job| job
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("TLS")),
            "{dead:?}"
        );
        assert!(impostor.received().is_empty());
        let sent = outbox.list(Some("sent"), 100).await.expect("list");
        assert_eq!(sent.len(), 4);
        assert!(sent.iter().all(|job| job.state == JobState::Sent));
    });
}
