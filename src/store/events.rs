//! System events and administrative actions, in time order. The audit issue turns this into
//! the hash-linked log; until then it is the record of who changed what.

use super::engine::Direction;
use super::{Store, StoreError, decode, encode};
use crate::time::now_ms;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub result: String,
    pub detail: String,
}

impl Store {
    pub fn record_event(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        result: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let ev = Event {
            at_ms: now_ms(),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            result: result.into(),
            detail: detail.into(),
        };
        // Key: time then a monotonic id, so iteration is chronological and keys never collide.
        let mut key = ev.at_ms.to_be_bytes().to_vec();
        key.extend_from_slice(&self.generate_id()?.to_be_bytes());
        self.events.insert(&key, &encode(&ev)?)?;
        Ok(())
    }

    /// The most recent `limit` events, newest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.events
            .iter(Direction::Reverse)
            .take(limit)
            .map(|r| decode(&r?.1))
            .collect()
    }
}
