//! Audit events, in time order. The domain records them (`domain::audit`); the audit issue
//! turns this into the hash-linked log; until then it is the record of who changed what.

use super::{Store, StoreError, decode, encode};
use crate::domain::audit_event::AuditEvent;

impl Store {
    pub fn record_event(&self, ev: &AuditEvent) -> Result<(), StoreError> {
        // Key: time then a monotonic id, so iteration is chronological and keys never collide.
        let mut key = ev.at_ms.to_be_bytes().to_vec();
        key.extend_from_slice(&self.db().generate_id()?.to_be_bytes());
        self.events.insert(key, encode(ev)?)?;
        Ok(())
    }

    /// The most recent `limit` events, newest first. Records written before events were typed
    /// do not decode; they are skipped (and logged) rather than hiding every later event.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        for r in self.events.iter().rev() {
            if out.len() == limit {
                break;
            }
            match decode::<AuditEvent>(&r?.1) {
                Ok(ev) => out.push(ev),
                Err(e) => tracing::warn!(error = %e, "untyped audit event skipped"),
            }
        }
        Ok(out)
    }
}
