//! WADO-RS rendered resources and thumbnails (PS3.18 §9.5, §9.6): a
//! frame decoded, windowed and encoded as JPEG (the default) or PNG, with
//! the query parameters of PS3.18 §8.3.5.1 (`window`, `viewport`,
//! `quality`) and telerad's `preset` (brain, stroke, subdural, bone, lung,
//! mediastinum, abdomen, liver).
//!
//! A thumbnail is a small rendering: of an instance's first frame, of the
//! middle instance of a series, or of the middle of a study's first
//! series.

use crate::decode::DecodeError;
use crate::render::{DEFAULT_QUALITY, Format, Rendering, render};
use crate::render_cache::RenderCache;
use crate::target::{Opened, Target};
use crate::window::Window;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use telerad_access::{Access, Caller};
use telerad_http::ApiError;
use telerad_store::Archive;
use telerad_store::audit::Outcome;
use telerad_store::qido::InstanceHit;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    Arc<RenderCache>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(instance_rendered))
        .routes(routes!(frame_rendered))
        .routes(routes!(instance_thumbnail))
        .routes(routes!(series_thumbnail))
        .routes(routes!(study_thumbnail))
}

/// The largest viewport served: a 4K screen.
const MAX_VIEWPORT: u32 = 4096;
/// A thumbnail's viewport when none is asked for.
const THUMBNAIL: (u32, u32) = (128, 128);

/// The query parameters of a rendering.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RenderQuery {
    /// `center,width[,linear|linear-exact|sigmoid]`, in modality units
    /// (Hounsfield units for CT).
    window: Option<String>,
    /// A named CT window: brain, stroke, subdural, bone, lung,
    /// mediastinum, abdomen, liver (ignored when `window` is given).
    preset: Option<String>,
    /// `width,height`: the largest picture wanted; the aspect is kept.
    viewport: Option<String>,
    /// JPEG quality, 1–100 (default 90).
    quality: Option<String>,
}

impl RenderQuery {
    fn rendering(
        &self,
        format: Format,
        default_viewport: Option<(u32, u32)>,
    ) -> Result<Rendering, ApiError> {
        let window = match (&self.window, &self.preset) {
            (Some(window), _) => Some(Window::parse(window)?),
            (None, Some(preset)) => Some(Window::preset(preset)?),
            (None, None) => None,
        };
        let viewport = match &self.viewport {
            Some(raw) => Some(viewport(raw)?),
            None => default_viewport,
        };
        let quality = match &self.quality {
            Some(raw) => raw
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|q| (1..=100).contains(q))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("quality {raw:?}: a whole number from 1 to 100"))
                })?,
            None => DEFAULT_QUALITY,
        };
        Ok(Rendering {
            window,
            viewport,
            quality,
            format,
        })
    }
}

/// `width,height`, each 1 to [`MAX_VIEWPORT`].
fn viewport(raw: &str) -> Result<(u32, u32), ApiError> {
    let side = |s: Option<&str>| {
        s.and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|n| (1..=MAX_VIEWPORT).contains(n))
    };
    let mut parts = raw.split(',');
    match (side(parts.next()), side(parts.next()), parts.next()) {
        (Some(w), Some(h), None) => Ok((w, h)),
        _ => Err(ApiError::BadRequest(format!(
            "viewport {raw:?}: width,height, each from 1 to {MAX_VIEWPORT}"
        ))),
    }
}

/// JPEG unless the client asks for PNG (or allows only PNG); 406 when it
/// allows neither.
fn format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Format::Jpeg);
    };
    for range in accept.split(',') {
        let media = range.split(';').next().unwrap_or_default().trim();
        match media.to_ascii_lowercase().as_str() {
            "image/jpeg" | "image/*" | "*/*" => return Ok(Format::Jpeg),
            "image/png" => return Ok(Format::Png),
            _ => {}
        }
    }
    Err(ApiError::NotAcceptable(format!(
        "Accept {accept:?}: rendered frames are image/jpeg or image/png"
    )))
}

/// Which instance of those found is shown.
#[derive(Debug, Clone, Copy)]
enum Pick {
    /// The one the path names.
    Named,
    /// The middle instance of the first series found.
    Middle,
}

