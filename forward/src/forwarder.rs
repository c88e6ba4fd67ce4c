//! The forwarder: delivers the outbox's jobs by C-STORE, one task per
//! destination with jobs due, up to `associations_per_destination`
//! associations each.
//!
//! Each instance travels in the transfer syntax it was stored in when the
//! destination accepts it. An uncompressed instance (implicit, explicit
//! little or big endian, deflated) is otherwise re-encoded into explicit or
//! implicit VR little endian, which every storage SCP must accept. A
//! compressed one is never decompressed: if the destination refuses its
//! syntax the job is `dead` at once, with a message saying so, since
//! retrying cannot help.
//!
//! To a workstation configured for it, uncompressed images are offered as
//! JPEG-LS Lossless first and compressed on the way when it accepts
//! (fewer bytes on a slow link; the stored file is unchanged); an image
//! that cannot be compressed without loss goes as stored.
//!
//! A job is only sent while this forwarder holds its claim in the database
//! (see [`telerad_store::outbox`]). Jobs go out in batches of [`SEND_BATCH`] per
//! association, marked as being sent before the batch and recorded as sent
//! after it. A graceful stop finishes the C-STORE under way (for up to
//! [`STOP_GRACE`]) and gives the other claimed jobs back; after a crash, the
//! jobs left `sending` are put back at the next start (SQLite) or once their
//! claim runs out (PostgreSQL, where another live process may hold them),
//! and those of the batch under way are re-sent flagged `possible_duplicate`.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use telerad_dicom::compress::{self, CompressError, JPEG_LS_LOSSLESS};
use telerad_dicom::sop_class::{self, VERIFICATION};
use telerad_dicom::transcode::{is_uncompressed, reencode, syntaxes_to_offer};
use telerad_dicom::transfer_syntax::{self, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
use telerad_scp::StoreResponse;
use telerad_scp::scu::{DataSetSource, Negotiation, StoreAttemptError};
use telerad_scp::{ClientAssociation, FileToSend};
use telerad_store::outbox::{Destination, Failure, ForwardJob, Outbox};
use telerad_store::{Archive, Backend, ForwardJobId};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

/// The longest the forwarder sleeps when nothing wakes it: bounds how late a
/// retry that came due is picked up.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Jobs claimed at a time per association. Each claim opens new
/// associations, so it should cover a CT series: with 32, a 300-slice study
/// took 5 claims and forwarded at 0.77x storescu's rate, with 128 two claims
/// and 0.83-0.92x (bench/route.sh). Claimed jobs not yet sent cost nothing
/// at a stop (given back) or a crash (requeued unflagged).
const CLAIM_PER_ASSOCIATION: i64 = 128;
/// Jobs marked, sent, then recorded together on one association: each
/// batch costs two durable database writes, and a crash during it re-sends
/// at most this many instances per association, all flagged.
const SEND_BATCH: usize = 16;
/// The asynchronous operations window proposed to a workstation whose
/// configuration says nothing else.
pub const DEFAULT_OPERATIONS_WINDOW: u16 = 16;
/// Connecting, and waiting for each answer of the destination.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the responses already on their way are still read once a
/// C-STORE could not be sent on the association.
const DRAIN_AFTER_BREAK: Duration = Duration::from_secs(2);
/// How long a stop waits for the C-STORE under way on each association:
/// finishing it spares a possible duplicate, but a peer that stopped
/// answering must not hold `telerad serve` up.
const STOP_GRACE: Duration = Duration::from_secs(10);
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// Presentation contexts of one association (PS3.8 §9.3.2.2: ids 1 to 255,
/// odd), one of which is Verification.
const MAX_CONTEXTS: usize = 128;

fn sop_class_name(uid: &str) -> String {
    sop_class::name(uid).map_or_else(|| uid.to_string(), |name| format!("{name} ({uid})"))
}

fn transfer_syntax_name(uid: &str) -> String {
    transfer_syntax::name(uid).map_or_else(|| uid.to_string(), |name| format!("{name} ({uid})"))
}

/// Names this process's claims: host, process id and a per-run nonce, so
/// that an operator looking at a stuck `sending` job knows whose it is.
fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_007)
        .unwrap_or(0);
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{host}:{}:{nonce:x}{run}", std::process::id())
}

/// Identifies a destination for grouping: its address, not its label.
type DestinationKey = (String, String, u16);

fn key_of(destination: &Destination) -> DestinationKey {
    (
        destination.ae_title.clone(),
        destination.host.clone(),
        destination.port,
    )
}

/// What every destination task shares.
/// Who the forwarder is to workstations: its calling AE title, and how to
/// reach over DICOM TLS the workstations that take it, by host and port.
#[derive(Debug, Clone)]
pub struct Sender {
    pub calling_ae_title: String,
    tls: HashMap<(String, u16), telerad_scp::tls::TlsClient>,
    compress: HashSet<(String, u16)>,
    windows: HashMap<(String, u16), u16>,
}

impl Sender {
    /// Plain TCP to every workstation.
    pub fn plain(calling_ae_title: &str) -> Sender {
        Sender {
            calling_ae_title: calling_ae_title.to_string(),
            tls: HashMap::new(),
            compress: HashSet::new(),
            windows: HashMap::new(),
        }
    }

    /// Propose an asynchronous operations window of `window` C-STOREs to
    /// the workstation at `host`:`port` (1: none; the default is
    /// [`DEFAULT_OPERATIONS_WINDOW`]).
    pub fn with_operations_window(mut self, host: &str, port: u16, window: u16) -> Sender {
        self.windows.insert((host.to_string(), port), window.max(1));
        self
    }

