//! Recording audit events: the only writer of `AuditEvent`s. Each domain function that
//! performs an act records it here, once, whichever surface called it; acts that exist only
//! on a surface (login, logout, a refused page, a form refused before any rule ran) are
//! recorded by that surface through [`record`] and [`note`], never by writing the store.
//! Each event becomes one entry of the audit log (`crate::audit`).

use super::DomainError;
use super::audit_event::{Action, Actor, AuditEvent, Detail, Outcome};
use crate::store::Store;
use crate::time::now_ms;

/// The entry of an act that is about to succeed, for the store to write in the act's own
/// transaction (SPEC §6.1: if the entry cannot be written, nothing changes).
pub(crate) fn entry(
    actor: &Actor,
    action: Action,
    target: &str,
    detail: impl Into<String>,
) -> crate::audit::entry::Draft {
    crate::audit::draft_of(&AuditEvent {
        at_ms: now_ms(),
        action,
        actor: actor.clone(),
        target: target.to_string(),
        outcome: Outcome::Ok,
        detail: Detail::new(detail),
    })
}

/// Records that an act failed (it changed nothing) and hands its error back.
pub(crate) fn failed(
    store: &Store,
    actor: &Actor,
    action: Action,
    target: &str,
    e: DomainError,
) -> DomainError {
    note(
        store,
        actor,
        action,
        Outcome::Failed,
        target,
        failure_detail(&e),
    );
    e
}

/// Records one event now; an act whose event cannot be written fails.
pub fn record(
    store: &Store,
    actor: &Actor,
    action: Action,
    outcome: Outcome,
    target: &str,
    detail: impl Into<String>,
) -> Result<(), DomainError> {
    store.append_audit(&crate::audit::draft_of(&AuditEvent {
        at_ms: now_ms(),
        action,
        actor: actor.clone(),
        target: target.to_string(),
        outcome,
        detail: Detail::new(detail),
    }))?;
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
        Err(e) => Err(failed(store, actor, action, target, e)),
    }
}

