//! Routing decision latency at the scale of a teleradiology group.
//!
//! Builds, from generated TOML, a configuration with 200 radiologists
//! (neuro, body, chest, msk, general; each licensed for 3 of 10 sites), a
//! weekly rota of day and night shifts for every one of them and a month of
//! dated overrides (absences, extras, swaps); opens a real archive (SQLite in
//! a temporary folder, and PostgreSQL in a fresh database when
//! `TELERAD_TEST_POSTGRES_URL` is set) with 10,000 open assignments; then,
//! for each of `DECISIONS` new studies, inserts the study and its `complete`
//! event and times [`Router::process_next_event`] alone, with the clock set
//! to a random instant of the month. The pure parts (rota, rules, candidate
//! selection, the explanation's JSON) and the load query are timed apart to
//! show where the time goes. Prints markdown tables.
//!
//! ```text
//! cargo bench -p telerad-router --bench decision
//! TELERAD_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!     DECISIONS=1000 cargo bench -p telerad-router --bench decision
//! ```

use jiff::ToSpan;
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use sqlx::{AssertSqlSafe, Connection, Executor};
use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use telerad_config::Config;
use telerad_router::assignment;
use telerad_router::candidates::{Context, Load, Reader, choose, weight};
use telerad_router::rota::Rota;
use telerad_router::rules::{Priority, Rules, StudyFacts};
use telerad_router::service::Router;
use telerad_store::outbox::{Outbox, RetryPolicy};
use telerad_store::{Archive, ManualClock};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const RADIOLOGISTS: usize = 200;
const SITES: usize = 10;
const SITES_PER_RADIOLOGIST: usize = 3;
const OVERRIDES: usize = 150;
const OPEN_ASSIGNMENTS: usize = 10_000;
/// Decisions run before the measured ones: connections opened, statements
/// prepared, pages cached.
const WARM_UP: usize = 30;
/// Calls of each pure function timed.
const PURE_SAMPLES: usize = 20_000;
/// Repetitions of the single-query probes per backend.
const PROBES: usize = 300;
const SUBSPECIALTIES: [&str; 5] = ["neuro", "body", "chest", "msk", "general"];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const ZONE: &str = "Europe/Paris";
const POSTGRES_URL_VAR: &str = "TELERAD_TEST_POSTGRES_URL";

/// The month the rota covers (it contains the spring-forward night).
fn month_start() -> Date {
    date(2026, 3, 1)
}
const MONTH_DAYS: i64 = 31;

/// SplitMix64: deterministic, so that every run measures the same work.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn site_name(i: usize) -> String {
    format!("site-{i:02}")
}

fn radiologist_id(i: usize) -> String {
    format!("dr-{i:03}")
}

/// The subspecialty of radiologist `i`'s shifts.
fn subspecialty_of(i: usize) -> &'static str {
    SUBSPECIALTIES[i % SUBSPECIALTIES.len()]
}

/// "2026-03-DDTHH:00" in the rota's zone, `day` days after the month's start.
fn local(day: i64, hour: u8) -> Result<String> {
    let d = month_start().checked_add(day.days())?;
    Ok(format!("{d}T{hour:02}:00"))
}

