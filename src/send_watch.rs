//! The send timeout of one HTTP/2 response: [`StreamExecutor`] runs each stream
//! hyper spawns inside [`Watched`], which ends the stream's task once its response
//! has made no progress for the send timeout. Ending the task drops hyper's handle
//! of the stream, and the `h2` crate then resets it (`RST_STREAM` with `CANCEL`),
//! and the response body with whatever it holds (an open file, a buffered block).
//!
//! Why from outside the body: hyper takes a block of the body, then waits for
//! flow-control capacity before it asks for the next one, so a stream whose client
//! keeps its window at zero never polls its body again — a timer inside the body
//! would never be looked at. The stream's task, though, is ours to wrap.
//!
//! "Progress" is hyper coming back for more: the body marks its [`SendWatch`] held
//! when it hands a block over and released when hyper polls it again (or drops it).
//! A body waiting for its own producer is released, so only the client's slowness
//! counts. The body finds its stream's watch through a task-local, set while
//! [`Watched`] polls the stream. This module knows tasks and clocks only.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::futures::TaskLocalFuture;
use tokio::time::{Instant, Sleep};

tokio::task_local! {
    /// The watch of the stream whose task is being polled.
    static CURRENT: Arc<SendWatch>;
}

/// The watch of the HTTP/2 stream whose task is running, if any.
pub(crate) fn current() -> Option<Arc<SendWatch>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Whether hyper holds a block of one response's body without asking for more, and
/// since when; shared by the body and the task that runs its stream.
#[derive(Debug)]
pub(crate) struct SendWatch {
    /// The origin of `held_since`.
    born: Instant,
    /// Milliseconds after `born` plus one when hyper took the block it holds; zero
    /// while it holds none.
    held_since: AtomicU64,
    /// Set when the stream was reset for making no progress.
    cut: AtomicBool,
    limit: Duration,
}

impl SendWatch {
    fn new(limit: Duration) -> Self {
        Self {
            born: Instant::now(),
            held_since: AtomicU64::new(0),
            cut: AtomicBool::new(false),
            limit,
        }
    }

    /// hyper took a block and will ask for the next when it has sent it.
    pub(crate) fn hold(&self) {
        let since = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.held_since.store(since + 1, Ordering::Relaxed);
    }

    /// hyper asked for the next block: the one it held is on its way.
    pub(crate) fn release(&self) {
        self.held_since.store(0, Ordering::Relaxed);
    }

    /// Whether the stream was reset for making no progress.
    pub(crate) fn was_cut(&self) -> bool {
        self.cut.load(Ordering::Acquire)
    }

    /// The send timeout.
    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    fn held_since(&self) -> Option<Instant> {
        match self.held_since.load(Ordering::Relaxed) {
            0 => None,
            since => Some(self.born + Duration::from_millis(since - 1)),
        }
    }
}

/// hyper's executor for HTTP/2 streams: each runs in a tokio task of its own inside
/// [`Watched`], with `send_timeout` as its limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamExecutor {
    send_timeout: Duration,
}

impl StreamExecutor {
    pub(crate) fn new(send_timeout: Duration) -> Self {
        Self { send_timeout }
    }
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        let watch = Arc::new(SendWatch::new(self.send_timeout));
        tokio::spawn(Watched {
            stream: Box::pin(CURRENT.scope(Arc::clone(&watch), stream)),
            watch,
            timer: None,
        });
    }
}

/// One stream's task, ended when its response stalls past the send timeout.
pub(crate) struct Watched<F: Future> {
    stream: Pin<Box<TaskLocalFuture<Arc<SendWatch>, F>>>,
    watch: Arc<SendWatch>,
    /// Allocated when a response first stalls at the end of a poll, then left
    /// running and moved only when it fires early (as `timed_io`'s `Watch` does).
    timer: Option<Pin<Box<Sleep>>>,
}

impl<F: Future> std::fmt::Debug for Watched<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("watch", &self.watch)
            .finish_non_exhaustive()
    }
}

impl<F: Future> Watched<F> {
    /// Whether the response has held a block for the limit; if it holds one but not
    /// for that long, the timer wakes this task when it might have.
    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(since) = self.watch.held_since() else {
            return false;
        };
        let deadline = since + self.watch.limit;
        if Instant::now() >= deadline {
            return true;
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.is_elapsed() {
            // It fired for an earlier block: wait for this one's deadline instead.
            timer.as_mut().reset(deadline);
        }
        let _ = timer.as_mut().poll(cx);
        false
    }
}

impl<F: Future<Output = ()>> Future for Watched<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.stream.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if self.stalled(cx) {
            self.watch.cut.store(true, Ordering::Release);
            tracing::debug!(
                limit = ?self.watch.limit,
                "an HTTP/2 response made no progress; resetting its stream"
            );
            // Returning drops the stream's future: h2 resets the stream, and the
            // body's drop reports the cut.
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_holding_a_block_past_the_limit_is_ended() {
        let limit = Duration::from_millis(300);
        let watch = Arc::new(SendWatch::new(limit));
        let held = Arc::clone(&watch);
        let stream = CURRENT.scope(Arc::clone(&watch), async move {
            current().expect("the task-local is set").hold();
            std::future::pending::<()>().await;
        });
        let watched = Watched {
            stream: Box::pin(stream),
            watch,
            timer: None,
        };
        tokio::time::timeout(Duration::from_secs(5), watched)
            .await
            .expect("ended at the send timeout");
        assert!(held.was_cut());
    }

    #[tokio::test]
    async fn a_stream_that_keeps_taking_blocks_is_not_ended() {
        let watch = Arc::new(SendWatch::new(Duration::from_millis(300)));
        let stream = CURRENT.scope(Arc::clone(&watch), async {
            let watch = current().expect("the task-local is set");
            for _ in 0..20 {
                watch.hold();
                tokio::time::sleep(Duration::from_millis(100)).await;
                watch.release();
            }
        });
        let watched = Watched {
            stream: Box::pin(stream),
            watch: Arc::clone(&watch),
            timer: None,
        };
        watched.await;
        assert!(!watch.was_cut());
    }
}
