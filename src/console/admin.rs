//! Administrator pages. Each handler starts with the role it needs (`auth.require`), then the
//! CSRF check for actions. Acts are recorded by the domain functions that perform them;
//! refusals found here (role, CSRF, form) go through `domain::audit` too.

use super::session::{self, Auth};
use super::views::{self, AccountRow, AppRow, Ctx, EventRow, HistoryRow, SystemRow};
use super::{
    ConsoleError, DoneQuery, action_label, actor_label, chart, fmt_time, html, redirect,
    result_label, role_label, usage,
};
use crate::app::AppState;
use crate::domain::audit;
use crate::domain::audit_event::{Action, Actor, Outcome};
use crate::domain::onboarding::FieldErrors;
use crate::domain::vocab::ApplicationState;
use crate::domain::vocab::Role;
use crate::domain::vocab::SystemState;
use crate::domain::{accounts as acc, onboarding, systems, tenants};
use crate::store::systems::SystemRecord;
use crate::time::now_ms;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(dashboard))
        .route("/applications", web::get().to(applications))
        .route(
            "/applications/{user}/approve",
            web::get().to(confirm_approve),
        )
        .route("/applications/{user}/approve", web::post().to(approve))
        .route("/applications/{user}/reject", web::get().to(confirm_reject))
        .route("/applications/{user}/reject", web::post().to(reject))
        .route("/applications/{user}/reveal", web::post().to(reveal))
        .route(
            "/applications/{user}/rotation",
            web::post().to(approve_rotation),
        )
        .route(
            "/applications/{user}/callback/approve",
            web::post().to(approve_callback_change),
        )
        .route(
            "/applications/{user}/callback/reject",
            web::post().to(reject_callback_change),
        )
        .route("/systems", web::get().to(systems_list))
        .route("/systems/{app_id}", web::get().to(system_detail))
        .route("/systems/{app_id}/state", web::get().to(confirm_state))
        .route("/systems/{app_id}/state", web::post().to(system_state))
        .route(
            "/systems/{app_id}/check-callback",
            web::post().to(check_callback),
        )
        .route("/systems/{app_id}/destroy", web::post().to(destroy_tenant))
        .route("/accounts", web::get().to(accounts))
        .route("/accounts", web::post().to(create_account))
        .route("/accounts/{user}/disable", web::get().to(confirm_disable))
        .route("/accounts/{user}/disable", web::post().to(disable_account))
        .route("/accounts/{user}/enable", web::post().to(enable_account))
        .route("/accounts/{user}/reset", web::get().to(confirm_reset))
        .route("/accounts/{user}/reset", web::post().to(reset_password))
        .route(
            "/accounts/{user}/second-factor/reset",
            web::post().to(reset_second_factor),
        )
        .route("/keys", web::get().to(keys))
        .route("/events", web::get().to(events));
}

/// The signed-in account as an audit actor (its role is part of the event).
pub(super) fn actor(auth: &Auth) -> Actor {
    Actor::account(&auth.username, auth.role)
}

/// Records a refusal or failure found by the console before any domain act ran (role, CSRF,
/// form fields); acts themselves are recorded by the domain function that performs them.
pub(super) fn audit(
    state: &AppState,
    auth: &Auth,
    action: Action,
    target: &str,
    outcome: Outcome,
    detail: &str,
) {
    audit::note(&state.store, &actor(auth), action, outcome, target, detail);
}

/// Records a form that failed before its act ran, and hands the error back to be shown.
pub(super) fn failed(
    state: &AppState,
    auth: &Auth,
    action: Action,
    e: ConsoleError,
) -> ConsoleError {
    audit(state, auth, action, "", Outcome::Failed, &e.to_string());
    e
}

/// Role and CSRF check for an action; a refusal is itself recorded.
pub(super) fn guard(
    state: &AppState,
    auth: &Auth,
    role: Role,
    csrf: &str,
    action: Action,
    target: &str,
) -> Result<(), ConsoleError> {
    let checked = auth.require(role).and_then(|()| auth.check_csrf(csrf));
    if let Err(e) = &checked
        && !matches!(
            e,
            ConsoleError::MustChangePassword | ConsoleError::MustEnrol
        )
    {
        audit(state, auth, action, target, Outcome::Denied, &e.to_string());
    }
    checked
}

