//! The body hyper sends for a pipeline's response, which also tells the connection's
//! flush tracker when the last byte has been handed over.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::pipeline::{Delivery, Tail};

/// A complete in-memory body carrying the request's [`Tail`], if it has one.
#[derive(Debug)]
pub(crate) struct ResponseBody {
    data: Option<Bytes>,
    tail: Option<Tail>,
}

impl ResponseBody {
    /// `on_wire` is false when no body bytes will be written (`HEAD`, `204`, `304`);
    /// hyper may then never poll the body, so the tail waits for the flush at once.
    pub(crate) fn new(data: Bytes, tail: Option<Tail>, on_wire: bool) -> Self {
        let data = (!data.is_empty()).then_some(data);
        let mut body = Self { data, tail };
        if !on_wire || body.data.is_none() {
            body.finish();
        }
        body
    }

    /// The last byte has been handed to hyper: deliver at the next flush.
    fn finish(&mut self) {
        if let Some(tail) = self.tail.take() {
            let conn = tail.connection_state();
            conn.flush.after_next_flush(tail);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = self.data.take().map(|data| Ok(Frame::data(data)));
        self.finish();
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some(tail) = self.tail.take() {
            tail.deliver(Delivery::Failed(
                "the client went away before the whole response was sent".to_owned(),
            ));
        }
    }
}