fn pick(hits: Vec<InstanceHit>, how: Pick) -> Option<InstanceHit> {
    match how {
        Pick::Named => hits.into_iter().next(),
        Pick::Middle => {
            let series = hits.first()?.series_instance_uid.clone();
            let mut of_series: Vec<InstanceHit> = hits
                .into_iter()
                .filter(|h| h.series_instance_uid == series)
                .collect();
            let middle = of_series.len() / 2;
            Some(of_series.swap_remove(middle))
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn rendered(
    caller: Caller,
    archive: &Archive,
    cache: &Arc<RenderCache>,
    headers: &HeaderMap,
    query: &RenderQuery,
    target: Target<'_>,
    how: Pick,
    frame: u32,
    default_viewport: Option<(u32, u32)>,
) -> Result<Response, ApiError> {
    let format = format(headers)?;
    let rendering = query.rendering(format, default_viewport)?;
    let (opened, hits) = target.found(&caller, archive, "dicomweb.retrieve").await?;
    let Some(hit) = pick(hits, how) else {
        return Err(ApiError::Internal("instances found and then not".into()));
    };
    let key = RenderCache::key(&hit.path, frame, &rendering);
    let picture = match cache.get(&key) {
        Some(picture) => picture,
        None => {
            let absolute = archive.layout().absolute(&hit.path);
            let kept = cache.clone();
            let path = hit.path.clone();
            let picture = tokio::task::spawn_blocking(move || {
                kept.decoded(&path, &absolute, frame)
                    .map(|decoded| render(&decoded, &rendering))
            })
            .await
            .map_err(|e| ApiError::Internal(format!("the rendering task failed: {e}")))?;
            let picture = match picture {
                Ok(Ok(picture)) => RenderCache::picture(picture),
                Ok(Err(e)) => return Err(ApiError::Internal(e.to_string())),
                Err(e) => return Err(refused(&caller, &opened, e).await),
            };
            cache.insert(key, picture.clone());
            picture
        }
    };
    caller.audit(&opened.record).await?;
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static(format.media_type()))],
        picture,
    )
        .into_response())
}

async fn refused(caller: &Caller, opened: &Opened, error: DecodeError) -> ApiError {
    let answer = match &error {
        DecodeError::OutOfRange { .. } | DecodeError::NoPixelData => {
            ApiError::NotFound(error.to_string())
        }
        DecodeError::Unsupported(_) => ApiError::NotAcceptable(error.to_string()),
        DecodeError::Read(_) | DecodeError::Decode(_) => {
            tracing::error!("WADO-RS rendering: {error}");
            ApiError::Internal(error.to_string())
        }
    };
    caller
        .not_done(opened.record.clone(), Outcome::Failed, answer)
        .await
}

/// The first frame of an instance, rendered.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/series/{series}/instances/{instance}/rendered",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("series" = String, Path, description = "Series Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("instance" = String, Path, description = "SOP Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        RenderQuery,
    ),
    responses(
        (status = 200, description = "The picture", content_type = "image/jpeg", body = Vec<u8>),
        (status = 406, description = "The Accept header allows neither JPEG nor PNG", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn instance_rendered(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    State(cache): State<Arc<RenderCache>>,
    Path((raw_study, raw_series, raw_instance)): Path<(String, String, String)>,
    Query(query): Query<RenderQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target::parse(&raw_study, Some(&raw_series), Some(&raw_instance))?;
    rendered(
        caller,
        &archive,
        &cache,
        &headers,
        &query,
        target,
        Pick::Named,
        1,
        None,
    )
    .await
}

/// One frame of an instance, rendered.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("series" = String, Path, description = "Series Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("instance" = String, Path, description = "SOP Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("frames" = String, Path, description = "One frame number, from 1", pattern = r"^[0-9]+$"),
        RenderQuery,
    ),
    responses(
        (status = 200, description = "The picture", content_type = "image/jpeg", body = Vec<u8>),
        (status = 406, description = "The Accept header allows neither JPEG nor PNG", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn frame_rendered(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    State(cache): State<Arc<RenderCache>>,
    Path((raw_study, raw_series, raw_instance, raw_frame)): Path<(String, String, String, String)>,
    Query(query): Query<RenderQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target::parse(&raw_study, Some(&raw_series), Some(&raw_instance))?;
    let frame = raw_frame
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "frame {raw_frame:?}: one frame number from 1 (a rendered answer is one picture)"
            ))
        })?;
    rendered(
        caller,
        &archive,
        &cache,
        &headers,
        &query,
        target,
        Pick::Named,
        frame,
        None,
    )
    .await
}

