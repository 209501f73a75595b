//! Metering in the console (SPEC §6, §7): usage reports for the operator and the auditor with
//! their CSV, quotas set and cleared by the operator on the system page, a vendor's own usage in
//! the portal, and the read-only settings page of the security administrator.
//!
//! The counting and the quota rules live in `domain::metering`; this module parses the request,
//! checks the role and renders.

use super::admin::{CsrfForm, actor, audit, guard};
use super::session::Auth;
use super::views::Ctx;
use super::{ConsoleError, html, redirect};
use crate::app::AppState;
use crate::domain::audit_event::{Action, Outcome};
use crate::domain::metering::{self, QuotaStatus, ReportRow};
use crate::domain::onboarding::FieldErrors;
use crate::domain::vocab::QuotaKind;
use crate::domain::vocab::Role;
use crate::store::usage::UsageCounts;
use crate::time::{Day, now_ms};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

/// Rows rendered on a page; the CSV always has all of them.
pub const MAX_PAGE_ROWS: usize = 2000;
/// Longest appId accepted in a query (they are 16–32 characters).
const MAX_APP_ID_LEN: usize = 64;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/usage", web::get().to(usage_page))
        .route("/usage.csv", web::get().to(usage_csv))
        .route("/systems/{app_id}/quota", web::post().to(set_quota))
        .route("/systems/{app_id}/quota/clear", web::post().to(clear_quota))
        .route("/settings", web::get().to(settings));
}

pub fn portal_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/usage", web::get().to(portal_usage))
        .route("/usage.csv", web::get().to(portal_usage_csv));
}

/// The page check for pages more than one role may read.
fn require_any(auth: &Auth, roles: &[Role]) -> Result<(), ConsoleError> {
    auth.require_enrolled()?;
    if !roles.contains(&auth.role) {
        return Err(ConsoleError::Forbidden);
    }
    Ok(())
}

/// Percent-encoding of a query value (RFC 3986 unreserved characters kept).
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The report period `from..=to` (`YYYYMMDD`) of a query; an empty field takes its default
/// (`to` today, `from` 29 days before `to`). The message of an error names the field.
pub fn parse_range(from: &str, to: &str, today: Day) -> Result<(Day, Day), String> {
    let day = |s: &str, label: &str| -> Result<Option<Day>, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if s.len() > 16 {
            return Err(format!("{label}应为 YYYY-MM-DD 格式"));
        }
        Day::parse(s)
            .map(Some)
            .map_err(|_| format!("{label} {s} 应为 YYYY-MM-DD 格式"))
    };
    let to = day(to, "截止日期")?.unwrap_or(today);
    let from = day(from, "起始日期")?.unwrap_or_else(|| metering::default_report_start(to));
    metering::check_report_range(from, to).map_err(|e| e.to_string())?;
    Ok((from, to))
}

/// An appId from a query: empty means all systems.
fn parse_app_id(s: &str) -> Result<Option<String>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.len() > MAX_APP_ID_LEN
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("appId 无效".into());
    }
    Ok(Some(s.to_string()))
}

#[derive(Deserialize, Default)]
pub struct UsageQuery {
    #[serde(default, rename = "appId")]
    app_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// A report off the async workers: with no appId it scans every counter of the period.
async fn load_report(
    state: &AppState,
    app_id: Option<String>,
    from: Day,
    to: Day,
) -> Result<Vec<ReportRow>, ConsoleError> {
    let store = state.store.clone();
    web::block(move || metering::report(&store, app_id.as_deref(), from, to))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?
        .map_err(ConsoleError::from)
}

/// What a report page shows: at most [`MAX_PAGE_ROWS`] rows, how many there were, and totals.
struct PageRows {
    rows: Vec<ReportRow>,
    total_rows: usize,
    totals: UsageCounts,
}

async fn page_rows(
    state: &AppState,
    app_id: Option<String>,
    from: Day,
    to: Day,
) -> Result<PageRows, ConsoleError> {
    let mut rows = load_report(state, app_id, from, to).await?;
    let totals = metering::totals(&rows);
    let total_rows = rows.len();
    rows.truncate(MAX_PAGE_ROWS);
    Ok(PageRows {
        rows,
        total_rows,
        totals,
    })
}

fn csv_response(rows: &[ReportRow], from: Day, to: Day) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"hutong-usage-{}-{}.csv\"", from, to),
        ))
        .body(metering::to_csv(rows))
}

/// A quota as the system page and the portal show it.
pub type QuotaView = QuotaStatus;

