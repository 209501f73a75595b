//! View models: what each template shows, already formatted (times, masks, labels), so the
//! templates hold no logic beyond loops and conditions.

use super::session::Auth;
use super::{fmt_time, role_label};
use crate::domain::codes;
use crate::domain::onboarding::FieldErrors;
use crate::domain::vocab::ApplicationState;
use crate::domain::vocab::Role;
use crate::store::applications::{Application, VendorProfile};
use askama::Template;

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub active: bool,
}

/// The signed-in frame: who, which role, the CSRF token for every form, the role's menu.
pub struct Ctx {
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    pub nav: Vec<NavItem>,
}

impl Ctx {
    pub fn new(auth: &Auth, active: &str) -> Self {
        let items: &[(&'static str, &'static str)] = match auth.role {
            Role::Operator => &[
                ("/console/", "概览"),
                ("/console/applications", "入驻审批"),
                ("/console/systems", "接入系统"),
                ("/console/usage", "用量统计"),
                ("/console/seals", "印章查询"),
                ("/console/verify", "文档验真"),
            ],
            Role::Security => &[
                ("/console/", "概览"),
                ("/console/accounts", "管理员账户"),
                ("/console/systems", "接入系统"),
                ("/console/keys", "密钥状态"),
                ("/console/trust", "信任锚"),
                ("/console/settings", "运行配置"),
            ],
            Role::Auditor => &[
                ("/console/", "概览"),
                ("/console/audit", "审计日志"),
                ("/console/audit/verify", "完整性校验"),
                ("/console/events", "最近事件"),
                ("/console/usage", "用量统计"),
            ],
            Role::Vendor => &[("/portal/", "我的接入"), ("/portal/usage", "用量统计")],
        };
        let mut nav: Vec<NavItem> = items
            .iter()
            .map(|(href, label)| NavItem {
                href,
                label,
                active: *href == active,
            })
            .collect();
        nav.push(NavItem {
            href: "/console/password",
            label: "修改密码",
            active: active == "/console/password",
        });
        nav.push(NavItem {
            href: "/console/second-factor",
            label: "两步验证",
            active: active == "/console/second-factor",
        });
        Ctx {
            user: auth.username.clone(),
            role: role_label(auth.role),
            csrf: auth.csrf.clone(),
            nav,
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub message: String,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub csrf: String,
    pub error: String,
    pub notice: String,
}

/// The second step of a login.
#[derive(Template)]
#[template(path = "login_verify.html")]
pub struct LoginVerifyPage {
    pub csrf: String,
    pub challenge: String,
    pub has_totp: bool,
    pub has_cert: bool,
    pub error: String,
}

/// The account holder's own second factors: TOTP enrolment, SM2 certificate.
#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage {
    pub ctx: Ctx,
    pub required: bool,
    pub totp_enabled: bool,
    pub recovery_left: usize,
    /// Administrators may register an SM2 certificate; vendors use TOTP.
    pub cert_allowed: bool,
    pub cert_subject: String,
    pub cert_not_after: String,
    /// `data:` URI of the QR code, and the Base32 secret (only while not enrolled).
    pub qr: String,
    pub secret: String,
    pub notice: String,
    pub error: String,
}

/// Recovery codes, shown once after an enrolment.
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage {
    pub ctx: Ctx,
    pub codes: Vec<String>,
    pub next: &'static str,
}

/// What the user typed, echoed back after a validation error (never the password).
#[derive(Default, serde::Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub org_name: String,
    #[serde(default)]
    pub uscc: String,
    #[serde(default)]
    pub legal_rep: String,
    #[serde(default)]
    pub contact_name: String,
    #[serde(default)]
    pub mobile: String,
    #[serde(default)]
    pub email: String,
}

#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage {
    pub csrf: String,
    pub form: RegisterForm,
    pub errors: FieldErrors,
    pub error: String,
}

