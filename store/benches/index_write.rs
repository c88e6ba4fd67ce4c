//! Cost of indexing one received instance, apart from the disk writes of
//! the file itself: `versions_of` (the duplicate check) and
//! `record_instance` (one transaction), as a 300-slice CT arrives.
//!
//! SQLite in a temporary folder (WAL, synchronous=FULL: the figures include
//! the WAL fsync), and PostgreSQL in a fresh database when
//! `TELERAD_TEST_POSTGRES_URL` is set. Prints a markdown table of medians
//! and 99th percentiles.
//!
//! ```text
//! cargo bench -p telerad-store --bench index_write
//! ```

use std::error::Error;
use std::time::{Duration, Instant};
use telerad_dicom::inspect::InstanceAttributes;
use telerad_store::db::Database;
use telerad_store::index::{NewInstance, StudyIndex};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const INSTANCES: usize = 300;
const WARM_UP: usize = 20;
const STUDIES: usize = 3;

fn instance(study: usize, n: usize) -> NewInstance {
    let study_uid = format!("1.2.826.0.1.3680043.10.999.{study}");
    NewInstance {
        site: "bench".to_string(),
        attributes: InstanceAttributes {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".to_string(),
            sop_instance_uid: format!("{study_uid}.1.{n}"),
            study_instance_uid: study_uid.clone(),
            series_instance_uid: format!("{study_uid}.1"),
            patient_name: "BENCH^PATIENT".to_string(),
            patient_id: format!("P{study}"),
            modality: "CT".to_string(),
            body_part_examined: "HEAD".to_string(),
            instance_number: i64::try_from(n).ok(),
            ..InstanceAttributes::default()
        },
        version: 1,
        transfer_syntax_uid: "1.2.840.10008.1.2.1".to_string(),
        path: format!("studies/{study_uid}/{study_uid}.1/{study_uid}.1.{n}.dcm"),
        size_bytes: 525_000,
        checksum: format!("{n:064x}"),
        calling_ae_title: "BENCH".to_string(),
        received_at: 1_700_000_000_000,
        complete_after: 1_700_000_020_000,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn measure(label: &str, url: &str) -> Result<String> {
    let index = StudyIndex::new(Database::connect(url).await?);
    index.sync_site("bench", "Europe/Paris", 20).await?;
    let mut versions = Vec::new();
    let mut records = Vec::new();
    for study in 0..STUDIES {
        for n in 0..INSTANCES + WARM_UP {
            let new = instance(study, n);
            let started = Instant::now();
            index.versions_of(&new.attributes.sop_instance_uid).await?;
            let checked = Instant::now();
            index.record_instance(&new).await?;
            if n >= WARM_UP {
                versions.push(checked - started);
                records.push(checked.elapsed());
            }
        }
    }
    versions.sort();
    records.sort();
    let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1000.0);
    Ok(format!(
        "| {label} | {} | {} | {} | {} |",
        ms(percentile(&versions, 0.5)),
        ms(percentile(&versions, 0.99)),
        ms(percentile(&records, 0.5)),
        ms(percentile(&records, 0.99)),
    ))
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let sqlite = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("index.db").display()
    );
    let mut rows = vec![measure("SQLite", &sqlite).await?];
    if let Ok(url) = std::env::var("TELERAD_TEST_POSTGRES_URL") {
        let db = telerad_fixtures::database::PgDatabase::create(&url).await;
        rows.push(measure("PostgreSQL", &db.url).await?);
    }
    println!(
        "{} instances x {STUDIES} studies, one at a time\n",
        INSTANCES
    );
    println!("| backend | versions_of p50 ms | p99 ms | record_instance p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