/// The whole configuration as an operator would write it.
fn config_toml(data_dir: &Path, database_url: &str, rng: &mut Rng) -> Result<String> {
    let mut t = String::new();
    writeln!(
        t,
        "[storage]\ndata_dir = {:?}\ndatabase_url = {database_url:?}\n",
        data_dir.display().to_string()
    )?;
    for s in 0..SITES {
        writeln!(
            t,
            "[[sites]]\nname = \"{}\"\nae_titles = [\"SITE{s:02}\"]\ntime_zone = \"{ZONE}\"\n",
            site_name(s)
        )?;
    }
    for i in 0..RADIOLOGISTS {
        let mut subspecialties = vec![subspecialty_of(i)];
        if subspecialty_of(i) != "general" && i % 3 == 0 {
            subspecialties.push("general");
        }
        let mut sites: Vec<usize> = Vec::new();
        while sites.len() < SITES_PER_RADIOLOGIST {
            let s = rng.below(SITES);
            if !sites.contains(&s) {
                sites.push(s);
            }
        }
        let quoted = |items: Vec<String>| {
            items
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            t,
            "[[radiologists]]\nid = \"{}\"\nname = \"Dr Reader {i:03}\"\nsubspecialties = [{}]\n\
             sites = [{}]\nmax_open_studies = 500\n",
            radiologist_id(i),
            quoted(subspecialties.iter().map(|s| (*s).to_string()).collect()),
            quoted(sites.into_iter().map(site_name).collect()),
        )?;
    }
    writeln!(t, "[rota]\ntime_zone = \"{ZONE}\"\n")?;
    for i in 0..RADIOLOGISTS {
        // Days on days i..i+2, nights on i+4 and i+5, two days off: the
        // group covers every day and night of the week.
        let role = if (i / SUBSPECIALTIES.len()) % 4 == 3 {
            "backup"
        } else {
            "primary"
        };
        let days = |offsets: &[usize]| {
            offsets
                .iter()
                .map(|o| format!("\"{}\"", DAYS[(i + o) % 7]))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (offsets, start, end) in [
            (&[0, 1, 2][..], "08:00", "20:00"),
            (&[4, 5][..], "20:00", "08:00"),
        ] {
            writeln!(
                t,
                "[[rota.shifts]]\nradiologist = \"{}\"\nrole = \"{role}\"\nsubspecialty = \"{}\"\n\
                 days = [{}]\nstart = \"{start}\"\nend = \"{end}\"\n",
                radiologist_id(i),
                subspecialty_of(i),
                days(offsets),
            )?;
        }
    }
    for k in 0..OVERRIDES {
        let i = rng.below(RADIOLOGISTS);
        let day = i64::try_from(rng.below(29))?;
        let who = radiologist_id(i);
        match k % 3 {
            0 => {
                let length = i64::try_from(1 + rng.below(4))?;
                writeln!(
                    t,
                    "[[rota.overrides]]\nradiologist = \"{who}\"\nkind = \"absence\"\nfrom = \"{}\"\nto = \"{}\"\n",
                    local(day, 8)?,
                    local(day + length, 8)?
                )?;
            }
            1 => writeln!(
                t,
                "[[rota.overrides]]\nradiologist = \"{who}\"\nkind = \"extra\"\nrole = \"primary\"\n\
                 subspecialty = \"{}\"\nfrom = \"{}\"\nto = \"{}\"\n",
                subspecialty_of(i),
                local(day, 20)?,
                local(day + 1, 8)?
            )?,
            _ => {
                // Someone of the same subspecialty takes two days of shifts.
                let with = (i + SUBSPECIALTIES.len()
                    * (1 + rng.below(RADIOLOGISTS / SUBSPECIALTIES.len() - 1)))
                    % RADIOLOGISTS;
                writeln!(
                    t,
                    "[[rota.overrides]]\nradiologist = \"{who}\"\nkind = \"swap\"\nwith = \"{}\"\nfrom = \"{}\"\nto = \"{}\"\n",
                    radiologist_id(with),
                    local(day, 0)?,
                    local(day + 2, 0)?
                )?;
            }
        }
    }
    t.push_str(RULES);
    writeln!(
        t,
        "[escalation]\nchain = [\"dr-004\", \"dr-009\", \"dr-014\"]"
    )?;
    Ok(t)
}

/// Ten rules of the kind a group writes, most specific first.
const RULES: &str = r#"
[[rules]]
name = "stroke-description"
description = "(?i)AVC|stroke|thrombolys"
subspecialty = "neuro"
priority = "stat"

[[rules]]
name = "trauma"
description = "(?i)polytrauma|trauma"
subspecialty = "general"
priority = "stat"

[[rules]]
name = "head-ct"
modality = "CT"
body_part = "HEAD"
subspecialty = "neuro"
priority = "urgent"

[[rules]]
name = "brain-mr"
modality = "MR"
body_part = "BRAIN"
subspecialty = "neuro"
priority = "routine"

[[rules]]
name = "chest-ct"
modality = "CT"
body_part = "CHEST"
subspecialty = "chest"
priority = "urgent"

[[rules]]
name = "chest-xr"
modality = "CR"
body_part = "CHEST"
subspecialty = "chest"
priority = "routine"

[[rules]]
name = "abdomen-ct"
modality = "CT"
body_part = "ABDOMEN"
subspecialty = "body"
priority = "urgent"

[[rules]]
name = "pelvis-mr"
modality = "MR"
body_part = "PELVIS"
subspecialty = "body"
priority = "routine"

[[rules]]
name = "knee-mr"
modality = "MR"
body_part = "KNEE"
subspecialty = "msk"
priority = "routine"

[[rules]]
name = "spine"
body_part = "SPINE"
subspecialty = "msk"
priority = "routine"

"#;

const MODALITIES: [&str; 3] = ["CT", "MR", "CR"];
const BODY_PARTS: [&str; 8] = [
    "HEAD", "BRAIN", "CHEST", "ABDOMEN", "PELVIS", "KNEE", "SPINE", "HAND",
];
const DESCRIPTIONS: [&str; 6] = [
    "TDM CEREBRALE AVC",
    "POLYTRAUMA BODY",
    "SCANNER",
    "IRM",
    "RADIOGRAPHIE",
    "EXAMEN STANDARD",
];

/// What a study coming out of a scanner at one of the sites looks like.
fn random_facts(rng: &mut Rng) -> StudyFacts {
    let modality = *rng.pick(&MODALITIES);
    let body_part = *rng.pick(&BODY_PARTS);
    // One study in six has a stroke or trauma description.
    let description = if rng.chance(17) {
        *rng.pick(&DESCRIPTIONS[..2])
    } else {
        *rng.pick(&DESCRIPTIONS[2..])
    };
    StudyFacts {
        site: site_name(rng.below(SITES)),
        modalities: vec![modality.to_string()],
        body_parts: vec![body_part.to_string()],
        study_description: format!("{description} {body_part}"),
        series_descriptions: vec![format!("{body_part} 1.0 B30f")],
        urgency: None,
        stroke: false,
        requested_examination: String::new(),
    }
}

/// A random instant of the month, in Unix milliseconds.
fn random_instant(rng: &mut Rng) -> Result<i64> {
    let start = month_start()
        .to_zoned(TimeZone::get(ZONE)?)?
        .timestamp()
        .as_millisecond();
    let span = MONTH_DAYS * 86_400_000;
    Ok(start + i64::try_from(rng.next() % u64::try_from(span)?)?)
}

fn readers_of(config: &Config) -> HashMap<String, Reader> {
    config
        .radiologists
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                Reader {
                    name: r.name.clone(),
                    sites: r.sites.clone(),
                    max_open_studies: i64::from(r.max_open_studies),
                },
            )
        })
        .collect()
}

