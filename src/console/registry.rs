//! Seal registry search (系统管理员), trust anchors (安全管理员) and document verification
//! (系统管理员). Same rules as the other pages: the role is checked on the server first, every
//! form carries the session's CSRF token, every action becomes an event. Seal pictures are
//! served from same-origin routes (the CSP allows `img-src 'self'` only, no `data:` URLs).

use super::admin::{CsrfForm, audit, finish, guard};
use super::session::Auth;
use super::views::Ctx;
use super::{ConsoleError, fmt_time, html};
use crate::app::AppState;
use crate::crypto::{sm, x509::CertInfo};
use crate::domain::vocab::Role;
use crate::domain::vocab::SealState;
use crate::domain::{codes, documents, seals as dseals};
use crate::ses::SesSeal;
use crate::store::seals::SealRecord;
use crate::verify::DocumentReport;
use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use futures_util::StreamExt;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};

/// At most this many seals are listed for one search.
pub const MAX_RESULTS: usize = 100;
/// Largest CA certificate accepted (PEM or DER).
const MAX_CERT_BYTES: usize = 64 * 1024;
/// Largest text part of a multipart form (CSRF token, PEM textarea).
const MAX_TEXT_PART: usize = 64 * 1024;
const MAX_PARTS: usize = 8;
/// Verification reports whose seal pictures are kept for display (one per session).
const MAX_CACHED_REPORTS: usize = 32;
/// Pictures larger than this are not kept for display.
const MAX_CACHED_PICTURE: usize = 2 * 1024 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/seals", web::get().to(seals_page))
        .route("/seals/{code}/picture", web::get().to(seal_picture))
        .route("/trust", web::get().to(trust_page))
        .route("/trust", web::post().to(trust_add))
        .route("/trust/{id}/remove", web::post().to(trust_remove))
        .route("/verify", web::get().to(verify_page))
        .route("/verify", web::post().to(verify_upload))
        .route(
            "/verify/picture/{report}/{index}",
            web::get().to(report_picture),
        );
}

/// The browser content type of a seal picture, from its bytes; `None` when a browser cannot
/// show it (OFD-packaged pictures, unknown formats).
pub fn picture_content_type(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if data.starts_with(b"GIF8") {
        return Some("image/gif");
    }
    if data.starts_with(b"BM") {
        return Some("image/bmp");
    }
    let head = String::from_utf8_lossy(data.get(..1024).unwrap_or(data));
    let head = head.trim_start_matches('\u{feff}').trim_start();
    if (head.starts_with("<?xml") || head.starts_with("<svg") || head.starts_with("<!--"))
        && head.contains("<svg")
    {
        return Some("image/svg+xml");
    }
    None
}

/// Serves picture bytes; SVG stays inert (the scope's CSP forbids scripts, and it is offered as
/// a download when opened directly).
fn picture_response(data: Vec<u8>) -> Result<HttpResponse, ConsoleError> {
    let ct = picture_content_type(&data)
        .ok_or_else(|| ConsoleError::NotFound("印章图片格式无法在浏览器中显示".into()))?;
    Ok(HttpResponse::Ok()
        .content_type(ct)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "inline; filename=\"seal-picture\"",
        ))
        .body(data))
}

