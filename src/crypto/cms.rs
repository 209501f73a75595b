//! CMS SignedData (RFC 5652; GB/T 35275 OIDs for SM2) verification.
