//! Trust anchors for document verification: CA certificates (DER) keyed by their SM3.

use super::engine::Direction;
use super::{Store, StoreError};

impl Store {
    /// Adds a DER certificate; returns its id (hex SM3). Adding the same one again is a no-op.
    pub fn add_trust_anchor(&self, der: &[u8]) -> Result<String, StoreError> {
        let id = crate::crypto::sm::sm3_hex(der);
        self.trust_anchors.insert(id.as_bytes(), der)?;
        Ok(id)
    }

    pub fn trust_anchors(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.trust_anchors
            .iter(Direction::Forward)
            .map(|r| {
                let (k, v) = r?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v))
            })
            .collect()
    }

    /// Removes an anchor; returns whether it existed.
    pub fn remove_trust_anchor(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.trust_anchors.remove(id.as_bytes())?.is_some())
    }
}
