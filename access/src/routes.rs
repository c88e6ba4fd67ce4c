//! `POST /api/login`, `POST /api/logout`, `GET /api/me`, `GET` and
//! `POST /api/users`, `POST /api/users/{login}/tokens`, and
//! `GET /api/audit`.

use crate::caller::{Caller, Source};
use crate::policy::Action;
use crate::service::{Access, LoginError, ManageError, NewAccount};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_http::ApiError;
use telerad_http::paging::{self, Page};
use telerad_store::accounts::{self, AccountError, Role, User};
use telerad_store::audit::{AuditQuery, StoredRecord};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(list_users, create_user))
        .routes(routes!(create_token))
        .routes(routes!(create_viewer_token))
        .routes(routes!(audit_page))
        .routes(routes!(audit_fhir))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    login: String,
    #[schema(format = Password)]
    password: String,
}

// By hand: the password must never reach a log through `{:?}`.
impl std::fmt::Debug for LoginBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginBody")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

fn login_error(e: LoginError) -> ApiError {
    match e {
        LoginError::Invalid => ApiError::Unauthorized(e.to_string()),
        LoginError::Throttled(wait) => ApiError::TooManyRequests {
            message: e.to_string(),
            retry_after_secs: wait.as_secs().max(1),
        },
        LoginError::Database(e) => ApiError::Database(e),
        LoginError::Internal(m) => ApiError::Internal(m),
    }
}

/// Signs in with a login and a password.
///
/// The session's token in the body (for the API) and in an HttpOnly,
/// Secure, SameSite=Strict cookie (for pages, whose scripts cannot read
/// it); the CSRF token goes back in `X-CSRF-Token` with a cookie session.
#[utoipa::path(
    post,
    path = "/api/login",
    tag = "access",
    security(()),
    request_body = LoginBody,
    responses(
        (status = 200, description = "A new session: its token, also set in the session cookie",
            body = LoginAnswer,
            headers(("Set-Cookie" = String, description = "The session cookie (HttpOnly, Secure, SameSite=Strict)"))),
        (status = 401, description = "Wrong login or password (or a disabled account, or one without a password)",
            body = telerad_http::openapi::ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"telerad\"`"))),
        (status = 429, description = "Too many failed logins for the account or the address: throttled",
            body = telerad_http::openapi::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
async fn login(
    State(access): State<Arc<Access>>,
    Source(source): Source,
    json: Result<Json<LoginBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = json.map_err(|e| {
        ApiError::from_json_rejection(&e, "expected {\"login\": \"...\", \"password\": \"...\"}")
    })?;
    let session = access
        .login(&body.login, &body.password, &source)
        .await
        .map_err(login_error)?;
    let cookie = crate::caller::session_cookie(&session.token);
    let mut response = Json(LoginAnswer {
        token: &session.token,
        csrf_token: &session.csrf_token,
        expires_at: telerad_store::time::to_rfc3339(session.expires_at),
        user: &session.user,
    })
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Serialize, utoipa::ToSchema)]
struct LoginAnswer<'a> {
    /// The session token: `Authorization: Bearer <token>`.
    token: &'a str,
    /// To send in `X-CSRF-Token` with each change made with the session
    /// cookie.
    csrf_token: &'a str,
    #[schema(format = DateTime)]
    expires_at: String,
    user: &'a User,
}

/// Signs out.
///
/// Revokes the credential the request presents (the session, or the API
/// token itself) and clears the session cookie.
#[utoipa::path(
    post,
    path = "/api/logout",
    tag = "access",
    responses(
        (status = 204, description = "Revoked",
            headers(("Set-Cookie" = String, description = "Clears the session cookie"))),
    )
)]
async fn logout(caller: Caller) -> Result<Response, ApiError> {
    caller.access().logout(&caller.who, &caller.source).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        SET_COOKIE,
        HeaderValue::from_static(crate::caller::CLEARED_SESSION_COOKIE),
    );
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// The caller's account, as `GET /api/me` answers it.
#[derive(Serialize, utoipa::ToSchema)]
struct Me<'a> {
    #[serde(flatten)]
    user: &'a User,
    /// The sites whose studies the account may see (a radiologist's
    /// licence).
    licensed_sites: &'a [String],
    /// How the caller is signed in: a session or an API token.
    session: telerad_store::accounts::CredentialKind,
}

/// The caller's account, licensed sites and kind of credential.
// The answer goes through `serde_json::Value` (keys in alphabetical
// order); `Me` describes it.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "access",
    responses((status = 200, description = "The caller", body = Me))
)]
async fn me(caller: Caller) -> Json<serde_json::Value> {
    let principal = caller.principal();
    Json(
        serde_json::to_value(Me {
            user: &principal.user,
            licensed_sites: &principal.licensed_sites,
            session: caller.who.kind,
        })
        .unwrap_or_default(),
    )
}

