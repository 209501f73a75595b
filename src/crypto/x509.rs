//! X.509 certificates (SM2, RSA, ECDSA): parsing, signature checks, chain building.
