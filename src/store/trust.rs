//! Trust anchors for document verification: CA certificates (DER) keyed by their SM3.

use super::engine::Direction;
use super::{Expect, Store, StoreError, keyspace as ks};
use crate::audit::entry::Draft;

impl Store {
    /// Adds a DER certificate with the entry of the act; returns its id (hex SM3). Adding the
    /// same one again changes nothing but is recorded again.
    pub fn add_trust_anchor(&self, der: &[u8], entry: &Draft) -> Result<String, StoreError> {
        let id = crate::crypto::sm::sm3_hex(der);
        let key = id.as_bytes();
        self.write_record(ks::TRUST_ANCHORS, key, Expect::Anything, Some(der), entry)?;
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

    /// Removes an anchor with the entry of the act; `false` (and nothing recorded) when it
    /// did not exist.
    pub fn remove_trust_anchor(&self, id: &str, entry: &Draft) -> Result<bool, StoreError> {
        let key = id.as_bytes();
        let Some(current) = self.trust_anchors.get(key)? else {
            return Ok(false);
        };
        match self.write_record(
            ks::TRUST_ANCHORS,
            key,
            Expect::Exactly(&current),
            None,
            entry,
        ) {
            Ok(_) => Ok(true),
            // Removed meanwhile by someone else.
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