fn blocking_err(e: actix_web::error::BlockingError) -> ConsoleError {
    ConsoleError::Internal(e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Seal registry search
// ---------------------------------------------------------------------------------------------

pub struct SealRow {
    pub seal_code: String,
    pub name: String,
    pub seal_type: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub app_id: String,
    pub system_name: String,
    pub possessor: String,
    pub possessor_cert_no: String,
    pub valid_from: String,
    pub valid_to: String,
    pub test_data: bool,
    pub has_picture: bool,
}

#[derive(Template)]
#[template(path = "seals.html")]
pub struct SealsPage {
    pub ctx: Ctx,
    pub by: String,
    pub q: String,
    pub searched: bool,
    pub rows: Vec<SealRow>,
    pub capped: bool,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    by: String,
    #[serde(default)]
    q: String,
}

fn state_class(s: SealState) -> &'static str {
    match s {
        SealState::Enabled => "online",
        SealState::Disabled => "testing",
        SealState::Revoked => "suspended",
    }
}

/// The seal's picture from its current version's `SES_Seal`.
fn current_picture(state: &AppState, rec: &SealRecord) -> Result<Option<Vec<u8>>, ConsoleError> {
    let Some(v) = rec.current() else {
        return Ok(None);
    };
    let Some(der) = state.store.seal_der(&v.digest)? else {
        return Ok(None);
    };
    Ok(SesSeal::decode(&der).ok().map(|s| s.picture.data))
}

/// A row with personal data masked: a person's name and ID number are decrypted only to be
/// masked here; an organisation's name and code are public.
fn seal_row(state: &AppState, rec: &SealRecord) -> Result<SealRow, ConsoleError> {
    let provider = state.keys.provider();
    let reveal = |f| dseals::reveal(&state.store, provider, &rec.app_id, f);
    let (possessor, cert_no) = if rec.possessor_type == 2 {
        (
            codes::mask_name(&reveal(&rec.possessor)?),
            codes::mask_id(&reveal(&rec.possessor_cert_no)?),
        )
    } else {
        (reveal(&rec.possessor)?, reveal(&rec.possessor_cert_no)?)
    };
    let system_name = state
        .store
        .get_system(&rec.app_id)?
        .map(|s| s.name)
        .unwrap_or_default();
    let v = rec.current();
    Ok(SealRow {
        seal_code: rec.seal_code.clone(),
        name: rec.name.clone(),
        seal_type: rec.seal_type.clone(),
        state: rec.state.label(),
        state_class: state_class(rec.state),
        app_id: rec.app_id.clone(),
        system_name,
        possessor,
        possessor_cert_no: cert_no,
        valid_from: v.map(|v| fmt_time(v.valid_start_ms)).unwrap_or_default(),
        valid_to: v.map(|v| fmt_time(v.valid_end_ms)).unwrap_or_default(),
        test_data: rec.test_data,
        has_picture: current_picture(state, rec)?
            .is_some_and(|p| picture_content_type(&p).is_some()),
    })
}

/// Finds seal records: by org code through the salted index, by seal code directly, by name
/// with a scan that stops at [`MAX_RESULTS`] + 1 hits.
fn search(state: &AppState, by: &str, q: &str) -> Result<Vec<SealRecord>, ConsoleError> {
    let mut out = Vec::new();
    match by {
        "org" => {
            let key = dseals::org_key(&state.store, q)?;
            for code in state.store.seals_of_org(&key)? {
                if out.len() > MAX_RESULTS {
                    break;
                }
                if let Some(rec) = state.store.get_seal(&code)? {
                    out.push(rec);
                }
            }
        }
        "code" => {
            if let Some(rec) = state.store.get_seal(&q.to_ascii_uppercase())? {
                out.push(rec);
            }
        }
        "name" => {
            for item in state.store.seals.iter() {
                let (_, v) = item?;
                let Ok(rec) = crate::store::decode::<SealRecord>(&v) else {
                    continue;
                };
                if rec.name.contains(q) {
                    out.push(rec);
                    if out.len() > MAX_RESULTS {
                        break;
                    }
                }
            }
        }
        _ => return Err(ConsoleError::Invalid("请选择查询方式".into())),
    }
    Ok(out)
}

async fn seals_page(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    let q: String = query.q.trim().chars().take(128).collect();
    let by = if query.by.is_empty() {
        "org".to_string()
    } else {
        query.by.clone()
    };
    let mut page = SealsPage {
        ctx: Ctx::new(&auth, "/console/seals"),
        by: by.clone(),
        q: q.clone(),
        searched: !q.is_empty(),
        rows: Vec::new(),
        capped: false,
    };
    if q.is_empty() {
        return html(&page);
    }
    let st = state.clone();
    let (b, qq) = (by.clone(), q.clone());
    let found = web::block(move || -> Result<Vec<SealRow>, ConsoleError> {
        search(&st, &b, &qq)?
            .iter()
            .map(|r| seal_row(&st, r))
            .collect()
    })
    .await
    .map_err(blocking_err)?;
    // The search itself is recorded: it reveals who holds which seals. A person's ID number
    // is masked in the log as on the page.
    let target = if by == "org" {
        codes::mask_id(&q)
    } else {
        q.clone()
    };
    match found {
        Ok(mut rows) => {
            page.capped = rows.len() > MAX_RESULTS;
            rows.truncate(MAX_RESULTS);
            audit(
                &state,
                &auth,
                "console.seal_search",
                &target,
                "ok",
                &format!("方式={by}; 结果={}", rows.len()),
            );
            page.rows = rows;
            html(&page)
        }
        Err(e) => {
            audit(
                &state,
                &auth,
                "console.seal_search",
                &target,
                "failed",
                &e.to_string(),
            );
            Err(e)
        }
    }
}

async fn seal_picture(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    let code = path.into_inner();
    let rec = state
        .store
        .get_seal(&code)?
        .ok_or_else(|| ConsoleError::NotFound(format!("印章 {code} 不存在")))?;
    let pic = current_picture(&state, &rec)?
        .ok_or_else(|| ConsoleError::NotFound("印章图片不可用".into()))?;
    picture_response(pic)
}

// ---------------------------------------------------------------------------------------------
// Multipart forms
// ---------------------------------------------------------------------------------------------

struct MultipartForm {
    texts: HashMap<String, String>,
    file: Option<(String, Vec<u8>)>,
}

/// Reads a multipart form with text parts and at most one file part named `file_field`.
async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    file_field: &str,
    max_file: usize,
) -> Result<MultipartForm, ConsoleError> {
    let too_large = || ConsoleError::Invalid(format!("文件过大（上限 {max_file} 字节）"));
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ConsoleError::Invalid("表单格式错误".into()));
    }
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > max_file + MAX_PARTS * MAX_TEXT_PART
    {
        return Err(too_large());
    }
    let mut mp = Multipart::new(req.headers(), payload);
    let mut form = MultipartForm {
        texts: HashMap::new(),
        file: None,
    };
    let mut parts = 0;
    while let Some(field) = mp.next().await {
        let mut field = field.map_err(|_| ConsoleError::Invalid("表单格式错误".into()))?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ConsoleError::Invalid("表单部分过多".into()));
        }
        let name = field.name().unwrap_or_default().to_string();
        if name == file_field {
            let file_name: String = field
                .content_disposition()
                .and_then(|cd| cd.get_filename())
                .unwrap_or("document")
                .chars()
                .take(255)
                .collect();
            let bytes = field
                .bytes(max_file)
                .await
                .map_err(|_| too_large())?
                .map_err(|_| ConsoleError::Invalid("文件读取失败".into()))?;
            form.file = Some((file_name, bytes.to_vec()));
        } else {
            let bytes = field
                .bytes(MAX_TEXT_PART)
                .await
                .map_err(|_| ConsoleError::Invalid(format!("字段 {name} 过长")))?
                .map_err(|_| ConsoleError::Invalid("表单读取失败".into()))?;
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| ConsoleError::Invalid(format!("字段 {name} 不是 UTF-8 文本")))?;
            form.texts.insert(name, text);
        }
    }
    Ok(form)
}