/// A small picture of an instance's first frame.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/series/{series}/instances/{instance}/thumbnail",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("series" = String, Path, description = "Series Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("instance" = String, Path, description = "SOP Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        RenderQuery,
    ),
    responses(
        (status = 200, description = "The picture, 128 × 128 at most unless a viewport is given", content_type = "image/jpeg", body = Vec<u8>),
        (status = 406, description = "The Accept header allows neither JPEG nor PNG", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn instance_thumbnail(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    State(cache): State<Arc<RenderCache>>,
    Path((raw_study, raw_series, raw_instance)): Path<(String, String, String)>,
    Query(query): Query<RenderQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target::parse(&raw_study, Some(&raw_series), Some(&raw_instance))?;
    rendered(
        caller,
        &archive,
        &cache,
        &headers,
        &query,
        target,
        Pick::Named,
        1,
        Some(THUMBNAIL),
    )
    .await
}

/// A small picture of a series: its middle instance.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/series/{series}/thumbnail",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("series" = String, Path, description = "Series Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        RenderQuery,
    ),
    responses(
        (status = 200, description = "The picture, 128 × 128 at most unless a viewport is given", content_type = "image/jpeg", body = Vec<u8>),
        (status = 406, description = "The Accept header allows neither JPEG nor PNG", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn series_thumbnail(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    State(cache): State<Arc<RenderCache>>,
    Path((raw_study, raw_series)): Path<(String, String)>,
    Query(query): Query<RenderQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target::parse(&raw_study, Some(&raw_series), None)?;
    rendered(
        caller,
        &archive,
        &cache,
        &headers,
        &query,
        target,
        Pick::Middle,
        1,
        Some(THUMBNAIL),
    )
    .await
}

/// A small picture of a study: the middle instance of its first series.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/thumbnail",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        RenderQuery,
    ),
    responses(
        (status = 200, description = "The picture, 128 × 128 at most unless a viewport is given", content_type = "image/jpeg", body = Vec<u8>),
        (status = 406, description = "The Accept header allows neither JPEG nor PNG", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn study_thumbnail(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    State(cache): State<Arc<RenderCache>>,
    Path(raw_study): Path<String>,
    Query(query): Query<RenderQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target::parse(&raw_study, None, None)?;
    rendered(
        caller,
        &archive,
        &cache,
        &headers,
        &query,
        target,
        Pick::Middle,
        1,
        Some(THUMBNAIL),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the study's completion prepares is what `/rendered` without
    /// parameters asks for: else the cache would never be hit.
    #[test]
    fn the_prepared_rendering_is_the_one_asked_without_parameters() {
        let asked = RenderQuery::default()
            .rendering(Format::Jpeg, None)
            .expect("a rendering");
        assert_eq!(
            RenderCache::key("studies/a/b/c.dcm", 1, &asked),
            RenderCache::key("studies/a/b/c.dcm", 1, &crate::render::Rendering::DEFAULT)
        );
    }

    #[test]
    fn viewports_are_two_sides_within_bounds() {
        assert_eq!(viewport("512,256").expect("a viewport"), (512, 256));
        for bad in ["", "512", "0,10", "10,0", "5000,10", "a,b", "1,2,3", "-1,5"] {
            assert!(viewport(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jpeg_unless_png_is_asked_for() {
        let with = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, HeaderValue::from_str(accept).expect("a header"));
            format(&headers)
        };
        assert_eq!(format(&HeaderMap::new()).ok(), Some(Format::Jpeg));
        assert_eq!(with("image/png").ok(), Some(Format::Png));
        assert_eq!(with("image/png, image/jpeg").ok(), Some(Format::Png));
        assert_eq!(with("text/html, */*;q=0.8").ok(), Some(Format::Jpeg));
        assert!(matches!(
            with("application/dicom"),
            Err(ApiError::NotAcceptable(_))
        ));
    }
}
