//! [`ReloadHandle`]: replaces a running server's handlers (its `Site`), and for new
//! connections its limits and TLS certificate (its `Transport`), without dropping a
//! connection.

use std::path::Path;
use std::sync::Arc;

use crate::server::BuiltParts;
use crate::shared::Shared;
use crate::tls::TlsSource;
use crate::transport::Transport;
use crate::{Error, ServerBuilder};

/// Replaces a running server's configuration — for example on SIGHUP — without
/// dropping a connection.
///
/// - Handlers, default headers, `max_body_size` and `stream_buffer` apply to requests
///   that start after the reload. Requests in flight finish with the handlers they
///   started with; an idle keep-alive connection lets go of the old handlers (and
///   what they hold, such as an open log file) at its next request or when it closes.
/// - Limits (timeouts, header bounds, `max_concurrent_streams`) and the TLS
///   certificate apply to connections accepted after the reload; open connections
///   keep theirs. `max_connections` and `shutdown_deadline` apply at once.
/// - The listen address cannot change, nor can TLS be turned on or off: both need a
///   restart, and a reload asking for either is refused.
///
/// ```no_run
/// use poco_httpd::{Outcome, Request, Response, Server};
///
/// fn hello(_req: Request, res: Response) -> Outcome {
///     res.set_body("hello");
///     Outcome::Ok
/// }
///
/// # async fn demo() -> Result<(), poco_httpd::Error> {
/// let app = || Server::builder().tls("cert.pem", "key.pem").content("/", hello);
/// let server = app().build()?.bind().await?;
/// let reload = server.reload_handle();
/// tokio::spawn(server.run());
/// // Later, say after the certificate was renewed: re-read everything…
/// reload.reload(app())?;
/// // …or only the certificate and key.
/// reload.reload_certificate("cert.pem", "key.pem")?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ReloadHandle {
    /// Builds everything `builder` describes and, if it is valid, makes it the
    /// server's; otherwise the server keeps its current configuration. The builder
    /// describes the whole server: limits it does not set return to their defaults.
    ///
    /// # Errors
    /// As [`ServerBuilder::build`] (which reads the TLS files); [`Error::NeedsRestart`]
    /// when the builder names another listen address (one it does not name is not
    /// compared), or would turn TLS on or off.
    pub fn reload(&self, builder: ServerBuilder) -> Result<(), Error> {
        let parts = builder.into_parts()?;
        self.check_live(&parts)?;
        let BuiltParts {
            site, transport, ..
        } = parts;
        let max_connections = transport.limits.max_connections;
        self.shared.transport.store(Arc::new(transport));
        self.shared.connection_slots.resize(max_connections);
        self.shared.site.store(Arc::new(site));
        tracing::info!("configuration reloaded");
        Ok(())
    }

    /// Replaces the certificate chain and key of a server that speaks HTTPS with those
    /// in the PEM files `cert` and `key`, for handshakes from now on (open connections
    /// keep the one they were made with). This is how a renewed certificate takes
    /// effect without a restart. The new config is built as
    /// [`ServerBuilder::tls`] builds it, replacing one given to
    /// [`ServerBuilder::tls_config`].
    ///
    /// # Errors
    /// [`Error::Tls`] naming the file at fault (the old certificate stays);
    /// [`Error::NeedsRestart`] when the server speaks plain HTTP.
    pub fn reload_certificate(
        &self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<(), Error> {
        if self.shared.transport.load().tls.is_none() {
            return Err(tls_switch(true));
        }
        let files = TlsSource::Files(cert.as_ref().to_owned(), key.as_ref().to_owned());
        let acceptor = files.acceptor()?;
        // `rcu`, so a reload running at the same time keeps its limits.
        self.shared.transport.rcu(|current| {
            Transport::new(
                current.limits.clone(),
                Some(acceptor.clone()),
                current.proxy_protocol,
            )
        });
        tracing::info!("TLS certificate reloaded");
        Ok(())
    }

    /// Refuses what only a restart can change.
    fn check_live(&self, parts: &BuiltParts) -> Result<(), Error> {
        if let Some(listen) = &parts.listen
            && *listen != self.shared.listen
        {
            return Err(Error::NeedsRestart {
                setting: "listen",
                change: format!("from {:?} to {listen:?}", self.shared.listen),
            });
        }
        let tls_now = self.shared.transport.load().tls.is_some();
        if parts.transport.tls.is_some() != tls_now {
            return Err(tls_switch(!tls_now));
        }
        Ok(())
    }
}

/// The refusal to turn TLS on (`on`) or off while the server runs.
fn tls_switch(on: bool) -> Error {
    let change = if on {
        "turning TLS on"
    } else {
        "turning TLS off"
    };
    Error::NeedsRestart {
        setting: "tls",
        change: change.to_owned(),
    }
}