impl MultipartForm {
    fn csrf(&self) -> &str {
        self.texts.get("csrf").map(String::as_str).unwrap_or("")
    }
}

// ---------------------------------------------------------------------------------------------
// Trust anchors
// ---------------------------------------------------------------------------------------------

pub struct AnchorRow {
    pub id: String,
    pub short_id: String,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub expired: bool,
    pub is_ca: bool,
}

#[derive(Template)]
#[template(path = "trust.html")]
pub struct TrustPage {
    pub ctx: Ctx,
    pub rows: Vec<AnchorRow>,
    pub error: String,
}

fn trust_rows(state: &AppState) -> Result<Vec<AnchorRow>, ConsoleError> {
    let now = crate::time::now_ms();
    let mut rows: Vec<AnchorRow> = state
        .store
        .trust_anchors()?
        .into_iter()
        .map(|(id, der)| {
            let short_id = id.get(..16).unwrap_or(&id).to_string();
            match CertInfo::parse(&der) {
                Ok(c) => AnchorRow {
                    id,
                    short_id,
                    subject: c.subject,
                    issuer: c.issuer,
                    serial: c.serial_hex,
                    not_before: fmt_time(c.not_before_ms),
                    not_after: fmt_time(c.not_after_ms),
                    expired: c.not_after_ms < now,
                    is_ca: c.basic_constraints.is_some_and(|(ca, _)| ca),
                },
                Err(e) => AnchorRow {
                    id,
                    short_id,
                    subject: format!("（无法解析: {e}）"),
                    issuer: String::new(),
                    serial: String::new(),
                    not_before: String::new(),
                    not_after: String::new(),
                    expired: false,
                    is_ca: false,
                },
            }
        })
        .collect();
    rows.sort_by(|a, b| a.subject.cmp(&b.subject));
    Ok(rows)
}

