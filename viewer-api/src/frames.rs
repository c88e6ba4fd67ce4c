//! WADO-RS frames and bulk data of one instance (PS3.18 §10.4.1.1.3,
//! §10.4.1.1.5), as stored: uncompressed frames as
//! `application/octet-stream`, compressed ones as their bit stream
//! (`image/jp2`, `image/jpeg`, `image/jls`, …), each a part of a
//! `multipart/related` answer in the order asked. Compressed frames are
//! decoded for a client that asks for `application/octet-stream` in the
//! default syntax; any other form is refused (406) before the file is
//! read.

use crate::accept;
use crate::decode::{DecodeError, native_frames};
use crate::target::{Opened, Target};
use axum::extract::{FromRef, Path, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use telerad_access::{Access, Caller};
use telerad_dicom::frames::{FrameError, Served, StoredPixels, media_type};
use telerad_dicom::transfer_syntax::{EXPLICIT_VR_LITTLE_ENDIAN, is_encapsulated};
use telerad_http::ApiError;
use telerad_store::Archive;
use telerad_store::audit::Outcome;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(frames))
        .routes(routes!(bulk_data))
}

/// Frames in one request: a multi-frame ultrasound loop has a few
/// hundred.
const MAX_FRAMES: usize = 10_000;

/// `1,2,3` → the frame numbers, in order; each from 1.
fn frame_list(raw: &str) -> Result<Vec<u32>, ApiError> {
    let numbers: Vec<u32> = raw
        .split(',')
        .map(|n| {
            n.trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "frame list {raw:?}: frame numbers are whole numbers from 1, separated by commas"
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    if numbers.len() > MAX_FRAMES {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_FRAMES} frames per request"
        )));
    }
    // A frame named twice would be sent twice: `1,1,1,…` would make an
    // answer thousands of times the instance's size.
    let mut seen = std::collections::HashSet::with_capacity(numbers.len());
    if let Some(again) = numbers.iter().find(|n| !seen.insert(**n)) {
        return Err(ApiError::BadRequest(format!(
            "frame list {raw:?}: frame {again} is named twice"
        )));
    }
    Ok(numbers)
}

/// What is read from the stored file.
enum Wanted {
    Frames(Vec<u32>),
    Attribute(dicom_core::Tag),
}

/// The checks of every request here, then the file read on a blocking
/// thread and the parts answered.
async fn serve(
    caller: Caller,
    archive: &Archive,
    headers: &HeaderMap,
    target: Target<'_>,
    wanted: Wanted,
) -> Result<Response, ApiError> {
    let (opened, hits) = target.found(&caller, archive, "dicomweb.retrieve").await?;
    let Some(hit) = hits.into_iter().next() else {
        return Err(ApiError::Internal("an instance found and then not".into()));
    };
    let stored_syntax = hit.transfer_syntax_uid.trim_end_matches('\0');
    let pixels = match &wanted {
        Wanted::Frames(_) => true,
        Wanted::Attribute(tag) => *tag == dicom_dictionary_std::tags::PIXEL_DATA,
    };
    let syntax = if pixels && is_encapsulated(stored_syntax) {
        stored_syntax
    } else {
        EXPLICIT_VR_LITTLE_ENDIAN
    };
    // As stored when the request allows it; compressed pixels decoded
    // when it asks for uncompressed ones.
    let (media, decoded) = match accept::frames(headers, syntax, media_type(syntax)) {
        Ok(media) => (media, false),
        Err(_)
            if pixels
                && syntax != EXPLICIT_VR_LITTLE_ENDIAN
                && accept::uncompressed_frames(headers) =>
        {
            ("application/octet-stream".to_string(), true)
        }
        Err(e) => return Err(e),
    };
    let path = archive.layout().absolute(&hit.path);
    let read = tokio::task::spawn_blocking(move || match (decoded, wanted) {
        (true, wanted) => {
            let numbers = match &wanted {
                Wanted::Frames(numbers) => Some(numbers.as_slice()),
                Wanted::Attribute(_) => None,
            };
            native_frames(&path, numbers)
                .map(|frames| {
                    frames
                        .into_iter()
                        .map(|bytes| Served {
                            bytes,
                            transfer_syntax: EXPLICIT_VR_LITTLE_ENDIAN.to_string(),
                        })
                        .collect()
                })
                .map_err(Refusal::Decode)
        }
        (false, Wanted::Frames(numbers)) => StoredPixels::open(&path)
            .and_then(|stored| stored.frames(&numbers))
            .map_err(Refusal::Frame),
        (false, Wanted::Attribute(tag)) => StoredPixels::open(&path)
            .and_then(|stored| stored.bulk_data(tag))
            .map_err(Refusal::Frame),
    })
    .await
    .map_err(|e| ApiError::Internal(format!("the frame task failed: {e}")))?;
    let parts = match read {
        Ok(parts) => parts,
        Err(e) => return Err(refused(&caller, &opened, e).await),
    };
    caller.audit(&opened.record).await?;
    Ok(multipart(&media, parts))
}

