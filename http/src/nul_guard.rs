//! No field of the API takes the NUL character (U+0000), and PostgreSQL
//! refuses it in any text it stores or compares: left through, it would
//! reach a query and come back as a database failure (503) for what is a
//! malformed request. This layer answers such a request 400 before any
//! handler runs, whatever field it is in: the path, the query, or the
//! body (as the JSON escape `\u0000` or a raw zero byte), whatever the
//! body's declared type, as a handler may read JSON from any. Only DICOM
//! payloads (`application/dicom`, `multipart/related`), binary by nature,
//! are let through as they are.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

const REFUSAL: &str = "the request contains a NUL character (U+0000), which no field accepts";

/// Middleware: refuses a request carrying a NUL character.
pub async fn refuse_nul(request: Request, next: Next) -> Response {
    // In a URI, a NUL can only be written `%00` (and `%2500` is the text
    // "%00", which this does not match).
    let uri = request.uri();
    let in_uri = |text: &str| {
        text.as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
    };
    if in_uri(uri.path()) || uri.query().is_some_and(in_uri) {
        return ApiError::BadRequest(REFUSAL.into()).into_response();
    }
    if is_binary(&request) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    // Inside the body limit: a body over it fails here.
    let bytes = match axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) if over_limit(&e) => return ApiError::too_large().into_response(),
        Err(e) => {
            return ApiError::BadRequest(format!("the request body could not be read: {e}"))
                .into_response();
        }
    };
    if has_nul(&bytes) {
        return ApiError::BadRequest(REFUSAL.into()).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether reading the body failed on the length limit.
fn over_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// DICOM payloads: binary, with zero bytes of their own.
fn is_binary(request: &Request) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let media = value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            media == "application/dicom" || media.starts_with("multipart/")
        })
}

/// Whether a body holds a NUL: a raw zero byte, or the JSON escape
/// `\u0000` (not `\\u0000`, an escaped backslash before the text "u0000").
fn has_nul(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            0 => return true,
            b'\\' => {
                if bytes.get(i + 1) == Some(&b'u')
                    && bytes.get(i + 2..i + 6).is_some_and(|hex| hex == b"0000")
                {
                    return true;
                }
                // Whatever is escaped, it is not the start of another escape.
                i += 2;
            }
            _ => i += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::has_nul;

    #[test]
    fn finds_the_nul_escape_and_only_it() {
        assert!(has_nul(br#"{"a": "x\u0000y"}"#));
        assert!(has_nul(b"{\"a\": \"x\0\"}"));
        assert!(has_nul(br#"{"a": "\\\u0000"}"#));
        assert!(!has_nul(br#"{"a": "\\u0000"}"#));
        assert!(!has_nul(br#"{"a": "\u0001 \u00e9 u0000"}"#));
        assert!(!has_nul(br#"{"a": "ends with a backslash \\"}"#));
    }
}