    fn operations_window_for(&self, destination: &Destination) -> u16 {
        self.windows
            .get(&(destination.host.clone(), destination.port))
            .copied()
            .unwrap_or(DEFAULT_OPERATIONS_WINDOW)
    }

    /// Offer JPEG-LS Lossless first to the workstation at `host`:`port`,
    /// and compress uncompressed images for it when it accepts.
    pub fn with_compression(mut self, host: &str, port: u16) -> Sender {
        self.compress.insert((host.to_string(), port));
        self
    }

    fn compresses_for(&self, destination: &Destination) -> bool {
        self.compress
            .contains(&(destination.host.clone(), destination.port))
    }

    /// DICOM TLS to the workstation at `host`:`port`.
    pub fn with_tls(
        mut self,
        host: &str,
        port: u16,
        client: telerad_scp::tls::TlsClient,
    ) -> Sender {
        self.tls.insert((host.to_string(), port), client);
        self
    }

    fn tls_for(&self, destination: &Destination) -> Option<&telerad_scp::tls::TlsClient> {
        self.tls.get(&(destination.host.clone(), destination.port))
    }
}

struct Context {
    outbox: Arc<Outbox>,
    archive: Arc<Archive>,
    sender: Sender,
    associations: usize,
    worker: String,
    shutdown: watch::Receiver<bool>,
}

impl Context {
    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Runs until `shutdown` turns true (or its sender goes away), then
/// finishes the C-STORE under way on each association and returns: the
/// start-up recovery, then [`serve_outbox`].
pub async fn run_forwarder(
    outbox: Arc<Outbox>,
    archive: Arc<Archive>,
    sender: Sender,
    associations_per_destination: usize,
    shutdown: watch::Receiver<bool>,
) {
    recover_at_start_up(&outbox).await;
    serve_outbox(
        outbox,
        archive,
        sender,
        associations_per_destination,
        shutdown,
    )
    .await;
}

/// A forwarder's first step: puts back in the queue the jobs a stopped
/// forwarder left claimed. A SQLite database is served by one telerad
/// process, so whatever is still `sending` was left by its previous run.
/// On PostgreSQL another live process may hold those claims: only expired
/// ones are taken.
pub async fn recover_at_start_up(outbox: &Outbox) {
    let sqlite = outbox.database().backend == Backend::Sqlite;
    requeue_abandoned(outbox, sqlite).await;
}

/// [`run_forwarder`] after its start-up recovery, for a caller that must
/// know when that recovery is over (forwarders started side by side on one
/// database, each of which would otherwise take back the other's claims).
pub async fn serve_outbox(
    outbox: Arc<Outbox>,
    archive: Arc<Archive>,
    sender: Sender,
    associations_per_destination: usize,
    shutdown: watch::Receiver<bool>,
) {
    let context = Arc::new(Context {
        outbox: outbox.clone(),
        archive,
        sender,
        associations: associations_per_destination.max(1),
        worker: worker_id(),
        shutdown: shutdown.clone(),
    });
    let mut shutdown = shutdown;
    tracing::info!(worker = %context.worker, "forwarder started");

    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, DestinationKey> = HashMap::new();
    let mut last_renewal = Instant::now();
    loop {
        if context.stopping() {
            break;
        }
        if last_renewal.elapsed() >= outbox.renewal_interval() {
            last_renewal = Instant::now();
            if let Err(e) = outbox.renew_claims(&context.worker).await {
                tracing::error!("cannot renew the forwarder's claims: {e}");
            }
            requeue_abandoned(&outbox, false).await;
        }
        match outbox.due_destinations().await {
            Ok(destinations) => {
                for destination in destinations {
                    let key = key_of(&destination);
                    if running.values().any(|k| *k == key) {
                        continue;
                    }
                    let span = tracing::info_span!(
                        "forward",
                        destination = %destination.ae_title,
                        address = %destination.address(),
                        name = %destination.name,
                    );
                    let handle = tasks
                        .spawn(serve_destination(context.clone(), destination).instrument(span));
                    running.insert(handle.id(), key);
                }
            }
            Err(e) => tracing::error!("cannot look for due forward jobs: {e}"),
        }
        // Until the next retry comes due, but never longer than the poll
        // interval: another process may have enqueued work. Jobs already
        // due belong to destinations being served (their tasks claim them,
        // and wake this loop when they end).
        let nap = match outbox.next_due_at().await {
            Ok(Some(due)) if due > outbox.now_ms() => {
                Duration::from_millis(u64::try_from(due - outbox.now_ms()).unwrap_or(0))
                    .clamp(Duration::from_millis(5), POLL_INTERVAL)
            }
            Ok(_) => POLL_INTERVAL,
            Err(e) => {
                tracing::error!("cannot look for due forward jobs: {e}");
                POLL_INTERVAL
            }
        };
        tokio::select! {
            _ = outbox.work_enqueued() => {}
            _ = tokio::time::sleep(nap) => {}
            Some(done) = tasks.join_next_with_id() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => {
                        tracing::error!("a forwarding task failed: {e}");
                        e.id()
                    }
                };
                running.remove(&id);
            }
            // An error means the sender is gone: nobody can ask any more,
            // so stop as if asked.
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    tracing::info!("forwarder stopping: finishing the C-STOREs under way");
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tracing::error!("a forwarding task failed: {e}");
        }
    }
    match outbox.release_claims(&context.worker).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "unsent claimed jobs given back to the queue"),
        Err(e) => tracing::error!(
            "cannot give back claimed jobs (they return once their claim expires): {e}"
        ),
    }
    tracing::info!("forwarder stopped");
}

