//! Accounts and their credentials (migration 0011): who may sign in, with
//! which role and sites, and the sessions and API tokens that stand for
//! them. Only hashes of passwords and tokens are stored; hashing them is
//! the caller's (`telerad-access`), so that this crate holds no secret.

use crate::Database;
use crate::flag::Flag;
use crate::ids::{CredentialId, UserId};
use serde::Serialize;

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// What an account may do is decided from its role (`telerad-access`'s
/// policy); the words are those of the `users.role` CHECK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Radiologist,
    Clinician,
    Technician,
    /// A hospital system: API tokens only, never a password.
    Integration,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Radiologist,
        Role::Clinician,
        Role::Technician,
        Role::Integration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Radiologist => "radiologist",
            Role::Clinician => "clinician",
            Role::Technician => "technician",
            Role::Integration => "integration",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}: expected admin, radiologist, clinician, technician or integration")]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

impl TryFrom<String> for Role {
    type Error = UnknownRole;

    fn try_from(s: String) -> Result<Role, UnknownRole> {
        s.parse()
    }
}

/// An account as the policy and the API see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: UserId,
    pub login: String,
    pub name: String,
    pub role: Role,
    /// The `[[radiologists]]` id a radiologist's account reads as.
    pub radiologist_id: Option<String>,
    /// The sites the account is bound to (clinicians, technicians,
    /// integrations); a radiologist's sites are their licence, read from
    /// the configuration by the policy.
    pub sites: Vec<String>,
    pub disabled: bool,
}

#[derive(Debug, sqlx::FromRow)]
struct UserRow {
    id: UserId,
    login: String,
    name: String,
    #[sqlx(try_from = "String")]
    role: Role,
    radiologist_id: Option<String>,
    #[sqlx(try_from = "Flag")]
    disabled: bool,
    password_hash: Option<String>,
}

const USER_COLUMNS: &str = "id, login, name, role, radiologist_id, disabled, password_hash";

#[derive(Debug, Clone)]
pub struct NewUser {
    pub login: String,
    pub name: String,
    pub role: Role,
    pub radiologist_id: Option<String>,
    pub sites: Vec<String>,
    pub password_hash: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("login {0:?} is taken")]
    LoginTaken(String),
    #[error("no site {0:?} in the configuration `telerad serve` last started with")]
    UnknownSite(String),
    #[error("no radiologist {0:?} in the configuration `telerad serve` last started with")]
    UnknownRadiologist(String),
    #[error("no user {0:?}")]
    UnknownUser(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Whether any account exists (the first start creates an admin if not).
pub async fn any_user(db: &Database) -> Result<bool, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(&db.pool)
        .await?;
    Ok(count > 0)
}

/// Creates an account, in the caller's write transaction (with its audit
/// record).
pub async fn create_user(tx: &mut Tx<'_>, new: &NewUser, now: i64) -> Result<User, AccountError> {
    let taken: Option<(UserId,)> = sqlx::query_as("SELECT id FROM users WHERE login = $1")
        .bind(&new.login)
        .fetch_optional(&mut **tx)
        .await?;
    if taken.is_some() {
        return Err(AccountError::LoginTaken(new.login.clone()));
    }
    if let Some(radiologist) = &new.radiologist_id {
        let known: Option<(String,)> =
            sqlx::query_as("SELECT id FROM radiologists WHERE id = $1 AND configured = TRUE")
                .bind(radiologist)
                .fetch_optional(&mut **tx)
                .await?;
        if known.is_none() {
            return Err(AccountError::UnknownRadiologist(radiologist.clone()));
        }
    }
    for site in &new.sites {
        let known: Option<(String,)> = sqlx::query_as("SELECT name FROM sites WHERE name = $1")
            .bind(site)
            .fetch_optional(&mut **tx)
            .await?;
        if known.is_none() {
            return Err(AccountError::UnknownSite(site.clone()));
        }
    }
    let (id,): (UserId,) = sqlx::query_as(
        "INSERT INTO users (login, name, role, radiologist_id, password_hash, disabled, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, FALSE, $6, $6) RETURNING id",
    )
    .bind(&new.login)
    .bind(&new.name)
    .bind(new.role.as_str())
    .bind(&new.radiologist_id)
    .bind(&new.password_hash)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    let mut sites = new.sites.clone();
    sites.sort();
    sites.dedup();
    for site in &sites {
        sqlx::query("INSERT INTO user_sites (user_id, site) VALUES ($1, $2)")
            .bind(id)
            .bind(site)
            .execute(&mut **tx)
            .await?;
    }
    Ok(User {
        id,
        login: new.login.clone(),
        name: new.name.clone(),
        role: new.role,
        radiologist_id: new.radiologist_id.clone(),
        sites,
        disabled: false,
    })
}

