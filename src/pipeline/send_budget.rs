//! [`SendBudget`]: the bytes of streamed response bodies one HTTP/2 connection may
//! hold, taken from the handlers but not yet written to the socket. hyper bounds
//! each stream's queue (`http2_send_buffer`) but not their sum, so a client that opens
//! many streams and never reads would make the server hold streams × buffer. Each
//! block taken from a body is charged to the connection before hyper gets it, and
//! the charge travels with the block ([`Charged`]) until h2 has written it out or
//! dropped it; a body whose block finds the budget spent waits, holding that one
//! block, until others are written.

use std::io::IoSlice;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::PollSemaphore;

/// One body's access to its connection's budget, with the block that waits for it.
/// Boxed in the body, so an HTTP/1 body, which never has one, stays small.
#[derive(Debug)]
pub(crate) struct SendBudget {
    semaphore: PollSemaphore,
    /// The whole budget: a block larger than it is charged all of it, so it can
    /// still go out once the others are written.
    total: usize,
    /// A block taken from the body that waits for room in the budget.
    held: Option<Bytes>,
    /// The charge of the block just let through, for the body to hand to hyper.
    charge: Option<OwnedSemaphorePermit>,
}

impl SendBudget {
    /// Charges against `semaphore`, whose permits are bytes and number `total`.
    pub(crate) fn new(semaphore: Arc<Semaphore>, total: usize) -> Self {
        Self {
            semaphore: PollSemaphore::new(semaphore),
            total,
            held: None,
            charge: None,
        }
    }

    /// Whether a block waits for room.
    pub(crate) fn is_holding(&self) -> bool {
        self.held.is_some()
    }

    /// Keeps `block` until the budget has room for it.
    pub(crate) fn hold(&mut self, block: Bytes) {
        self.held = Some(block);
    }

    /// The held block, once the connection's budget has room for it; its charge is
    /// kept for [`take_charge`](Self::take_charge). `None` if nothing was held.
    pub(crate) fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let len = self.held.as_ref().map_or(0, Bytes::len);
        match self.poll_charge(cx, len) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(charge) => {
                self.charge = charge;
                Poll::Ready(self.held.take())
            }
        }
    }

    /// The charge of the block last released.
    pub(crate) fn take_charge(&mut self) -> Option<OwnedSemaphorePermit> {
        self.charge.take()
    }

    /// The charge for a block of `len` bytes, once the connection's budget has room
    /// for it. An empty block costs nothing.
    fn poll_charge(
        &mut self,
        cx: &mut Context<'_>,
        len: usize,
    ) -> Poll<Option<OwnedSemaphorePermit>> {
        let permits = u32::try_from(len.min(self.total)).unwrap_or(u32::MAX);
        if permits == 0 {
            return Poll::Ready(None);
        }
        // The semaphore is never closed, so `None` cannot come back from it.
        self.semaphore.poll_acquire_many(cx, permits)
    }
}

/// A block of a response body as hyper writes it, with the share of the
/// connection's [`SendBudget`] it holds (HTTP/2 streamed bodies only): dropping the
/// block, once written or abandoned, gives the share back.
#[derive(Debug)]
pub(crate) struct Charged {
    bytes: Bytes,
    /// Boxed: HTTP/1 blocks carry none, and every byte of this type is moved for
    /// each block hyper writes.
    _charge: Option<Box<OwnedSemaphorePermit>>,
}

impl Charged {
    /// `bytes`, holding `charge` until dropped.
    pub(crate) fn new(bytes: Bytes, charge: Option<OwnedSemaphorePermit>) -> Self {
        Self {
            bytes,
            _charge: charge.map(Box::new),
        }
    }
}

impl Buf for Charged {
    fn remaining(&self) -> usize {
        self.bytes.remaining()
    }

    fn chunk(&self) -> &[u8] {
        self.bytes.chunk()
    }

    fn advance(&mut self, cnt: usize) {
        self.bytes.advance(cnt);
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.bytes.chunks_vectored(dst)
    }

    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        self.bytes.copy_to_bytes(len)
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn charge(budget: &mut SendBudget, len: usize) -> Poll<Option<OwnedSemaphorePermit>> {
        budget.hold(Bytes::from(vec![0; len]));
        let cx = &mut Context::from_waker(Waker::noop());
        budget.poll_release(cx).map(|_| budget.take_charge())
    }

    #[test]
    fn a_block_waits_while_the_budget_is_spent_and_goes_once_one_is_dropped() {
        let semaphore = Arc::new(Semaphore::new(100));
        let mut budget = SendBudget::new(Arc::clone(&semaphore), 100);
        let Poll::Ready(first) = charge(&mut budget, 60) else {
            panic!("room for the first block")
        };
        let first = Charged::new(Bytes::from_static(&[0; 60]), first);
        assert!(charge(&mut budget, 60).is_pending(), "only 40 bytes left");
        drop(first);
        assert!(matches!(charge(&mut budget, 60), Poll::Ready(Some(_))));
    }

    #[test]
    fn a_block_larger_than_the_budget_is_charged_all_of_it() {
        let semaphore = Arc::new(Semaphore::new(100));
        let mut budget = SendBudget::new(Arc::clone(&semaphore), 100);
        let Poll::Ready(Some(permit)) = charge(&mut budget, 1000) else {
            panic!("a large block still goes")
        };
        assert_eq!(permit.num_permits(), 100);
        assert_eq!(semaphore.available_permits(), 0);
        assert!(matches!(charge(&mut budget, 0), Poll::Ready(None)));
    }
}
