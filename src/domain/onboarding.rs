//! Onboarding (SPEC §1): vendor registration with real-name data, the application
//! `draft → submitted → rejected | approved`, approval creating the system in testing state,
//! and key-rotation requests. Free of HTTP; validation errors name the form field they belong to
//! so the portal can show them next to it.

use super::DomainError;
use super::accounts;
use super::audit;
use super::audit_event::{Action, Actor, Outcome};
use super::codes;
use super::systems::{self, NewSystem};
use crate::domain::vocab::Role;
use crate::domain::vocab::{ApplicationState, SystemState};
use crate::store::applications::{Application, CallbackChange, VendorProfile};
use crate::store::systems::SystemRecord;
use crate::store::{Store, StoreError};
use crate::time::now_ms;

/// Field-level validation errors: (form field name, message in Chinese).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(&'static str, String)>);

impl FieldErrors {
    fn add(&mut self, field: &'static str, msg: impl Into<String>) {
        self.0.push((field, msg.into()));
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug)]
pub enum OnboardingError {
    Fields(FieldErrors),
    Domain(DomainError),
}

impl From<DomainError> for OnboardingError {
    fn from(e: DomainError) -> Self {
        OnboardingError::Domain(e)
    }
}

impl From<StoreError> for OnboardingError {
    fn from(e: StoreError) -> Self {
        OnboardingError::Domain(e.into())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub username: String,
    pub password: String,
    pub org_name: String,
    pub uscc: String,
    pub legal_rep: String,
    pub contact_name: String,
    pub mobile: String,
    pub email: String,
}

fn required(errs: &mut FieldErrors, field: &'static str, label: &str, v: &str, max: usize) {
    let n = v.trim().chars().count();
    if n == 0 {
        errs.add(field, format!("请填写{label}"));
    } else if n > max {
        errs.add(field, format!("{label}不能超过 {max} 个字"));
    }
}

fn plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Writes `new` in place of `old` (compare-and-swap); another change in between is a
/// conflict the person sees as `conflict`.
fn swap(
    store: &Store,
    old: Option<&Application>,
    new: &Application,
    conflict: &str,
) -> Result<(), DomainError> {
    store.swap_application(old, new).map_err(|e| match e {
        StoreError::Conflict => DomainError::Conflict(conflict.into()),
        other => other.into(),
    })
}

/// Registers a vendor account with its real-name data.
pub fn register_vendor(
    store: &Store,
    provider: &dyn crate::keys::KeyProvider,
    r: &Registration,
) -> Result<(), OnboardingError> {
    let mut errs = FieldErrors::default();
    required(&mut errs, "org_name", "单位名称", &r.org_name, 128);
    required(&mut errs, "legal_rep", "法定代表人", &r.legal_rep, 64);
    required(&mut errs, "contact_name", "联系人", &r.contact_name, 64);
    let uscc = match codes::normalize_uscc(&r.uscc) {
        Ok(u) => u,
        Err(why) => {
            errs.add("uscc", why);
            String::new()
        }
    };
    if !codes::is_valid_mobile(r.mobile.trim()) {
        errs.add("mobile", "手机号须为 1 开头的 11 位数字");
    }
    if !plausible_email(r.email.trim()) {
        errs.add("email", "电子邮箱格式不正确");
    }
    if let Err(DomainError::Invalid(m)) = accounts::check_password_policy(&r.password) {
        errs.add("password", m);
    }
    if !errs.is_empty() {
        return Err(OnboardingError::Fields(errs));
    }
    match accounts::create_account(
        store,
        r.username.trim(),
        Role::Vendor,
        &r.password,
        false,
        &Actor::account(r.username.trim(), Role::Vendor),
    ) {
        Ok(_) => {}
        Err(DomainError::Invalid(m)) => {
            errs.add("username", m);
            return Err(OnboardingError::Fields(errs));
        }
        Err(DomainError::Conflict(_)) => {
            errs.add("username", "该用户名已被注册");
            return Err(OnboardingError::Fields(errs));
        }
        Err(e) => return Err(e.into()),
    }
    store.put_vendor_profile(
        provider,
        &VendorProfile {
            username: r.username.trim().to_string(),
            org_name: r.org_name.trim().to_string(),
            uscc,
            legal_rep: r.legal_rep.trim().to_string(),
            contact_name: r.contact_name.trim().to_string(),
            mobile: r.mobile.trim().to_string(),
            email: r.email.trim().to_string(),
            created_ms: now_ms(),
        },
    )?;
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct ApplicationForm {
    pub system_name: String,
    pub plat_name: String,
    pub vendor: String,
    pub public_key_pem: String,
    pub callback_url: String,
    pub callback_ca_pem: String,
    pub dest_host: String,
}

fn optional_https(
    errs: &mut FieldErrors,
    field: &'static str,
    label: &str,
    v: &str,
) -> Option<String> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    if !v.starts_with("https://") || v.len() > 512 || v.chars().any(char::is_whitespace) {
        errs.add(field, format!("{label}须为 https:// 开头的地址"));
    }
    Some(v.to_string())
}

/// A system's callback settings: what its application gives at onboarding and what the
/// vendor may ask to change after approval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackSettings {
    pub callback_url: Option<String>,
    /// Normalised PEM CA certificate of the callback server.
    pub callback_ca_pem: Option<String>,
    pub dest_host: Option<String>,
}

