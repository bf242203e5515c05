//! `poco-httpd`, the ready-made server: static files from the current directory, or
//! whatever a TOML config file describes. Logs through `tracing` (`RUST_LOG`), shuts
//! down gracefully on SIGINT and SIGTERM, reloads its configuration on SIGHUP.

mod config;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use config::{Cli, Settings};
use poco_httpd::handlers::AccessLog;
use poco_httpd::{ReloadHandle, ShutdownHandle};
use tokio::signal::unix::{Signal, SignalKind, signal};

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
    let server = settings.builder().build()?.bind().await?;
    // Signal handlers are installed before the address is announced, so a signal
    // sent by whoever read it can never hit the default action (exit) instead.
    let terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    tokio::spawn(shut_down_on_signal(server.shutdown_handle(), terminate));
    let logs = settings.access_logs();
    tokio::spawn(reload_on_sighup(hangup, cli, server.reload_handle(), logs));
    let scheme = settings.scheme();
    println!("poco-httpd listening on {scheme}://{}", server.local_addr());
    server.run().await;
    Ok(())
}

/// SIGHUP: re-read the configuration and swap it in without dropping a connection:
/// handlers for requests from now on, limits and TLS certificate for connections from
/// now on; new access logs are opened, for log rotation. A bad new configuration, or
/// one that needs a restart (`listen`, TLS on or off), is refused with a message naming
/// the key; the old one stays, its logs reopened.
async fn reload_on_sighup(
    mut hangups: Signal,
    cli: Cli,
    reload: ReloadHandle,
    mut logs: Vec<AccessLog>,
) {
    while hangups.recv().await.is_some() {
        let reloaded = Settings::load(&cli).and_then(|settings| {
            // What the library refuses (a new `listen`, TLS switched) names the key;
            // the file is named here.
            let source = cli.config.as_ref().map(|file| file.display().to_string());
            reload
                .reload(settings.builder())
                .with_context(|| source.unwrap_or_else(|| "the command line".to_owned()))?;
            Ok(settings.access_logs())
        });
        match reloaded {
            Ok(new_logs) => {
                logs = new_logs;
                tracing::info!("SIGHUP: configuration reloaded");
            }
            Err(error) => {
                tracing::error!(
                    "SIGHUP: new configuration refused, keeping the old one: {error:#}"
                );
                for log in &logs {
                    if let Err(error) = log.reopen() {
                        tracing::error!(%error, "cannot reopen an access log; keeping the old file");
                    }
                }
            }
        }
    }
}

/// SIGINT (Ctrl-C) or SIGTERM: stop accepting, finish what is in flight, exit.
async fn shut_down_on_signal(shutdown: ShutdownHandle, mut terminate: Signal) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("signal received, shutting down");
    shutdown.shutdown();
}
