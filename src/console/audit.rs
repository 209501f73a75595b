//! The auditor's pages over the audit log (SPEC §6.1, STD §8.1): search of the normalised
//! index, an entry with its leaf hash and inclusion proof, the integrity check that
//! `hutong audit verify` runs, and the export download. Auditor role only and read-only: GET
//! forms, no state changed but the audit entries these pages record (`audit.verify`,
//! `audit.export`; a refused page is `denied` under the page's action).

use super::session::Auth;
use super::views::{self, Ctx};
use super::{ConsoleError, fmt_time, html};
use crate::app::AppState;
use crate::audit::{checkpoint, entry::Entry, export};
use crate::domain::audit_event::{Action, Outcome};
use crate::domain::vocab::Role;
use crate::store::audit_log::{AuditQuery, Field, MAX_EXAMINED};
use crate::time::Day;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

/// Entries per search page.
pub const PAGE_SIZE: usize = 50;
/// Longest filter value accepted.
const MAX_FILTER_CHARS: usize = 128;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(search))
        .route("/audit/verify", web::get().to(verify))
        .route("/audit/export", web::get().to(export_download))
        .route("/audit/entry/{seq}", web::get().to(entry_page));
}

/// The auditor role, or the forbidden page with a `denied` entry under `action`.
fn require_auditor(
    state: &AppState,
    auth: &Auth,
    action: Action,
    target: &str,
) -> Result<(), ConsoleError> {
    let checked = auth.require(Role::Auditor);
    if let Err(e) = &checked
        && !matches!(e, ConsoleError::MustChangePassword)
    {
        super::admin::audit(state, auth, action, target, Outcome::Denied, &e.to_string());
    }
    checked
}

/// The search form as typed (echoed back into the page).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default, rename = "appId")]
    pub app_id: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub before: String,
}

/// Parses a time in platform time: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` or the browser's
/// `YYYY-MM-DDTHH:MM[:SS]`. A bare date means its first millisecond, or with `end` its last.
pub fn parse_time(text: &str, what: &str, end: bool) -> Result<Option<i64>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = || format!("{what}“{t}”应为 YYYY-MM-DD 或 YYYY-MM-DD HH:MM[:SS]（北京时间）");
    if t.chars().count() > 32 {
        return Err(bad());
    }
    let (date, clock) = match t.split_once(['T', ' ']) {
        Some((d, c)) => (d, Some(c.trim())),
        None => (t, None),
    };
    let day = Day::parse(date).map_err(|_| bad())?;
    let start = day.start_ms();
    let Some(clock) = clock else {
        return Ok(Some(if end { start + 86_400_000 - 1 } else { start }));
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let num = |s: &str, max: i64| -> Result<i64, String> {
        if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: i64 = s.parse().map_err(|_| bad())?;
        if n > max {
            return Err(bad());
        }
        Ok(n)
    };
    let (h, m, sec, whole_minute) = match parts.as_slice() {
        [h, m] => (num(h, 23)?, num(m, 59)?, 0, true),
        [h, m, s] => (num(h, 23)?, num(m, 59)?, num(s, 59)?, false),
        _ => return Err(bad()),
    };
    let ms = start + ((h * 60 + m) * 60 + sec) * 1000;
    // A minute given as the end of a range includes that whole minute.
    Ok(Some(match (end, whole_minute) {
        (true, true) => ms + 59_999,
        (true, false) => ms + 999,
        _ => ms,
    }))
}

