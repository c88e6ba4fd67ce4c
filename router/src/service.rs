//! The router at work: consumes study events in order, assigns each complete
//! study, escalates what is not acknowledged in time, and answers the manual
//! operations (acknowledge, assign) of the HTTP API.
//!
//! Each event is handled in one transaction that also advances the cursor,
//! under the cursor row's lock: with several processes on one PostgreSQL
//! database, each event is handled exactly once.

use crate::assignment::{
    self, AssignmentRow, AssignmentState, Explanation, HistoryAction, HistoryEntry, NewAssignment,
    Tx,
};
use crate::candidates::{Context, Decision, Reader, choose, next_in_chain};
use crate::rota::Rota;
use crate::rules::{Classification, Priority, Rules, StudyFacts};
use crate::sla::{human_duration, sla_for};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use telerad_config::{Config, SlaConfig};
use telerad_lang::{Said, said};
use telerad_store::audit::{self, AuditRecord};
use telerad_store::events::{Consumer, Event, EventError, EventKind, Failure, RetryPolicy};
use telerad_store::forms::{self, Urgency};
use telerad_store::index::TIMER_LEASE_MS;
use telerad_store::outbox::{Destination, Outbox};
use telerad_store::study_rows;
use telerad_store::timers::{self, Timer, TimerKind};
use telerad_store::{Archive, AssignmentId, EventId, Scope, StudyId};
use tokio::sync::watch;

mod claims;
mod consults;
mod critical;
mod form_changes;

/// How often the router looks for overdue acknowledgements, and for events
/// recorded by other processes (its own process wakes it at once).
pub const TICK: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("invalid routing configuration: {0}")]
    Config(String),
    #[error("{0}")]
    NotFound(Said),
    #[error("{0}")]
    Conflict(Said),
    #[error("{0}")]
    BadRequest(Said),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("study event log: {0}")]
    Events(#[from] EventError),
    #[error("{0}")]
    Load(#[from] crate::assignment::LoadError),
    /// A stored value that telerad cannot have written: never read as a
    /// default (a corrupt STAT must not become routine).
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

/// Two forms raced for one study: the second is refused.
pub(crate) fn study_has_form() -> Said {
    said!(
        "the study was given another request form meanwhile: file it again",
        "l'examen a reçu une autre demande entre-temps : déposez celle-ci à nouveau"
    )
}

impl RouterError {
    /// The database could not be reached: retrying the same work later may
    /// succeed, so it is not held against the event being handled.
    pub fn is_transient(&self) -> bool {
        let transient = |e: &sqlx::Error| {
            matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            )
        };
        match self {
            RouterError::Database(e)
            | RouterError::Events(EventError::Database(e))
            | RouterError::Load(crate::assignment::LoadError::Database(e)) => transient(e),
            _ => false,
        }
    }
}

/// Who acts on a study through the API: the studies they may see (one
/// outside them is not found), and the audit record committed with the
/// change.
#[derive(Debug, Clone, Copy)]
pub struct Acting<'a> {
    pub scope: &'a Scope,
    pub audit: &'a AuditRecord,
}

/// What [`Router::file_form`] did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FiledForm {
    pub id: i64,
    /// The study it was matched to; none while it waits for its images.
    pub study_instance_uid: Option<String>,
    /// The study's priority, if the form raised it.
    pub reprioritised: Option<Reprioritised>,
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Reprioritised {
    #[schema(value_type = crate::rules::PrioritySchema)]
    pub from: Priority,
    #[schema(value_type = crate::rules::PrioritySchema)]
    pub to: Priority,
}

#[derive(Debug)]
pub struct Router {
    rota: Rota,
    rules: Rules,
    readers: HashMap<String, Reader>,
    workstations: HashMap<String, Destination>,
    chain: Vec<String>,
    sla: SlaConfig,
    critical: telerad_config::CriticalResultsConfig,
    /// Each site's time zone: a form's study date is the site's day.
    time_zones: HashMap<String, jiff::tz::TimeZone>,
    /// The zone the rota's times are written in (UTC without one).
    rota_zone: jiff::tz::TimeZone,
    archive: Arc<Archive>,
    outbox: Arc<Outbox>,
    events: Consumer,
}

/// The router's cursor in the study event log.
pub const EVENT_CONSUMER: &str = "router";

/// The study a forward is for, and to whom.
#[derive(Debug)]
struct Forward {
    study_instance_uid: String,
    radiologist_id: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RadiologistRef {
    pub id: String,
    pub name: String,
}

/// An assignment as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AssignmentView {
    pub state: AssignmentState,
    pub radiologist: Option<RadiologistRef>,
    #[schema(value_type = crate::rules::PrioritySchema)]
    pub priority: Priority,
    pub subspecialty: String,
    pub rule: String,
    /// When the current radiologist was given the study; `null` while
    /// nobody has it.
    #[serde(serialize_with = "telerad_store::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub assigned_at: Option<i64>,
    /// The acknowledgement deadline (escalation fires then).
    #[serde(serialize_with = "telerad_store::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acknowledge_by: Option<i64>,
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub preliminary_by: i64,
    #[serde(serialize_with = "telerad_store::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acknowledged_at: Option<i64>,
    pub escalation_level: i64,
    pub new_images: bool,
    pub explanation: Explanation,
    pub history: Vec<HistoryEntry>,
}

/// "1 new image", "3 new images", "1 image re-sent", "2 images re-sent".
fn images(n: i64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {}", what.replacen("image", "images", 1))
    }
}

