//! The console's view of audit events: the newest entries of the audit log that record domain
//! acts, then the untyped `events` list written before the log existed (kept readable, not
//! migrated: its records were never hash-linked). Writing goes through the log only
//! (`domain::audit` → [`Store::append_audit`]).

use super::engine::Direction;
use super::{Store, StoreError, decode};
use crate::audit::{entry, event_of};
use crate::domain::audit_event::AuditEvent;

impl Store {
    /// The most recent `limit` domain events, newest first: the log's, then the legacy list's.
    /// Records that do not decode are skipped (and logged) rather than hiding later events.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut skipped = 0usize;
        // Bounded: API calls between domain acts are skipped, but never more than this.
        for r in self
            .audit_leaves
            .iter(Direction::Reverse)
            .take(super::audit_log::MAX_EXAMINED.max(limit))
        {
            if out.len() == limit {
                return Ok(out);
            }
            let (_, leaf) = r?;
            match entry::parse(&leaf) {
                Some(e) => {
                    if let Some(ev) = event_of(&e) {
                        out.push(ev);
                    }
                }
                None => skipped += 1,
            }
        }
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
            tracing::warn!(skipped, "audit records that do not decode were not shown");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::draft_of;
    use crate::domain::audit_event::{Action, Actor, Detail, Outcome};
    use crate::store::encode;

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
    fn recent_events_come_from_the_log_then_the_legacy_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Legacy records: one typed, one in the untyped format before events were typed.
        store
            .events
            .insert(
                &1i64.to_be_bytes(),
                &encode(&event(1, Action::SystemAdd)).unwrap(),
            )
            .unwrap();
        let untyped = br#"{"atMs":2,"actor":"cli","action":"quota.set","target":"HT1","result":"ok","detail":""}"#;
        store
            .events
            .insert(&2i64.to_be_bytes(), &untyped[..])
            .unwrap();
        store
            .append_audit(&draft_of(&event(3, Action::QuotaSet)))
            .unwrap();
        store
            .append_audit(&draft_of(&event(4, Action::QuotaClear)))
            .unwrap();
        let got: Vec<_> = store
            .recent_events(10)
            .unwrap()
            .into_iter()
            .map(|e| (e.at_ms, e.action))
            .collect();
        assert_eq!(
            got,
            [
                (4, Action::QuotaClear),
                (3, Action::QuotaSet),
                (1, Action::SystemAdd)
            ]
        );
        assert_eq!(store.recent_events(1).unwrap().len(), 1);
    }
}