/// Every account (administrators).
#[utoipa::path(
    get,
    path = "/api/users",
    tag = "access",
    responses((status = 200, description = "The accounts", body = Vec<User>))
)]
async fn list_users(caller: Caller) -> Result<Json<Vec<User>>, ApiError> {
    caller.allow(Action::ManageUsers).await?;
    let users = accounts::list_users(caller.access().database()).await?;
    caller
        .audit(&caller.record("user.list", "users".into()))
        .await?;
    Ok(Json(users))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    login: String,
    /// The person's name; left out, the login.
    name: Option<String>,
    #[schema(value_type = Role)]
    role: String,
    /// The sites the account is bound to (clinicians, technicians,
    /// integrations).
    #[serde(default)]
    sites: Vec<String>,
    /// The `[[radiologists]]` id a radiologist's account reads as.
    radiologist: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Created {
    user: User,
    /// Shown once: the person changes it.
    password: Option<String>,
}

pub fn manage_error(e: ManageError) -> ApiError {
    match e {
        ManageError::Account(AccountError::LoginTaken(_)) => {
            ApiError::said(ApiError::Conflict, e.said())
        }
        ManageError::Account(AccountError::UnknownUser(_)) => {
            ApiError::said(ApiError::NotFound, e.said())
        }
        ManageError::Account(AccountError::Database(e)) | ManageError::Database(e) => {
            ApiError::Database(e)
        }
        ManageError::Internal(m) => ApiError::Internal(m),
        other => ApiError::said(ApiError::BadRequest, other.said()),
    }
}

/// Creates an account (administrators).
///
/// An account created by an administrator gets a generated password,
/// answered once; the person changes it.
#[utoipa::path(
    post,
    path = "/api/users",
    tag = "access",
    request_body = NewUserBody,
    responses(
        (status = 201, description = "The account, and its generated password (none for an integration)", body = Created),
        (status = 409, description = "The login is taken", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn create_user(
    caller: Caller,
    json: Result<Json<NewUserBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    caller.allow(Action::ManageUsers).await?;
    let Json(body) = json.map_err(|e| {
        ApiError::from_json_rejection(
            &e,
            "expected {\"login\", \"role\", \"sites\": [...], \"radiologist\", \"name\"}",
        )
    })?;
    let role: Role = body
        .role
        .parse()
        .map_err(|e: accounts::UnknownRole| ApiError::BadRequest(e.to_string()))?;
    let (user, password) = caller
        .access()
        .create_user(
            &NewAccount {
                name: body.name.unwrap_or_else(|| body.login.clone()),
                login: body.login,
                role,
                sites: body.sites,
                radiologist_id: body.radiologist,
            },
            None,
            &caller.actor(),
        )
        .await
        .map_err(manage_error)?;
    Ok((StatusCode::CREATED, Json(Created { user, password })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    /// What the token is for (a hospital system's name): 1 to 100
    /// characters.
    name: String,
    /// Days until it expires, 1 to 3650; left out, it does not.
    #[schema(minimum = 1, maximum = 3650)]
    expires_days: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct CreatedToken {
    /// `Authorization: Bearer <token>`; shown once, stored hashed.
    token: String,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ViewerToken {
    /// For `?access_token=<token>` on DICOMweb GETs (or a Bearer header
    /// there); shown once, stored hashed.
    token: String,
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: i64,
}

/// A short-lived token for a DICOMweb viewer.
///
/// For a viewer that cannot set an Authorization header on every request
/// (images in `<img>` tags, some DICOMweb clients): the token is accepted
/// in the URL of DICOMweb GETs (`access_token`), with the caller's own
/// access, for ten minutes, and nowhere else.
#[utoipa::path(
    post,
    path = "/api/viewer-tokens",
    tag = "access",
    responses((status = 201, description = "The token, shown once", body = ViewerToken))
)]
async fn create_viewer_token(caller: Caller) -> Result<(StatusCode, Json<ViewerToken>), ApiError> {
    caller.allow(Action::ReadStudies).await?;
    let (token, expires_at) = caller
        .access()
        .create_viewer_token(&caller.who, &caller.source)
        .await
        .map_err(ApiError::Database)?;
    Ok((StatusCode::CREATED, Json(ViewerToken { token, expires_at })))
}

/// Creates an API token for an account (administrators).
///
/// As `telerad token create`: the token is answered once and stored
/// hashed; revoked by disabling the account.
#[utoipa::path(
    post,
    path = "/api/users/{login}/tokens",
    tag = "access",
    params(("login" = String, Path, description = "The account's login", max_length = 64)),
    request_body = NewTokenBody,
    responses(
        (status = 201, description = "The token, shown once", body = CreatedToken),
        (status = 404, description = "No such account", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn create_token(
    caller: Caller,
    axum::extract::Path(login): axum::extract::Path<String>,
    json: Result<Json<NewTokenBody>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    caller.allow(Action::ManageUsers).await?;
    let Json(body) = json.map_err(|e| {
        ApiError::from_json_rejection(&e, "expected {\"name\": \"...\", \"expires_days\": n}")
    })?;
    let expires_in = match body.expires_days {
        None => None,
        Some(days @ 1..=3650) => Some(std::time::Duration::from_secs(u64::from(days) * 86_400)),
        Some(days) => {
            return Err(ApiError::BadRequest(format!(
                "expires_days {days}: expected 1 to 3650"
            )));
        }
    };
    let token = caller
        .access()
        .create_token(&login, &body.name, expires_in, &caller.actor())
        .await
        .map_err(manage_error)?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            name: body.name,
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    /// The actor's login.
    user: Option<String>,
    /// A Study Instance UID.
    study: Option<String>,
    /// A patient id.
    patient: Option<String>,
    /// Records at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<jiff::Timestamp>,
    /// Records before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<jiff::Timestamp>,
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The records a query asks for, audited as a read of the trail; the
/// next page's cursor, and the filters to repeat in its URL.
async fn audit_records(
    caller: &Caller,
    query: Result<Query<AuditParams>, QueryRejection>,
    format: &str,
) -> Result<AuditAnswer, ApiError> {
    caller.allow(Action::ReadAudit).await?;
    let Query(params) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = paging::limit(params.limit)?;
    let before = match params.cursor.as_deref() {
        Some(text) => Some(text.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "cursor {text:?}: expected the next_cursor of a previous page"
            ))
        })?),
        None => None,
    };
    let query = AuditQuery {
        actor: params.user.clone(),
        study_uid: params.study.clone(),
        patient_id: params.patient.clone(),
        from: params.from.map(|t| t.as_millisecond()),
        to: params.to.map(|t| t.as_millisecond()),
        before,
        limit,
    };
    let (records, next) = caller.audit_trail(&query).await?;
    let mut record = caller.record("audit.read", "audit".into());
    record.detail = serde_json::json!({
        "user": params.user, "study": params.study, "patient": params.patient, "format": format,
    })
    .to_string();
    caller.audit(&record).await?;
    Ok(AuditAnswer {
        records,
        next: next.map(|seq| seq.to_string()),
        limit,
        filters: vec![
            ("user", params.user),
            ("study", params.study),
            ("patient", params.patient),
            ("from", params.from.map(|t| t.to_string())),
            ("to", params.to.map(|t| t.to_string())),
        ],
    })
}

struct AuditAnswer {
    records: Vec<StoredRecord>,
    next: Option<String>,
    limit: i64,
    filters: Vec<(&'static str, Option<String>)>,
}

impl AuditAnswer {
    fn page(self, path: &str) -> Page<StoredRecord> {
        let filters: Vec<(&str, Option<&str>)> = self
            .filters
            .iter()
            .map(|(key, value)| (*key, value.as_deref()))
            .collect();
        Page::new(self.records, path, &filters, self.limit, self.next)
    }
}

/// The audit trail, a page at a time.
///
/// Newest first (administrators); the read is itself audited.
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "access",
    params(AuditParams),
    responses((status = 200, description = "One page of audit records", body = Page<StoredRecord>))
)]
async fn audit_page(
    caller: Caller,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Page<StoredRecord>>, ApiError> {
    let answer = audit_records(&caller, query, "json").await?;
    Ok(Json(answer.page("/api/audit")))
}

/// The same records as a FHIR R4 Bundle of AuditEvent resources.
#[utoipa::path(
    get,
    path = "/api/audit/fhir",
    tag = "access",
    params(AuditParams),
    responses((
        status = 200,
        description = "A FHIR R4 Bundle (type searchset) of AuditEvent resources, with a `next` link when there are more",
        content_type = "application/fhir+json",
        body = Object,
    ))
)]
async fn audit_fhir(
    caller: Caller,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let answer = audit_records(&caller, query, "fhir").await?;
    let page = answer.page("/api/audit/fhir");
    let body = crate::fhir::bundle(&page.items, page.next);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+json"),
        )],
        body.to_string(),
    )
        .into_response())
}