pub fn quota_view(state: &AppState, app_id: &str) -> Result<Option<QuotaView>, ConsoleError> {
    Ok(metering::quota_status(&state.store, app_id, now_ms())?)
}

/// A system's usage over the default period, for its detail page.
pub struct UsageSummary {
    pub totals: UsageCounts,
    pub from: String,
    pub to: String,
    pub report_href: String,
}

pub fn recent_usage(state: &AppState, app_id: &str) -> Result<UsageSummary, ConsoleError> {
    let to = Day::today();
    let from = metering::default_report_start(to);
    let rows = metering::report(&state.store, Some(app_id), from, to)?;
    Ok(UsageSummary {
        totals: metering::totals(&rows),
        from: from.to_string(),
        to: to.to_string(),
        report_href: format!(
            "/console/usage?appId={}&from={}&to={}",
            query_value(app_id),
            from,
            to
        ),
    })
}

#[derive(Template)]
#[template(path = "usage.html")]
pub struct UsagePage {
    pub ctx: Ctx,
    /// (appId, name) of every system, for the filter.
    pub systems: Vec<(String, String)>,
    pub app_id: String,
    pub from: String,
    pub to: String,
    pub rows: Vec<ReportRow>,
    pub total_rows: usize,
    pub totals: UsageCounts,
    pub csv_href: String,
    pub error: String,
}

async fn usage_page(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<UsageQuery>,
) -> Result<HttpResponse, ConsoleError> {
    require_any(&auth, &[Role::Operator, Role::Auditor])?;
    let mut systems: Vec<(String, String)> = state
        .store
        .list_systems()?
        .into_iter()
        .map(|s| (s.app_id, s.name))
        .collect();
    systems.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let mut page = UsagePage {
        ctx: Ctx::new(&auth, "/console/usage"),
        systems,
        app_id: q.app_id.trim().to_string(),
        from: q.from.trim().to_string(),
        to: q.to.trim().to_string(),
        rows: Vec::new(),
        total_rows: 0,
        totals: UsageCounts::default(),
        csv_href: String::new(),
        error: String::new(),
    };
    let today = Day::today();
    let parsed =
        parse_app_id(&q.app_id).and_then(|a| parse_range(&q.from, &q.to, today).map(|r| (a, r)));
    let (app_id, (from, to)) = match parsed {
        Ok(p) => p,
        Err(msg) => {
            page.error = msg;
            let mut resp = html(&page)?;
            *resp.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(resp);
        }
    };
    page.from = from.to_string();
    page.to = to.to_string();
    page.csv_href = format!(
        "/console/usage.csv?appId={}&from={}&to={}",
        query_value(app_id.as_deref().unwrap_or("")),
        page.from,
        page.to
    );
    let r = page_rows(&state, app_id, from, to).await?;
    (page.rows, page.total_rows, page.totals) = (r.rows, r.total_rows, r.totals);
    html(&page)
}

async fn usage_csv(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<UsageQuery>,
) -> Result<HttpResponse, ConsoleError> {
    require_any(&auth, &[Role::Operator, Role::Auditor])?;
    let app_id = parse_app_id(&q.app_id).map_err(ConsoleError::Invalid)?;
    let (from, to) = parse_range(&q.from, &q.to, Day::today()).map_err(ConsoleError::Invalid)?;
    let rows = load_report(&state, app_id.clone(), from, to).await?;
    // Who took which figures out of the platform is for the auditor to see.
    audit(
        &state,
        &auth,
        Action::UsageExport,
        app_id.as_deref().unwrap_or("*"),
        Outcome::Ok,
        &format!("期间={}..{}; 行数={}", from, to, rows.len()),
    );
    state.store.commit().await?;
    Ok(csv_response(&rows, from, to))
}

/// The quota form as typed, echoed back with its errors.
#[derive(Deserialize, Default)]
pub struct QuotaForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub limit: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub until: String,
}

impl QuotaForm {
    /// The form as first shown: signatures, valid from today for a year.
    pub fn initial() -> Self {
        let today = Day::today();
        QuotaForm {
            csrf: String::new(),
            kind: QuotaKind::Signatures.as_str().into(),
            limit: String::new(),
            from: today.to_string(),
            until: today.add_days(364).to_string(),
        }
    }

