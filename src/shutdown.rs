//! [`ShutdownHandle`]: stopping a running server from any task or thread.
//!
//! Shutdown is a state, not a message: once requested it stays requested, so it
//! cannot be lost the way the original module's posted event sometimes was, whether
//! it comes before `run` starts, while it runs, or several times.

use tokio_util::sync::CancellationToken;

/// Stops a server: it stops accepting at once, lets requests in flight finish within
/// the shutdown deadline, and then [`BoundServer::run`](crate::BoundServer::run)
/// returns. Clone it freely; every clone stops the same server.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    pub(crate) draining: CancellationToken,
}

impl ShutdownHandle {
    /// Asks the server to shut down. Returns at once; callable from any thread, any
    /// number of times.
    pub fn shutdown(&self) {
        self.draining.cancel();
    }

    /// Reports whether shutdown has been asked for.
    pub fn is_shutting_down(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Completes once shutdown has been asked for (at once if it already was): what a
    /// task serving a taken-over connection waits on to say goodbye in time.
    pub async fn requested(&self) {
        self.draining.cancelled().await;
    }
}
