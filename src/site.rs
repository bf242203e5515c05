//! [`Site`]: what the handler configuration determines — the directory map, the Trans
//! list, default headers and per-request limits — [`Sites`], a server's default site
//! with its virtual hosts (chosen by the request's host name) and the site of its
//! HTTP→HTTPS redirecting listeners, and [`SiteCache`], one connection's view of the
//! current `Sites`, which `ReloadHandle` (`reload.rs`) swaps while the server runs.
//!
//! Each request takes its site when it starts and keeps it to the end, so a reload
//! never changes the handlers of a request in flight and drops no connection.

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::Arc;

use arc_swap::ArcSwap;
use arc_swap::cache::Cache;
use http::HeaderMap;
use http::header::Entry;

use crate::connection::Connection;
use crate::handler::SharedHandler;
use crate::host_pattern::{HostTable, host_name};
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

/// Every site of one configuration: the default one, the virtual hosts, and what the
/// redirecting listeners answer with.
#[derive(Debug)]
pub(crate) struct Sites {
    /// For requests whose host name no virtual host covers (or that name none).
    pub(crate) default: Arc<Site>,
    /// The virtual hosts by host name.
    pub(crate) by_host: HostTable<Arc<Site>>,
    /// The site of listeners that redirect every request to HTTPS, if any.
    pub(crate) https_redirect: Option<Arc<Site>>,
}

impl Sites {
    /// The site a request for `authority` (a `Host` value or a URI's authority)
    /// runs with. A server without virtual hosts does not look at the name.
    pub(crate) fn for_host(&self, authority: Option<&str>) -> &Arc<Site> {
        if self.by_host.is_empty() {
            return &self.default;
        }
        authority
            .and_then(|authority| self.by_host.find(host_name(authority)))
            .unwrap_or(&self.default)
    }
}

/// The site a request runs with: the listener's redirect, else by host name.
pub(crate) fn site_for<B>(sites: &Sites, redirects: bool, request: &http::Request<B>) -> Arc<Site> {
    if redirects && let Some(redirect) = &sites.https_redirect {
        return Arc::clone(redirect);
    }
    if sites.by_host.is_empty() {
        return Arc::clone(&sites.default);
    }
    let authority = match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request
            .headers()
            .get(http::header::HOST)
            .and_then(|host| host.to_str().ok()),
    };
    Arc::clone(sites.for_host(authority))
}

/// One connection's view of the server's current sites. Noticing a reload costs one
/// atomic load per request, where a full load of the `ArcSwap` takes a debt slot, a
/// count increment and the debt's payback. The site a connection last used stays
/// alive until its next request sees the new one, or it closes.
#[derive(Debug, Clone)]
pub(crate) struct SiteCache(RefCell<Cache<CurrentSite, Arc<Sites>>>);

/// What [`SiteCache`] watches: the server's swappable site.
#[derive(Debug, Clone)]
struct CurrentSite(Arc<Shared>);

impl Deref for CurrentSite {
    type Target = ArcSwap<Sites>;

    fn deref(&self) -> &ArcSwap<Sites> {
        &self.0.site
    }
}

impl SiteCache {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self(RefCell::new(Cache::new(CurrentSite(shared))))
    }

    /// The site `request`, starting now, runs with: chosen by its host name, or the
    /// HTTPS redirect on a listener that `redirects`.
    pub(crate) fn current<B>(&self, redirects: bool, request: &http::Request<B>) -> Arc<Site> {
        site_for(self.0.borrow_mut().load(), redirects, request)
    }
}