#[derive(Template)]
#[template(path = "password.html")]
pub struct PasswordPage {
    pub ctx: Ctx,
    pub forced: bool,
    pub error: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub ctx: Ctx,
    pub notice: &'static str,
    /// The newest domain events from the audit log (shown to the auditor).
    pub recent: Vec<EventRow>,
    pub counts: Vec<(&'static str, usize)>,
    pub chart_svg: String,
    pub calls_24h: u64,
    pub errors_24h: u64,
    pub tls: Option<TlsView>,
    pub backup: BackupView,
}

/// The dashboard's backup card.
pub struct BackupView {
    /// The newest run's time, or `None` before the first backup.
    pub last: Option<String>,
    pub size: String,
    pub verified: &'static str,
    pub error: Option<String>,
    pub last_good: String,
    pub next: String,
}

impl BackupView {
    pub fn new(status: Option<&crate::store::backup::BackupStatus>, next_ms: Option<i64>) -> Self {
        let t = crate::time::format_time_ms;
        Self {
            last: status.map(|s| t(s.at_ms)),
            size: status.map_or(String::new(), |s| {
                format!("{:.1} MiB", s.bytes as f64 / 1048576.0)
            }),
            verified: match status.map(|s| (s.error.is_some(), s.verified)) {
                Some((true, _)) => "失败",
                Some((false, Some(true))) => "已校验通过",
                Some((false, Some(false))) => "校验失败",
                _ => "未校验（由命令行写出）",
            },
            error: status.and_then(|s| s.error.clone()),
            last_good: status.and_then(|s| s.last_good_ms).map_or("无".into(), t),
            next: next_ms.map_or("未启用定时备份（backup.schedule）".into(), t),
        }
    }
}

/// The dashboard's card of the serving TLS certificate.
pub struct TlsView {
    pub not_after: String,
    /// 剩余 N 天, 已过期, …
    pub remaining: String,
    /// `warn` within the alert window (14 days, as `packaging/hutong-alerts.yml`), else empty.
    pub class: &'static str,
}

impl TlsView {
    const WARN_DAYS: i64 = 14;

