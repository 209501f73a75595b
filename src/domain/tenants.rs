//! Tenant destruction (SPEC §6, §6.2): a departed system's personal data made unrecoverable
//! by deleting its tenant KEKs from the key store (crypto-shredding), in the database and in
//! every backup, older or newer.
//!
//! One act, `tenant.destroy`, for the security administrator (console) or the CLI: in one
//! store transaction with its audit entry, every data-key owner of the system (its appId and
//! the portal accounts whose application it came from) gets a tombstone, so no data key is
//! ever made for them again; its seals are revoked, kept only as public registry history; the
//! system is suspended for good (SPEC §1 has no state past suspended; a destroyed system may
//! not leave it). Then the tenant KEKs are deleted from the key store. A failure there leaves
//! the tombstones in place and the act can be run again to finish.

use super::DomainError;
use super::audit;
use super::audit_event::{Action, Actor};
use crate::domain::vocab::{PossessorType, SealState, SystemState};
use crate::keys::KeyProvider;
use crate::store::seals::{self as tree, SealRecord, TenantShred};
use crate::store::systems::StateChange;
use crate::store::{Store, StoreError};
use crate::time::now_ms;
use serde::{Deserialize, Serialize};

/// What a destruction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destruction {
    pub app_id: String,
    /// Seals revoked by this run (0 when the tenant was destroyed before).
    pub seals_revoked: usize,
    /// Data-key owners shredded: the appId and `vendor:<username>` of its portal accounts.
    pub owners: Vec<String>,
    /// Tenant KEKs this run deleted from the key store.
    pub keys_deleted: usize,
    /// The tenant had been destroyed already; this run only finished the key store.
    pub already_destroyed: bool,
}

/// Destroys `app_id`'s tenant. `confirm` must repeat the appId (the console's typed
/// confirmation; the CLI names it once); `reason` is required. Recorded as `tenant.destroy`.
pub fn destroy(
    store: &Store,
    provider: &dyn KeyProvider,
    app_id: &str,
    confirm: &str,
    reason: &str,
    actor: &Actor,
) -> Result<Destruction, DomainError> {
    run(store, provider, app_id, confirm, reason, actor)
        .map_err(|e| audit::failed(store, actor, Action::TenantDestroy, app_id, e))
}

/// Whether `app_id`'s tenant was destroyed.
pub fn is_destroyed(store: &Store, app_id: &str) -> Result<bool, DomainError> {
    Ok(store.is_tenant_destroyed(app_id)?)
}

/// The data-key owners of a system: its appId and the portal accounts it was approved from.
fn owners_of(store: &Store, app_id: &str) -> Result<Vec<String>, DomainError> {
    let mut owners = vec![app_id.to_string()];
    for a in store.list_applications()? {
        if a.app_id.as_deref() == Some(app_id) {
            owners.push(crate::store::applications::key_owner(&a.username));
        }
    }
    Ok(owners)
}

/// The seal revoked, and the index keys to drop: the `orgCode` entry of a person's seal is a
/// salted digest of an ID number, which the revoked record need not keep.
fn revoked(old: &SealRecord, now: i64) -> (SealRecord, Vec<Vec<u8>>) {
    let mut new = old.clone();
    if old.state != SealState::Revoked {
        new.state = SealState::Revoked;
        new.state_history.push((SealState::Revoked, now));
    }
    let mut drop = Vec::new();
    if old.possessor_type == PossessorType::Person {
        drop.push(
            [
                tree::key_org_prefix(&old.org_key),
                old.seal_code.as_bytes().to_vec(),
            ]
            .concat(),
        );
        new.org_key = String::new();
    }
    (new, drop)
}

