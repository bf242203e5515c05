//! Built-in handlers, each a type configured in code the same way the ready-made
//! server's config file configures it.
//!
//! - [`TowerService`]: any `tower::Service` (an axum `Router`, a tower-http service)
//!   as the Content handler of a directory.
//! - [`Redirect`]: a Content handler answering with a redirect.

mod redirect;
mod tower;

pub use self::redirect::Redirect;
pub use self::tower::{RequestBody, TowerService};