    pub fn new(not_after_ms: i64, now_ms: i64) -> Self {
        let days = (not_after_ms - now_ms).div_euclid(86_400_000);
        let (remaining, class) = if not_after_ms <= now_ms {
            (
                "已过期，请立即更换（hutong tls reload）".to_string(),
                "error",
            )
        } else if days < Self::WARN_DAYS {
            (format!("剩余 {days} 天，请尽快更换"), "warn")
        } else {
            (format!("剩余 {days} 天"), "")
        };
        Self {
            not_after: crate::time::format_time_ms(not_after_ms),
            remaining,
            class,
        }
    }
}

pub struct AppRow {
    pub username: String,
    pub org_name: String,
    pub uscc: String,
    pub legal_rep: String,
    pub contact: String,
    pub system_name: String,
    pub plat_name: String,
    pub vendor: String,
    pub callback_url: String,
    /// Subject and validity of the callback server's CA, when the vendor gave one.
    pub callback_ca: String,
    pub dest_host: String,
    pub key_fingerprint: String,
    pub state: &'static str,
    pub is_submitted: bool,
    pub reason: String,
    pub app_id: String,
    pub submitted: String,
    pub decided: String,
    pub pending_rotation: bool,
    /// A callback change awaiting an operator (filled in by the page that shows it).
    pub pending_callback: Option<CallbackChangeView>,
    /// Why the last callback change was refused; empty if it was not.
    pub callback_rejection: String,
    /// Other accounts registered with the same USCC (a possible duplicate registration).
    pub same_uscc: String,
}

/// The key's SM3 fingerprint over its SubjectPublicKeyInfo DER, in full, so a vendor can
/// compare it with `openssl dgst -sm3` of their own key (docs/console.md).
pub fn key_fingerprint(pem: &str) -> String {
    crate::crypto::sm::sm2_pem_fingerprint(pem).unwrap_or_else(|_| "（公钥无法解析）".into())
}

/// The contact person and mobile, masked as everywhere personal data is shown.
pub fn masked_contact(p: &VendorProfile) -> String {
    format!(
        "{} {}",
        codes::mask_name(&p.contact_name),
        codes::mask_mobile(&p.mobile)
    )
}

/// Subject and validity of a callback CA certificate; empty when there is none.
pub fn ca_summary(pem: Option<&str>) -> String {
    pem.and_then(crate::domain::systems::callback_ca_info)
        .map(|c| {
            format!(
                "{}（有效期至 {}）",
                c.subject,
                super::fmt_time(c.not_after_ms)
            )
        })
        .unwrap_or_default()
}

/// One setting of a callback change: (label, now, requested, whether it changes); empty
/// values are shown as 未填写 by the template.
pub struct CallbackChangeRow {
    pub label: &'static str,
    pub current: String,
    pub requested: String,
    pub changed: bool,
}

/// A pending callback change as the queue, the system page and the portal show it.
pub struct CallbackChangeView {
    pub username: String,
    pub requested_at: String,
    pub rows: Vec<CallbackChangeRow>,
}

impl CallbackChangeView {
    pub fn new(p: &crate::domain::onboarding::PendingCallback) -> Self {
        let (now, req) = (&p.current, &p.requested);
        let row = |label, current: String, requested: String| CallbackChangeRow {
            label,
            changed: current != requested,
            current,
            requested,
        };
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        CallbackChangeView {
            username: p.username.clone(),
            requested_at: fmt_time(p.requested_ms),
            rows: vec![
                row("回调地址", text(&now.callback_url), text(&req.callback_url)),
                row(
                    "回调服务 CA",
                    ca_summary(now.callback_ca_pem.as_deref()),
                    ca_summary(req.callback_ca_pem.as_deref()),
                ),
                row("destHost", text(&now.dest_host), text(&req.dest_host)),
            ],
        }
    }
}

impl AppRow {
    pub fn new(a: &Application, p: Option<&VendorProfile>) -> Self {
        AppRow {
            username: a.username.clone(),
            org_name: p.map(|p| p.org_name.clone()).unwrap_or_default(),
            uscc: p.map(|p| p.uscc.clone()).unwrap_or_default(),
            legal_rep: p
                .map(|p| codes::mask_name(&p.legal_rep))
                .unwrap_or_default(),
            contact: p.map(masked_contact).unwrap_or_default(),
            system_name: a.system_name.clone(),
            plat_name: a.plat_name.clone(),
            vendor: a.vendor.clone(),
            callback_url: a.callback_url.clone().unwrap_or_default(),
            callback_ca: ca_summary(a.callback_ca_pem.as_deref()),
            dest_host: a.dest_host.clone().unwrap_or_default(),
            key_fingerprint: key_fingerprint(&a.public_key_pem),
            state: a.state.label(),
            is_submitted: a.state == ApplicationState::Submitted,
            reason: a.reason.clone(),
            app_id: a.app_id.clone().unwrap_or_default(),
            submitted: fmt_time(a.submitted_ms),
            decided: a.decided_ms.map(fmt_time).unwrap_or_default(),
            pending_rotation: a.pending_key_pem.is_some(),
            pending_callback: None,
            callback_rejection: a.callback_rejection.clone().unwrap_or_default(),
            same_uscc: String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "applications.html")]
pub struct ApplicationsPage {
    pub ctx: Ctx,
    pub queue: Vec<AppRow>,
    pub others: Vec<AppRow>,
    /// The result of the act the page came back from.
    pub notice: &'static str,
}

/// An applicant's unmasked real-name data, shown after an audited request with a reason.
#[derive(Template)]
#[template(path = "reveal.html")]
pub struct RevealPage {
    pub ctx: Ctx,
    pub reason: String,
    pub username: String,
    pub org_name: String,
    pub uscc: String,
    pub legal_rep: String,
    pub contact_name: String,
    pub mobile: String,
    pub email: String,
}

/// An act that cannot be undone asks first, on a page of its own (no script): the form
/// posts what the list page would have posted.
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub ctx: Ctx,
    pub title: &'static str,
    pub question: String,
    pub details: Vec<String>,
    /// Where the confirmed form posts.
    pub action: String,
    pub hidden: Vec<(&'static str, String)>,
    /// A reason to give: (label, value typed so far).
    pub reason: Option<(&'static str, String)>,
    pub button: &'static str,
    pub danger: bool,
    pub back: String,
}

pub struct SystemRow {
    pub app_id: String,
    pub name: String,
    pub plat_name: String,
    pub vendor: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub created: String,
    /// The interop breaker is open: shown as 降级（熔断中）.
    pub degraded: bool,
}

#[derive(Template)]
#[template(path = "systems.html")]
pub struct SystemsPage {
    pub ctx: Ctx,
    pub rows: Vec<SystemRow>,
}

/// One event of a system's history: from the audit log (acts whose target is the system),
/// then the system record's own older state changes.
pub struct HistoryRow {
    pub at: String,
    pub action: String,
    pub actor: String,
    pub result: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "system.html")]
pub struct SystemPage {
    pub ctx: Ctx,
    pub notice: &'static str,
    pub sys: SystemRow,
    pub callback_url: String,
    pub callback_ca: String,
    pub dest_host: String,
    pub keys: Vec<String>,
    /// A callback change the vendor asked for, awaiting an operator.
    pub pending_callback: Option<CallbackChangeView>,
    pub history: Vec<HistoryRow>,
    /// (target state value, button label) the operator may choose now.
    pub transitions: Vec<(&'static str, &'static str)>,
    pub quota: Option<super::usage::QuotaView>,
    pub quota_form: super::usage::QuotaForm,
    pub quota_errors: FieldErrors,
    pub quota_error: String,
    /// Usage over the last 30 days.
    pub usage: super::usage::UsageSummary,
    /// The last failed callback in this process: (time, full reason).
    pub last_failure: Option<(String, String)>,
    /// The result of 测试回调, on the page that answers the button.
    pub check: Option<CheckView>,
    /// The operator's sections (callback test, quota, state); the security administrator
    /// sees the page without them.
    pub can_operate: bool,
    /// The security administrator's tenant destruction form.
    pub can_destroy: bool,
    /// The tenant was destroyed already.
    pub destroyed: bool,
}

/// A callback check as the system page and the portal show it.
pub struct CheckView {
    pub passed: bool,
    pub summary: String,
    /// (stage, passed, milliseconds, what was found or why it failed).
    pub rows: Vec<(&'static str, bool, u64, String)>,
}

impl CheckView {
    pub fn new(r: &crate::interop::check::CheckReport) -> Self {
        CheckView {
            passed: r.passed(),
            summary: r.summary(),
            rows: r
                .stages
                .iter()
                .map(|s| (s.stage.label(), s.ok, s.ms, s.note.clone()))
                .collect(),
        }
    }
}

/// The member's last failed callback as a page line: (time, reason).
pub fn last_failure(state: &crate::app::AppState, app_id: &str) -> Option<(String, String)> {
    state
        .interop
        .last_failure(app_id)
        .map(|f| (super::fmt_time(f.at_ms), f.detail))
}

pub struct AccountRow {
    pub username: String,
    pub role: &'static str,
    pub status: &'static str,
    pub created: String,
    pub is_self: bool,
    pub disabled: bool,
}

#[derive(Template)]
#[template(path = "accounts.html")]
pub struct AccountsPage {
    pub ctx: Ctx,
    pub rows: Vec<AccountRow>,
    /// A one-time password to hand over (after create or reset); shown once, never stored.
    pub issued: Option<(String, String)>,
    pub error: String,
    pub notice: &'static str,
}

#[derive(Template)]
#[template(path = "keys.html")]
pub struct KeysPage {
    pub ctx: Ctx,
    pub provider: String,
    pub module: String,
    pub slot: String,
    pub kek_id: String,
    pub created: String,
    pub last_used: String,
    pub cert_fingerprint: String,
    /// Every platform certificate, the current one first (`keys rotate platform`).
    pub certificates: Vec<CertRow>,
    /// KEKs a rotation retired and `--finish` has not destroyed yet.
    pub retired_keks: Vec<String>,
    /// Key operations from the audit log, newest first: creation, unwrap at each start,
    /// rotations, tenant keys destroyed, backups' keys.
    pub history: Vec<EventRow>,
}

pub struct CertRow {
    /// 当前 / 过渡期 / 已退役.
    pub status: &'static str,
    pub fingerprint: String,
    pub not_after: String,
    pub overlap_end: String,
}

pub struct EventRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub result: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "events.html")]
pub struct EventsPage {
    pub ctx: Ctx,
    pub rows: Vec<EventRow>,
}

#[derive(Default, serde::Deserialize)]
pub struct ApplyForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub system_name: String,
    #[serde(default)]
    pub plat_name: String,
    #[serde(default)]
    pub vendor: String,
    #[serde(default)]
    pub public_key_pem: String,
    #[serde(default)]
    pub callback_url: String,
    #[serde(default)]
    pub callback_ca_pem: String,
    #[serde(default)]
    pub dest_host: String,
}

