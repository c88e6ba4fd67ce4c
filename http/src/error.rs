//! Every HTTP failure, mapped once to a status and a JSON body
//! `{"error": "..."}` that says what was wrong with the request.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use telerad_lang::Said;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// No valid session or token: sign in.
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in, but the role never allows this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The Accept header allows nothing the resource is served as.
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    TooLarge(String),
    /// The body is not of a type the resource takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A refusal with its French words, answered in French to a request
    /// that prefers it ([`crate::language`]).
    #[error("{error}")]
    Translated {
        error: Box<ApiError>,
        french: String,
    },
}

impl ApiError {
    /// `kind` (a variant taking its message, `ApiError::Conflict`) saying
    /// `said`, in French too where it was written.
    pub fn said(kind: fn(String) -> ApiError, said: Said) -> ApiError {
        let (en, fr) = said.into_parts();
        let error = kind(en);
        match fr {
            Some(french) => error.french(french),
            None => error,
        }
    }

    /// This refusal with its French words.
    pub fn french(self, french: String) -> ApiError {
        ApiError::Translated {
            error: Box::new(self),
            french,
        }
    }

    /// What the answer says, in `lang` where it has words in it (a
    /// database failure's detail is the log's, never the answer's).
    pub fn message_in(&self, lang: telerad_lang::Lang) -> String {
        if lang == telerad_lang::Lang::Fr
            && let Some(french) = self.french_words()
        {
            return french;
        }
        match self.core() {
            ApiError::Database(_) if self.status() == StatusCode::CONFLICT => {
                "a concurrent change conflicted with this one: read again, then retry".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The French of the answer, where there is one: the refusal's own,
    /// or for a database failure the answer's fixed words.
    fn french_words(&self) -> Option<String> {
        match self {
            ApiError::Translated { french, .. } => Some(french.clone()),
            ApiError::Database(_) if self.status() == StatusCode::CONFLICT => Some(
                "une modification concurrente est entrée en conflit avec celle-ci : relisez, puis réessayez"
                    .to_owned(),
            ),
            ApiError::Database(_) => {
                Some("la base de données est indisponible : réessayez dans un instant".to_owned())
            }
            ApiError::Internal(_) => {
                Some("erreur interne du serveur : son journal en dit le détail".to_owned())
            }
            _ => None,
        }
    }

    /// The refusal itself, without its translation.
    fn core(&self) -> &ApiError {
        match self {
            ApiError::Translated { error, .. } => error.core(),
            other => other,
        }
    }

    /// A request body over [`crate::MAX_BODY_BYTES`].
    pub fn too_large() -> ApiError {
        ApiError::TooLarge(format!(
            "request body too large: at most {} bytes are accepted",
            crate::MAX_BODY_BYTES
        ))
    }

    /// A JSON body that could not be read: a 413 when it was over the
    /// limit (a chunked body is cut while read, so only the extractor
    /// knows), otherwise a 400 saying what was `expected`.
    pub fn from_json_rejection(rejection: &JsonRejection, expected: &str) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large()
        } else {
            ApiError::BadRequest(format!("{expected}: {}", rejection.body_text()))
        }
    }
}

impl ApiError {
    /// The answer's status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            // Two requests raced to make the same thing (a login, a
            // report version): the loser is told to look again, as if it
            // had come second.
            ApiError::Database(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                StatusCode::CONFLICT
            }
            ApiError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Translated { error, .. } => error.status(),
        }
    }

    /// Writes what the client is not told to the log.
    pub fn log(&self) {
        match self.core() {
            ApiError::Internal(m) => tracing::error!("internal error while serving a request: {m}"),
            ApiError::Database(e) if self.status() == StatusCode::CONFLICT => {
                tracing::warn!("a concurrent change conflicted: {e}")
            }
            ApiError::Database(e) => {
                tracing::error!("database error while serving a request: {e}")
            }
            _ => {}
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let message = self.message_in(telerad_lang::Lang::En);
        let mut response = (status, Json(json!({ "error": message }))).into_response();
        if let Some(french) = self.french_words() {
            response
                .extensions_mut()
                .insert(crate::language::French(french));
        }
        let headers = response.headers_mut();
        match self.core() {
            ApiError::Unauthorized(_) => {
                headers.insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer realm=\"telerad\""),
                );
            }
            ApiError::TooManyRequests {
                retry_after_secs, ..
            } => {
                headers.insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(*retry_after_secs),
                );
            }
            _ => {}
        }
        response
    }
}
