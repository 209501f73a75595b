//! Time-stamp tokens (RFC 3161 / GB/T 20520).
