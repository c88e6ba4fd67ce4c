//! `GET /api/events/stream`: server-sent events (text/event-stream) of the
//! workflow (assignment, escalation, report issued, critical result and
//! its acknowledgement, message, request form), each what the caller may
//! see of the study event log under the one access policy, so that a page
//! updates without polling.
//!
//! An event names the study and its site, never the patient: the page asks
//! the audited API for the rest. Each event's `id` is its place in the log:
//! a browser's `EventSource` reconnects with `Last-Event-ID` and misses
//! nothing. A stream ends after [`LIFETIME`], so that a revoked session or
//! a changed role takes effect at the reconnection, which authenticates
//! again.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_http::openapi::ErrorBody;
use telerad_store::notices::{self, Notice};
use telerad_store::{Database, EventId, Scope};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long one stream lives before the browser reconnects.
pub const LIFETIME: Duration = Duration::from_secs(300);
/// The longest wait between two looks at the log when nothing rang.
const POLL: Duration = Duration::from_secs(5);
/// Events read from the log per look.
const BATCH: i64 = 200;
/// Streams open at once on this node: each costs a query per append.
const MAX_STREAMS: usize = 256;

static STREAMS: std::sync::LazyLock<Arc<Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(Semaphore::new(MAX_STREAMS)));

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new().routes(routes!(stream))
}

struct Follower {
    db: Database,
    scope: Scope,
    cursor: EventId,
    bell: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
    until: Instant,
    pending: VecDeque<Notice>,
    _permit: OwnedSemaphorePermit,
}

/// The workflow events the caller may see, as server-sent events.
///
/// Assignments, escalations, reports issued, critical results and their
/// acknowledgement, messages, request forms and consults, each naming the
/// study and its site, never the patient. Each event's `id` is its place
/// in the study event log, its `event` the kind, its `data` a `Notice` in
/// JSON; a comment is sent now and then to keep the connection open. The
/// stream ends after 5 minutes: reconnect with `Last-Event-ID` to miss
/// nothing (a browser's `EventSource` does).
#[utoipa::path(
    get,
    path = "/api/events/stream",
    tag = "events",
    params(
        ("Last-Event-ID" = Option<i64>, Header,
            description = "The `id` of the last event received: the stream resumes after it. \
                           Without it (or if it is not a non-negative integer) the stream \
                           starts with the events to come."),
    ),
    responses(
        (status = 200,
            description = "A stream of server-sent events; each event's `data` is a `Notice` \
                           in JSON, its `event` the notice's `kind`, its `id` the notice's `id`",
            content_type = "text/event-stream",
            body = Notice),
        (status = 429, description = "Too many event streams are open on this server",
            body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
async fn stream(
    caller: Caller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    let permit = STREAMS
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManyRequests {
            message: "too many event streams are open on this server; try again shortly".into(),
            retry_after_secs: 5,
        })?;
    let db = caller.access().database().clone();
    let resume = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<i64>().ok())
        .filter(|id| *id >= 0);
    let cursor = match resume {
        Some(id) => EventId(id),
        None => notices::latest(&db).await?,
    };
    caller
        .audit(&caller.record("events.stream", format!("events after {}", cursor.0)))
        .await?;
    let follower = Follower {
        bell: db.events_bell(),
        closing: db.closing(),
        db,
        scope,
        cursor,
        until: Instant::now() + LIFETIME,
        pending: VecDeque::new(),
        _permit: permit,
    };
    let events = futures_util::stream::unfold(follower, |mut f| async move {
        let notice = f.next().await?;
        Some((Ok(to_event(&notice)), f))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

impl Follower {
    /// The next event the caller may see; `None` when the stream ends.
    async fn next(&mut self) -> Option<Notice> {
        loop {
            if let Some(notice) = self.pending.pop_front() {
                return Some(notice);
            }
            if Instant::now() >= self.until || *self.closing.borrow() {
                return None;
            }
            // Marked seen before the look: a ring during it means another.
            self.bell.borrow_and_update();
            match notices::after(&self.db, &self.scope, self.cursor, BATCH).await {
                Ok((found, last)) => {
                    let moved = last != self.cursor;
                    self.cursor = last;
                    self.pending.extend(found);
                    if moved {
                        continue;
                    }
                }
                Err(e) => {
                    // The browser reconnects from its last event.
                    tracing::warn!("event stream stopped: cannot read the log: {e}");
                    return None;
                }
            }
            tokio::select! {
                _ = self.bell.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = tokio::time::sleep_until(self.until) => {}
                _ = self.closing.changed() => return None,
            }
        }
    }
}

fn to_event(notice: &Notice) -> Event {
    Event::default()
        .id(notice.id.0.to_string())
        .event(notice.kind.as_str())
        .data(serde_json::to_string(notice).unwrap_or_else(|_| "{}".to_string()))
}
