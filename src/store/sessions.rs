//! Console sessions (keyspace `console_sessions`): the SM3 digest of the cookie value →
//! [`SessionRecord`]. Keyed by the digest so a copy of the database hands out no usable
//! cookie. The idle and age limits are the console's policy, not this module's.

use super::engine::Direction;
use super::{Store, StoreError, decode, encode};
use crate::crypto::sm;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    pub username: String,
    /// The session's own CSRF token.
    pub csrf: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    /// Set while only the password is proven: a pending login, never a session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingLogin>,
}

/// The state of the second step of a login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingLogin {
    /// Second-step attempts made so far.
    pub attempts: u32,
    /// The random text an SM2 certificate holder signs.
    pub challenge: String,
}

fn key(token: &str) -> [u8; 32] {
    sm::sm3(token.as_bytes())
}

impl Store {
    pub fn get_session(&self, token: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.sessions
            .get(&key(token))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Stores (or renews) the session of the cookie value `token`.
    pub fn put_session(&self, token: &str, rec: &SessionRecord) -> Result<(), StoreError> {
        self.sessions.insert(&key(token), &encode(rec)?)?;
        Ok(())
    }

    pub fn remove_session(&self, token: &str) -> Result<(), StoreError> {
        self.sessions.remove(&key(token))?;
        Ok(())
    }

    /// Removes every session that `keep` refuses, and every unreadable one; returns how many.
    pub fn retain_sessions(
        &self,
        keep: impl Fn(&SessionRecord) -> bool,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for item in self.sessions.iter(Direction::Forward) {
            let (k, v) = item?;
            if !decode::<SessionRecord>(&v).is_ok_and(|r| keep(&r)) {
                self.sessions.remove(&k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(username: &str, last_seen_ms: i64) -> SessionRecord {
        SessionRecord {
            username: username.into(),
            csrf: "c".into(),
            created_ms: 0,
            last_seen_ms,
            pending: None,
        }
    }

    #[test]
    fn sessions_are_found_by_token_and_stored_under_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.put_session("tok-a", &rec("op1", 10)).unwrap();
        s.put_session("tok-b", &rec("op2", 20)).unwrap();
        assert_eq!(s.get_session("tok-a").unwrap(), Some(rec("op1", 10)));
        assert_eq!(s.get_session("tok-c").unwrap(), None);
        // The cookie value itself is nowhere in the database.
        s.snapshot(|_, k, v| {
            assert!(!k.windows(5).any(|w| w == b"tok-a"));
            assert!(!v.windows(5).any(|w| w == b"tok-a"));
            Ok(())
        })
        .unwrap();
        s.sessions.insert(b"junk", b"not json").unwrap();
        assert_eq!(s.retain_sessions(|r| r.username != "op1").unwrap(), 2);
        assert_eq!(s.get_session("tok-a").unwrap(), None);
        assert_eq!(s.get_session("tok-b").unwrap(), Some(rec("op2", 20)));
        s.remove_session("tok-b").unwrap();
        assert_eq!(s.get_session("tok-b").unwrap(), None);
    }
}
