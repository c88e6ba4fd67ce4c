//! Signing in and out, and what a presented token stands for.

use crate::password;
use crate::policy::Principal;
use crate::throttle::Throttle;
use crate::token;
use crate::verified::{self, Verified};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use telerad_config::Config;
use telerad_lang::{Said, said};
use telerad_store::accounts::{
    self, AccountError, CredentialKind, CredentialRefusal, NewCredential, NewUser, Role, User,
};
use telerad_store::audit::{self, AuditRecord, Outcome};
use telerad_store::audit_spool::{AuditSpool, Orphans, SpoolError};
use telerad_store::{Clock, CredentialId, Database};
use tokio::sync::Semaphore;

/// A session lasts a night shift and then some.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The name viewer tokens are kept under.
const VIEWER_TOKEN_NAME: &str = "viewer";

/// How long a viewer token opens DICOMweb: long enough to load a study,
/// short enough that one left in a log or a browser's history is stale.
pub const VIEWER_TOKEN_TTL: Duration = Duration::from_secs(10 * 60);
/// Failures allowed per account, and per address, within [`THROTTLE_WINDOW`].
pub const FAILURES_PER_ACCOUNT: usize = 5;
pub const FAILURES_PER_ADDRESS: usize = 20;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Password checks at once: each holds 64 MiB for 0.1 s.
const CONCURRENT_HASHES: usize = 2;
/// The audit spool's folder, in the data folder.
pub const AUDIT_SPOOL: &str = "audit-spool";
/// Logins are audited with what was typed, cut to this many characters.
const MAX_LOGIN_IN_AUDIT: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The same answer whether the account does not exist, is disabled,
    /// or the password is wrong: nothing to learn from it.
    #[error("wrong login or password")]
    Invalid,
    #[error("too many failed logins: try again in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl AuthError {
    /// What the caller is told, in both languages.
    pub fn said(&self) -> Said {
        match self {
            AuthError::Unknown => Said::new(
                self.to_string(),
                "la session ou le jeton est inconnu : reconnectez-vous",
            ),
            AuthError::Expired => Said::new(
                self.to_string(),
                "la session ou le jeton a expiré : reconnectez-vous",
            ),
            AuthError::Revoked => Said::new(
                self.to_string(),
                "la session ou le jeton a été révoqué : reconnectez-vous",
            ),
            AuthError::Disabled => Said::new(self.to_string(), "le compte est désactivé"),
            AuthError::Database(_) => Said::english(self.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the session or token is not known")]
    Unknown,
    #[error("the session or token has expired: sign in again")]
    Expired,
    #[error("the session or token was revoked: sign in again")]
    Revoked,
    #[error("the account is disabled")]
    Disabled,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn no_password() -> Said {
    said!(
        "an integration account has no password: create an API token",
        "un compte d'intégration n'a pas de mot de passe : créez un jeton d'API"
    )
}

impl ManageError {
    /// What the administrator is told, in both languages.
    pub fn said(&self) -> Said {
        use password::PasswordError;
        let en = self.to_string();
        match self {
            ManageError::Invalid(said) => said.clone(),
            ManageError::Account(AccountError::LoginTaken(l)) => {
                Said::new(en, format!("l'identifiant {l:?} est déjà pris"))
            }
            ManageError::Account(AccountError::UnknownUser(l)) => {
                Said::new(en, format!("aucun compte {l:?}"))
            }
            ManageError::Account(AccountError::UnknownSite(s)) => Said::new(
                en,
                format!(
                    "aucun site {s:?} dans la configuration du dernier démarrage de `telerad serve`"
                ),
            ),
            ManageError::Account(AccountError::UnknownRadiologist(r)) => Said::new(
                en,
                format!(
                    "aucun radiologue {r:?} dans la configuration du dernier démarrage de `telerad serve`"
                ),
            ),
            ManageError::Password(PasswordError::TooShort) => Said::new(
                en,
                format!(
                    "un mot de passe compte au moins {} caractères",
                    password::MIN_LENGTH
                ),
            ),
            ManageError::Password(PasswordError::TooLong) => Said::new(
                en,
                format!(
                    "un mot de passe compte au plus {} caractères",
                    password::MAX_LENGTH
                ),
            ),
            _ => Said::english(en),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    #[error("{0}")]
    Invalid(Said),
    /// The password could not be hashed (the hashing pool is gone).
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A signed-in person's session, as the login answers it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Session {
    pub token: String,
    pub csrf_token: String,
    pub expires_at: i64,
    pub user: User,
}

/// Who was authenticated by a token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    pub credential: CredentialId,
    pub kind: CredentialKind,
}

/// Who does an account change, for its audit record.
#[derive(Debug, Clone)]
pub struct Actor {
    pub login: String,
    pub role: String,
    pub sites: String,
    pub source: String,
}

impl Actor {
    /// The command line, run by whoever may read the database.
    pub fn command_line() -> Actor {
        Actor {
            login: "telerad-cli".into(),
            role: "admin".into(),
            sites: String::new(),
            source: "local".into(),
        }
    }

    pub fn record(&self, at: i64, action: &str, object: String, outcome: Outcome) -> AuditRecord {
        AuditRecord {
            at,
            actor: self.login.clone(),
            role: self.role.clone(),
            sites: self.sites.clone(),
            action: action.to_string(),
            object,
            study_uid: None,
            patient_id: None,
            outcome,
            source: self.source.clone(),
            detail: "{}".into(),
        }
    }
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub login: String,
    pub name: String,
    pub role: Role,
    pub sites: Vec<String>,
    pub radiologist_id: Option<String>,
}

#[derive(Debug)]
pub struct Access {
    db: Database,
    /// Reads' and refusals' records, spooled then chained in batches.
    audit: AuditSpool,
    clock: Arc<dyn Clock>,
    /// Radiologist id → the sites their licence covers.
    licences: HashMap<String, Vec<String>>,
    by_account: Throttle,
    by_address: Throttle,
    hashing: Semaphore,
    /// Credentials verified recently: most requests need no lookup.
    verified: Arc<Verified>,
}

impl Access {
    /// Access on `db`, spooling reads' records in the data folder's
    /// `audit-spool/NODE_ID`; `orphans` says whether the spool chains what
    /// a crash left there (the server) or not (a command).
    pub fn new(
        db: Database,
        clock: Arc<dyn Clock>,
        config: &Config,
        orphans: Orphans,
    ) -> Result<Access, SpoolError> {
        Access::with_licences(
            db,
            clock,
            config
                .radiologists
                .iter()
                .map(|r| (r.id.clone(), r.sites.clone()))
                .collect(),
            config
                .storage
                .data_dir
                .join(AUDIT_SPOOL)
                .join(config.storage.node_id()),
            orphans,
        )
    }

    /// As [`Access::new`], given each radiologist's licensed sites and the
    /// audit spool's folder.
    pub fn with_licences(
        db: Database,
        clock: Arc<dyn Clock>,
        licences: HashMap<String, Vec<String>>,
        audit_spool: PathBuf,
        orphans: Orphans,
    ) -> Result<Access, SpoolError> {
        let verified = Arc::new(Verified::default());
        tokio::spawn(verified::watch(db.clone(), Arc::downgrade(&verified)));
        Ok(Access {
            verified,
            audit: AuditSpool::start(db.clone(), audit_spool, orphans)?,
            db,
            clock,
            licences,
            by_account: Throttle::new(FAILURES_PER_ACCOUNT, THROTTLE_WINDOW),
            by_address: Throttle::new(FAILURES_PER_ADDRESS, THROTTLE_WINDOW),
            hashing: Semaphore::new(CONCURRENT_HASHES),
        })
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Where reads and refusals append their records.
    pub fn audit_spool(&self) -> &AuditSpool {
        &self.audit
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn principal(&self, user: User) -> Principal {
        let licensed_sites = user
            .radiologist_id
            .as_ref()
            .and_then(|id| self.licences.get(id))
            .cloned()
            .unwrap_or_default();
        Principal {
            user,
            licensed_sites,
        }
    }

    /// Checks a password in a blocking thread, a few at a time.
    async fn verify(&self, password: &str, phc: &str) -> Result<bool, LoginError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| LoginError::Internal(e.to_string()))?;
        let (password, phc) = (password.to_string(), phc.to_string());
        tokio::task::spawn_blocking(move || password::verify(&password, &phc))
            .await
            .map_err(|e| LoginError::Internal(e.to_string()))
    }

    async fn hash(&self, password: &str) -> Result<String, ManageError> {
        password::check_length(password)?;
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| ManageError::Internal(e.to_string()))?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .map_err(|e| ManageError::Internal(e.to_string()))?
            .map_err(ManageError::from)
    }

    /// Signs in with a password: a new session, or why not (audited).
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        source: &str,
    ) -> Result<Session, LoginError> {
        let typed: String = login.chars().take(MAX_LOGIN_IN_AUDIT).collect();
        let attempt = Actor {
            login: typed.clone(),
            role: String::new(),
            sites: String::new(),
            source: source.to_string(),
        };
        let refuse = |reason: &str| {
            let mut record = attempt.record(
                self.now(),
                "login",
                format!("user/{typed}"),
                Outcome::Refused,
            );
            record.detail = serde_json::json!({ "reason": reason }).to_string();
            record
        };
        let account_key = format!("account:{typed}");
        let address_key = format!("address:{source}");
        // Counted as failures before the password is checked: a success
        // takes them back.
        let started = Instant::now();
        let admitted = self.by_account.begin(&account_key, started).and_then(|()| {
            self.by_address
                .begin(&address_key, started)
                .inspect_err(|_| self.by_account.forgive(&account_key))
        });
        if let Err(wait) = admitted {
            self.audit.append(&refuse("throttled")).map_err(internal)?;
            return Err(LoginError::Throttled(wait));
        }
        let account = accounts::user_by_login(&self.db, login).await?;
        let (user, reason) = match account {
            Some((user, Some(phc))) => {
                let matches = self.verify(password, &phc).await?;
                let reason = if !matches {
                    Some("wrong password")
                } else if user.disabled {
                    Some("account disabled")
                } else {
                    None
                };
                (Some(user), reason)
            }
            Some((user, None)) => {
                // An integration has no password: the same work and answer.
                self.verify(password, password::decoy()).await?;
                (Some(user), Some("no password (API tokens only)"))
            }
            None => {
                self.verify(password, password::decoy()).await?;
                (None, Some("unknown account"))
            }
        };
        if let Some(reason) = reason {
            self.audit.append(&refuse(reason)).map_err(internal)?;
            return Err(LoginError::Invalid);
        }
        let Some(user) = user else {
            return Err(LoginError::Invalid);
        };
        self.by_account.clear(&account_key);
        self.by_address.forgive(&address_key);
        let now = self.now();
        let expires_at = now + i64::try_from(SESSION_TTL.as_millis()).unwrap_or(i64::MAX);
        let token = token::generate();
        let principal = self.principal(user.clone());
        let actor = actor_of(&principal, source);
        let mut tx = self.db.begin_write().await?;
        accounts::add_credential(
            &mut tx,
            &NewCredential {
                user_id: user.id,
                kind: CredentialKind::Session,
                token_hash: &token::hash(&token),
                name: source,
                expires_at: Some(expires_at),
            },
            now,
        )
        .await?;
        audit::append(
            &mut tx,
            &actor.record(
                now,
                "login",
                format!("user/{}", user.login),
                Outcome::Success,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(Session {
            csrf_token: token::csrf(&token),
            token,
            expires_at,
            user,
        })
    }

    /// Asks a signed-in person for their password again (signing a report):
    /// `Ok` when it is theirs. Failures count towards the same per-account
    /// throttle as logins, so a stolen session cannot guess it either.
    pub async fn reauthenticate(&self, user: &User, password: &str) -> Result<(), LoginError> {
        let key = format!("account:{}", user.login);
        self.by_account
            .begin(&key, Instant::now())
            .map_err(LoginError::Throttled)?;
        let phc = match accounts::user_by_login(&self.db, &user.login).await? {
            Some((found, Some(phc))) if found.id == user.id && !found.disabled => phc,
            _ => {
                self.verify(password, password::decoy()).await?;
                return Err(LoginError::Invalid);
            }
        };
        if self.verify(password, &phc).await? {
            self.by_account.forgive(&key);
            Ok(())
        } else {
            Err(LoginError::Invalid)
        }
    }

    /// The account a token stands for, if it may be used now.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, AuthError> {
        let hash = token::hash(token);
        let now = self.now();
        let generation = match self.verified.get(&hash, now) {
            Ok(who) => return Ok(who),
            Err(generation) => generation,
        };
        let found = accounts::credential(&self.db, &hash, now).await?;
        match found {
            Ok(valid) => {
                let who = Authenticated {
                    principal: self.principal(valid.user),
                    credential: valid.id,
                    kind: valid.kind,
                };
                self.verified
                    .remember(hash, who.clone(), valid.expires_at, generation);
                Ok(who)
            }
            Err(CredentialRefusal::Unknown) => Err(AuthError::Unknown),
            Err(CredentialRefusal::Expired) => Err(AuthError::Expired),
            Err(CredentialRefusal::Revoked) => Err(AuthError::Revoked),
            Err(CredentialRefusal::Disabled) => Err(AuthError::Disabled),
        }
    }

    /// Ends a session (or revokes the token used), audited.
    pub async fn logout(&self, who: &Authenticated, source: &str) -> Result<(), sqlx::Error> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        accounts::revoke_credential(&mut tx, who.credential, now).await?;
        // The viewer tokens made while signed in go with the session (a
        // viewer left open in another tab included).
        if who.kind == CredentialKind::Session {
            accounts::revoke_named(&mut tx, who.principal.user.id, VIEWER_TOKEN_NAME, now).await?;
        }
        let record = actor_of(&who.principal, source).record(
            now,
            "logout",
            format!("user/{}", who.principal.user.login),
            Outcome::Success,
        );
        self.commit_revocation(tx, &record).await
    }

    /// Commits a change that takes credentials away, with its audit record,
    /// and forgets the verified ones at once (other processes notice the
    /// credentials epoch the change moved).
    async fn commit_revocation(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        record: &AuditRecord,
    ) -> Result<(), sqlx::Error> {
        audit::append(&mut tx, record).await?;
        tx.commit().await?;
        self.verified.forget_all();
        Ok(())
    }

    /// Creates an account; with no password given, one is generated and
    /// returned (to be shown once). Integrations get none.
    pub async fn create_user(
        &self,
        account: &NewAccount,
        password: Option<&str>,
        by: &Actor,
    ) -> Result<(User, Option<String>), ManageError> {
        check_login(&account.login)?;
        if account.name.chars().count() > 200 {
            return Err(ManageError::Invalid(said!(
                "a name has at most 200 characters",
                "un nom compte au plus 200 caractères"
            )));
        }
        match (account.role, &account.radiologist_id) {
            (Role::Radiologist, None) => {
                return Err(ManageError::Invalid(said!(
                    "a radiologist account needs --radiologist (an id of [[radiologists]])",
                    "un compte radiologue doit être lié à un radiologue (un id de [[radiologists]])"
                )));
            }
            (role, Some(_)) if role != Role::Radiologist => {
                return Err(ManageError::Invalid(said!(
                    "only a radiologist account is linked to a radiologist",
                    "seul un compte radiologue est lié à un radiologue"
                )));
            }
            _ => {}
        }
        let bound = matches!(
            account.role,
            Role::Clinician | Role::Technician | Role::Integration
        );
        if bound && account.sites.is_empty() {
            let (role, rôle) = (account.role, crate::policy::role_fr(account.role));
            return Err(ManageError::Invalid(said!(
                "a {role} account needs at least one --site",
                "un compte {rôle} a besoin d'au moins un site"
            )));
        }
        if !bound && !account.sites.is_empty() {
            let (role, rôle) = (account.role, crate::policy::role_fr(account.role));
            let (why, pourquoi) = if role == Role::Admin {
                ("it sees every site", "il voit tous les sites")
            } else {
                (
                    "a radiologist's sites are their licence in [[radiologists]]",
                    "les sites d'un radiologue sont ceux de son habilitation dans [[radiologists]]",
                )
            };
            return Err(ManageError::Invalid(said!(
                "a {role} account is not bound to sites ({why})",
                "un compte {rôle} n'est pas lié à des sites ({pourquoi})"
            )));
        }
        let (password, generated) = match (account.role, password) {
            (Role::Integration, None) => (None, None),
            (Role::Integration, Some(_)) => {
                return Err(ManageError::Invalid(no_password()));
            }
            (_, Some(p)) => (Some(p.to_string()), None),
            (_, None) => {
                let p = password::generate();
                (Some(p.clone()), Some(p))
            }
        };
        let password_hash = match &password {
            Some(p) => Some(self.hash(p).await?),
            None => None,
        };
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let user = accounts::create_user(
            &mut tx,
            &NewUser {
                login: account.login.clone(),
                name: account.name.clone(),
                role: account.role,
                radiologist_id: account.radiologist_id.clone(),
                sites: account.sites.clone(),
                password_hash,
            },
            now,
        )
        .await?;
        let mut record = by.record(
            now,
            "user.create",
            format!("user/{}", user.login),
            Outcome::Success,
        );
        record.detail = serde_json::json!({ "role": user.role, "sites": user.sites }).to_string();
        audit::append(&mut tx, &record).await?;
        tx.commit().await?;
        Ok((user, generated))
    }

    /// Sets a password (the account's sessions end).
    pub async fn set_password(
        &self,
        login: &str,
        password: &str,
        by: &Actor,
    ) -> Result<(), ManageError> {
        // Before the hash's tenth of a second, and with its own answer.
        match accounts::user_by_login(&self.db, login).await? {
            None => return Err(AccountError::UnknownUser(login.to_string()).into()),
            Some((user, _)) if user.role == Role::Integration => {
                return Err(ManageError::Invalid(no_password()));
            }
            Some(_) => {}
        }
        let hash = self.hash(password).await?;
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        accounts::set_password(&mut tx, login, &hash, now).await?;
        let record = by.record(
            now,
            "user.password",
            format!("user/{login}"),
            Outcome::Success,
        );
        Ok(self.commit_revocation(tx, &record).await?)
    }

    /// Disables an account and revokes its sessions and tokens.
    pub async fn disable(&self, login: &str, by: &Actor) -> Result<(), ManageError> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        accounts::disable_user(&mut tx, login, now).await?;
        let record = by.record(
            now,
            "user.disable",
            format!("user/{login}"),
            Outcome::Success,
        );
        Ok(self.commit_revocation(tx, &record).await?)
    }

    /// A viewer token for the caller, returned once: valid for
    /// [`VIEWER_TOKEN_TTL`], for DICOMweb reads only (what a viewer that
    /// cannot set headers puts in its URLs), with the caller's own access.
    pub async fn create_viewer_token(
        &self,
        who: &Authenticated,
        source: &str,
    ) -> Result<(String, i64), sqlx::Error> {
        let now = self.now();
        let expires_at = now + i64::try_from(VIEWER_TOKEN_TTL.as_millis()).unwrap_or(i64::MAX);
        let token = token::generate_viewer();
        let mut tx = self.db.begin_write().await?;
        accounts::add_credential(
            &mut tx,
            &NewCredential {
                user_id: who.principal.user.id,
                kind: CredentialKind::Session,
                token_hash: &token::hash(&token),
                name: VIEWER_TOKEN_NAME,
                expires_at: Some(expires_at),
            },
            now,
        )
        .await?;
        let mut record = actor_of(&who.principal, source).record(
            now,
            "viewer_token.create",
            format!("user/{}", who.principal.user.login),
            Outcome::Success,
        );
        record.detail = serde_json::json!({ "expires_at": expires_at }).to_string();
        audit::append(&mut tx, &record).await?;
        tx.commit().await?;
        Ok((token, expires_at))
    }

    /// A new API token for `login`, returned once.
    pub async fn create_token(
        &self,
        login: &str,
        name: &str,
        expires_in: Option<Duration>,
        by: &Actor,
    ) -> Result<String, ManageError> {
        if name.trim().is_empty() || name.chars().count() > 100 {
            return Err(ManageError::Invalid(said!(
                "a token needs a name of 1 to 100 characters",
                "un jeton a besoin d'un nom de 1 à 100 caractères"
            )));
        }
        let (user, _) = accounts::user_by_login(&self.db, login)
            .await?
            .ok_or_else(|| AccountError::UnknownUser(login.to_string()))?;
        if user.disabled {
            return Err(ManageError::Invalid(said!(
                "account {login} is disabled",
                "le compte {login} est désactivé"
            )));
        }
        let now = self.now();
        let expires_at = expires_in
            .map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
        let token = token::generate();
        let mut tx = self.db.begin_write().await?;
        accounts::add_credential(
            &mut tx,
            &NewCredential {
                user_id: user.id,
                kind: CredentialKind::Token,
                token_hash: &token::hash(&token),
                name,
                expires_at,
            },
            now,
        )
        .await?;
        let mut record = by.record(
            now,
            "token.create",
            format!("user/{login}"),
            Outcome::Success,
        );
        record.detail = serde_json::json!({ "name": name, "expires_at": expires_at }).to_string();
        audit::append(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(token)
    }

    /// On the first start of an empty database: an `admin` account with a
    /// generated password, returned to be shown once.
    pub async fn first_admin(&self) -> Result<Option<String>, ManageError> {
        if accounts::any_user(&self.db).await? {
            return Ok(None);
        }
        let by = Actor {
            login: "telerad".into(),
            role: "system".into(),
            sites: String::new(),
            source: "local".into(),
        };
        let created = self
            .create_user(
                &NewAccount {
                    login: "admin".into(),
                    name: "Administrator".into(),
                    role: Role::Admin,
                    sites: Vec::new(),
                    radiologist_id: None,
                },
                None,
                &by,
            )
            .await;
        match created {
            Ok((_, password)) => Ok(password),
            // Another node sharing the database started at the same time
            // and made it: its start-up prints the password.
            Err(_) if accounts::any_user(&self.db).await? => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> LoginError {
    LoginError::Internal(e.to_string())
}

/// The audit identity of a signed-in account.
pub fn actor_of(principal: &Principal, source: &str) -> Actor {
    Actor {
        login: principal.user.login.clone(),
        role: principal.user.role.to_string(),
        sites: principal.sites().join(","),
        source: source.to_string(),
    }
}

/// Logins are short words: letters, digits, `.`, `_`, `-`.
pub fn check_login(login: &str) -> Result<(), ManageError> {
    let valid = !login.is_empty()
        && login.len() <= 64
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(ManageError::Invalid(said!(
            "login {login:?}: 1 to 64 letters, digits, '.', '_' or '-'",
            "identifiant {login:?} : de 1 à 64 lettres, chiffres, « . », « _ » ou « - »"
        )))
    }
}
