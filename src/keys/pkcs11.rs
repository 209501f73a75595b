//! The `pkcs11` key provider: a non-extractable AES-256 KEK in an HSM (cryptoki).
