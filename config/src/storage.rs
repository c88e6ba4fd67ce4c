//! The `[storage]` section: where received files and the database live.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where telerad keeps what it receives.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory for received DICOM files and, by default, the SQLite
    /// database. Relative paths are relative to the working directory.
    pub data_dir: PathBuf,
    /// `None` means a SQLite file in `data_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// This process's name among the nodes sharing the database and the
    /// storage folder (its receptions in progress are its own); `None`
    /// means the machine's host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

impl Default for StorageConfig {
    fn default() -> StorageConfig {
        StorageConfig {
            data_dir: PathBuf::from("data"),
            database_url: None,
            node_id: None,
        }
    }
}

impl StorageConfig {
    /// The URL to connect to: the configured one, or a SQLite file in the
    /// data directory that is created if missing (`mode=rwc`).
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("telerad.db").display()
            ),
        }
    }

    /// The configured node id, or the host name (`telerad` if it has none
    /// that fits a folder name).
    pub fn node_id(&self) -> String {
        if let Some(id) = &self.node_id {
            return id.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| node_id_error(h).is_none())
            .unwrap_or_else(|| "telerad".to_string())
    }

    /// [`StorageConfig::database_url`] with any password replaced by
    /// `***`, for logs.
    pub fn database_url_for_log(&self) -> String {
        redact_password(&self.database_url())
    }
}

// Written by hand so that logging the configuration at start-up does not
// put the database password in the logs.
impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("data_dir", &self.data_dir)
            .field("node_id", &self.node_id)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_password),
            )
            .finish()
    }
}

/// The URL schemes the store can open.
const DATABASE_SCHEMES: [&str; 3] = ["sqlite:", "postgres://", "postgresql://"];

/// Why `url` cannot be a database URL, or `None` if it can. Only the scheme
/// is quoted back: the rest may hold a password.
/// Why a node id is unusable (it names a folder and a database value).
pub(crate) fn node_id_error(id: &str) -> Option<String> {
    let fits = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (!fits)
        .then(|| format!("{id:?}: 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"))
}

pub(crate) fn database_url_error(url: &str) -> Option<String> {
    if DATABASE_SCHEMES
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        return None;
    }
    let expected = "expected a URL starting with sqlite:, postgres:// or postgresql://, \
                    or no database_url for a SQLite file in data_dir";
    Some(match url.split_once(':') {
        Some((scheme, _)) if !scheme.is_empty() => {
            format!("database URL scheme {scheme:?} is not supported: {expected}")
        }
        _ => format!("this is not a database URL: {expected}"),
    })
}

/// `url` with the password of its user info and any `password=` query
/// parameter replaced by `***`.
pub fn redact_password(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut redacted = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((user_info, host)) => {
                    let user = user_info
                        .split_once(':')
                        .map_or(user_info, |(user, _)| user);
                    let hidden = if user_info.contains(':') { ":***" } else { "" };
                    format!("{scheme}://{user}{hidden}@{host}{path}")
                }
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => parameter.to_owned(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&parameters.join("&"));
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_for_log_hides_the_password() {
        let storage = StorageConfig {
            database_url: Some("postgres://telerad:secret@db/telerad".to_owned()),
            ..StorageConfig::default()
        };
        assert_eq!(
            storage.database_url_for_log(),
            "postgres://telerad:***@db/telerad"
        );
    }

    #[test]
    fn defaults_are_data_and_sqlite() {
        let storage = StorageConfig::default();
        assert_eq!(storage.data_dir, PathBuf::from("data"));
        assert_eq!(storage.database_url, None);
        assert_eq!(storage.database_url(), "sqlite://data/telerad.db?mode=rwc");
    }

    #[test]
    fn default_database_follows_an_absolute_data_dir() {
        let storage = StorageConfig {
            data_dir: PathBuf::from("/var/lib/telerad/"),
            database_url: None,
            node_id: None,
        };
        assert_eq!(
            storage.database_url(),
            "sqlite:///var/lib/telerad/telerad.db?mode=rwc"
        );
    }

    #[test]
    fn configured_database_url_is_used_as_is() {
        let url = "postgres://telerad:secret@db.example/telerad";
        let storage = StorageConfig {
            data_dir: PathBuf::from("data"),
            database_url: Some(url.to_owned()),
            node_id: None,
        };
        assert_eq!(storage.database_url(), url);
    }

    #[test]
    fn supported_schemes_pass() {
        for url in [
            "sqlite:telerad.db",
            "sqlite://data/x.db?mode=rwc",
            "postgres://u@h/db",
            "postgresql://u:p@h:5432/db",
        ] {
            assert_eq!(database_url_error(url), None, "{url}");
        }
    }

    #[test]
    fn unsupported_scheme_is_named_without_echoing_the_password() {
        let message = database_url_error("mysql://root:hunter2@db/telerad").unwrap_or_default();
        assert!(
            message.contains("scheme \"mysql\" is not supported"),
            "{message}"
        );
        assert!(message.contains("postgres://"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn text_without_scheme_is_refused() {
        let message = database_url_error("data/telerad.db").unwrap_or_default();
        assert!(message.contains("not a database URL"), "{message}");
        // "postgres:/x" has a scheme but not the "//" that sqlx expects.
        assert!(database_url_error("postgres:/x").is_some());
    }

    #[test]
    fn debug_hides_passwords() {
        let storage = StorageConfig {
            data_dir: PathBuf::from("data"),
            database_url: Some(
                "postgres://telerad:hunter2@db.example:5432/telerad?sslmode=require&password=hunter3"
                    .to_owned(),
            ),
            node_id: None,
        };
        let debug = format!("{storage:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("hunter3"), "{debug}");
        assert!(
            debug.contains(
                "postgres://telerad:***@db.example:5432/telerad?sslmode=require&password=***"
            ),
            "{debug}"
        );
    }

    #[test]
    fn debug_keeps_urls_without_password() {
        assert_eq!(
            redact_password("postgres://telerad@db/telerad"),
            "postgres://telerad@db/telerad"
        );
        assert_eq!(redact_password("sqlite:data/x.db"), "sqlite:data/x.db");
    }
}
