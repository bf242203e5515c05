//! [`Sessions`], the Pre handler that loads a request's [`Session`] and saves it in
//! the Send phase, and the [`Session`] handle later handlers use.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cookie::{Cookie, SameSite};
use http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::SessionId;
use super::lock;
use super::store::{Record, SessionStore, StoreError};
use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// When the `Secure` cookie attribute is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Secure {
    /// On connections using TLS (see [`ServerBuilder::tls`](crate::ServerBuilder::tls)).
    #[default]
    WhenTls,
    /// Always, e.g. behind a TLS-terminating load balancer.
    Always,
    /// Never.
    Never,
}

/// What a request needing a session gets when the store does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnStoreFailure {
    /// `503 Service Unavailable`.
    #[default]
    Unavailable,
    /// The request goes on without a session ([`Session::of`] returns `None`).
    ContinueWithout,
}

/// Why a value could not be put into a session; serde's error is the
/// [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[error("the value cannot be stored in a session")]
pub struct SessionError(#[from] serde_json::Error);

/// The session middleware: a Pre handler; see the [module docs](crate::session).
///
/// Clones share the store, so one `Sessions` can be registered at several paths
/// (say `/app` and `/app/`) and a session started under one is found under the other.
#[derive(Clone)]
pub struct Sessions {
    config: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    store: Arc<dyn SessionStore>,
    cookie_name: String,
    cookie_path: String,
    cookie_domain: Option<String>,
    same_site: SameSite,
    secure: Secure,
    idle_timeout: Duration,
    absolute_timeout: Duration,
    store_timeout: Duration,
    on_store_failure: OnStoreFailure,
}

impl Sessions {
    /// Sessions kept in `store`, with a `poco_session` cookie on `/`, `HttpOnly`,
    /// `SameSite=Lax`, 30 minutes idle and 12 hours absolute expiry, and 2 seconds for
    /// the store to answer before the client gets 503.
    pub fn new(store: impl SessionStore) -> Self {
        Self {
            config: Arc::new(Config {
                store: Arc::new(store),
                cookie_name: "poco_session".to_owned(),
                cookie_path: "/".to_owned(),
                cookie_domain: None,
                same_site: SameSite::Lax,
                secure: Secure::WhenTls,
                idle_timeout: Duration::from_secs(30 * 60),
                absolute_timeout: Duration::from_secs(12 * 60 * 60),
                store_timeout: Duration::from_secs(2),
                on_store_failure: OnStoreFailure::Unavailable,
            }),
        }
    }

    /// The settings to change: this handle's own, copied (store shared) if it was
    /// cloned, so configuring a clone never changes another.
    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The cookie's name. Default: `poco_session`.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.config_mut().cookie_name = name.into();
        self
    }

    /// The cookie's `Path`. Default: `/`.
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.config_mut().cookie_path = path.into();
        self
    }

    /// The cookie's `Domain`. Default: none (the host that set it).
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.config_mut().cookie_domain = Some(domain.into());
        self
    }

    /// The cookie's `SameSite`. Default: `Lax`.
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.config_mut().same_site = same_site;
        self
    }

    /// When the cookie is `Secure`. Default: [`Secure::WhenTls`].
    pub fn secure(mut self, secure: Secure) -> Self {
        self.config_mut().secure = secure;
        self
    }

    /// How long an unused session lives. Default: 30 minutes.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config_mut().idle_timeout = timeout;
        self
    }

    /// How long a session lives at most, used or not. Default: 12 hours.
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.config_mut().absolute_timeout = timeout;
        self
    }

    /// How long the store may take to answer. Default: 2 seconds.
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.config_mut().store_timeout = timeout;
        self
    }

    /// What happens when the store fails. Default: [`OnStoreFailure::Unavailable`].
    pub fn on_store_failure(mut self, policy: OnStoreFailure) -> Self {
        self.config_mut().on_store_failure = policy;
        self
    }
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("cookie_name", &self.config.cookie_name)
            .field("idle_timeout", &self.config.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Handler for Sessions {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let config = Arc::clone(&self.config);
        HandlerFuture::new(async move { config.load(&request, &response).await })
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Config {
    async fn within_timeout<T>(&self, work: super::StoreFuture<'_, T>) -> Result<T, StoreError> {
        match tokio::time::timeout(self.store_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(StoreError(format!(
                "no answer within {:?}",
                self.store_timeout
            ))),
        }
    }

    /// The Pre handler: find the session, or start a fresh one.
    async fn load(self: Arc<Self>, request: &Request, response: &Response) -> Outcome {
        let presented = request
            .cookie(&self.cookie_name)
            .and_then(|c| SessionId::parse(c.value()));
        let state = match presented {
            None => Ok(State::fresh()),
            Some(id) => self.resume(id).await,
        };
        let state = match state {
            Ok(state) => state,
            Err(error) => return self.store_failed(&error, response),
        };
        let session = Session(Arc::new(Mutex::new(state)));
        request.insert_extension(session.clone());
        let config = Arc::clone(&self);
        request.before_send(move |request: Request, response: Response| {
            let (config, session) = (Arc::clone(&config), session.clone());
            let on_tls = request.connection().tls().is_some();
            async move {
                config.save(&session, &response, on_tls).await;
                Outcome::Ok
            }
        });
        Outcome::Ok
    }

    /// Loads a presented id; unknown or expired ones get a fresh session.
    async fn resume(&self, id: SessionId) -> Result<State, StoreError> {
        let Some(record) = self.within_timeout(self.store.load(&id)).await? else {
            return Ok(State::fresh());
        };
        if record.created + self.absolute_timeout.as_secs() <= unix_now() {
            self.within_timeout(self.store.delete(&id)).await?;
            return Ok(State::fresh());
        }
        self.within_timeout(self.store.touch(&id, self.ttl(&record)))
            .await?;
        Ok(State {
            id: Some(id),
            record,
            changed: false,
            retired: None,
            destroyed: false,
        })
    }

    fn store_failed(&self, error: &StoreError, response: &Response) -> Outcome {
        tracing::error!(%error, "session store failed");
        match self.on_store_failure {
            OnStoreFailure::ContinueWithout => Outcome::Ok,
            OnStoreFailure::Unavailable => {
                response.set_status(StatusCode::SERVICE_UNAVAILABLE);
                response.set_content_type("text/plain; charset=utf-8");
                response.set_body("503 Service Unavailable: the session store is not answering\n");
                Outcome::Deny
            }
        }
    }

    /// Idle expiry, never past the absolute one.
    fn ttl(&self, record: &Record) -> Duration {
        let ends = record.created + self.absolute_timeout.as_secs();
        let left = Duration::from_secs(ends.saturating_sub(unix_now()));
        self.idle_timeout.min(left.max(Duration::from_secs(1)))
    }

    /// The Send-phase hook: write what changed and set the cookie.
    async fn save(&self, session: &Session, response: &Response, on_tls: bool) {
        let work = lock(&session.0).take_work();
        // The cookie is only added once the save succeeded, so a failed save never
        // lets the client believe its change was kept.
        if let Err(error) = self.apply(work, response, on_tls).await {
            let _ = self.store_failed(&error, response);
        }
    }

    async fn apply(&self, work: Work, response: &Response, on_tls: bool) -> Result<(), StoreError> {
        for old in &work.retired {
            self.within_timeout(self.store.delete(old)).await?;
        }
        match work.write {
            Write::Nothing => {}
            Write::Delete => response.add_cookie(self.removal_cookie()),
            Write::Save(id, record) => {
                self.within_timeout(self.store.save(&id, &record, self.ttl(&record)))
                    .await?;
                response.add_cookie(self.cookie(&id, on_tls));
            }
        }
        Ok(())
    }

    fn cookie(&self, id: &SessionId, on_tls: bool) -> Cookie<'static> {
        let secure = match self.secure {
            Secure::Always => true,
            Secure::WhenTls => on_tls,
            Secure::Never => false,
        };
        let mut cookie = Cookie::build((self.cookie_name.clone(), id.as_str().to_owned()))
            .path(self.cookie_path.clone())
            .http_only(true)
            .same_site(self.same_site)
            .secure(secure)
            .max_age(cookie::time::Duration::seconds(
                i64::try_from(self.absolute_timeout.as_secs()).unwrap_or(i64::MAX),
            ));
        if let Some(domain) = &self.cookie_domain {
            cookie = cookie.domain(domain.clone());
        }
        cookie.build()
    }

    fn removal_cookie(&self) -> Cookie<'static> {
        let mut cookie = Cookie::build((self.cookie_name.clone(), ""))
            .path(self.cookie_path.clone())
            .http_only(true)
            .same_site(self.same_site)
            .build();
        if let Some(domain) = &self.cookie_domain {
            cookie.set_domain(domain.clone());
        }
        cookie.make_removal();
        cookie
    }
}

