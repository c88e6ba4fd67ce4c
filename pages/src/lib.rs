//! The pages of `telerad serve`: server-rendered HTML on the same access
//! policy and audit as the API (a page reads through the same functions
//! the API's handlers call, under the signed-in person's [`Caller`]).
//!
//! Pages only read: the changes a page offers (claim a study, acknowledge
//! a critical result, sign out) are its script's calls to the JSON API with
//! the session's CSRF token, so that one handler, one policy decision and
//! one audit record serve the API and the pages alike. The exception is
//! signing in and changing one's password, plain forms that work without
//! the script.
//!
//! Nothing is inline: the content security policy allows this origin's own
//! script and style only.

pub mod admin;
pub mod admin_text;
pub mod assets;
pub mod board;
pub mod clock;
pub mod lang;
pub mod login;
pub mod reading;
pub mod reading_text;
pub mod request_form;
pub mod url;
pub mod visitor;
pub mod worklist;

use askama::Template;
use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use std::path::PathBuf;
use std::sync::Arc;
use telerad_access::Access;
use telerad_router::service::Router as RouterService;
use telerad_store::accounts::Role;
use visitor::Visitor;

/// What the pages need beyond the services.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The first administrator's password file: while it exists, the login
    /// page says where it is, and signing in with it asks for a new one.
    pub initial_password_file: PathBuf,
    /// The configured sites, as the administration page lists them.
    pub sites: Vec<SiteSummary>,
}

/// A site of the configuration, in words.
#[derive(Debug, Clone)]
pub struct SiteSummary {
    pub name: String,
    pub ae_titles: String,
    pub networks: String,
    pub time_zone: String,
}

pub fn routes<S>() -> axum::Router<S>
where
    Arc<Access>: FromRef<S>,
    Arc<RouterService>: FromRef<S>,
    Arc<Settings>: FromRef<S>,
    Arc<telerad_store::Archive>: FromRef<S>,
    Arc<telerad_store::outbox::Outbox>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    axum::Router::new()
        .route("/", get(home))
        .route("/login", get(login::form).post(login::submit))
        .route(
            "/account/password",
            get(login::password_form).post(login::change_password),
        )
        .route("/worklist", get(worklist::page))
        .route("/worklist/rows", get(worklist::rows))
        .route("/studies/{uid}", get(reading::page))
        .route("/admin", get(admin::page))
        .route("/forms/new", get(request_form::page))
        .route("/board", get(board::page))
        .route("/board/rows", get(board::rows))
        .route("/assets/{name}", get(assets::serve))
}

/// Where a person lands: radiologists and administrators on the
/// worklist, the sites' staff on their board.
async fn home(visitor: Result<Visitor, visitor::Refusal>) -> Response {
    match visitor {
        Ok(visitor) => match visitor.caller.principal().user.role {
            Role::Radiologist | Role::Admin => Redirect::to("/worklist").into_response(),
            _ => Redirect::to("/board").into_response(),
        },
        Err(refusal) => refusal.into_response(),
    }
}

/// A rendered template as an HTML answer; a template that fails to render
/// is a bug of this build, answered 500 and logged.
pub fn html(template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => ([(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!("a page failed to render: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                plain_page(
                    lang::Lang::En,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error",
                ),
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message<'a> {
    lang: &'a str,
    title: &'a str,
    text: &'a str,
}

/// A page that says one thing (an error) in `lang`, with the HTML content
/// type.
pub fn plain_page(lang: lang::Lang, status: StatusCode, text: &str) -> impl IntoResponse + use<> {
    let title = lang::status_title(lang, status);
    let body = Message {
        lang: lang.code(),
        title,
        text,
    }
    .render()
    .unwrap_or_else(|_| text.to_string());
    ([(CONTENT_TYPE, "text/html; charset=utf-8")], body)
}

#[cfg(test)]
mod tests {
    /// The content security policy allows no inline script or style: a
    /// template that had one would be a page that silently half works.
    #[test]
    fn templates_hold_nothing_inline() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("the templates") {
            let path = entry.expect("a template").path();
            let text = std::fs::read_to_string(&path).expect("its text");
            let lower = text.to_ascii_lowercase();
            seen += 1;
            assert!(
                !lower.contains(" style="),
                "{}: inline style",
                path.display()
            );
            assert!(
                !lower.contains("<style"),
                "{}: inline style",
                path.display()
            );
            assert!(
                !lower.contains("javascript:"),
                "{}: a javascript: address",
                path.display()
            );
            for (at, _) in lower.match_indices("<script") {
                let tag = &lower[at..lower[at..].find('>').map_or(lower.len(), |end| at + end)];
                assert!(tag.contains(" src="), "{}: inline script", path.display());
            }
            for handler in [
                " onclick=",
                " onload=",
                " onchange=",
                " onsubmit=",
                " oninput=",
            ] {
                assert!(!lower.contains(handler), "{}: {handler}", path.display());
            }
        }
        assert!(
            seen >= 8,
            "only {seen} templates read from {}",
            dir.display()
        );
    }
}
