//! Recording audit events: the only writer of `AuditEvent`s. Each domain function that
//! performs an act records it here, once, whichever surface called it; acts that exist only
//! on a surface (login, logout, a refused page, a form refused before any rule ran) are
//! recorded by that surface through [`record`] and [`note`], never by writing the store.

use super::DomainError;
use super::audit_event::{Action, Actor, AuditEvent, Detail, Outcome};
use crate::store::Store;
use crate::time::now_ms;

/// Records one event now; an act whose event cannot be written fails.
pub fn record(
    store: &Store,
    actor: &Actor,
    action: Action,
    outcome: Outcome,
    target: &str,
    detail: impl Into<String>,
) -> Result<(), DomainError> {
    store.record_event(&AuditEvent {
        at_ms: now_ms(),
        action,
        actor: actor.clone(),
        target: target.to_string(),
        outcome,
        detail: Detail::new(detail),
    })?;
    Ok(())
}

/// Records a refusal or failure that leaves nothing changed; a fault writing it is logged,
/// because the caller is already answering with the refusal.
pub fn note(
    store: &Store,
    actor: &Actor,
    action: Action,
    outcome: Outcome,
    target: &str,
    detail: impl Into<String>,
) {
    if let Err(e) = record(store, actor, action, outcome, target, detail) {
        tracing::error!(error = %e, action = action.as_str(), "audit event not recorded");
    }
}

/// What a failed act's event says: the rule's message, never a storage fault's text.
fn failure_detail(e: &DomainError) -> String {
    match e {
        DomainError::Store(_) => "内部错误".into(),
        other => other.to_string(),
    }
}

/// Records the outcome of an act: on success `ok(&value)` gives the target and detail; on
/// failure the event names `target` and the rule's message.
pub(crate) fn audited<T>(
    store: &Store,
    actor: &Actor,
    action: Action,
    target: &str,
    res: Result<T, DomainError>,
    ok: impl FnOnce(&T) -> (String, String),
) -> Result<T, DomainError> {
    match res {
        Ok(v) => {
            let (target, detail) = ok(&v);
            record(store, actor, action, Outcome::Ok, &target, detail)?;
            Ok(v)
        }
        Err(e) => {
            note(
                store,
                actor,
                action,
                Outcome::Failed,
                target,
                failure_detail(&e),
            );
            Err(e)
        }
    }
}
