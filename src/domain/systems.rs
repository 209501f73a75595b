//! Seal systems after approval: creation, key registration and the state machine
//! `testing → online ⇄ suspended` (SPEC §1). Every change is recorded with who, when and why.

use super::DomainError;
use super::audit;
use super::audit_event::{Action, Actor, Outcome};
use crate::crypto::sm;
use crate::domain::vocab::SystemState;
use crate::store::Store;
use crate::store::systems::{StateChange, SystemRecord};
use crate::time::now_ms;

#[derive(Debug, Clone, Default)]
pub struct NewSystem {
    pub name: String,
    pub plat_name: String,
    pub vendor: Option<String>,
    /// PEM SubjectPublicKeyInfo or X.509 certificate holding the system's SM2 key.
    pub public_key_pem: String,
    pub callback_url: Option<String>,
    pub callback_ca_pem: Option<String>,
    pub dest_host: Option<String>,
    pub state: Option<SystemState>,
}

/// The reason of a system's first state, created from an approved application.
pub const APPROVED_REASON: &str = "入驻申请审批通过";

/// A stored reason as a person reads it (records written before the reason was worded in
/// Chinese say `approved`).
pub fn reason_label(reason: &str) -> &str {
    match reason {
        "approved" => APPROVED_REASON,
        other => other,
    }
}

/// Validates and normalises a member's SM2 public key to PEM SubjectPublicKeyInfo.
pub fn normalise_public_key(pem: &str) -> Result<String, DomainError> {
    let key = sm::sm2_public_key_from_pem(pem).map_err(|e| match e {
        // Well-formed but another algorithm: say which, so the vendor fixes the right thing.
        sm::CryptoError::NotSm2(_) => DomainError::Invalid(e.to_string()),
        _ => DomainError::Invalid(UNPARSABLE_KEY.into()),
    })?;
    Ok(sm::sm2_public_key_to_pem(&key))
}

/// What an SM2 public key that cannot be read at all is told.
pub const UNPARSABLE_KEY: &str =
    "公钥无法解析：请粘贴 PEM 格式的 SM2 公钥（PUBLIC KEY）或 X.509 证书（CERTIFICATE）";

/// Validates the CA certificate a member's callback TLS certificate chains to: one PEM
/// `CERTIFICATE` that parses as X.509; returned re-encoded without surrounding text.
pub fn normalise_ca_pem(pem: &str) -> Result<String, DomainError> {
    let (label, der) =
        sm::pem_decode(pem).map_err(|e| DomainError::Invalid(format!("回调 CA 证书无效: {e}")))?;
    if label != "CERTIFICATE" {
        return Err(DomainError::Invalid("回调 CA 必须是 PEM 证书".into()));
    }
    crate::crypto::x509::CertInfo::parse(&der)
        .map_err(|e| DomainError::Invalid(format!("回调 CA 证书无法解析: {e}")))?;
    Ok(sm::pem_encode("CERTIFICATE", &der))
}

/// The certificate of a stored (normalised) callback CA, for showing who it is.
pub fn callback_ca_info(pem: &str) -> Option<crate::crypto::x509::CertInfo> {
    let (_, der) = sm::pem_decode(pem).ok()?;
    crate::crypto::x509::CertInfo::parse(&der).ok()
}

fn check_https_url(field: &str, url: &Option<String>) -> Result<(), DomainError> {
    if let Some(u) = url
        && (!u.starts_with("https://") || u.len() > 512 || u.chars().any(char::is_whitespace))
    {
        return Err(DomainError::Invalid(format!(
            "{field} 必须是 https:// 开头的地址"
        )));
    }
    Ok(())
}

fn new_app_id() -> String {
    format!("HT{}", hex::encode_upper(sm::random_bytes::<8>()))
}

/// Registers a system, recorded as `system.add`.
pub fn add_system(
    store: &Store,
    new: NewSystem,
    actor: &Actor,
) -> Result<SystemRecord, DomainError> {
    let name = new.name.clone();
    create_system(store, new, &actor.id, &|r| {
        audit::entry(actor, Action::SystemAdd, &r.app_id, r.name.clone())
    })
    .map_err(|e| audit::failed(store, actor, Action::SystemAdd, &name, e))
}

/// Registers a system; `entry` is the audit entry of the act that creates it (`system.add`,
/// or an approval's `onboarding.approve` naming the new appId), written with the record.
pub(crate) fn create_system(
    store: &Store,
    new: NewSystem,
    actor: &str,
    entry: &dyn Fn(&SystemRecord) -> crate::audit::entry::Draft,
) -> Result<SystemRecord, DomainError> {
    for (field, v) in [("name", &new.name), ("platName", &new.plat_name)] {
        if v.trim().is_empty() || v.chars().count() > 128 {
            return Err(DomainError::Invalid(format!(
                "{field} 不能为空且不超过 128 字"
            )));
        }
    }
    check_https_url("callbackUrl", &new.callback_url)?;
    check_https_url("destHost", &new.dest_host)?;
    let callback_ca_pem = new
        .callback_ca_pem
        .as_deref()
        .map(normalise_ca_pem)
        .transpose()?;
    let key = normalise_public_key(&new.public_key_pem)?;
    let state = new.state.unwrap_or(SystemState::Testing);
    if state == SystemState::Suspended {
        return Err(DomainError::Invalid(
            "新系统的状态只能是 testing 或 online".into(),
        ));
    }
    let now = now_ms();
    let rec = SystemRecord {
        app_id: new_app_id(),
        name: new.name.trim().to_string(),
        plat_name: new.plat_name.trim().to_string(),
        vendor: new.vendor,
        public_keys: vec![key],
        callback_url: new.callback_url,
        callback_ca_pem,
        dest_host: new.dest_host,
        state,
        created_ms: now,
        history: vec![StateChange {
            from: None,
            to: state,
            reason: APPROVED_REASON.into(),
            actor: actor.into(),
            at_ms: now,
        }],
    };
    store.insert_system(&rec, &entry(&rec))?;
    Ok(rec)
}