/// The query of a form, or the message naming the bad field.
fn query_of(f: &SearchForm) -> Result<AuditQuery, String> {
    let from_ms = parse_time(&f.from, "起始时间", false)?;
    let to_ms = parse_time(&f.to, "截止时间", true)?;
    if let (Some(a), Some(b)) = (from_ms, to_ms)
        && a > b
    {
        return Err("起始时间晚于截止时间".into());
    }
    let mut fields = Vec::new();
    for (field, label, value) in [
        (Field::AppId, "appId", &f.app_id),
        (Field::Actor, "操作人", &f.actor),
        (Field::Action, "动作", &f.action),
    ] {
        let v = value.trim();
        if v.chars().count() > MAX_FILTER_CHARS {
            return Err(format!("{label}过长（最多 {MAX_FILTER_CHARS} 个字符）"));
        }
        if !v.is_empty() {
            fields.push((field, v.to_string()));
        }
    }
    match f.result.trim() {
        "" => {}
        r @ ("ok" | "denied" | "error") => fields.push((Field::Result, r.to_string())),
        _ => return Err("结果只能是 ok、denied 或 error".into()),
    }
    let before = match f.before.trim() {
        "" => None,
        b => Some(
            b.parse::<u64>()
                .map_err(|_| "翻页参数 before 应为条目序号".to_string())?,
        ),
    };
    Ok(AuditQuery {
        from_ms,
        to_ms,
        fields,
        before,
        limit: PAGE_SIZE,
    })
}

/// application/x-www-form-urlencoded encoding of one value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn search_href(f: &SearchForm, before: u64) -> String {
    format!(
        "/console/audit?from={}&to={}&appId={}&actor={}&action={}&result={}&before={before}",
        urlencode(f.from.trim()),
        urlencode(f.to.trim()),
        urlencode(f.app_id.trim()),
        urlencode(f.actor.trim()),
        urlencode(f.action.trim()),
        urlencode(f.result.trim()),
    )
}

/// One row of the search results.
pub struct AuditRow {
    pub seq: u64,
    pub at: String,
    pub kind: &'static str,
    pub action: String,
    pub actor: String,
    pub target: String,
    pub result: &'static str,
    pub code: String,
}

fn actor_label(e: &Entry) -> String {
    match &e.actor.role {
        Some(r) => format!("{}:{}（{r}）", e.actor.kind, e.actor.id),
        None => format!("{}:{}", e.actor.kind, e.actor.id),
    }
}

fn row(seq: u64, e: &Entry) -> AuditRow {
    AuditRow {
        seq,
        at: fmt_time(e.at),
        kind: e.kind.as_str(),
        action: e.action.clone(),
        actor: actor_label(e),
        target: e.target.clone(),
        result: e.result.as_str(),
        code: e.code.map(|c| c.to_string()).unwrap_or_default(),
    }
}

async fn search(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<SearchForm>,
) -> Result<HttpResponse, ConsoleError> {
    require_auditor(&state, &auth, Action::AuditSearch, "")?;
    let form = q.into_inner();
    let mut page = views::AuditSearchPage {
        ctx: Ctx::new(&auth, "/console/audit"),
        form: form.clone(),
        rows: Vec::new(),
        next_href: String::new(),
        notice: String::new(),
        error: String::new(),
        first_seq: 0,
        size: 0,
    };
    let query = match query_of(&form) {
        Ok(q) => q,
        Err(msg) => {
            page.error = msg;
            let mut resp = html(&page)?;
            *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            return Ok(resp);
        }
    };
    let store = state.store.clone();
    let found = web::block(move || store.search_audit(&query))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))??;
    page.rows = found.entries.iter().map(|(s, e)| row(*s, e)).collect();
    if let Some(b) = found.next_before {
        page.next_href = search_href(&form, b);
    }
    if found.truncated {
        page.notice = format!(
            "结果较多，请缩小时间范围（本页检查了 {MAX_EXAMINED} 条索引记录后停止，可点“下一页”继续）"
        );
    }
    page.first_seq = state.store.audit_first_seq()?;
    page.size = state.store.audit_frontier()?.size;
    html(&page)
}

