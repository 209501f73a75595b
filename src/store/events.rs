//! Audit events, in time order. The domain records them (`domain::audit`); the audit issue
//! turns this into the hash-linked log; until then it is the record of who changed what.

use super::engine::Direction;
use super::{Store, StoreError, decode, encode};
use crate::domain::audit_event::AuditEvent;

impl Store {
    pub fn record_event(&self, ev: &AuditEvent) -> Result<(), StoreError> {
        // Key: time then a monotonic id, so iteration is chronological and keys never collide.
        let mut key = ev.at_ms.to_be_bytes().to_vec();
        key.extend_from_slice(&self.generate_id()?.to_be_bytes());
        self.events.insert(&key, &encode(ev)?)?;
        Ok(())
    }

    /// The most recent `limit` events, newest first. Records written before events were typed
    /// do not decode; they are skipped (and logged) rather than hiding every later event.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut skipped = 0usize;
        for r in self.events.iter(Direction::Reverse) {
            if out.len() == limit {
                break;
            }
            match decode::<AuditEvent>(&r?.1) {
                Ok(ev) => out.push(ev),
                Err(_) => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(skipped, "audit events in the untyped format were not shown");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit_event::{Action, Actor, Detail, Outcome};

    fn event(at_ms: i64, action: Action) -> AuditEvent {
        AuditEvent {
            at_ms,
            action,
            actor: Actor::cli(),
            target: "HT1".into(),
            outcome: Outcome::Ok,
            detail: Detail::new(""),
        }
    }

    #[test]
    fn recent_events_are_newest_first_and_skip_the_untyped_format() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.record_event(&event(1, Action::SystemAdd)).unwrap();
        // A record as written before events were typed.
        let legacy = br#"{"atMs":2,"actor":"cli","action":"quota.set","target":"HT1","result":"ok","detail":""}"#;
        store
            .events
            .insert(&2i64.to_be_bytes(), &legacy[..])
            .unwrap();
        store.record_event(&event(3, Action::QuotaSet)).unwrap();
        let got: Vec<_> = store
            .recent_events(10)
            .unwrap()
            .into_iter()
            .map(|e| (e.at_ms, e.action))
            .collect();
        assert_eq!(got, [(3, Action::QuotaSet), (1, Action::SystemAdd)]);
        assert_eq!(store.recent_events(1).unwrap().len(), 1);
    }
}