/// Commits a domain act (which recorded itself, refused or not) before answering with a
/// redirect or the refusal.
pub(super) async fn finish<T>(
    state: &AppState,
    res: Result<T, crate::domain::DomainError>,
    to: &str,
) -> Result<HttpResponse, ConsoleError> {
    state.store.commit().await?;
    res?;
    Ok(redirect(to))
}

async fn dashboard(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require_admin()?;
    let systems = state.store.list_systems()?;
    let apps = state.store.list_applications()?;
    let count = |s: SystemState| systems.iter().filter(|x| x.state == s).count();
    let counts = vec![
        ("接入系统总数", systems.len()),
        ("测试中", count(SystemState::Testing)),
        ("已上线", count(SystemState::Online)),
        ("已暂停", count(SystemState::Suspended)),
        (
            "待审核申请",
            apps.iter()
                .filter(|a| a.state == ApplicationState::Submitted)
                .count(),
        ),
        ("管理员与接入账户", state.store.account_count()?),
    ];
    let hours = state.metrics.last_24_hours(now_ms());
    // The audit log's recent events belong to the auditor (separation of duties).
    let recent = if auth.role == Role::Auditor {
        event_rows(&state, RECENT_ON_DASHBOARD)?
    } else {
        Vec::new()
    };
    html(&views::DashboardPage {
        ctx: Ctx::new(&auth, "/console/"),
        notice: match q.done.as_deref() {
            Some("password") => super::PASSWORD_CHANGED,
            _ => "",
        },
        recent,
        counts,
        calls_24h: hours.iter().map(|h| h.1).sum(),
        errors_24h: hours.iter().map(|h| h.2).sum(),
        chart_svg: chart::calls_svg(&hours),
        tls: state
            .metrics
            .tls_expiry_ms()
            .map(|ms| views::TlsView::new(ms, now_ms())),
        backup: views::BackupView::new(
            state.store.backup_status()?.as_ref(),
            state
                .config
                .backup
                .daily_secs()
                .ok()
                .flatten()
                .map(|secs| crate::time::next_daily_ms(now_ms(), secs)),
        ),
    })
}

/// The result message of the act a redirect came back from (`?done=…`).
fn done_notice(done: Option<&str>) -> &'static str {
    match done {
        Some("approve") => "已通过入驻申请：系统已创建，处于测试状态。",
        Some("reject") => "已驳回入驻申请，申请人可在门户看到驳回原因。",
        Some("state") => "系统状态已变更，并已记入状态历史和审计日志。",
        Some("callback-approve") => {
            "已批准回调配置变更：新的回调地址、CA 证书和 destHost 已生效，并已记入系统历史。"
        }
        Some("callback-reject") => "已驳回回调配置变更，厂商可在门户看到驳回原因。",
        Some("disable") => "账户已停用，其所有会话已结束。",
        Some("enable") => "账户已启用。",
        Some("password") => super::PASSWORD_CHANGED,
        _ => "",
    }
}

