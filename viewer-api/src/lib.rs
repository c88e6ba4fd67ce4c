//! DICOMweb for radiologists' viewers (DICOM PS3.18): QIDO-RS, the
//! searches for studies, series and instances, answered from the index;
//! WADO-RS retrieval of whole instances, streamed from the stored files.
//! It answers through `telerad-http` (errors, the common layers) and
//! `telerad-access` (the caller, the scope, the audit trail), beside
//! `telerad-worklist`, not on it.
//!
//! It is not for the reading worklist (`telerad-worklist`) nor for the
//! operators' endpoints (`telerad-operations`).

pub mod accept;
pub mod dicom_json;
pub mod qido;
pub mod query;
pub mod wado;

use axum::extract::FromRef;
use std::sync::Arc;
use telerad_access::Access;
use telerad_store::Archive;
use utoipa_axum::router::OpenApiRouter;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    qido::routes().merge(wado::routes())
}