async fn requeue_abandoned(outbox: &Outbox, all: bool) {
    match outbox.requeue_abandoned(all).await {
        Ok(found) => {
            for abandoned in found {
                let job = &abandoned.job;
                if abandoned.send_started {
                    tracing::warn!(
                        job = %job.id,
                        study_instance_uid = %job.study_instance_uid,
                        sop_instance_uid = %job.sop_instance_uid,
                        destination = %job.destination,
                        "a forwarder stopped while sending this instance: it will be sent again \
                         and flagged possible_duplicate, the destination may already have it"
                    );
                } else {
                    tracing::info!(
                        job = %job.id,
                        sop_instance_uid = %job.sop_instance_uid,
                        destination = %job.destination,
                        "claimed job of a stopped forwarder put back in the queue (never sent)"
                    );
                }
            }
        }
        Err(e) => tracing::error!("cannot recover the jobs of stopped forwarders: {e}"),
    }
}

/// Delivers batches to one destination until none is due.
async fn serve_destination(context: Arc<Context>, destination: Destination) {
    let limit = CLAIM_PER_ASSOCIATION.saturating_mul(
        i64::try_from(context.associations).unwrap_or(i64::MAX / CLAIM_PER_ASSOCIATION),
    );
    while !context.stopping() {
        let enqueues = context.outbox.enqueue_count();
        let jobs = match context
            .outbox
            .claim(&destination, &context.worker, limit)
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                // The dispatcher looks again within a poll interval.
                tracing::error!("cannot claim forward jobs: {e}");
                return;
            }
        };
        if jobs.is_empty() {
            return;
        }
        let compressing = context.sender.compresses_for(&destination);
        let mut groups = association_groups(jobs, compressing).into_iter();
        while let Some(group) = groups.next() {
            if deliver(&context, &destination, group, enqueues).await == Delivered::Overtaken {
                // That group's jobs were given back; so are those of the
                // groups not yet delivered (held, their claims would be
                // renewed for as long as the forwarder runs). Then claim
                // again, in queue order.
                let rest: Vec<ForwardJobId> = groups.flatten().map(|job| job.id).collect();
                if let Err(e) = context.outbox.give_back(&rest, &context.worker).await {
                    tracing::warn!(jobs = rest.len(), "cannot give back claimed jobs: {e}");
                }
                break;
            }
        }
    }
}

/// The transfer syntaxes proposed for a job: JPEG-LS Lossless first when
/// compressing for this destination and the stored pixel data is native,
/// then what [`syntaxes_to_offer`] says for the stored syntax.
fn offers(job: &ForwardJob, compressing: bool) -> Vec<&str> {
    let mut out = Vec::new();
    if compressing && compress::can_compress_from(&job.transfer_syntax_uid) {
        out.push(JPEG_LS_LOSSLESS);
    }
    out.extend(syntaxes_to_offer(&job.transfer_syntax_uid));
    out
}

/// Splits a batch so that each part needs at most [`MAX_CONTEXTS`]
/// presentation contexts (Verification included). Almost always one part.
fn association_groups(jobs: Vec<ForwardJob>, compressing: bool) -> Vec<Vec<ForwardJob>> {
    // Each part: the (SOP class, transfer syntax) pairs it needs, its jobs.
    type Part = (BTreeSet<(String, String)>, Vec<ForwardJob>);
    let mut groups: Vec<Part> = Vec::new();
    for job in jobs {
        let needed: Vec<(String, String)> = offers(&job, compressing)
            .into_iter()
            .map(|ts| (job.sop_class_uid.clone(), ts.to_string()))
            .collect();
        let fits = groups.iter().position(|(contexts, _)| {
            let new = needed.iter().filter(|c| !contexts.contains(*c)).count();
            contexts.len() + new < MAX_CONTEXTS
        });
        match fits {
            Some(i) => {
                groups[i].0.extend(needed);
                groups[i].1.push(job);
            }
            None => groups.push((needed.into_iter().collect(), vec![job])),
        }
    }
    groups.into_iter().map(|(_, jobs)| jobs).collect()
}

