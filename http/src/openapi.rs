//! What every API's OpenAPI description shares: the error body, the two
//! ways to authenticate, and the status codes each kind of route may
//! answer, so that each handler's description names only its own.

use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder, SecurityRequirement};
use utoipa::{PartialSchema, ToSchema};

/// The body of every error answer (see [`crate::ApiError`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What was wrong with the request, in a sentence: in French when the
    /// request's `Accept-Language` prefers French and the refusal has
    /// French words (the answer then says `Content-Language: fr`), else in
    /// English.
    pub error: String,
}

/// Name of the Bearer scheme (a session or an API token).
pub const BEARER: &str = "bearer";
/// Name of the session-cookie scheme of the pages.
pub const SESSION_COOKIE: &str = "session";

/// Adds the security schemes to `api` and requires one of them on every
/// operation that does not already say otherwise (login and health say
/// `security(())`: open); then gives every operation the error answers
/// any of them may give (see [`add_common_errors`]).
pub fn secure(mut api: OpenApi, cookie_name: &str) -> OpenApi {
    let components = api.components.get_or_insert_with(Default::default);
    // Every error answer refers to this one schema.
    components
        .schemas
        .insert("ErrorBody".to_owned(), ErrorBody::schema());
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A session token from POST /api/login, or an API token from \
                     `telerad token create`.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        SESSION_COOKIE,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            cookie_name,
            "The session cookie set by POST /api/login; a change also needs \
             the X-CSRF-Token header.",
        ))),
    );
    let required = vec![
        SecurityRequirement::new(BEARER, Vec::<String>::new()),
        SecurityRequirement::new(SESSION_COOKIE, Vec::<String>::new()),
    ];
    for (path, item) in api.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            if operation.security.is_none() {
                operation.security = Some(required.clone());
            }
            add_common_errors(operation);
            operation.operation_id = Some(operation_id(method, path));
        }
    }
    api
}

/// An operation's id from its method and path (`GET
/// /api/studies/{study_uid}/report` is `get_studies_study_uid_report`):
/// unique, as OpenAPI requires, where handlers' names (`list`, `show`)
/// repeat from one module to the next.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<String> = path
        .strip_prefix("/api/")
        .unwrap_or(path)
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    format!("{method}_{}", words.join("_"))
}

/// The answers every handler may give besides its own: a malformed path,
/// query or body (400), no or an expired session (401) and a role that
/// never may (403) where authentication is required, something outside
/// the caller's scope or absent (404), a body over the limit (413), the
/// database out of reach (503). A handler's own description of one of
/// these is kept.
fn add_common_errors(operation: &mut Operation) {
    let open = operation
        .security
        .as_ref()
        .is_some_and(|requirements| requirements.iter().all(is_empty_requirement));
    let mut common = vec![
        (
            "400",
            "The request is malformed; the message says what is wrong",
        ),
        ("404", "No such resource, or not within the caller's scope"),
        ("503", "The database is out of reach; try again"),
    ];
    if !open {
        common.push(("401", "Not signed in, or the session has expired"));
        common.push(("403", "The caller's role never allows this"));
    }
    if operation.request_body.is_some() {
        common.push(("413", "The request body is over the limit"));
    }
    for (status, description) in common {
        if operation.responses.responses.contains_key(status) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .insert(status.to_owned(), response.into());
    }
}

/// `security(())` in a handler's description: no authentication.
fn is_empty_requirement(requirement: &SecurityRequirement) -> bool {
    requirement == &SecurityRequirement::default()
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
        ("head", item.head.as_mut()),
        ("options", item.options.as_mut()),
        ("trace", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
}

#[cfg(test)]
mod tests {
    use super::operation_id;

    #[test]
    fn operation_ids_follow_method_and_path() {
        assert_eq!(
            operation_id("get", "/api/studies/{study_uid}/report"),
            "get_studies_study_uid_report"
        );
        assert_eq!(operation_id("get", "/healthz"), "get_healthz");
        assert_eq!(operation_id("get", "/api/openapi.json"), "get_openapi_json");
    }
}
