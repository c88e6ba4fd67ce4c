//! The extractor every protected handler takes: it authenticates the
//! request (a Bearer token, or the session cookie with its CSRF header for
//! a request that changes something) and gives the handler a [`Caller`],
//! which asks the policy for an action's scope and writes audit records.

use crate::policy::{self, Action, Principal};
use crate::service::{Access, Actor, AuthError, Authenticated, LoginError, actor_of};
use crate::token;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use std::net::SocketAddr;
use std::sync::Arc;
use telerad_http::ApiError;
use telerad_lang::said;
use telerad_store::Scope;
use telerad_store::accounts::CredentialKind;
use telerad_store::audit::{self, AuditQuery, AuditRecord, Outcome, StoredRecord};

/// The cookie of a page session.
pub const SESSION_COOKIE: &str = "telerad_session";
/// The header a cookie session sends its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The `Set-Cookie` value of a new page session (its script cannot read
/// it; no other site's request carries it).
pub fn session_cookie(token: &str) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        crate::service::SESSION_TTL.as_secs()
    )
}

/// The `Set-Cookie` value that ends a page session in the browser.
pub const CLEARED_SESSION_COOKIE: &str =
    "telerad_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0";

/// An authenticated request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub who: Authenticated,
    /// The peer's address.
    pub source: String,
    /// The language the request prefers among telerad's, if it names one.
    pub lang: Option<telerad_lang::Lang>,
    access: Arc<Access>,
}

/// Writes a record to the audit spool, returning once a crash of telerad
/// would not lose it: a flood of bad tokens costs a line each, and one
/// transaction per move.
fn write(access: &Access, record: &AuditRecord) -> Result<(), ApiError> {
    access
        .audit_spool()
        .append(record)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// The address of the peer, as the server was told it.
pub fn source_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Paths are audited cut to this many characters: a refused request
/// costs its sender more than the trail.
const MAX_PATH_IN_AUDIT: usize = 256;

fn audited_path(parts: &Parts) -> String {
    parts.uri.path().chars().take(MAX_PATH_IN_AUDIT).collect()
}

/// The peer's address, for handlers that serve callers not signed in yet.
#[derive(Debug, Clone)]
pub struct Source(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Source, Self::Rejection> {
        Ok(Source(source_of(parts)))
    }
}

/// The token presented, and whether it came in the cookie.
fn presented(headers: &HeaderMap) -> Option<(String, bool)> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| (token.trim().to_string(), false));
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, token)| (token.to_string(), true))
}

/// A viewer token in the URL (`access_token`, as RFC 6750 §2.3 names
/// it); no other kind of token is taken from a URL, where logs and
/// browser histories keep it.
fn in_query(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "access_token")
        .map(|(_, value)| value.to_string())
        .filter(|token| token::is_viewer(token))
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<Access>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, ApiError> {
        let access = Arc::<Access>::from_ref(state);
        let source = source_of(parts);
        let reads_dicomweb = matches!(parts.method, Method::GET | Method::HEAD)
            && parts.uri.path().starts_with("/dicom-web/");
        let presented = presented(&parts.headers).or_else(|| {
            reads_dicomweb
                .then(|| in_query(parts.uri.query()))
                .flatten()
                .map(|token| (token, false))
        });
        let Some((token, from_cookie)) = presented else {
            return Err(ApiError::said(
                ApiError::Unauthorized,
                said!(
                    "sign in: send a session cookie or an Authorization: Bearer token",
                    "connectez-vous : envoyez un cookie de session ou un jeton Authorization: Bearer"
                ),
            ));
        };
        if token::is_viewer(&token) && !reads_dicomweb {
            return Err(ApiError::said(
                ApiError::Unauthorized,
                said!(
                    "a viewer token opens DICOMweb reads only",
                    "un jeton de visionneuse n'ouvre que les lectures DICOMweb"
                ),
            ));
        }
        let who = match access.authenticate(&token).await {
            Ok(who) => who,
            Err(AuthError::Database(e)) => return Err(ApiError::Database(e)),
            Err(refusal) => {
                let anonymous = Actor {
                    login: String::new(),
                    role: String::new(),
                    sites: String::new(),
                    source: source.clone(),
                };
                let mut record = anonymous.record(
                    access.now(),
                    "token.use",
                    audited_path(parts),
                    Outcome::Refused,
                );
                record.detail = serde_json::json!({ "reason": refusal.to_string() }).to_string();
                write(&access, &record)?;
                return Err(ApiError::said(ApiError::Unauthorized, refusal.said()));
            }
        };
        let changes = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if from_cookie && (who.kind != CredentialKind::Session || changes) {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            let matches = sent.is_some_and(|sent| token::csrf_matches(&token, sent));
            if who.kind != CredentialKind::Session || !matches {
                let mut record = actor_of(&who.principal, &source).record(
                    access.now(),
                    "csrf",
                    audited_path(parts),
                    Outcome::Refused,
                );
                record.detail =
                    serde_json::json!({ "reason": "missing or wrong X-CSRF-Token" }).to_string();
                write(&access, &record)?;
                return Err(ApiError::said(
                    ApiError::Forbidden,
                    said!(
                        "a request that changes something needs the session's X-CSRF-Token header",
                        "une requête qui modifie quelque chose doit porter l'en-tête X-CSRF-Token de la session"
                    ),
                ));
            }
        }
        let lang = parts
            .headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(telerad_lang::Lang::preferred);
        Ok(Caller {
            who,
            source,
            lang,
            access,
        })
    }
}

