//! Running a connection until a rare signal (shutdown, idleness) arrives, without
//! polling the signal on every wake-up of the connection.
//!
//! `tokio::select!` polls every branch each time its task wakes, and a connection's
//! task wakes for every request while its signals fire at most once in its life.
//! [`UntilSignal`] polls the signal with a waker of its own, which records that the
//! signal woke the task; the signal is polled again only then.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// How an [`UntilSignal`] ended.
#[derive(Debug)]
pub(crate) enum Ended<T> {
    /// The main future finished with this output.
    Finished(T),
    /// The signal arrived first.
    Signalled,
}

/// Polls `main` until it finishes or `signal` completes; see the module docs.
pub(crate) struct UntilSignal<'a, M, S> {
    main: Pin<&'a mut M>,
    signal: Pin<&'a mut S>,
    /// Set (first poll) or by the signal's waker: the signal must be polled.
    alarm: Arc<Alarm>,
    alarm_waker: Waker,
}

impl<'a, M, S> UntilSignal<'a, M, S> {
    pub(crate) fn new(main: Pin<&'a mut M>, signal: Pin<&'a mut S>) -> Self {
        let alarm = Arc::new(Alarm {
            rung: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let alarm_waker = Waker::from(Arc::clone(&alarm));
        Self {
            main,
            signal,
            alarm,
            alarm_waker,
        }
    }
}

/// The waker the signal is polled with: notes the wake-up, then wakes the task.
struct Alarm {
    rung: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Alarm {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.rung.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<M: Future, S: Future<Output = ()>> Future for UntilSignal<'_, M, S> {
    type Output = Ended<M::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // Registered before the check, so a signal between the two still wakes us.
        this.alarm.task.register(cx.waker());
        if this.alarm.rung.swap(false, Ordering::AcqRel) {
            let mut signal_cx = Context::from_waker(&this.alarm_waker);
            if this.signal.as_mut().poll(&mut signal_cx).is_ready() {
                return Poll::Ready(Ended::Signalled);
            }
        }
        this.main.as_mut().poll(cx).map(Ended::Finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::Notify;

    #[tokio::test]
    async fn the_main_future_finishes_when_no_signal_comes() {
        let main = std::pin::pin!(async { 7 });
        let signal = std::pin::pin!(std::future::pending::<()>());
        let ended = UntilSignal::new(main, signal).await;
        assert!(matches!(ended, Ended::Finished(7)));
    }

    #[tokio::test]
    async fn a_signal_after_many_wake_ups_still_ends_it() {
        let notify = Arc::new(Notify::new());
        let trigger = Arc::clone(&notify);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            trigger.notify_one();
        });
        // A main future that wakes its task again and again and never finishes.
        let main = std::pin::pin!(async {
            loop {
                tokio::task::yield_now().await;
            }
        });
        let signal = std::pin::pin!(notify.notified());
        let ended = tokio::time::timeout(Duration::from_secs(5), UntilSignal::new(main, signal))
            .await
            .expect("the signal ends the wait");
        assert!(matches!(ended, Ended::<()>::Signalled));
    }

    #[tokio::test]
    async fn a_signal_already_there_wins_at_the_first_poll() {
        let main = std::pin::pin!(std::future::pending::<()>());
        let signal = std::pin::pin!(std::future::ready(()));
        let ended = UntilSignal::new(main, signal).await;
        assert!(matches!(ended, Ended::Signalled));
    }
}
