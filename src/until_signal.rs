//! Running a connection until a rare signal (shutdown, idleness) arrives, without
//! polling the signal on every wake-up of the connection.
//!
//! `tokio::select!` polls every branch each time its task wakes, and a connection's
//! task wakes for every request while its signals fire at most once in its life.
//! [`UntilSignal`] polls the signal with a waker of its own, which rings an [`Alarm`]
//! before waking the task; the signal is polled again only then. A condition raised
//! from elsewhere (the socket noticing idleness) rings the same alarm.

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

/// A flag and the task to wake: rung by the signal's waker, or directly by whoever
/// raises a condition the signal future checks.
#[derive(Debug, Default)]
pub(crate) struct Alarm {
    rung: AtomicBool,
    task: AtomicWaker,
}

impl Alarm {
    /// Makes the next poll of the [`UntilSignal`] poll its signal. Any thread.
    pub(crate) fn ring(&self) {
        self.rung.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// What the signal is polled with: a shared value that holds an [`Alarm`] and rings
/// it when woken (the connection's state, so no allocation of its own is needed).
pub(crate) trait AlarmWaker: Wake + Send + Sync + 'static {
    fn alarm(&self) -> &Alarm;
}

impl Wake for Alarm {
    fn wake(self: Arc<Self>) {
        self.ring();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ring();
    }
}

impl AlarmWaker for Alarm {
    fn alarm(&self) -> &Alarm {
        self
    }
}

/// Polls `main` until it finishes or `signal` completes; see the module docs.
pub(crate) struct UntilSignal<'a, M, S, A> {
    main: Pin<&'a mut M>,
    signal: Pin<&'a mut S>,
    owner: Arc<A>,
    /// Wakes through `owner`, which rings its alarm.
    alarm_waker: Waker,
    /// The signal is polled on the first poll whatever the alarm says.
    first: bool,
}

impl<'a, M, S, A: AlarmWaker> UntilSignal<'a, M, S, A> {
    pub(crate) fn new(main: Pin<&'a mut M>, signal: Pin<&'a mut S>, owner: Arc<A>) -> Self {
        let alarm_waker = Waker::from(Arc::clone(&owner));
        Self {
            main,
            signal,
            owner,
            alarm_waker,
            first: true,
        }
    }
}

impl<M: Future, S: Future<Output = ()>, A: AlarmWaker> Future for UntilSignal<'_, M, S, A> {
    type Output = Ended<M::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let alarm = this.owner.alarm();
        // Registered before the check, so a signal between the two still wakes us.
        alarm.task.register(cx.waker());
        let rung = alarm.rung.swap(false, Ordering::AcqRel);
        if rung || std::mem::take(&mut this.first) {
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
        let ended = UntilSignal::new(main, signal, Arc::new(Alarm::default())).await;
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
        let ended = tokio::time::timeout(
            Duration::from_secs(5),
            UntilSignal::new(main, signal, Arc::new(Alarm::default())),
        )
        .await
        .expect("the signal ends the wait");
        assert!(matches!(ended, Ended::<()>::Signalled));
    }

    #[tokio::test]
    async fn ringing_the_alarm_makes_the_signal_look_again() {
        let alarm = Arc::new(Alarm::default());
        let raised = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ringer, flag) = (Arc::clone(&alarm), Arc::clone(&raised));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            flag.store(true, Ordering::Release);
            ringer.ring();
        });
        let main = std::pin::pin!(std::future::pending::<()>());
        let signal = std::pin::pin!(std::future::poll_fn(|_| {
            if raised.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        let ended = tokio::time::timeout(
            Duration::from_secs(5),
            UntilSignal::new(main, signal, alarm),
        )
        .await
        .expect("the alarm makes the signal look again");
        assert!(matches!(ended, Ended::Signalled));
    }

    #[tokio::test]
    async fn a_signal_already_there_wins_at_the_first_poll() {
        let main = std::pin::pin!(std::future::pending::<()>());
        let signal = std::pin::pin!(std::future::ready(()));
        let ended = UntilSignal::new(main, signal, Arc::new(Alarm::default())).await;
        assert!(matches!(ended, Ended::Signalled));
    }
}
