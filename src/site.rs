//! [`Site`]: what the handler configuration determines — the directory map, the Trans
//! list, default headers and per-request limits — and [`SiteCache`], one connection's
//! view of the current one, which `ReloadHandle` (`reload.rs`) swaps while the server
//! runs.
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
use crate::shared::Shared;

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
