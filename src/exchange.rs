//! One request/response exchange: the state [`Request`](crate::Request) and
//! [`Response`](crate::Response) handles share.
//!
//! Both handles are an `Arc<Exchange>`, so one allocation serves the whole request.
//! What never changes after the head arrives (method, version, URI as received,
//! headers, the connection) is read without locking; what handlers change sits behind
//! short-held mutexes that are never held across an `.await` or while user code runs.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use cookie::Cookie;
use http::header::{CONTENT_TYPE, SET_COOKIE};
use http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use smallvec::SmallVec;

use crate::body::Body;
use crate::connection::Connection;
use crate::failure::Failure;
use crate::handler::SharedHandler;
use crate::incoming::IncomingBody;
use crate::post_hold::HoldSlot;
use crate::shared::Shared;
use crate::site::Site;
use crate::stream::StreamChannel;
use crate::sync::lock;

use crate::wait::WaitGate;

/// The parts of the request fixed once its head has been read.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) method: Method,
    pub(crate) version: Version,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
}

/// What handlers may change about the request.
#[derive(Debug)]
pub(crate) struct RequestState {
    /// The URI a Trans handler rewrote the request to; `None` keeps the one received.
    /// Boxed: rare, and the exchange is kept small (see the size test).
    pub(crate) rewritten_uri: Option<Box<Uri>>,
    pub(crate) extensions: Extensions,
    pub(crate) body: Option<IncomingBody>,
    /// Body bytes read so far through `Request::body_chunk`.
    pub(crate) body_read: u64,
    /// A Content handler a Pre handler put in place of the mapped one.
    pub(crate) content_override: Option<SharedHandler>,
    /// Post handlers pushed for this request only, run after the mapped ones.
    pub(crate) extra_post: Vec<SharedHandler>,
    /// Handlers to run at the start of the Send phase, before the head goes out.
    pub(crate) send_hooks: Vec<SharedHandler>,
}

/// Response headers kept for the Post handlers once the head has gone out; two are
/// kept without allocating (more would grow the exchange; see the size test).
type KeptHeaders = SmallVec<[(HeaderName, HeaderValue); 2]>;

/// The response being built.
#[derive(Debug, Default)]
pub(crate) struct ResponseState {
    pub(crate) status: StatusCode,
    /// Read through [`ResponseState::header_map`] once the head has gone out.
    pub(crate) headers: HeaderMap,
    /// The headers as the handlers set them, kept when the head went out; moved
    /// back into `headers` when a Post handler first looks at them, so that
    /// handlers which never do cost no second map.
    kept_headers: KeptHeaders,
    pub(crate) body: Body,
    pub(crate) cookies: Vec<Cookie<'static>>,
    /// The channel `Response::send` feeds, once streaming was turned on; kept while
    /// the body is taken out and wrapped.
    pub(crate) channel: Option<Arc<StreamChannel>>,
    /// Set when a handler misused the API in a way only a 500 can answer.
    pub(crate) misuse: Option<String>,
    /// A handler set a `Content-Length` (the Send phase checks it only then, which
    /// saves a header lookup per response).
    pub(crate) length_set: bool,
    pub(crate) sent: bool,
}

impl ResponseState {
    /// The response headers, the kept ones restored if the head has gone out.
    pub(crate) fn header_map(&mut self) -> &mut HeaderMap {
        if !self.kept_headers.is_empty() {
            for (name, value) in self.kept_headers.drain(..) {
                self.headers.append(name, value);
            }
        }
        &mut self.headers
    }

    /// Hands the headers over for the head, keeping a copy for the Post handlers
    /// when `keep` is set.
    pub(crate) fn take_headers(&mut self, keep: bool) -> HeaderMap {
        let headers = std::mem::take(self.header_map());
        if keep {
            let copies = headers
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()));
            self.kept_headers = copies.collect();
        }
        headers
    }
}

/// Which rarely used parts of the request state a handler has set (the per-request
/// handler lists, a rewritten URI), so the pipeline skips their lock when none was,
/// the common case.
#[derive(Debug, Default)]
pub(crate) struct Added(AtomicU8);

impl Added {
    /// `Request::set_content_handler`.
    pub(crate) const CONTENT: u8 = 1;
    /// `Request::before_send`.
    pub(crate) const SEND_HOOKS: u8 = 2;
    /// `Request::push_post_handler`.
    pub(crate) const POST: u8 = 4;
    /// `Request::set_uri` (not a handler list, but as rarely set).
    pub(crate) const URI: u8 = 8;
    /// `Request::set_header` and its kin: the headers live in `Exchange::edited`.
    pub(crate) const HEADERS: u8 = 16;
    /// `Request::hold_post`: the back half waits in a [`HoldSlot`].
    pub(crate) const HOLD: u8 = 32;