    /// Field-level checks; the limit's range and the system's existence are the domain's.
    fn parse(&self) -> Result<(QuotaKind, u64, Day, Day), FieldErrors> {
        let mut errors = FieldErrors::default();
        let kind = QuotaKind::parse(self.kind.trim());
        if kind.is_none() {
            errors
                .0
                .push(("kind", "请选择配额类型（签署次数或用户数）".into()));
        }
        let limit = self.limit.trim();
        let limit = match limit.parse::<u64>() {
            Ok(n) if (1..=1_000_000_000_000).contains(&n) && limit.len() <= 13 => Some(n),
            _ => {
                errors
                    .0
                    .push(("limit", "配额数量应为 1 到 10^12 之间的整数".into()));
                None
            }
        };
        let day = |s: &str| {
            let s = s.trim();
            if s.len() > 16 {
                return None;
            }
            Day::parse(s).ok()
        };
        let from = day(&self.from);
        if from.is_none() {
            errors
                .0
                .push(("from", "起始日期应为 YYYY-MM-DD 格式的有效日期".into()));
        }
        let until = day(&self.until);
        if until.is_none() {
            errors
                .0
                .push(("until", "截止日期应为 YYYY-MM-DD 格式的有效日期".into()));
        }
        if let (Some(f), Some(u)) = (from, until)
            && u < f
        {
            errors.0.push(("until", "截止日期不能早于起始日期".into()));
        }
        match (kind, limit, from, until) {
            (Some(k), Some(l), Some(f), Some(u)) if errors.is_empty() => Ok((k, l, f, u)),
            _ => Err(errors),
        }
    }
}

async fn set_quota(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<QuotaForm>,
) -> Result<HttpResponse, ConsoleError> {
    let app_id = path.into_inner();
    let action = Action::QuotaSet;
    guard(&state, &auth, Role::Operator, &form.csrf, action, &app_id)?;
    if state.store.get_system(&app_id)?.is_none() {
        // An unknown system gets its 404 before its form is judged.
        let e = ConsoleError::NotFound(format!("系统 {app_id} 不存在"));
        audit(
            &state,
            &auth,
            action,
            &app_id,
            Outcome::Failed,
            &e.to_string(),
        );
        return Err(e);
    }
    let form = form.into_inner();
    let (kind, limit, from, until) = match form.parse() {
        Ok(p) => p,
        Err(errors) => {
            let detail = errors
                .0
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            audit(&state, &auth, action, &app_id, Outcome::Failed, &detail);
            let page = super::admin::system_page(
                &state,
                &auth,
                &app_id,
                form,
                errors,
                "请修改标红的字段后重新提交".into(),
            )?;
            let mut resp = html(&page)?;
            *resp.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(resp);
        }
    };
    metering::set_quota(
        &state.store,
        &app_id,
        kind,
        limit,
        from,
        until,
        &actor(&auth),
    )?;
    state.store.commit().await?;
    Ok(redirect(&format!("/console/systems/{app_id}#quota")))
}

async fn clear_quota(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    let app_id = path.into_inner();
    let action = Action::QuotaClear;
    guard(&state, &auth, Role::Operator, &form.csrf, action, &app_id)?;
    metering::clear_quota(&state.store, &app_id, &actor(&auth))?;
    state.store.commit().await?;
    Ok(redirect(&format!("/console/systems/{app_id}#quota")))
}

#[derive(Template)]
#[template(path = "portal_usage.html")]
pub struct PortalUsagePage {
    pub ctx: Ctx,
    /// Empty while the vendor has no approved system.
    pub app_id: String,
    pub system_name: String,
    pub from: String,
    pub to: String,
    pub rows: Vec<ReportRow>,
    pub total_rows: usize,
    pub totals: UsageCounts,
    pub quota: Option<QuotaView>,
    pub csv_href: String,
    pub error: String,
}

/// The signed-in vendor's own appId: looked up by account, never taken from the request.
fn own_app_id(state: &AppState, auth: &Auth) -> Result<Option<String>, ConsoleError> {
    Ok(state
        .store
        .get_application(&auth.username)?
        .and_then(|a| a.app_id))
}

