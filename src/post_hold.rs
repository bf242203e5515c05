//! [`PostHold`]: keeps a request's back half (Error, then Post handlers) waiting while
//! a task of its handler still serves it — a connection taken over with
//! [`Request::upgrade`](crate::Request::upgrade), such as a WebSocket — so Post
//! handlers see how that ended, and the Error handler runs if it failed.
//!
//! The protocol: a request's holds share one [`HoldSlot`]. The back half, once the
//! response is on the wire, parks itself in the slot instead of running; the last
//! hold released runs it, told the first failure any hold reported. Either order
//! works: a back half parked after every hold was released runs at once.
//!
//! A leaf: it knows nothing of requests, connections or handlers, only that something
//! waits to be run with an optional [`Failure`].

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::failure::Failure;
use crate::sync::lock;

/// What waits in a slot: the back half, to be run with the failure reported, if any.
pub(crate) type Parked = Box<dyn FnOnce(Option<Failure>) + Send>;

/// Delays a request's Error and Post handlers until it is released (dropped, or
/// [`PostHold::fail`]); from [`Request::hold_post`](crate::Request::hold_post).
///
/// Move it into the task that serves the request after its response went out, and
/// let it go when that task is done: Post handlers then run (after the Error handler,
/// if the hold failed). Several holds may be taken; the last one released lets the
/// back half run.
#[must_use = "the Post handlers run as soon as the hold is dropped"]
pub struct PostHold {
    slot: Arc<HoldSlot>,
    released: bool,
}

impl PostHold {
    /// A hold on `slot`, counted until released.
    pub(crate) fn new(slot: Arc<HoldSlot>) -> Self {
        lock(&slot.state).holders += 1;
        Self {
            slot,
            released: false,
        }
    }

    /// Releases the hold: the Post handlers may run (what dropping it does too).
    pub fn release(self) {}

    /// Releases the hold reporting `failure`: the Error handler runs before the Post
    /// handlers, and both see it through
    /// [`Request::failure`](crate::Request::failure). With several holds, the first
    /// failure reported is the one kept.
    pub fn fail(mut self, failure: Failure) {
        self.released = true;
        self.slot.release(Some(failure));
    }
}

impl Drop for PostHold {
    fn drop(&mut self) {
        if !self.released {
            self.slot.release(None);
        }
    }
}

impl fmt::Debug for PostHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PostHold")
    }
}

/// The state a request's holds share; see the module docs.
#[derive(Default)]
pub(crate) struct HoldSlot {
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    holders: usize,
    failure: Option<Failure>,
    parked: Option<Parked>,
}

impl HoldSlot {
    /// Runs `back` once no hold is left: now, or when the last one is released.
    pub(crate) fn park(&self, back: Parked) {
        let mut state = lock(&self.state);
        if state.holders > 0 {
            state.parked = Some(back);
            return;
        }
        let failure = state.failure.take();
        drop(state);
        back(failure);
    }

    fn release(&self, failure: Option<Failure>) {
        let mut state = lock(&self.state);
        state.holders = state.holders.saturating_sub(1);
        if state.failure.is_none() {
            state.failure = failure;
        }
        if state.holders > 0 {
            return;
        }
        let Some(back) = state.parked.take() else {
            return;
        };
        let failure = state.failure.take();
        // The back half runs handlers: never under our lock.
        drop(state);
        back(failure);
    }
}

impl fmt::Debug for HoldSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HoldSlot")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::FailureKind;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A parked back half that counts its runs and records the failure's kind.
    fn recorder(runs: &Arc<AtomicUsize>, kind: &Arc<Mutex<Option<FailureKind>>>) -> Parked {
        let (runs, kind) = (Arc::clone(runs), Arc::clone(kind));
        Box::new(move |failure| {
            runs.fetch_add(1, Ordering::SeqCst);
            *lock(&kind) = failure.map(|f| f.kind());
        })
    }

    #[test]
    fn the_back_half_waits_for_the_last_hold() {
        let slot = Arc::new(HoldSlot::default());
        let (runs, kind) = (Arc::default(), Arc::default());
        let (first, second) = (
            PostHold::new(Arc::clone(&slot)),
            PostHold::new(Arc::clone(&slot)),
        );
        slot.park(recorder(&runs, &kind));
        first.fail(Failure::new(FailureKind::ClientGone, "gone"));
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        second.release();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(*lock(&kind), Some(FailureKind::ClientGone));
    }

    #[test]
    fn a_back_half_parked_after_the_release_runs_at_once() {
        let slot = Arc::new(HoldSlot::default());
        let (runs, kind) = (Arc::default(), Arc::default());
        drop(PostHold::new(Arc::clone(&slot)));
        slot.park(recorder(&runs, &kind));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(*lock(&kind), None);
    }
}
