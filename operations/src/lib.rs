//! What operators use to watch the study index and the forwarding outbox,
//! over HTTP: whether the server and its database answer (`/healthz`),
//! which studies have arrived, from which site, whether complete, with
//! their series and assignment (`/api/studies`), deliveries to
//! workstations and sending the dead ones again (`/api/forwards`),
//! instances refused for reusing a UID of another site's study
//! (`/api/conflicts`) and study events a consumer could not handle
//! (`/api/events/failed`).
//!
//! The forward endpoints are here, not in `telerad-forward` nor in the
//! worklist: they read and re-queue rows of the store's outbox, which the
//! forwarder drains whoever queued them, and re-sending a failed delivery
//! is an operator's repair, not a step of reading a study. Keeping them in
//! the forward crate would put HTTP beside the DICOM sender for no gain.
//!
//! It is not for the reading worklist (acknowledging and assigning
//! studies, request forms, reports: `telerad-worklist`), nor for images
//! (`telerad-viewer-api`), nor for the plumbing every API shares
//! (`telerad-http`). It reads through the store and writes only the
//! outbox's retries; the router is called for one read, a study's
//! assignment, which only it can show with the radiologist's name. Every
//! route takes a `telerad_access::Caller`: it names its action to the
//! access policy, reads within the scope it is given, and audits.

pub mod alerts;
pub mod conflicts;
pub mod deliveries;
pub mod events;
pub mod forwards;
pub mod health;
pub mod metrics;
pub mod studies;
pub mod turnaround;

use axum::extract::FromRef;
use std::sync::Arc;
use telerad_access::Access;
use telerad_router::service::Router as RouterService;
use telerad_store::Archive;
use telerad_store::outbox::Outbox;
use utoipa_axum::router::OpenApiRouter;

/// Every operators' route, each taking from the application's state `S`
/// only the parts it uses; the binary gives the state and the common
/// layers (`telerad_http::with_common_layers`).
pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<Outbox>: FromRef<S>,
    Arc<RouterService>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .merge(health::routes())
        .merge(studies::routes())
        .merge(forwards::routes())
        .merge(conflicts::routes())
        .merge(events::routes())
        .merge(alerts::routes())
        .merge(deliveries::routes())
        .merge(metrics::routes())
        .merge(turnaround::routes())
}