fn proposals_for(jobs: &[ForwardJob], compressing: bool) -> Vec<(String, String)> {
    let mut contexts = BTreeSet::new();
    for job in jobs {
        for ts in offers(job, compressing) {
            contexts.insert((job.sop_class_uid.clone(), ts.to_string()));
        }
    }
    // Verification keeps the association acceptable to SCPs (DCMTK's among
    // them) that reject one where no context is accepted: a refused
    // syntax must fail its job, not look like an unreachable destination.
    let mut proposals = vec![(
        VERIFICATION.to_string(),
        IMPLICIT_VR_LITTLE_ENDIAN.to_string(),
    )];
    proposals.extend(contexts);
    proposals
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivered {
    /// Sent, failed or given back at a stop.
    Done,
    /// More urgent work came due: what was left was given back.
    Overtaken,
}

/// Sends one batch over up to `associations` parallel associations that
/// share a queue. A job left in the queue because no association could be
/// opened fails with the connection error (one attempt each). `enqueues`
/// is the outbox's enqueue count before the claim: once it moves, each
/// association looks, before its next C-STORE, whether more urgent work
/// is due for this destination, and if so the batch yields to it.
async fn deliver(
    context: &Arc<Context>,
    destination: &Destination,
    jobs: Vec<ForwardJob>,
    enqueues: u64,
) -> Delivered {
    let compressing = context.sender.compresses_for(destination);
    let proposals = Arc::new(proposals_for(&jobs, compressing));
    let associations = context.associations.min(jobs.len()).max(1);
    let queue = Mutex::new(VecDeque::from(jobs));
    let shared = Arc::new(Shared {
        queue,
        enqueues: AtomicU64::new(enqueues),
        overtaken: AtomicBool::new(false),
    });
    let mut workers = JoinSet::new();
    for _ in 0..associations {
        let context = context.clone();
        let destination = destination.clone();
        let proposals = proposals.clone();
        let shared = shared.clone();
        workers.spawn(
            async move { association_worker(&context, &destination, &proposals, &shared).await }
                .in_current_span(),
        );
    }
    let mut last_error = None;
    let mut delivered = Delivered::Done;
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(Ok(Delivered::Overtaken)) => delivered = Delivered::Overtaken,
            Ok(Ok(Delivered::Done)) => {}
            Ok(Err(e)) => last_error = Some(e),
            Err(e) => last_error = Some(format!("forwarding task failed: {e}")),
        }
    }
    let queue = &shared.queue;
    let left: Vec<ForwardJob> = queue
        .lock()
        .map(|mut q| q.drain(..).collect())
        .unwrap_or_default();
    if left.is_empty() || context.stopping() {
        // At a stop, unsent jobs are given back by `release_claims`.
        return delivered;
    }
    let message = last_error.unwrap_or_else(|| "no association could be opened".into());
    tracing::warn!(
        jobs = left.len(),
        "cannot deliver to {destination}: {message}"
    );
    fail_unsent(context, &left, &message).await;
    delivered
}

/// What the associations of one delivery share.
struct Shared {
    queue: Mutex<VecDeque<ForwardJob>>,
    /// The outbox's enqueue count when the queue was last compared with
    /// the outbox (at the claim, then at each look).
    enqueues: AtomicU64,
    /// Set by the association that found more urgent work: the others
    /// stop before their next C-STORE too.
    overtaken: AtomicBool,
}

impl Shared {
    /// Whether a job that ranks before `job` is due for `destination`:
    /// asked of the database only when something was enqueued since the
    /// last look.
    async fn overtaken(
        &self,
        context: &Context,
        destination: &Destination,
        job: &ForwardJob,
    ) -> bool {
        if self.overtaken.load(Ordering::Acquire) {
            return true;
        }
        let now = context.outbox.enqueue_count();
        if job.send_rank == 0 || self.enqueues.swap(now, Ordering::AcqRel) == now {
            return false;
        }
        match context
            .outbox
            .more_urgent_due(destination, job.send_rank)
            .await
        {
            Ok(found) => {
                self.overtaken.fetch_or(found, Ordering::AcqRel);
                found
            }
            Err(e) => {
                tracing::warn!("cannot look for more urgent work: {e}");
                false
            }
        }
    }

    /// Gives back `unsent` and every job still queued.
    async fn give_back(&self, context: &Context, unsent: Vec<ForwardJob>) {
        let mut ids: Vec<ForwardJobId> = unsent.iter().map(|job| job.id).collect();
        if let Ok(mut queue) = self.queue.lock() {
            ids.extend(queue.drain(..).map(|job| job.id));
        }
        match context.outbox.give_back(&ids, &context.worker).await {
            Ok(n) => tracing::info!(
                jobs = n,
                "more urgent work is due for this workstation: queued jobs given back"
            ),
            // Their claim runs out and they return, unflagged.
            Err(e) => tracing::warn!(jobs = ids.len(), "cannot give back claimed jobs: {e}"),
        }
    }
}

/// Records one failed attempt, with the same message, for jobs that were not
/// sent (a retry with backoff, or dead after the last attempt).
async fn fail_unsent(context: &Context, jobs: &[ForwardJob], message: &str) {
    let failures: Vec<(&ForwardJob, Failure)> = jobs
        .iter()
        .map(|job| {
            (
                job,
                Failure {
                    message: message.to_string(),
                    hopeless: false,
                    possibly_delivered: false,
                },
            )
        })
        .collect();
    match context
        .outbox
        .record_failures(&failures, &context.worker)
        .await
    {
        Ok(recorded) => log_dead(&recorded),
        Err(e) => tracing::error!(
            "cannot record a failed delivery (the jobs return once their claim expires): {e}"
        ),
    }
}

fn log_dead(jobs: &[ForwardJob]) {
    for job in jobs
        .iter()
        .filter(|j| j.state == telerad_store::outbox::JobState::Dead)
    {
        tracing::error!(
            job = %job.id,
            study_instance_uid = %job.study_instance_uid,
            sop_instance_uid = %job.sop_instance_uid,
            destination = %job.destination,
            attempts = job.attempts,
            error = job.last_error.as_deref().unwrap_or_default(),
            "forward job dead: an operator must look at it"
        );
    }
}

