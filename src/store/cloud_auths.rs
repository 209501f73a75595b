//! Platform `authId`s of cross-system cloud signing (SPEC §3.4–3.6): each bound to the
//! requester, the seal and the home system's own authId, expiring with the signId lifetime.

use super::engine::Direction;
use super::{Store, StoreError, decode, encode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudAuthRecord {
    pub requester: String,
    pub seal_code: String,
    pub home_app_id: String,
    pub home_auth_id: String,
    /// The home system's credential once the intention is confirmed.
    pub auth_code: Option<String>,
    pub expires_ms: i64,
}

impl Store {
    pub fn get_cloud_auth(&self, auth_id: &str) -> Result<Option<CloudAuthRecord>, StoreError> {
        self.cloud_auths
            .get(auth_id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    pub fn put_cloud_auth(&self, auth_id: &str, rec: &CloudAuthRecord) -> Result<(), StoreError> {
        self.cloud_auths.insert(auth_id.as_bytes(), &encode(rec)?)?;
        Ok(())
    }

    /// Removes expired (and unreadable) records; returns how many.
    pub fn prune_cloud_auths(&self, now_ms: i64) -> Result<usize, StoreError> {
        let mut removed = 0;
        for item in self.cloud_auths.iter(Direction::Forward) {
            let (k, v) = item?;
            let expired = decode::<CloudAuthRecord>(&v)
                .map(|r| r.expires_ms < now_ms)
                .unwrap_or(true);
            if expired {
                self.cloud_auths.remove(&k)?;
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
    fn expired_auth_records_are_pruned_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = |expires_ms| CloudAuthRecord {
            requester: "A".into(),
            seal_code: "S".into(),
            home_app_id: "B".into(),
            home_auth_id: "b-1".into(),
            auth_code: None,
            expires_ms,
        };
        store.put_cloud_auth("old", &rec(1_000)).unwrap();
        store.put_cloud_auth("live", &rec(3_000)).unwrap();
        store.cloud_auths.insert(b"junk", b"not json").unwrap();
        assert_eq!(store.prune_cloud_auths(2_000).unwrap(), 2);
        assert_eq!(store.get_cloud_auth("live").unwrap(), Some(rec(3_000)));
        assert_eq!(store.get_cloud_auth("old").unwrap(), None);
    }
}
