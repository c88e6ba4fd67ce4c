//! WADO-RS retrieval of whole instances (PS3.18 §10.4): a study, a series
//! or one instance as `multipart/related; type="application/dicom"`, each
//! part a stored Part 10 file streamed from disk in chunks, so the memory
//! an answer takes does not grow with the study.
//!
//! Files are sent in the transfer syntax they were stored in. A client
//! asking for that syntax or for any (`transfer-syntax=*`) gets them;
//! one asking for another (or, by PS3.18 §8.7.3.5.2, for the default
//! Explicit VR Little Endian by naming none) when a file is stored
//! otherwise is told so (406) before anything is sent: transcoding comes
//! with the decoders.

use crate::accept;
use crate::target::Target;
use axum::body::{Body, Bytes};
use axum::extract::{FromRef, Path, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use std::path::PathBuf;
use std::sync::Arc;
use telerad_access::{Access, Caller};
use telerad_http::ApiError;
use telerad_store::Archive;
use telerad_store::qido::InstanceHit;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(study))
        .routes(routes!(series))
        .routes(routes!(instance))
}

/// The retrieval of `target` for `caller`: 404 outside the scope or when
/// nothing matches, 406 when a file cannot be sent as asked, else the
/// multipart answer, audited.
async fn retrieve(
    caller: Caller,
    archive: &Archive,
    headers: &HeaderMap,
    target: Target<'_>,
) -> Result<Response, ApiError> {
    let opened = target.open(&caller, archive, "dicomweb.retrieve").await?;
    let wanted = accept::dicom(headers)?;
    let hits = archive
        .index()
        .search_instances(&target.search(), &opened.scope)
        .await?;
    target.check_found(&caller, &opened, hits.len()).await?;
    if let Some(refused) = hits
        .iter()
        .find(|hit| !wanted.allows(&hit.transfer_syntax_uid))
    {
        return Err(ApiError::NotAcceptable(format!(
            "instance {} is stored as {}, which the Accept header does not allow \
             (ask for transfer-syntax=* or that syntax; transcoding is not offered yet)",
            refused.sop_instance_uid, refused.transfer_syntax_uid
        )));
    }
    caller.audit(&opened.record).await?;
    Ok(multipart(archive, hits))
}

/// The multipart answer: each part's header, the file, its end.
fn multipart(archive: &Archive, hits: Vec<InstanceHit>) -> Response {
    let boundary = format!("telerad-{:016x}", rand::random::<u64>());
    let files: Vec<(PathBuf, String)> = hits
        .into_iter()
        .map(|hit| {
            (
                archive.layout().absolute(&hit.path),
                hit.transfer_syntax_uid,
            )
        })
        .collect();
    let parts_boundary = boundary.clone();
    let parts = stream::iter(files).flat_map(move |(path, syntax)| {
        let head = Bytes::from(format!(
            "--{parts_boundary}\r\nContent-Type: application/dicom; transfer-syntax={syntax}\r\n\r\n"
        ));
        stream::once(async move { Ok(head) })
            .chain(file_chunks(path))
            .chain(stream::once(async { Ok(Bytes::from_static(b"\r\n")) }))
    });
    let end = stream::once({
        let end = format!("--{boundary}--\r\n");
        async move { Ok::<Bytes, std::io::Error>(Bytes::from(end)) }
    });
    let content_type =
        format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
    (
        [(CONTENT_TYPE, content_type)],
        Body::from_stream(parts.chain(end)),
    )
        .into_response()
}

/// A stored file in chunks; a file gone from the disk ends the answer
/// with an error (the client sees a cut response, never a wrong one).
fn file_chunks(path: PathBuf) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    stream::once(async move { tokio::fs::File::open(&path).await.map(|f| (f, path)) }).flat_map(
        |opened| match opened {
            Ok((file, _)) => tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).boxed(),
            Err(e) => {
                tracing::error!("DICOMweb retrieval: a stored file cannot be read: {e}");
                stream::once(async move { Err(e) }).boxed()
            }
        },
    )
}

/// Retrieves every instance of a study.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("Accept" = Option<String>, Header, description = "multipart/related; type=\"application/dicom\"; transfer-syntax=* (or the stored syntax)"),
    ),
    responses(
        (status = 200, description = "The instances, each part a Part 10 file", content_type = "multipart/related", body = String),
        (status = 406, description = "An instance is stored in a syntax the Accept header does not allow", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn study(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    Path(raw_study): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target::parse(&raw_study, None, None)?;
    retrieve(caller, &archive, &headers, target).await
}

/// Retrieves every instance of a series.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/series/{series}",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("series" = String, Path, description = "Series Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("Accept" = Option<String>, Header, description = "multipart/related; type=\"application/dicom\"; transfer-syntax=* (or the stored syntax)"),
    ),
    responses(
        (status = 200, description = "The instances, each part a Part 10 file", content_type = "multipart/related", body = String),
        (status = 406, description = "An instance is stored in a syntax the Accept header does not allow", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn series(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    Path((raw_study, raw_series)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target::parse(&raw_study, Some(&raw_series), None)?;
    retrieve(caller, &archive, &headers, target).await
}

/// Retrieves one instance.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/series/{series}/instances/{instance}",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("series" = String, Path, description = "Series Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("instance" = String, Path, description = "SOP Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("Accept" = Option<String>, Header, description = "multipart/related; type=\"application/dicom\"; transfer-syntax=* (or the stored syntax)"),
    ),
    responses(
        (status = 200, description = "The instance as a Part 10 file in a multipart answer", content_type = "multipart/related", body = String),
        (status = 406, description = "The instance is stored in a syntax the Accept header does not allow", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn instance(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    Path((raw_study, raw_series, raw_instance)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target::parse(&raw_study, Some(&raw_series), Some(&raw_instance))?;
    retrieve(caller, &archive, &headers, target).await
}
