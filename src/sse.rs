//! Server-Sent Events: [`Event`] encodes one event of a `text/event-stream`, and
//! [`Response::start_event_stream`](crate::Response::start_event_stream) turns a
//! response into one.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;

/// One Server-Sent Event, or a comment line used as a keep-alive.
///
/// ```
/// use poco_httpd::Event;
///
/// let event = Event::data("line one\nline two").event("tick").id("42");
/// assert_eq!(
///     event.to_bytes(),
///     "event: tick\nid: 42\ndata: line one\ndata: line two\n\n"
/// );
/// assert_eq!(Event::comment("keep-alive").to_bytes(), ": keep-alive\n\n");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    event: Option<String>,
    id: Option<String>,
    retry: Option<Duration>,
    data: Option<String>,
    comment: Option<String>,
}

impl Event {
    /// An event carrying `data`; each line of it becomes a `data:` line.
    pub fn data(data: impl Into<String>) -> Self {
        Self {
            data: Some(data.into()),
            ..Self::default()
        }
    }

    /// A comment: ignored by browsers, it keeps idle connections open.
    pub fn comment(text: impl Into<String>) -> Self {
        Self {
            comment: Some(text.into()),
            ..Self::default()
        }
    }

    /// Names the event type (`addEventListener(name, ...)` in a browser).
    pub fn event(mut self, name: &str) -> Self {
        self.event = Some(single_line(name));
        self
    }

    /// Sets the event id, which a reconnecting browser sends back as `Last-Event-ID`.
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(single_line(id));
        self
    }

    /// Tells the browser how long to wait before reconnecting.
    pub fn retry(mut self, after: Duration) -> Self {
        self.retry = Some(after);
        self
    }

    /// The event in wire format, ready for [`Response::send`](crate::Response::send).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = String::new();
        if let Some(comment) = &self.comment {
            for line in comment.lines() {
                let _ = writeln!(out, ": {line}");
            }
        }
        if let Some(event) = &self.event {
            let _ = writeln!(out, "event: {event}");
        }
        if let Some(id) = &self.id {
            let _ = writeln!(out, "id: {id}");
        }
        if let Some(retry) = self.retry {
            let _ = writeln!(out, "retry: {}", retry.as_millis());
        }
        if let Some(data) = &self.data {
            for line in data.split('\n') {
                let _ = writeln!(out, "data: {}", line.trim_end_matches('\r'));
            }
        }
        out.push('\n');
        Bytes::from(out)
    }
}

impl From<Event> for Bytes {
    fn from(event: Event) -> Bytes {
        event.to_bytes()
    }
}

/// Field values other than data may not span lines: a newline would start a new
/// field, so it is dropped.
fn single_line(value: &str) -> String {
    value.chars().filter(|c| *c != '\n' && *c != '\r').collect()
}
