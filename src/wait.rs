//! The gate behind [`Outcome::Wait`](crate::Outcome::Wait): a suspended pipeline waits
//! here until [`Response::resume`](crate::Response::resume) opens it.
//!
//! The gate is state, not an event: a resume that arrives before the pipeline starts
//! waiting (the handler spawned a task that finished at once) is not lost, resuming
//! twice is the same as once, and resuming after the client left only flips a flag
//! nobody reads. It is re-armed before every handler call.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(crate) struct WaitGate {
    /// An atomic, not a lock: the gate is re-armed before every handler call.
    resumed: AtomicBool,
    notify: Notify,
}

impl WaitGate {
    /// Closes the gate; called before each handler runs.
    pub(crate) fn arm(&self) {
        self.resumed.store(false, Ordering::SeqCst);
    }

    /// Opens the gate and wakes the pipeline if it is waiting. Callable from any thread.
    pub(crate) fn open(&self) {
        self.resumed.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Reports whether the gate has been opened since it was last armed.
    pub(crate) fn is_open(&self) -> bool {
        self.resumed.load(Ordering::SeqCst)
    }

    /// Waits until the gate is opened.
    pub(crate) async fn passed(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registering before checking the flag means an `open` between the check
            // and the await still wakes us.
            notified.as_mut().enable();
            if self.resumed.load(Ordering::SeqCst) {
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
        gate.arm();
        gate.open();
        tokio::time::timeout(Duration::from_secs(5), gate.passed())
            .await
            .expect("the gate was opened before waiting");
    }

    #[tokio::test]
    async fn arming_closes_the_gate_again() {
        let gate = WaitGate::default();
        gate.open();
        gate.arm();
        let waited = tokio::time::timeout(Duration::from_millis(50), gate.passed()).await;
        assert!(waited.is_err(), "an armed gate must hold the pipeline");
    }

    #[tokio::test]
    async fn opening_from_a_plain_thread_wakes_the_waiter() {
        let gate = Arc::new(WaitGate::default());
        gate.arm();
        let opener = Arc::clone(&gate);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            opener.open();
            opener.open();
        });
        tokio::time::timeout(Duration::from_secs(5), gate.passed())
            .await
            .expect("opened from another thread");
        thread.join().expect("opener thread");
    }
}
