//! Filing a request form (`/forms/new`), for a site's technicians and
//! emergency physicians: the form of `POST /api/forms`, sent by the page's
//! script, whose answer names the field a refusal is about (a stroke
//! request without its onset time or NIHSS, say). The page shows only the
//! caller's own sites.

use crate::html;
use crate::lang::PageLang as _;
use crate::lang::Text;
use crate::visitor::{Refusal, Visitor};
use askama::Template;
use axum::response::{IntoResponse, Response};
use telerad_access::Action;

#[derive(Template)]
#[template(path = "request_form.html")]
struct FormPage<'a> {
    now: i64,
    lang: &'static str,
    t: &'static Text,
    csrf: &'a str,
    user_name: &'a str,
    role: &'a str,
    sites: &'a [String],
}

pub async fn page(visitor: Visitor) -> Response {
    if let Err(e) = visitor.caller.allow(Action::FileForm).await {
        return Refusal::Failed(e, visitor.lang).into_response();
    }
    let principal = visitor.caller.principal();
    html(&FormPage {
        now: visitor.caller.now(),
        lang: visitor.lang.code(),
        t: visitor.lang.text(),
        csrf: &visitor.csrf,
        user_name: &principal.user.name,
        role: principal.user.role.as_str(),
        sites: principal.sites(),
    })
}
