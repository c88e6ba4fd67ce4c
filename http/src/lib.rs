//! The HTTP plumbing every telerad API shares, so that a client reads them
//! all the same way: [`ApiError`] (each failure mapped once to a status and
//! a JSON `{"error": ...}` body), the layer that gives axum's and tower's
//! own error answers that body too ([`json_errors`]), keyset paging
//! ([`paging`]), the request body limit, the not-found answer, and
//! [`with_common_layers`], which the `telerad` binary applies once to the
//! merged routes of `telerad-operations` and `telerad-worklist` (and of
//! `telerad-viewer-api` when it comes).
//!
//! It is not for routes or domain logic: it knows no resource, and depends
//! on no telerad crate, so that every HTTP crate can sit on it without
//! reaching sideways into another. Conversions from a domain's errors to
//! [`ApiError`] live with the routes that call that domain.

pub mod body_limit;
pub mod error;
pub mod headers;
pub mod json_errors;
pub mod language;
pub mod nul_guard;
pub mod openapi;
pub mod paging;

use axum::Router;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

/// Request bodies are small JSON documents; anything larger is refused.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// `routes`, every API's merged and given their state, answering unknown
/// paths with a JSON 404, refusing bodies over [`MAX_BODY_BYTES`] (but
/// for STOW-RS, [`body_limit`]) and requests carrying a NUL character
/// ([`nul_guard`]), with every error body JSON (in French to a request
/// preferring it, [`language`]), the security headers on every answer
/// (HSTS when served over `https`) and every request traced.
pub fn with_common_layers(routes: Router, https: bool) -> Router {
    let routes = routes
        .fallback(not_found)
        // Inside the body limit, which it relies on to buffer a JSON body.
        .layer(axum::middleware::from_fn(nul_guard::refuse_nul))
        .layer(axum::middleware::from_fn(body_limit::limit))
        // Outside the body limit, so that its 413 is JSON too.
        .layer(axum::middleware::from_fn(json_errors::json_errors))
        .layer(axum::middleware::from_fn(language::french_errors));
    headers::with_security_headers(routes, https).layer(TraceLayer::new_for_http())
}

/// The answer to a path no route has.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such resource: {}", uri.path()))
}
