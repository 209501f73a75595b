//! UKey signing support (SPEC §3.7), free of HTTP: the seal's home system asks the platform
//! to vouch for a `signId` that another system's page handed to its client program. Only
//! the home system may ask, and only for its own seal; the signId is consumed, and the
//! signature it stands for is counted for both sides.
//!
//! It never routes anything: the signing itself runs between the two systems' programs.

use super::DomainError;
use super::{metering, seals};
use crate::store::Store;
use crate::store::systems::SystemRecord;
use crate::time::now_ms;

/// What the platform vouches for (表23).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    pub requester_app_id: String,
    pub requester_plat_name: String,
    pub seal_code: String,
    pub expires_ms: i64,
}

/// Vouches for `sign_id` to `caller`, the home system of `seal_code`: `30001` for an unknown
/// seal, `20008` for another system's seal, `30005` for a signId that is not valid for this
/// seal (left in place then, see [`seals::consume_sign_id`]).
pub fn vouch(
    store: &Store,
    caller: &SystemRecord,
    sign_id: &str,
    seal_code: &str,
) -> Result<Vouched, DomainError> {
    let rec = store
        .get_seal(seal_code)?
        .ok_or_else(|| seals::not_found(seal_code))?;
    if rec.app_id != caller.app_id {
        return Err(DomainError::Forbidden(format!(
            "印章 {seal_code} 不属于本系统，只有印章所属系统可以核验 signId"
        )));
    }
    let token = seals::consume_sign_id(store, sign_id, seal_code, None)?;
    // The name is a courtesy: the signId is already spent, so a failed look-up does not undo it.
    let requester_plat_name = match store.get_system(&token.requester) {
        Ok(s) => s.map(|s| s.plat_name).unwrap_or_default(),
        Err(e) => {
            tracing::warn!(requester = %token.requester, error = %e, "requester not read");
            String::new()
        }
    };
    // A vouched signId is one cross-system UKey signature for both sides.
    let now = now_ms();
    metering::record_signature(store, &token.requester, "ukey/sign", now);
    metering::record_signature(store, &caller.app_id, "ukey/sign/verify", now);
    Ok(Vouched {
        requester_app_id: token.requester,
        requester_plat_name,
        seal_code: seal_code.to_string(),
        expires_ms: token.expires_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testkit::{CLOUD, UKEY, World};
    use crate::domain::vocab::SystemState;

    #[test]
    fn only_the_home_system_vouches_for_its_own_seal_once_and_both_sides_count_it() {
        let w = World::new();
        let home = w.system(SystemState::Online, true);
        let a = w.system(SystemState::Online, false);
        let seal = w.file(&home, UKEY, "ES-1");
        let other_own_seal = w.file(&home, CLOUD, "ES-2");
        let token = w.sign_id(&a, &seal);

        assert!(matches!(
            vouch(&w.store, &home, &token, "NOSUCHSEAL"),
            Err(DomainError::NotFound(_))
        ));
        assert!(matches!(
            vouch(&w.store, &a, &token, &seal),
            Err(DomainError::Forbidden(_))
        ));
        // Its own seal, but not the signId's: refused and not burnt.
        assert!(matches!(
            vouch(&w.store, &home, &token, &other_own_seal),
            Err(DomainError::SignId(_))
        ));

        let v = vouch(&w.store, &home, &token, &seal).unwrap();
        assert_eq!(v.requester_app_id, a.app_id);
        assert_eq!(v.requester_plat_name, "测试平台");
        assert_eq!(v.seal_code, seal);
        assert!(v.expires_ms > crate::time::now_ms());
        assert!(matches!(
            vouch(&w.store, &home, &token, &seal),
            Err(DomainError::SignId(_))
        ));

        let today = crate::time::Day::of_ms(now_ms());
        let signatures = |app: &str, interface: &str| {
            metering::report(&w.store, Some(app), today, today)
                .unwrap()
                .iter()
                .filter(|r| r.interface == interface)
                .map(|r| r.counts.signatures)
                .sum::<u64>()
        };
        assert_eq!(signatures(&a.app_id, "ukey/sign"), 1);
        assert_eq!(signatures(&home.app_id, "ukey/sign/verify"), 1);
    }
}
