//! The person a page is for: a [`Caller`] signed in with the session
//! cookie, the language their browser asks for, and the CSRF token the
//! page's script sends back with each change it asks the API for.
//!
//! A page asked without a valid session is not an error to its reader:
//! the answer is the login page, which brings them back afterwards.

use crate::lang::Lang;
use crate::lang::PageLang as _;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;
use telerad_access::caller::SESSION_COOKIE;
use telerad_access::{Access, Caller};
use telerad_http::ApiError;

pub struct Visitor {
    pub caller: Caller,
    pub lang: Lang,
    pub csrf: String,
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, token)| token.to_string())
}

/// Why a page is not shown.
pub enum Refusal {
    /// To the login page, then back to `next`; `expired` when a session
    /// was presented and is no longer valid.
    SignIn { next: String, expired: bool },
    /// An error page, in the page's language.
    Failed(ApiError, Lang),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn { next, expired } => {
                let mut target = format!("/login?next={}", crate::url::encode(&next));
                if expired {
                    target.push_str("&expired=1");
                }
                Redirect::to(&target).into_response()
            }
            Refusal::Failed(error, lang) => {
                error.log();
                let status = error.status();
                let text = error.message_in(lang);
                (status, crate::plain_page(lang, status, &text)).into_response()
            }
        }
    }
}

impl<S> FromRequestParts<S> for Visitor
where
    Arc<Access>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Visitor, Refusal> {
        let lang = Lang::of(&parts.headers);
        let next = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        // Only the cookie: a page is a browser's, and its script's calls
        // to the API carry the CSRF token derived from it.
        let Some(token) = session_cookie(&parts.headers) else {
            return Err(Refusal::SignIn {
                next,
                expired: false,
            });
        };
        match Caller::from_request_parts(parts, state).await {
            Ok(caller) => Ok(Visitor {
                caller,
                lang,
                csrf: telerad_access::token::csrf(&token),
            }),
            // By status: the refusal may carry its French words.
            Err(e) if e.status() == StatusCode::UNAUTHORIZED => Err(Refusal::SignIn {
                next,
                expired: true,
            }),
            Err(other) => Err(Refusal::Failed(other, lang)),
        }
    }
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::SignIn { .. } => StatusCode::SEE_OTHER,
            Refusal::Failed(e, _) => e.status(),
        }
    }
}