async fn applications(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    let mut queue = Vec::new();
    let mut others = Vec::new();
    let mut apps = state.store.list_applications()?;
    apps.sort_by_key(|a| std::cmp::Reverse(a.submitted_ms));
    let mut rows = Vec::new();
    for a in apps {
        let p = onboarding::vendor_profile(&state.store, state.keys.provider(), &a.username)?;
        let mut row = AppRow::new(&a, p.as_ref());
        row.pending_callback = onboarding::pending_callback(&state.store, &a.username)?
            .map(|c| views::CallbackChangeView::new(&c));
        rows.push(row);
    }
    // A second account for the same organisation is worth a look before approving.
    for i in 0..rows.len() {
        let others_with: Vec<&str> = rows
            .iter()
            .filter(|r| {
                !rows[i].uscc.is_empty() && r.uscc == rows[i].uscc && r.username != rows[i].username
            })
            .map(|r| r.username.as_str())
            .collect();
        let same = others_with.join("、");
        rows[i].same_uscc = same;
    }
    for row in rows {
        if row.is_submitted || row.pending_rotation || row.pending_callback.is_some() {
            queue.push(row);
        } else {
            others.push(row);
        }
    }
    html(&views::ApplicationsPage {
        ctx: Ctx::new(&auth, "/console/applications"),
        queue,
        others,
        notice: done_notice(q.done.as_deref()),
    })
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn approve(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    let user = path.into_inner();
    guard(
        &state,
        &auth,
        Role::Operator,
        &form.csrf,
        Action::OnboardingApprove,
        &user,
    )?;
    let store = state.store.clone();
    let (u, actor) = (user.clone(), actor(&auth));
    let res = web::block(move || onboarding::approve(&store, &u, &actor))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    finish(&state, res, "/console/applications?done=approve").await
}

async fn reject(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, ConsoleError> {
    let user = path.into_inner();
    guard(
        &state,
        &auth,
        Role::Operator,
        &form.csrf,
        Action::OnboardingReject,
        &user,
    )?;
    let res = onboarding::reject(&state.store, &user, &form.reason, &actor(&auth));
    finish(&state, res, "/console/applications?done=reject").await
}

/// 查看完整信息: the applicant's real-name data, unmasked for the deciding operator once a
/// reason is given (audited by the domain before anything is shown).
async fn reveal(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, ConsoleError> {
    let user = path.into_inner();
    guard(
        &state,
        &auth,
        Role::Operator,
        &form.csrf,
        Action::OnboardingReveal,
        &user,
    )?;
    let res = onboarding::reveal_profile(
        &state.store,
        state.keys.provider(),
        &user,
        &form.reason,
        &actor(&auth),
    );
    // The entry is durable before the data leaves the server.
    state.store.commit().await?;
    let p = res?;
    html(&views::RevealPage {
        ctx: Ctx::new(&auth, "/console/applications"),
        reason: form.reason.trim().to_string(),
        username: p.username,
        org_name: p.org_name,
        uscc: p.uscc,
        legal_rep: p.legal_rep,
        contact_name: p.contact_name,
        mobile: p.mobile,
        email: p.email,
    })
}

async fn approve_rotation(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    let user = path.into_inner();
    guard(
        &state,
        &auth,
        Role::Operator,
        &form.csrf,
        Action::KeyRotationApprove,
        &user,
    )?;
    let res = onboarding::approve_rotation(&state.store, &user, &actor(&auth));
    finish(&state, res, "/console/applications").await
}

/// Applies the vendor's requested callback settings; what this process learnt about the old
/// callback (TLS clients, breaker, last failure) is forgotten.
async fn approve_callback_change(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    let user = path.into_inner();
    let action = Action::SystemCallbackChangeApprove;
    guard(&state, &auth, Role::Operator, &form.csrf, action, &user)?;
    let res = onboarding::approve_callback_change(&state.store, &user, &actor(&auth));
    if let Ok(app_id) = &res {
        state.interop.callback_changed(app_id);
    }
    finish(&state, res, "/console/applications?done=callback-approve").await
}

async fn reject_callback_change(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, ConsoleError> {
    let user = path.into_inner();
    let action = Action::SystemCallbackChangeReject;
    guard(&state, &auth, Role::Operator, &form.csrf, action, &user)?;
    let res = onboarding::reject_callback_change(&state.store, &user, &form.reason, &actor(&auth));
    finish(&state, res, "/console/applications?done=callback-reject").await
}

fn state_label(s: SystemState) -> (&'static str, &'static str) {
    match s {
        SystemState::Testing => ("测试中", "testing"),
        SystemState::Online => ("已上线", "online"),
        SystemState::Suspended => ("已暂停", "suspended"),
    }
}

/// A system's row; `degraded` when the interop breaker for it is open (SPEC §4).
fn system_row(s: &SystemRecord, degraded: bool) -> SystemRow {
    let (state, state_class) = state_label(s.state);
    SystemRow {
        degraded,
        app_id: s.app_id.clone(),
        name: s.name.clone(),
        plat_name: s.plat_name.clone(),
        vendor: s.vendor.clone().unwrap_or_default(),
        state,
        state_class,
        created: fmt_time(s.created_ms),
    }
}

async fn systems_list(
    auth: Auth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require_one_of(&[Role::Operator, Role::Security])?;
    let mut list = state.store.list_systems()?;
    list.sort_by_key(|s| std::cmp::Reverse(s.created_ms));
    html(&views::SystemsPage {
        ctx: Ctx::new(&auth, "/console/systems"),
        rows: list
            .iter()
            .map(|s| system_row(s, state.interop.is_degraded(&s.app_id)))
            .collect(),
    })
}

async fn system_detail(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require_one_of(&[Role::Operator, Role::Security])?;
    let mut page = system_page(
        &state,
        &auth,
        &path.into_inner(),
        usage::QuotaForm::initial(),
        FieldErrors::default(),
        String::new(),
    )?;
    page.notice = done_notice(q.done.as_deref());
    html(&page)
}

/// The system detail page; the quota form shows `quota_form` with its errors (after a refused
/// submission) or its initial values.
pub(super) fn system_page(
    state: &AppState,
    auth: &Auth,
    app_id: &str,
    quota_form: usage::QuotaForm,
    quota_errors: FieldErrors,
    quota_error: String,
) -> Result<views::SystemPage, ConsoleError> {
    let s = state
        .store
        .get_system(app_id)?
        .ok_or_else(|| ConsoleError::NotFound(format!("系统 {app_id} 不存在")))?;
    let transitions = [
        (SystemState::Online, "online", "上线 / 恢复"),
        (SystemState::Suspended, "suspended", "暂停"),
        (SystemState::Testing, "testing", "退回测试"),
    ]
    .into_iter()
    .filter(|(to, _, _)| systems::transition_allowed(s.state, *to))
    .map(|(_, v, l)| (v, l))
    .collect();
    Ok(views::SystemPage {
        ctx: Ctx::new(auth, "/console/systems"),
        notice: "",
        sys: system_row(&s, state.interop.is_degraded(app_id)),
        callback_url: s.callback_url.clone().unwrap_or_default(),
        callback_ca: views::ca_summary(s.callback_ca_pem.as_deref()),
        dest_host: s.dest_host.clone().unwrap_or_default(),
        pending_callback: onboarding::pending_callback_of_system(&state.store, app_id)?
            .map(|c| views::CallbackChangeView::new(&c)),
        keys: s
            .public_keys
            .iter()
            .map(|k| views::key_fingerprint(k))
            .collect(),
        history: system_history(state, &s)?,
        transitions,
        quota: usage::quota_view(state, app_id)?,
        quota_form,
        quota_errors,
        quota_error,
        usage: usage::recent_usage(state, app_id)?,
        last_failure: views::last_failure(state, app_id),
        check: None,
        can_operate: auth.role == Role::Operator,
        can_destroy: auth.role == Role::Security,
        destroyed: tenants::is_destroyed(&state.store, app_id)?,
    })
}

/// 测试回调: checks the system's callback stage by stage and shows the result on its page.
async fn check_callback(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    let app_id = path.into_inner();
    let action = Action::SystemCheckCallback;
    guard(&state, &auth, Role::Operator, &form.csrf, action, &app_id)?;
    let (s, id, who) = (state.clone(), app_id.clone(), actor(&auth));
    let timeout = std::time::Duration::from_millis(state.config.interop.member_timeout_ms);
    let res = web::block(move || systems::check_callback(&s.store, &s.keys, &id, &who, timeout))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    state.store.commit().await?;
    let report = res?;
    state.interop.note_check(&report);
    let mut page = system_page(
        &state,
        &auth,
        &app_id,
        usage::QuotaForm::initial(),
        FieldErrors::default(),
        String::new(),
    )?;
    page.check = Some(views::CheckView::new(&report));
    html(&page)
}

#[derive(Deserialize)]
pub struct StateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    reason: String,
}

async fn system_state(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<StateForm>,
) -> Result<HttpResponse, ConsoleError> {
    let app_id = path.into_inner();
    guard(
        &state,
        &auth,
        Role::Operator,
        &form.csrf,
        Action::SystemState,
        &app_id,
    )?;
    let Some(to) = SystemState::parse(&form.to) else {
        let e = ConsoleError::Invalid("目标状态无效".into());
        audit(
            &state,
            &auth,
            Action::SystemState,
            &app_id,
            Outcome::Failed,
            &e.to_string(),
        );
        return Err(e);
    };
    let res = systems::set_state(&state.store, &app_id, to, &form.reason, &actor(&auth));
    finish(
        &state,
        res,
        &format!("/console/systems/{app_id}?done=state"),
    )
    .await
}

#[derive(Deserialize)]
pub struct DestroyForm {
    #[serde(default)]
    csrf: String,
    /// The appId typed again by the security administrator.
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    reason: String,
}

/// 销毁租户数据 (security administrator): the domain checks the typed appId and the reason.
async fn destroy_tenant(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<DestroyForm>,
) -> Result<HttpResponse, ConsoleError> {
    let app_id = path.into_inner();
    let action = Action::TenantDestroy;
    guard(&state, &auth, Role::Security, &form.csrf, action, &app_id)?;
    let form = form.into_inner();
    let (s, id, who) = (state.clone(), app_id.clone(), actor(&auth));
    // Key-store calls block (an HSM round trip per tenant key).
    let res = web::block(move || {
        tenants::destroy(
            &s.store,
            s.keys.provider(),
            &id,
            &form.confirm,
            &form.reason,
            &who,
        )
    })
    .await
    .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    finish(&state, res, &format!("/console/systems/{app_id}")).await
}

fn accounts_page(
    state: &AppState,
    auth: &Auth,
    issued: Option<(String, String)>,
    error: String,
) -> Result<views::AccountsPage, ConsoleError> {
    let mut list = state.store.list_accounts()?;
    // Vendor accounts belong to the portal; this page manages administrators.
    list.retain(|a| a.role != Role::Vendor);
    list.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(views::AccountsPage {
        ctx: Ctx::new(auth, "/console/accounts"),
        rows: list
            .iter()
            .map(|a| AccountRow {
                username: a.username.clone(),
                role: role_label(a.role),
                status: if a.disabled {
                    "已停用"
                } else if a.locked_until_ms > now_ms() {
                    "已锁定"
                } else if a.must_change_password {
                    "待修改初始密码"
                } else if !a.second_factor.is_enrolled() {
                    "待启用两步验证"
                } else {
                    "正常"
                },
                created: fmt_time(a.created_ms),
                is_self: a.username == auth.username,
                disabled: a.disabled,
            })
            .collect(),
        issued,
        error,
        notice: "",
    })
}

async fn accounts(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Security)?;
    let mut page = accounts_page(&state, &auth, None, String::new())?;
    page.notice = done_notice(q.done.as_deref());
    html(&page)
}

#[derive(Deserialize)]
pub struct NewAccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
}

async fn create_account(
    auth: Auth,
    state: web::Data<AppState>,
    form: web::Form<NewAccountForm>,
) -> Result<HttpResponse, ConsoleError> {
    let username = form.username.trim().to_string();
    guard(
        &state,
        &auth,
        Role::Security,
        &form.csrf,
        Action::AccountCreate,
        &username,
    )?;
    // Only the three administrator roles are created here; vendors register themselves.
    let role = match Role::parse(&form.role) {
        Some(r @ (Role::Operator | Role::Security | Role::Auditor)) => r,
        _ => {
            let e = ConsoleError::Invalid("请选择管理员角色".into());
            let detail = e.to_string();
            audit(
                &state,
                &auth,
                Action::AccountCreate,
                &username,
                Outcome::Failed,
                &detail,
            );
            return Err(e);
        }
    };
    let password = acc::generate_password();
    let store = state.store.clone();
    let (u, p, actor) = (username.clone(), password.clone(), actor(&auth));
    let res = web::block(move || acc::create_account(&store, &u, role, &p, true, &actor))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    match res {
        Ok(_) => {
            state.store.commit().await?;
            html(&accounts_page(
                &state,
                &auth,
                Some((username, password)),
                String::new(),
            )?)
        }
        Err(e) => {
            let msg = ConsoleError::from(e).to_string();
            let mut resp = html(&accounts_page(&state, &auth, None, msg)?)?;
            *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            Ok(resp)
        }
    }
}

async fn set_disabled(
    auth: Auth,
    state: web::Data<AppState>,
    user: String,
    csrf: &str,
    disabled: bool,
) -> Result<HttpResponse, ConsoleError> {
    let action = if disabled {
        Action::AccountDisable
    } else {
        Action::AccountEnable
    };
    guard(&state, &auth, Role::Security, csrf, action, &user)?;
    acc::set_disabled(&state.store, &user, disabled, &actor(&auth))?;
    session::destroy_all_of(&state.store, &user)?;
    state.store.commit().await?;
    Ok(redirect(if disabled {
        "/console/accounts?done=disable"
    } else {
        "/console/accounts?done=enable"
    }))
}

async fn disable_account(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    set_disabled(auth, state, path.into_inner(), &form.csrf, true).await
}

async fn enable_account(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    set_disabled(auth, state, path.into_inner(), &form.csrf, false).await
}

async fn reset_password(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    let user = path.into_inner();
    guard(
        &state,
        &auth,
        Role::Security,
        &form.csrf,
        Action::AccountReset,
        &user,
    )?;
    let password = acc::generate_password();
    let p = password.clone();
    let hash = web::block(move || acc::hash_password(&p))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))??;
    acc::reset_password(&state.store, &user, hash, &actor(&auth))?;
    session::destroy_all_of(&state.store, &user)?;
    state.store.commit().await?;
    html(&accounts_page(
        &state,
        &auth,
        Some((user, password)),
        String::new(),
    )?)
}

