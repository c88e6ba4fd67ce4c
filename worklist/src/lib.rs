//! The reading worklist over HTTP: what radiologists and coordinators do
//! with the studies to read. A radiologist acknowledges the study the
//! router gave them, a coordinator assigns it to someone ([`assignments`]);
//! a site files the request form ([`forms`]); the reader writes the report
//! from draft to signed final and addenda ([`reports`]); the site and the
//! readers talk in each study's thread ([`messages`]); everyone follows the
//! [`queue`]; critical results are a closed loop ([`critical`]).
//!
//! It is not for deciding who reads a study (`telerad-router`, which these
//! routes call), for the operators' watch over the index and the outbox
//! (`telerad-operations`), nor for the plumbing every API shares
//! (`telerad-http`: errors, paging, body limit, layers).

pub mod assignments;
pub mod consults;
pub mod critical;
pub mod form_changes;
pub mod forms;
pub mod indication;
pub mod messages;
pub mod queue;
pub mod reports;
pub mod stream;

use axum::extract::FromRef;
use std::sync::Arc;
use telerad_access::Access;
use telerad_http::ApiError;
use telerad_router::service::Router as RouterService;
use utoipa_axum::router::OpenApiRouter;

/// Every worklist route, each taking from the application's state `S` only
/// the parts it uses; the binary gives the state and the common layers
/// (`telerad_http::with_common_layers`).
pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<RouterService>: FromRef<S>,
    Arc<telerad_store::Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .merge(assignments::routes())
        .merge(forms::routes())
        .merge(form_changes::routes())
        .merge(indication::routes())
        .merge(consults::routes())
        .merge(messages::routes())
        .merge(queue::routes())
        .merge(reports::routes())
        .merge(critical::routes())
        .merge(stream::routes())
}

/// The study UID of a path, checked (PS3.5 9.1) before it reaches a query.
pub(crate) fn study_uid(raw: &str) -> Result<&str, ApiError> {
    telerad_dicom::uid::validate_uid(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// No study `uid` within the caller's sites (another site's is the same
/// answer).
pub(crate) fn no_study(uid: &str) -> ApiError {
    ApiError::said(
        ApiError::NotFound,
        telerad_lang::said!("no study {uid}", "aucun examen {uid}"),
    )
}

/// The caller's radiologist, for the actions only a reader takes (`what`
/// they are, `quoi` in French); any other account is refused.
pub(crate) fn radiologist_of(
    caller: &telerad_access::Caller,
    what: &str,
    quoi: &str,
) -> Result<String, ApiError> {
    caller
        .principal()
        .user
        .radiologist_id
        .clone()
        .ok_or_else(|| {
            ApiError::said(
                ApiError::Forbidden,
                telerad_lang::said!(
                    "only a radiologist's account {what}",
                    "seul le compte d'un radiologue {quoi}"
                ),
            )
        })
}
