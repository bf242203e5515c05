//! [`ConnState`]: what the requests of one connection share with its socket wrappers
//! and its task — the flush tracker and what waits in it ([`AfterFlush`]), the count
//! of requests in progress ([`ActiveRequest`]), the first write failure, the idle and
//! shutdown signals. It implements the small traits the socket wrappers are generic
//! over (`FlushObserver`, `IdleWatch`, `Refusals`, `AlarmWaker`).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Wake;

use bytes::Bytes;
use tokio::sync::{Semaphore, oneshot};

use super::send_budget::SendBudget;
use super::{Delivery, Tail};
use crate::connection::ConnectionInfo;
use crate::exchange::{ERROR_PAGE_TYPE, error_page};
use crate::failure::Failure;
use crate::flush::{FlushObserver, FlushTracker, Flushable};
use crate::refusal_io::{Refusals, encode_response};
use crate::shared::Shared;
use crate::stats::Stats;
use crate::stream::StreamChannel;
use crate::timed_io::IdleWatch;
use crate::until_signal::{Alarm, AlarmWaker};

/// What waits for the next flush of a connection.
#[derive(Debug)]
pub(crate) enum AfterFlush {
    /// A response whose body has ended: its Post handlers run after the flush.
    Tail(Tail),
    /// A block of a streaming response: its Stream handler is called again.
    Block(Arc<StreamChannel>),
}

impl Flushable for AfterFlush {
    fn flushed(self) {
        match self {
            Self::Tail(tail) => tail.deliver(Delivery::Flushed),
            Self::Block(channel) => channel.poke(),
        }
    }

    fn failed(self, cause: &Failure) {
        match self {
            Self::Tail(tail) => tail.deliver(Delivery::Failed(cause.clone())),
            Self::Block(channel) => channel.abandon(),
        }
    }
}

/// What the requests of one connection share with its socket wrapper.
#[derive(Debug)]
pub(crate) struct ConnState {
    pub(crate) info: Arc<ConnectionInfo>,
    pub(crate) flush: FlushTracker<AfterFlush>,
    pub(crate) stats: Stats,
    /// Set once a request of this connection has run its Error handler, so a failure
    /// is not reported a second time as a failure of the connection.
    pub(crate) error_reported: AtomicBool,
    /// Requests between their head arriving and their response being done with.
    active: AtomicUsize,
    /// Set by the socket wrapper once the connection has been idle too long; it then
    /// rings `alarm`.
    idle: AtomicBool,
    /// Wakes the connection task to look at `idle` and at the server's shutdown.
    alarm: Alarm,
    /// The first write error, to tell Error handlers why a response was cut.
    pub(crate) write_failure: OnceLock<Failure>,
    /// Set when a request's response is done with and its last bytes may still sit
    /// in hyper's buffer; cleared by the next successful flush.
    unflushed: AtomicBool,
    /// The server, for the default headers of the refusals hyper makes itself.
    shared: Arc<Shared>,
    /// Set once a `101` (or a `2xx` to a `CONNECT`) went out: the connection now
    /// carries another protocol.
    upgraded: AtomicBool,
    /// Dropped with the state, which tells the connection's task (see
    /// [`ConnState::on_release`]).
    released: OnceLock<oneshot::Sender<()>>,
    /// Set by the first HTTP/2 request: hyper's own refusals are an HTTP/1 matter.
    http2: AtomicBool,
    /// The bytes of streamed bodies this connection may hold unwritten, made by the
    /// first HTTP/2 body that needs it (`send_budget.rs`); HTTP/1 never does.
    send_budget: OnceLock<Arc<Semaphore>>,
    /// Room for HTTP/2 streams being answered at once (`max_active_streams`), so
    /// one connection cannot pin more open files and buffers than that.
    stream_slots: Semaphore,
}

impl ConnState {
    /// The state of a connection just accepted, with the facts in `info`.
    pub(crate) fn new(info: ConnectionInfo, shared: &Arc<Shared>) -> Self {
        let max_active_streams = info.transport.limits.max_active_streams as usize;
        Self {
            info: Arc::new(info),
            flush: FlushTracker::default(),
            stats: shared.stats.clone(),
            error_reported: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            idle: AtomicBool::new(false),
            alarm: Alarm::default(),
            write_failure: OnceLock::new(),
            unflushed: AtomicBool::new(false),
            shared: Arc::clone(shared),
            upgraded: AtomicBool::new(false),
            released: OnceLock::new(),
            http2: AtomicBool::new(false),
            send_budget: OnceLock::new(),
            stream_slots: Semaphore::new(max_active_streams),
        }
    }

    /// An HTTP/2 request arrived: the connection speaks HTTP/2.
    pub(crate) fn note_http2(&self) {
        if !self.http2.load(Ordering::Relaxed) {
            self.http2.store(true, Ordering::Release);
        }
    }

    /// This connection's budget for streamed HTTP/2 bodies.
    pub(crate) fn send_budget(&self) -> SendBudget {
        let total = self.info.transport.limits.http2_connection_buffer;
        let semaphore = self
            .send_budget
            .get_or_init(|| Arc::new(Semaphore::new(total)));
        SendBudget::new(Arc::clone(semaphore), total)
    }