/// One open assignment as inserted.
struct Open {
    radiologist: String,
    priority: Priority,
    acknowledged: bool,
}

fn random_open(rng: &mut Rng) -> Open {
    let priority = match rng.below(10) {
        0 => Priority::Stat,
        1..=3 => Priority::Urgent,
        _ => Priority::Routine,
    };
    Open {
        radiologist: radiologist_id(rng.below(RADIOLOGISTS)),
        priority,
        acknowledged: rng.chance(40),
    }
}

fn loads_of(open: &[Open]) -> HashMap<String, Load> {
    let mut loads: HashMap<String, Load> = HashMap::new();
    for o in open {
        let load = loads.entry(o.radiologist.clone()).or_default();
        load.open += 1;
        load.weighted += weight(o.priority);
        if o.priority == Priority::Stat {
            load.stat_open += 1;
        }
    }
    loads
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Inserts the 10,000 open studies with their series, `complete` events
/// (already consumed by the router), assignments and history, in one
/// transaction of multi-row inserts.
async fn populate(
    archive: &Archive,
    open: &[Open],
    facts: &[StudyFacts],
    explanation: &str,
    now: i64,
) -> Result<()> {
    let pool = archive.index().database().pool();
    let mut tx = pool.begin().await?;
    const BATCH: usize = 500;
    for (chunk_index, chunk) in facts.chunks(BATCH).enumerate() {
        let rows: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let n = chunk_index * BATCH + j;
                format!(
                    "('1.2.826.0.1.3680043.10.543.1.{n}', {}, {}, {}, {}, {now}, {now}, 120, 'complete', {now}, {now})",
                    sql_text(&f.site),
                    sql_text(&f.study_description),
                    sql_text(&f.modalities.join("\\")),
                    sql_text(&f.body_parts.join("\\"))
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO studies (study_instance_uid, site, study_description, modalities, body_parts, \
             first_received_at, last_received_at, instance_count, status, complete_after, completed_at) VALUES {}",
            rows.join(", ")
        );
        (&mut *tx).execute(AssertSqlSafe(sql)).await?;
    }
    let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM studies ORDER BY id")
        .fetch_all(&mut *tx)
        .await?;
    let ids: Vec<i64> = ids.into_iter().map(|(id,)| id).collect();
    for (chunk_index, chunk) in ids.chunks(BATCH).enumerate() {
        let at = |j: usize| chunk_index * BATCH + j;
        let series: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(j, id)| {
                let f = &facts[at(j)];
                format!(
                    "({id}, '1.2.826.0.1.3680043.10.543.2.{}', {}, {}, {}, 120)",
                    at(j),
                    sql_text(&f.modalities[0]),
                    sql_text(&f.series_descriptions[0]),
                    sql_text(&f.body_parts[0])
                )
            })
            .collect();
        (&mut *tx)
            .execute(AssertSqlSafe(format!(
                "INSERT INTO series (study_id, series_instance_uid, modality, series_description, \
             body_part_examined, instance_count) VALUES {}",
                series.join(", ")
            )))
            .await?;
        let events: Vec<String> = chunk
            .iter()
            .map(|id| format!("({id}, 'complete', {now}, 120)"))
            .collect();
        (&mut *tx)
            .execute(AssertSqlSafe(format!(
                "INSERT INTO study_events (study_id, kind, at, instance_count) VALUES {}",
                events.join(", ")
            )))
            .await?;
        let assignments: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(j, id)| {
                let o = &open[at(j)];
                let (state, acknowledge_by, acknowledged_at) = if o.acknowledged {
                    ("acknowledged", "NULL".to_string(), format!("{}", now + 60_000))
                } else {
                    ("assigned", format!("{}", now + 3_600_000), "NULL".to_string())
                };
                format!(
                    "({id}, '{state}', '{r}', 'general', '{p}', 'default', {now}, {acknowledge_by}, {pre}, \
                     {acknowledged_at}, 120, {explanation}, {now})",
                    r = o.radiologist,
                    p = o.priority.as_str(),
                    pre = now + 43_200_000,
                    explanation = sql_text(explanation),
                )
            })
            .collect();
        (&mut *tx).execute(AssertSqlSafe(format!(
            "INSERT INTO assignments (study_id, state, radiologist_id, subspecialty, priority, rule, \
             assigned_at, acknowledge_by, preliminary_by, acknowledged_at, assigned_instance_count, \
             explanation, updated_at) VALUES {}",
            assignments.join(", ")
        )))
        .await?;
        let history: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(j, id)| {
                format!(
                    "({id}, {now}, 'assigned', '{}', 'rule \"default\" gives general / routine; chosen from general on duty')",
                    open[at(j)].radiologist
                )
            })
            .collect();
        (&mut *tx).execute(AssertSqlSafe(format!(
            "INSERT INTO assignment_history (study_id, at, action, radiologist_id, detail) VALUES {}",
            history.join(", ")
        )))
        .await?;
    }
    (&mut *tx).execute("UPDATE event_consumers SET last_event_id = (SELECT MAX(id) FROM study_events) WHERE name = 'router'")
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A new complete study, as the quiet-period sweep leaves it: the study,
/// its series and its `complete` event. Returns the study's id.
async fn insert_complete_study(
    archive: &Archive,
    n: usize,
    facts: &StudyFacts,
    now: i64,
) -> Result<i64> {
    let pool = archive.index().database().pool();
    let mut tx = pool.begin().await?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO studies (study_instance_uid, site, study_description, modalities, body_parts, \
         first_received_at, last_received_at, instance_count, status, complete_after, completed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, 40, 'complete', $6, $6) RETURNING id",
    )
    .bind(format!("1.2.826.0.1.3680043.10.543.3.{n}"))
    .bind(&facts.site)
    .bind(&facts.study_description)
    .bind(facts.modalities.join("\\"))
    .bind(facts.body_parts.join("\\"))
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO series (study_id, series_instance_uid, modality, series_description, body_part_examined, \
         instance_count) VALUES ($1, $2, $3, $4, $5, 40)",
    )
    .bind(id)
    .bind(format!("1.2.826.0.1.3680043.10.543.4.{n}"))
    .bind(&facts.modalities[0])
    .bind(&facts.series_descriptions[0])
    .bind(&facts.body_parts[0])
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO study_events (study_id, kind, at, instance_count) VALUES ($1, 'complete', $2, 40)")
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// Latency samples and their order statistics.
#[derive(Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.0.push(start.elapsed());
        out
    }
    /// Nearest-rank percentile.
    fn pct(&self, p: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted
            .get(rank.saturating_sub(1))
            .copied()
            .unwrap_or_default()
    }
    fn max(&self) -> Duration {
        self.0.iter().max().copied().unwrap_or_default()
    }
    fn mean(&self) -> Duration {
        let n = u32::try_from(self.0.len().max(1)).unwrap_or(u32::MAX);
        self.0.iter().sum::<Duration>() / n
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// What one backend measured.
struct BackendRun {
    name: String,
    decisions: Samples,
    loads: Samples,
    /// The load query once a covering index exists (not in the schema).
    covered: Samples,
    idle: Samples,
    outcomes: Vec<(String, i64)>,
    fallbacks: i64,
    open_before: i64,
    /// The explanation stored with each open assignment.
    explanation_bytes: usize,
}

/// Everything for one database: open, fill, decide, probe.
async fn run_backend(
    name: &str,
    data_dir: &Path,
    database_url: &str,
    decisions: usize,
) -> Result<BackendRun> {
    let mut rng = Rng(0x7E1E_4AD0);
    let config = Config::from_toml_str(&config_toml(data_dir, database_url, &mut rng)?)?;
    let clock = Arc::new(ManualClock::new(random_instant(&mut rng)?));
    let archive = Arc::new(Archive::open(&config, clock.clone()).await?);
    let outbox = Arc::new(Outbox::new(
        archive.index().database().clone(),
        RetryPolicy::default(),
    ));
    let router = Router::new(&config, archive.clone(), outbox)?;

    // A real explanation, so that the assignments rows have their usual size.
    let rota = Rota::from_config(&config)?;
    let rules = Rules::from_config(&config)?;
    let readers = readers_of(&config);
    let open: Vec<Open> = (0..OPEN_ASSIGNMENTS)
        .map(|_| random_open(&mut rng))
        .collect();
    let open_facts: Vec<StudyFacts> = (0..OPEN_ASSIGNMENTS)
        .map(|_| random_facts(&mut rng))
        .collect();
    let loads = loads_of(&open);
    let sample = random_facts(&mut rng);
    let duties = rota.on_duty(jiff::Timestamp::from_millisecond(clock_now(&clock))?);
    let decision = choose(
        &rules.classify(&sample),
        &duties,
        &Context {
            readers: &readers,
            site: &sample.site,
            loads: &loads,
            exclude: &HashSet::new(),
        },
    );
    let explanation = serde_json::to_string(&decision)?;

    let started = Instant::now();
    populate(
        &archive,
        &open,
        &open_facts,
        &explanation,
        clock_now(&clock),
    )
    .await?;
    let pool = archive.index().database().pool();
    if archive.index().database().backend == telerad_store::Backend::Postgres {
        // What autovacuum would have done after such an insert.
        pool.execute("ANALYZE").await?;
    }
    eprintln!(
        "{name}: {OPEN_ASSIGNMENTS} open assignments inserted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (max_old_study,): (i64,) = sqlx::query_as("SELECT MAX(id) FROM studies")
        .fetch_one(pool)
        .await?;
    let (open_before,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM assignments WHERE state IN ('assigned', 'acknowledged')",
    )
    .fetch_one(pool)
    .await?;

    let mut times = Samples::default();
    for k in 0..WARM_UP + decisions {
        let now = random_instant(&mut rng)?;
        clock.set(now);
        let facts = random_facts(&mut rng);
        insert_complete_study(&archive, k, &facts, now).await?;
        let start = Instant::now();
        let handled = router.process_next_event().await?;
        let elapsed = start.elapsed();
        if !handled {
            return Err(format!("{name}: decision {k} found no event to handle").into());
        }
        if k >= WARM_UP {
            times.0.push(elapsed);
        }
    }
    let outcomes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, COUNT(*) FROM assignments WHERE study_id > $1 GROUP BY state ORDER BY state",
    )
    .bind(max_old_study)
    .fetch_all(pool)
    .await?;
    let decided: i64 = outcomes.iter().map(|(_, n)| n).sum();
    let expected = i64::try_from(WARM_UP + decisions)?;
    if decided != expected {
        return Err(format!(
            "{name}: {decided} assignments recorded for {expected} complete events"
        )
        .into());
    }
    let (fallbacks,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM assignments WHERE study_id > $1 AND explanation LIKE '%radiologist available)%'",
    )
    .bind(max_old_study)
    .fetch_one(pool)
    .await?;

    // The open-load query alone, and a poll that finds no event.
    let mut load_times = Samples::default();
    for _ in 0..PROBES {
        let mut tx = pool.begin().await?;
        let start = Instant::now();
        let loads = assignment::loads(&mut tx).await?;
        load_times.0.push(start.elapsed());
        tx.rollback().await?;
        if loads.is_empty() {
            return Err("no loads read".into());
        }
    }
    let mut idle = Samples::default();
    for _ in 0..PROBES {
        let start = Instant::now();
        let handled = router.process_next_event().await?;
        idle.0.push(start.elapsed());
        if handled {
            return Err("an event was left unhandled".into());
        }
    }
    // What-if, not in the schema: an index that covers the load query.
    pool.execute(
        "CREATE INDEX bench_loads_covering ON assignments (state, radiologist_id, priority)",
    )
    .await?;
    if archive.index().database().backend == telerad_store::Backend::Postgres {
        pool.execute("ANALYZE assignments").await?;
    }
    let mut covered = Samples::default();
    for _ in 0..PROBES {
        let mut tx = pool.begin().await?;
        let start = Instant::now();
        let loads = assignment::loads(&mut tx).await?;
        covered.0.push(start.elapsed());
        tx.rollback().await?;
        if loads.is_empty() {
            return Err("no loads read".into());
        }
    }
    drop(router);
    pool.close().await;
    Ok(BackendRun {
        name: name.to_string(),
        decisions: times,
        loads: load_times,
        covered,
        idle,
        outcomes,
        fallbacks,
        open_before,
        explanation_bytes: explanation.len(),
    })
}

fn clock_now(clock: &ManualClock) -> i64 {
    telerad_store::Clock::now_ms(clock)
}

/// The pure functions, timed one call at a time.
struct Pure {
    on_duty: Samples,
    duties_mean: f64,
    classify: Samples,
    choose: Samples,
    explain: Samples,
    considered_mean: f64,
}

fn run_pure(data_dir: &Path) -> Result<Pure> {
    let mut rng = Rng(0x7E1E_4AD0);
    let config = Config::from_toml_str(&config_toml(data_dir, "sqlite::memory:", &mut rng)?)?;
    let rota = Rota::from_config(&config)?;
    let rules = Rules::from_config(&config)?;
    let readers = readers_of(&config);
    let open: Vec<Open> = (0..OPEN_ASSIGNMENTS)
        .map(|_| random_open(&mut rng))
        .collect();
    let loads = loads_of(&open);

    let mut on_duty = Samples::default();
    let mut duty_sets = Vec::with_capacity(PURE_SAMPLES);
    for _ in 0..PURE_SAMPLES {
        let at = jiff::Timestamp::from_millisecond(random_instant(&mut rng)?)?;
        duty_sets.push(on_duty.time(|| rota.on_duty(at)));
    }
    let duties_mean = duty_sets.iter().map(Vec::len).sum::<usize>() as f64 / duty_sets.len() as f64;

    let mut classify = Samples::default();
    let facts: Vec<StudyFacts> = (0..PURE_SAMPLES).map(|_| random_facts(&mut rng)).collect();
    let classifications: Vec<_> = facts
        .iter()
        .map(|f| classify.time(|| rules.classify(f)))
        .collect();

    let mut choose_times = Samples::default();
    let mut explain = Samples::default();
    let exclude = HashSet::new();
    let mut considered = 0usize;
    for (i, (f, c)) in facts.iter().zip(&classifications).enumerate() {
        let duties = &duty_sets[i];
        let ctx = Context {
            readers: &readers,
            site: &f.site,
            loads: &loads,
            exclude: &exclude,
        };
        let decision = choose_times.time(|| choose(c, duties, &ctx));
        considered += decision.considered.len();
        let json = explain.time(|| serde_json::to_string(&decision))?;
        if json.is_empty() {
            return Err("empty explanation".into());
        }
    }
    Ok(Pure {
        on_duty,
        duties_mean,
        classify,
        choose: choose_times,
        explain,
        considered_mean: considered as f64 / PURE_SAMPLES as f64,
    })
}

/// A fresh PostgreSQL database on the server of `admin_url`.
async fn create_pg_database(admin_url: &str, name: &str) -> Result<String> {
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await?;
    conn.close().await?;
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = base[scheme_end..]
        .find('/')
        .map_or(base, |slash| &base[..scheme_end + slash]);
    Ok(match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    })
}