async fn trust_page(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Security)?;
    html(&TrustPage {
        ctx: Ctx::new(&auth, "/console/trust"),
        rows: trust_rows(&state)?,
        error: String::new(),
    })
}

async fn trust_add(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    // The role is checked before the body is read; the CSRF token comes with the body.
    if auth.require(Role::Security).is_err() {
        guard(&state, &auth, Role::Security, "", "trust.add", "")?;
    }
    let form = match read_multipart(&req, payload, "cert", MAX_CERT_BYTES).await {
        Ok(f) => f,
        Err(e) => {
            audit(&state, &auth, "trust.add", "", "failed", &e.to_string());
            return Err(e);
        }
    };
    guard(&state, &auth, Role::Security, form.csrf(), "trust.add", "")?;
    let pem = form.texts.get("pem").map(|s| s.trim()).unwrap_or("");
    let bytes = match &form.file {
        Some((_, b)) if !b.is_empty() => b.clone(),
        _ if !pem.is_empty() => pem.as_bytes().to_vec(),
        _ => {
            let e = ConsoleError::Invalid("请选择证书文件或粘贴 PEM".into());
            audit(&state, &auth, "trust.add", "", "failed", &e.to_string());
            return Err(e);
        }
    };
    let target = sm::sm3_hex(&bytes);
    let store = state.store.clone();
    let actor = auth.username.clone();
    let res = web::block(move || documents::add_trust_anchor(&store, &bytes, &actor))
        .await
        .map_err(blocking_err)?;
    match res {
        Ok((id, subject)) => {
            audit(&state, &auth, "console.trust_add", &id, "ok", &subject);
            state.store.commit().await?;
            Ok(super::redirect("/console/trust"))
        }
        Err(e) => {
            let msg = ConsoleError::from(e).to_string();
            audit(&state, &auth, "console.trust_add", &target, "failed", &msg);
            let mut resp = html(&TrustPage {
                ctx: Ctx::new(&auth, "/console/trust"),
                rows: trust_rows(&state)?,
                error: msg,
            })?;
            *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            Ok(resp)
        }
    }
}

async fn trust_remove(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    let id = path.into_inner();
    guard(
        &state,
        &auth,
        Role::Security,
        &form.csrf,
        "trust.remove",
        &id,
    )?;
    let res = match state.store.remove_trust_anchor(&id) {
        Ok(true) => Ok(()),
        Ok(false) => Err(crate::domain::DomainError::NotFound(format!(
            "信任锚 {id} 不存在"
        ))),
        Err(e) => Err(crate::domain::DomainError::Store(e)),
    };
    finish(&state, &auth, "trust.remove", &id, res, "/console/trust").await
}

// ---------------------------------------------------------------------------------------------
// Document verification
// ---------------------------------------------------------------------------------------------

pub struct StepRow {
    pub step: &'static str,
    pub label: &'static str,
    pub passed: bool,
    pub hint: String,
}