/// One association: opens it, then sends queued jobs until the queue is
/// empty, the forwarder stops, or the association breaks. `Err` is why it
/// could not be opened or broke, for jobs nobody else could send.
async fn association_worker(
    context: &Context,
    destination: &Destination,
    proposals: &[(String, String)],
    shared: &Shared,
) -> Result<Delivered, String> {
    let queue = &shared.queue;
    let queue_empty = || queue.lock().map(|q| q.is_empty()).unwrap_or(true);
    if context.stopping() || queue_empty() {
        return Ok(Delivered::Done);
    }
    let scu_destination = telerad_scp::Destination {
        ae_title: destination.ae_title.clone(),
        address: destination.address(),
    };
    let connect = ClientAssociation::connect_as(
        &context.sender.calling_ae_title,
        &scu_destination,
        proposals,
        Negotiation {
            operations_window: context.sender.operations_window_for(destination),
            ..Negotiation::default()
        },
        NETWORK_TIMEOUT,
        context.sender.tls_for(destination),
    );
    let mut association = tokio::select! {
        connected = connect => connected
            .map_err(|e| format!("cannot open an association with {destination}: {e}"))?,
        // Nothing sent yet: a stop need not wait for a slow peer.
        () = stop_requested(context.shutdown.clone()) => return Ok(Delivered::Done),
    };
    let mut delivered = Delivered::Done;
    loop {
        if context.stopping() {
            break;
        }
        let batch: Vec<ForwardJob> = queue
            .lock()
            .map(|mut q| {
                let n = q.len().min(SEND_BATCH);
                q.drain(..n).collect()
            })
            .unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        match send_batch(context, &mut association, destination, shared, batch).await {
            BatchEnd::Done => {}
            BatchEnd::Overtaken { unsent } => {
                shared.give_back(context, unsent).await;
                delivered = Delivered::Overtaken;
                break;
            }
            BatchEnd::Stopping => return Ok(Delivered::Done),
            BatchEnd::Broken { message, unsent } => {
                // The jobs not sent go to the other associations, or fail
                // with this message if there is none.
                if let Ok(mut q) = queue.lock() {
                    for job in unsent.into_iter().rev() {
                        q.push_front(job);
                    }
                }
                return Err(message);
            }
        }
    }
    match tokio::time::timeout(RELEASE_TIMEOUT, association.release()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!("release of the association failed: {e}"),
        Err(_) => tracing::debug!("no answer to the release within {RELEASE_TIMEOUT:?}"),
    }
    Ok(delivered)
}

enum BatchEnd {
    Done,
    /// More urgent work is due: these were not sent, and are unmarked.
    Overtaken {
        unsent: Vec<ForwardJob>,
    },
    /// The forwarder is stopping: the association is left as it is.
    Stopping,
    Broken {
        message: String,
        unsent: Vec<ForwardJob>,
    },
}

/// Sends a batch of jobs on one association, with two database writes for
/// the whole batch (the mark before sending, the record after) rather than
/// two per instance: each is a transaction the disk must make durable.
async fn send_batch(
    context: &Context,
    association: &mut ClientAssociation,
    destination: &Destination,
    shared: &Shared,
    batch: Vec<ForwardJob>,
) -> BatchEnd {
    let ids: Vec<ForwardJobId> = batch.iter().map(|job| job.id).collect();
    let ours = match context.outbox.begin_send(&ids, &context.worker).await {
        Ok(ours) => ours,
        Err(e) => {
            // Not sending without the mark: a crash would then re-send
            // them unflagged.
            fail_unsent(
                context,
                &batch,
                &format!("cannot record the start of sending: {e}"),
            )
            .await;
            return BatchEnd::Done;
        }
    };
    let (mine, lost): (Vec<ForwardJob>, Vec<ForwardJob>) =
        batch.into_iter().partition(|job| ours.contains(&job.id));
    for job in &lost {
        tracing::warn!(
            job = %job.id,
            "claim taken over by another forwarder before sending: skipped"
        );
    }
    // Up to the negotiated window of C-STOREs go out before the first
    // response is read (1 where the workstation negotiated none): on a
    // long link the images then follow each other without a round trip
    // between two.
    let window = usize::from(association.operations_window()).max(1);
    let mut sent = Vec::new();
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut jobs = mine.into_iter().peekable();
    let mut stopping = false;
    let mut abandoned = false;
    let mut broken = None;
    let mut overtaken = false;
    let mut preparing = None;
    // One grace for the whole batch, from the moment a stop is asked.
    let grace = grace_after_stop(context.shutdown.clone());
    tokio::pin!(grace);
    'batch: loop {
        while broken.is_none() && !stopping && !overtaken && in_flight.len() < window {
            let Some(job) = jobs.peek() else { break };
            if shared.overtaken(context, destination, job).await {
                overtaken = true;
                break;
            }
            let Some(job) = jobs.next() else { break };
            let current = preparing
                .take()
                .unwrap_or_else(|| start_preparing(context, association, destination, &job));
            // The next file is read while this one is sent: the hop to a
            // blocking thread is then off the path between two C-STOREs.
            preparing = jobs
                .peek()
                .map(|next| start_preparing(context, association, destination, next));
            let request = tokio::select! {
                request = send_request(association, destination, &job, current) => request,
                () = &mut grace => {
                    // Still claimed and marked, as those in flight: re-sent,
                    // flagged, at the next start, since their C-STOREs had
                    // begun. The rest of the batch is unmarked below and
                    // given back by the stop.
                    tracing::warn!(
                        job = %job.id,
                        sop_instance_uid = %job.sop_instance_uid,
                        in_flight = in_flight.len(),
                        "stopping: C-STORE abandoned after {STOP_GRACE:?}"
                    );
                    abandoned = true;
                    break 'batch;
                }
            };
            match request {
                Ok(request) => in_flight.push_back(InFlight {
                    job,
                    transfer_syntax_uid: request.0,
                    message_id: request.1,
                }),
                Err((failure, association_broken)) => {
                    let message = failure.message.clone();
                    record_failure(context, &job, failure).await;
                    if association_broken {
                        broken = Some(message);
                    }
                }
            }
            stopping = context.stopping();
        }
        if in_flight.is_empty() {
            break;
        }
        // After a failed send the responses already on their way are still
        // read, briefly: what the workstation answered is not sent again.
        let wait = if broken.is_some() {
            DRAIN_AFTER_BREAK
        } else {
            NETWORK_TIMEOUT
        };
        let answer = tokio::select! {
            answer = tokio::time::timeout(wait, association.read_store_response()) => answer,
            () = &mut grace => {
                tracing::warn!(
                    in_flight = in_flight.len(),
                    "stopping: no C-STORE response within {STOP_GRACE:?}"
                );
                abandoned = true;
                break;
            }
        };
        match answer {
            Ok(Ok((message_id, response))) => {
                let Some(done) = in_flight
                    .iter()
                    .position(|f| f.message_id == message_id)
                    .and_then(|at| in_flight.remove(at))
                else {
                    broken.get_or_insert_with(|| {
                        format!(
                            "{} answered message {message_id}, which no C-STORE in flight has",
                            destination.ae_title
                        )
                    });
                    break;
                };
                match judge(destination, &done, response) {
                    Ok(()) => {
                        tracing::debug!(
                            job = %done.job.id,
                            sop_instance_uid = %done.job.sop_instance_uid,
                            transfer_syntax = %done.transfer_syntax_uid,
                            "instance forwarded"
                        );
                        sent.push(done.job.id);
                    }
                    Err(failure) => record_failure(context, &done.job, failure).await,
                }
            }
            Ok(Err(error)) => {
                broken.get_or_insert_with(|| {
                    format!("no C-STORE response from {}: {error}", destination.ae_title)
                });
                break;
            }
            Err(_) => {
                broken.get_or_insert_with(|| {
                    format!(
                        "no C-STORE response from {} within {wait:?}",
                        destination.ae_title
                    )
                });
                break;
            }
        }
        stopping = stopping || context.stopping();
    }
    if let Some(message) = &broken {
        // Their data sets went out whole: the workstation may hold them.
        for done in in_flight.drain(..) {
            let failure = Failure {
                message: format!("{message} (the data set was sent; it may have been stored)"),
                hopeless: false,
                possibly_delivered: true,
            };
            record_failure(context, &done.job, failure).await;
        }
    }
    let stopping = stopping || abandoned;
    record_sent(context, &sent).await;
    let unsent: Vec<ForwardJob> = jobs.collect();
    let unsent_ids: Vec<ForwardJobId> = unsent.iter().map(|job| job.id).collect();
    if let Err(e) = context
        .outbox
        .unmark_unsent(&unsent_ids, &context.worker)
        .await
    {
        tracing::warn!(
            jobs = unsent_ids.len(),
            "cannot clear the mark of jobs not sent (a restart will flag them \
             possible_duplicate): {e}"
        );
    }
    match broken {
        Some(message) => BatchEnd::Broken { message, unsent },
        None if stopping => BatchEnd::Stopping,
        None if overtaken => BatchEnd::Overtaken { unsent },
        None => BatchEnd::Done,
    }
}

