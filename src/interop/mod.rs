//! Cross-system signing (SPEC §4): the outbound client that calls a member's callbacks with the
//! platform's signature, its per-member circuit breaker and TLS trust, the typed causes of
//! failed callbacks, the callback check, and the member simulator used by integrators and by
//! the project's own tests.
//!
//! Transport only: it never handles the platform API's requests and holds no signing rules;
//! `domain::cloud` decides what to route and verifies what comes back.

pub mod cause;
pub mod check;
pub mod client;
pub mod simulator;
pub mod tls;

pub use cause::{Cause, CertCause};
pub use client::{InteropError, MemberClient};
