//! The gate behind [`Outcome::Wait`](crate::Outcome::Wait): a suspended pipeline waits
//! here until [`Response::resume`](crate::Response::resume) opens it.
//!
//! The gate counts resumes, and the pipeline notes the count before each handler call:
//! the handler's `Wait` is over once the count has moved. So a resume that arrives
//! before the pipeline starts waiting (the handler spawned a task that finished at
//! once) is not lost, resuming twice is the same as once, a late resume meant for an
//! earlier handler does not release a later one, and resuming after the client left
//! only bumps a counter nobody reads.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(crate) struct WaitGate {
    /// Resumes so far; noting it before a call is a plain load, not a write.
    resumes: AtomicU64,
    notify: Notify,
}

/// The gate's count when a handler was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark(u64);

impl WaitGate {
    /// Notes the count; called before each handler runs.
    pub(crate) fn mark(&self) -> Mark {
        Mark(self.resumes.load(Ordering::SeqCst))
    }

    /// Opens the gate and wakes the pipeline if it is waiting. Callable from any thread.
    pub(crate) fn open(&self) {
        self.resumes.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Reports whether the gate has been opened since `mark` was taken.
    pub(crate) fn is_open_since(&self, mark: Mark) -> bool {
        self.resumes.load(Ordering::SeqCst) != mark.0
    }

    /// Waits until the gate has been opened since `mark` was taken.
    pub(crate) async fn passed(&self, mark: Mark) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registering before checking the count means an `open` between the check
            // and the await still wakes us.
            notified.as_mut().enable();
            if self.is_open_since(mark) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn an_early_open_is_not_lost() {
        let gate = WaitGate::default();
        let mark = gate.mark();
        gate.open();
        tokio::time::timeout(Duration::from_secs(5), gate.passed(mark))
            .await
            .expect("the gate was opened before waiting");
    }

    #[tokio::test]
    async fn a_resume_before_the_mark_does_not_count() {
        let gate = WaitGate::default();
        gate.open();
        let mark = gate.mark();
        let waited = tokio::time::timeout(Duration::from_millis(50), gate.passed(mark)).await;
        assert!(
            waited.is_err(),
            "an earlier resume must not release a later Wait"
        );
    }

    #[tokio::test]
    async fn opening_from_a_plain_thread_wakes_the_waiter() {
        let gate = Arc::new(WaitGate::default());
        let mark = gate.mark();
        let opener = Arc::clone(&gate);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            opener.open();
            opener.open();
        });
        tokio::time::timeout(Duration::from_secs(5), gate.passed(mark))
            .await
            .expect("opened from another thread");
        thread.join().expect("opener thread");
    }
}