pub struct SignatureView {
    pub index: usize,
    pub seal_type: String,
    pub sign_time: String,
    pub provider: String,
    pub cert_issuer: String,
    pub cert_owner: String,
    pub cert_sn: String,
    pub cert_valid_start: String,
    pub cert_valid_end: String,
    pub seal_code: String,
    pub seal_name: String,
    pub signature_type: String,
    pub algorithm: String,
    pub registry_state: String,
    pub location: String,
    /// Same-origin URL of the seal picture, when the browser can show it.
    pub picture_url: String,
    pub steps: Vec<StepRow>,
}

pub struct ReportView {
    pub file_name: String,
    pub file_size: u64,
    pub format: String,
    pub sign_count: usize,
    pub verify_result: bool,
    pub error: String,
    pub signatures: Vec<SignatureView>,
}

#[derive(Template)]
#[template(path = "verify.html")]
pub struct VerifyPage {
    pub ctx: Ctx,
    pub max_mb: String,
    pub report: Option<ReportView>,
    pub error: String,
}

fn step_label(step: &str) -> &'static str {
    match step {
        "parse" => "文件解析",
        "integrity" => "完整性",
        "signature" => "签名值",
        "certificate" => "证书",
        "seal" => "印章",
        "registry" => "备案状态",
        "timestamp" => "时间戳",
        "coverage" => "签后修改",
        _ => "其他",
    }
}

/// The last report's pictures per session: (SM3 of the session token, report id, pictures).
type PictureCache = VecDeque<([u8; 32], String, Vec<Option<Vec<u8>>>)>;
static REPORT_PICTURES: LazyLock<Mutex<PictureCache>> =
    LazyLock::new(|| Mutex::new(VecDeque::new()));

fn cache_pictures(token: &str, report_id: &str, pictures: Vec<Option<Vec<u8>>>) {
    let key = sm::sm3(token.as_bytes());
    if let Ok(mut cache) = REPORT_PICTURES.lock() {
        cache.retain(|(k, _, _)| *k != key);
        while cache.len() >= MAX_CACHED_REPORTS {
            cache.pop_front();
        }
        cache.push_back((key, report_id.to_string(), pictures));
    }
}

fn cached_picture(token: &str, report_id: &str, index: usize) -> Option<Vec<u8>> {
    let key = sm::sm3(token.as_bytes());
    let cache = REPORT_PICTURES.lock().ok()?;
    cache
        .iter()
        .find(|(k, r, _)| *k == key && r == report_id)
        .and_then(|(_, _, p)| p.get(index).cloned().flatten())
}

fn report_view(auth: &Auth, r: &DocumentReport) -> ReportView {
    let report_id = hex::encode(sm::random_bytes::<8>());
    let mut pictures = Vec::new();
    let signatures = r
        .details
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let pic = base64::engine::general_purpose::STANDARD
                .decode(&d.seal_pic_base64)
                .ok()
                .filter(|p| p.len() <= MAX_CACHED_PICTURE && picture_content_type(p).is_some());
            let picture_url = if pic.is_some() {
                format!("/console/verify/picture/{report_id}/{i}")
            } else {
                String::new()
            };
            pictures.push(pic);
            let steps: Vec<StepRow> = d
                .flow_vo_list
                .iter()
                .map(|f| StepRow {
                    step: f.step.name(),
                    label: step_label(f.step.name()),
                    passed: f.status == 1,
                    hint: f.hint.clone(),
                })
                .collect();
            SignatureView {
                index: i + 1,
                seal_type: d.seal_type.clone(),
                sign_time: d.sign_time.clone(),
                provider: d.provider.clone(),
                cert_issuer: d.cert_issuer.clone(),
                cert_owner: d.cert_owner.clone(),
                cert_sn: d.cert_sn.clone(),
                cert_valid_start: d.cert_valid_start.clone(),
                cert_valid_end: d.cert_valid_end.clone(),
                seal_code: d.seal_code.clone(),
                seal_name: d.seal_name.clone(),
                signature_type: if d.signature_type == crate::verify::SignatureType::Seal {
                    "电子签章".into()
                } else {
                    "数字签名".into()
                },
                algorithm: d.algorithm.to_string(),
                registry_state: d.registry_state.clone(),
                location: d.location.clone(),
                picture_url,
                steps,
            }
        })
        .collect();
    cache_pictures(&auth.token, &report_id, pictures);
    ReportView {
        file_name: r.file_name.clone(),
        file_size: r.file_size,
        format: r.format.name().to_string(),
        sign_count: r.sign_count,
        verify_result: r.verify_result,
        error: r.error.clone().unwrap_or_default(),
        signatures,
    }
}

