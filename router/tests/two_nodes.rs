//! Two nodes on one PostgreSQL database and one storage folder receive the
//! same SOP instance at the same moment, with different content (a modality
//! retrying through a load balancer after correcting it): both are stored as
//! versions of their own, and neither removes or replaces the other's
//! acknowledged file. (SQLite serves one process, which needs no claims.)

mod common;

use common::{Backend, PgDatabase, dataset_bytes};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use telerad_fixtures::SyntheticStudy;
use telerad_store::{Archive, Scope, Stored, SystemClock};

const ROUNDS: usize = 20;

async fn node(data_dir: &Path, database_url: &str, node_id: &str) -> Archive {
    let text = format!(
        r#"
[storage]
data_dir = "{}"
database_url = "{database_url}"
node_id = "{node_id}"

[[sites]]
name = "site-a"
ae_titles = ["SITE_A"]
allowed_networks = []
time_zone = "Europe/Paris"
"#,
        data_dir.display()
    );
    let config = telerad_config::Config::from_toml_str(&text).expect("a valid config");
    Archive::open(&config, Arc::new(SystemClock))
        .await
        .expect("open the archive")
}

async fn store(archive: &Archive, path: &Path) -> Stored {
    common::store(archive, path)
        .await
        .unwrap_or_else(|e| panic!("both receptions are acknowledged: {e}"))
}

#[test]
#[cfg_attr(not(telerad_postgres), ignore = "TELERAD_TEST_POSTGRES_URL is not set")]
fn the_same_instance_received_by_two_nodes_at_once_keeps_both_files() {
    let Backend::Postgres { admin_url } = Backend::required_postgres() else {
        unreachable!("required_postgres returns PostgreSQL or panics");
    };
    common::runtime().block_on(async {
        let db = PgDatabase::create(&admin_url).await;
        let storage = tempfile::tempdir().expect("a temp dir");
        let data_dir = storage.path().join("data");
        let nodes = [
            node(&data_dir, &db.url, "node-1").await,
            node(&data_dir, &db.url, "node-2").await,
        ];
        let slices = tempfile::tempdir().expect("a temp dir");
        for round in 0..ROUNDS {
            let mut study = SyntheticStudy::ct(1);
            study.rows = 16;
            study.columns = 16;
            let mut corrected = study.clone();
            corrected.patient_name = format!("CORRECTED^{round}");
            let first = study
                .write_to(&slices.path().join(format!("{round}-a")))
                .expect("generate");
            let second = corrected
                .write_to(&slices.path().join(format!("{round}-b")))
                .expect("generate");
            let (one, two) =
                tokio::join!(store(&nodes[0], &first[0]), store(&nodes[1], &second[0]));
            let versions: BTreeSet<i64> = [one, two]
                .iter()
                .map(|stored| match stored {
                    Stored::New { version, .. } => *version,
                    Stored::Duplicate { version } => panic!("different content: {version}"),
                })
                .collect();
            assert_eq!(
                versions.len(),
                2,
                "round {round}: two versions {versions:?}"
            );

            // Each indexed version's file holds what one of the nodes
            // acknowledged, and both contents are there.
            let indexed = nodes[0]
                .index()
                .instances_of(&study.study_instance_uid, &Scope::All)
                .await
                .expect("the index");
            assert_eq!(indexed.len(), 2, "round {round}");
            let stored: BTreeSet<Vec<u8>> = indexed
                .iter()
                .map(|instance| {
                    let path = nodes[0].layout().absolute(&instance.path);
                    assert!(path.is_file(), "round {round}: {} is gone", instance.path);
                    dataset_bytes(&path)
                })
                .collect();
            let sent: BTreeSet<Vec<u8>> =
                [dataset_bytes(&first[0]), dataset_bytes(&second[0])].into();
            assert_eq!(
                stored, sent,
                "round {round}: the files are what was acknowledged"
            );
        }
        // Each stored version's claim is kept for a while, then removed.
        let claims = || async {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM instance_claims")
                .fetch_one(nodes[0].index().database().pool())
                .await
                .expect("claims");
            n
        };
        assert_eq!(claims().await, 2 * ROUNDS as i64);
        let later = jiff::Timestamp::now().as_millisecond() + 1;
        let removed = nodes[1]
            .index()
            .release_settled_claims(later)
            .await
            .expect("cleanup");
        assert_eq!(removed, 2 * ROUNDS as u64);
        assert_eq!(claims().await, 0);
    });
}
