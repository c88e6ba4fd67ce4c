//! `telerad serve`: opens the archive, starts the DICOM SCP, the quiet-period
//! sweep and the HTTP API, and stops them in order on SIGINT or SIGTERM.

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use telerad_access::Access;
use telerad_config::Config;
use telerad_router::rota::Rota;
use telerad_scp::{AssociationContext, Policy, Scp};
use telerad_store::audit_spool::Orphans;
use telerad_store::commitment_reports::CommitmentReports;
use telerad_store::outbox::{Outbox, RetryPolicy};
use telerad_store::{Archive, Clock, DatabaseClock};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Runs the server until SIGINT or SIGTERM. `source` says where `config`
/// came from, for the start-up lines.
pub async fn serve(
    config: Config,
    source: &str,
    clock: Arc<dyn Clock>,
    database_clock: Option<Arc<DatabaseClock>>,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let _process_lock = telerad_store::process_lock::lock_for_serving(&config.database_url())?;
    let now_ms = clock.now_ms();
    let archive = Arc::new(
        Archive::open(&config, clock)
            .await
            .context("cannot open the archive")?,
    );
    if let Some(database_clock) = &database_clock {
        let offset = database_clock
            .synchronise(archive.index().database())
            .await
            .context("cannot read the database's clock")?;
        if offset.abs() > 1_000 {
            tracing::warn!(
                offset_ms = offset,
                "this machine's clock differs from the database's: due times follow the database"
            );
        }
    }
    let access = Arc::new(
        Access::new(
            archive.index().database().clone(),
            archive.clock().clone(),
            &config,
            Orphans::Adopt,
        )
        .context("cannot start the audit spool")?,
    );
    first_admin(&access, &config.storage.data_dir).await?;
    let dicom_addr = (config.dicom.bind, config.dicom.port);
    let dicom_listener = TcpListener::bind(dicom_addr).await.with_context(|| {
        format!(
            "cannot listen for DICOM on {}:{}",
            dicom_addr.0, dicom_addr.1
        )
    })?;
    let dicom_tls_listener = match (
        config.dicom.tls_port,
        &config.dicom.tls_cert,
        &config.dicom.tls_key,
    ) {
        (Some(port), Some(cert), Some(key)) => {
            let acceptor =
                telerad_scp::tls::acceptor(cert, key, config.dicom.tls_client_ca.as_deref())
                    .context("cannot set up DICOM TLS")?;
            let listener = TcpListener::bind((config.dicom.bind, port))
                .await
                .with_context(|| {
                    format!(
                        "cannot listen for DICOM TLS on {}:{port}",
                        config.dicom.bind
                    )
                })?;
            Some((listener, acceptor))
        }
        _ => None,
    };
    let http_addr = (config.http.bind, config.http.port);
    let http_listener = TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}:{}", http_addr.0, http_addr.1))?;
    let tls = crate::https::tls_config(&config).await?;
    log_start_up(&config, source, now_ms);
    match &tls {
        Some((_, what)) => tracing::info!("HTTPS with {what}"),
        None => tracing::warn!(
            "plain HTTP: put a reverse proxy that terminates TLS in front of it, \
             or set tls_cert and tls_key in [http]"
        ),
    }
    if let Some((listener, _)) = &dicom_tls_listener {
        tracing::info!(
            "DICOM TLS on {}{}",
            listener.local_addr()?,
            if config.dicom.tls_client_ca.is_some() {
                ", client certificates required"
            } else {
                ""
            }
        );
    }
    tracing::info!(
        "telerad ready: DICOM as {} on {}, HTTP on {}://{}",
        config.dicom.ae_title,
        dicom_listener.local_addr()?,
        if tls.is_some() { "https" } else { "http" },
        http_listener.local_addr()?
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    if let Some(database_clock) = database_clock {
        // Clocks drift: the offset is measured again every minute.
        let archive = archive.clone();
        let mut shutdown = shutdown_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                    _ = shutdown.changed() => return,
                }
                if let Err(e) = database_clock.synchronise(archive.index().database()).await {
                    tracing::warn!("cannot read the database's clock: {e}");
                }
            }
        });
    }
    // Deliveries to radiologists' workstations (the router's and the
    // workstations' own C-MOVEs): the outbox lives in the
    // index database; the forwarder sends as telerad's own AE title.
    let outbox = Arc::new(
        Outbox::new(
            archive.index().database().clone(),
            RetryPolicy {
                base: config.forwarding.retry_base(),
                max_delay: config.forwarding.retry_max_delay(),
                max_attempts: config.forwarding.max_attempts,
            },
        )
        .with_clock(archive.clock().clone()),
    );
    // Storage commitment reports for requesters that take them on an
    // association of their own, kept in the index database.
    let commitment_reports = Arc::new(CommitmentReports::new(
        archive.index().database().clone(),
        archive.clock().clone(),
    ));
    let association_context = Arc::new(AssociationContext {
        policy: Policy::from_config(config.clone()),
        archive: archive.clone(),
        artim_timeout: Duration::from_secs(config.dicom.artim_timeout_secs),
        idle_timeout: Duration::from_secs(config.dicom.idle_timeout_secs),
        sites: Default::default(),
        outbox: outbox.clone(),
        commitment_reports: commitment_reports.clone(),
    });
    let scp = Scp::sharing(
        dicom_listener,
        association_context.clone(),
        config.dicom.max_associations,
        Duration::from_secs(config.dicom.shutdown_grace_secs),
    );
    // DICOM TLS beside the plain port, with the same policy and archive
    // (and a limit of associations of its own).
    let tls_scp_task = match dicom_tls_listener {
        Some((listener, acceptor)) => {
            let scp = Scp::sharing(
                listener,
                association_context,
                config.dicom.max_associations,
                Duration::from_secs(config.dicom.shutdown_grace_secs),
            )
            .with_tls(acceptor);
            Some(tokio::spawn(scp.run(shutdown_rx.clone())))
        }
        None => None,
    };
    let scp_task = tokio::spawn(scp.run(shutdown_rx.clone()));
    let completion_task = tokio::spawn(telerad_store::completion::run_completion(
        archive.clone(),
        shutdown_rx.clone(),
    ));
    let forwarder_task = tokio::spawn(telerad_forward::forwarder::run_forwarder(
        outbox.clone(),
        archive.clone(),
        sender(&config)?,
        config.forwarding.associations_per_destination,
        shutdown_rx.clone(),
    ));
    let commitment_task = tokio::spawn(
        telerad_forward::commitment::ReportSender::new(
            commitment_reports,
            &config.dicom.ae_title,
            telerad_store::events::RetryPolicy {
                max_attempts: i64::from(config.forwarding.max_attempts),
                first_delay: config.forwarding.retry_base(),
                max_delay: config.forwarding.retry_max_delay(),
            },
        )
        .run(shutdown_rx.clone()),
    );
    let router = Arc::new(
        telerad_router::service::Router::new(&config, archive.clone(), outbox.clone())
            .context("cannot start the router")?,
    );
    let retention_task = tokio::spawn(keep_audit_trail(
        archive.clone(),
        config.audit.retention_months,
        shutdown_rx.clone(),
    ));
    let router_task = tokio::spawn(telerad_router::service::run_router(
        router.clone(),
        shutdown_rx.clone(),
    ));
    // Webhooks and e-mails of the workflow events, planned from the log.
    let notifier = telerad_notify::Notifier::new(
        &config,
        archive.index().database().clone(),
        archive.clock().clone(),
    )
    .context("cannot set up notifications")?;
    let notifier_task = tokio::spawn(notifier.run(shutdown_rx.clone()));
    let state = crate::http_api::AppState::new(archive.clone(), outbox.clone(), router, access)
        .with_pages(telerad_pages::Settings {
            initial_password_file: config.storage.data_dir.join(INITIAL_PASSWORD_FILE),
            sites: config
                .sites
                .iter()
                .map(|site| telerad_pages::SiteSummary {
                    name: site.name.clone(),
                    ae_titles: site.ae_titles.join(", "),
                    networks: site
                        .allowed_networks
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    time_zone: site.time_zone_name.clone(),
                })
                .collect(),
        });
    // The first frames of each study rendered as it completes.
    let prerender_task = tokio::spawn(telerad_viewer_api::prerender::run(
        archive.clone(),
        state.render_cache(),
        shutdown_rx.clone(),
    ));
    let app = crate::http_api::app(state, tls.is_some(), &config.http.cors_allowed_origins);
    let http_task = tokio::spawn(serve_http(http_listener, app, tls, shutdown_rx.clone()));

    wait_for_signal().await?;
    tracing::info!("shutting down: no new associations; running ones may finish");
    let _ = shutdown_tx.send(true);
    // Event streams end now rather than hold the HTTP server's shutdown.
    archive.index().database().announce_closing();
    let _ = scp_task.await;
    if let Some(task) = tls_scp_task {
        let _ = task.await;
    }
    let _ = completion_task.await;
    let _ = router_task.await;
    let _ = notifier_task.await;
    let _ = prerender_task.await;
    let _ = retention_task.await;
    // After the SCP: a C-STORE under way to a workstation is finished.
    let _ = forwarder_task.await;
    let _ = commitment_task.await;
    if let Ok(Err(e)) = http_task.await {
        tracing::warn!("HTTP server stopped with an error: {e}");
    }
    archive.index().database().close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Serves `app` over HTTPS when `tls` is given, else plain HTTP, until
