//! WADO-RS metadata (PS3.18 §10.4.1.1.2): the DICOM JSON of a study's,
//! a series' or an instance's data sets without their bulk data, which is
//! named by `BulkDataURI`s instead.
//!
//! The text is read from the index, where it was written when the study
//! completed (`telerad-store`'s metadata consumer of the event log): a
//! series of 300 slices is one query, no file is opened. An instance still
//! without it (an older database, a study not complete yet) has its
//! metadata built from its file at its first request, and kept.

use crate::qido::check_accept;
use crate::target::Target;
use axum::extract::{FromRef, Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use telerad_access::{Access, Caller};
use telerad_dicom::metadata::{self as dicom_metadata, resolve};
use telerad_http::ApiError;
use telerad_store::Archive;
use telerad_store::audit::Outcome;
use telerad_store::qido::InstanceMetadata;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(study_metadata))
        .routes(routes!(series_metadata))
        .routes(routes!(instance_metadata))
}

/// The instance's WADO-RS address, under which its bulk data is served.
pub(crate) fn instance_address(study: &str, series: &str, instance: &str) -> String {
    format!("/dicom-web/studies/{study}/series/{series}/instances/{instance}")
}

async fn metadata(
    caller: Caller,
    archive: &Archive,
    headers: &HeaderMap,
    target: Target<'_>,
) -> Result<Response, ApiError> {
    let opened = target.open(&caller, archive, "dicomweb.metadata").await?;
    if let Err(error) = check_accept(headers) {
        // The study was named and its scope checked: the refusal is an
        // access attempt like any other, and audited.
        return Err(caller
            .not_done(opened.record.clone(), Outcome::Failed, error)
            .await);
    }
    let found = archive
        .index()
        .instances_metadata(&target.search(), &opened.scope)
        .await?;
    target.check_found(&caller, &opened, found.len()).await?;
    let mut body = String::with_capacity(found.len() * 4096 + 2);
    body.push('[');
    for (n, instance) in found.into_iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        let address = instance_address(
            &instance.hit.study_instance_uid,
            &instance.hit.series_instance_uid,
            &instance.hit.sop_instance_uid,
        );
        let stored = match instance.metadata {
            Some(stored) => stored,
            None => built_now(archive, &instance).await?,
        };
        body.push_str(&resolve(&stored, &address));
    }
    body.push(']');
    caller.audit(&opened.record).await?;
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("application/dicom+json"),
        )],
        body,
    )
        .into_response())
}

/// The metadata of an instance stored without it, built from its file and
/// kept for the next request.
async fn built_now(archive: &Archive, instance: &InstanceMetadata) -> Result<String, ApiError> {
    let path = archive.layout().absolute(&instance.hit.path);
    let built = tokio::task::spawn_blocking(move || dicom_metadata::instance_metadata(&path))
        .await
        .map_err(|e| ApiError::Internal(format!("the metadata task failed: {e}")))?
        .map_err(|e| {
            ApiError::Internal(format!("instance {}: {e}", instance.hit.sop_instance_uid))
        })?;
    archive
        .index()
        .keep_metadata(instance.instance_id, &built)
        .await?;
    Ok(built)
}

/// The metadata of every instance of a study.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/metadata",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
    ),
    responses(
        (status = 200, description = "DICOM JSON data sets, bulk data by BulkDataURI", content_type = "application/dicom+json", body = Vec<Object>),
        (status = 406, description = "The Accept header allows no JSON", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn study_metadata(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    Path(raw_study): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target::parse(&raw_study, None, None)?;
    metadata(caller, &archive, &headers, target).await
}

/// The metadata of every instance of a series.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/series/{series}/metadata",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("series" = String, Path, description = "Series Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
    ),
    responses(
        (status = 200, description = "DICOM JSON data sets, bulk data by BulkDataURI", content_type = "application/dicom+json", body = Vec<Object>),
        (status = 406, description = "The Accept header allows no JSON", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn series_metadata(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    Path((raw_study, raw_series)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target::parse(&raw_study, Some(&raw_series), None)?;
    metadata(caller, &archive, &headers, target).await
}

/// The metadata of one instance.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/series/{series}/instances/{instance}/metadata",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("series" = String, Path, description = "Series Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("instance" = String, Path, description = "SOP Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
    ),
    responses(
        (status = 200, description = "One DICOM JSON data set in an array, bulk data by BulkDataURI", content_type = "application/dicom+json", body = Vec<Object>),
        (status = 406, description = "The Accept header allows no JSON", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn instance_metadata(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    Path((raw_study, raw_series, raw_instance)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target::parse(&raw_study, Some(&raw_series), Some(&raw_instance))?;
    metadata(caller, &archive, &headers, target).await
}
