//! The phase model end to end, one module a topic: directory stacking and the
//! phases' own powers (`pre`, `post`, `trans`), what a path maps to (`mapping`),
//! `Deny` in every phase (`deny`), the original module's scenarios (`original`), the
//! Send phase's headers (`send`), request facts and bodies (`request`, `body`),
//! HTTP/2 (`http2`), build errors (`build`) and header injection (`injection`).

#[path = "../common/mod.rs"]
mod common;

mod body;
mod build;
mod deny;
mod http2;
mod injection;
mod mapping;
mod original;
mod post;
mod pre;
mod request;
mod send;
mod trans;
