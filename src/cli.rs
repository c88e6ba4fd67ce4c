//! The command line.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use telerad_config::{Config, ConfigError};
use telerad_scp::Destination;
use telerad_store::{Clock, DatabaseClock, OffsetClock};

#[derive(Debug, Parser)]
#[command(
    name = "telerad",
    version,
    about = "Teleradiology DICOM router and reading worklist"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Receive studies over DICOM and serve the HTTP API.
    Serve(ServeArgs),
    /// Validate a configuration file and print every problem found.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// Check that a DICOM peer answers (C-ECHO).
    Echo {
        /// AE@HOST:PORT
        destination: Destination,
        #[arg(long, default_value = "TELERAD_SCU")]
        calling_ae: String,
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
    /// Send DICOM files, or every file under folders, to a peer (C-STORE).
    Push(PushArgs),
    /// Who is on duty at a given time, and why (weekly rota and overrides).
    Rota(crate::rota::RotaArgs),
    /// Accounts: add, passwd, disable, list.
    #[command(subcommand)]
    User(crate::accounts::UserCommand),
    /// API tokens: create.
    #[command(subcommand)]
    Token(crate::accounts::TokenCommand),
    /// The audit trail: verify.
    #[command(subcommand)]
    Audit(crate::accounts::AuditCommand),
    /// Print the OpenAPI 3.1 description of the HTTP API (as served at
    /// /api/openapi.json), for client generators and API testers.
    Openapi,
}

/// The configuration and where its data is: what `serve` runs on, and
/// what the account and audit commands open.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Configuration file (default: the embedded example, config/example.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Folder for received images and the SQLite database.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// sqlite:… or postgres://… (default: SQLite in the data folder).
    #[arg(long, env = "TELERAD_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// The configuration `args` name, with their data folder and database.
pub fn config_of(args: &DatabaseArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| config_error(path, e))?,
        None => Config::example(),
    };
    if let Some(dir) = &args.data_dir {
        config.storage.data_dir = dir.clone();
    }
    if let Some(url) = &args.database_url {
        config.storage.database_url = Some(url.clone());
    }
    Ok(config)
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[arg(long)]
    dicom_port: Option<u16>,
    #[arg(long)]
    dicom_bind: Option<IpAddr>,
    #[arg(long)]
    http_port: Option<u16>,
    #[arg(long)]
    http_bind: Option<IpAddr>,
    /// This server's AE title.
    #[arg(long)]
    ae_title: Option<String>,
    /// Start the clock at this instant (RFC 3339, e.g. 2026-03-29T03:00:00+02:00)
    /// instead of now; it then runs at normal speed. For drills and tests of
    /// the rota and escalation; never in production.
    #[arg(long, hide = true)]
    clock_start: Option<jiff::Timestamp>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Files or folders (walked recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// AE@HOST:PORT
    #[arg(long)]
    pub to: Destination,
    #[arg(long, default_value = "TELERAD_SCU")]
    pub calling_ae: String,
    /// Associations used in parallel.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub associations: u16,
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            // Due times and leases are read on the database's clock, so
            // that nodes sharing it agree; a drill sets its own.
            let (clock, database_clock): (Arc<dyn Clock>, _) = match args.clock_start {
                Some(start) => {
                    tracing::warn!("clock starts at {start}, not now (--clock-start)");
                    (
                        Arc::new(OffsetClock::starting_at(start.as_millisecond())),
                        None,
                    )
                }
                None => {
                    let clock = Arc::new(DatabaseClock::new());
                    (clock.clone() as Arc<dyn Clock>, Some(clock))
                }
            };
            let source = match &args.database.config {
                Some(path) => std::path::absolute(path)
                    .unwrap_or_else(|_| path.clone())
                    .display()
                    .to_string(),
                None => "embedded example configuration (config/example.toml)".to_owned(),
            };
            let config = serve_config(args)?;
            crate::serve::serve(config, &source, clock, database_clock).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { file } => Ok(check_config(&file)),
        Command::Echo {
            destination,
            calling_ae,
            timeout_secs,
        } => {
            let status = telerad_scp::scu::echo(
                &calling_ae,
                &destination,
                Duration::from_secs(timeout_secs),
            )
            .await
            .with_context(|| {
                format!("C-ECHO to {}@{}", destination.ae_title, destination.address)
            })?;
            if status == 0 {
                println!(
                    "{}@{} answered C-ECHO: success",
                    destination.ae_title, destination.address
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "{}@{} answered C-ECHO with status 0x{status:04X}",
                    destination.ae_title, destination.address
                );
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Push(args) => crate::push::push(args).await,
        Command::Rota(args) => crate::rota::rota(&args),
        Command::User(command) => crate::accounts::user(command).await,
        Command::Token(command) => crate::accounts::token(command).await,
        Command::Audit(command) => crate::accounts::audit(command).await,
        Command::Openapi => {
            println!("{}", crate::http_api::description_json());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve_config(args: ServeArgs) -> anyhow::Result<Config> {
    let mut config = config_of(&args.database)?;
    if let Some(port) = args.dicom_port {
        config.dicom.port = port;
    }
    if let Some(bind) = args.dicom_bind {
        config.dicom.bind = bind;
    }
    if let Some(port) = args.http_port {
        config.http.port = port;
    }
    if let Some(bind) = args.http_bind {
        config.http.bind = bind;
    }
    if let Some(ae) = args.ae_title {
        config.dicom.ae_title = ae;
    }
    config.validate().map_err(|e| {
        config_error(
            args.database
                .config
                .as_deref()
                .unwrap_or("(command line)".as_ref()),
            e,
        )
    })?;
    Ok(config)
}

pub fn config_error(path: &std::path::Path, e: ConfigError) -> anyhow::Error {
    let problems = e.problems();
    if problems.is_empty() {
        return anyhow::anyhow!("{e}");
    }
    let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    anyhow::anyhow!(
        "invalid configuration {}:\n{}",
        path.display(),
        list.join("\n")
    )
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            println!(
                "{}: valid ({} site{}, AE title {}, DICOM port {}, HTTP port {})",
                path.display(),
                config.sites.len(),
                if config.sites.len() == 1 { "" } else { "s" },
                config.dicom.ae_title,
                config.dicom.port,
                config.http.port
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let problems = e.problems();
            if problems.is_empty() {
                // Only an unreadable file has no problem list; its message
                // names the path and the reason.
                println!("{e}");
            } else {
                println!(
                    "{}: {} problem{}",
                    path.display(),
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                );
                for problem in problems {
                    println!("  {problem}");
                }
            }
            ExitCode::FAILURE
        }
    }
}
