//! Calling one handler: at once when it answers at once, else as a future to await.
//!
//! Most handlers are synchronous, or async functions that never wait, so a call is
//! first made (and its future polled once) right where the pipeline stands. Only a
//! handler that is still pending, or that returned `Wait`, leaves a [`Pending`] call
//! behind, which an async driver finishes; the phase machines then carry on from
//! where they stopped. A panic is caught in both places, logged, and answered 500.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use http::StatusCode;

use crate::exchange::Exchange;
use crate::handler::{HandlerFuture, SharedHandler};
use crate::wait::Mark;
use crate::{Outcome, Phase, Request, Response};

/// What a handler's call amounts to for the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// `Ok`, or `Wait` followed by a resume.
    Go,
    /// `Deny`.
    Stop,
    /// The handler panicked; it has been logged.
    Panicked,
}

/// A handler call that did not finish at once.
#[derive(Debug)]
pub(crate) enum Pending {
    /// The handler's future is still running.
    Running(HandlerFuture, Mark),
    /// The handler returned `Wait`; the pipeline waits for a resume.
    Waiting(Mark),
}

/// The result of [`call_now`].
#[derive(Debug)]
pub(crate) enum Called {
    Done(Step),
    Pending(Pending),
}

/// Where a phase machine stands after running what it could at once.
#[derive(Debug)]
pub(crate) enum Progress {
    /// Every handler of the machine has run.
    Done,
    /// A handler of `phase` must be awaited before the machine goes on.
    Pending(Pending, Phase),
}

/// A phase machine (front or back half) the async driver can resume.
pub(crate) trait Machine {
    /// Moves on by one handler call or one change of phase: `Some` with the call
    /// that needs [`Machine::after`] (or awaiting), `None` when it only moved.
    fn step(&mut self, exchange: &Arc<Exchange>) -> Option<Called>;

    /// Reports whether every handler of the machine has run.
    fn is_done(&self) -> bool;

    /// The phase of the handler the last step called, for logs.
    fn phase(&self) -> Phase;

    /// Applies the outcome of the handler the last step called.
    fn after(&mut self, step: Step, exchange: &Arc<Exchange>);

    /// Runs handlers until one is pending or none is left.
    fn run(&mut self, exchange: &Arc<Exchange>) -> Progress {
        while !self.is_done() {
            match self.step(exchange) {
                None => {}
                Some(Called::Done(step)) => self.after(step, exchange),
                Some(Called::Pending(pending)) => return Progress::Pending(pending, self.phase()),
            }
        }
        Progress::Done
    }
}

/// Finishes a pending call, then runs `machine` on until it is done, awaiting every
/// handler that does not finish at once.
pub(crate) async fn drive(
    machine: &mut impl Machine,
    exchange: &Arc<Exchange>,
    mut pending: Pending,
    mut phase: Phase,
) {
    loop {
        let step = pending.finish(exchange, phase).await;
        machine.after(step, exchange);
        match machine.run(exchange) {
            Progress::Done => return,
            Progress::Pending(next, next_phase) => (pending, phase) = (next, next_phase),
        }
    }
}

/// Calls one handler and polls its future once; see the module docs.
pub(crate) fn call_now(handler: &SharedHandler, exchange: &Arc<Exchange>, phase: Phase) -> Called {
    let mark = exchange.gate().mark();
    let request = Request::new(Arc::clone(exchange));
    let response = Response::new(Arc::clone(exchange));
    // The call itself is inside the closure, so a synchronous handler's panic is
    // caught as well as one in the first poll of an async handler.
    let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut future = handler.call(request, response);
        future.poll_now().ok_or(future)
    }));
    match polled {
        Ok(Ok(Outcome::Wait)) if !exchange.gate().is_open_since(mark) => {
            Called::Pending(Pending::Waiting(mark))
        }
        Ok(Ok(outcome)) => Called::Done(step_of(outcome)),
        Ok(Err(future)) => Called::Pending(Pending::Running(future, mark)),
        Err(panic) => Called::Done(panicked(exchange, phase, panic.as_ref())),
    }
}

/// Calls the handler at `*next` in `list` and moves past it; `None` once the list
/// is done.
pub(crate) fn call_next(
    list: &[SharedHandler],
    next: &mut usize,
    exchange: &Arc<Exchange>,
    phase: Phase,
) -> Option<Called> {
    let handler = list.get(*next)?;
    *next += 1;
    Some(call_now(handler, exchange, phase))
}

/// Calls one handler and awaits it; for drivers that are async anyway.
pub(crate) async fn call(handler: &SharedHandler, exchange: &Arc<Exchange>, phase: Phase) -> Step {
    match call_now(handler, exchange, phase) {
        Called::Done(step) => step,
        Called::Pending(pending) => pending.finish(exchange, phase).await,
    }
}

impl Pending {
    /// Awaits the handler's future, then the resume if it returned `Wait`.
    pub(crate) async fn finish(self, exchange: &Arc<Exchange>, phase: Phase) -> Step {
        let (outcome, mark) = match self {
            Self::Running(future, mark) => match AssertUnwindSafe(future).catch_unwind().await {
                Ok(outcome) => (outcome, mark),
                Err(panic) => return panicked(exchange, phase, panic.as_ref()),
            },
            Self::Waiting(mark) => (Outcome::Wait, mark),
        };
        if outcome == Outcome::Wait {
            exchange.gate().passed(mark).await;
        }
        step_of(outcome)
    }
}

/// `Wait` counts as `Ok` once the resume has come.
fn step_of(outcome: Outcome) -> Step {
    match outcome {
        Outcome::Ok | Outcome::Wait => Step::Go,
        Outcome::Deny => Step::Stop,
    }
}

/// Logs a handler's panic and answers 500 unless the response has already gone out.
fn panicked(exchange: &Exchange, phase: Phase, panic: &(dyn Any + Send)) -> Step {
    tracing::error!(
        // A string field, so the log reads `phase="Pre"` as it always has.
        phase = phase.as_str(),
        path = %exchange.path(),
        "handler panicked: {}",
        panic_message(panic)
    );
    if !exchange.is_sent() {
        exchange.answer_error(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Step::Panicked
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "(no message)"
    }
}