/// Appends the entry of one API call (the envelope drafts it; the act's own entry, when it
/// wrote one in its transaction, is not repeated).
pub fn api_call(
    store: &Store,
    draft: &crate::audit::entry::Draft,
) -> Result<u64, crate::store::StoreError> {
    store.append_audit(draft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit_event::ActorKind;
    use crate::domain::systems::{self, NewSystem};
    use crate::domain::vocab::{Role, SystemState};

    fn new_system() -> NewSystem {
        let key = crate::crypto::sm::Sm2KeyPair::generate();
        NewSystem {
            name: "甲".into(),
            plat_name: "甲平台".into(),
            public_key_pem: crate::crypto::sm::sm2_public_key_to_pem(&key.public_key()),
            ..Default::default()
        }
    }

    #[test]
    fn each_act_is_one_event_with_its_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let op = Actor::account("op1", Role::Operator);
        let rec = systems::add_system(&store, new_system(), &Actor::cli()).unwrap();
        let bad = NewSystem {
            name: String::new(),
            ..new_system()
        };
        assert!(systems::add_system(&store, bad, &op).is_err());
        systems::set_state(&store, &rec.app_id, SystemState::Online, "上线", &op).unwrap();
        // Asking for the state a system is already in changes nothing and records nothing.
        systems::set_state(&store, &rec.app_id, SystemState::Online, "再次", &op).unwrap();

        let mut events = store.recent_events(10).unwrap();
        events.reverse();
        let seen: Vec<_> = events
            .iter()
            .map(|e| (e.action, e.outcome, e.actor.kind, e.target.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    Action::SystemAdd,
                    Outcome::Ok,
                    ActorKind::Cli,
                    rec.app_id.as_str()
                ),
                (Action::SystemAdd, Outcome::Failed, ActorKind::Admin, ""),
                (
                    Action::SystemState,
                    Outcome::Ok,
                    ActorKind::Admin,
                    rec.app_id.as_str()
                ),
            ]
        );
        assert_eq!(events[1].detail.as_str(), "name 不能为空且不超过 128 字");
        assert_eq!(events[2].detail.as_str(), "testing -> online: 上线");
        assert_eq!(events[2].actor.role, Some(Role::Operator));
    }

    /// SPEC §6.1 must-succeed for the acts that write one record: with the audit keyspace
    /// refusing writes (a full disk), each act fails with 50000 and leaves nothing changed.
    #[test]
    fn acts_whose_entry_cannot_be_written_fail_and_change_nothing() {
        use crate::domain::testkit::World;
        use crate::domain::{documents, metering};
        use crate::time::Day;
        use std::sync::atomic::Ordering;
        let (w, engine) = World::with_refusing_audit();
        let cli = Actor::cli();
        let sys = w.system(SystemState::Testing, false);
        let key = crate::crypto::sm::Sm2KeyPair::generate();
        let spec = crate::crypto::certgen::CertSpec {
            common_name: "Trust CA".into(),
            organization: None,
            not_before_ms: now_ms() - 1000,
            not_after_ms: now_ms() + 86_400_000,
            is_ca: true,
            serial: None,
        };
        let ca = crate::crypto::certgen::self_signed_sm2(&spec, &key).unwrap();
        let (anchor, _) = documents::add_trust_anchor(&w.store, &ca, &cli).unwrap();
        let today = Day::of_ms(now_ms());
        metering::set_quota(
            &w.store,
            &sys.app_id,
            crate::domain::vocab::QuotaKind::Signatures,
            5,
            today,
            today,
            &cli,
        )
        .unwrap();
        // The system's vendor has asked for a callback change.
        let asked = crate::store::applications::Application {
            username: "vendor1".into(),
            system_name: sys.name.clone(),
            plat_name: sys.plat_name.clone(),
            vendor: "某某科技".into(),
            public_key_pem: sys.public_keys[0].clone(),
            callback_url: None,
            callback_ca_pem: None,
            dest_host: None,
            state: crate::domain::vocab::ApplicationState::Approved,
            reason: String::new(),
            app_id: Some(sys.app_id.clone()),
            submitted_ms: 1,
            decided_ms: Some(2),
            decided_by: Some("op".into()),
            pending_key_pem: None,
            pending_callback: Some(crate::store::applications::CallbackChange {
                callback_url: Some("https://cb.example.cn".into()),
                callback_ca_pem: None,
                dest_host: None,
                requested_ms: 3,
            }),
            callback_rejection: None,
        };
        w.store.swap_application(None, &asked).unwrap();
        let systems_before = w.store.list_systems().unwrap();
        let size = w.store.audit_frontier().unwrap().size;

        engine.refuse.store(true, Ordering::SeqCst);
        let internal = |r: Result<(), DomainError>, what: &str| {
            let e = r.expect_err(what);
            assert_eq!(e.code(), crate::protocol::Code::Internal, "{what}: {e}");
        };
        internal(
            systems::add_system(&w.store, new_system(), &cli).map(drop),
            "system.add",
        );
        internal(
            systems::set_state(&w.store, &sys.app_id, SystemState::Online, "上线", &cli).map(drop),
            "system.state",
        );
        internal(
            documents::remove_trust_anchor(&w.store, &anchor, &cli),
            "trust.remove",
        );
        let other = crate::crypto::certgen::self_signed_sm2(
            &crate::crypto::certgen::CertSpec {
                common_name: "Other CA".into(),
                ..spec
            },
            &key,
        )
        .unwrap();
        internal(
            documents::add_trust_anchor(&w.store, &other, &cli).map(drop),
            "trust.add",
        );
        internal(
            metering::clear_quota(&w.store, &sys.app_id, &cli).map(drop),
            "quota.clear",
        );
        internal(
            metering::set_quota(
                &w.store,
                &sys.app_id,
                crate::domain::vocab::QuotaKind::Users,
                9,
                today,
                today,
                &cli,
            )
            .map(drop),
            "quota.set",
        );

        internal(
            crate::domain::onboarding::approve_callback_change(&w.store, "vendor1", &cli).map(drop),
            "system.callback_change_approve",
        );

        assert_eq!(w.store.list_systems().unwrap(), systems_before);
        // The refused approval left the request pending.
        assert_eq!(w.store.get_application("vendor1").unwrap().unwrap(), asked);
        let anchors: Vec<String> = w
            .store
            .trust_anchors()
            .unwrap()
            .into_iter()
            .map(|a| a.0)
            .collect();
        assert_eq!(anchors, [anchor]);
        let q = w.store.get_quota(&sys.app_id).unwrap().unwrap();
        assert_eq!(
            (q.kind, q.limit),
            (crate::domain::vocab::QuotaKind::Signatures, 5)
        );
        assert_eq!(w.store.audit_frontier().unwrap().size, size);
    }
}
