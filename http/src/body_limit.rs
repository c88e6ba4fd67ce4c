//! The request body limit: small JSON documents everywhere, but for the
//! one route that takes images over HTTP (STOW-RS, `POST
//! /dicom-web/studies…`), whose handler streams each instance to disk
//! under the archive's own per-instance limit and never holds the body.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, MAX_BODY_BYTES};

/// Whether `request` is a STOW-RS store, exempt from [`MAX_BODY_BYTES`].
pub fn is_store(request: &Request) -> bool {
    request.method() == Method::POST && request.uri().path().starts_with("/dicom-web/studies")
}

/// Middleware: refuses a declared length over [`MAX_BODY_BYTES`] at once,
/// and cuts a chunked body at it (the reader then sees a length error,
/// answered 413), except for a STOW-RS store.
pub async fn limit(request: Request, next: Next) -> Response {
    if is_store(&request) {
        return next.run(request).await;
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return ApiError::too_large().into_response();
    }
    let (parts, body) = request.into_parts();
    let limited = Body::new(http_body_util::Limited::new(body, MAX_BODY_BYTES));
    next.run(Request::from_parts(parts, limited)).await
}
