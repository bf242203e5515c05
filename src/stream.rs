//! Streaming responses: the channel between whoever produces a response's blocks
//! ([`Response::send`](crate::Response::send), from any task or thread) and the body
//! hyper writes, with a bound on the bytes buffered in between.
//!
//! Backpressure comes in two forms. The original module's: the Stream handler is
//! called again each time a block has been flushed to the client, so a producer that
//! sends one block per call never runs ahead of the client. And a bound: the bytes
//! queued but not yet taken by the connection never exceed the server's
//! [`stream_buffer`](crate::ServerBuilder::stream_buffer); [`Response::send`]
//! refuses a block beyond it and [`Response::ready`](crate::Response::ready) waits
//! for room.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::Waker;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::sync::lock;

/// Why a block could not be sent on a streaming response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The response is not streaming: call
    /// [`Response::set_streaming`](crate::Response::set_streaming) first.
    #[error("the response is not streaming; call Response::set_streaming(true) first")]
    NotStreaming,
    /// The buffer is full; wait with [`Response::ready`](crate::Response::ready) and
    /// send the block again.
    #[error("the stream buffer is full ({buffered} bytes queued); await Response::ready")]
    Full {
        /// Bytes queued when the block was refused.
        buffered: usize,
    },
    /// The stream was closed with [`Response::close`](crate::Response::close).
    #[error("the stream is already closed")]
    Closed,
    /// The client went away; nothing more can be sent.
    #[error("the client went away")]
    Gone,
}

#[derive(Debug, Default)]
struct ChannelState {
    queue: VecDeque<Bytes>,
    buffered: usize,
    peak_buffered: usize,
    closed: bool,
    gone: bool,
    /// The producer failed (a Stream handler panicked): the body ends in an error so
    /// the client sees a cut response, never a falsely complete one.
    broken: bool,
    /// The body's waker, while hyper waits for a block.
    reader: Option<Waker>,
    /// Stream-handler calls owed: one per flushed block and per resume.
    pokes: u64,
}

/// What the body gets from [`StreamChannel::take`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    Block(Bytes),
    /// Closed and drained, or abandoned.
    End,
    /// The producer failed.
    Broken,
    /// Nothing yet; the waker is registered.
    Pending,
}

/// The channel of one streaming response.
#[derive(Debug)]
pub(crate) struct StreamChannel {
    limit: usize,
    state: Mutex<ChannelState>,
    /// Wakes producers waiting for room, and the Stream-handler driver.
    changed: Notify,
}