#[derive(Template)]
#[template(path = "portal.html")]
pub struct PortalPage {
    pub ctx: Ctx,
    pub org_name: String,
    pub uscc: String,
    pub legal_rep: String,
    pub contact: String,
    pub email: String,
    pub app: Option<AppRow>,
    pub can_apply: bool,
    pub form: ApplyForm,
    pub errors: FieldErrors,
    pub error: String,
    pub notice: String,
    /// The vendor's system is in testing: the portal offers 测试回调.
    pub can_check_callback: bool,
    pub last_failure: Option<(String, String)>,
    pub check: Option<CheckView>,
    /// The callback change form, prefilled with the system's settings (or what was typed).
    pub callback_form: CallbackChangeForm,
    pub pending_callback: Option<CallbackChangeView>,
}

/// 变更回调配置 in the portal.
#[derive(Default, serde::Deserialize)]
pub struct CallbackChangeForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub callback_url: String,
    #[serde(default)]
    pub callback_ca_pem: String,
    #[serde(default)]
    pub dest_host: String,
}

#[derive(Template)]
#[template(path = "audit_search.html")]
pub struct AuditSearchPage {
    pub ctx: Ctx,
    pub form: super::audit::SearchForm,
    pub rows: Vec<super::audit::AuditRow>,
    /// The next page's link; empty on the last page.
    pub next_href: String,
    /// Why the page stopped early (too many entries examined).
    pub notice: String,
    pub error: String,
    /// The first seq kept (after pruning) and the log's size.
    pub first_seq: u64,
    pub size: u64,
}