    /// Records an addition; called after the list was changed under its lock.
    pub(crate) fn mark(&self, list: u8) {
        self.0.fetch_or(list, Ordering::Release);
    }

    pub(crate) fn has(&self, list: u8) -> bool {
        self.0.load(Ordering::Acquire) & list != 0
    }
}

/// The extension that holds a request's [`HoldSlot`].
#[derive(Clone)]
struct HeldBack(Arc<HoldSlot>);

/// The shared state of one exchange; see the module docs. Its fields are private:
/// the two locks are taken through [`Exchange::request_state`] and
/// [`Exchange::response_state`], by `request.rs` and `response.rs` only (a test
/// checks it), and the pipeline goes through the named operations below.
#[derive(Debug)]
pub(crate) struct Exchange {
    head: RequestHead,
    /// When the pipeline started on this request.
    received: std::time::Instant,
    connection: Connection,
    server: Arc<Shared>,
    /// The handlers current when the request started, kept to its end.
    site: Arc<Site>,
    request: Mutex<RequestState>,
    response: Mutex<ResponseState>,
    gate: WaitGate,
    added: Added,
    /// The normalized path of the URI received, when normalizing changed it (else the
    /// URI's own path is the normal one, and nothing is copied).
    normalized: Option<Box<str>>,
    /// The normalized path of a URI a Trans handler rewrote, set by the Map phase.
    mapped: OnceLock<Box<str>>,
    /// Why the exchange failed, once it has; set at most once.
    failure: OnceLock<Failure>,
    /// The request headers as handlers edited them, newest last; see
    /// [`EditedHeaders`].
    edited: OnceLock<Box<EditedHeaders>>,
}

/// One edit's snapshot of the request headers, in an append-only chain: each link is
/// set once and never changed or freed before the exchange, so a reader borrows the
/// newest map without a lock (edits, which copy the map, are rare; reads are not).
#[derive(Debug)]
struct EditedHeaders {
    headers: HeaderMap,
    newer: OnceLock<Box<EditedHeaders>>,
}

impl Exchange {
    pub(crate) fn new(
        head: RequestHead,
        body: Option<IncomingBody>,
        extensions: Extensions,
        normalized: Option<Box<str>>,
        connection: Connection,
        server: Arc<Shared>,
        site: Arc<Site>,
    ) -> Arc<Self> {
        let request = RequestState {
            rewritten_uri: None,
            extensions,
            body,
            body_read: 0,
            content_override: None,
            extra_post: Vec::new(),
            send_hooks: Vec::new(),
        };
        Arc::new(Self {
            head,
            received: std::time::Instant::now(),
            connection,
            server,
            site,
            request: Mutex::new(request),
            response: Mutex::new(ResponseState::default()),
            gate: WaitGate::default(),
            added: Added::default(),
            normalized,
            mapped: OnceLock::new(),
            failure: OnceLock::new(),
            edited: OnceLock::new(),
        })
    }

    /// The request head as received.
    pub(crate) fn head(&self) -> &RequestHead {
        &self.head
    }

    /// When the pipeline started on this request.
    pub(crate) fn received(&self) -> std::time::Instant {
        self.received
    }

    /// The connection the request arrived on.
    pub(crate) fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The server the request arrived at.
    pub(crate) fn server(&self) -> &Arc<Shared> {
        &self.server
    }

    /// The handlers and settings the request runs with.
    pub(crate) fn site(&self) -> &Arc<Site> {
        &self.site
    }

    /// The gate `Outcome::Wait` suspends on and `Response::resume` opens.
    pub(crate) fn gate(&self) -> &WaitGate {
        &self.gate
    }

    /// Which rarely used request lists a handler has added to.
    pub(crate) fn added(&self) -> &Added {
        &self.added
    }

    /// The slot this request's Post holds share, made by the first hold: kept among
    /// the request's extensions under a type only the crate can name.
    pub(crate) fn hold_slot(&self) -> Arc<HoldSlot> {
        let mut request = lock(&self.request);
        let held = (request.extensions).get_or_insert_with(|| HeldBack(Arc::default()));
        let slot = Arc::clone(&held.0);
        drop(request);
        self.added.mark(Added::HOLD);
        slot
    }

