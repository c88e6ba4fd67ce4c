//! A corrected re-send after assignment (same SOP Instance UID, new
//! content, stored as a new version) is treated like any late image: the
//! reader is told, and the new version goes to their workstation.

mod common;

use common::Backend;
use common::nodes::nodes;
use telerad_store::Stored;
use telerad_store::events::RetryPolicy;
use telerad_store::flag::Flag;

telerad_fixtures::on_every_backend!(a_corrected_resend_after_assignment_is_flagged_and_forwarded);

/// Dr A (the harness's radiologist) on duty every night, with a
/// workstation (nothing listens there: only the queued jobs are checked).
const ON_DUTY: &str = r#"
[radiologists.workstation]
ae_title = "DR_A_WS"
host = "127.0.0.1"
port = 9

[rota]
time_zone = "Europe/Paris"

[[rota.shifts]]
radiologist = "dr-a"
role = "primary"
subspecialty = "general"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"
"#;

async fn a_corrected_resend_after_assignment_is_flagged_and_forwarded(backend: &Backend) {
    let nodes = nodes(backend, ON_DUTY, RetryPolicy::default()).await;
    let slices = tempfile::tempdir().expect("a temp dir");
    let mut study = telerad_fixtures::SyntheticStudy::ct(1);
    study.rows = 16;
    study.columns = 16;
    let original = study.write_to(slices.path()).expect("generate");
    nodes.store(&original[0]).await;
    assert_eq!(nodes.complete_quiet_studies().await, 1);
    nodes.drain().await;
    let jobs = |nodes: &common::nodes::Nodes| {
        let pool = nodes.pool().clone();
        async move {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT destination_ae_title, version FROM forward_jobs ORDER BY version",
            )
            .fetch_all(&pool)
            .await
            .expect("forward jobs");
            rows
        }
    };
    assert_eq!(jobs(&nodes).await, [("DR_A_WS".to_string(), 1)]);

    // The site corrects the patient's name and sends the image again.
    let corrected_dir = tempfile::tempdir().expect("a temp dir");
    let mut corrected = study.clone();
    corrected.patient_name = "CORRECTED^NAME".into();
    let corrected = corrected.write_to(corrected_dir.path()).expect("generate");
    assert!(matches!(
        nodes.store(&corrected[0]).await,
        Stored::New { version: 2, .. }
    ));
    assert_eq!(nodes.complete_quiet_studies().await, 1);
    nodes.drain().await;

    assert_eq!(
        jobs(&nodes).await,
        [("DR_A_WS".to_string(), 1), ("DR_A_WS".to_string(), 2)],
        "the new version is queued for the workstation"
    );
    let (state, radiologist, new_images): (String, Option<String>, Flag) =
        sqlx::query_as("SELECT state, radiologist_id, new_images FROM assignments")
            .fetch_one(nodes.pool())
            .await
            .expect("the assignment");
    assert_eq!(
        (&state[..], radiologist.as_deref(), new_images),
        ("assigned", Some("dr-a"), Flag(true))
    );
    let (action, detail): (String, String) =
        sqlx::query_as("SELECT action, detail FROM assignment_history ORDER BY id DESC")
            .fetch_one(nodes.pool())
            .await
            .expect("history");
    assert_eq!(action, "new_images");
    assert_eq!(
        detail,
        "1 image re-sent with corrected content after assignment"
    );
}