async fn entry_page(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let raw = path.into_inner();
    let target: String = raw.chars().take(24).collect();
    require_auditor(&state, &auth, Action::AuditSearch, &target)?;
    let seq: u64 = raw
        .parse()
        .map_err(|_| ConsoleError::Invalid("条目序号应为非负整数".into()))?;
    let store = state.store.clone();
    let page = web::block(move || entry_view(&store, seq))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))??;
    html(&views::AuditEntryPage {
        ctx: Ctx::new(&auth, "/console/audit"),
        e: page,
    })
}

fn entry_view(store: &crate::store::Store, seq: u64) -> Result<views::EntryView, ConsoleError> {
    let first = store.audit_first_seq()?;
    let Some(leaf) = store.audit_leaf(seq)? else {
        return Err(ConsoleError::NotFound(if seq < first {
            format!("条目 seq {seq} 已按保留期限清理（现存最早的条目为 seq {first}）")
        } else {
            format!("条目 seq {seq} 不存在")
        }));
    };
    let e = crate::audit::entry::parse(&leaf)
        .ok_or_else(|| ConsoleError::Internal(format!("audit leaf {seq} does not parse")))?;
    let mut v = views::EntryView {
        seq,
        at_ms: e.at,
        at: fmt_time(e.at),
        kind: e.kind.as_str(),
        action: e.action.clone(),
        actor_type: e.actor.kind.clone(),
        actor_id: e.actor.id.clone(),
        actor_role: e.actor.role.clone().unwrap_or_else(|| "null".into()),
        target: e.target.clone(),
        result: e.result.as_str(),
        code: opt(e.code),
        request_id: e.request_id.clone().unwrap_or_else(|| "null".into()),
        client: e.client.clone().unwrap_or_else(|| "null".into()),
        latency_ms: opt(e.latency_ms),
        params_digest: e.params_digest.clone().unwrap_or_else(|| "null".into()),
        detail: e.detail.clone(),
        leaf: String::from_utf8_lossy(&leaf).into_owned(),
        leaf_hash: hex::encode(crate::audit::merkle::leaf_hash(&leaf)),
        proof_size: 0,
        proof_root: String::new(),
        signed_root: String::new(),
        root_matches: false,
        path: Vec::new(),
        checkpoint_text: String::new(),
        checkpoint_signature: String::new(),
        proof_note: String::new(),
    };
    match store.last_audit_checkpoint()? {
        Some((size, cp)) if size > seq => match export::inclusion_proof(store, seq, size)? {
            Ok(p) => {
                v.proof_size = size;
                v.proof_root = hex::encode(p.root);
                v.signed_root = checkpoint::parse(&cp.text)
                    .map(|c| hex::encode(c.root))
                    .unwrap_or_default();
                v.root_matches = v.signed_root == v.proof_root;
                v.path = p.path.iter().map(hex::encode).collect();
                v.checkpoint_text = cp.text;
                v.checkpoint_signature = cp.signature;
            }
            Err(msg) => v.proof_note = msg,
        },
        _ => {
            v.proof_note =
                "最新的检查点尚未覆盖此条目（检查点每分钟签署一次），稍后刷新即可看到包含证明"
                    .into()
        }
    }
    Ok(v)
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "null".into(), |n| n.to_string())
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    #[serde(default)]
    run: String,
}

async fn verify(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<VerifyQuery>,
) -> Result<HttpResponse, ConsoleError> {
    require_auditor(&state, &auth, Action::AuditVerify, "")?;
    let mut page = views::AuditVerifyPage {
        ctx: Ctx::new(&auth, "/console/audit/verify"),
        ran: false,
        report: None,
        first_seq: state.store.audit_first_seq()?,
    };
    if q.run.is_empty() {
        return html(&page);
    }
    let store = state.store.clone();
    let certs = state.keys.platform_cert_ders();
    let report = web::block(move || export::verify_store(&store, &certs))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))??;
    let detail = match &report.problem {
        None => format!(
            "通过：条目 {}，检查点 {}，树大小 {}",
            report.entries, report.checkpoints, report.tree_size
        ),
        Some(p) => format!("不通过：{p}"),
    };
    crate::domain::audit::record(
        &state.store,
        &super::admin::actor(&auth),
        Action::AuditVerify,
        Outcome::Ok,
        "",
        detail,
    )?;
    state.store.commit().await?;
    page.ran = true;
    page.report = Some(report);
    html(&page)
}

