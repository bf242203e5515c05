//! [`WebSocketExt`]: `websocket(path, handler)` on the server builder, the short way to
//! register a [`WebSocket`] endpoint.

use std::future::Future;

use super::WebSocket;
use super::socket::Socket;
use crate::ServerBuilder;

/// Adds [`websocket`](WebSocketExt::websocket) to [`ServerBuilder`].
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::WebSocketExt;
///
/// let builder = Server::builder().websocket("/echo", |mut socket| async move {
///     while let Some(message) = socket.recv().await {
///         if message.is_data() && socket.send(message).await.is_err() {
///             break;
///         }
///     }
/// });
/// # drop(builder);
/// ```
pub trait WebSocketExt {
    /// Serves WebSockets at `path` with `handler` and the [`WebSocket`] defaults;
    /// the same as `.content(path, WebSocket::new(handler))`.
    #[must_use]
    fn websocket<F, Fut>(self, path: &str, handler: F) -> Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static;
}

impl WebSocketExt for ServerBuilder {
    fn websocket<F, Fut>(self, path: &str, handler: F) -> Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.content(path, WebSocket::new(handler))
    }
}
