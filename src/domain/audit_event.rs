//! The typed audit event: who (`Actor`) did what (`Action`) to which target, with which
//! `Outcome`, and a short bounded detail. One `Action` per act, with one stable dotted wire
//! name whichever entry point performed it (SPEC §6.1); the audit issue turns these events into
//! the Merkle log, so the fields follow §6.1's entry (`action`, `actor {type, id, role}`,
//! `target`, `result`, `detail`).
//!
//! A leaf of `domain`: it imports nothing of the crate but `domain::vocab`, so `store` may
//! serialise it without depending on the rules. Recording happens in the domain only
//! (`domain::audit`); no surface builds and writes events itself.

use super::vocab::Role;
use serde::{Deserialize, Serialize};

/// Defines `Action` with its wire names, so the enum, `as_str` and serde agree by construction.
macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident => $wire:literal,)*) => {
        /// Every audited act. The wire names are a closed list (`docs/audit.md` in the audit
        /// issue); a new act gets a new variant, a name is never reused for another act.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Action {
            $($(#[$doc])* #[serde(rename = $wire)] $variant,)*
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The stable dotted name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $wire,)*
                }
            }
        }
    };
}

actions! {
    /// A seal system registered (CLI, or an approved application).
    SystemAdd => "system.add",
    /// A system's state changed (testing, online, suspended).
    SystemState => "system.state",
    /// A member's callback checked stage by stage (console, portal or CLI).
    SystemCheckCallback => "system.check_callback",
    /// A vendor asked, after approval, to change its callback URL, callback CA and destHost.
    SystemCallbackChangeRequest => "system.callback_change_request",
    /// An operator applied a requested callback change to the system.
    SystemCallbackChangeApprove => "system.callback_change_approve",
    /// An operator refused a requested callback change (detail: the reason the vendor sees).
    SystemCallbackChangeReject => "system.callback_change_reject",
    AccountCreate => "account.create",
    AccountDisable => "account.disable",
    AccountEnable => "account.enable",
    /// An administrator's password reset by a security administrator.
    AccountReset => "account.reset",
    /// Too many failed logins locked the account.
    AccountLockout => "account.lockout",
    /// A locked-out account unlocked from the CLI (the lockout cleared, nothing else).
    AccountUnlock => "account.unlock",
    /// `hutong admin list`.
    AccountList => "account.list",
    /// An account holder changed their own password.
    PasswordChange => "account.password_change",
    /// A second factor (TOTP or an SM2 certificate) enrolled by its account holder.
    SecondFactorEnrol => "account.second_factor_enrol",
    /// An account's second factors removed by a security administrator or the CLI; the account
    /// enrols again at its next login.
    SecondFactorReset => "account.second_factor_reset",
    /// A single-use recovery code spent in place of the second factor.
    RecoveryCodeUse => "account.recovery_code_use",
    ConsoleLogin => "console.login",
    ConsoleLogout => "console.logout",
    OnboardingSubmit => "onboarding.submit",
    OnboardingApprove => "onboarding.approve",
    OnboardingReject => "onboarding.reject",
    /// An operator opened an applicant's unmasked real-name data (detail: the reason given).
    OnboardingReveal => "onboarding.reveal",
    KeyRotationRequest => "key.rotation_request",
    KeyRotationApprove => "key.rotation_approve",
    TrustAdd => "trust.add",
    TrustRemove => "trust.remove",
    QuotaSet => "quota.set",
    QuotaClear => "quota.clear",
    DocumentVerify => "document.verify",
    /// A registry search: it reveals who holds which seals.
    SealSearch => "seal.search",
    UsageExport => "usage.export",
    /// The server started serving (after the platform key was unwrapped).
    PlatformStart => "platform.start",
    /// The server stopped after draining requests.
    PlatformStop => "platform.stop",
    /// A signed checkpoint of the audit log was made.
    AuditCheckpoint => "audit.checkpoint",
    /// The platform key and certificate were generated and wrapped by the KEK (first start).
    KeyCreate => "key.create",
    /// The platform key was unwrapped by the key provider at start-up.
    KeyUnwrap => "key.unwrap",
    /// `hutong keys rotate platform`: a new platform key and certificate replaced the old
    /// ones (detail: both fingerprints, until when the old certificate is listed).
    KeyRotatePlatform => "key.rotate_platform",
    /// `hutong keys rotate kek`: a new KEK, the platform key re-wrapped under it, the old
    /// KEK retired (detail: both ids, where the old one is kept).
    KeyRotateKek => "key.rotate_kek",
    /// `hutong keys rotate kek --finish`: the retired KEK destroyed after a backup verified
    /// under the new one (a refusal is `denied` with the reason).
    KeyDestroyKek => "key.destroy_kek",
    /// Read-only management commands (CLI / control socket).
    SystemList => "system.list",
    KeyStatus => "key.status",
    /// `hutong status`: the running appliance's summary.
    PlatformStatus => "platform.status",
    /// `hutong tls reload`: the TLS certificate read again (detail: subject and expiry).
    PlatformTlsReload => "platform.tls_reload",
    TrustList => "trust.list",
    QuotaShow => "quota.show",
    /// An export of the log (CLI, auditor console; detail: the time range).
    AuditExport => "audit.export",
    /// An integrity check of the whole log (CLI, auditor console; detail: the result).
    AuditVerify => "audit.verify",
    AuditProof => "audit.proof",
    /// Entries past the retention period were pruned (detail: how many, the new first seq).
    AuditPrune => "audit.prune",
    /// The auditor's search or entry pages (recorded when refused).
    AuditSearch => "audit.search",
    /// A backup was written (detail: records, bytes, the audit tree size, the file's SM3).
    PlatformBackup => "platform.backup",
    /// The store was restored from a backup (the first entry after the backup's own).
    PlatformRestore => "platform.restore",
    /// A departed system's tenant destroyed (crypto-shredding): its tenant keys deleted from
    /// the key store, its seals revoked, the system suspended for good (detail: counts, reason).
    TenantDestroy => "tenant.destroy",
}

