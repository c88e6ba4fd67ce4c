//! Refusals in the language the request prefers: an [`crate::ApiError`]
//! with French words ([`crate::ApiError::said`]) leaves them on its
//! response, and this layer answers them to a request whose
//! `Accept-Language` prefers French over English. Without a preference the
//! API answers in English, as its clients have always read it; telerad's
//! pages send their own language with every call.

use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{ACCEPT_LANGUAGE, CONTENT_LANGUAGE, CONTENT_LENGTH, VARY};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;
use telerad_lang::Lang;

/// A refusal's French words, on its response until this layer has run.
#[derive(Debug, Clone)]
pub struct French(pub String);

/// Middleware: the French body for a request that prefers French.
pub async fn french_errors(request: Request, next: Next) -> Response {
    // Kept aside, read only for a refusal that has French words.
    let asked = request.headers().get(ACCEPT_LANGUAGE).cloned();
    let mut response = next.run(request).await;
    let Some(French(french)) = response.extensions_mut().remove::<French>() else {
        return response;
    };
    let wants_french = asked
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::preferred)
        == Some(Lang::Fr);
    // The body depends on the request's language from here on.
    response
        .headers_mut()
        .append(VARY, HeaderValue::from_static("accept-language"));
    if !wants_french {
        response
            .headers_mut()
            .insert(CONTENT_LANGUAGE, HeaderValue::from_static("en"));
        return response;
    }
    let (mut parts, _english) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_LANGUAGE, HeaderValue::from_static("fr"));
    let body = json!({ "error": french }).to_string();
    Response::from_parts(parts, Body::from(body))
}