async fn portal_usage(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<UsageQuery>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Vendor)?;
    let mut page = PortalUsagePage {
        ctx: Ctx::new(&auth, "/portal/usage"),
        app_id: String::new(),
        system_name: String::new(),
        from: q.from.trim().to_string(),
        to: q.to.trim().to_string(),
        rows: Vec::new(),
        total_rows: 0,
        totals: UsageCounts::default(),
        quota: None,
        csv_href: String::new(),
        error: String::new(),
    };
    let Some(app_id) = own_app_id(&state, &auth)? else {
        return html(&page);
    };
    page.system_name = state
        .store
        .get_system(&app_id)?
        .map(|s| s.name)
        .unwrap_or_default();
    page.quota = quota_view(&state, &app_id)?;
    page.app_id = app_id.clone();
    let (from, to) = match parse_range(&q.from, &q.to, Day::today()) {
        Ok(r) => r,
        Err(msg) => {
            page.error = msg;
            let mut resp = html(&page)?;
            *resp.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(resp);
        }
    };
    page.from = from.to_string();
    page.to = to.to_string();
    page.csv_href = format!("/portal/usage.csv?from={}&to={}", page.from, page.to);
    let r = page_rows(&state, Some(app_id), from, to).await?;
    (page.rows, page.total_rows, page.totals) = (r.rows, r.total_rows, r.totals);
    html(&page)
}

async fn portal_usage_csv(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<UsageQuery>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Vendor)?;
    let app_id = own_app_id(&state, &auth)?
        .ok_or_else(|| ConsoleError::NotFound("入驻申请通过后才有用量数据".into()))?;
    let (from, to) = parse_range(&q.from, &q.to, Day::today()).map_err(ConsoleError::Invalid)?;
    let rows = load_report(&state, Some(app_id), from, to).await?;
    Ok(csv_response(&rows, from, to))
}

/// (setting, `hutong.toml` key, effective value).
pub type Setting = (&'static str, &'static str, String);

#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub ctx: Ctx,
    /// (section title, its settings).
    pub sections: Vec<(&'static str, Vec<Setting>)>,
}

fn fmt_bytes(n: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB（{n} 字节）", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB（{n} 字节）", n / 1024)
    } else {
        format!("{n} 字节")
    }
}

fn yes_no(b: bool) -> String {
    if b { "是" } else { "否" }.into()
}