impl Action {
    /// What the console shows a person for this act.
    pub fn label(self) -> &'static str {
        match self {
            Action::SystemAdd => "登记接入系统",
            Action::SystemState => "变更系统状态",
            Action::SystemCheckCallback => "检查回调地址",
            Action::SystemCallbackChangeRequest => "申请变更回调配置",
            Action::SystemCallbackChangeApprove => "批准变更回调配置",
            Action::SystemCallbackChangeReject => "驳回变更回调配置",
            Action::AccountCreate => "创建账户",
            Action::AccountDisable => "停用账户",
            Action::AccountEnable => "启用账户",
            Action::AccountReset => "重置密码",
            Action::AccountLockout => "账户被锁定",
            Action::AccountUnlock => "解除账户锁定",
            Action::AccountList => "查看管理员列表",
            Action::PasswordChange => "修改密码",
            Action::SecondFactorEnrol => "登记第二因素",
            Action::SecondFactorReset => "重置第二因素",
            Action::RecoveryCodeUse => "使用恢复码登录",
            Action::ConsoleLogin => "登录",
            Action::ConsoleLogout => "退出登录",
            Action::OnboardingSubmit => "提交入驻申请",
            Action::OnboardingApprove => "批准入驻申请",
            Action::OnboardingReject => "驳回入驻申请",
            Action::OnboardingReveal => "查看申请人完整信息",
            Action::KeyRotationRequest => "申请更换接入公钥",
            Action::KeyRotationApprove => "批准更换接入公钥",
            Action::TrustAdd => "添加信任锚",
            Action::TrustRemove => "删除信任锚",
            Action::QuotaSet => "设置配额",
            Action::QuotaClear => "取消配额",
            Action::DocumentVerify => "文档验真",
            Action::SealSearch => "查询印章登记库",
            Action::UsageExport => "导出用量",
            Action::PlatformStart => "平台启动",
            Action::PlatformStop => "平台停止",
            Action::AuditCheckpoint => "审计日志签名检查点",
            Action::KeyCreate => "生成平台密钥",
            Action::KeyUnwrap => "解封平台密钥",
            Action::SystemList => "查看接入系统列表",
            Action::KeyStatus => "查看密钥状态",
            Action::PlatformStatus => "查看平台状态",
            Action::PlatformTlsReload => "重新加载 TLS 证书",
            Action::TrustList => "查看信任锚",
            Action::QuotaShow => "查看配额",
            Action::AuditExport => "导出审计日志",
            Action::AuditVerify => "校验审计日志",
            Action::AuditProof => "生成审计证明",
            Action::AuditPrune => "清理过期审计记录",
            Action::AuditSearch => "查询审计日志",
            Action::PlatformBackup => "备份",
            Action::PlatformRestore => "从备份恢复",
            Action::TenantDestroy => "销毁租户数据",
            Action::KeyRotatePlatform => "轮换平台签名密钥",
            Action::KeyRotateKek => "轮换密钥加密密钥",
            Action::KeyDestroyKek => "销毁旧的密钥加密密钥",
        }
    }

    /// The act of a wire name, if it is one of these (API calls are not).
    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == name)
    }

    /// Key operations are their own entry kind (`key`) whoever performs them.
    pub fn is_key_operation(self) -> bool {
        matches!(
            self,
            Action::KeyCreate
                | Action::KeyUnwrap
                | Action::KeyRotatePlatform
                | Action::KeyRotateKek
                | Action::KeyDestroyKek
        )
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an act ended. SPEC §6.1's `result` has `ok | denied | error`: `Failed` and `Locked`
/// are both `error` there, kept apart here because the console shows the difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Refused before acting: wrong role, bad CSRF token.
    Denied,
    /// Attempted and refused by a rule or a fault.
    Failed,
    /// A login refused because the account is (now) locked.
    Locked,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
            Outcome::Locked => "locked",
        }
    }
}

