//! DICOMweb for radiologists' viewers (DICOM PS3.18): QIDO-RS, the
//! searches for studies, series and instances, answered from the index;
//! WADO-RS retrieval of whole instances, streamed from the stored files,
//! of their metadata, written in the index when they were stored, of
//! their frames and bulk data as stored, and of frames rendered as JPEG or
//! PNG (decoded, windowed with CT presets or automatically for MR), kept
//! in a bounded cache and prepared for each study as it completes.
//! It answers through `telerad-http` (errors, the common layers) and
//! `telerad-access` (the caller, the scope, the audit trail), beside
//! `telerad-worklist`, not on it.
//!
//! It is not for the reading worklist (`telerad-worklist`) nor for the
//! operators' endpoints (`telerad-operations`).

pub mod accept;
pub mod decode;
pub mod dicom_json;
pub mod frames;
pub mod metadata;
pub mod prerender;
pub mod qido;
pub mod query;
pub mod render;
pub mod render_cache;
pub mod rendered;
pub mod stow;
pub mod target;
pub mod wado;
pub mod window;

use axum::extract::FromRef;
use std::sync::Arc;
use telerad_access::Access;
use telerad_http::ApiError;
use telerad_store::Archive;
use utoipa_axum::router::OpenApiRouter;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    Arc<render_cache::RenderCache>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    qido::routes()
        .merge(wado::routes())
        .merge(metadata::routes())
        .merge(frames::routes())
        .merge(rendered::routes())
        .merge(stow::routes())
}

/// Lets the pages of `origins` (a viewer served elsewhere) call these
/// routes from a browser: the Bearer token in `Authorization` (never a
/// cookie: credentials are not allowed across origins), the `Accept` of
/// DICOMweb, and the `Warning` of a search read back. `None` without
/// origins: no CORS answer at all.
pub fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, HeaderValue, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::ACCEPT, header::CONTENT_TYPE])
            .expose_headers([
                header::WARNING,
                header::CONTENT_TYPE,
                HeaderName::from_static("content-location"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// A UID of the path, checked; `what` names it in the 400.
pub(crate) fn uid<'a>(raw: &'a str, what: &str) -> Result<&'a str, ApiError> {
    telerad_dicom::uid::validate_uid(raw).map_err(|e| ApiError::BadRequest(format!("{what}: {e}")))
}