/// One request's view of its session.
#[derive(Debug)]
struct State {
    /// `None` until the session is first saved.
    id: Option<SessionId>,
    record: Record,
    changed: bool,
    /// An id given up by `regenerate`, to delete from the store.
    retired: Option<SessionId>,
    destroyed: bool,
}

/// What the Send phase must write.
struct Work {
    /// Ids to delete from the store: given up by `regenerate` or `destroy`.
    retired: Vec<SessionId>,
    write: Write,
}

enum Write {
    Nothing,
    Delete,
    Save(SessionId, Record),
}

impl State {
    fn fresh() -> Self {
        let record = Record {
            created: unix_now(),
            ..Record::default()
        };
        Self {
            id: None,
            record,
            changed: false,
            retired: None,
            destroyed: false,
        }
    }

    fn take_work(&mut self) -> Work {
        let mut retired: Vec<SessionId> = self.retired.take().into_iter().collect();
        let write = if self.destroyed {
            retired.extend(self.id.take());
            Write::Delete
        } else if self.changed && (self.id.is_some() || !self.record.data.is_empty()) {
            match self.id.clone().map_or_else(SessionId::generate, Ok) {
                Ok(id) => {
                    self.id = Some(id.clone());
                    Write::Save(id, self.record.clone())
                }
                Err(error) => {
                    tracing::error!(%error, "no randomness for a session id; session not saved");
                    Write::Nothing
                }
            }
        } else {
            Write::Nothing
        };
        self.changed = false;
        Work { retired, write }
    }
}

