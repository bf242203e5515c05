//! [`Site`]: what the handler configuration determines — the directory map, the Trans
//! list, default headers and per-request limits — and [`ReloadHandle`], which swaps
//! in a new one while the server runs.
//!
//! Each request takes the current site when it starts and keeps it to the end, so a
//! reload never changes the handlers of a request in flight and drops no connection.

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::Arc;

use arc_swap::ArcSwap;
use arc_swap::cache::Cache;
use http::HeaderMap;
use http::header::Entry;

use crate::connection::Connection;
use crate::handler::SharedHandler;
use crate::map::DirectoryMap;
use crate::server::Shared;
use crate::{Error, ServerBuilder};

/// The handlers and settings one configuration of a server describes.
#[derive(Debug)]
pub(crate) struct Site {
    pub(crate) map: DirectoryMap,
    pub(crate) trans: Vec<SharedHandler>,
    /// The global Stream handler.
    pub(crate) stream: Option<SharedHandler>,
    /// One value per name (the builder only inserts).
    pub(crate) default_headers: HeaderMap,
    pub(crate) hostname: Option<String>,
    pub(crate) max_body_size: usize,
    pub(crate) stream_buffer: usize,
}

impl Site {
    /// Adds each default header the handlers did not set themselves.
    pub(crate) fn add_default_headers(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.default_headers {
            if let Entry::Vacant(vacant) = headers.entry(name) {
                vacant.insert(value.clone());
            }
        }
    }

    /// The configured host name, else the local address of `connection`.
    pub(crate) fn hostname(&self, connection: &Connection) -> String {
        match &self.hostname {
            Some(hostname) => hostname.clone(),
            None => connection.local_addr().to_string(),
        }
    }
}

/// One connection's view of the server's current site. Noticing a reload costs one
/// atomic load per request, where a full load of the `ArcSwap` takes a debt slot, a
/// count increment and the debt's payback. The site a connection last used stays
/// alive until its next request sees the new one, or it closes.
#[derive(Debug, Clone)]
pub(crate) struct SiteCache(RefCell<Cache<CurrentSite, Arc<Site>>>);

/// What [`SiteCache`] watches: the server's swappable site.
#[derive(Debug, Clone)]
struct CurrentSite(Arc<Shared>);

impl Deref for CurrentSite {
    type Target = ArcSwap<Site>;

    fn deref(&self) -> &ArcSwap<Site> {
        &self.0.site
    }
}

impl SiteCache {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self(RefCell::new(Cache::new(CurrentSite(shared))))
    }

    /// The site a request starting now runs with.
    pub(crate) fn current(&self) -> Arc<Site> {
        Arc::clone(self.0.borrow_mut().load())
    }
}

/// Replaces a running server's handlers and settings — for example on SIGHUP —
/// without dropping a connection. Requests in flight finish with the handlers they
/// started with; an idle keep-alive connection lets go of the old handlers (and what
/// they hold, such as an open log file) at its next request or when it closes. The
/// listen address, the shutdown deadline and HTTP protocol settings are not
/// reloadable.
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ReloadHandle {
    /// Builds the handlers of `builder` and, if they are valid, makes them the
    /// server's; otherwise the server keeps its current ones.
    ///
    /// # Errors
    /// As [`ServerBuilder::build`].
    pub fn reload(&self, builder: ServerBuilder) -> Result<(), Error> {
        let site = builder.into_parts()?.site;
        self.shared.site.store(Arc::new(site));
        tracing::info!("handlers reloaded");
        Ok(())
    }
}
