//! `poco-httpd`, the ready-made server: static files from the current directory, or
//! whatever a TOML config file describes. Logs through `tracing` (`RUST_LOG`), shuts
//! down gracefully on SIGINT and SIGTERM, reloads its configuration on SIGHUP.
//! Under systemd it takes the sockets passed to it (`LISTEN_FDS`, socket activation)
//! and reports readiness, reloads and stopping (`sd_notify`); `--check` only checks
//! a configuration.

mod config;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use config::{Cli, Settings};
use poco_httpd::handlers::AccessLog;
use poco_httpd::{ReloadHandle, ServerBuilder, ShutdownHandle};
use sd_notify::NotifyState;
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
    if cli.check {
        return check(&cli, &settings);
    }
    let passed = passed_sockets()?;
    let activated = !passed.is_empty();
    let listeners = settings.listeners(passed)?;
    let builder = listeners
        .into_iter()
        .fold(settings.builder(), ServerBuilder::listener);
    let server = builder.build()?.bind().await?;
    // Signal handlers are installed before the address is announced, so a signal
    // sent by whoever read it can never hit the default action (exit) instead.
    let terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    tokio::spawn(shut_down_on_signal(server.shutdown_handle(), terminate));
    let logs = settings.access_logs();
    let reload = Reload {
        cli,
        handle: server.reload_handle(),
        activated,
    };
    tokio::spawn(reload_on_sighup(hangup, reload, logs));
    for listener in server.listeners() {
        let redirect = if listener.redirects_to_https() {
            " (redirecting to https)"
        } else {
            ""
        };
        let (scheme, addr) = (listener.scheme(), listener.local_addr());
        println!("poco-httpd listening on {scheme}://{addr}{redirect}");
    }
    notify(NotifyState::Ready);
    server.run().await;
    Ok(())
}

/// `--check`: the configuration was read (every file opened, every value checked);
/// building the server checks what the library checks. Nothing is bound.
fn check(cli: &Cli, settings: &Settings) -> anyhow::Result<()> {
    let listeners = settings.listeners(Vec::new())?;
    let builder = listeners
        .into_iter()
        .fold(settings.builder(), ServerBuilder::listener);
    builder.build().context("the configuration is refused")?;
    match &cli.config {
        Some(file) => println!("poco-httpd: {}: the configuration is valid", file.display()),
        None => println!("poco-httpd: the command line is valid"),
    }
    Ok(())
}

/// The sockets systemd passed (socket activation: `LISTEN_FDS`, from fd 3 on, for
/// this process if `LISTEN_PID` says so); none when not socket-activated.
fn passed_sockets() -> anyhow::Result<Vec<std::net::TcpListener>> {
    let mut passed = listenfd::ListenFd::from_env();
    (0..passed.len())
        .map(|index| {
            passed
                .take_tcp_listener(index)
                .with_context(|| {
                    format!("socket activation: fd {} is not a TCP listener", index + 3)
                })?
                .with_context(|| format!("socket activation: fd {} was taken already", index + 3))
        })
        .collect()
}

/// Tells systemd (if it started us with `NOTIFY_SOCKET`) how the service is doing.
fn notify(state: NotifyState<'_>) {
    if let Err(error) = sd_notify::notify(&[state]) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}

/// What a SIGHUP reload needs.
struct Reload {
    cli: Cli,
    handle: ReloadHandle,
    /// The sockets came from systemd: the new config's `listen` is not compared.
    activated: bool,
}

/// SIGHUP: re-read the configuration and swap it in without dropping a connection:
/// handlers for requests from now on, limits and TLS certificate for connections from
/// now on; new access logs are opened, for log rotation. A bad new configuration, or
/// one that needs a restart (`listen`, TLS on or off), is refused with a message naming
/// the key; the old one stays, its logs reopened.
async fn reload_on_sighup(mut hangups: Signal, reload: Reload, mut logs: Vec<AccessLog>) {
    let Reload {
        cli,
        handle,
        activated,
    } = reload;
    while hangups.recv().await.is_some() {
        notify(NotifyState::Reloading);
        let reloaded = Settings::load(&cli).and_then(|settings| {
            // What the library refuses (a new `listen`, TLS switched) names the key;
            // the file is named here.
            let source = cli.config.as_ref().map(|file| file.display().to_string());
            let mut builder = settings.builder();
            if !activated {
                builder = settings
                    .listeners(Vec::new())?
                    .into_iter()
                    .fold(builder, ServerBuilder::listener);
            }
            handle
                .reload(builder)
                .with_context(|| source.unwrap_or_else(|| "the command line".to_owned()))?;
            Ok(settings.access_logs())
        });
        notify(NotifyState::Ready);
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
    notify(NotifyState::Stopping);
    shutdown.shutdown();
}
