//! `telerad user …`, `telerad token create` and `telerad audit verify`:
//! accounts and the audit trail from the command line, on the database
//! that the configuration names.

use crate::cli::{DatabaseArgs, config_of};
use anyhow::Context;
use clap::Subcommand;
use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use telerad_access::Access;
use telerad_access::service::{Actor, NewAccount};
use telerad_store::accounts::{self, Role};
use telerad_store::audit_spool::Orphans;
use telerad_store::{Database, SystemClock, audit};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; its password is read from standard input when
    /// that is not a terminal, otherwise generated and printed once.
    Add {
        login: String,
        #[arg(long)]
        role: Role,
        /// A site the account is bound to (clinician, technician,
        /// integration); repeat for several.
        #[arg(long = "site")]
        sites: Vec<String>,
        /// The `[[radiologists]]` id a radiologist's account reads as.
        #[arg(long)]
        radiologist: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Set a password (read as for `add`); the account's sessions end.
    Passwd {
        login: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Disable an account: its sessions and tokens stop working.
    Disable {
        login: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List the accounts.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for an account; it is printed once.
    Create {
        login: String,
        #[arg(long)]
        name: String,
        /// Days until it expires (default: never).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires: Option<u32>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit trail's hash chain; report the first broken link.
    Verify {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// The database and the access service on it. The configuration is not
/// written to it: that is `telerad serve`'s, and a command run with
/// another configuration (the embedded example, say) must not replace the
/// sites and radiologists of the server's. Accounts name those the server
/// recorded.
async fn open(args: &DatabaseArgs) -> anyhow::Result<(Database, Access)> {
    let config = config_of(args)?;
    let db = Database::connect(&config.database_url())
        .await
        .context("cannot open the database")?;
    let access = Access::new(db.clone(), Arc::new(SystemClock), &config, Orphans::Leave)
        .context("cannot start the audit spool")?;
    Ok((db, access))
}

/// A password from a pipe, or none (to be generated) at a terminal.
fn piped_password() -> anyhow::Result<Option<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    Ok((!password.is_empty()).then_some(password))
}

pub async fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    let by = Actor::command_line();
    match command {
        UserCommand::Add {
            login,
            role,
            sites,
            radiologist,
            name,
            database,
        } => {
            let (db, access) = open(&database).await?;
            let password = if role == Role::Integration {
                None
            } else {
                piped_password()?
            };
            let result = access
                .create_user(
                    &NewAccount {
                        name: name.unwrap_or_else(|| login.clone()),
                        login,
                        role,
                        sites,
                        radiologist_id: radiologist,
                    },
                    password.as_deref(),
                    &by,
                )
                .await;
            db.close().await;
            let (user, generated) = result?;
            println!("created {} ({})", user.login, user.role);
            if let Some(password) = generated {
                println!("password (shown once): {password}");
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::Passwd { login, database } => {
            let (db, access) = open(&database).await?;
            let (password, generated) = match piped_password()? {
                Some(p) => (p, false),
                None => (telerad_access::password::generate(), true),
            };
            let result = access.set_password(&login, &password, &by).await;
            db.close().await;
            result?;
            println!("password of {login} changed; its sessions ended");
            if generated {
                println!("password (shown once): {password}");
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::Disable { login, database } => {
            let (db, access) = open(&database).await?;
            let result = access.disable(&login, &by).await;
            db.close().await;
            result?;
            println!("{login} disabled; its sessions and tokens revoked");
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::List { database } => {
            let (db, _) = open(&database).await?;
            let users = accounts::list_users(&db).await;
            db.close().await;
            for user in users? {
                let mut line = format!("{}\t{}", user.login, user.role);
                if let Some(r) = &user.radiologist_id {
                    line.push_str(&format!("\tradiologist {r}"));
                }
                if !user.sites.is_empty() {
                    line.push_str(&format!("\tsites {}", user.sites.join(",")));
                }
                if user.disabled {
                    line.push_str("\tdisabled");
                }
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn token(command: TokenCommand) -> anyhow::Result<ExitCode> {
    let TokenCommand::Create {
        login,
        name,
        expires,
        database,
    } = command;
    let (db, access) = open(&database).await?;
    let expires_in = expires.map(|days| Duration::from_secs(u64::from(days) * 86_400));
    let result = access
        .create_token(&login, &name, expires_in, &Actor::command_line())
        .await;
    db.close().await;
    println!("{}", result?);
    Ok(ExitCode::SUCCESS)
}

pub async fn audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Verify { database } = command;
    let config = config_of(&database)?;
    let db = Database::connect(&config.database_url())
        .await
        .context("cannot open the database")?;
    let verification = audit::verify(&db).await;
    db.close().await;
    let verification = verification.context("cannot read the audit trail")?;
    match verification.broken {
        None => {
            println!(
                "audit trail intact: {} records verified",
                verification.records
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(link) => {
            println!(
                "audit trail broken at record {}: {} ({} records verified before it)",
                link.seq, link.reason, verification.records
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