/// Removes an administrator's second factors; they enrol again at their next login.
async fn reset_second_factor(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    let user = path.into_inner();
    guard(
        &state,
        &auth,
        Role::Security,
        &form.csrf,
        Action::SecondFactorReset,
        &user,
    )?;
    let res = crate::domain::second_factor::reset(&state.store, &user, &actor(&auth));
    finish(&state, res, "/console/accounts").await
}

#[derive(Deserialize)]
pub struct StateQuery {
    #[serde(default)]
    to: String,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
pub struct ReasonQuery {
    #[serde(default)]
    reason: String,
}

async fn confirm_approve(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    let user = path.into_inner();
    let app = state
        .store
        .get_application(&user)?
        .ok_or_else(|| ConsoleError::NotFound(format!("申请 {user} 不存在")))?;
    html(&views::ConfirmPage {
        ctx: Ctx::new(&auth, "/console/applications"),
        title: "确认通过入驻申请",
        question: format!("通过 {user} 提交的“{}”入驻申请？", app.system_name),
        details: vec![
            "通过后系统即被创建，进入测试状态，可以调用接口。".into(),
            format!(
                "公钥指纹（SM3）：{}",
                views::key_fingerprint(&app.public_key_pem)
            ),
        ],
        action: format!("/console/applications/{user}/approve"),
        hidden: Vec::new(),
        reason: None,
        button: "确认通过",
        danger: false,
        back: "/console/applications".into(),
    })
}

async fn confirm_reject(
    auth: Auth,
    path: web::Path<String>,
    q: web::Query<ReasonQuery>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    let user = path.into_inner();
    html(&views::ConfirmPage {
        ctx: Ctx::new(&auth, "/console/applications"),
        title: "确认驳回入驻申请",
        question: format!("驳回 {user} 的入驻申请？"),
        details: vec!["驳回原因会显示给申请人；申请人修改后可以重新提交。".into()],
        action: format!("/console/applications/{user}/reject"),
        hidden: Vec::new(),
        reason: Some(("驳回原因（必填，申请人可见）", q.reason.clone())),
        button: "确认驳回",
        danger: true,
        back: "/console/applications".into(),
    })
}

async fn confirm_state(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<StateQuery>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    let app_id = path.into_inner();
    let sys = state
        .store
        .get_system(&app_id)?
        .ok_or_else(|| ConsoleError::NotFound(format!("系统 {app_id} 不存在")))?;
    let to =
        SystemState::parse(&q.to).ok_or_else(|| ConsoleError::Invalid("目标状态无效".into()))?;
    let suspend = to == SystemState::Suspended;
    let mut details = vec![format!(
        "状态由“{}”变为“{}”。",
        state_label(sys.state).0,
        state_label(to).0
    )];
    if suspend {
        details.push("暂停后该系统的每个接口调用都返回 20002，直到恢复。".into());
    }
    html(&views::ConfirmPage {
        ctx: Ctx::new(&auth, "/console/systems"),
        title: if suspend {
            "确认暂停系统"
        } else {
            "确认变更系统状态"
        },
        question: format!("变更系统“{}”（{app_id}）的状态？", sys.name),
        details,
        action: format!("/console/systems/{app_id}/state"),
        hidden: vec![("to", q.to.clone())],
        reason: Some(("变更原因（必填，记入状态历史）", q.reason.clone())),
        button: if suspend {
            "确认暂停"
        } else {
            "确认变更"
        },
        danger: suspend,
        back: format!("/console/systems/{app_id}"),
    })
}

async fn confirm_disable(
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Security)?;
    let user = path.into_inner();
    html(&views::ConfirmPage {
        ctx: Ctx::new(&auth, "/console/accounts"),
        title: "确认停用账户",
        question: format!("停用管理员账户 {user}？"),
        details: vec!["停用后该账户不能登录，其现有会话立即结束；可以随时重新启用。".into()],
        action: format!("/console/accounts/{user}/disable"),
        hidden: Vec::new(),
        reason: None,
        button: "确认停用",
        danger: true,
        back: "/console/accounts".into(),
    })
}