/// Why frames were not served.
enum Refusal {
    Frame(FrameError),
    Decode(DecodeError),
}

/// A frame or attribute that is not there is a 404, audited as failed; a
/// file that cannot be read is the server's fault.
async fn refused(caller: &Caller, opened: &Opened, error: Refusal) -> ApiError {
    let (missing, unsupported, message) = match &error {
        Refusal::Frame(e) => (
            matches!(
                e,
                FrameError::OutOfRange { .. }
                    | FrameError::NoPixelData
                    | FrameError::NoSuchAttribute(_)
                    | FrameError::NotBulkData(_)
            ),
            false,
            e.to_string(),
        ),
        Refusal::Decode(e) => (
            matches!(e, DecodeError::OutOfRange { .. } | DecodeError::NoPixelData),
            matches!(e, DecodeError::Unsupported(_)),
            e.to_string(),
        ),
    };
    let answer = if missing {
        ApiError::NotFound(message)
    } else if unsupported {
        ApiError::NotAcceptable(message)
    } else {
        tracing::error!("WADO-RS frames: {message}");
        ApiError::Internal(message)
    };
    caller
        .not_done(opened.record.clone(), Outcome::Failed, answer)
        .await
}

/// The parts, each of `media` with its syntax.
fn multipart(media: &str, parts: Vec<Served>) -> Response {
    let boundary = format!("telerad-{:016x}", rand::random::<u64>());
    let size: usize = parts.iter().map(|p| p.bytes.len() + 128).sum();
    let mut body = Vec::with_capacity(size + 64);
    for part in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: {media}; transfer-syntax={}\r\n\r\n",
                part.transfer_syntax
            )
            .as_bytes(),
        );
        body.extend_from_slice(&part.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        [(
            CONTENT_TYPE,
            format!("multipart/related; type=\"{media}\"; boundary={boundary}"),
        )],
        body,
    )
        .into_response()
}

/// Frames of one instance, as stored.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("series" = String, Path, description = "Series Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("instance" = String, Path, description = "SOP Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("frames" = String, Path, description = "Frame numbers from 1, separated by commas", pattern = r"^[0-9]+(,[0-9]+)*$"),
        ("Accept" = Option<String>, Header, description = "multipart/related; type=\"application/octet-stream\" (uncompressed), or the stored frames' type (image/jp2, image/jpeg, image/jls, image/dicom-rle), or transfer-syntax=*"),
    ),
    responses(
        (status = 200, description = "The frames, one part each, in the order asked", content_type = "multipart/related", body = String),
        (status = 406, description = "The frames are stored in a syntax the Accept header does not allow", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn frames(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    Path((raw_study, raw_series, raw_instance, raw_frames)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target::parse(&raw_study, Some(&raw_series), Some(&raw_instance))?;
    let numbers = frame_list(&raw_frames)?;
    serve(caller, &archive, &headers, target, Wanted::Frames(numbers)).await
}

/// The bulk data a metadata `BulkDataURI` names: a binary attribute of the
/// instance, or its pixel data (compressed pixel data frame by frame).
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/series/{series}/instances/{instance}/bulkdata/{tag}",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("series" = String, Path, description = "Series Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("instance" = String, Path, description = "SOP Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("tag" = String, Path, description = "The attribute's tag, eight hexadecimal digits", pattern = r"^[0-9A-Fa-f]{8}$"),
    ),
    responses(
        (status = 200, description = "The value, in one part (or one per frame of compressed pixel data)", content_type = "multipart/related", body = String),
        (status = 406, description = "The value is stored in a syntax the Accept header does not allow", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn bulk_data(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    Path((raw_study, raw_series, raw_instance, raw_tag)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target::parse(&raw_study, Some(&raw_series), Some(&raw_instance))?;
    let tag = u32::from_str_radix(&raw_tag, 16)
        .ok()
        .filter(|_| raw_tag.len() == 8)
        .map(|t| dicom_core::Tag((t >> 16) as u16, (t & 0xFFFF) as u16))
        .ok_or_else(|| {
            ApiError::BadRequest(format!("tag {raw_tag:?}: eight hexadecimal digits"))
        })?;
    serve(caller, &archive, &headers, target, Wanted::Attribute(tag)).await
}

#[cfg(test)]
mod tests {
    use super::frame_list;

    #[test]
    fn frame_lists_are_numbers_from_one() {
        assert_eq!(frame_list("1").expect("one"), [1]);
        assert_eq!(frame_list("3,1,2").expect("three"), [3, 1, 2]);
        for bad in ["", "0", "1,,2", "-1", "1.5", "a", "99999999999", "1,2,1"] {
            assert!(frame_list(bad).is_err(), "{bad}");
        }
    }
}