/// Checks `app_id`'s callback stage by stage (`interop::check`), recorded as
/// `system.check_callback` with the summary; a failing check is a result, not an error.
/// Blocking: it talks to the member.
pub fn check_callback(
    store: &Store,
    keys: &crate::keys::Keyring,
    app_id: &str,
    actor: &Actor,
    timeout: std::time::Duration,
) -> Result<crate::interop::check::CheckReport, DomainError> {
    let action = Action::SystemCheckCallback;
    let rec = match store.get_system(app_id)? {
        Some(r) => r,
        None => {
            let e = DomainError::NotFound(format!("系统 {app_id} 不存在"));
            return Err(audit::failed(store, actor, action, app_id, e));
        }
    };
    let report = crate::interop::check::check_callback(keys, &rec, timeout);
    let outcome = if report.passed() {
        Outcome::Ok
    } else {
        Outcome::Failed
    };
    audit::record(store, actor, action, outcome, app_id, report.summary())?;
    Ok(report)
}

/// Whether `from → to` is a transition an operator may make.
pub fn transition_allowed(from: SystemState, to: SystemState) -> bool {
    use SystemState::*;
    matches!(
        (from, to),
        (Testing, Online)
            | (Testing, Suspended)
            | (Online, Suspended)
            | (Suspended, Online)
            | (Suspended, Testing)
    )
}

/// Changes a system's state with a reason, recorded as `system.state` (an unchanged state
/// is an answer, not an act).
pub fn set_state(
    store: &Store,
    app_id: &str,
    to: SystemState,
    reason: &str,
    actor: &Actor,
) -> Result<SystemRecord, DomainError> {
    change_state(store, app_id, to, reason, actor)
        .map_err(|e| audit::failed(store, actor, Action::SystemState, app_id, e))
}

/// The transition itself, written with its `system.state` entry; an unchanged state is an
/// answer, not an act, and records nothing.
fn change_state(
    store: &Store,
    app_id: &str,
    to: SystemState,
    reason: &str,
    actor: &Actor,
) -> Result<SystemRecord, DomainError> {
    if reason.trim().is_empty() {
        return Err(DomainError::Invalid("必须填写状态变更原因".into()));
    }
    loop {
        let old = store
            .get_system(app_id)?
            .ok_or_else(|| DomainError::NotFound(format!("系统 {app_id} 不存在")))?;
        if old.state == to {
            return Ok(old);
        }
        // A destroyed tenant has no data key any more: it stays suspended.
        if store.is_tenant_destroyed(app_id)? {
            return Err(DomainError::Conflict(format!(
                "系统 {app_id} 的租户数据已销毁，状态不能再变更"
            )));
        }
        if !transition_allowed(old.state, to) {
            return Err(DomainError::Conflict(format!(
                "不允许从 {} 变更为 {}",
                old.state.as_str(),
                to.as_str()
            )));
        }
        let mut new = old.clone();
        new.state = to;
        new.history.push(StateChange {
            from: Some(old.state),
            to,
            reason: reason.trim().to_string(),
            actor: actor.id.clone(),
            at_ms: now_ms(),
        });
        let detail = format!(
            "{} -> {}: {}",
            old.state.as_str(),
            to.as_str(),
            reason.trim()
        );
        let entry = audit::entry(actor, Action::SystemState, app_id, detail);
        match store.update_system(&old, &new, Some(&entry)) {
            Ok(()) => return Ok(new),
            Err(crate::store::StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sm::Sm2KeyPair;

    fn new_system() -> NewSystem {
        NewSystem {
            name: "测试印章系统".into(),
            plat_name: "测试平台".into(),
            public_key_pem: sm::sm2_public_key_to_pem(&Sm2KeyPair::generate().public_key()),
            ..Default::default()
        }
    }

    #[test]
    fn lifecycle_follows_the_state_machine() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = add_system(&store, new_system(), &Actor::cli()).unwrap();
        assert_eq!(rec.state, SystemState::Testing);
        assert!(rec.app_id.starts_with("HT") && rec.app_id.len() == 18);
        let rec = set_state(
            &store,
            &rec.app_id,
            SystemState::Online,
            "上线",
            &Actor::cli(),
        )
        .unwrap();
        let rec = set_state(
            &store,
            &rec.app_id,
            SystemState::Suspended,
            "违规",
            &Actor::cli(),
        )
        .unwrap();
        assert_eq!(rec.history.len(), 3);
        assert!(matches!(
            set_state(&store, &rec.app_id, SystemState::Online, " ", &Actor::cli()),
            Err(DomainError::Invalid(_))
        ));
        let rec = set_state(
            &store,
            &rec.app_id,
            SystemState::Online,
            "恢复",
            &Actor::cli(),
        )
        .unwrap();
        assert!(matches!(
            set_state(
                &store,
                &rec.app_id,
                SystemState::Testing,
                "回退",
                &Actor::cli()
            ),
            Err(DomainError::Conflict(_))
        ));
    }

    #[test]
    fn bad_keys_and_urls_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut n = new_system();
        n.public_key_pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into();
        assert!(matches!(
            add_system(&store, n, &Actor::cli()),
            Err(DomainError::Invalid(_))
        ));
        let mut n = new_system();
        n.callback_url = Some("http://insecure".into());
        assert!(matches!(
            add_system(&store, n, &Actor::cli()),
            Err(DomainError::Invalid(_))
        ));
    }
}