async fn sites_of(db: &Database, id: UserId) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT site FROM user_sites WHERE user_id = $1 ORDER BY site")
            .bind(id)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows.into_iter().map(|(site,)| site).collect())
}

async fn with_sites(db: &Database, row: UserRow) -> Result<(User, Option<String>), sqlx::Error> {
    let sites = sites_of(db, row.id).await?;
    Ok((
        User {
            id: row.id,
            login: row.login,
            name: row.name,
            role: row.role,
            radiologist_id: row.radiologist_id,
            sites,
            disabled: row.disabled,
        },
        row.password_hash,
    ))
}

/// An account and its password hash (none for an integration), by login.
pub async fn user_by_login(
    db: &Database,
    login: &str,
) -> Result<Option<(User, Option<String>)>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE login = $1");
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(login)
        .fetch_optional(&db.pool)
        .await?;
    match row {
        Some(row) => Ok(Some(with_sites(db, row).await?)),
        None => Ok(None),
    }
}

/// Every account, by login.
pub async fn list_users(db: &Database) -> Result<Vec<User>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY login");
    let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&db.pool)
        .await?;
    let mut users = Vec::with_capacity(rows.len());
    for row in rows {
        users.push(with_sites(db, row).await?.0);
    }
    Ok(users)
}

/// Sets a new password hash and revokes the account's sessions (not its
/// API tokens): whoever knew the old password is signed out.
pub async fn set_password(
    tx: &mut Tx<'_>,
    login: &str,
    password_hash: &str,
    now: i64,
) -> Result<UserId, AccountError> {
    let row: Option<(UserId,)> = sqlx::query_as(
        "UPDATE users SET password_hash = $1, updated_at = $2 WHERE login = $3 \
         AND role <> 'integration' RETURNING id",
    )
    .bind(password_hash)
    .bind(now)
    .bind(login)
    .fetch_optional(&mut **tx)
    .await?;
    let (id,) = row.ok_or_else(|| AccountError::UnknownUser(login.to_string()))?;
    sqlx::query(
        "UPDATE credentials SET revoked_at = $1 WHERE user_id = $2 AND kind = 'session' \
         AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    bump_epoch(tx).await?;
    Ok(id)
}

/// Disables an account and revokes every credential it holds.
pub async fn disable_user(tx: &mut Tx<'_>, login: &str, now: i64) -> Result<UserId, AccountError> {
    let row: Option<(UserId,)> = sqlx::query_as(
        "UPDATE users SET disabled = TRUE, updated_at = $1 WHERE login = $2 RETURNING id",
    )
    .bind(now)
    .bind(login)
    .fetch_optional(&mut **tx)
    .await?;
    let (id,) = row.ok_or_else(|| AccountError::UnknownUser(login.to_string()))?;
    sqlx::query("UPDATE credentials SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    bump_epoch(tx).await?;
    Ok(id)
}

/// A session (for a person who signed in) or an API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    Session,
    Token,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Session => "session",
            CredentialKind::Token => "token",
        }
    }
}

impl TryFrom<String> for CredentialKind {
    type Error = String;

    fn try_from(s: String) -> Result<CredentialKind, String> {
        match s.as_str() {
            "session" => Ok(CredentialKind::Session),
            "token" => Ok(CredentialKind::Token),
            _ => Err(format!("unknown credential kind {s:?}")),
        }
    }
}

pub struct NewCredential<'a> {
    pub user_id: UserId,
    pub kind: CredentialKind,
    pub token_hash: &'a str,
    pub name: &'a str,
    pub expires_at: Option<i64>,
}

