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
        let seals: Vec<tree::Revocation> = store
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
        // The record always changes (a suspended system gets the destruction in its history
        // too), so a state change that read it before this commits fails its
        // compare-and-swap, reads again and finds the tenant destroyed.
        let mut new_sys = sys.clone();
        new_sys.state = SystemState::Suspended;
        new_sys.history.push(StateChange {
            from: Some(sys.state),
            to: SystemState::Suspended,
            reason: format!("租户销毁: {reason}"),
            actor: actor.id.clone(),
            at_ms: now,
        });
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
    // A seal filed between the scan above and the commit is not in the plan; one filed after
    // the commit is refused (the tombstone is checked in the filing's transaction). So one
    // sweep after the commit revokes every seal the scan missed; a second run sweeps too.
    let swept = sweep(store, app_id, actor)?;
    let seals_revoked = seals_revoked + swept;
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

/// Revokes the destroyed tenant's seals that are still live; recorded as a second
/// `tenant.destroy` entry when there were any.
fn sweep(store: &Store, app_id: &str, actor: &Actor) -> Result<usize, DomainError> {
    let mut count = 0;
    loop {
        let now = now_ms();
        let live: Vec<SealRecord> = store.seals_where(usize::MAX, |r| {
            r.app_id == app_id && r.state != SealState::Revoked
        })?;
        if live.is_empty() {
            break;
        }
        let mut conflict = false;
        for old in live {
            let (new, drop) = revoked(&old, now);
            let one = [(old, new, drop)];
            match store.revoke_seals(&one) {
                Ok(()) => count += 1,
                Err(StoreError::Conflict) => conflict = true,
                Err(e) => return Err(e.into()),
            }
        }
        if !conflict {
            break;
        }
    }
    if count > 0 {
        audit::record(
            store,
            actor,
            Action::TenantDestroy,
            super::audit_event::Outcome::Ok,
            app_id,
            format!("补充注销销毁期间备案的印章 {count} 枚"),
        )?;
    }
    Ok(count)
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

    /// Filings and state changes racing a destruction: whatever the interleaving, the tenant
    /// ends destroyed with no live seal and its system suspended.
    #[test]
    fn nothing_racing_a_destruction_outlives_it() {
        for round in 0..4 {
            let w = World::new();
            let home = w.system(SystemState::Online, false);
            w.file(&home, CLOUD, &format!("es-{round}-first"));
            let stop = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|s| {
                for t in 0..3 {
                    let (w, home, stop) = (&w, &home, &stop);
                    s.spawn(move || {
                        let mut i = 0;
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 200 {
                            let f = w.filing(CLOUD, &format!("es-{round}-{t}-{i}"));
                            let _ = seals::file(&w.store, &w.provider, "340000", home, f);
                            let to = if i % 2 == 0 {
                                SystemState::Suspended
                            } else {
                                SystemState::Online
                            };
                            let _ = crate::domain::systems::set_state(
                                &w.store,
                                &home.app_id,
                                to,
                                "联调",
                                &Actor::cli(),
                            );
                            i += 1;
                        }
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(20 + 15 * round));
                destroy(
                    &w.store,
                    &w.provider,
                    &home.app_id,
                    &home.app_id,
                    "退出平台",
                    &Actor::cli(),
                )
                .unwrap();
                // Keep racing a little after the commit too.
                std::thread::sleep(std::time::Duration::from_millis(30));
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            let live = w
                .store
                .seals_where(usize::MAX, |r| {
                    r.app_id == home.app_id && r.state != SealState::Revoked
                })
                .unwrap();
            assert!(live.is_empty(), "round {round}: live seals {live:?}");
            let sys = w.store.get_system(&home.app_id).unwrap().unwrap();
            assert_eq!(sys.state, SystemState::Suspended, "round {round}");
        }
    }

    /// Once destroyed, no seal of the tenant is written, whoever asks the store.
    #[test]
    fn the_store_refuses_a_seal_of_a_destroyed_tenant() {
        let w = World::new();
        let home = w.system(SystemState::Online, false);
        let code = w.file(&home, CLOUD, "es-a");
        let before = w.store.get_seal(&code).unwrap().unwrap();
        destroy(
            &w.store,
            &w.provider,
            &home.app_id,
            &home.app_id,
            "退出",
            &Actor::cli(),
        )
        .unwrap();
        let revoked = w.store.get_seal(&code).unwrap().unwrap();
        let mut revived = revoked.clone();
        revived.state = before.state;
        assert!(matches!(
            w.store.put_seal(Some(&revoked), &revived, None, &[]),
            Err(StoreError::TenantDestroyed(_))
        ));
    }
}
