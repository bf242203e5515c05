//! The front half as a state machine: Trans → Map → Pre → Content → the Send
//! phase's hooks, everything that runs before the response goes to the client.
//!
//! The machine keeps only positions (its place in the walk, entry depth, handler index), no borrows,
//! so it can stop at a pending handler and be resumed by the async driver later. The
//! Pre walk passes every entry on the path once and notes, on the way, the deepest
//! Content handler and whether any Post or Error handler waits behind the client.

use std::sync::Arc;

use http::StatusCode;

use super::call::{Called, Machine, Step, call_next, call_now};
use crate::Phase;
use crate::exchange::{Added, Exchange};
use crate::handler::SharedHandler;
use crate::path::normalize_path;

/// Where the machine stands, in order: it only moves forward. Map and Done run no
/// handler, and the hooks are the start of the Send phase, so these are positions
/// rather than [`Phase`]s; [`Position::phase`] names the phase for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Position {
    Trans,
    /// The path re-normalized after a Trans handler rewrote the URI.
    Map,
    Pre,
    Content,
    /// Handlers added with `Request::before_send`: the start of the Send phase.
    Hooks,
    Done,
}

impl Position {
    /// The phase of the handlers called here. No handler runs in Map, which finishes
    /// the Trans phase's rewrite.
    fn phase(self) -> Phase {
        match self {
            Self::Trans | Self::Map => Phase::Trans,
            Self::Pre => Phase::Pre,
            Self::Content => Phase::Content,
            Self::Hooks | Self::Done => Phase::Send,
        }
    }
}

/// The front half of one request; see the module docs.
#[derive(Debug)]
pub(crate) struct Front {
    position: Position,
    /// The next handler within the current list: Trans, one entry's Pre, the hooks.
    index: usize,
    /// Entries on the path whose Pre handlers have all run.
    depth: usize,
    /// The deepest Content handler the Pre walk has passed.
    content: Option<SharedHandler>,
    /// Entries up to the deepest one passed so far with Post or Error handlers.
    back_entries: usize,
    /// Set once the Pre walk has passed every entry on the path.
    walked: bool,
    /// The hooks, taken from the request when the phase starts.
    hooks: Option<Vec<SharedHandler>>,
}

impl Default for Front {
    fn default() -> Self {
        Self {
            position: Position::Trans,
            index: 0,
            depth: 0,
            content: None,
            back_entries: 0,
            walked: false,
            hooks: None,
        }
    }
}

impl Front {
    /// How many entries of the path the back half must walk (up to the deepest with
    /// Post or Error handlers; 0 for none), if the walk got that far.
    pub(crate) fn back_entries(&self) -> Option<usize> {
        self.walked.then_some(self.back_entries)
    }

    fn enter(&mut self, position: Position) {
        self.position = position;
        self.index = 0;
    }

    fn trans(&mut self, exchange: &Arc<Exchange>) -> Option<Called> {
        let called = call_next(
            &exchange.site().trans,
            &mut self.index,
            exchange,
            Phase::Trans,
        );
        if called.is_none() {
            self.enter(Position::Map);
        }
        called
    }

    /// Re-normalizes the path when a Trans handler rewrote the URI.
    fn map(&mut self, exchange: &Arc<Exchange>) {
        if !exchange.added().has(Added::URI) {
            return self.enter(Position::Pre);
        }
        let rewritten = exchange.rewritten_uri();
        let Some(uri) = rewritten.filter(|uri| *uri != exchange.head().uri) else {
            return self.enter(Position::Pre);
        };
        match normalize_path(uri.path()) {
            Ok(path) => {
                exchange.set_mapped_path(path);
                self.enter(Position::Pre);
            }
            Err(error) => {
                tracing::warn!(%error, "a Trans handler rewrote the URI to a refused path");
                exchange.answer_error(StatusCode::BAD_REQUEST);
                self.enter(Position::Hooks);
            }
        }
    }

    /// Runs Pre handlers from where the walk stopped, shallowest entry first. Handlers
    /// that say `Ok` at once are passed here, so the map is walked once per resume.
    fn pre(&mut self, exchange: &Arc<Exchange>) -> Option<Called> {
        for entry in exchange
            .site()
            .map
            .matches(exchange.path())
            .skip(self.depth)
        {
            if self.index == 0 {
                if let Some(handler) = &entry.content {
                    self.content = Some(handler.clone());
                }
                if !entry.post.is_empty() || entry.error.is_some() {
                    self.back_entries = self.depth + 1;
                }
            }
            while let Some(handler) = entry.pre.get(self.index) {
                self.index += 1;
                match call_now(handler, exchange, Phase::Pre) {
                    Called::Done(Step::Go) if !exchange.is_failed() => {}
                    called => return Some(called),
                }
            }
            self.depth += 1;
            self.index = 0;
        }
        self.walked = true;
        self.enter(Position::Content);
        None
    }

    /// The Content handler a Pre handler chose, else the deepest on the path.
    fn content(&mut self, exchange: &Arc<Exchange>) -> Option<Called> {
        let chosen = exchange.take_added(Added::CONTENT, |r| &mut r.content_override);
        let Some(handler) = chosen.or_else(|| self.content.take()) else {
            exchange.answer_error(StatusCode::NOT_FOUND);
            self.enter(Position::Hooks);
            return None;
        };
        Some(call_now(&handler, exchange, Phase::Content))
    }

    fn hook(&mut self, exchange: &Arc<Exchange>) -> Option<Called> {
        let hooks = (self.hooks)
            .get_or_insert_with(|| exchange.take_added(Added::SEND_HOOKS, |r| &mut r.send_hooks));
        let called = call_next(hooks, &mut self.index, exchange, Phase::Send);
        if called.is_none() {
            self.enter(Position::Done);
        }
        called
    }
}

impl Machine for Front {
    fn step(&mut self, exchange: &Arc<Exchange>) -> Option<Called> {
        match self.position {
            Position::Trans => self.trans(exchange),
            Position::Map => {
                self.map(exchange);
                None
            }
            Position::Pre => self.pre(exchange),
            Position::Content => self.content(exchange),
            Position::Hooks => self.hook(exchange),
            Position::Done => None,
        }
    }

    fn is_done(&self) -> bool {
        self.position == Position::Done
    }

    fn phase(&self) -> Phase {
        self.position.phase()
    }

    fn after(&mut self, step: Step, exchange: &Arc<Exchange>) {
        let next = match (self.position, step) {
            (Position::Hooks, Step::Panicked) => Position::Done,
            (Position::Hooks, _) => Position::Hooks,
            // A panic has been answered 500; the hooks still see the response.
            (_, Step::Panicked) => Position::Hooks,
            (Position::Trans, Step::Stop) => Position::Map,
            (Position::Pre | Position::Content, Step::Stop) => {
                exchange.deny();
                Position::Hooks
            }
            (Position::Content, Step::Go) => Position::Hooks,
            // No handler runs in Map or Done; Trans and Pre go on with the next one.
            (position, _) => position,
        };
        // A client that went away (a handler saw its body read fail) leaves nobody to
        // answer: straight on to Send, which reports the failure.
        let next = if next < Position::Hooks && exchange.is_failed() {
            Position::Hooks
        } else {
            next
        };
        if next != self.position {
            self.enter(next);
        }
    }
}