    /// The slot of the holds taken on this request, if any was.
    pub(crate) fn held_back(&self) -> Option<Arc<HoldSlot>> {
        if !self.added.has(Added::HOLD) {
            return None;
        }
        let request = lock(&self.request);
        request
            .extensions
            .get::<HeldBack>()
            .map(|held| Arc::clone(&held.0))
    }

    /// The request state, locked: for `request.rs`.
    pub(crate) fn request_state(&self) -> MutexGuard<'_, RequestState> {
        lock(&self.request)
    }

    /// The response state, locked: for `response.rs`.
    pub(crate) fn response_state(&self) -> MutexGuard<'_, ResponseState> {
        lock(&self.response)
    }

    /// The URI a Trans handler rewrote the request to, if one did.
    pub(crate) fn rewritten_uri(&self) -> Option<Uri> {
        if !self.added.has(Added::URI) {
            return None;
        }
        lock(&self.request).rewritten_uri.as_deref().cloned()
    }

    /// Whether the response head has been handed to the connection.
    pub(crate) fn is_sent(&self) -> bool {
        lock(&self.response).sent
    }

    /// The answer the server made itself closes the connection after it.
    pub(crate) fn close_after_answer(&self) {
        let close = HeaderValue::from_static("close");
        lock(&self.response)
            .headers
            .insert(http::header::CONNECTION, close);
    }

    /// `Deny` from a Pre or Content handler: 403, unless the handler chose an error
    /// status.
    ///
    /// A `403` replaces the response: status, headers, cookies and body set so far
    /// are dropped (the default headers are still added). With an error status of its
    /// own (say `401` and `WWW-Authenticate`), the handler's response is kept as it
    /// is, and only given the standard error page and its `Content-Type` if it has no
    /// body.
    pub(crate) fn deny(&self) {
        let mut response = lock(&self.response);
        let status = response.status;
        if !(status.is_client_error() || status.is_server_error()) {
            drop(response);
            return self.answer_error(StatusCode::FORBIDDEN);
        }
        if response.body.is_empty() {
            response.body = Body::full(error_page(status));
            let headers = response.header_map();
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(ERROR_PAGE_TYPE));
            }
        }
    }

    /// The Send phase takes the response for the wire: a handler's misuse becomes a
    /// `500`, cookies become `Set-Cookie` headers, and the response counts as sent. A
    /// whole body stays readable by the Post handlers (a copy of the headers too, if
    /// `keep_headers`); a stream goes to the wire, while its channel stays reachable
    /// from the `Response` for `send` and `close`.
    pub(crate) fn hand_over(&self, keep_headers: bool) -> HandedOver {
        let mut state = lock(&self.response);
        if let Some(misuse) = state.misuse.take() {
            drop(state);
            tracing::error!(path = %self.path(), "handler misused the response: {misuse}");
            self.answer_error(StatusCode::INTERNAL_SERVER_ERROR);
            state = lock(&self.response);
        }
        state.sent = true;
        let mut headers = state.take_headers(keep_headers);
        for cookie in &state.cookies {
            match HeaderValue::try_from(cookie.encoded().to_string()) {
                Ok(value) => {
                    headers.append(SET_COOKIE, value);
                }
                Err(_) => tracing::error!(cookie = cookie.name(), "cookie is not a valid header"),
            }
        }
        let body = match state.body.as_bytes() {
            Some(bytes) => Body::full(bytes.clone()),
            None => std::mem::take(&mut state.body),
        };
        HandedOver {
            status: state.status,
            headers,
            body,
            pushed: state.channel.clone(),
            length_set: state.length_set,
        }
    }

    /// The normalized path handlers are mapped by.
    pub(crate) fn path(&self) -> &str {
        match self.mapped.get().or(self.normalized.as_ref()) {
            Some(path) => path,
            None => self.head.uri.path(),
        }
    }

    /// The request headers as they stand: the received ones unless a handler edited
    /// them, then the newest edit's. Never locks.
    pub(crate) fn request_headers(&self) -> &HeaderMap {
        if !self.added.has(Added::HEADERS) {
            return &self.head.headers;
        }
        let mut newest = &self.head.headers;
        let mut next = self.edited.get();
        while let Some(edited) = next {
            newest = &edited.headers;
            next = edited.newer.get();
        }
        newest
    }

    /// Applies `edit` to a copy of the request headers as they stand, which becomes
    /// the newest. `edit` is our own code, never a handler's; edits are serialized by
    /// the request lock.
    pub(crate) fn edit_request_headers<R>(&self, edit: impl FnOnce(&mut HeaderMap) -> R) -> R {
        let _one_editor = lock(&self.request);
        let mut slot = &self.edited;
        let mut headers = &self.head.headers;
        while let Some(edited) = slot.get() {
            headers = &edited.headers;
            slot = &edited.newer;
        }
        let mut headers = headers.clone();
        let result = edit(&mut headers);
        let newest = EditedHeaders {
            headers,
            newer: OnceLock::new(),
        };
        // The lock is held, so the slot found empty is still empty.
        let _ = slot.set(Box::new(newest));
        self.added.mark(Added::HEADERS);
        result
    }

    /// Records the path a Trans rewrite maps to; the Map phase runs once.
    pub(crate) fn set_mapped_path(&self, path: String) {
        let _ = self.mapped.set(path.into_boxed_str());
    }

    /// Takes a per-request handler list (see [`Added`]) out of the request, without
    /// locking when nothing was ever added to it.
    pub(crate) fn take_added<T: Default>(
        &self,
        list: u8,
        field: impl FnOnce(&mut RequestState) -> &mut T,
    ) -> T {
        if !self.added.has(list) {
            return T::default();
        }
        std::mem::take(field(&mut lock(&self.request)))
    }

    /// Records that the exchange failed; the first cause recorded is kept.
    pub(crate) fn fail(&self, cause: Failure) {
        let _ = self.failure.set(cause);
    }

    pub(crate) fn is_failed(&self) -> bool {
        self.failure.get().is_some()
    }

    /// Why the exchange failed, if it did.
    pub(crate) fn failure(&self) -> Option<&Failure> {
        self.failure.get()
    }

    /// A failed exchange whose head never reached the client has no status the client
    /// saw: it reads `499 Client Closed Request` (nginx's code for the same case), not
    /// the `200` it was being built with.
    pub(crate) fn note_unsent_status(&self) {
        let mut response = lock(&self.response);
        if !response.sent {
            response.status = client_closed_request();
        }
    }

    /// The client is known to be gone although the head was handed over: it saw no
    /// status either (see [`Exchange::note_unsent_status`]).
    pub(crate) fn note_client_gone(&self) {
        lock(&self.response).status = client_closed_request();
    }

    /// Records a failed header call of a handler as a misuse, answered with `500`
    /// when the response is sent.
    pub(crate) fn note_misuse(&self, result: Result<(), http::Error>, call: &str) {
        if let Err(error) = result {
            lock(&self.response).misuse = Some(format!("{call}: {error}"));
        }
    }

    /// Replaces the response with a short plain-text error page.
    pub(crate) fn answer_error(&self, status: StatusCode) {
        let mut response = lock(&self.response);
        *response = ResponseState::default();
        response.status = status;
        response.body = Body::full(error_page(status));
        response.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(ERROR_PAGE_TYPE),
        );
    }
}