/// Every SPEC §6.1 field of one entry (`null` shown as such), its leaf and proof in hex.
pub struct EntryView {
    pub seq: u64,
    pub at_ms: i64,
    pub at: String,
    pub kind: &'static str,
    pub action: String,
    pub actor_type: String,
    pub actor_id: String,
    pub actor_role: String,
    pub target: String,
    pub result: &'static str,
    pub code: String,
    pub request_id: String,
    pub client: String,
    pub latency_ms: String,
    pub params_digest: String,
    pub detail: String,
    pub leaf: String,
    pub leaf_hash: String,
    /// The latest checkpoint's tree size the proof is against (0: no proof).
    pub proof_size: u64,
    pub proof_root: String,
    pub signed_root: String,
    pub root_matches: bool,
    pub path: Vec<String>,
    pub checkpoint_text: String,
    pub checkpoint_signature: String,
    /// Why there is no proof.
    pub proof_note: String,
}

#[derive(Template)]
#[template(path = "audit_entry.html")]
pub struct AuditEntryPage {
    pub ctx: Ctx,
    pub e: EntryView,
}

#[derive(Template)]
#[template(path = "audit_verify.html")]
pub struct AuditVerifyPage {
    pub ctx: Ctx,
    pub ran: bool,
    pub report: Option<crate::audit::export::Report>,
    pub first_seq: u64,
}

#[cfg(test)]
mod tests {
    use super::TlsView;

    const DAY: i64 = 86_400_000;

    #[test]
    fn the_certificate_card_warns_inside_the_alert_window_and_once_expired() {
        let now = 1_800_000_000_000;
        let far = TlsView::new(now + 90 * DAY + 5, now);
        assert_eq!((far.remaining.as_str(), far.class), ("剩余 90 天", ""));
        let near = TlsView::new(now + 13 * DAY + 5, now);
        assert_eq!(
            (near.remaining.as_str(), near.class),
            ("剩余 13 天，请尽快更换", "warn")
        );
        let gone = TlsView::new(now - 1, now);
        assert_eq!(gone.class, "error");
        assert!(gone.remaining.starts_with("已过期"));
    }
}
