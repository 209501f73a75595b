//! Seen `(appId, nonce)` pairs, so a replay inside the time window is refused even after a
//! restart.

use super::engine::Direction;
use super::{Store, StoreError};

fn key(app_id: &str, nonce: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(app_id.len() + 5);
    k.extend_from_slice(app_id.as_bytes());
    k.push(0);
    k.extend_from_slice(&nonce.to_be_bytes());
    k
}

impl Store {
    /// Records the nonce; returns `false` if it was already seen after `stale_before_ms`.
    pub fn claim_nonce(
        &self,
        app_id: &str,
        nonce: u32,
        now_ms: i64,
        stale_before_ms: i64,
    ) -> Result<bool, StoreError> {
        let k = key(app_id, nonce);
        let stamp = now_ms.to_be_bytes();
        let mut current = self.nonces.get(&k)?;
        loop {
            if let Some(seen) = &current {
                let seen_ms = seen
                    .as_slice()
                    .try_into()
                    .map(i64::from_be_bytes)
                    .unwrap_or(i64::MAX);
                if seen_ms >= stale_before_ms {
                    return Ok(false);
                }
            }
            match self
                .nonces
                .compare_and_swap(&k, current.as_deref(), Some(&stamp[..]))?
            {
                Ok(()) => return Ok(true),
                Err(found) => current = found,
            }
        }
    }

    /// Removes entries seen before `stale_before_ms`; returns how many were removed.
    pub fn prune_nonces(&self, stale_before_ms: i64) -> Result<usize, StoreError> {
        let mut removed = 0;
        for item in self.nonces.iter(Direction::Forward) {
            let (k, v) = item?;
            let seen = v.as_slice().try_into().map(i64::from_be_bytes).unwrap_or(0);
            if seen < stale_before_ms {
                // Only if unchanged: a fresh claim of the same pair meanwhile stays.
                self.nonces.compare_and_swap(&k, Some(&v), None)?.ok();
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_claimed_once_inside_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert!(s.claim_nonce("A", 7, 1_000, 0).unwrap());
        assert!(!s.claim_nonce("A", 7, 2_000, 0).unwrap());
        assert!(s.claim_nonce("B", 7, 2_000, 0).unwrap());
        // Seen before the stale mark: the window has passed, the pair may be used again.
        assert!(s.claim_nonce("A", 7, 10_000, 5_000).unwrap());
        assert_eq!(s.prune_nonces(20_000).unwrap(), 2);
    }
}
