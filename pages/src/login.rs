//! Signing in (`/login`) and changing one's password
//! (`/account/password`): plain forms, which work without the script.
//!
//! The login form is refused from another site's page (`Sec-Fetch-Site`,
//! `Origin`), so that nobody is signed in to an account not theirs; the
//! password form carries the session's CSRF token as a field. While the
//! first administrator's generated password file exists, the login page
//! says where it is, and signing in with it leads to choosing a new one
//! (the file is then removed).

use crate::lang::PageLang as _;
use crate::lang::{Lang, Text};
use crate::visitor::{Refusal, Visitor, session_cookie};
use crate::{Settings, html, url};
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::{HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;
use telerad_access::Access;
use telerad_access::caller::{Source, session_cookie as cookie_of};
use telerad_access::service::{AuthError, LoginError, ManageError, actor_of};
use telerad_store::accounts::Role;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    lang: &'static str,
    t: &'static Text,
    next: &'a str,
    login: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    first_start: bool,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
}

pub async fn form(
    State(settings): State<Arc<Settings>>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let lang = Lang::of(&headers);
    let t = lang.text();
    html(&LoginPage {
        lang: lang.code(),
        t,
        next: url::local_path(query.next.as_deref()),
        login: "",
        error: None,
        notice: query.expired.is_some().then_some(t.session_expired),
        first_start: settings.initial_password_file.exists(),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
    next: Option<String>,
}

/// Whether the form was posted from this site's own page. Browsers say so
/// in `Sec-Fetch-Site`; `Origin` is the fallback of those that do not, and
/// is `null` under this site's `Referrer-Policy: no-referrer`, so it cannot
/// come first.
fn same_site(headers: &HeaderMap, uri: &Uri) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    // HTTP/2 names the host in the request's authority, HTTP/1.1 in Host.
    let host = uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(HOST).and_then(|h| h.to_str().ok()));
    match (headers.get(ORIGIN), host) {
        (Some(origin), Some(host)) => origin
            .to_str()
            .ok()
            .and_then(|origin| origin.split_once("://"))
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

pub async fn submit(
    State(access): State<Arc<Access>>,
    State(settings): State<Arc<Settings>>,
    Source(source): Source,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let t = lang.text();
    let next = url::local_path(form.next.as_deref()).to_string();
    let again = |status: StatusCode, error: &str| {
        let mut response = html(&LoginPage {
            lang: lang.code(),
            t,
            next: &next,
            login: &form.login,
            error: Some(error),
            notice: None,
            first_start: settings.initial_password_file.exists(),
        });
        *response.status_mut() = status;
        response
    };
    if !same_site(&headers, &uri) {
        return again(StatusCode::FORBIDDEN, t.other_site);
    }
    let session = match access.login(&form.login, &form.password, &source).await {
        Ok(session) => session,
        Err(LoginError::Invalid) => return again(StatusCode::UNAUTHORIZED, t.wrong_credentials),
        Err(LoginError::Throttled(_)) => {
            return again(StatusCode::TOO_MANY_REQUESTS, t.throttled);
        }
        Err(LoginError::Database(e)) => {
            tracing::error!("login from a page: {e}");
            return again(StatusCode::SERVICE_UNAVAILABLE, t.action_failed);
        }
        Err(LoginError::Internal(m)) => {
            tracing::error!("login from a page: {m}");
            return again(StatusCode::INTERNAL_SERVER_ERROR, t.action_failed);
        }
    };
    let first_password = session.user.role == Role::Admin
        && std::fs::read_to_string(&settings.initial_password_file)
            .is_ok_and(|generated| generated.trim_end() == form.password);
    let target = if first_password {
        "/account/password?first=1"
    } else {
        next.as_str()
    };
    with_cookie(Redirect::to(target).into_response(), &session.token)
}

fn with_cookie(mut response: Response, token: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(&cookie_of(token)) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage<'a> {
    now: i64,
    lang: &'static str,
    t: &'static Text,
    csrf: &'a str,
    user_name: &'a str,
    role: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
pub struct PasswordQuery {
    first: Option<String>,
}

pub async fn password_form(visitor: Visitor, Query(query): Query<PasswordQuery>) -> Response {
    let t = visitor.lang.text();
    let user = &visitor.caller.principal().user;
    html(&PasswordPage {
        now: visitor.caller.now(),
        lang: visitor.lang.code(),
        t,
        csrf: &visitor.csrf,
        user_name: &user.name,
        role: user.role.as_str(),
        error: None,
        notice: query.first.is_some().then_some(t.must_change_password),
    })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    repeat: String,
}

pub async fn change_password(
    State(access): State<Arc<Access>>,
    State(settings): State<Arc<Settings>>,
    Source(source): Source,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let t = lang.text();
    let sign_in = || {
        Refusal::SignIn {
            next: "/account/password".into(),
            expired: true,
        }
        .into_response()
    };
    let Some(token) = session_cookie(&headers) else {
        return sign_in();
    };
    // The CSRF token comes as a form field: the form works without the
    // page's script, which alone could set the header the API asks for.
    if !same_site(&headers, &uri) || !telerad_access::token::csrf_matches(&token, &form.csrf) {
        return crate::plain_page(lang, StatusCode::FORBIDDEN, t.action_failed).into_response();
    }
    let who = match access.authenticate(&token).await {
        Ok(who) => who,
        Err(AuthError::Database(e)) => {
            tracing::error!("password change from a page: {e}");
            return crate::plain_page(lang, StatusCode::SERVICE_UNAVAILABLE, t.action_failed)
                .into_response();
        }
        Err(_) => return sign_in(),
    };
    let user = who.principal.user.clone();
    let again = |status: StatusCode, error: &str| {
        let mut response = html(&PasswordPage {
            now: access.now(),
            lang: lang.code(),
            t,
            csrf: &form.csrf,
            user_name: &user.name,
            role: user.role.as_str(),
            error: Some(error),
            notice: None,
        });
        *response.status_mut() = status;
        response
    };
    match access.reauthenticate(&user, &form.current).await {
        Ok(()) => {}
        Err(LoginError::Invalid) => return again(StatusCode::FORBIDDEN, t.wrong_credentials),
        Err(LoginError::Throttled(_)) => return again(StatusCode::TOO_MANY_REQUESTS, t.throttled),
        Err(_) => return again(StatusCode::SERVICE_UNAVAILABLE, t.action_failed),
    }
    if form.new != form.repeat {
        return again(StatusCode::BAD_REQUEST, t.passwords_differ);
    }
    let by = actor_of(&who.principal, &source);
    match access.set_password(&user.login, &form.new, &by).await {
        Ok(()) => {}
        Err(ManageError::Invalid(_) | ManageError::Password(_)) => {
            return again(StatusCode::BAD_REQUEST, t.password_too_short);
        }
        Err(e) => {
            tracing::error!("password change from a page: {e}");
            return again(StatusCode::SERVICE_UNAVAILABLE, t.action_failed);
        }
    }
    let was_first = user.role == Role::Admin
        && std::fs::read_to_string(&settings.initial_password_file)
            .is_ok_and(|generated| generated.trim_end() == form.current);
    if was_first && let Err(e) = std::fs::remove_file(&settings.initial_password_file) {
        tracing::warn!("cannot remove the first password's file: {e}");
    }
    // Setting a password ends the account's sessions, this one too: a new
    // one, so that the person carries on.
    match access.login(&user.login, &form.new, &source).await {
        Ok(session) => with_cookie(Redirect::to("/").into_response(), &session.token),
        Err(_) => Redirect::to("/login").into_response(),
    }
}
