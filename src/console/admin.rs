//! Administrator pages. Each handler starts with the role it needs (`auth.require`), then the
//! CSRF check for actions; every action, refused or not, becomes an event with actor, role,
//! target and result.

use super::session::{self, Auth};
use super::views::{self, AccountRow, AppRow, Ctx, EventRow, HistoryRow, SystemRow};
use super::{ConsoleError, chart, fmt_time, html, redirect, role_label, usage};
use crate::app::AppState;
use crate::domain::onboarding::FieldErrors;
use crate::domain::vocab::ApplicationState;
use crate::domain::vocab::Role;
use crate::domain::vocab::SystemState;
use crate::domain::{accounts as acc, onboarding, systems};
use crate::store::systems::SystemRecord;
use crate::time::now_ms;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(dashboard))
        .route("/applications", web::get().to(applications))
        .route("/applications/{user}/approve", web::post().to(approve))
        .route("/applications/{user}/reject", web::post().to(reject))
        .route(
            "/applications/{user}/rotation",
            web::post().to(approve_rotation),
        )
        .route("/systems", web::get().to(systems_list))
        .route("/systems/{app_id}", web::get().to(system_detail))
        .route("/systems/{app_id}/state", web::post().to(system_state))
        .route("/accounts", web::get().to(accounts))
        .route("/accounts", web::post().to(create_account))
        .route("/accounts/{user}/disable", web::post().to(disable_account))
        .route("/accounts/{user}/enable", web::post().to(enable_account))
        .route("/accounts/{user}/reset", web::post().to(reset_password))
        .route("/keys", web::get().to(keys))
        .route("/events", web::get().to(events));
}

/// Records a console action; the role is part of the detail so the auditor sees who acted as what.
pub(super) fn audit(
    state: &AppState,
    auth: &Auth,
    action: &str,
    target: &str,
    result: &str,
    detail: &str,
) {
    let detail = format!("角色={}; {detail}", auth.role.as_str());
    if let Err(e) = state
        .store
        .record_event(&auth.username, action, target, result, &detail)
    {
        tracing::error!(error = %e, action, "console event not recorded");
    }
}

/// Role and CSRF check for an action; a refusal is itself recorded.
pub(super) fn guard(
    state: &AppState,
    auth: &Auth,
    role: Role,
    csrf: &str,
    action: &str,
    target: &str,
) -> Result<(), ConsoleError> {
    let checked = auth.require(role).and_then(|()| auth.check_csrf(csrf));
    if let Err(e) = &checked
        && !matches!(e, ConsoleError::MustChangePassword)
    {
        audit(state, auth, action, target, "denied", &e.to_string());
    }
    checked
}

/// Runs the action's result through the audit log, then commits before answering.
pub(super) async fn finish<T>(
    state: &AppState,
    auth: &Auth,
    action: &str,
    target: &str,
    res: Result<T, crate::domain::DomainError>,
    to: &str,
) -> Result<HttpResponse, ConsoleError> {
    match res {
        Ok(_) => {
            audit(state, auth, action, target, "ok", "");
            state.store.commit().await?;
            Ok(redirect(to))
        }
        Err(e) => {
            let e = ConsoleError::from(e);
            audit(state, auth, action, target, "failed", &e.to_string());
            Err(e)
        }
    }
}

async fn dashboard(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
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
    html(&views::DashboardPage {
        ctx: Ctx::new(&auth, "/console/"),
        counts,
        calls_24h: hours.iter().map(|h| h.1).sum(),
        errors_24h: hours.iter().map(|h| h.2).sum(),
        chart_svg: chart::calls_svg(&hours),
    })
}

async fn applications(
    auth: Auth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    let mut queue = Vec::new();
    let mut others = Vec::new();
    let mut apps = state.store.list_applications()?;
    apps.sort_by_key(|a| std::cmp::Reverse(a.submitted_ms));
    for a in apps {
        let p = state
            .store
            .get_vendor_profile(state.keys.provider(), &a.username)?;
        let row = AppRow::new(&a, p.as_ref());
        if row.is_submitted || row.pending_rotation {
            queue.push(row);
        } else {
            others.push(row);
        }
    }
    html(&views::ApplicationsPage {
        ctx: Ctx::new(&auth, "/console/applications"),
        queue,
        others,
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
        "onboarding.approve",
        &user,
    )?;
    let store = state.store.clone();
    let (u, actor) = (user.clone(), auth.username.clone());
    let res = web::block(move || onboarding::approve(&store, &u, &actor))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    finish(
        &state,
        &auth,
        "console.approve",
        &user,
        res,
        "/console/applications",
    )
    .await
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
        "onboarding.reject",
        &user,
    )?;
    let res = onboarding::reject(&state.store, &user, &form.reason, &auth.username);
    finish(
        &state,
        &auth,
        "console.reject",
        &user,
        res,
        "/console/applications",
    )
    .await
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
        "key.rotation_approve",
        &user,
    )?;
    let res = onboarding::approve_rotation(&state.store, &user, &auth.username);
    finish(
        &state,
        &auth,
        "console.rotation",
        &user,
        res,
        "/console/applications",
    )
    .await
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
    auth.require(Role::Operator)?;
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
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    html(&system_page(
        &state,
        &auth,
        &path.into_inner(),
        usage::QuotaForm::initial(),
        FieldErrors::default(),
        String::new(),
    )?)
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
        sys: system_row(&s, state.interop.is_degraded(app_id)),
        callback_url: s.callback_url.clone().unwrap_or_default(),
        dest_host: s.dest_host.clone().unwrap_or_default(),
        keys: s
            .public_keys
            .iter()
            .map(|k| views::key_fingerprint(k))
            .collect(),
        history: s
            .history
            .iter()
            .rev()
            .map(|h| HistoryRow {
                at: fmt_time(h.at_ms),
                from: h.from.map(|f| state_label(f).0).unwrap_or("—"),
                to: state_label(h.to).0,
                actor: h.actor.clone(),
                reason: h.reason.clone(),
            })
            .collect(),
        transitions,
        quota: usage::quota_view(state, app_id)?,
        quota_form,
        quota_errors,
        quota_error,
        usage: usage::recent_usage(state, app_id)?,
    })
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
        "system.set_state",
        &app_id,
    )?;
    let to =
        SystemState::parse(&form.to).ok_or_else(|| ConsoleError::Invalid("目标状态无效".into()))?;
    let res = systems::set_state(&state.store, &app_id, to, &form.reason, &auth.username);
    let back = format!("/console/systems/{app_id}");
    finish(&state, &auth, "console.set_state", &app_id, res, &back).await
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
    })
}

