//! The tamper-evident audit log (SPEC §6.1): the entry format and its RFC 8785 leaf bytes
//! ([`entry`], [`jcs`]), the SM3 Merkle tree ([`merkle`]), and the mapping from the domain's
//! typed events to entries. The store keeps the leaves, the frontier and the checkpoints
//! (`store::audit_log`); recording stays in `domain::audit`. This module decides no act's
//! audit and reaches the store only through its typed audit functions.

pub mod checkpoint;
pub mod entry;
pub mod export;
pub mod jcs;
pub mod merkle;
pub mod prune;

use crate::domain::audit_event::{
    Action, Actor as EvActor, ActorKind, AuditEvent, Detail, Outcome,
};
use entry::{Actor, Draft, Entry, Kind, Result as R};

/// The entry of a domain event: its kind follows the actor (console for administrators,
/// portal for vendors, cli, system); `Failed` is `error`; a login refused because the account
/// is locked is `denied` with the reason in the detail. API fields are null.
pub fn draft_of(ev: &AuditEvent) -> Draft {
    let (kind, actor_type) = match ev.actor.kind {
        ActorKind::Admin => (Kind::Console, "admin"),
        ActorKind::Vendor => (Kind::Portal, "vendor"),
        ActorKind::Cli => (Kind::Cli, "platform"),
        ActorKind::System => (Kind::System, "platform"),
    };
    let kind = if ev.action.is_key_operation() {
        Kind::Key
    } else {
        kind
    };
    let (result, detail) = match ev.outcome {
        Outcome::Ok => (R::Ok, ev.detail.as_str().to_string()),
        Outcome::Denied => (R::Denied, ev.detail.as_str().to_string()),
        Outcome::Failed => (R::Error, ev.detail.as_str().to_string()),
        Outcome::Locked if ev.detail.as_str().is_empty() => (R::Denied, LOCKED.to_string()),
        Outcome::Locked => (R::Denied, format!("{LOCKED}; {}", ev.detail.as_str())),
    };
    Draft {
        at_ms: ev.at_ms,
        kind,
        action: ev.action.as_str().to_string(),
        actor: Actor {
            kind: actor_type.into(),
            id: ev.actor.id.clone(),
            role: ev.actor.role.map(|r| r.as_str().to_string()),
        },
        target: ev.target.clone(),
        result,
        code: None,
        request_id: None,
        client: None,
        latency_ms: None,
        params_digest: None,
        detail,
    }
}

const LOCKED: &str = "账户已锁定";

/// The domain event an entry records, for the console's lists; `None` for entries that are
/// not domain acts (API calls, system events), whose actions the domain does not name.
pub fn event_of(e: &Entry) -> Option<AuditEvent> {
    let action: Action =
        serde_json::from_value(serde_json::Value::String(e.action.clone())).ok()?;
    let kind = match (e.kind, e.actor.kind.as_str()) {
        (Kind::Console, "admin") => ActorKind::Admin,
        (Kind::Portal, "vendor") => ActorKind::Vendor,
        (Kind::Cli, _) => ActorKind::Cli,
        (Kind::Key, _) if e.actor.id == "cli" => ActorKind::Cli,
        (Kind::System | Kind::Key, _) => ActorKind::System,
        _ => return None,
    };
    let role = match &e.actor.role {
        Some(r) => Some(serde_json::from_value(serde_json::Value::String(r.clone())).ok()?),
        None => None,
    };
    let outcome = match e.result {
        R::Ok => Outcome::Ok,
        R::Denied if e.detail.starts_with(LOCKED) => Outcome::Locked,
        R::Denied => Outcome::Denied,
        R::Error => Outcome::Failed,
    };
    let detail = match outcome {
        Outcome::Locked => e
            .detail
            .strip_prefix(LOCKED)
            .map(|d| d.trim_start_matches("; "))
            .unwrap_or_default()
            .to_string(),
        _ => e.detail.clone(),
    };
    Some(AuditEvent {
        at_ms: e.at,
        action,
        actor: EvActor {
            kind,
            id: e.actor.id.clone(),
            role,
        },
        target: e.target.clone(),
        outcome,
        detail: Detail::new(detail),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::vocab::Role;

    #[test]
    fn domain_events_round_trip_through_their_leaves() {
        for (actor, outcome, detail) in [
            (EvActor::account("op1", Role::Operator), Outcome::Ok, "x"),
            (EvActor::account("v1", Role::Vendor), Outcome::Denied, ""),
            (EvActor::cli(), Outcome::Failed, "规则"),
            (EvActor::system(), Outcome::Locked, ""),
            (
                EvActor::account("op2", Role::Auditor),
                Outcome::Locked,
                "再次",
            ),
        ] {
            let ev = AuditEvent {
                at_ms: 9,
                action: Action::ConsoleLogin,
                actor,
                target: "t".into(),
                outcome,
                detail: Detail::new(detail),
            };
            let leaf = draft_of(&ev).leaf(3);
            let back = event_of(&entry::parse(&leaf).unwrap()).unwrap();
            assert_eq!(back, ev);
        }
    }
}