pub async fn add_credential(
    tx: &mut Tx<'_>,
    credential: &NewCredential<'_>,
    now: i64,
) -> Result<CredentialId, sqlx::Error> {
    let (id,): (CredentialId,) = sqlx::query_as(
        "INSERT INTO credentials (user_id, kind, token_hash, name, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(credential.user_id)
    .bind(credential.kind.as_str())
    .bind(credential.token_hash)
    .bind(credential.name)
    .bind(now)
    .bind(credential.expires_at)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

/// A credential that may be used now, with its account.
#[derive(Debug, Clone)]
pub struct ValidCredential {
    pub id: CredentialId,
    pub kind: CredentialKind,
    pub user: User,
    /// The account's password hash, for re-authentication (signing).
    pub password_hash: Option<String>,
    /// When it stops being valid (ms since the epoch), if it does.
    pub expires_at: Option<i64>,
}

/// Why a presented token does not let anyone in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialRefusal {
    Unknown,
    Expired,
    Revoked,
    Disabled,
}

#[derive(Debug, sqlx::FromRow)]
struct CredentialRow {
    id: CredentialId,
    #[sqlx(try_from = "String")]
    kind: CredentialKind,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
    user_id: UserId,
    login: String,
    name: String,
    #[sqlx(try_from = "String")]
    role: Role,
    radiologist_id: Option<String>,
    #[sqlx(try_from = "Flag")]
    disabled: bool,
    password_hash: Option<String>,
    site: Option<String>,
}

/// How often the last use of a credential is written: every request would
/// make each read a write.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// The credential whose token hashes to `token_hash`, if it may be used at
/// `now`.
pub async fn credential(
    db: &Database,
    token_hash: &str,
    now: i64,
) -> Result<Result<ValidCredential, CredentialRefusal>, sqlx::Error> {
    // One statement, one row per site of the account (or one with no
    // site): every request runs it.
    let rows: Vec<CredentialRow> = sqlx::query_as(
        "SELECT c.id, c.kind, c.expires_at, c.revoked_at, c.last_used_at, \
         u.id AS user_id, u.login, u.name, u.role, u.radiologist_id, u.disabled, \
         u.password_hash, s.site FROM credentials c JOIN users u ON u.id = c.user_id \
         LEFT JOIN user_sites s ON s.user_id = u.id WHERE c.token_hash = $1 ORDER BY s.site",
    )
    .bind(token_hash)
    .fetch_all(&db.pool)
    .await?;
    let Some(row) = rows.first() else {
        return Ok(Err(CredentialRefusal::Unknown));
    };
    let user = User {
        id: row.user_id,
        login: row.login.clone(),
        name: row.name.clone(),
        role: row.role,
        radiologist_id: row.radiologist_id.clone(),
        sites: rows.iter().filter_map(|r| r.site.clone()).collect(),
        disabled: row.disabled,
    };
    let password_hash = row.password_hash.clone();
    // Disabling revokes too: the account's state is the better answer.
    if user.disabled {
        return Ok(Err(CredentialRefusal::Disabled));
    }
    if row.revoked_at.is_some() {
        return Ok(Err(CredentialRefusal::Revoked));
    }
    if row.expires_at.is_some_and(|at| at <= now) {
        return Ok(Err(CredentialRefusal::Expired));
    }
    // Checked before writing: even an UPDATE that changes no row takes
    // SQLite's write lock, which every request would then queue for.
    if row
        .last_used_at
        .is_none_or(|at| at < now - LAST_USED_RESOLUTION_MS)
    {
        sqlx::query(
            "UPDATE credentials SET last_used_at = $1 WHERE id = $2 \
             AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(now)
        .bind(row.id)
        .bind(now - LAST_USED_RESOLUTION_MS)
        .execute(&db.pool)
        .await?;
    }
    Ok(Ok(ValidCredential {
        id: row.id,
        kind: row.kind,
        user,
        password_hash,
        expires_at: row.expires_at,
    }))
}

/// Revokes one credential (logout); false if it was already revoked.
pub async fn revoke_credential(
    tx: &mut Tx<'_>,
    id: CredentialId,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE credentials SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    bump_epoch(tx).await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes the unexpired credentials of `user` named `name` (a signed-out
/// user's viewer tokens); how many.
pub async fn revoke_named(
    tx: &mut Tx<'_>,
    user: UserId,
    name: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE credentials SET revoked_at = $1 WHERE user_id = $2 AND name = $3 \
         AND kind = 'session' AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(user)
    .bind(name)
    .execute(&mut **tx)
    .await?;
    bump_epoch(tx).await?;
    Ok(done.rows_affected())
}

/// Moves [`credentials_epoch`] on: every change that takes away a
/// credential's use, or changes what it stands for, calls it in its own
/// transaction, so that servers caching verified credentials forget them.
async fn bump_epoch(tx: &mut Tx<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE credentials_epoch SET epoch = epoch + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The current credentials epoch (see [`bump_epoch`]).
pub async fn credentials_epoch(db: &Database) -> Result<i64, sqlx::Error> {
    let (epoch,): (i64,) = sqlx::query_as("SELECT epoch FROM credentials_epoch WHERE id = 1")
        .fetch_one(&db.pool)
        .await?;
    Ok(epoch)
}

/// Removes sessions that expired or were revoked before `before` (tokens
/// are kept: an administrator lists them).
pub async fn remove_old_sessions(db: &Database, before: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM credentials WHERE kind = 'session' AND (expires_at < $1 OR revoked_at < $1)",
    )
    .bind(before)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}