#[derive(Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

async fn export_download(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ConsoleError> {
    require_auditor(&state, &auth, Action::AuditExport, "")?;
    let range = parse_time(&q.from, "起始时间", false)
        .and_then(|f| Ok((f, parse_time(&q.to, "截止时间", true)?)))
        .and_then(|(f, t)| match (f, t) {
            (Some(a), Some(b)) if a > b => Err("起始时间晚于截止时间".to_string()),
            r => Ok(r),
        });
    let (from_ms, to_ms) = match range {
        Ok(r) => r,
        Err(msg) => {
            let e = ConsoleError::Invalid(msg);
            super::admin::audit(
                &state,
                &auth,
                Action::AuditExport,
                "",
                Outcome::Failed,
                &e.to_string(),
            );
            return Err(e);
        }
    };
    let label = |t: Option<i64>| t.map_or_else(|| "不限".to_string(), fmt_time);
    crate::domain::audit::record(
        &state.store,
        &super::admin::actor(&auth),
        Action::AuditExport,
        Outcome::Ok,
        "",
        format!("{} 至 {}", label(from_ms), label(to_ms)),
    )?;
    state.store.commit().await?;
    let store = state.store.clone();
    let body = web::block(move || {
        let mut out = Vec::new();
        export::export(&store, from_ms, to_ms, &mut out).map(|()| out)
    })
    .await
    .map_err(|e| ConsoleError::Internal(e.to_string()))??;
    let stamp = crate::time::Day::of_ms(crate::time::now_ms());
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"hutong-audit-{stamp}.jsonl\""),
        ))
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_platform_time_and_bad_ones_are_named() {
        let day = Day::parse("2026-03-01").unwrap().start_ms();
        assert_eq!(parse_time("2026-03-01", "x", false), Ok(Some(day)));
        assert_eq!(
            parse_time("2026-03-01", "x", true),
            Ok(Some(day + 86_400_000 - 1))
        );
        assert_eq!(
            parse_time("2026-03-01T08:30", "x", false),
            Ok(Some(day + 8 * 3_600_000 + 30 * 60_000))
        );
        assert_eq!(
            parse_time("2026-03-01 08:30:15", "x", true),
            Ok(Some(day + 8 * 3_600_000 + 30 * 60_000 + 15_999))
        );
        assert_eq!(parse_time(" ", "x", false), Ok(None));
        for bad in [
            "2026-13-01",
            "2026-03-01T24:00",
            "2026-03-01 8:30",
            "yesterday",
        ] {
            let e = parse_time(bad, "起始时间", false).unwrap_err();
            assert!(e.contains("起始时间") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn a_form_becomes_a_bounded_query() {
        let f = SearchForm {
            app_id: " HT1 ".into(),
            result: "denied".into(),
            before: "17".into(),
            ..Default::default()
        };
        let q = query_of(&f).unwrap();
        assert_eq!(
            q.fields,
            [
                (Field::AppId, "HT1".to_string()),
                (Field::Result, "denied".to_string())
            ]
        );
        assert_eq!((q.before, q.limit), (Some(17), PAGE_SIZE));
        let long = SearchForm {
            actor: "x".repeat(200),
            ..Default::default()
        };
        assert!(query_of(&long).unwrap_err().contains("操作人过长"));
        let bad = SearchForm {
            result: "failed".into(),
            ..Default::default()
        };
        assert!(query_of(&bad).unwrap_err().contains("结果只能是"));
        let reversed = SearchForm {
            from: "2026-03-02".into(),
            to: "2026-03-01".into(),
            ..Default::default()
        };
        assert!(query_of(&reversed).unwrap_err().contains("晚于"));
    }
}
