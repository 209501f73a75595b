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

/// The member callbacks (SPEC §4), under a member's callback base URL.
pub const CALLBACK_AUTH_APPLY: &str = "/cloud/auth/apply";
pub const CALLBACK_AUTH_RESULT: &str = "/cloud/auth/result";
pub const CALLBACK_SIGN: &str = "/cloud/sign";
/// Every callback, for what must cover them all (the simulator, the integration guide's test).
pub const CALLBACK_PATHS: [&str; 3] = [CALLBACK_AUTH_APPLY, CALLBACK_AUTH_RESULT, CALLBACK_SIGN];