/// The priority a form's urgency asks for: a stroke or a trauma patient
/// is read now.
pub fn priority_of(urgency: Urgency) -> Priority {
    match urgency {
        Urgency::Stroke | Urgency::Trauma | Urgency::Stat => Priority::Stat,
        Urgency::Urgent => Priority::Urgent,
        Urgency::Routine => Priority::Routine,
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

impl Router {
    pub fn new(
        config: &Config,
        archive: Arc<Archive>,
        outbox: Arc<Outbox>,
    ) -> Result<Router, RouterError> {
        let rota = Rota::from_config(config).map_err(|e| RouterError::Config(e.to_string()))?;
        let rules = Rules::from_config(config).map_err(|e| RouterError::Config(e.to_string()))?;
        let readers = config
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
            .collect();
        let workstations = config
            .radiologists
            .iter()
            .filter_map(|r| {
                r.workstation.as_ref().map(|w| {
                    (
                        r.id.clone(),
                        Destination {
                            name: r.id.clone(),
                            ae_title: w.ae_title.clone(),
                            host: w.host.clone(),
                            port: w.port,
                        },
                    )
                })
            })
            .collect();
        Ok(Router {
            rota,
            rules,
            readers,
            workstations,
            chain: config.escalation.chain.clone(),
            sla: config.sla.clone(),
            critical: config.critical_results,
            time_zones: config
                .sites
                .iter()
                .map(|s| (s.name.clone(), s.time_zone.clone()))
                .collect(),
            rota_zone: config
                .rota
                .zone()
                .map_err(RouterError::Config)?
                .unwrap_or(jiff::tz::TimeZone::UTC),
            archive,
            outbox,
            events: Consumer::new(EVENT_CONSUMER, RetryPolicy::default()),
        })
    }

    /// The rota, and the zone its times are written in: who is on duty
    /// when, for the administrators' calendar.
    pub fn rota(&self) -> (&Rota, &jiff::tz::TimeZone) {
        (&self.rota, &self.rota_zone)
    }

    /// The name of a radiologist of the configuration, or their id.
    pub fn name_of<'a>(&'a self, radiologist_id: &'a str) -> &'a str {
        self.reader_name(radiologist_id).unwrap_or(radiologist_id)
    }

    /// The same router with another retry policy for failed events.
    pub fn with_event_retry(mut self, retry: RetryPolicy) -> Router {
        self.events = Consumer::new(EVENT_CONSUMER, retry);
        self
    }

    fn now(&self) -> i64 {
        self.archive.clock().now_ms()
    }

    fn db(&self) -> &telerad_store::Database {
        self.archive.index().database()
    }

    fn duties_at(&self, now_ms: i64) -> Vec<crate::rota::Duty> {
        match jiff::Timestamp::from_millisecond(now_ms) {
            Ok(at) => self.rota.on_duty(at),
            Err(_) => Vec::new(),
        }
    }

    /// Handles the next study event, or else a failed one whose retry is
    /// due; `Ok(false)` when there is neither.
    ///
    /// The event's effects (assignment, history, alerts) and the cursor's
    /// move commit together. An event whose handling fails is set aside for
    /// a retry and the cursor moves past it, so it never holds up the
    /// others; a database that cannot be reached is an error and nothing
    /// moves.
    pub async fn process_next_event(&self) -> Result<bool, RouterError> {
        let mut tx = self.db().begin().await?;
        let cursor = self.events.lock_cursor(&mut tx).await?;
        let Some((event_id, event)) = self.events.next_after(&mut tx, cursor).await? else {
            tx.rollback().await?;
            return self.retry_due_event().await;
        };
        match self.handle(&mut tx, event).await {
            Ok(forward) => {
                self.events.advance(&mut tx, event_id).await?;
                tx.commit().await?;
                if let Some(forward) = forward {
                    self.forward(&forward).await;
                }
                Ok(true)
            }
            Err(e) if e.is_transient() => Err(e),
            Err(e) => {
                tx.rollback().await?;
                self.set_aside(event_id, Some(cursor), &e).await?;
                Ok(true)
            }
        }
    }

    /// Tries again the oldest failed event that is due.
    async fn retry_due_event(&self) -> Result<bool, RouterError> {
        let mut tx = self.db().begin().await?;
        // Taken for its lock: processes take turns on retries as on events.
        self.events.lock_cursor(&mut tx).await?;
        let Some((event_id, event)) = self.events.due_retry(&mut tx, self.now()).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        match self.handle(&mut tx, event).await {
            Ok(forward) => {
                self.events.clear_failure(&mut tx, event_id).await?;
                tx.commit().await?;
                tracing::info!(event_id = event_id.0, "study event handled on retry");
                if let Some(forward) = forward {
                    self.forward(&forward).await;
                }
                Ok(true)
            }
            Err(e) if e.is_transient() => Err(e),
            Err(e) => {
                tx.rollback().await?;
                self.set_aside(event_id, None, &e).await?;
                Ok(true)
            }
        }
    }

    async fn set_aside(
        &self,
        event_id: EventId,
        at_cursor: Option<EventId>,
        error: &RouterError,
    ) -> Result<(), RouterError> {
        let outcome = self
            .events
            .record_failure(
                self.db(),
                event_id,
                at_cursor,
                &error.to_string(),
                self.now(),
            )
            .await?;
        match outcome {
            Failure::Retrying {
                attempts,
                next_attempt_at,
            } => tracing::error!(
                event_id = event_id.0,
                attempts,
                next_attempt_at,
                "routing a study event failed, will retry: {error}"
            ),
            Failure::Dead { attempts } => tracing::error!(
                event_id = event_id.0,
                attempts,
                "routing a study event failed for the last time; kept as a dead letter: {error}"
            ),
            Failure::Superseded => {}
        }
        Ok(())
    }

    async fn handle(
        &self,
        tx: &mut Tx<'_>,
        event: Result<Event, EventError>,
    ) -> Result<Option<Forward>, RouterError> {
        let event = event?;
        match event.kind {
            EventKind::Complete => {
                self.on_complete(tx, event.study_id, event.instance_count)
                    .await
            }
            // Reopened studies are handled when they complete again; the
            // workflow events are the notifiers' business.
            EventKind::Receiving
            | EventKind::Assigned
            | EventKind::Escalated
            | EventKind::Preliminary
            | EventKind::Final
            | EventKind::Addendum
            | EventKind::CriticalResult
            | EventKind::CriticalEscalated
            | EventKind::CriticalAcknowledged
            | EventKind::Message
            | EventKind::Form
            | EventKind::ConsultRequested
            | EventKind::ConsultAnswered => Ok(None),
        }
    }

    /// What the rules see of a study: its images, and its request form.
    async fn study_facts(
        &self,
        tx: &mut Tx<'_>,
        study_id: StudyId,
    ) -> Result<(String, StudyFacts), RouterError> {
        let facts = study_rows::routing_facts(tx, study_id).await?;
        let form = forms::of_study(tx, study_id).await?;
        Ok((
            facts.study_instance_uid,
            StudyFacts {
                site: facts.site,
                modalities: facts.modalities,
                body_parts: facts.body_parts,
                study_description: facts.study_description,
                series_descriptions: facts.series_descriptions,
                urgency: form.as_ref().map(|f| priority_of(f.urgency)),
                stroke: form.as_ref().is_some_and(|f| f.urgency == Urgency::Stroke),
                requested_examination: form.map(|f| f.requested_examination).unwrap_or_default(),
            },
        ))
    }

    /// A request form matched to a study after its assignment: if the rules
    /// now give a more urgent priority, the assignment takes it with the
    /// earlier of its deadlines and the new ones, in `tx`, recorded in the
    /// study's history. Whom it is assigned to does not change. Returns the
    /// priorities before and after, if it changed.
    pub async fn apply_form(
        &self,
        tx: &mut Tx<'_>,
        study_id: StudyId,
    ) -> Result<Option<(Priority, Priority)>, RouterError> {
        // Not complete yet: the rules read the form at completion.
        let Some(seen) = assignment::by_study(tx, study_id).await? else {
            return Ok(None);
        };
        let now = self.now();
        // The row is locked (on PostgreSQL) before the deadlines are derived
        // from it: a hand-on or an acknowledgement committed meanwhile is
        // then read, not overwritten.
        if !assignment::claim(tx, seen.id, seen.state, seen.escalation_level, now).await? {
            return Err(RouterError::Conflict(said!(
                "the study's assignment changed while the form was filed: file it again",
                "l'attribution de l'examen a changé pendant le dépôt de la demande : déposez-la à nouveau"
            )));
        }
        let row = assignment::by_id(tx, seen.id)
            .await?
            .ok_or_else(|| RouterError::Corrupt(format!("assignment {} vanished", seen.id)))?;
        let (_, facts) = self.study_facts(tx, study_id).await?;
        let classification = self.rules.classify(&facts);
        if classification.priority >= row.priority {
            return Ok(None);
        }
        let (ack, preliminary) = sla_for(&self.sla, classification.priority);
        let preliminary_by = row.preliminary_by.min(now + ms(preliminary));
        let waiting = row.state != AssignmentState::Acknowledged;
        let acknowledge_by = if waiting {
            Some(
                row.acknowledge_by
                    .map_or(now + ms(ack), |at| at.min(now + ms(ack))),
            )
        } else {
            row.acknowledge_by
        };
        sqlx::query(
            "UPDATE assignments SET priority = $2, acknowledge_by = $3, preliminary_by = $4, \
             updated_at = $5 WHERE id = $1",
        )
        .bind(row.id)
        .bind(classification.priority.as_str())
        .bind(acknowledge_by)
        .bind(preliminary_by)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        if let (true, Some(due)) = (waiting, acknowledge_by) {
            timers::schedule(tx, TimerKind::Acknowledgement, row.id.0, due).await?;
        }
        let (from, to, rule) = (
            row.priority.as_str(),
            classification.priority.as_str(),
            &classification.rule,
        );
        let detail = if facts.stroke {
            said!(
                "request form (stroke): priority {from} → {to} by rule {rule}",
                "demande d'examen (AVC) : priorité {from} → {to} par la règle {rule}"
            )
        } else {
            said!(
                "request form (urgency): priority {from} → {to} by rule {rule}",
                "demande d'examen (urgence) : priorité {from} → {to} par la règle {rule}"
            )
        };
        assignment::record(
            tx,
            study_id,
            now,
            HistoryAction::Reprioritised,
            row.radiologist_id.as_deref(),
            &detail,
        )
        .await?;
        tracing::info!(study_id = %study_id, "{detail}");
        // Images already queued for the workstation move up the queue
        // too; the caller tells the forwarder once this is committed.
        let uid = study_rows::uid_of(tx, study_id).await?;
        telerad_store::outbox::rerank_study(tx, &uid).await?;
        Ok(Some((row.priority, classification.priority)))
    }

    async fn on_complete(
        &self,
        tx: &mut Tx<'_>,
        study_id: StudyId,
        instance_count: i64,
    ) -> Result<Option<Forward>, RouterError> {
        let now = self.now();
        if let Some(row) = assignment::by_study(tx, study_id).await? {
            // Late images never reassign: the reader is told there is more,
            // new instances and corrected re-sends (new versions) alike.
            let (last_instance_id, versions_since) =
                study_rows::instances_after(tx, study_id, row.last_instance_id).await?;
            if versions_since == 0 {
                return Ok(None);
            }
            sqlx::query(
                "UPDATE assignments SET new_images = TRUE, assigned_instance_count = $2, \
                 last_instance_id = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(row.id)
            .bind(instance_count.max(row.assigned_instance_count))
            .bind(last_instance_id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            let added = (instance_count - row.assigned_instance_count).max(0);
            let corrected = versions_since - added;
            let (new, nouvelles) = (images(added, "new image"), images(added, "nouvelle image"));
            let detail = match (added, corrected) {
                (_, 0) => said!(
                    "{new} after assignment ({instance_count} in all)",
                    "{nouvelles} après l'attribution ({instance_count} en tout)"
                ),
                (0, _) => {
                    let (resent, renvoyees) = (
                        images(corrected, "image re-sent"),
                        images(corrected, "image renvoyée"),
                    );
                    said!(
                        "{resent} with corrected content after assignment",
                        "{renvoyees} au contenu corrigé après l'attribution"
                    )
                }
                _ => said!(
                    "{new} and {corrected} re-sent with corrected content after assignment \
                     ({instance_count} in all)",
                    "{nouvelles} et {corrected} renvoyées au contenu corrigé après l'attribution \
                     ({instance_count} en tout)"
                ),
            };
            assignment::record(
                tx,
                study_id,
                now,
                HistoryAction::NewImages,
                row.radiologist_id.as_deref(),
                &detail,
            )
            .await?;
            let uid = study_rows::uid_of(tx, study_id).await?;
            return Ok(row.radiologist_id.map(|radiologist_id| Forward {
                study_instance_uid: uid,
                radiologist_id,
            }));
        }

        // A form that waited for these images is theirs now.
        forms::attach_waiting(tx, study_id).await?;
        let (uid, facts) = self.study_facts(tx, study_id).await?;
        let classification = self.rules.classify(&facts);
        let duties = self.duties_at(now);
        let loads = assignment::loads(tx).await?;
        let exclude = HashSet::new();
        let decision = choose(
            &classification,
            &duties,
            &Context {
                readers: &self.readers,
                site: &facts.site,
                loads: &loads,
                exclude: &exclude,
            },
        );
        let (ack, preliminary) = sla_for(&self.sla, classification.priority);
        let explanation = serde_json::to_string(&decision).unwrap_or_default();
        let inserted = assignment::insert(
            tx,
            &NewAssignment {
                study_id,
                radiologist_id: decision.chosen.as_deref(),
                subspecialty: &classification.subspecialty,
                priority: classification.priority,
                rule: &classification.rule,
                now,
                // Unassigned too: past it, the escalation chain is called.
                acknowledge_by: Some(now + ms(ack)),
                preliminary_by: now + ms(preliminary),
                instance_count,
                explanation: &explanation,
            },
        )
        .await?;
        if !inserted {
            return Ok(None);
        }
        match &decision.chosen {
            Some(radiologist) => {
                tracing::info!(study_instance_uid = %uid, radiologist = %radiologist, priority = classification.priority.as_str(), "study assigned: {}", decision.why);
                assignment::record(
                    tx,
                    study_id,
                    now,
                    HistoryAction::Assigned,
                    Some(radiologist),
                    &decision.said(),
                )
                .await?;
            }
            None => {
                tracing::warn!(study_instance_uid = %uid, "study unassigned: {}", decision.why);
                assignment::record(
                    tx,
                    study_id,
                    now,
                    HistoryAction::Unassigned,
                    None,
                    &decision.said(),
                )
                .await?;
                assignment::raise_alert(tx, study_id, now, "unassigned", &decision.why).await?;
            }
        }
        Ok(decision.chosen.map(|radiologist_id| Forward {
            study_instance_uid: uid,
            radiologist_id,
        }))
    }

    /// Escalates every overdue assignment and retries the unassigned ones.
    pub async fn escalate_due(&self) -> Result<usize, RouterError> {
        let now = self.now();
        let mut changed = 0;
        let index = self.archive.index();
        let due = timers::claim_due(
            self.db(),
            TimerKind::Acknowledgement,
            index.node_id(),
            now,
            TIMER_LEASE_MS,
            100,
        )
        .await?;
        for timer in due {
            if self.on_deadline(&timer).await? {
                changed += 1;
            }
        }
        // All of them, a page at a time: a fixed first page would leave
        // the rest waiting for ever.
        let duties = self.duties_at(now);
        let mut after = AssignmentId(0);
        loop {
            let mut tx = self.db().begin().await?;
            let page = assignment::unassigned(&mut tx, after, 100).await?;
            tx.rollback().await?;
            let Some(last) = page.last().map(|u| u.id) else {
                break;
            };
            for waiting in &page {
                if self.anybody_for(waiting, &duties, now)
                    && self
                        .hand_on(waiting.id, AssignmentState::Unassigned, waiting.level)
                        .await?
                {
                    changed += 1;
                }
            }
            if page.len() < 100 {
                break;
            }
            after = last;
        }
        Ok(changed)
    }

    /// Whether anybody could be given an unassigned study now: someone on
    /// duty licensed for its site or, past its deadline, the escalation
    /// chain. Read-only: a study nobody can take costs no write at each
    /// pass; [`Router::hand_on`] decides for the others.
    fn anybody_for(
        &self,
        waiting: &assignment::Unassigned,
        duties: &[crate::rota::Duty],
        now: i64,
    ) -> bool {
        let licensed = |id: &String| {
            self.readers
                .get(id)
                .is_some_and(|r| r.sites.contains(&waiting.site))
        };
        duties.iter().any(|d| licensed(&d.radiologist_id))
            || (waiting.acknowledge_by.is_some_and(|due| due <= now)
                && self.chain.iter().any(licensed))
    }

    /// An acknowledgement deadline has passed: the study moves on, or, when
    /// nobody can take it, its alert stays and the timer is done (a reader
    /// coming on duty is found by the pass over unassigned studies).
    async fn on_deadline(&self, timer: &Timer) -> Result<bool, RouterError> {
        let mut tx = self.db().begin().await?;
        let row = assignment::by_id(&mut tx, AssignmentId(timer.subject_id)).await?;
        tx.rollback().await?;
        let moved = match &row {
            Some(row) if row.state != AssignmentState::Acknowledged => {
                self.hand_on(
                    AssignmentId(timer.subject_id),
                    row.state,
                    row.escalation_level,
                )
                .await?
            }
            _ => false,
        };
        if !moved {
            let mut tx = self.db().begin().await?;
            timers::done(&mut tx, timer, self.archive.index().node_id()).await?;
            tx.commit().await?;
        }
        Ok(moved)
    }

    /// Moves one assignment on: from an unresponsive reader to the next
    /// candidate, or from the unassigned queue to someone now on duty.
    async fn hand_on(
        &self,
        id: AssignmentId,
        state: AssignmentState,
        level: i64,
    ) -> Result<bool, RouterError> {
        let now = self.now();
        let mut tx = self.archive.index().database().begin_write().await?;
        if !assignment::claim(&mut tx, id, state, level, now).await? {
            // Another process got there first.
            tx.rollback().await?;
            return Ok(false);
        }
        let Some(row) = assignment::by_id(&mut tx, id).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        if state == AssignmentState::Assigned && row.acknowledge_by.is_none_or(|due| due > now) {
            tx.rollback().await?;
            return Ok(false);
        }
        let (uid, facts) = self.study_facts(&mut tx, row.study_id).await?;
        let mut tried = assignment::tried(&mut tx, id).await?;
        if let Some(current) = &row.radiologist_id {
            tried.insert(current.clone());
        }
        let priority = row.priority;
        let classification = Classification {
            subspecialty: row.subspecialty.clone(),
            priority,
            rule: row.rule.clone(),
        };
        let duties = self.duties_at(now);
        let loads = assignment::loads(&mut tx).await?;
        let ctx = Context {
            readers: &self.readers,
            site: &facts.site,
            loads: &loads,
            exclude: &tried,
        };
        let mut decision = choose(&classification, &duties, &ctx);
        // An unresponsive reader, or a study nobody on duty could take whose
        // acknowledgement deadline has passed: the chain is called.
        let chain_due =
            state == AssignmentState::Assigned || row.acknowledge_by.is_some_and(|due| due <= now);
        let chain_called = decision.chosen.is_none() && chain_due;
        if let Some(next) = next_in_chain(&self.chain, &ctx).filter(|_| chain_called) {
            decision.chosen = Some(next.to_string());
            decision.pool = "escalation chain".to_string();
            decision.pool_fr = "chaîne d'escalade".to_string();
            decision.why = format!("nobody left on duty; {next} is next in the escalation chain");
            decision.why_fr =
                format!("plus personne de garde ; {next} est le suivant de la chaîne d'escalade");
        }
        if state == AssignmentState::Unassigned && decision.chosen.is_none() {
            // Still nobody: leave the row (and its alert) as it is.
            tx.rollback().await?;
            return Ok(false);
        }
        let (ack, _) = sla_for(&self.sla, priority);
        let explanation = serde_json::to_string(&decision).unwrap_or_default();
        assignment::hand_over(
            &mut tx,
            id,
            decision.chosen.as_deref(),
            decision.chosen.as_ref().map(|_| now + ms(ack)),
            &explanation,
            now,
        )
        .await?;
        let within = human_duration(ack);
        let (pool, pool_fr) = (&decision.pool, &decision.pool_fr);
        let (why, why_fr) = (&decision.why, &decision.why_fr);
        let detail = match (state, &row.radiologist_id, &decision.chosen) {
            (AssignmentState::Assigned, Some(previous), Some(next)) => said!(
                "{previous} did not acknowledge within {within}; given to {next} ({pool})",
                "{previous} n'a pas pris l'examen dans les {within} ; donné à {next} ({pool_fr})"
            ),
            (AssignmentState::Assigned, Some(previous), None) => said!(
                "{previous} did not acknowledge within {within} and nobody is left to call: alert raised",
                "{previous} n'a pas pris l'examen dans les {within} et il ne reste personne à appeler : alerte levée"
            ),
            (AssignmentState::Unassigned, _, Some(next)) if chain_called => said!(
                "nobody on duty could take it before its acknowledgement deadline; \
                 {next} is next in the escalation chain",
                "personne de garde n'a pu le prendre avant son échéance ; \
                 {next} est le suivant de la chaîne d'escalade"
            ),
            (_, _, Some(next)) => said!(
                "{next} is now on duty ({pool}): {why}",
                "{next} est maintenant de garde ({pool_fr}) : {why_fr}"
            ),
            _ => decision.said(),
        };
        let action = match (state, &decision.chosen) {
            (AssignmentState::Unassigned, _) if chain_called => HistoryAction::Escalated,
            (AssignmentState::Unassigned, _) => HistoryAction::Assigned,
            (_, Some(_)) => HistoryAction::Escalated,
            (_, None) => HistoryAction::Unassigned,
        };
        assignment::record(
            &mut tx,
            row.study_id,
            now,
            action,
            decision.chosen.as_deref(),
            &detail,
        )
        .await?;
        if decision.chosen.is_none() {
            assignment::raise_alert(&mut tx, row.study_id, now, "unassigned", detail.en()).await?;
        } else if state == AssignmentState::Unassigned {
            assignment::resolve_alerts(&mut tx, row.study_id, now).await?;
        }
        tx.commit().await?;
        tracing::warn!(study_instance_uid = %uid, "{detail}");
        if let Some(radiologist_id) = decision.chosen {
            self.forward(&Forward {
                study_instance_uid: uid,
                radiologist_id,
            })
            .await;
        }
        Ok(true)
    }

    async fn study_row(
        &self,
        tx: &mut Tx<'_>,
        study_uid: &str,
    ) -> Result<(StudyId, String, i64), RouterError> {
        // The router acts for itself: every site.
        self.study_row_in(tx, study_uid, &Scope::All).await
    }

    /// A study a person may act on: one outside their scope is not found.
    async fn study_row_in(
        &self,
        tx: &mut Tx<'_>,
        study_uid: &str,
        scope: &Scope,
    ) -> Result<(StudyId, String, i64), RouterError> {
        study_rows::by_uid(tx, study_uid, scope)
            .await?
            .map(|s| (s.id, s.site, s.instance_count))
            .ok_or_else(|| {
                RouterError::NotFound(said!("no study {study_uid}", "aucun examen {study_uid}"))
            })
    }

    /// The newest unresolved alerts (for the coordinators).
    pub async fn open_alerts(&self, limit: i64) -> Result<Vec<assignment::OpenAlert>, RouterError> {
        let mut tx = self.db().begin().await?;
        let alerts = assignment::open_alerts(&mut tx, limit).await?;
        tx.rollback().await?;
        Ok(alerts)
    }

    /// How long the site has to acknowledge a critical result of an ACR
    /// category (1 to 3).
    pub fn critical_delay(&self, category: u8) -> Option<Duration> {
        self.critical.delay(category)
    }

    /// A configured radiologist's name.
    pub fn reader_name(&self, radiologist_id: &str) -> Option<&str> {
        self.readers.get(radiologist_id).map(|r| r.name.as_str())
    }

    /// The radiologists licensed for `site` (id, name), by name: whom a
    /// study of that site may be given to.
    pub fn readers_licensed_for(&self, site: &str) -> Vec<(&str, &str)> {
        let mut readers: Vec<(&str, &str)> = self
            .readers
            .iter()
            .filter(|(_, r)| r.sites.iter().any(|s| s == site))
            .map(|(id, r)| (id.as_str(), r.name.as_str()))
            .collect();
        readers.sort_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)));
        readers
    }

    /// The time zone of a configured site.
    pub fn site_time_zone(&self, site: &str) -> Option<&jiff::tz::TimeZone> {
        self.time_zones.get(site)
    }

    /// The request form of a study within `scope`, with the study's site.
    pub async fn form(
        &self,
        study_uid: &str,
        scope: &Scope,
    ) -> Result<Option<forms::StoredForm>, RouterError> {
        let mut tx = self.db().begin().await?;
        let (study_id, _, _) = self.study_row_in(&mut tx, study_uid, scope).await?;
        let form = forms::of_study(&mut tx, study_id).await?;
        tx.rollback().await?;
        Ok(form)
    }

    /// Files a request form: stored, matched to its study if the images
    /// are there, and applied to the study's assignment if it has one
    /// ([`Router::apply_form`]), with the audit record, in one transaction.
    /// The caller checked that the form's site is in its scope.
    pub async fn file_form(
        &self,
        form: &forms::NewForm<'_>,
        acting: &Acting<'_>,
    ) -> Result<FiledForm, RouterError> {
        let mut tx = self.archive.index().database().begin_write().await?;
        let (id, study_id) = forms::insert(&mut tx, form).await.map_err(|e| match e {
            forms::FormError::StudyHasForm => RouterError::Conflict(study_has_form()),
            forms::FormError::Database(e) => RouterError::Database(e),
        })?;
        let (study_instance_uid, reprioritised) = match study_id {
            Some(study_id) => {
                let uid = study_rows::uid_of(&mut tx, study_id).await?;
                let reprioritised = self.apply_form(&mut tx, study_id).await?;
                forms::form_added(&mut tx, study_id, id, form.filed_at).await?;
                (Some(uid), reprioritised)
            }
            None => (None, None),
        };
        let mut record = acting.audit.clone();
        record.object = format!("form/{id}");
        if let Some(uid) = &study_instance_uid {
            record.study_uid = Some(uid.clone());
        }
        audit::append(&mut tx, &record).await?;
        tx.commit().await?;
        if reprioritised.is_some() {
            self.outbox.reranked();
        }
        Ok(FiledForm {
            id,
            study_instance_uid,
            reprioritised: reprioritised.map(|(from, to)| Reprioritised { from, to }),
        })
    }

    /// The assigned radiologist takes the study: escalation stops.
    pub async fn acknowledge(
        &self,
        study_uid: &str,
        radiologist_id: &str,
        acting: &Acting<'_>,
    ) -> Result<AssignmentView, RouterError> {
        let now = self.now();
        let mut tx = self.archive.index().database().begin_write().await?;
        let (study_id, _, _) = self.study_row_in(&mut tx, study_uid, acting.scope).await?;
        let row = assignment::by_study(&mut tx, study_id)
            .await?
            .ok_or_else(|| {
                RouterError::Conflict(said!(
                    "study {study_uid} is not assigned yet",
                    "l'examen {study_uid} n'est pas encore attribué"
                ))
            })?;
        match (row.state, row.radiologist_id.as_deref()) {
            (AssignmentState::Assigned, Some(r)) if r == radiologist_id => {}
            (AssignmentState::Acknowledged, Some(r)) => {
                return Err(RouterError::Conflict(said!(
                    "already acknowledged by {r}",
                    "déjà pris par {r}"
                )));
            }
            (AssignmentState::Unassigned, _) => {
                return Err(RouterError::Conflict(said!(
                    "the study is unassigned",
                    "l'examen n'est attribué à personne"
                )));
            }
            (_, r) => {
                return Err({
                    let (to, à) = (r.unwrap_or("nobody"), r.unwrap_or("personne"));
                    RouterError::Conflict(said!(
                        "the study is assigned to {to}, not to {radiologist_id}",
                        "l'examen est attribué à {à}, pas à {radiologist_id}"
                    ))
                });
            }
        }
        let done = sqlx::query(
            "UPDATE assignments SET state = 'acknowledged', acknowledged_at = $2, acknowledge_by = NULL, \
             updated_at = $2 WHERE id = $1 AND state = 'assigned' AND radiologist_id = $3",
        )
        .bind(row.id)
        .bind(now)
        .bind(radiologist_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done != 1 {
            return Err(RouterError::Conflict(said!(
                "the assignment changed meanwhile; reload it",
                "l'attribution a changé entre-temps : rechargez-la"
            )));
        }
        timers::cancel(&mut tx, TimerKind::Acknowledgement, row.id.0).await?;
        assignment::record(
            &mut tx,
            study_id,
            now,
            HistoryAction::Acknowledged,
            Some(radiologist_id),
            &said!("acknowledged", "pris"),
        )
        .await?;
        audit::append(&mut tx, acting.audit).await?;
        tx.commit().await?;
        self.assignment(study_uid).await?.ok_or_else(|| {
            RouterError::NotFound(said!(
                "no assignment for {study_uid}",
                "aucune attribution pour {study_uid}"
            ))
        })
    }

    /// A human gives the study to a radiologist, on duty or not; the licence
    /// for the study's site still applies.
    pub async fn assign_manually(
        &self,
        study_uid: &str,
        radiologist_id: &str,
        acting: &Acting<'_>,
    ) -> Result<AssignmentView, RouterError> {
        let reader = self.readers.get(radiologist_id).ok_or_else(|| {
            RouterError::BadRequest(said!(
                "unknown radiologist {radiologist_id:?}",
                "radiologue inconnu : {radiologist_id:?}"
            ))
        })?;
        let now = self.now();
        let mut tx = self.archive.index().database().begin_write().await?;
        let (study_id, site, instance_count) =
            self.study_row_in(&mut tx, study_uid, acting.scope).await?;
        if !reader.sites.contains(&site) {
            return Err(RouterError::Conflict(said!(
                "{radiologist_id} is not licensed for site {site}",
                "{radiologist_id} n'a pas d'habilitation pour le site {site}"
            )));
        }
        let existing = assignment::by_study(&mut tx, study_id).await?;
        if existing
            .as_ref()
            .is_some_and(|row| row.reported_at.is_some())
        {
            return Err(RouterError::Conflict(said!(
                "the final report is signed: the study is done (a correction is an addendum by its reader)",
                "le compte rendu définitif est signé : l'examen est terminé (une correction est un addendum de son radiologue)"
            )));
        }
        let (classification, previous) = match &existing {
            Some(row) => (
                Classification {
                    subspecialty: row.subspecialty.clone(),
                    priority: row.priority,
                    rule: row.rule.clone(),
                },
                row.radiologist_id.clone(),
            ),
            None => {
                let (_, facts) = self.study_facts(&mut tx, study_id).await?;
                (self.rules.classify(&facts), None)
            }
        };
        let (ack, preliminary) = sla_for(&self.sla, classification.priority);
        let was = previous
            .as_deref()
            .map(|p| format!(" (was {p})"))
            .unwrap_or_default();
        let avant = previous
            .as_deref()
            .map(|p| format!(" (auparavant {p})"))
            .unwrap_or_default();
        let why = said!(
            "manual assignment to {radiologist_id}{was}",
            "attribution manuelle à {radiologist_id}{avant}"
        );
        let explanation = serde_json::to_string(&Decision {
            rule: classification.rule.clone(),
            subspecialty: classification.subspecialty.clone(),
            priority: classification.priority.as_str().to_string(),
            chosen: Some(radiologist_id.to_string()),
            pool: "manual".into(),
            why: why.en().to_owned(),
            considered: Vec::new(),
            pool_fr: "manuelle".into(),
            why_fr: why.fr().unwrap_or_default().to_owned(),
        })
        .unwrap_or_default();
        match existing {
            Some(row) => {
                // A person's choice, not an escalation: the level stays.
                assignment::reassign(
                    &mut tx,
                    row.id,
                    radiologist_id,
                    now + ms(ack),
                    &explanation,
                    now,
                )
                .await?;
                assignment::record(
                    &mut tx,
                    study_id,
                    now,
                    HistoryAction::Reassigned,
                    Some(radiologist_id),
                    &why,
                )
                .await?;
                assignment::resolve_alerts(&mut tx, study_id, now).await?;
            }
            None => {
                assignment::insert(
                    &mut tx,
                    &NewAssignment {
                        study_id,
                        radiologist_id: Some(radiologist_id),
                        subspecialty: &classification.subspecialty,
                        priority: classification.priority,
                        rule: &classification.rule,
                        now,
                        acknowledge_by: Some(now + ms(ack)),
                        preliminary_by: now + ms(preliminary),
                        instance_count,
                        explanation: &explanation,
                    },
                )
                .await?;
                assignment::record(
                    &mut tx,
                    study_id,
                    now,
                    HistoryAction::Assigned,
                    Some(radiologist_id),
                    &why,
                )
                .await?;
            }
        }
        audit::append(&mut tx, acting.audit).await?;
        tx.commit().await?;
        self.forward(&Forward {
            study_instance_uid: study_uid.to_string(),
            radiologist_id: radiologist_id.to_string(),
        })
        .await;
        self.assignment(study_uid).await?.ok_or_else(|| {
            RouterError::NotFound(said!(
                "no assignment for {study_uid}",
                "aucune attribution pour {study_uid}"
            ))
        })
    }

    pub async fn assignment(&self, study_uid: &str) -> Result<Option<AssignmentView>, RouterError> {
        let mut tx = self.db().begin().await?;
        let Ok((study_id, _, _)) = self.study_row(&mut tx, study_uid).await else {
            return Ok(None);
        };
        let row: Option<AssignmentRow> = assignment::by_study(&mut tx, study_id).await?;
        let Some(row) = row else { return Ok(None) };
        let history = assignment::history(&mut tx, study_id).await?;
        tx.rollback().await?;
        Ok(Some(AssignmentView {
            radiologist: row.radiologist_id.as_ref().map(|id| RadiologistRef {
                id: id.clone(),
                name: self
                    .readers
                    .get(id)
                    .map(|r| r.name.clone())
                    .unwrap_or_default(),
            }),
            state: row.state,
            priority: row.priority,
            subspecialty: row.subspecialty,
            rule: row.rule,
            assigned_at: assignment::given_at(row.radiologist_id.as_deref(), &history),
            acknowledge_by: row.acknowledge_by,
            preliminary_by: row.preliminary_by,
            acknowledged_at: row.acknowledged_at,
            escalation_level: row.escalation_level,
            new_images: row.new_images,
            explanation: row.explanation,
            history,
        }))
    }

    /// Queues the study for the radiologist's workstation, if they have one.
    /// Enqueuing is idempotent; what a crash between the commit above and
    /// this call misses, [`Router::reconcile_forwards`] adds at start-up.
    async fn forward(&self, forward: &Forward) {
        let Some(destination) = self.workstations.get(&forward.radiologist_id) else {
            return;
        };
        match self
            .outbox
            .enqueue_study(&forward.study_instance_uid, destination)
            .await
        {
            Ok(added) if added > 0 => {
                tracing::info!(study_instance_uid = %forward.study_instance_uid, workstation = %destination.ae_title, added, "instances queued for the workstation");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(study_instance_uid = %forward.study_instance_uid, "cannot queue the forward: {e}")
            }
        }
    }

    /// Makes sure every open assignment's images are queued for its reader.
    pub async fn reconcile_forwards(&self) -> Result<(), RouterError> {
        let mut tx = self.db().begin().await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT s.study_instance_uid, a.radiologist_id FROM assignments a \
             JOIN studies s ON s.id = a.study_id \
             WHERE a.state IN ('assigned', 'acknowledged') AND a.radiologist_id IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.rollback().await?;
        for (study_instance_uid, radiologist_id) in rows {
            self.forward(&Forward {
                study_instance_uid,
                radiologist_id,
            })
            .await;
        }
        Ok(())
    }
}

/// The router's loop, until shutdown.
pub async fn run_router(router: Arc<Router>, mut shutdown: watch::Receiver<bool>) {
    if let Err(e) = router.reconcile_forwards().await {
        tracing::error!("cannot reconcile forwards at start-up: {e}");
    }
    loop {
        let mut changed = false;
        loop {
            match router.process_next_event().await {
                Ok(true) => changed = true,
                Ok(false) => break,
                Err(e) => {
                    tracing::error!("cannot read the study event log: {e}");
                    break;
                }
            }
        }
        match router.escalate_due().await {
            Ok(n) => changed |= n > 0,
            Err(e) => tracing::error!("escalation pass failed: {e}"),
        }
        match router.escalate_critical_due().await {
            Ok(n) => changed |= n > 0,
            Err(e) => tracing::error!("critical result escalation pass failed: {e}"),
        }
        // Assignments and escalations appended workflow events: the
        // notifiers look now rather than at their next poll.
        if changed {
            router.db().ring_events();
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = router.archive.study_events().notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}