impl CallbackSettings {
    pub fn of_system(s: &SystemRecord) -> Self {
        CallbackSettings {
            callback_url: s.callback_url.clone(),
            callback_ca_pem: s.callback_ca_pem.clone(),
            dest_host: s.dest_host.clone(),
        }
    }

    fn of_change(c: &CallbackChange) -> Self {
        CallbackSettings {
            callback_url: c.callback_url.clone(),
            callback_ca_pem: c.callback_ca_pem.clone(),
            dest_host: c.dest_host.clone(),
        }
    }

    /// The settings as an audit detail reads them (the CA by its subject).
    fn describe(&self) -> String {
        let or_unset = |v: &Option<String>| v.clone().unwrap_or_else(|| "未填写".into());
        let ca = self.callback_ca_pem.as_deref().map(|pem| {
            systems::callback_ca_info(pem).map_or_else(|| "（无法解析）".into(), |c| c.subject)
        });
        format!(
            "回调地址：{}；回调 CA：{}；destHost：{}",
            or_unset(&self.callback_url),
            or_unset(&ca),
            or_unset(&self.dest_host)
        )
    }
}

/// Validates the callback fields of a form (the application's, or a change request's) the
/// same way wherever they are entered; each fault is added under its form field.
fn callback_settings(
    errs: &mut FieldErrors,
    callback_url: &str,
    callback_ca_pem: &str,
    dest_host: &str,
) -> CallbackSettings {
    let callback_url = optional_https(errs, "callback_url", "回调地址", callback_url);
    let callback_ca_pem = match callback_ca_pem.trim() {
        "" => None,
        pem => match systems::normalise_ca_pem(pem) {
            Ok(p) => Some(p),
            Err(e) => {
                errs.add("callback_ca_pem", e.to_string());
                None
            }
        },
    };
    let dest_host = optional_https(errs, "dest_host", "客户端请求地址（destHost）", dest_host);
    CallbackSettings {
        callback_url,
        callback_ca_pem,
        dest_host,
    }
}

/// Submits (or, after a rejection, resubmits) the vendor's application, recorded as
/// `onboarding.submit` whether accepted or refused.
pub fn submit_application(
    store: &Store,
    username: &str,
    f: &ApplicationForm,
) -> Result<Application, OnboardingError> {
    let actor = Actor::account(username, Role::Vendor);
    let res = submit(store, username, f);
    audited_form(
        store,
        &actor,
        Action::OnboardingSubmit,
        username,
        res,
        |app| (username.to_string(), app.system_name.clone()),
    )
}

/// Records a form's act: on success `ok(&value)` gives the target and detail; refused fields
/// are named (not their values) on `target`, a refused rule with its message.
fn audited_form<T>(
    store: &Store,
    actor: &Actor,
    action: Action,
    target: &str,
    res: Result<T, OnboardingError>,
    ok: impl FnOnce(&T) -> (String, String),
) -> Result<T, OnboardingError> {
    match res {
        Ok(v) => {
            let (target, detail) = ok(&v);
            audit::record(store, actor, action, Outcome::Ok, &target, detail)?;
            Ok(v)
        }
        Err(OnboardingError::Fields(errs)) => {
            let fields = errs
                .0
                .iter()
                .map(|(field, _)| *field)
                .collect::<Vec<_>>()
                .join(",");
            let detail = format!("字段无效: {fields}");
            audit::note(store, actor, action, Outcome::Failed, target, detail);
            Err(OnboardingError::Fields(errs))
        }
        Err(OnboardingError::Domain(e)) => Err(OnboardingError::Domain(audit::failed(
            store, actor, action, target, e,
        ))),
    }
}

fn submit(
    store: &Store,
    username: &str,
    f: &ApplicationForm,
) -> Result<Application, OnboardingError> {
    let mut errs = FieldErrors::default();
    required(&mut errs, "system_name", "系统名称", &f.system_name, 128);
    required(
        &mut errs,
        "plat_name",
        "平台显示名称（platName）",
        &f.plat_name,
        128,
    );
    required(&mut errs, "vendor", "厂商", &f.vendor, 128);
    let key = match systems::normalise_public_key(&f.public_key_pem) {
        Ok(k) => k,
        Err(e) => {
            errs.add("public_key_pem", e.to_string());
            String::new()
        }
    };
    let CallbackSettings {
        callback_url,
        callback_ca_pem,
        dest_host,
    } = callback_settings(&mut errs, &f.callback_url, &f.callback_ca_pem, &f.dest_host);
    if !errs.is_empty() {
        return Err(OnboardingError::Fields(errs));
    }
    let old = store.get_application(username)?;
    if let Some(o) = &old
        && matches!(
            o.state,
            ApplicationState::Submitted | ApplicationState::Approved
        )
    {
        return Err(DomainError::Conflict(format!(
            "申请当前状态为「{}」，不能重复提交",
            o.state.label()
        ))
        .into());
    }
    let app = Application {
        username: username.to_string(),
        system_name: f.system_name.trim().to_string(),
        plat_name: f.plat_name.trim().to_string(),
        vendor: f.vendor.trim().to_string(),
        public_key_pem: key,
        callback_url,
        callback_ca_pem,
        dest_host,
        state: ApplicationState::Submitted,
        reason: String::new(),
        app_id: None,
        submitted_ms: now_ms(),
        decided_ms: None,
        decided_by: None,
        pending_key_pem: None,
        pending_callback: None,
        callback_rejection: None,
    };
    swap(store, old.as_ref(), &app, "申请已被修改，请刷新后重试")?;
    Ok(app)
}