fn max_mb(state: &AppState) -> String {
    let mb = state.config.api.max_file_bytes as f64 / (1024.0 * 1024.0);
    format!("{mb:.0}")
}

async fn verify_page(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    html(&VerifyPage {
        ctx: Ctx::new(&auth, "/console/verify"),
        max_mb: max_mb(&state),
        report: None,
        error: String::new(),
    })
}

async fn verify_upload(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    if auth.require(Role::Operator).is_err() {
        guard(&state, &auth, Role::Operator, "", "document.verify", "")?;
    }
    let max = state.config.api.max_file_bytes;
    let form = match read_multipart(&req, payload, "file", max).await {
        Ok(f) => f,
        Err(e) => {
            audit(
                &state,
                &auth,
                "document.verify",
                "",
                "failed",
                &e.to_string(),
            );
            return Err(e);
        }
    };
    guard(
        &state,
        &auth,
        Role::Operator,
        form.csrf(),
        "document.verify",
        "",
    )?;
    let Some((name, bytes)) = form.file.filter(|(_, b)| !b.is_empty()) else {
        let e = ConsoleError::Invalid("请选择要验证的 PDF 或 OFD 文件".into());
        audit(
            &state,
            &auth,
            "document.verify",
            "",
            "failed",
            &e.to_string(),
        );
        return Err(e);
    };
    let digest = sm::sm3_hex(&bytes);
    let st = state.clone();
    let n = name.clone();
    let res = web::block(move || documents::verify(&st.store, &st.config, &bytes, &n))
        .await
        .map_err(blocking_err)?;
    let ctx = Ctx::new(&auth, "/console/verify");
    match res {
        Ok(report) => {
            audit(
                &state,
                &auth,
                "console.document_verify",
                &name,
                "ok",
                &format!(
                    "SM3={digest}; verifyResult={}; 签章数={}",
                    report.verify_result, report.sign_count
                ),
            );
            html(&VerifyPage {
                ctx,
                max_mb: max_mb(&state),
                report: Some(report_view(&auth, &report)),
                error: String::new(),
            })
        }
        Err(e) => {
            let msg = e.to_string();
            audit(
                &state,
                &auth,
                "console.document_verify",
                &name,
                "failed",
                &format!("SM3={digest}; {msg}"),
            );
            let mut resp = html(&VerifyPage {
                ctx,
                max_mb: max_mb(&state),
                report: None,
                error: format!("{name}: {msg}"),
            })?;
            *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            Ok(resp)
        }
    }
}

async fn report_picture(
    auth: Auth,
    path: web::Path<(String, usize)>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    let (report, index) = path.into_inner();
    let pic = cached_picture(&auth.token, &report, index)
        .ok_or_else(|| ConsoleError::NotFound("印章图片已失效，请重新上传文件".into()))?;
    picture_response(pic)
}

#[cfg(test)]
mod tests {
    use super::picture_content_type;

    #[test]
    fn picture_types_come_from_the_bytes() {
        assert_eq!(
            picture_content_type(b"\x89PNG\r\n\x1a\nrest"),
            Some("image/png")
        );
        assert_eq!(
            picture_content_type(b"\xFF\xD8\xFF\xE0"),
            Some("image/jpeg")
        );
        assert_eq!(
            picture_content_type(b"<?xml version=\"1.0\"?><svg xmlns=\"x\"/>"),
            Some("image/svg+xml")
        );
        assert_eq!(picture_content_type(b"PK\x03\x04ofd"), None);
        assert_eq!(picture_content_type(b""), None);
    }
}