/// Who acts: SPEC §6.1's `actor.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// A console administrator.
    Admin,
    /// A seal system's operator in the vendor portal.
    Vendor,
    /// The management CLI (control socket or local store).
    Cli,
    /// The platform itself (bootstrap, background work).
    System,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "type")]
    pub kind: ActorKind,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

impl Actor {
    /// The management CLI; it has no account, its authority is the data directory's owner.
    pub fn cli() -> Self {
        Actor {
            kind: ActorKind::Cli,
            id: "cli".into(),
            role: None,
        }
    }

    /// The management CLI run by an operating-system user (the control socket's peer).
    pub fn cli_user(os_user: &str) -> Self {
        Actor {
            kind: ActorKind::Cli,
            id: format!("cli:{os_user}"),
            role: None,
        }
    }

    pub fn system() -> Self {
        Actor {
            kind: ActorKind::System,
            id: "system".into(),
            role: None,
        }
    }

    /// A signed-in account: a vendor in the portal, an administrator otherwise.
    pub fn account(username: &str, role: Role) -> Self {
        Actor {
            kind: if role == Role::Vendor {
                ActorKind::Vendor
            } else {
                ActorKind::Admin
            },
            id: username.into(),
            role: Some(role),
        }
    }
}

/// Short free text beside the typed fields, at most [`Detail::MAX_CHARS`] characters; callers
/// put no personal data in it (the search audit masks ID numbers before).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Detail(String);

impl Detail {
    pub const MAX_CHARS: usize = 256;

    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        match text.char_indices().nth(Self::MAX_CHARS) {
            Some((cut, _)) => Detail(format!("{}…", &text[..cut])),
            None => Detail(text),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// UTC milliseconds.
    #[serde(rename = "at")]
    pub at_ms: i64,
    pub action: Action,
    pub actor: Actor,
    pub target: String,
    #[serde(rename = "result")]
    pub outcome: Outcome,
    #[serde(default)]
    pub detail: Detail,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_unique_and_serde_agrees() {
        let mut seen = std::collections::HashSet::new();
        for a in Action::ALL {
            assert!(seen.insert(a.as_str()), "{a} twice");
            let json = serde_json::to_string(a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
            assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), *a);
        }
    }

    /// `docs/audit.md` is the closed list an auditor reads: it must name exactly the actions
    /// the code can write (domain acts here, API interfaces in `api::envelope`).
    #[test]
    fn the_documented_action_list_is_the_closed_list() {
        let doc = include_str!("../../docs/audit.md");
        let section = doc
            .split("## Action names")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap();
        let documented: std::collections::BTreeSet<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        let mut expected: std::collections::BTreeSet<&str> =
            Action::ALL.iter().map(|a| a.as_str()).collect();
        let api = [
            "system.info",
            "seal.filing",
            "seal.state",
            "seal.query",
            "cloud.auth.apply",
            "cloud.auth.result",
            "cloud.sign",
            "ukey.sign.verify",
            "document.verify",
        ];
        expected.extend(api);
        assert_eq!(documented, expected);
    }

    #[test]
    fn an_event_serialises_with_the_spec_field_names() {
        let ev = AuditEvent {
            at_ms: 5,
            action: Action::QuotaSet,
            actor: Actor::account("op1", Role::Operator),
            target: "HT1".into(),
            outcome: Outcome::Ok,
            detail: Detail::new("signatures 10"),
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"at": 5, "action": "quota.set",
                "actor": {"type": "admin", "id": "op1", "role": "operator"},
                "target": "HT1", "result": "ok", "detail": "signatures 10"})
        );
        assert_eq!(serde_json::from_value::<AuditEvent>(v).unwrap(), ev);
    }

    #[test]
    fn details_are_bounded() {
        let d = Detail::new("长".repeat(1000));
        assert_eq!(d.as_str().chars().count(), Detail::MAX_CHARS + 1);
        assert_eq!(Detail::new("short").as_str(), "short");
    }
}
