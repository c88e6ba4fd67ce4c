//! The errors axum and tower answer by themselves (405 for a method a route
//! does not have, 413 for a body over the limit, a rejected extractor) come
//! with a plain-text or empty body. This layer gives them the same
//! `{"error": "..."}` JSON body as [`crate::ApiError`], so that a client
//! reads every failure the same way.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

/// Plain error bodies are a sentence; anything longer is not one of them.
const MAX_PLAIN_BODY: usize = 64 * 1024;

/// Middleware: an error response that is neither JSON nor a page is
/// rewritten as JSON, keeping its status and headers.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_PLAIN_BODY)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = match status {
        // axum adds the `Allow` header after this layer has run, so the
        // message points to it rather than repeating it.
        StatusCode::METHOD_NOT_ALLOWED => format!(
            "method {method} is not allowed on {path} (the Allow header lists those that are)"
        ),
        StatusCode::PAYLOAD_TOO_LARGE => crate::ApiError::too_large().to_string(),
        _ if !text.is_empty() => text,
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let body = json!({ "error": message }).to_string();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        // A page's error is a page (telerad-pages), and a STOW-RS failure
        // its DICOM JSON response data set: left as they are.
        .is_some_and(|value| {
            value.starts_with("application/json")
                || value.starts_with("application/dicom+json")
                || value.starts_with("text/html")
        })
}