async fn drop_pg_database(admin_url: &str, name: &str) -> Result<()> {
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    conn.execute(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .await?;
    conn.close().await?;
    Ok(())
}

async fn pg_version(url: &str) -> Result<String> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let (version,): (String,) = sqlx::query_as("SHOW server_version")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(version)
}

fn main() -> Result<()> {
    let decisions: usize = match std::env::var("DECISIONS") {
        Ok(n) => n.parse().map_err(|e| format!("DECISIONS={n}: {e}"))?,
        Err(_) => 600,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::Builder::new()
        .prefix("telerad-rbench-")
        .tempdir()?;

    let pure = run_pure(&dir.path().join("pure"))?;
    let sqlite_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("index.db").display()
    );
    let mut runs = vec![runtime.block_on(run_backend(
        "SQLite",
        &dir.path().join("sqlite-data"),
        &sqlite_url,
        decisions,
    ))?];
    let mut pg_note = "PostgreSQL: not measured (set TELERAD_TEST_POSTGRES_URL)".to_string();
    if let Some(admin_url) = std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|u| !u.is_empty())
    {
        let name = format!("telerad_rbench_{}", std::process::id());
        let url = runtime.block_on(create_pg_database(&admin_url, &name))?;
        let result = runtime.block_on(async {
            let version = pg_version(&url).await?;
            let run =
                run_backend("PostgreSQL", &dir.path().join("pg-data"), &url, decisions).await?;
            Ok::<_, Box<dyn Error>>((version, run))
        });
        // Dropped whatever happened.
        runtime.block_on(drop_pg_database(&admin_url, &name))?;
        let (version, run) = result?;
        pg_note = format!(
            "PostgreSQL {version} on this machine, fresh database, ANALYZE after the bulk insert"
        );
        runs.push(run);
    }

    println!("## Routing decision latency\n");
    println!(
        "{RADIOLOGISTS} radiologists (neuro/body/chest/msk/general, {SITES_PER_RADIOLOGIST} of {SITES} sites each), \
         {} weekly shifts (days and nights), {OVERRIDES} dated overrides over March 2026 (absences, extras, swaps), \
         10 rules; {} open assignments at the start (each with a real {}-byte explanation); the clock at a random instant of the month for each decision. \
         Time of `Router::process_next_event()` alone (one `complete` event: classify, rota, loads, choose, \
         insert the assignment and its history, commit), after {WARM_UP} unmeasured decisions.\n",
        2 * RADIOLOGISTS,
        runs.first().map_or(0, |r| r.open_before),
        runs.first().map_or(0, |r| r.explanation_bytes),
    );
    println!("| backend | decisions | p50 | p99 | max | mean | outcomes |");
    println!("|---|---|---|---|---|---|---|");
    for run in &runs {
        let outcomes: Vec<String> = run
            .outcomes
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        println!(
            "| {} | {} | {} | {} | {} | {} | {}; {} from the general pool (no subspecialist available) |",
            run.name,
            run.decisions.0.len(),
            ms(run.decisions.pct(50.0)),
            ms(run.decisions.pct(99.0)),
            ms(run.decisions.max()),
            ms(run.decisions.mean()),
            outcomes.join(", "),
            run.fallbacks,
        );
    }
    println!(
        "\nSQLite: WAL, synchronous=FULL (a commit is an fsync), file in a temporary folder. {pg_note}.\n"
    );
    println!("### Where the time goes\n");
    println!("| part | calls | p50 | p99 |");
    println!("|---|---|---|---|");
    println!(
        "| `Rota::on_duty` at a random instant of the month ({:.0} duties on average) | {} | {} | {} |",
        pure.duties_mean,
        pure.on_duty.0.len(),
        us(pure.on_duty.pct(50.0)),
        us(pure.on_duty.pct(99.0))
    );
    println!(
        "| `Rules::classify` (10 rules + default) | {} | {} | {} |",
        pure.classify.0.len(),
        us(pure.classify.pct(50.0)),
        us(pure.classify.pct(99.0))
    );
    println!(
        "| `candidates::choose` ({:.0} radiologists considered on average) | {} | {} | {} |",
        pure.considered_mean,
        pure.choose.0.len(),
        us(pure.choose.pct(50.0)),
        us(pure.choose.pct(99.0))
    );
    println!(
        "| explanation to JSON (`serde_json::to_string(&decision)`) | {} | {} | {} |",
        pure.explain.0.len(),
        us(pure.explain.pct(50.0)),
        us(pure.explain.pct(99.0))
    );
    for run in &runs {
        println!(
            "| {}: `assignment::loads` (GROUP BY over the open assignments) | {} | {} | {} |",
            run.name,
            run.loads.0.len(),
            ms(run.loads.pct(50.0)),
            ms(run.loads.pct(99.0))
        );
        println!(
            "| {}: the same with an index on (state, radiologist_id, priority), not in the schema | {} | {} | {} |",
            run.name,
            run.covered.0.len(),
            ms(run.covered.pct(50.0)),
            ms(run.covered.pct(99.0))
        );
        println!(
            "| {}: `process_next_event` with no event (begin, cursor lock, read, rollback) | {} | {} | {} |",
            run.name,
            run.idle.0.len(),
            ms(run.idle.pct(50.0)),
            ms(run.idle.pct(99.0))
        );
    }
    Ok(())
}
