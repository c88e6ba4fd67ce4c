//! Cost of chaining spooled audit records (the work behind each read's
//! record, `store/src/audit_spool.rs`): records appended to the spool,
//! then moved into the chain as the server's task does, `BATCH` at a
//! time. Prints the process CPU time per record (all threads: sqlx's
//! SQLite worker included) of the append (the request's share) and of
//! the move into the chain (the spool task's), and the move's wall time,
//! medians of `ROUNDS` batches. PostgreSQL's own CPU is not counted.
//!
//! SQLite in a temporary folder (WAL, synchronous=FULL, as served), and
//! PostgreSQL in a fresh database when `TELERAD_TEST_POSTGRES_URL` is set.
//!
//! ```text
//! cargo bench -p telerad-store --bench audit_chain
//! ```

use std::error::Error;
use std::time::{Duration, Instant};
use telerad_store::audit::{self, AuditRecord, Outcome};
use telerad_store::audit_spool::{AuditSpool, Orphans};
use telerad_store::db::Database;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// About what the spool holds at each 200 ms move under 5,000 reads/s.
const BATCH: usize = 1_000;
const ROUNDS: usize = 21;
const WARM_UP: usize = 3;

/// A study read as `GET /api/studies/{uid}` records it.
fn record(n: usize, studies: usize) -> AuditRecord {
    let study = format!("1.2.826.0.1.3680043.10.999.{}", n % studies);
    AuditRecord {
        at: 1_700_000_000_000 + i64::try_from(n).unwrap_or(0),
        actor: "dr.martin".to_string(),
        role: "radiologist".to_string(),
        sites: "site-a".to_string(),
        action: "study.read".to_string(),
        object: format!("study/{study}"),
        study_uid: Some(study),
        patient_id: Some(format!("P{}", n % studies)),
        outcome: Outcome::Success,
        source: "127.0.0.1".to_string(),
        detail: String::new(),
    }
}

/// CPU time of this process, all threads.
fn cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn measure(
    label: &str,
    url: &str,
    spool_dir: &std::path::Path,
    studies: usize,
) -> Result<String> {
    let db = Database::connect(url).await?;
    let spool = AuditSpool::start(db.clone(), spool_dir.to_path_buf(), Orphans::Leave)?;
    let (mut append_us, mut chain_us, mut wall_us) = (Vec::new(), Vec::new(), Vec::new());
    let per_record = |d: Duration| d.as_secs_f64() * 1e6 / BATCH as f64;
    for round in 0..ROUNDS + WARM_UP {
        // The spool's own task may move some of them meanwhile (a round
        // in about fifty): the medians leave such rounds out, and the
        // flush waits for it, so that each round ends with all chained.
        let cpu_before = cpu();
        for n in 0..BATCH {
            spool.append(&record(round * BATCH + n, studies))?;
        }
        let (cpu_appended, appended) = (cpu(), Instant::now());
        spool.flush().await?;
        let (cpu_chained, chained) = (cpu(), Instant::now());
        if round >= WARM_UP {
            append_us.push(per_record(cpu_appended - cpu_before));
            chain_us.push(per_record(cpu_chained - cpu_appended));
            wall_us.push(per_record(chained - appended));
        }
    }
    let verified = audit::verify(&db).await?;
    let expected = ((ROUNDS + WARM_UP) * BATCH) as u64;
    if verified.records != expected || verified.broken.is_some() {
        return Err(format!("{verified:?}: not the {expected} records chained").into());
    }
    Ok(format!(
        "| {label} | {studies} | {:.1} | {:.1} | {:.1} |",
        median(append_us),
        median(chain_us),
        median(wall_us)
    ))
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let postgres = std::env::var("TELERAD_TEST_POSTGRES_URL").ok();
    let mut rows = Vec::new();
    // One study read again and again (as bench/auth.sh does), and reads
    // spread over fifty (each study's and patient's index entries apart).
    for studies in [1, 50] {
        let sqlite = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join(format!("audit-{studies}.db")).display()
        );
        let spool = dir.path().join(format!("spool-sqlite-{studies}"));
        rows.push(measure("SQLite", &sqlite, &spool, studies).await?);
        if let Some(url) = &postgres {
            let db = telerad_fixtures::database::PgDatabase::create(url).await;
            let spool = dir.path().join(format!("spool-pg-{studies}"));
            rows.push(measure("PostgreSQL", &db.url, &spool, studies).await?);
        }
    }
    println!("{BATCH} records a move, medians of {ROUNDS} moves; CPU of this process\n");
    println!(
        "| backend | studies read | append CPU µs / record | chain CPU µs / record | chain wall µs / record |"
    );
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