fn run(
    store: &Store,
    provider: &dyn KeyProvider,
    app_id: &str,
    confirm: &str,
    reason: &str,
    actor: &Actor,
) -> Result<Destruction, DomainError> {
    if confirm.trim() != app_id {
        return Err(DomainError::Invalid(
            "确认输入的 appId 与要销毁的系统不一致".into(),
        ));
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(DomainError::Invalid("必须填写销毁原因".into()));
    }
    let owners = owners_of(store, app_id)?;
    let (already_destroyed, seals_revoked) = loop {
        let sys = store
            .get_system(app_id)?
            .ok_or_else(|| DomainError::NotFound(format!("系统 {app_id} 不存在")))?;
        if store.is_tenant_destroyed(app_id)? {
            break (true, 0);
        }
        let now = now_ms();
        // Seals revoked before lose their personal index entry too.
        let seals: Vec<(SealRecord, SealRecord, Vec<Vec<u8>>)> = store
            .seals_where(usize::MAX, |r| r.app_id == app_id)?
            .into_iter()
            .map(|old| {
                let (new, drop) = revoked(&old, now);
                (old, new, drop)
            })
            .filter(|(old, new, _)| old != new)
            .collect();
        let newly_revoked = seals
            .iter()
            .filter(|(old, _, _)| old.state != SealState::Revoked)
            .count();
        let mut new_sys = sys.clone();
        if sys.state != SystemState::Suspended {
            new_sys.state = SystemState::Suspended;
            new_sys.history.push(StateChange {
                from: Some(sys.state),
                to: SystemState::Suspended,
                reason: format!("租户销毁: {reason}"),
                actor: actor.id.clone(),
                at_ms: now,
            });
        }
        let detail = format!(
            "注销印章 {newly_revoked} 枚，销毁数据密钥 {} 个；原因: {reason}",
            owners.len()
        );
        let entry = audit::entry(actor, Action::TenantDestroy, app_id, detail);
        let plan = TenantShred {
            owners: &owners,
            seals: &seals,
            system: (&sys, &new_sys),
        };
        match store.shred_tenant(&plan, &entry) {
            Ok(()) => break (false, newly_revoked),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    // The tombstones are on disk before any key goes: a crash in between leaves a tenant
    // that refuses its data key and a destruction that a second run finishes.
    store.flush_blocking()?;
    let mut keys_deleted = 0;
    for owner in &owners {
        let existed = provider.destroy_tenant_key(owner).map_err(|e| {
            StoreError::Corrupt(format!("密钥库中删除租户密钥失败（{owner}）: {e}"))
        })?;
        keys_deleted += usize::from(existed);
    }
    if already_destroyed {
        let detail = format!("已销毁；本次删除密钥库中的租户密钥 {keys_deleted} 个");
        audit::record(
            store,
            actor,
            Action::TenantDestroy,
            super::audit_event::Outcome::Ok,
            app_id,
            detail,
        )?;
    }
    Ok(Destruction {
        app_id: app_id.to_string(),
        seals_revoked,
        owners,
        keys_deleted,
        already_destroyed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::seals;
    use crate::domain::testkit::{CLOUD, ORG, World};

    #[test]
    fn destruction_revokes_every_seal_and_drops_only_personal_index_entries() {
        let w = World::new();
        let home = w.system(SystemState::Online, false);
        let other = w.system(SystemState::Online, false);
        let org_seal = w.file(&home, CLOUD, "es-org");
        let early = w.file(&home, CLOUD, "es-early");
        seals::set_state(&w.store, &home, &early, 3, None).unwrap();
        let mut f = w.filing(CLOUD, "es-person");
        f.possessor = "张三".into();
        f.possessor_cert_no = "11010519491231002X".into();
        f.possessor_type = 2;
        let person_seal = seals::file(&w.store, &w.provider, "340000", &home, f).unwrap();
        let kept = w.file(&other, CLOUD, "es-other");
        let person_key = seals::org_key(&w.store, "11010519491231002X").unwrap();
        assert_eq!(
            w.store.seals_of_org(&person_key).unwrap(),
            vec![person_seal.clone()]
        );

        let actor = Actor::cli();
        let missing = destroy(&w.store, &w.provider, "HTNONE", "HTNONE", "x", &actor);
        assert!(
            matches!(missing, Err(DomainError::NotFound(_))),
            "{missing:?}"
        );
        let d = destroy(
            &w.store,
            &w.provider,
            &home.app_id,
            &home.app_id,
            "退出平台",
            &actor,
        )
        .unwrap();
        assert_eq!(
            d.seals_revoked, 2,
            "the early-revoked seal is not counted again"
        );
        for code in [&org_seal, &early, &person_seal] {
            let rec = w.store.get_seal(code).unwrap().unwrap();
            assert_eq!(rec.state, SealState::Revoked, "{code}");
        }
        let early_rec = w.store.get_seal(&early).unwrap().unwrap();
        assert_eq!(early_rec.state_history.len(), 2, "revoked once");
        assert!(w.store.seals_of_org(&person_key).unwrap().is_empty());
        let org_key = seals::org_key(&w.store, ORG).unwrap();
        let listed = w.store.seals_of_org(&org_key).unwrap();
        assert!(
            listed.contains(&org_seal) && listed.contains(&kept),
            "{listed:?}"
        );
        let kept = w.store.get_seal(&kept).unwrap().unwrap();
        assert_eq!(kept.state, SealState::Enabled);
        let sys = w.store.get_system(&home.app_id).unwrap().unwrap();
        assert_eq!(sys.state, SystemState::Suspended);
        assert!(
            sys.history
                .last()
                .is_some_and(|h| h.reason == "租户销毁: 退出平台")
        );
        assert!(is_destroyed(&w.store, &home.app_id).unwrap());
        assert!(!is_destroyed(&w.store, &other.app_id).unwrap());
    }
}