async fn confirm_reset(auth: Auth, path: web::Path<String>) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Security)?;
    let user = path.into_inner();
    html(&views::ConfirmPage {
        ctx: Ctx::new(&auth, "/console/accounts"),
        title: "确认重置密码",
        question: format!("重置管理员账户 {user} 的密码？"),
        details: vec![
            "将生成一个新密码，只显示一次，请当面或通过安全渠道交给本人；其下次登录须修改。".into(),
            "该账户的现有会话立即结束，锁定同时解除。".into(),
        ],
        action: format!("/console/accounts/{user}/reset"),
        hidden: Vec::new(),
        reason: None,
        button: "确认重置",
        danger: true,
        back: "/console/accounts".into(),
    })
}

async fn keys(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Security)?;
    let st = state.keys.status();
    html(&views::KeysPage {
        ctx: Ctx::new(&auth, "/console/keys"),
        provider: st.provider,
        module: st.module.unwrap_or_default(),
        slot: st.slot.unwrap_or_default(),
        kek_id: st.kek_id,
        created: st.created_ms.map(fmt_time).unwrap_or_default(),
        last_used: st
            .last_used_ms
            .map(fmt_time)
            .unwrap_or_else(|| "本次启动以来未使用".into()),
        cert_fingerprint: crate::crypto::sm::sm3_hex(&state.keys.platform_cert_der()),
        certificates: state
            .keys
            .platform()
            .listing(
                state.config.keys.platform_overlap_days,
                crate::time::now_ms(),
            )
            .into_iter()
            .map(|c| views::CertRow {
                status: match c.status {
                    "current" => "当前",
                    "previous" => "过渡期（仍公布）",
                    _ => "已退役",
                },
                fingerprint: c.fingerprint,
                not_after: c.not_after,
                overlap_end: c.overlap_end.unwrap_or_default(),
            })
            .collect(),
        retired_keks: state
            .keys
            .retired_keks()
            .into_iter()
            .map(|r| format!("{}（{} 退役）", r.name, fmt_time(r.retired_ms)))
            .collect(),
        history: key_history(&state)?,
    })
}

