//! How every list endpoint pages: `limit` (1 to [`MAX_LIMIT`], default
//! [`DEFAULT_LIMIT`]) and an opaque `cursor`; the answer is
//! `{"items": [...], "next_cursor": ..., "next": ...}` where `next` is the
//! URL of the following page, `null` on the last one. A list is never cut
//! without saying so.

use crate::error::ApiError;
use serde::Serialize;
use std::fmt::Write as _;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// One page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The `cursor` of the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// The path and query of the next page, same filters and limit.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// `items`, and if `next_cursor` is set, the URL of the next page: `path`
    /// with `filters`, `limit` and the cursor.
    pub fn new(
        items: Vec<T>,
        path: &str,
        filters: &[(&str, Option<&str>)],
        limit: i64,
        next_cursor: Option<String>,
    ) -> Page<T> {
        let next = next_cursor.as_deref().map(|cursor| {
            let mut url = format!("{path}?");
            for (key, value) in filters {
                if let Some(value) = value {
                    let _ = write!(url, "{key}={}&", encode(value));
                }
            }
            let _ = write!(url, "limit={limit}&cursor={}", encode(cursor));
            url
        });
        Page {
            items,
            next_cursor,
            next,
        }
    }
}

/// A row id written in a path or a cursor (a form, a delivery, a forward
/// job...): a positive integer, or a 400 saying what was `expected`.
pub fn row_id(text: &str, expected: &str) -> Result<i64, ApiError> {
    text.parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::BadRequest(format!("{text:?}: expected {expected}")))
}

/// The page size asked for, checked.
pub fn limit(asked: Option<i64>) -> Result<i64, ApiError> {
    let limit = asked.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::BadRequest(format!(
            "limit {limit}: expected 1 to {MAX_LIMIT}"
        )))
    }
}

/// Percent-encodes all but RFC 3986 unreserved characters.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_url_keeps_the_filters_encoded() {
        let page = Page::new(
            vec![1],
            "/api/studies",
            &[
                ("status", Some("complete")),
                ("site", Some("ch a&b")),
                ("x", None),
            ],
            2,
            Some("17.4".to_owned()),
        );
        assert_eq!(
            page.next.as_deref(),
            Some("/api/studies?status=complete&site=ch%20a%26b&limit=2&cursor=17.4")
        );
    }

    #[test]
    fn last_page_has_no_next() {
        let page = Page::new(vec![1], "/api/forwards", &[], 2, None);
        assert_eq!((page.next, page.next_cursor), (None, None));
    }

    #[test]
    fn limit_is_bounded() {
        assert_eq!(limit(None).ok(), Some(DEFAULT_LIMIT));
        assert_eq!(limit(Some(MAX_LIMIT)).ok(), Some(MAX_LIMIT));
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(MAX_LIMIT + 1)).is_err());
    }
}