/// A request's session, shared by all its handlers. Get it with [`Session::of`].
#[derive(Debug, Clone)]
pub struct Session(Arc<Mutex<State>>);

impl Session {
    /// The session of `request`, if a [`Sessions`] Pre handler ran for its path.
    pub fn of(request: &Request) -> Option<Session> {
        request.extension::<Session>()
    }

    /// The session id, once the session has been saved (not for a fresh session).
    pub fn id(&self) -> Option<String> {
        lock(&self.0).id.as_ref().map(|id| id.as_str().to_owned())
    }

    /// Reports whether this request started the session.
    pub fn is_new(&self) -> bool {
        lock(&self.0).id.is_none()
    }

    /// The value under `key`, if present and of type `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let value = lock(&self.0).record.data.get(key).cloned()?;
        serde_json::from_value(value).ok()
    }

    /// Stores `value` under `key`.
    ///
    /// # Errors
    /// When `value` cannot be serialized (e.g. a map with non-string keys).
    pub fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), SessionError> {
        let value = serde_json::to_value(value)?;
        let mut state = lock(&self.0);
        if state.record.data.get(key) != Some(&value) {
            state.record.data.insert(key.to_owned(), value);
            state.changed = true;
        }
        Ok(())
    }

    /// Removes the value under `key`.
    pub fn remove(&self, key: &str) {
        let mut state = lock(&self.0);
        if state.record.data.remove(key).is_some() {
            state.changed = true;
        }
    }

    /// Gives the session a new id, keeping its values: call it on login, so an id an
    /// attacker planted before (session fixation) is worthless afterwards.
    pub fn regenerate(&self) {
        let mut state = lock(&self.0);
        if let Some(old) = state.id.take() {
            state.retired = Some(old);
        }
        state.changed = true;
    }

    /// Ends the session: its values are dropped from the store and the cookie is
    /// cleared. Call it on logout.
    pub fn destroy(&self) {
        let mut state = lock(&self.0);
        state.record.data.clear();
        state.destroyed = true;
    }
}
