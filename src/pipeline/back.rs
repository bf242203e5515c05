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

use super::ConnState;
use super::call::{Called, Machine, Progress, Step, call_next, call_now, drive};
use crate::Phase;
use crate::connection::Connection;
use crate::exchange::{Added, Exchange, RequestHead};
use crate::failure::{Failure, FailureKind};
use crate::handler::SharedHandler;
use crate::map::Entry;
use crate::shared::Shared;

/// How an exchange ended for the client.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// The whole response reached the socket.
    Flushed,
    /// The socket failed first, for this reason.
    Failed(Failure),
}

/// The back half of one request, waiting to learn how the exchange ended.
#[derive(Debug)]
pub(crate) struct Tail {
    exchange: Arc<Exchange>,
    conn: Arc<ConnState>,
    /// How many entries of the path hold the Post and Error handlers, once known.
    back_entries: Option<usize>,
}

impl Tail {
    pub(crate) fn new(exchange: Arc<Exchange>, conn: Arc<ConnState>) -> Self {
        Self {
            exchange,
            conn,
            back_entries: None,
        }
    }

    /// Tells the tail what the front half's walk found out about the path's entries,
    /// so it need not walk the map again.
    pub(crate) fn knowing(mut self, back_entries: Option<usize>) -> Self {
        self.back_entries = back_entries;
        self
    }

    /// How many entries of the path the back half walks: up to the deepest one with
    /// Post or Error handlers.
    fn back_entries(&mut self) -> usize {
        *self.back_entries.get_or_insert_with(|| {
            let exchange = &self.exchange;
            let entries = exchange.site().map.matches(exchange.path()).enumerate();
            let with_work = entries.filter(|(_, e)| !e.post.is_empty() || e.error.is_some());
            with_work.last().map_or(0, |(at, _)| at + 1)
        })
    }

    /// Reports whether any Post or Error handler would run for this request.
    pub(crate) fn has_work(&mut self) -> bool {
        self.back_entries() > 0 || self.exchange.added().has(Added::POST)
    }

    /// Runs the back half — once every [`PostHold`](crate::PostHold) taken on the
    /// request is released, with the failure one reported if the socket did not fail
    /// first; see the module docs.
    pub(crate) fn deliver(self, delivery: Delivery) {
        let Some(slot) = self.exchange.held_back() else {
            return self.deliver_now(delivery);
        };
        slot.park(Box::new(move |failure| {
            let delivery = match (delivery, failure) {
                (Delivery::Flushed, Some(failure)) => Delivery::Failed(failure),
                (delivery, _) => delivery,
            };
            self.deliver_now(delivery);
        }));
    }

    fn deliver_now(mut self, delivery: Delivery) {
        let failed = matches!(delivery, Delivery::Failed(_));
        if let Delivery::Failed(cause) = delivery {
            tracing::debug!(connection = self.conn.info.id, %cause, "exchange failed");
            self.exchange.fail(cause);
            self.exchange.note_unsent_status();
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
        let mut back = Back::new(failed, self.back_entries());
        let exchange = self.exchange;
        let Progress::Pending(pending, phase) = back.run(&exchange) else {
            return;
        };
        let server = Arc::clone(exchange.server());
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

/// Where the back half stands: the Error phase, then the Post phase in two stages (the
/// path's handlers, then the request's own), then the end; [`Stage::phase`] names the
/// phase for logs.
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

impl Stage {
    fn phase(self) -> Phase {
        match self {
            Self::Error => Phase::Error,
            Self::Post | Self::Extra | Self::Done => Phase::Post,
        }
    }
}

/// The back half of one request as a state machine, resumable like the front half.
#[derive(Debug)]
struct Back {
    stage: Stage,
    /// The entries of the path that hold this request's Post and Error handlers.
    entries: usize,
    /// Entries on the path whose Post handlers have all run.
    depth: usize,
    /// The next handler within the current list.
    index: usize,
    /// Taken from the request when the stage starts.
    extra: Option<Vec<SharedHandler>>,
}

impl Back {
    fn new(failed: bool, entries: usize) -> Self {
        Self {
            stage: if failed { Stage::Error } else { Stage::Post },
            entries,
            depth: 0,
            index: 0,
            extra: None,
        }
    }

    fn enter(&mut self, stage: Stage) {
        self.stage = stage;
        self.index = 0;
    }

    /// The entries of the path that hold this request's Post and Error handlers.
    fn entries<'e>(&self, exchange: &'e Exchange) -> impl Iterator<Item = &'e Entry> + use<'e> {
        exchange
            .site()
            .map
            .matches(exchange.path())
            .take(self.entries)
    }

    fn error(&mut self, exchange: &Arc<Exchange>) -> Option<Called> {
        let deepest = (self.entries(exchange))
            .filter_map(|entry| entry.error.as_ref())
            .last();
        if self.index == 0
            && let Some(handler) = deepest
        {
            self.index = 1;
            return Some(call_now(handler, exchange, Phase::Error));
        }
        self.enter(Stage::Post);
        None
    }

    /// Runs Post handlers from where the walk stopped; `Ok` and panics go on at once.
    fn post(&mut self, exchange: &Arc<Exchange>) -> Option<Called> {
        for entry in self.entries(exchange).skip(self.depth) {
            while let Some(handler) = entry.post.get(self.index) {
                self.index += 1;
                match call_now(handler, exchange, Phase::Post) {
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
            .get_or_insert_with(|| exchange.take_added(Added::POST, |r| &mut r.extra_post));
        let called = call_next(extra, &mut self.index, exchange, Phase::Post);
        if called.is_none() {
            self.enter(Stage::Done);
        }
        called
    }
}

impl Machine for Back {
    fn step(&mut self, exchange: &Arc<Exchange>) -> Option<Called> {
        match self.stage {
            Stage::Error => self.error(exchange),
            Stage::Post => self.post(exchange),
            Stage::Extra => self.extra(exchange),
            // Cleanup: dropping the last handles frees the exchange.
            Stage::Done => None,
        }
    }

    fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    fn phase(&self) -> Phase {
        self.stage.phase()
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
        shared.site.load_full(),
    );
    let tail = Tail::new(exchange, Arc::clone(conn));
    let message = "the client went away in the middle of a request head";
    let failure = Failure::new(FailureKind::IncompleteHead, message);
    tail.deliver(Delivery::Failed(
        failure.with_io(Arc::new(std::io::Error::other(cause))),
    ));
}