async fn accounts(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Security)?;
    html(&accounts_page(&state, &auth, None, String::new())?)
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
        "account.create",
        &username,
    )?;
    // Only the three administrator roles are created here; vendors register themselves.
    let role = match Role::parse(&form.role) {
        Some(r @ (Role::Operator | Role::Security | Role::Auditor)) => r,
        _ => return Err(ConsoleError::Invalid("请选择管理员角色".into())),
    };
    let password = acc::generate_password();
    let store = state.store.clone();
    let (u, p, actor) = (username.clone(), password.clone(), auth.username.clone());
    let res = web::block(move || acc::create_account(&store, &u, role, &p, true, &actor))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    match res {
        Ok(_) => {
            audit(
                &state,
                &auth,
                "console.account_create",
                &username,
                "ok",
                role.as_str(),
            );
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
            audit(
                &state,
                &auth,
                "console.account_create",
                &username,
                "failed",
                &msg,
            );
            let mut resp = html(&accounts_page(&state, &auth, None, msg)?)?;
            *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            Ok(resp)
        }
    }
}

fn update_admin(
    state: &AppState,
    auth: &Auth,
    user: &str,
    change: impl FnOnce(&mut crate::store::accounts::AccountRecord),
) -> Result<(), ConsoleError> {
    if user == auth.username {
        return Err(ConsoleError::Invalid("不能对自己的账户执行此操作".into()));
    }
    let mut rec = state
        .store
        .get_account(user)?
        .filter(|a| a.role != Role::Vendor)
        .ok_or_else(|| ConsoleError::NotFound(format!("管理员账户 {user} 不存在")))?;
    change(&mut rec);
    state.store.put_account(&rec)?;
    session::destroy_all_of(&state.store, user)?;
    Ok(())
}

async fn set_disabled(
    auth: Auth,
    state: web::Data<AppState>,
    user: String,
    csrf: &str,
    disabled: bool,
) -> Result<HttpResponse, ConsoleError> {
    let action = if disabled {
        "account.disable"
    } else {
        "account.enable"
    };
    guard(&state, &auth, Role::Security, csrf, action, &user)?;
    let res = update_admin(&state, &auth, &user, |a| {
        a.disabled = disabled;
        a.failed_logins = 0;
        a.locked_until_ms = 0;
    });
    if let Err(e) = &res {
        audit(&state, &auth, action, &user, "failed", &e.to_string());
    }
    res?;
    audit(&state, &auth, action, &user, "ok", "");
    state.store.commit().await?;
    Ok(redirect("/console/accounts"))
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
        "account.reset",
        &user,
    )?;
    let password = acc::generate_password();
    let p = password.clone();
    let hash = web::block(move || acc::hash_password(&p))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))??;
    let res = update_admin(&state, &auth, &user, |a| {
        a.password_hash = hash;
        a.must_change_password = true;
        a.failed_logins = 0;
        a.locked_until_ms = 0;
    });
    if let Err(e) = &res {
        audit(
            &state,
            &auth,
            "account.reset",
            &user,
            "failed",
            &e.to_string(),
        );
    }
    res?;
    audit(&state, &auth, "account.reset", &user, "ok", "");
    state.store.commit().await?;
    html(&accounts_page(
        &state,
        &auth,
        Some((user, password)),
        String::new(),
    )?)
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
        cert_fingerprint: crate::crypto::sm::sm3_hex(state.keys.platform_cert_der()),
    })
}

async fn events(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Auditor)?;
    let rows = state
        .store
        .recent_events(500)?
        .into_iter()
        .map(|e| EventRow {
            at: fmt_time(e.at_ms),
            actor: e.actor,
            action: e.action,
            target: e.target,
            result: e.result,
            detail: e.detail,
        })
        .collect();
    html(&views::EventsPage {
        ctx: Ctx::new(&auth, "/console/events"),
        rows,
    })
}