/// Key operations on the key page.
const KEY_HISTORY_ROWS: usize = 30;

/// The audit log's key operations (entry kind `key`) and tenant destructions, newest first.
fn key_history(state: &AppState) -> Result<Vec<EventRow>, ConsoleError> {
    use crate::store::audit_log::{AuditQuery, Field};
    let query = |field: Field, value: &str| AuditQuery {
        fields: vec![(field, value.into())],
        limit: KEY_HISTORY_ROWS,
        ..AuditQuery::default()
    };
    let mut rows: Vec<(u64, crate::audit::entry::Entry)> = Vec::new();
    for q in [
        query(Field::Kind, "key"),
        query(
            Field::Action,
            crate::domain::audit_event::Action::TenantDestroy.as_str(),
        ),
    ] {
        rows.extend(state.store.search_audit(&q)?.entries);
    }
    rows.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    rows.truncate(KEY_HISTORY_ROWS);
    Ok(rows
        .into_iter()
        .map(|(_, e)| EventRow {
            at: fmt_time(e.at),
            actor: actor_label(&e.actor.id, e.actor.role.as_deref()),
            action: action_label(&e.action),
            target: e.target,
            result: result_label(e.result.as_str()).to_string(),
            detail: e.detail,
        })
        .collect())
}

/// Events on the auditor's dashboard.
const RECENT_ON_DASHBOARD: usize = 10;
/// Entries of a system's history shown on its page.
const HISTORY_ROWS: usize = 50;

