//! [`Site`]: what the handler configuration determines — the directory map, the Trans
//! list, default headers and per-request limits — and [`ReloadHandle`], which swaps
//! in a new one while the server runs.
//!
//! Each request takes the current site when it starts and keeps it to the end, so a
//! reload never changes the handlers of a request in flight and drops no connection.

use std::sync::Arc;

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

/// Replaces a running server's handlers and settings — for example on SIGHUP —
/// without dropping a connection. Requests in flight finish with the handlers they
/// started with. The listen address, the shutdown deadline and HTTP protocol
/// settings are not reloadable.
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
