//! The back half: [Error →] Post → Cleanup, behind the client, and the [`Tail`] that
//! carries a request there from the front half.
//!
//! Whoever holds the tail when the exchange ends decides how it ended: the pipeline
//! while handlers run, then the response body while hyper writes it, then the
//! connection's flush tracker until the bytes are flushed. Each of them delivers the
//! tail as failed if it is dropped first, so a client that leaves at any point reaches
//! the Error handler exactly once. Delivery runs the handlers right there; only a
//! handler that waits moves the rest into a task of its own, so a slow Post handler
//! never delays the next request on the connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{Method, Uri, Version};

use super::call::{Called, Machine, Progress, Step, call_now, drive};
use crate::connection::{ConnState, Connection};
use crate::exchange::{Exchange, RequestHead, lock};
use crate::handler::SharedHandler;
use crate::server::Shared;

/// How an exchange ended for the client.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// The whole response reached the socket.
    Flushed,
    /// The socket failed first, for this reason.
    Failed(String),
}

/// The back half of one request, waiting to learn how the exchange ended.
#[derive(Debug)]
pub(crate) struct Tail {
    exchange: Arc<Exchange>,
    conn: Arc<ConnState>,
    /// Whether any Post or Error handler would run, once known.
    has_work: Option<bool>,
}

impl Tail {
    pub(crate) fn new(exchange: Arc<Exchange>, conn: Arc<ConnState>) -> Self {
        Self {
            exchange,
            conn,
            has_work: None,
        }
    }

    /// Tells the tail what the front half's walk found out about the path's handlers,
    /// so it need not walk the map again.
    pub(crate) fn knowing(mut self, path_has_work: Option<bool>) -> Self {
        if path_has_work == Some(true) {
            self.has_work = Some(true);
        } else if path_has_work == Some(false) && lock(&self.exchange.request).extra_post.is_empty()
        {
            self.has_work = Some(false);
        }
        self
    }

    /// Reports whether any Post or Error handler would run for this request.
    pub(crate) fn has_work(&mut self) -> bool {
        *self.has_work.get_or_insert_with(|| {
            let exchange = &self.exchange;
            !lock(&exchange.request).extra_post.is_empty()
                || (exchange.site.map.matches(exchange.path()))
                    .any(|entry| !entry.post.is_empty() || entry.error.is_some())
        })
    }

    /// Runs the back half; see the module docs.
    pub(crate) fn deliver(mut self, delivery: Delivery) {
        let failed = matches!(delivery, Delivery::Failed(_));
        if let Delivery::Failed(cause) = delivery {
            tracing::debug!(connection = self.conn.info.id, %cause, "exchange failed");
            self.exchange.fail(cause);
            self.conn.error_reported.store(true, Ordering::Release);
        }
        if !self.has_work() {
            return;
        }
        // Handlers may use tokio (timers, I/O) from their first line.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("runtime gone: Error and Post handlers skipped");
            return;
        };
        let mut back = Back::new(failed);
        let exchange = self.exchange;
        let Progress::Pending(pending, phase) = back.run(&exchange) else {
            return;
        };
        let server = Arc::clone(&exchange.server);
        let cut = server.cut.clone();
        let rest = async move {
            tokio::select! {
                biased;
                () = drive(&mut back, &exchange, pending, phase) => {}
                () = cut.cancelled() => tracing::warn!(
                    path = %exchange.path(),
                    "Post handlers cut: still running at the shutdown deadline"
                ),
            }
        };
        server.tasks.spawn_on(rest, &runtime);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The Error handler, when the socket failed.
    Error,
    /// The Post handlers of the entries on the path, shallowest first.
    Post,
    /// The Post handlers pushed for this request only.
    Extra,
    Done,
}

/// The back half of one request as a state machine, resumable like the front half.
#[derive(Debug)]
struct Back {
    stage: Stage,
    /// Entries on the path whose Post handlers have all run.
    depth: usize,
    /// The next handler within the current list.
    index: usize,
    /// Taken from the request when the stage starts.
    extra: Option<Vec<SharedHandler>>,
}

impl Back {
    fn new(failed: bool) -> Self {
        Self {
            stage: if failed { Stage::Error } else { Stage::Post },
            depth: 0,
            index: 0,
            extra: None,
        }
    }

    fn enter(&mut self, stage: Stage) {
        self.stage = stage;
        self.index = 0;
    }

    fn error(&mut self, exchange: &Arc<Exchange>) -> Option<Called> {
        if self.index == 0
            && let Some(handler) = exchange.site.map.error(exchange.path())
        {
            self.index = 1;
            return Some(call_now(handler, exchange, "Error"));
        }
        self.enter(Stage::Post);
        None
    }

    /// Runs Post handlers from where the walk stopped; `Ok` and panics go on at once.
    fn post(&mut self, exchange: &Arc<Exchange>) -> Option<Called> {
        for entry in exchange.site.map.matches(exchange.path()).skip(self.depth) {
            while let Some(handler) = entry.post.get(self.index) {
                self.index += 1;
                match call_now(handler, exchange, "Post") {
                    Called::Done(Step::Go | Step::Panicked) => {}
                    called => return Some(called),
                }
            }
            self.depth += 1;
            self.index = 0;
        }
        self.enter(Stage::Extra);
        None
    }

    fn extra(&mut self, exchange: &Arc<Exchange>) -> Option<Called> {
        let extra = (self.extra)
            .get_or_insert_with(|| std::mem::take(&mut lock(&exchange.request).extra_post));
        let Some(handler) = extra.get(self.index) else {
            self.enter(Stage::Done);
            return None;
        };
        self.index += 1;
        Some(call_now(handler, exchange, "Post"))
    }
}

impl Machine for Back {
    fn run(&mut self, exchange: &Arc<Exchange>) -> Progress {
        loop {
            let called = match self.stage {
                Stage::Error => self.error(exchange),
                Stage::Post => self.post(exchange),
                Stage::Extra => self.extra(exchange),
                // Cleanup: dropping the last handles frees the exchange.
                Stage::Done => return Progress::Done,
            };
            match called {
                None => {}
                Some(Called::Done(step)) => self.after(step, exchange),
                Some(Called::Pending(pending)) => {
                    let phase = if self.stage == Stage::Error {
                        "Error"
                    } else {
                        "Post"
                    };
                    return Progress::Pending(pending, phase);
                }
            }
        }
    }

    /// The Error handler's outcome does not matter; `Deny` stops the Post list.
    fn after(&mut self, step: Step, _exchange: &Arc<Exchange>) {
        match self.stage {
            Stage::Error => self.enter(Stage::Post),
            Stage::Post | Stage::Extra if step == Step::Stop => self.enter(Stage::Done),
            _ => {}
        }
    }
}

/// A connection failed in the middle of a request head: the Error handler of `/` (and
/// the Post handlers of `/`) run with a placeholder `GET /` request marked as failed.
pub(crate) fn report_aborted_head(shared: &Arc<Shared>, conn: &Arc<ConnState>, cause: String) {
    let head = RequestHead {
        method: Method::GET,
        version: Version::HTTP_11,
        uri: Uri::from_static("/"),
        headers: http::HeaderMap::new(),
    };
    let connection = Connection::new(Arc::clone(&conn.info));
    let exchange = Exchange::new(
        head,
        None,
        http::Extensions::new(),
        None,
        connection,
        Arc::clone(shared),
    );
    let tail = Tail::new(exchange, Arc::clone(conn));
    tail.deliver(Delivery::Failed(format!(
        "the client went away mid-request: {cause}"
    )));
}