    /// A `101 Switching Protocols` answer (or a `2xx` to an HTTP/1 `CONNECT`) went
    /// out on this connection: its bytes are no longer HTTP's.
    pub(crate) fn note_upgraded(&self) {
        self.upgraded.store(true, Ordering::Release);
    }

    /// Reports whether a `101` went out: the socket now serves another protocol.
    pub(crate) fn is_upgraded(&self) -> bool {
        self.upgraded.load(Ordering::Acquire)
    }

    /// A future that completes when this state is dropped: when nothing holds the
    /// connection any more — for a connection taken over, when the task serving it
    /// dropped the socket (whose wrappers hold the state) and the request's back
    /// half ran. Asked for once, by the connection's task.
    pub(crate) fn on_release(&self) -> impl Future<Output = ()> + use<> {
        let (sender, receiver) = oneshot::channel();
        let _ = self.released.set(sender);
        async move {
            let _ = receiver.await;
        }
    }

    /// Whether the socket wrapper found the connection idle too long.
    pub(crate) fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Acquire)
    }

    /// How many requests of this connection are in progress.
    pub(crate) fn active_requests(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
}

impl IdleWatch for ConnState {
    fn is_busy(&self) -> bool {
        self.active_requests() > 0
    }

    fn reads_heads(&self) -> bool {
        !self.http2.load(Ordering::Relaxed) && !self.upgraded.load(Ordering::Relaxed)
    }

    /// The connection has been idle too long: its task closes it.
    fn signal_idle(&self) {
        self.idle.store(true, Ordering::Release);
        self.alarm.ring();
    }
}

impl FlushObserver for ConnState {
    fn flushed(&self) {
        if self.unflushed.load(Ordering::Relaxed) {
            self.unflushed.store(false, Ordering::Release);
        }
        self.flush.flushed();
    }

    fn write_failed(&self, error: &io::Error) {
        // The error itself goes back to hyper; the handlers get its kind and text.
        let cause = Failure::of_write(io::Error::new(error.kind(), error.to_string()));
        self.flush.failed(&cause);
        let _ = self.write_failure.set(cause);
    }

    fn closed(&self) {
        self.flush.close();
    }
}

/// hyper's own answers to heads it refuses get the server's default headers.
impl Refusals for ConnState {
    fn is_between_requests(&self) -> bool {
        self.active_requests() == 0
            && !self.unflushed.load(Ordering::Acquire)
            && !self.upgraded.load(Ordering::Acquire)
            && !self.http2.load(Ordering::Acquire)
    }

    fn render(&self, status: http::StatusCode) -> Bytes {
        let body = error_page(status);
        let mut headers = http::HeaderMap::new();
        let plain = http::HeaderValue::from_static(ERROR_PAGE_TYPE);
        headers.insert(http::header::CONTENT_TYPE, plain);
        headers.insert(http::header::CONTENT_LENGTH, body.len().into());
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        if let Ok(date) = http::HeaderValue::try_from(date) {
            headers.insert(http::header::DATE, date);
        }
        let close = http::HeaderValue::from_static("close");
        headers.insert(http::header::CONNECTION, close);
        self.shared.site.load().add_default_headers(&mut headers);
        encode_response(status, &headers, &body)
    }
}

/// The connection task's signals (shutdown, idleness) wake it through its state.
impl Wake for ConnState {
    fn wake(self: Arc<Self>) {
        self.alarm.ring();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.alarm.ring();
    }
}

impl AlarmWaker for ConnState {
    fn alarm(&self) -> &Alarm {
        &self.alarm
    }
}

/// Counts a request as in progress from its head until its response body is dropped
/// (sent or abandoned): the connection is not idle meanwhile. An HTTP/2 request also
/// holds one of its connection's stream slots for as long.
#[derive(Debug)]
pub(crate) struct ActiveRequest {
    conn: Arc<ConnState>,
    /// Whether it holds one of the connection's stream slots.
    holds_slot: bool,
}

impl ActiveRequest {
    pub(crate) fn new(conn: &Arc<ConnState>) -> Self {
        conn.active.fetch_add(1, Ordering::AcqRel);
        Self {
            conn: Arc::clone(conn),
            holds_slot: false,
        }
    }

    /// The connection the request is counted on.
    pub(crate) fn conn(&self) -> &Arc<ConnState> {
        &self.conn
    }

    /// Waits for one of the connection's HTTP/2 stream slots, held until this
    /// request's response is done with.
    pub(crate) async fn take_stream_slot(&mut self) {
        // The semaphore is never closed; the permit is given back in `drop`.
        if let Ok(permit) = self.conn.stream_slots.acquire().await {
            permit.forget();
            self.holds_slot = true;
        }
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        if self.holds_slot {
            self.conn.stream_slots.add_permits(1);
        }
        // Before the count drops: a write seeing no request in progress must also
        // see that this one's bytes may still be on their way.
        self.conn.unflushed.store(true, Ordering::Release);
        self.conn.active.fetch_sub(1, Ordering::AcqRel);
    }
}
