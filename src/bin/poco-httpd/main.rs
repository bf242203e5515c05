//! `poco-httpd`, the ready-made server: static files from the current directory, or
//! whatever a TOML config file describes. Logs through `tracing` (`RUST_LOG`), shuts
//! down gracefully on SIGINT and SIGTERM.

mod config;

use std::process::ExitCode;

use clap::Parser;
use config::{Cli, Settings};
use poco_httpd::ShutdownHandle;
use poco_httpd::handlers::AccessLog;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("poco-httpd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(&cli)?;
    let server = settings.builder()?.build()?.bind().await?;
    println!("poco-httpd listening on http://{}", server.local_addr());
    tokio::spawn(shut_down_on_signal(server.shutdown_handle()));
    tokio::spawn(reopen_logs_on_sighup(settings.access_logs()));
    server.run().await;
    Ok(())
}

/// SIGHUP: reopen the access logs, for log rotation.
async fn reopen_logs_on_sighup(logs: Vec<AccessLog>) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => signal,
        Err(error) => return tracing::warn!(%error, "cannot watch SIGHUP"),
    };
    while hangups.recv().await.is_some() {
        for log in &logs {
            if let Err(error) = log.reopen() {
                tracing::error!(%error, "cannot reopen an access log; keeping the old file");
            }
        }
        tracing::info!("SIGHUP: access logs reopened");
    }
}

/// SIGINT (Ctrl-C) or SIGTERM: stop accepting, finish what is in flight, exit.
async fn shut_down_on_signal(shutdown: ShutdownHandle) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("signal received, shutting down");
    shutdown.shutdown();
}