/// `499 Client Closed Request`: not a status `http` names, nor one ever sent.
pub(crate) fn client_closed_request() -> StatusCode {
    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The media type of the error pages the server writes itself.
pub(crate) const ERROR_PAGE_TYPE: &str = "text/plain; charset=utf-8";

/// What the Send phase takes out of the response for the wire.
#[derive(Debug)]
pub(crate) struct HandedOver {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
    /// The channel `Response::send` feeds, if the response streams that way.
    pub(crate) pushed: Option<Arc<StreamChannel>>,
    /// A handler set a `Content-Length`.
    pub(crate) length_set: bool,
}

/// The body of the error pages the server writes itself, e.g. `403 Forbidden\n`.
pub(crate) fn error_page(status: StatusCode) -> Bytes {
    let reason = status.canonical_reason().unwrap_or("Error");
    Bytes::from(format!("{} {reason}\n", status.as_u16()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One exchange is allocated per request. glibc serves blocks up to 1032 bytes
    /// from its per-thread cache, and a larger one from the arena, which costs about
    /// twice as much; keep the `Arc<Exchange>` block (two counters more) under it.
    #[test]
    fn an_exchange_fits_the_allocators_fast_size_class() {
        let block = std::mem::size_of::<Exchange>() + 2 * std::mem::size_of::<usize>();
        assert!(block <= 1032, "an Arc<Exchange> takes {block} bytes");
    }
}