/// shutdown; the peer's address goes to audit records and login
/// throttling.
async fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<(axum_server::tls_rustls::RustlsConfig, String)>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = shutdown.changed().await;
                })
                .await
        }
        Some((config, _)) => {
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                let _ = shutdown.changed().await;
                stopper.graceful_shutdown(Some(Duration::from_secs(10)));
            });
            axum_server::from_tcp_rustls(listener.into_std()?, config)
                .handle(handle)
                .serve(service)
                .await
        }
    }
}

/// The forwarder's identity: telerad's AE title, DICOM TLS to each
/// workstation configured with a `tls_ca` (presenting `[dicom] tls_cert`
/// when the workstation asks for a client certificate), and compression
/// for those configured with `compression = "jpeg-ls"`.
fn sender(config: &Config) -> anyhow::Result<telerad_forward::forwarder::Sender> {
    let mut sender = telerad_forward::forwarder::Sender::plain(&config.dicom.ae_title);
    let identity = match (&config.dicom.tls_cert, &config.dicom.tls_key) {
        (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
        _ => None,
    };
    for radiologist in &config.radiologists {
        let Some(workstation) = &radiologist.workstation else {
            continue;
        };
        if let Some(ca) = &workstation.tls_ca {
            let client = telerad_scp::tls::client(&workstation.host, ca, identity)
                .with_context(|| format!("DICOM TLS to the workstation of {}", radiologist.id))?;
            sender = sender.with_tls(&workstation.host, workstation.port, client);
        }
        sender = sender.with_operations_window(
            &workstation.host,
            workstation.port,
            workstation.operations_window,
        );
        if workstation.compression == telerad_config::TransferCompression::JpegLs {
            sender = sender.with_compression(&workstation.host, workstation.port);
        }
    }
    Ok(sender)
}

/// Removes audit records older than the retention period, at start-up and
/// then daily (`audit::prune` moves the chain's anchor with them).
async fn keep_audit_trail(
    archive: Arc<Archive>,
    retention_months: u32,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let now = archive.clock().now_ms();
        let cutoff = jiff::Timestamp::from_millisecond(now).ok().and_then(|now| {
            now.to_zoned(jiff::tz::TimeZone::UTC)
                .checked_sub(jiff::Span::new().months(i64::from(retention_months)))
                .ok()
        });
        match cutoff {
            Some(cutoff) => {
                let before = cutoff.timestamp().as_millisecond();
                match telerad_store::audit::prune(archive.index().database(), before).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(
                        removed,
                        "audit records older than {retention_months} months removed"
                    ),
                    Err(e) => tracing::warn!("cannot remove old audit records: {e}"),
                }
            }
            None => tracing::warn!("the clock is out of range: audit retention skipped"),
        }
        // Sessions that ended a day ago or more: nothing reads them again
        // (their use is in the audit trail).
        let ended = now.saturating_sub(24 * 3600 * 1000);
        match telerad_store::accounts::remove_old_sessions(archive.index().database(), ended).await
        {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "ended sessions removed"),
            Err(e) => tracing::warn!("cannot remove ended sessions: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(24 * 3600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Where the first administrator's password is written, for its owner only.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// On the first start of an empty database, an `admin` account, so that
/// the first person has a way in: its password is printed once and written
/// to a file only this system user may read.
async fn first_admin(access: &Access, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let Some(password) = access
        .first_admin()
        .await
        .context("cannot create the first administrator")?
    else {
        return Ok(());
    };
    let path = data_dir.join(INITIAL_PASSWORD_FILE);
    write_owner_only(&path, &format!("{password}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "First start: an administrator account was created.\n  \
         login:    admin\n  \
         password: {password}\n\
         (also in {}, readable by this user only; sign in, then change it: \
         telerad user passwd admin)",
        path.display()
    );
    tracing::warn!(
        "first start: account admin created, its password is in {}",
        path.display()
    );
    Ok(())
}

pub fn write_owner_only(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // A file left by an earlier database keeps its mode: set it again.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// What an operator needs to know that the server runs as intended: which
/// configuration, where the data goes, and who would be given a study now.
fn log_start_up(config: &Config, source: &str, now_ms: i64) {
    tracing::info!("configuration: {source}");
    tracing::info!("database: {}", config.storage.database_url_for_log());
    let data_dir = &config.storage.data_dir;
    let data_dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.clone());
    tracing::info!(
        "storage: {} (images in studies/, this node's receptions in progress in incoming/{}/)",
        data_dir.display(),
        config.storage.node_id()
    );
    for line in on_duty_lines(config, now_ms) {
        tracing::info!("{line}");
    }
}

/// Per site, who is on duty at `now_ms` and licensed for it.
fn on_duty_lines(config: &Config, now_ms: i64) -> Vec<String> {
    let duties = match (
        Rota::from_config(config),
        jiff::Timestamp::from_millisecond(now_ms),
    ) {
        (Ok(rota), Ok(now)) => rota.on_duty(now),
        (Err(e), _) => return vec![format!("rota cannot be read: {e}")],
        (_, Err(e)) => return vec![format!("the clock is out of range: {e}")],
    };
    config
        .sites
        .iter()
        .map(|site| {
            let licensed: Vec<String> = duties
                .iter()
                .filter(|duty| {
                    config
                        .radiologists
                        .iter()
                        .any(|r| r.id == duty.radiologist_id && r.sites.contains(&site.name))
                })
                .map(|duty| {
                    format!(
                        "{} ({} {})",
                        duty.radiologist_id, duty.role, duty.subspecialty
                    )
                })
                .collect();
            if licensed.is_empty() {
                format!("nobody on duty for site {}", site.name)
            } else {
                format!("on duty for site {}: {}", site.name, licensed.join(", "))
            }
        })
        .collect()
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot watch SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot watch Ctrl-C")?;
    Ok(())
}