async fn record_sent(context: &Context, sent: &[ForwardJobId]) {
    match context.outbox.record_sent(sent, &context.worker).await {
        Ok(recorded) => {
            for id in sent.iter().filter(|id| !recorded.contains(id)) {
                tracing::warn!(
                    job = %id,
                    "instance forwarded after this forwarder's claim had been taken over: \
                     the other forwarder sends it again, flagged possible_duplicate"
                );
            }
        }
        Err(e) => tracing::error!(
            jobs = sent.len(),
            "instances forwarded but not recorded (they will be re-sent, flagged \
             possible_duplicate, once their claim expires): {e}"
        ),
    }
}

async fn record_failure(context: &Context, job: &ForwardJob, failure: Failure) {
    tracing::warn!(
        job = %job.id,
        study_instance_uid = %job.study_instance_uid,
        sop_instance_uid = %job.sop_instance_uid,
        "forwarding failed: {}",
        failure.message
    );
    match context
        .outbox
        .record_failures(&[(job, failure)], &context.worker)
        .await
    {
        Ok(recorded) => log_dead(&recorded),
        Err(e) => tracing::error!(job = %job.id, "cannot record a failed delivery: {e}"),
    }
}

/// Resolves once a stop is asked (or can no longer be asked: the sender is
/// gone).
async fn stop_requested(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Resolves [`STOP_GRACE`] after a stop is asked.
async fn grace_after_stop(shutdown: watch::Receiver<bool>) {
    stop_requested(shutdown).await;
    tokio::time::sleep(STOP_GRACE).await;
}

/// How one job's data set goes out.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Stored syntax accepted: stream the file.
    AsStored,
    /// Re-encode into this accepted little-endian syntax.
    Reencode(&'static str),
    /// Compress to JPEG-LS Lossless, or else go as the inner plan says
    /// (an image that cannot be compressed without loss); with none, such
    /// an image cannot go.
    Compress(Option<Uncompressed>),
}

/// The plans for uncompressed data sets.
#[derive(Debug, Clone, Copy)]
enum Uncompressed {
    AsStored,
    Reencode(&'static str),
}

fn plan(
    association: &ClientAssociation,
    destination: &Destination,
    job: &ForwardJob,
    compressing: bool,
) -> Result<Plan, Failure> {
    let accepted: Vec<&str> = association
        .accepted_contexts()
        .iter()
        .filter(|(_, abstract_syntax, _)| *abstract_syntax == job.sop_class_uid)
        .map(|(_, _, ts)| ts.as_str())
        .collect();
    let as_sent = plan_without_compression(&accepted, destination, job);
    if compressing
        && accepted.contains(&JPEG_LS_LOSSLESS)
        && compress::can_compress_from(&job.transfer_syntax_uid)
    {
        let fallback = match as_sent {
            Ok(Plan::Reencode(ts)) => Some(Uncompressed::Reencode(ts)),
            Ok(_) => Some(Uncompressed::AsStored),
            Err(_) => None,
        };
        return Ok(Plan::Compress(fallback));
    }
    as_sent
}

fn plan_without_compression(
    accepted: &[&str],
    destination: &Destination,
    job: &ForwardJob,
) -> Result<Plan, Failure> {
    if accepted.contains(&job.transfer_syntax_uid.as_str()) {
        return Ok(Plan::AsStored);
    }
    let hopeless = |message: String| Failure {
        message,
        hopeless: true,
        possibly_delivered: false,
    };
    if is_uncompressed(&job.transfer_syntax_uid) {
        for ts in [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN] {
            if accepted.contains(&ts) {
                return Ok(Plan::Reencode(ts));
            }
        }
        return Err(hopeless(format!(
            "destination {} accepted none of {}, Explicit VR Little Endian or Implicit VR \
             Little Endian for {}",
            destination.ae_title,
            transfer_syntax_name(&job.transfer_syntax_uid),
            sop_class_name(&job.sop_class_uid)
        )));
    }
    Err(hopeless(format!(
        "destination {} refused {} for {}; telerad does not decompress",
        destination.ae_title,
        transfer_syntax_name(&job.transfer_syntax_uid),
        sop_class_name(&job.sop_class_uid)
    )))
}

/// A job's file being checked (and re-encoded if need be) on a blocking
/// thread, ahead of its turn on the association.
enum Preparing {
    Refused(Failure),
    Reading(tokio::task::JoinHandle<Result<Prepared, PrepareError>>),
}

fn start_preparing(
    context: &Context,
    association: &ClientAssociation,
    destination: &Destination,
    job: &ForwardJob,
) -> Preparing {
    let compressing = context.sender.compresses_for(destination);
    match plan(association, destination, job, compressing) {
        Err(failure) => Preparing::Refused(failure),
        Ok(plan) => {
            let path = context.archive.layout().absolute(&job.path);
            let expected = (
                job.sop_instance_uid.clone(),
                job.transfer_syntax_uid.clone(),
            );
            Preparing::Reading(tokio::task::spawn_blocking(move || {
                prepare(&path, &expected, &plan)
            }))
        }
    }
}

/// A C-STORE whose data set has gone out, waiting for its response.
struct InFlight {
    job: ForwardJob,
    transfer_syntax_uid: String,
    message_id: u16,
}

/// Sends a job's C-STORE request and data set: the transfer syntax it went
/// in and its message ID; or the failure, and whether the association is
/// broken.
async fn send_request(
    association: &mut ClientAssociation,
    destination: &Destination,
    job: &ForwardJob,
    preparing: Preparing,
) -> Result<(String, u16), (Failure, bool)> {
    let failed = |message: String, hopeless: bool| {
        (
            Failure {
                message,
                hopeless,
                possibly_delivered: false,
            },
            false,
        )
    };
    let prepared = match preparing {
        Preparing::Refused(failure) => return Err((failure, false)),
        Preparing::Reading(reading) => match reading.await {
            Ok(Ok(prepared)) => prepared,
            Ok(Err(PrepareError { message, hopeless })) => return Err(failed(message, hopeless)),
            Err(e) => return Err(failed(format!("reading task failed: {e}"), false)),
        },
    };
    let source = match &prepared {
        Prepared::File(file) => DataSetSource::File {
            path: &file.path,
            offset: file.dataset_offset,
            len: file.size.saturating_sub(file.dataset_offset),
        },
        Prepared::Bytes { data, .. } => DataSetSource::Bytes(data),
    };
    let transfer_syntax_uid = match &prepared {
        Prepared::File(_) => job.transfer_syntax_uid.clone(),
        Prepared::Bytes {
            transfer_syntax_uid,
            ..
        } => (*transfer_syntax_uid).to_string(),
    };
    match association
        .send_store(
            &job.sop_class_uid,
            &job.sop_instance_uid,
            &transfer_syntax_uid,
            source,
        )
        .await
    {
        Ok(message_id) => Ok((transfer_syntax_uid, message_id)),
        // Not all of the data set went out: the workstation cannot hold it.
        Err(StoreAttemptError { error, .. }) => Err((
            Failure {
                message: format!("C-STORE to {} failed: {error}", destination.ae_title),
                hopeless: false,
                possibly_delivered: false,
            },
            true,
        )),
    }
}

/// What a C-STORE response says of its job.
fn judge(
    destination: &Destination,
    done: &InFlight,
    response: StoreResponse,
) -> Result<(), Failure> {
    if response.is_success() {
        if response.status != 0 {
            tracing::info!(
                job = %done.job.id,
                status = format!("0x{:04X}", response.status),
                comment = %response.error_comment,
                "destination stored the instance with a warning"
            );
        }
        return Ok(());
    }
    Err(Failure {
        message: format!(
            "destination {} answered the C-STORE with status 0x{:04X}{}",
            destination.ae_title,
            response.status,
            if response.error_comment.is_empty() {
                String::new()
            } else {
                format!(": {}", response.error_comment)
            }
        ),
        hopeless: false,
        possibly_delivered: false,
    })
}

enum Prepared {
    File(FileToSend),
    Bytes {
        data: Vec<u8>,
        transfer_syntax_uid: &'static str,
    },
}

struct PrepareError {
    message: String,
    hopeless: bool,
}

/// Checks the stored file is the job's instance and, if needed, re-encodes
/// its data set. Runs on a blocking thread: it reads the file.
fn prepare(
    path: &Path,
    expected: &(String, String),
    plan: &Plan,
) -> Result<Prepared, PrepareError> {
    let file = FileToSend::read(path).map_err(|e| PrepareError {
        // A missing or unreadable file may be a passing storage problem
        // (a network file system); the retry limit bounds the attempts.
        message: format!("cannot read the stored instance: {e}"),
        hopeless: false,
    })?;
    let (sop_instance_uid, transfer_syntax_uid) = expected;
    if file.sop_instance_uid != *sop_instance_uid
        || file.transfer_syntax_uid != *transfer_syntax_uid
    {
        return Err(PrepareError {
            message: format!(
                "the stored file {} holds {} in {}, not {} in {} as indexed",
                path.display(),
                file.sop_instance_uid,
                file.transfer_syntax_uid,
                sop_instance_uid,
                transfer_syntax_uid
            ),
            hopeless: true,
        });
    }
    match *plan {
        Plan::AsStored => Ok(Prepared::File(file)),
        Plan::Compress(fallback) => {
            match compress::to_jpeg_ls_lossless(
                &file.path,
                file.dataset_offset,
                transfer_syntax_uid,
            ) {
                Ok(data) => Ok(Prepared::Bytes {
                    data,
                    transfer_syntax_uid: JPEG_LS_LOSSLESS,
                }),
                Err(CompressError::NotEligible(why)) => match fallback {
                    Some(fallback) => {
                        tracing::debug!(path = %path.display(), "sent uncompressed: {why}");
                        prepare_as(file, path, fallback)
                    }
                    None => Err(PrepareError {
                        message: format!(
                            "the destination accepted only JPEG-LS Lossless and {} cannot be \
                             compressed without loss: {why}",
                            path.display()
                        ),
                        hopeless: true,
                    }),
                },
                Err(error) => Err(PrepareError {
                    message: format!("cannot compress {}: {error}", path.display()),
                    // As for a file that cannot be read: perhaps passing.
                    hopeless: false,
                }),
            }
        }
        Plan::Reencode(target) => prepare_as(file, path, Uncompressed::Reencode(target)),
    }
}

/// The data set of `file` as an uncompressed plan sends it.
fn prepare_as(file: FileToSend, path: &Path, plan: Uncompressed) -> Result<Prepared, PrepareError> {
    let transfer_syntax_uid = file.transfer_syntax_uid.as_str();
    match plan {
        Uncompressed::AsStored => Ok(Prepared::File(file)),
        Uncompressed::Reencode(target) => {
            let data = reencode(&file.path, file.dataset_offset, transfer_syntax_uid, target)
                .map_err(|error| PrepareError {
                    message: format!(
                        "cannot re-encode {} from {} to {}: {error}",
                        path.display(),
                        transfer_syntax_name(transfer_syntax_uid),
                        transfer_syntax_name(target)
                    ),
                    // The stored data set does not change: neither will this.
                    hopeless: true,
                })?;
            Ok(Prepared::Bytes {
                data,
                transfer_syntax_uid: target,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telerad_store::outbox::JobState;

    fn job(id: i64, sop_class: &str, ts: &str) -> ForwardJob {
        ForwardJob {
            id: ForwardJobId(id),
            study_instance_uid: "1.2.3".into(),
            sop_instance_uid: format!("1.2.3.{id}"),
            version: 1,
            path: format!("studies/x/{id}.dcm"),
            sop_class_uid: sop_class.into(),
            transfer_syntax_uid: ts.into(),
            destination: Destination {
                name: "dr".into(),
                ae_title: "WS".into(),
                host: "127.0.0.1".into(),
                port: 104,
            },
            state: JobState::Sending,
            attempts: 0,
            next_attempt_at: 0,
            last_error: None,
            claimed_by: None,
            claimed_at: None,
            possible_duplicate: false,
            created_at: 0,
            sent_at: None,
            send_rank: 8,
        }
    }

    #[test]
    fn proposals_are_deduplicated_and_lead_with_verification() {
        let jobs = [
            job(1, "1.2.840.10008.5.1.4.1.1.2", EXPLICIT_VR_LITTLE_ENDIAN),
            job(2, "1.2.840.10008.5.1.4.1.1.2", EXPLICIT_VR_LITTLE_ENDIAN),
            job(3, "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.1.2.4.91"),
        ];
        let proposals = proposals_for(&jobs, false);
        assert_eq!(proposals[0].0, VERIFICATION);
        assert_eq!(proposals.len(), 4);
    }

    #[test]
    fn batches_needing_too_many_contexts_are_split() {
        // 200 SOP classes in a compressed syntax: one context each.
        let jobs: Vec<ForwardJob> = (0..200)
            .map(|i| job(i, &format!("1.2.3.{i}"), "1.2.840.10008.1.2.4.50"))
            .collect();
        let groups = association_groups(jobs, false);
        assert_eq!(groups.len(), 2);
        for group in &groups {
            assert!(proposals_for(group, false).len() <= MAX_CONTEXTS);
        }
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 200);
    }

    #[test]
    fn names_are_spelled_out_for_operators() {
        assert_eq!(
            sop_class_name("1.2.840.10008.5.1.4.1.1.2"),
            "CT Image Storage (1.2.840.10008.5.1.4.1.1.2)"
        );
        assert_eq!(
            transfer_syntax_name("1.2.840.10008.1.2.4.91"),
            "JPEG 2000 Image Compression (1.2.840.10008.1.2.4.91)"
        );
        assert_eq!(transfer_syntax_name("1.9.9"), "1.9.9");
    }
}
