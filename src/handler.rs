//! The [`Handler`] trait every phase calls, and the [`Outcome`] a handler returns.
//!
//! One trait serves every phase. Closures and `async fn`s become handlers through a
//! blanket impl, and a synchronous closure can return a bare [`Outcome`] because
//! `Outcome` is itself an (immediately ready) [`IntoFuture`].

use std::any::Any;
use std::fmt;
use std::future::{Future, IntoFuture, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::StatusCode;

use crate::{Request, Response};

/// What a handler tells the pipeline when it returns.
///
/// The meaning depends on the phase, as in the original module:
///
/// | phase | `Ok` | `Deny` | `Wait` |
/// |---|---|---|---|
/// | Trans | next Trans handler | stop the Trans list, go on to mapping | suspend until [`Response::resume`] |
/// | Pre | next Pre handler | answer 403 (unless the handler set an error status) and skip Content | suspend |
/// | Content | send the response | answer 403 (unless the handler set an error status) | suspend, then send |
/// | Post | next Post handler | stop the Post list | suspend |
/// | Error | go on to the Post handlers | go on to the Post handlers | suspend |
#[must_use = "the pipeline acts on the outcome a handler returns"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Everything is fine: carry on with the next handler.
    Ok,
    /// Stop this phase; for Pre and Content handlers the client is refused.
    Deny,
    /// Suspend this request's pipeline until [`Response::resume`] is called, from any
    /// task or thread. Nothing else is blocked meanwhile.
    Wait,
}

impl IntoFuture for Outcome {
    type Output = Outcome;
    type IntoFuture = Ready<Outcome>;

    fn into_future(self) -> Self::IntoFuture {
        std::future::ready(self)
    }
}

/// The future a [`Handler`] returns: an [`Outcome`] known at once (no allocation,
/// what synchronous handlers give), or a boxed future for handlers that wait.
///
/// ```
/// use poco_httpd::{HandlerFuture, Outcome};
///
/// let at_once = HandlerFuture::ready(Outcome::Ok);
/// let later = HandlerFuture::new(async { Outcome::Deny });
/// # drop((at_once, later));
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct HandlerFuture(Kind);

enum Kind {
    /// Taken when the future completes.
    Ready(Option<Outcome>),
    Boxed(Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>),
}

impl HandlerFuture {
    /// A future that completes with `outcome` when first polled.
    pub fn ready(outcome: Outcome) -> Self {
        Self(Kind::Ready(Some(outcome)))
    }

    /// Boxes `future`.
    pub fn new(future: impl Future<Output = Outcome> + Send + 'static) -> Self {
        Self(Kind::Boxed(Box::pin(future)))
    }

    /// Polls once, with a waker that does nothing: the outcome if the handler is done.
    /// A pending future is polled again, with its task's own waker, by whoever awaits
    /// it next, so no wake-up is lost.
    pub(crate) fn poll_now(&mut self) -> Option<Outcome> {
        let mut context = Context::from_waker(std::task::Waker::noop());
        match Pin::new(self).poll(&mut context) {
            Poll::Ready(outcome) => Some(outcome),
            Poll::Pending => None,
        }
    }
}

impl Future for HandlerFuture {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        match &mut self.0 {
            Kind::Ready(outcome) => {
                // Polling again after completion is a caller's bug; `Ok` is harmless.
                Poll::Ready(outcome.take().unwrap_or(Outcome::Ok))
            }
            Kind::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

impl From<Outcome> for HandlerFuture {
    fn from(outcome: Outcome) -> Self {
        Self::ready(outcome)
    }
}

impl fmt::Debug for HandlerFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Ready(outcome) => f
                .debug_tuple("HandlerFuture::Ready")
                .field(outcome)
                .finish(),
            Kind::Boxed(_) => f.write_str("HandlerFuture::Boxed"),
        }
    }
}

/// A handler for any phase: it gets the request and the response of one exchange.
///
/// Both handles are cheap to clone and share the same exchange, so a handler can keep
/// them, hand them to another task, and return [`Outcome::Wait`].
///
/// You rarely implement this trait by hand: every `Fn(Request, Response) -> R` where
/// `R` is an [`Outcome`] or a future of one is a handler.
///
/// ```
/// use poco_httpd::{Outcome, Request, Response};
///
/// // A synchronous closure.
/// let hello = |req: Request, res: Response| {
///     res.set_body(format!("Hi, you fetched {}", req.uri()));
///     Outcome::Ok
/// };
///
/// // An async function.
/// async fn slow(_req: Request, res: Response) -> Outcome {
///     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
///     res.set_body("done");
///     Outcome::Ok
/// }
/// # fn assert_handler(_: impl poco_httpd::Handler) {}
/// # assert_handler(hello);
/// # assert_handler(slow);
/// ```
///
/// Types can implement it directly, which is how the built-in handlers are made:
///
/// ```
/// use poco_httpd::{Handler, HandlerFuture, Outcome, Request, Response};
///
/// struct Greeter {
///     greeting: String,
/// }
///
/// impl Handler for Greeter {
///     fn call(&self, _req: Request, res: Response) -> HandlerFuture {
///         res.set_body(self.greeting.clone());
///         HandlerFuture::ready(Outcome::Ok)
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Runs the handler for one request.
    fn call(&self, request: Request, response: Response) -> HandlerFuture;
}

