//! `POST /api/login`, `POST /api/logout`, `GET /api/me`, `GET` and
//! `POST /api/users`, and `GET /api/audit`.

use crate::caller::{Caller, SESSION_COOKIE, Source};
use crate::policy::Action;
use crate::service::{Access, LoginError, ManageError, NewAccount, SESSION_TTL};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_http::ApiError;
use telerad_http::paging::{self, Page};
use telerad_store::accounts::{self, AccountError, Role, User};
use telerad_store::audit::{self, AuditQuery, StoredRecord};

pub fn routes<S>() -> Router<S>
where
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/users", get(list_users).post(create_user))
        .route("/api/audit", get(audit_page))
        .route("/api/audit/fhir", get(audit_fhir))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    login: String,
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

/// The session's token in the body (for the API) and in an HttpOnly,
/// Secure, SameSite=Strict cookie (for pages, whose scripts cannot read
/// it); the CSRF token goes back in `X-CSRF-Token` with a cookie session.
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
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        session.token,
        SESSION_TTL.as_secs()
    );
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

#[derive(Serialize)]
struct LoginAnswer<'a> {
    token: &'a str,
    csrf_token: &'a str,
    expires_at: String,
    user: &'a User,
}

async fn logout(caller: Caller) -> Result<Response, ApiError> {
    caller.access().logout(&caller.who, &caller.source).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        SET_COOKIE,
        HeaderValue::from_static(
            "telerad_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

#[derive(Serialize)]
struct Me<'a> {
    #[serde(flatten)]
    user: &'a User,
    /// The sites whose studies the account may see (a radiologist's
    /// licence).
    licensed_sites: &'a [String],
    session: telerad_store::accounts::CredentialKind,
}

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

async fn list_users(caller: Caller) -> Result<Json<Vec<User>>, ApiError> {
    caller.allow(Action::ManageUsers).await?;
    let users = accounts::list_users(caller.access().database()).await?;
    caller
        .audit(&caller.record("user.list", "users".into()))
        .await?;
    Ok(Json(users))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    login: String,
    name: Option<String>,
    role: String,
    #[serde(default)]
    sites: Vec<String>,
    radiologist: Option<String>,
}

#[derive(Serialize)]
struct Created {
    user: User,
    /// Shown once: the person changes it.
    password: Option<String>,
}

pub fn manage_error(e: ManageError) -> ApiError {
    match e {
        ManageError::Account(AccountError::LoginTaken(l)) => {
            ApiError::Conflict(format!("login {l:?} is taken"))
        }
        ManageError::Account(AccountError::UnknownUser(l)) => {
            ApiError::NotFound(format!("no user {l:?}"))
        }
        ManageError::Account(AccountError::Database(e)) | ManageError::Database(e) => {
            ApiError::Database(e)
        }
        ManageError::Internal(m) => ApiError::Internal(m),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// An account created by an administrator gets a generated password,
/// answered once; the person changes it.
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    user: Option<String>,
    study: Option<String>,
    patient: Option<String>,
    from: Option<jiff::Timestamp>,
    to: Option<jiff::Timestamp>,
    limit: Option<i64>,
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
    let (records, next) = audit::page(caller.access().database(), &query).await?;
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

async fn audit_page(
    caller: Caller,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Page<StoredRecord>>, ApiError> {
    let answer = audit_records(&caller, query, "json").await?;
    Ok(Json(answer.page("/api/audit")))
}

/// The same records as a FHIR R4 Bundle of AuditEvent resources.
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