/// The newest domain events (the audit log's, then the legacy list's), as rows.
fn event_rows(state: &AppState, limit: usize) -> Result<Vec<EventRow>, ConsoleError> {
    Ok(state
        .store
        .recent_events(limit)?
        .into_iter()
        .map(|e| EventRow {
            at: fmt_time(e.at_ms),
            detail: e.detail.as_str().to_string(),
            // The role the actor acted as, in words beside the name.
            actor: actor_label(&e.actor.id, e.actor.role.map(Role::as_str)),
            action: e.action.label().to_string(),
            target: e.target,
            result: result_label(e.outcome.as_str()).to_string(),
        })
        .collect())
}

/// A system's history: the audit log's entries whose target is the system, newest first;
/// when they are all shown, the record's own state changes from before the log begins.
fn system_history(state: &AppState, s: &SystemRecord) -> Result<Vec<HistoryRow>, ConsoleError> {
    use crate::store::audit_log::{AuditQuery, Field};
    let page = state.store.search_audit(&AuditQuery {
        fields: vec![(Field::Target, s.app_id.clone())],
        limit: HISTORY_ROWS,
        ..Default::default()
    })?;
    let mut rows: Vec<HistoryRow> = page
        .entries
        .iter()
        .map(|(_, e)| HistoryRow {
            at: fmt_time(e.at),
            action: action_label(&e.action),
            actor: actor_label(&e.actor.id, e.actor.role.as_deref()),
            result: result_label(e.result.as_str()).to_string(),
            detail: e.detail.clone(),
        })
        .collect();
    if page.next_before.is_none() {
        // Only what happened before the (kept) log begins: later changes are in the log.
        let first = state.store.audit_first_seq()?;
        let oldest = state.store.audit_entry(first)?.map_or(i64::MAX, |e| e.at);
        rows.extend(
            s.history
                .iter()
                .rev()
                .filter(|h| h.at_ms < oldest)
                .map(|h| HistoryRow {
                    at: fmt_time(h.at_ms),
                    action: Action::SystemState.label().to_string(),
                    actor: actor_label(&h.actor, None),
                    result: result_label("ok").to_string(),
                    detail: format!(
                        "{} → {}：{}",
                        h.from.map(|f| state_label(f).0).unwrap_or("—"),
                        state_label(h.to).0,
                        crate::domain::systems::reason_label(&h.reason)
                    ),
                }),
        );
    }
    Ok(rows)
}

async fn events(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Auditor)?;
    html(&views::EventsPage {
        ctx: Ctx::new(&auth, "/console/events"),
        rows: event_rows(&state, 500)?,
    })
}
