//! Hutong (互通): an electronic seal interoperability and mutual-recognition platform.
//!
//! Data flows one way: `api` → `gateway`/`domain` → `store`, with `crypto` and `keys`
//! underneath everything. The parsers (`ses`, `verify`) are pure functions from bytes to
//! typed values; they never touch storage or the network.

pub(crate) mod api;
pub mod app;
pub mod audit;
pub mod backup;
pub mod config;
pub(crate) mod console;
pub mod crypto;
pub mod domain;
pub(crate) mod gateway;
pub mod hardening;
pub mod interop;
pub mod keys;
pub mod protocol;
pub mod server;
pub mod ses;
pub mod store;
pub mod time;
pub mod verify;