impl<F, R> Handler for F
where
    F: Fn(Request, Response) -> R + Send + Sync + 'static,
    R: IntoFuture<Output = Outcome>,
    R::IntoFuture: Send + 'static,
{
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let mut future = Some(self(request, response).into_future());
        // A synchronous handler's outcome is already there: no box for it.
        let as_ready = (&mut future as &mut dyn Any).downcast_mut::<Option<Ready<Outcome>>>();
        if let Some(ready) = as_ready.and_then(Option::take) {
            return HandlerFuture::ready(ready.into_inner());
        }
        match future {
            Some(future) => HandlerFuture::new(future),
            // Unreachable: only the branch above takes the future.
            None => HandlerFuture::ready(Outcome::Ok),
        }
    }
}

/// Makes a handler of a closure whose parameter types are inferred, so it needs no
/// `|req: Request, res: Response|` spelled out: the bound is on `Fn` directly, where
/// Rust can see the types, rather than behind the blanket [`Handler`] impl.
///
/// ```
/// use poco_httpd::{Server, handler_fn};
///
/// let builder = Server::builder().content(
///     "/",
///     handler_fn(|req, res| res.ok(format!("Hi, you fetched {}", req.uri()))),
/// );
/// # drop(builder);
/// ```
pub fn handler_fn<F, R>(handler: F) -> impl Handler
where
    F: Fn(Request, Response) -> R + Send + Sync + 'static,
    R: IntoFuture<Output = Outcome>,
    R::IntoFuture: Send + 'static,
{
    handler
}

/// A fixed text answer: `.content("/", "hello")` answers `200` with that body, as
/// `text/plain; charset=utf-8` unless a handler set another `Content-Type`.
impl Handler for &'static str {
    fn call(&self, _request: Request, response: Response) -> HandlerFuture {
        response.answer_text(StatusCode::OK, Bytes::from_static(self.as_bytes()));
        HandlerFuture::ready(Outcome::Ok)
    }
}

/// A fixed text answer, as for `&'static str`.
impl Handler for String {
    fn call(&self, _request: Request, response: Response) -> HandlerFuture {
        response.answer_text(StatusCode::OK, Bytes::copy_from_slice(self.as_bytes()));
        HandlerFuture::ready(Outcome::Ok)
    }
}

/// A bare status: `.content("/old", StatusCode::GONE)` answers it with the standard
/// text page (`410 Gone`), as the server's own answers are.
impl Handler for StatusCode {
    fn call(&self, _request: Request, response: Response) -> HandlerFuture {
        let reason = self.canonical_reason().unwrap_or("");
        let page = format!("{} {reason}\n", self.as_u16());
        response.answer_text(*self, Bytes::from(page));
        HandlerFuture::ready(Outcome::Ok)
    }
}

/// A status and a text body: `.content("/teapot", (StatusCode::IM_A_TEAPOT, "short and stout"))`.
impl<B> Handler for (StatusCode, B)
where
    B: Into<Bytes> + Clone + Send + Sync + 'static,
{
    fn call(&self, _request: Request, response: Response) -> HandlerFuture {
        response.answer_text(self.0, self.1.clone().into());
        HandlerFuture::ready(Outcome::Ok)
    }
}

/// A shared, type-erased handler as stored in the directory map.
#[derive(Clone)]
pub(crate) struct SharedHandler(Arc<dyn Handler>);

impl SharedHandler {
    pub(crate) fn new(handler: impl Handler) -> Self {
        Self(Arc::new(handler))
    }

    pub(crate) fn call(&self, request: Request, response: Response) -> HandlerFuture {
        self.0.call(request, response)
    }

    /// Reports whether both point at the same registered handler.
    #[cfg(test)]
    pub(crate) fn same_as(&self, other: &SharedHandler) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }
}

impl fmt::Debug for SharedHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handler")
    }
}