impl StreamChannel {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            state: Mutex::default(),
            changed: Notify::new(),
        }
    }

    /// Queues `block`, unless that would take the buffer past its bound. An empty
    /// buffer always takes one block, however large, so progress is always possible.
    pub(crate) fn send(&self, block: Bytes) -> Result<(), StreamError> {
        let mut state = lock(&self.state);
        if state.gone {
            return Err(StreamError::Gone);
        }
        if state.closed {
            return Err(StreamError::Closed);
        }
        if state.buffered > 0 && state.buffered + block.len() > self.limit {
            return Err(StreamError::Full {
                buffered: state.buffered,
            });
        }
        if block.is_empty() {
            return Ok(());
        }
        state.buffered += block.len();
        state.peak_buffered = state.peak_buffered.max(state.buffered);
        state.queue.push_back(block);
        let reader = state.reader.take();
        drop(state);
        if let Some(reader) = reader {
            reader.wake();
        }
        Ok(())
    }

    /// Waits until a block of `len` bytes would be accepted, or the stream ended.
    pub(crate) async fn ready(&self, len: usize) -> Result<(), StreamError> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let state = lock(&self.state);
                if state.gone {
                    return Err(StreamError::Gone);
                }
                if state.closed {
                    return Err(StreamError::Closed);
                }
                if state.buffered == 0 || state.buffered + len <= self.limit {
                    return Ok(());
                }
            }
            changed.await;
        }
    }

    /// Ends the stream once the queued blocks are written.
    pub(crate) fn close(&self) {
        let reader = {
            let mut state = lock(&self.state);
            state.closed = true;
            state.reader.take()
        };
        if let Some(reader) = reader {
            reader.wake();
        }
        self.changed.notify_waiters();
    }

    /// The client went away: refuse further blocks and wake everyone waiting.
    pub(crate) fn abandon(&self) {
        {
            let mut state = lock(&self.state);
            state.gone = true;
            state.queue.clear();
            state.buffered = 0;
        }
        self.changed.notify_waiters();
    }

    /// Asks for one more Stream-handler call (a block was flushed, or a resume).
    pub(crate) fn poke(&self) {
        lock(&self.state).pokes += 1;
        self.changed.notify_waiters();
    }

    /// Waits until a Stream-handler call is owed (returning true) or the stream is
    /// over (returning false).
    pub(crate) async fn next_call(&self) -> bool {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = lock(&self.state);
                if state.gone || state.closed {
                    return false;
                }
                if state.pokes > 0 {
                    state.pokes -= 1;
                    return true;
                }
            }
            changed.await;
        }
    }

    /// The producer failed: end the body in an error.
    pub(crate) fn break_off(&self) {
        let reader = {
            let mut state = lock(&self.state);
            state.broken = true;
            state.reader.take()
        };
        if let Some(reader) = reader {
            reader.wake();
        }
        self.abandon();
    }

    /// Takes the next block for the body, or registers `waker` for when one comes.
    pub(crate) fn take(&self, waker: &Waker) -> Taken {
        let mut state = lock(&self.state);
        if state.broken {
            return Taken::Broken;
        }
        if let Some(block) = state.queue.pop_front() {
            state.buffered -= block.len();
            drop(state);
            self.changed.notify_waiters();
            return Taken::Block(block);
        }
        if state.closed || state.gone {
            return Taken::End;
        }
        state.reader = Some(waker.clone());
        Taken::Pending
    }

    /// Bytes queued and not yet taken by the connection.
    pub(crate) fn buffered(&self) -> usize {
        lock(&self.state).buffered
    }

    /// The most bytes ever queued at once.
    pub(crate) fn peak_buffered(&self) -> usize {
        lock(&self.state).peak_buffered
    }

    /// Reports whether the stream ended properly (closed, every block taken) or was
    /// abandoned.
    pub(crate) fn is_finished(&self) -> bool {
        let state = lock(&self.state);
        (state.closed && state.queue.is_empty()) || state.gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn the_bound_refuses_a_block_once_something_is_queued() {
        let channel = StreamChannel::new(10);
        assert_eq!(channel.send(Bytes::from_static(b"12345678")), Ok(()));
        assert_eq!(
            channel.send(Bytes::from_static(b"123")),
            Err(StreamError::Full { buffered: 8 })
        );
        assert_eq!(
            channel.take(Waker::noop()),
            Taken::Block(Bytes::from_static(b"12345678"))
        );
        assert_eq!(channel.send(Bytes::from_static(b"123")), Ok(()));
        assert_eq!(channel.peak_buffered(), 8);
    }

    #[test]
    fn an_empty_buffer_takes_an_oversized_block() {
        let channel = StreamChannel::new(4);
        assert_eq!(
            channel.send(Bytes::from_static(b"much more than four")),
            Ok(())
        );
    }

    #[test]
    fn close_ends_the_body_after_the_queued_blocks() {
        let channel = StreamChannel::new(100);
        channel.send(Bytes::from_static(b"last")).expect("room");
        channel.close();
        assert_eq!(
            channel.send(Bytes::from_static(b"x")),
            Err(StreamError::Closed)
        );
        assert_eq!(
            channel.take(Waker::noop()),
            Taken::Block(Bytes::from_static(b"last"))
        );
        assert_eq!(channel.take(Waker::noop()), Taken::End);
    }

    #[test]
    fn an_abandoned_stream_refuses_blocks_and_frees_its_buffer() {
        let channel = StreamChannel::new(100);
        channel.send(Bytes::from_static(b"queued")).expect("room");
        channel.abandon();
        assert_eq!(channel.buffered(), 0);
        assert_eq!(
            channel.send(Bytes::from_static(b"x")),
            Err(StreamError::Gone)
        );
    }

    #[test]
    fn a_broken_stream_ends_in_an_error() {
        let channel = StreamChannel::new(100);
        channel.send(Bytes::from_static(b"partial")).expect("room");
        channel.break_off();
        assert_eq!(channel.take(Waker::noop()), Taken::Broken);
    }
}