impl Caller {
    pub fn principal(&self) -> &Principal {
        &self.who.principal
    }

    pub fn access(&self) -> &Arc<Access> {
        &self.access
    }

    pub fn now(&self) -> i64 {
        self.access.now()
    }

    /// The studies this caller may act on for `action`; a role that never
    /// may is answered 403, and the refusal audited.
    pub async fn allow(&self, action: Action) -> Result<Scope, ApiError> {
        match policy::decide(&self.who.principal, action) {
            Ok(scope) => Ok(scope),
            Err(refused) => {
                let mut record = self.record(&format!("{action:?}"), "policy".into());
                record.outcome = Outcome::Refused;
                record.detail = serde_json::json!({ "reason": refused.to_string() }).to_string();
                self.audit(&record).await?;
                Err(ApiError::said(ApiError::Forbidden, refused.said()))
            }
        }
    }

    /// An audit record of this caller doing `action` on `object`, a
    /// success unless changed.
    pub fn record(&self, action: &str, object: String) -> AuditRecord {
        self.actor()
            .record(self.now(), action, object, Outcome::Success)
    }

    /// A record of reading or changing one study.
    pub fn study_record(
        &self,
        action: &str,
        study_uid: &str,
        patient_id: Option<&str>,
    ) -> AuditRecord {
        AuditRecord {
            study_uid: Some(study_uid.to_string()),
            patient_id: patient_id.map(str::to_string),
            ..self.record(action, format!("study/{study_uid}"))
        }
    }

    pub fn actor(&self) -> Actor {
        actor_of(&self.who.principal, &self.source)
    }

    /// Audits `record` as not done (`outcome`, with the error as its
    /// reason) and gives back the error to answer, or the audit's own if
    /// the record could not be written.
    pub async fn not_done(
        &self,
        mut record: AuditRecord,
        outcome: Outcome,
        error: ApiError,
    ) -> ApiError {
        record.outcome = outcome;
        record.detail = serde_json::json!({ "reason": error.to_string() }).to_string();
        match self.audit(&record).await {
            Ok(()) => error,
            Err(audit) => audit,
        }
    }

    /// Checks the caller's password again before `what` (a signature,
    /// `quoi` in French): a wrong one is a 403 naming what was not done,
    /// audited as refused.
    pub async fn reauthenticate(
        &self,
        password: &str,
        record: &AuditRecord,
        (what, quoi): (&str, &str),
    ) -> Result<(), ApiError> {
        let error = match self
            .access
            .reauthenticate(&self.who.principal.user, password)
            .await
        {
            Ok(()) => return Ok(()),
            Err(LoginError::Invalid) => ApiError::said(
                ApiError::Forbidden,
                said!(
                    "wrong password: {what} was not done",
                    "mot de passe incorrect : {quoi} n'a pas eu lieu"
                ),
            ),
            Err(LoginError::Throttled(wait)) => {
                let secs = wait.as_secs().max(1);
                ApiError::TooManyRequests {
                    message: format!("too many wrong passwords: try again in {secs} s"),
                    retry_after_secs: secs,
                }
                .french(format!(
                    "trop de mots de passe incorrects : réessayez dans {secs} s"
                ))
            }
            Err(LoginError::Database(e)) => return Err(ApiError::Database(e)),
            Err(LoginError::Internal(m)) => return Err(ApiError::Internal(m)),
        };
        Err(self.not_done(record.clone(), Outcome::Refused, error).await)
    }

    /// Writes `record` to the audit spool, returning once a crash of
    /// telerad would not lose it; it joins the chain within
    /// `audit_spool::MOVE_EVERY` (reads and refusals; the records of
    /// changes share the change's transaction).
    pub async fn audit(&self, record: &AuditRecord) -> Result<(), ApiError> {
        write(&self.access, record)
    }

    /// A page of the audit trail, once every record this process has
    /// spooled is in it (another node's reach it within
    /// `audit_spool::MOVE_EVERY`). The caller's right to read it is the
    /// caller's to check.
    pub async fn audit_trail(
        &self,
        query: &AuditQuery,
    ) -> Result<(Vec<StoredRecord>, Option<i64>), ApiError> {
        self.access
            .audit_spool()
            .flush()
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(audit::page(self.access.database(), query).await?)
    }
}