async fn settings(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Security)?;
    let c = &state.config;
    let unset = || "未配置".to_string();
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(unset)
    };
    let mut platform = vec![
        ("行政区划代码", "region_code", c.region_code.clone()),
        ("数据目录", "data_dir", c.data_dir.display().to_string()),
        ("HTTPS 监听地址（API 与控制台）", "listen", c.listen.clone()),
        (
            "指标监听地址（/metrics）",
            "metrics.listen",
            c.metrics
                .listener()
                .map(str::to_string)
                .unwrap_or_else(|| "未单独监听".into()),
        ),
        (
            "HTTPS 监听地址上的 /metrics",
            "metrics.token_file",
            match &c.metrics.token_file {
                Some(p) => format!("凭监控令牌访问（令牌文件 {}）", p.display()),
                None => "不提供".into(),
            },
        ),
        (
            "TLS 证书",
            "tls.cert",
            c.tls
                .cert
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "自动生成的自签名证书（仅供评估）".into()),
        ),
    ];
    platform.push((
        "计量数据保留期",
        "metering.retention_days",
        format!("{} 天", c.metering.retention_days),
    ));
    platform.push((
        "审计日志保留期",
        "audit.retention_days",
        format!("{} 天", c.audit.retention_days),
    ));
    platform.push((
        "成员系统回调超时",
        "interop.member_timeout_ms",
        format!("{} 毫秒", c.interop.member_timeout_ms),
    ));
    let srv = &c.server;
    platform.extend([
        (
            "请求体传输超时",
            "server.body_timeout_secs",
            format!("{} 秒", srv.body_timeout_secs),
        ),
        (
            "握手与请求头超时",
            "server.header_timeout_secs",
            format!("{} 秒", srv.header_timeout_secs),
        ),
        (
            "空闲连接保持",
            "server.keep_alive_secs",
            format!("{} 秒", srv.keep_alive_secs),
        ),
        (
            "每个客户端地址的连接上限",
            "server.max_connections_per_ip",
            srv.max_connections_per_ip.to_string(),
        ),
    ]);
    let api = vec![
        (
            "请求时间窗口",
            "api.time_window_secs",
            format!("± {} 秒", c.api.time_window_secs),
        ),
        (
            "JSON 请求体上限",
            "api.max_json_bytes",
            fmt_bytes(c.api.max_json_bytes),
        ),
        (
            "上传文件上限",
            "api.max_file_bytes",
            fmt_bytes(c.api.max_file_bytes),
        ),
        (
            "限流（每个 appId）",
            "api.rate_limit_per_sec / api.rate_limit_burst",
            format!(
                "每秒 {} 次，突发 {} 次",
                c.api.rate_limit_per_sec, c.api.rate_limit_burst
            ),
        ),
        (
            "signId 有效期",
            "api.sign_id_ttl_secs",
            format!("{} 秒", c.api.sign_id_ttl_secs),
        ),
        (
            "允许 MD5 / SHA-1 摘要算法",
            "api.allow_legacy_hashes",
            yes_no(c.api.allow_legacy_hashes),
        ),
    ];
    let verify = vec![
        (
            "未备案印章判定为验证失败",
            "verify.unregistered_is_failure",
            yes_no(c.verify.unregistered_is_failure),
        ),
        (
            "单次验证时间预算",
            "verify.time_budget_ms",
            match c.verify.time_budget_ms {
                0 => "不限".to_string(),
                ms => format!("{ms} 毫秒"),
            },
        ),
        (
            "同时进行的验证上限",
            "verify.max_concurrent",
            format!("{} 个", c.verify.concurrency_limit()),
        ),
        (
            "单次 PDF 验证内存上限",
            "verify.max_memory_mib",
            format!("{} MiB", c.verify.max_memory_mib),
        ),
    ];
    // Never the PIN or its file: only where the keys are and which token holds them.
    let mut keys = vec![("密钥提供者", "keys.provider", c.keys.provider.to_string())];
    if c.keys.provider == crate::config::KeyProviderKind::Pkcs11 {
        let p = &c.keys.pkcs11;
        keys.extend([
            ("PKCS#11 模块", "keys.pkcs11.module", path(&p.module)),
            (
                "令牌标签",
                "keys.pkcs11.token_label",
                p.token_label.clone().unwrap_or_else(unset),
            ),
            (
                "槽位",
                "keys.pkcs11.slot",
                p.slot.map(|s| s.to_string()).unwrap_or_else(unset),
            ),
            (
                "密钥加密密钥标签",
                "keys.pkcs11.kek_label",
                p.kek_label.clone(),
            ),
        ]);
    }
    html(&SettingsPage {
        ctx: Ctx::new(&auth, "/console/settings"),
        sections: vec![
            ("平台", platform),
            ("接口", api),
            ("文档验真", verify),
            ("密钥", keys),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_periods_default_to_thirty_days_and_stop_at_366() {
        let d = |n| Day::from_yyyymmdd(n).unwrap();
        let today = d(20261123);
        assert_eq!(parse_range("", "", today), Ok((d(20261025), d(20261123))));
        assert_eq!(
            parse_range("", "2026-03-01", today),
            Ok((d(20260131), d(20260301)))
        );
        assert_eq!(
            parse_range("2024-01-01", "2024-12-31", today),
            Ok((d(20240101), d(20241231))),
            "a leap year is 366 days"
        );
        let e = parse_range("2025-01-01", "2026-01-02", today).unwrap_err();
        assert!(e.contains("最多 366 天"), "{e}");
        let e = parse_range("2026-11-02", "2026-11-01", today).unwrap_err();
        assert!(e.contains("起始日期不能晚于截止日期"), "{e}");
        let e = parse_range("2026-02-30", "", today).unwrap_err();
        assert!(e.contains("起始日期"), "{e}");
        assert!(parse_range("", &"9".repeat(40), today).is_err());
    }

    #[test]
    fn quota_forms_name_the_wrong_field() {
        let form = QuotaForm {
            kind: "bytes".into(),
            limit: "0".into(),
            from: "2026-13-01".into(),
            until: "2026-12-01".into(),
            ..QuotaForm::default()
        };
        let errors = form.parse().unwrap_err();
        for field in ["kind", "limit", "from"] {
            assert!(errors.get(field).is_some(), "{field}");
        }
        assert!(errors.get("until").is_none());
        let form = QuotaForm {
            kind: "users".into(),
            limit: "500".into(),
            from: "2026-12-01".into(),
            until: "2026-11-30".into(),
            ..QuotaForm::default()
        };
        assert_eq!(
            form.parse().unwrap_err().get("until"),
            Some("截止日期不能早于起始日期")
        );
        let form = QuotaForm {
            until: "2026-12-01".into(),
            ..form
        };
        assert_eq!(
            form.parse().ok(),
            Some((
                QuotaKind::Users,
                500,
                Day::from_yyyymmdd(20261201).unwrap(),
                Day::from_yyyymmdd(20261201).unwrap()
            ))
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(query_value("abc-_.~09"), "abc-_.~09");
        assert_eq!(query_value("a&b=c d"), "a%26b%3Dc%20d");
    }
}