fn submitted(store: &Store, username: &str) -> Result<Application, DomainError> {
    let app = store
        .get_application(username)?
        .ok_or_else(|| DomainError::NotFound(format!("申请 {username} 不存在")))?;
    if app.state != ApplicationState::Submitted {
        return Err(DomainError::Conflict(format!(
            "申请状态为「{}」，只能审核待审核的申请",
            app.state.label()
        )));
    }
    Ok(app)
}

/// A vendor's real-name data as the console shows it; `None` when there is none, and also
/// when its system's tenant was destroyed: the personal fields are gone for good, the
/// account and its application stay listed.
pub fn vendor_profile(
    store: &Store,
    provider: &dyn crate::keys::KeyProvider,
    username: &str,
) -> Result<Option<VendorProfile>, DomainError> {
    match store.get_vendor_profile(provider, username) {
        Ok(p) => Ok(p),
        Err(StoreError::TenantDestroyed(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// An applicant's real-name data unmasked for the operator deciding on it, with the reason
/// given; recorded as `onboarding.reveal` before anything is shown (if the entry cannot be
/// written, nothing is revealed).
pub fn reveal_profile(
    store: &Store,
    provider: &dyn crate::keys::KeyProvider,
    username: &str,
    reason: &str,
    actor: &Actor,
) -> Result<VendorProfile, DomainError> {
    let reveal = || {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(DomainError::Invalid("必须填写查看原因".into()));
        }
        let profile = vendor_profile(store, provider, username)?
            .ok_or_else(|| DomainError::NotFound(format!("申请人 {username} 没有实名信息")))?;
        audit::record(
            store,
            actor,
            Action::OnboardingReveal,
            super::audit_event::Outcome::Ok,
            username,
            format!("原因: {}", reason.chars().take(200).collect::<String>()),
        )?;
        Ok(profile)
    };
    reveal().map_err(|e| audit::failed(store, actor, Action::OnboardingReveal, username, e))
}

/// Approves: creates the system in testing state and records its appId on the application;
/// recorded as `onboarding.approve` naming the new appId.
pub fn approve(store: &Store, username: &str, actor: &Actor) -> Result<Application, DomainError> {
    approve_application(store, username, actor)
        .map_err(|e| audit::failed(store, actor, Action::OnboardingApprove, username, e))
}

/// The approval's entry is written with the new system: if it cannot be, no system exists
/// and the application goes back to the queue.
fn approve_application(
    store: &Store,
    username: &str,
    by: &Actor,
) -> Result<Application, DomainError> {
    let actor = by.id.as_str();
    let old = submitted(store, username)?;
    let mut new = old.clone();
    // Claim the application first so a concurrent approval cannot create a second system.
    new.state = ApplicationState::Approved;
    new.decided_ms = Some(now_ms());
    new.decided_by = Some(actor.to_string());
    swap(store, Some(&old), &new, "申请已被他人处理，请刷新")?;
    let created = systems::create_system(
        store,
        NewSystem {
            name: old.system_name.clone(),
            plat_name: old.plat_name.clone(),
            vendor: Some(old.vendor.clone()),
            public_key_pem: old.public_key_pem.clone(),
            callback_url: old.callback_url.clone(),
            callback_ca_pem: old.callback_ca_pem.clone(),
            dest_host: old.dest_host.clone(),
            state: None,
        },
        actor,
        &|r| audit::entry(by, Action::OnboardingApprove, username, r.app_id.clone()),
    );
    let sys = match created {
        Ok(s) => s,
        Err(e) => {
            // Put the application back in the queue; the operator sees why.
            let _ = store.swap_application(Some(&new), &old);
            return Err(e);
        }
    };
    let claimed = new.clone();
    new.app_id = Some(sys.app_id.clone());
    store.swap_application(Some(&claimed), &new)?;
    Ok(new)
}

/// Rejects with a reason the applicant sees; recorded as `onboarding.reject`.
pub fn reject(
    store: &Store,
    username: &str,
    reason: &str,
    actor: &Actor,
) -> Result<Application, DomainError> {
    let res = reject_application(store, username, reason, &actor.id);
    audit::audited(store, actor, Action::OnboardingReject, username, res, |a| {
        (username.to_string(), a.reason.clone())
    })
}

/// A rejection's reason, which the applicant sees: required, at most 500 characters.
fn rejection_reason(reason: &str) -> Result<&str, DomainError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(DomainError::Invalid(
            "驳回必须填写原因（不超过 500 字）".into(),
        ));
    }
    Ok(reason)
}

fn reject_application(
    store: &Store,
    username: &str,
    reason: &str,
    actor: &str,
) -> Result<Application, DomainError> {
    let reason = rejection_reason(reason)?;
    let old = submitted(store, username)?;
    let mut new = old.clone();
    new.state = ApplicationState::Rejected;
    new.reason = reason.to_string();
    new.decided_ms = Some(now_ms());
    new.decided_by = Some(actor.to_string());
    swap(store, Some(&old), &new, "申请已被他人处理，请刷新")?;
    Ok(new)
}

/// A vendor checks its own system's callback, which the portal offers while the system is in
/// `testing` (online systems are checked by the operator); recorded as
/// `system.check_callback` like the operator's check. Blocking: it talks to the member.
pub fn vendor_check_callback(
    store: &Store,
    keys: &crate::keys::Keyring,
    username: &str,
    timeout: std::time::Duration,
) -> Result<crate::interop::check::CheckReport, DomainError> {
    let actor = Actor::account(username, Role::Vendor);
    let app_id = store
        .get_application(username)?
        .and_then(|a| a.app_id)
        .ok_or_else(|| DomainError::NotFound("申请通过后才能测试回调".into()));
    let testing = app_id.and_then(|id| match store.get_system(&id)? {
        Some(s) if s.state == SystemState::Testing => Ok(id),
        _ => Err(DomainError::Conflict(
            "只有测试状态的系统可以在门户中测试回调；已上线的系统请联系平台运营方".into(),
        )),
    });
    match testing {
        Ok(id) => systems::check_callback(store, keys, &id, &actor, timeout),
        Err(e) => Err(audit::failed(
            store,
            &actor,
            Action::SystemCheckCallback,
            username,
            e,
        )),
    }
}

/// A vendor with an approved system asks to rotate to a new SM2 key; recorded as
/// `key.rotation_request`.
pub fn request_rotation(store: &Store, username: &str, pem: &str) -> Result<(), DomainError> {
    let res = store_rotation_request(store, username, pem);
    let actor = Actor::account(username, Role::Vendor);
    audit::audited(
        store,
        &actor,
        Action::KeyRotationRequest,
        username,
        res,
        |()| (username.to_string(), String::new()),
    )
}

fn store_rotation_request(store: &Store, username: &str, pem: &str) -> Result<(), DomainError> {
    let key = systems::normalise_public_key(pem)
        .map_err(|e| DomainError::Invalid(format!("新公钥：{e}")))?;
    let old = store
        .get_application(username)?
        .ok_or_else(|| DomainError::NotFound("尚未提交入驻申请".into()))?;
    if old.app_id.is_none() {
        return Err(DomainError::Conflict("申请通过后才能轮换密钥".into()));
    }
    let mut new = old.clone();
    new.pending_key_pem = Some(key);
    swap(store, Some(&old), &new, "申请已被修改，请刷新后重试")?;
    Ok(())
}

/// An operator accepts a rotation: the new key joins the system's keys, and only the newest
/// previous key stays valid beside it (at most two at once, SPEC §1). Recorded as
/// `key.rotation_approve` on the system.
pub fn approve_rotation(store: &Store, username: &str, actor: &Actor) -> Result<(), DomainError> {
    rotate_key(store, username, actor)
        .map_err(|e| audit::failed(store, actor, Action::KeyRotationApprove, username, e))
}

/// Puts the pending key in place, written with the act's entry.
fn rotate_key(store: &Store, username: &str, actor: &Actor) -> Result<(), DomainError> {
    let app = store
        .get_application(username)?
        .ok_or_else(|| DomainError::NotFound(format!("申请 {username} 不存在")))?;
    let (Some(app_id), Some(key)) = (app.app_id.clone(), app.pending_key_pem.clone()) else {
        return Err(DomainError::Conflict("没有待处理的密钥轮换请求".into()));
    };
    loop {
        let old = store
            .get_system(&app_id)?
            .ok_or_else(|| DomainError::NotFound(format!("系统 {app_id} 不存在")))?;
        let mut new = old.clone();
        let previous = old.public_keys.last().cloned();
        new.public_keys = previous.into_iter().chain([key.clone()]).collect();
        let entry = audit::entry(actor, Action::KeyRotationApprove, &app_id, username);
        match store.update_system(&old, &new, Some(&entry)) {
            Ok(()) => break,
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let mut done = app.clone();
    done.pending_key_pem = None;
    store.swap_application(Some(&app), &done)?;
    Ok(())
}

/// The form of a callback change request: the settings as they are to be.
#[derive(Debug, Clone, Default)]
pub struct CallbackForm {
    pub callback_url: String,
    pub callback_ca_pem: String,
    pub dest_host: String,
}

/// A callback change awaiting an operator: the system's settings now and as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCallback {
    pub username: String,
    pub app_id: String,
    pub current: CallbackSettings,
    pub requested: CallbackSettings,
    pub requested_ms: i64,
}

/// What a system's acts name as their target: its appId once approved, before that the
/// vendor's username (so every callback change entry is in the system's history).
fn system_target(store: &Store, username: &str) -> String {
    store
        .get_application(username)
        .ok()
        .flatten()
        .and_then(|a| a.app_id)
        .unwrap_or_else(|| username.to_string())
}

/// A vendor with an approved system asks to change its callback URL, callback CA and
/// destHost; the fields are validated as at onboarding and kept on the application until an
/// operator decides (a new request replaces one still pending). Recorded as
/// `system.callback_change_request` on the system.
pub fn request_callback_change(
    store: &Store,
    username: &str,
    f: &CallbackForm,
    actor: &Actor,
) -> Result<(), OnboardingError> {
    let target = system_target(store, username);
    let res = store_callback_request(store, username, f);
    audited_form(
        store,
        actor,
        Action::SystemCallbackChangeRequest,
        &target,
        res,
        |requested| (target.clone(), requested.describe()),
    )
    .map(drop)
}

fn store_callback_request(
    store: &Store,
    username: &str,
    f: &CallbackForm,
) -> Result<CallbackSettings, OnboardingError> {
    let mut errs = FieldErrors::default();
    let requested = callback_settings(&mut errs, &f.callback_url, &f.callback_ca_pem, &f.dest_host);
    if !errs.is_empty() {
        return Err(OnboardingError::Fields(errs));
    }
    let old = store
        .get_application(username)?
        .ok_or_else(|| DomainError::NotFound("尚未提交入驻申请".into()))?;
    let Some(app_id) = old.app_id.clone() else {
        return Err(DomainError::Conflict("入驻申请通过后才能变更回调配置".into()).into());
    };
    let sys = store
        .get_system(&app_id)?
        .ok_or_else(|| DomainError::NotFound(format!("系统 {app_id} 不存在")))?;
    if CallbackSettings::of_system(&sys) == requested {
        return Err(DomainError::Invalid("新的回调配置与当前配置相同，无需变更".into()).into());
    }
    let mut new = old.clone();
    new.pending_callback = Some(CallbackChange {
        callback_url: requested.callback_url.clone(),
        callback_ca_pem: requested.callback_ca_pem.clone(),
        dest_host: requested.dest_host.clone(),
        requested_ms: now_ms(),
    });
    new.callback_rejection = None;
    swap(store, Some(&old), &new, "申请已被修改，请刷新后重试")?;
    Ok(requested)
}

/// The callback change `username` asked for, with the system's settings now; `None` when
/// nothing is pending.
pub fn pending_callback(
    store: &Store,
    username: &str,
) -> Result<Option<PendingCallback>, DomainError> {
    match store.get_application(username)? {
        Some(app) => pending_of(store, &app),
        None => Ok(None),
    }
}

/// The callback change pending for the system `app_id`, if any.
pub fn pending_callback_of_system(
    store: &Store,
    app_id: &str,
) -> Result<Option<PendingCallback>, DomainError> {
    let app = store
        .list_applications()?
        .into_iter()
        .find(|a| a.app_id.as_deref() == Some(app_id));
    match app {
        Some(app) => pending_of(store, &app),
        None => Ok(None),
    }
}

fn pending_of(store: &Store, app: &Application) -> Result<Option<PendingCallback>, DomainError> {
    let (Some(app_id), Some(change)) = (&app.app_id, &app.pending_callback) else {
        return Ok(None);
    };
    let current = store
        .get_system(app_id)?
        .map(|s| CallbackSettings::of_system(&s))
        .unwrap_or_default();
    Ok(Some(PendingCallback {
        username: app.username.clone(),
        app_id: app_id.clone(),
        current,
        requested: CallbackSettings::of_change(change),
        requested_ms: change.requested_ms,
    }))
}

/// An operator applies the pending callback change to the system, written with its
/// `system.callback_change_approve` entry. The outbound client reads the system record on
/// every call and keys its TLS clients by the CA, so the next callback uses the new settings.
/// Returns the system's appId.
pub fn approve_callback_change(
    store: &Store,
    username: &str,
    actor: &Actor,
) -> Result<String, DomainError> {
    let action = Action::SystemCallbackChangeApprove;
    apply_callback_change(store, username, actor)
        .map_err(|e| audit::failed(store, actor, action, &system_target(store, username), e))
}

fn apply_callback_change(
    store: &Store,
    username: &str,
    actor: &Actor,
) -> Result<String, DomainError> {
    let app = store
        .get_application(username)?
        .ok_or_else(|| DomainError::NotFound(format!("申请 {username} 不存在")))?;
    let (Some(app_id), Some(change)) = (app.app_id.clone(), app.pending_callback.clone()) else {
        return Err(DomainError::Conflict("没有待处理的回调配置变更".into()));
    };
    // Claim the request first: a vendor replacing it meanwhile, or a second operator, makes
    // this approval fail instead of applying something nobody saw.
    let mut claimed = app.clone();
    claimed.pending_callback = None;
    store
        .swap_application(Some(&app), &claimed)
        .map_err(|e| match e {
            StoreError::Conflict => {
                DomainError::Conflict("变更请求已被修改或已被他人处理，请刷新".into())
            }
            other => other.into(),
        })?;
    let requested = CallbackSettings::of_change(&change);
    let applied = loop {
        let old = match store.get_system(&app_id)? {
            Some(s) => s,
            None => break Err(DomainError::NotFound(format!("系统 {app_id} 不存在"))),
        };
        if store.is_tenant_destroyed(&app_id)? {
            break Err(DomainError::Conflict(format!(
                "系统 {app_id} 的租户数据已销毁，回调配置不能再变更"
            )));
        }
        let mut new = old.clone();
        new.callback_url = requested.callback_url.clone();
        new.callback_ca_pem = requested.callback_ca_pem.clone();
        new.dest_host = requested.dest_host.clone();
        let entry = audit::entry(
            actor,
            Action::SystemCallbackChangeApprove,
            &app_id,
            requested.describe(),
        );
        match store.update_system(&old, &new, Some(&entry)) {
            Ok(()) => break Ok(app_id),
            Err(StoreError::Conflict) => continue,
            Err(e) => break Err(e.into()),
        }
    };
    if applied.is_err() {
        // Nothing changed: the request goes back to the queue; the operator sees why.
        let _ = store.swap_application(Some(&claimed), &app);
    }
    applied
}

/// An operator refuses the pending callback change with a reason the vendor sees; the
/// system keeps its settings. Recorded as `system.callback_change_reject`.
pub fn reject_callback_change(
    store: &Store,
    username: &str,
    reason: &str,
    actor: &Actor,
) -> Result<(), DomainError> {
    let target = system_target(store, username);
    let res = refuse_callback_change(store, username, reason);
    audit::audited(
        store,
        actor,
        Action::SystemCallbackChangeReject,
        &target,
        res,
        |reason| (target.clone(), reason.clone()),
    )
    .map(drop)
}

fn refuse_callback_change(
    store: &Store,
    username: &str,
    reason: &str,
) -> Result<String, DomainError> {
    let reason = rejection_reason(reason)?;
    let old = store
        .get_application(username)?
        .ok_or_else(|| DomainError::NotFound(format!("申请 {username} 不存在")))?;
    if old.pending_callback.is_none() {
        return Err(DomainError::Conflict("没有待处理的回调配置变更".into()));
    }
    let mut new = old.clone();
    new.pending_callback = None;
    new.callback_rejection = Some(reason.to_string());
    store
        .swap_application(Some(&old), &new)
        .map_err(|e| match e {
            StoreError::Conflict => {
                DomainError::Conflict("变更请求已被修改或已被他人处理，请刷新".into())
            }
            other => other.into(),
        })?;
    Ok(reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sm::{self, Sm2KeyPair};

    pub(crate) const USCC: &str = "91350100M000100Y43";

    fn registration() -> Registration {
        Registration {
            username: "vendor1".into(),
            password: "Vendor-Pass-123".into(),
            org_name: "某某科技有限公司".into(),
            uscc: USCC.into(),
            legal_rep: "张三".into(),
            contact_name: "李四".into(),
            mobile: "13812345678".into(),
            email: "ops@example.cn".into(),
        }
    }

    fn form() -> ApplicationForm {
        ApplicationForm {
            system_name: "某某印章系统".into(),
            plat_name: "某某平台".into(),
            vendor: "某某科技".into(),
            public_key_pem: sm::sm2_public_key_to_pem(&Sm2KeyPair::generate().public_key()),
            ..Default::default()
        }
    }

    fn provider(dir: &std::path::Path) -> crate::keys::file::FileProvider {
        crate::keys::file::FileProvider::create(&dir.join("kek")).unwrap()
    }

    #[test]
    fn registration_reports_each_bad_field() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let kp = provider(dir.path());
        let mut r = registration();
        r.uscc = "91350100M000100Y44".into();
        r.mobile = "2381234567".into();
        r.email = "nope".into();
        r.password = "short".into();
        let Err(OnboardingError::Fields(f)) = register_vendor(&store, &kp, &r) else {
            panic!("expected field errors");
        };
        for field in ["uscc", "mobile", "email", "password"] {
            assert!(f.get(field).is_some(), "{field}: {f:?}");
        }
        assert!(store.get_account("vendor1").unwrap().is_none());
        register_vendor(&store, &kp, &registration()).unwrap();
        let Err(OnboardingError::Fields(f)) = register_vendor(&store, &kp, &registration()) else {
            panic!("duplicate accepted");
        };
        assert!(f.get("username").is_some());
    }

    #[test]
    fn personal_fields_of_a_vendor_are_sealed_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let kp = provider(dir.path());
        register_vendor(&store, &kp, &registration()).unwrap();
        store
            .snapshot(|space, _, v| {
                let raw = String::from_utf8_lossy(v);
                for secret in ["13812345678", "张三", "李四", "ops@example.cn"] {
                    assert!(!raw.contains(secret), "{secret} in clear in {space}: {raw}");
                }
                Ok(())
            })
            .unwrap();
        let p = store.get_vendor_profile(&kp, "vendor1").unwrap().unwrap();
        assert_eq!(
            (p.mobile.as_str(), p.legal_rep.as_str()),
            ("13812345678", "张三")
        );
        // Without the vendor's data key the fields cannot be read.
        assert!(crate::keys::KeyProvider::destroy_tenant_key(&kp, "vendor:vendor1").unwrap());
        store.clear_data_key_cache();
        assert!(matches!(
            store.get_vendor_profile(&kp, "vendor1"),
            Err(crate::store::StoreError::TenantDestroyed(_))
        ));
    }

    #[test]
    fn reject_then_resubmit_then_approve_creates_a_testing_system() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        register_vendor(&store, &provider(dir.path()), &registration()).unwrap();
        let mut bad = form();
        bad.public_key_pem = "garbage".into();
        bad.callback_url = "http://x".into();
        let Err(OnboardingError::Fields(f)) = submit_application(&store, "vendor1", &bad) else {
            panic!("bad key accepted");
        };
        assert!(f.get("public_key_pem").is_some() && f.get("callback_url").is_some());
        let mut bad_ca = form();
        bad_ca.callback_ca_pem =
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----".into();
        let Err(OnboardingError::Fields(f)) = submit_application(&store, "vendor1", &bad_ca) else {
            panic!("bad callback CA accepted");
        };
        assert!(f.get("callback_ca_pem").is_some());
        let ca_key = Sm2KeyPair::generate();
        let spec = crate::crypto::certgen::CertSpec {
            common_name: "Member test CA".into(),
            organization: None,
            not_before_ms: now_ms() - 1000,
            not_after_ms: now_ms() + 86_400_000,
            is_ca: true,
            serial: None,
        };
        let ca_der = crate::crypto::certgen::self_signed_sm2(&spec, &ca_key).unwrap();
        let mut with_ca = form();
        with_ca.callback_ca_pem = format!(
            "CA of our callback server\n{}",
            sm::pem_encode("CERTIFICATE", &ca_der)
        );
        submit_application(&store, "vendor1", &with_ca).unwrap();
        assert!(submit_application(&store, "vendor1", &form()).is_err());
        assert!(reject(&store, "vendor1", "  ", &Actor::cli()).is_err());
        let r = reject(&store, "vendor1", "公钥与证书不符", &Actor::cli()).unwrap();
        assert_eq!(r.state, ApplicationState::Rejected);
        submit_application(&store, "vendor1", &with_ca).unwrap();
        let a = approve(&store, "vendor1", &Actor::cli()).unwrap();
        let app_id = a.app_id.unwrap();
        // The approval is one act with one event naming the new system; no separate system.add.
        let events = store.recent_events(100).unwrap();
        let approvals: Vec<_> = events
            .iter()
            .filter(|e| e.action == Action::OnboardingApprove)
            .collect();
        assert_eq!(approvals.len(), 1);
        assert_eq!(approvals[0].detail.as_str(), app_id);
        assert!(!events.iter().any(|e| e.action == Action::SystemAdd));
        // Two refused submissions, then two accepted, each one event.
        let submits = |o: Outcome| {
            events
                .iter()
                .filter(|e| e.action == Action::OnboardingSubmit && e.outcome == o)
                .count()
        };
        assert_eq!((submits(Outcome::Failed), submits(Outcome::Ok)), (3, 2));
        let sys = store.get_system(&app_id).unwrap().unwrap();
        assert_eq!(sys.state, crate::domain::vocab::SystemState::Testing);
        // The callback CA given at onboarding is what the platform trusts for this member.
        let ca_pem = sys.callback_ca_pem.as_deref().expect("callback CA kept");
        assert_eq!(sm::pem_decode(ca_pem).unwrap().1, ca_der);
        assert!(
            approve(&store, "vendor1", &Actor::cli()).is_err(),
            "approved twice"
        );

        let k2 = sm::sm2_public_key_to_pem(&Sm2KeyPair::generate().public_key());
        request_rotation(&store, "vendor1", &k2).unwrap();
        approve_rotation(&store, "vendor1", &Actor::cli()).unwrap();
        let k3 = sm::sm2_public_key_to_pem(&Sm2KeyPair::generate().public_key());
        request_rotation(&store, "vendor1", &k3).unwrap();
        approve_rotation(&store, "vendor1", &Actor::cli()).unwrap();
        let sys = store.get_system(&app_id).unwrap().unwrap();
        assert_eq!(
            sys.public_keys,
            vec![k2, k3],
            "at most two keys, newest last"
        );
    }

    fn ca_pem(cn: &str) -> String {
        let spec = crate::crypto::certgen::CertSpec {
            common_name: cn.into(),
            organization: None,
            not_before_ms: now_ms() - 1000,
            not_after_ms: now_ms() + 86_400_000,
            is_ca: true,
            serial: None,
        };
        let der = crate::crypto::certgen::self_signed_sm2(&spec, &Sm2KeyPair::generate()).unwrap();
        sm::pem_encode("CERTIFICATE", &der)
    }

    #[test]
    fn callback_changes_are_validated_then_applied_or_refused_by_an_operator() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        register_vendor(&store, &provider(dir.path()), &registration()).unwrap();
        let vendor = Actor::account("vendor1", Role::Vendor);
        let good = CallbackForm {
            callback_url: "https://cb2.example.cn/hutong".into(),
            callback_ca_pem: ca_pem("新回调 CA"),
            dest_host: "https://ukey.example.cn".into(),
        };
        submit_application(&store, "vendor1", &form()).unwrap();
        // Not before approval.
        assert!(matches!(
            request_callback_change(&store, "vendor1", &good, &vendor),
            Err(OnboardingError::Domain(DomainError::Conflict(_)))
        ));
        let app_id = approve(&store, "vendor1", &Actor::cli())
            .unwrap()
            .app_id
            .unwrap();
        // The onboarding validators, field by field; nothing is kept.
        let bad = CallbackForm {
            callback_url: "http://cb.example.cn".into(),
            callback_ca_pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----".into(),
            dest_host: "ftp://x".into(),
        };
        let Err(OnboardingError::Fields(f)) =
            request_callback_change(&store, "vendor1", &bad, &vendor)
        else {
            panic!("bad callback settings accepted");
        };
        for field in ["callback_url", "callback_ca_pem", "dest_host"] {
            assert!(f.get(field).is_some(), "{field}: {f:?}");
        }
        assert!(pending_callback(&store, "vendor1").unwrap().is_none());
        // The same settings as now is no change.
        assert!(
            request_callback_change(&store, "vendor1", &CallbackForm::default(), &vendor).is_err()
        );

        request_callback_change(&store, "vendor1", &good, &vendor).unwrap();
        let p = pending_callback_of_system(&store, &app_id)
            .unwrap()
            .unwrap();
        assert_eq!(p.current, CallbackSettings::default());
        assert_eq!(
            p.requested.callback_url.as_deref(),
            Some("https://cb2.example.cn/hutong")
        );
        assert_eq!(
            approve_callback_change(&store, "vendor1", &Actor::cli()).unwrap(),
            app_id
        );
        let sys = store.get_system(&app_id).unwrap().unwrap();
        assert_eq!(CallbackSettings::of_system(&sys), p.requested);
        assert!(pending_callback(&store, "vendor1").unwrap().is_none());
        assert!(
            approve_callback_change(&store, "vendor1", &Actor::cli()).is_err(),
            "nothing pending"
        );

        // A second request refused with a reason; the system keeps the approved settings.
        let other = CallbackForm {
            callback_url: "https://cb3.example.cn".into(),
            ..Default::default()
        };
        request_callback_change(&store, "vendor1", &other, &vendor).unwrap();
        assert!(reject_callback_change(&store, "vendor1", " ", &Actor::cli()).is_err());
        reject_callback_change(&store, "vendor1", "新地址未备案", &Actor::cli()).unwrap();
        let app = store.get_application("vendor1").unwrap().unwrap();
        assert_eq!(app.callback_rejection.as_deref(), Some("新地址未备案"));
        assert!(app.pending_callback.is_none());
        assert_eq!(store.get_system(&app_id).unwrap().unwrap(), sys);

        // Each act is one entry on the system; refusals are failed entries.
        let events = store.recent_events(100).unwrap();
        let on_system = |a: Action, o: Outcome| {
            events
                .iter()
                .filter(|e| e.action == a && e.outcome == o && e.target == app_id)
                .count()
        };
        assert_eq!(
            on_system(Action::SystemCallbackChangeRequest, Outcome::Ok),
            2
        );
        assert_eq!(
            on_system(Action::SystemCallbackChangeRequest, Outcome::Failed),
            2
        );
        assert_eq!(
            on_system(Action::SystemCallbackChangeApprove, Outcome::Ok),
            1
        );
        assert_eq!(
            on_system(Action::SystemCallbackChangeReject, Outcome::Ok),
            1
        );
        let approved = events
            .iter()
            .find(|e| e.action == Action::SystemCallbackChangeApprove && e.outcome == Outcome::Ok)
            .unwrap();
        assert!(
            approved
                .detail
                .as_str()
                .contains("https://cb2.example.cn/hutong")
                && approved.detail.as_str().contains("新回调 CA"),
            "{:?}",
            approved.detail
        );
    }
}
