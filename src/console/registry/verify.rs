//! Document verification in the console (系统管理员): upload, the report as a page, and the
//! seal pictures of the last report, kept per session in [`ReportPictures`].

use super::multipart::{csrf, read_multipart};
use super::pictures::ReportPictures;
use super::{blocking_err, picture_content_type, picture_response};
use crate::app::AppState;
use crate::console::admin::{audit, failed, guard};
use crate::console::session::Auth;
use crate::console::views::Ctx;
use crate::console::{ConsoleError, html};
use crate::crypto::sm;
use crate::domain::audit_event::{Action, Outcome};
use crate::domain::documents;
use crate::domain::vocab::Role;
use crate::verify::{DocumentReport, Level, SignatureType, Step};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;

/// Pictures larger than this are not kept for display.
const MAX_CACHED_PICTURE: usize = 2 * 1024 * 1024;

pub struct StepRow {
    pub step: &'static str,
    pub label: &'static str,
    /// The badge: 通过 / 失败 / 提示 / 不适用.
    pub verdict: &'static str,
    /// Its CSS class (green, red, amber, grey).
    pub class: &'static str,
    pub hint: String,
}

/// One line of a failed report's headline: why, in plain words, then the technical detail.
pub struct Reason {
    pub signature: usize,
    pub why: &'static str,
    pub detail: String,
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
    /// When there is a picture the browser cannot show: why, and where to download it.
    pub picture_note: String,
    pub picture_download: String,
    pub steps: Vec<StepRow>,
}

pub struct ReportView {
    pub file_name: String,
    pub file_size: u64,
    pub format: String,
    pub sign_count: usize,
    pub verify_result: bool,
    pub error: String,
    /// Every decisive failure of every signature, for the headline.
    pub reasons: Vec<Reason>,
    /// Where the platform-signed report downloads (see [`signed_report`]); empty when too
    /// large to keep.
    pub signed_json_url: String,
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

fn step_label(step: Step) -> &'static str {
    match step {
        Step::Parse => "文件解析",
        Step::Integrity => "完整性",
        Step::Signature => "签名值",
        Step::Certificate => "证书",
        Step::Seal => "印章",
        Step::Registry => "备案状态",
        Step::Timestamp => "时间戳",
        Step::Coverage => "签后修改",
    }
}

/// What a failed step means for the person reading the report.
fn plain_reason(step: Step) -> &'static str {
    match step {
        Step::Parse => "文件或签名结构无法解析",
        Step::Integrity => "签署后文档内容被改动（摘要不一致）",
        Step::Signature => "签名值无效",
        Step::Certificate => "签名证书不可信或已失效",
        Step::Seal => "电子印章无效",
        Step::Registry => "印章未在本平台备案或签署时不可用",
        Step::Timestamp => "时间戳无效",
        Step::Coverage => "签署后文档被修改，或签名未覆盖整个文档",
    }
}

fn verdict(level: Level) -> (&'static str, &'static str) {
    match level {
        Level::Pass => ("通过", "online"),
        Level::Fail => ("失败", "suspended"),
        Level::Warn => ("提示", "testing"),
        Level::Na => ("不适用", "na"),
    }
}

/// Why a picture is not shown: an OFD-packaged vector picture, or a format a browser lacks.
fn picture_note(data: &[u8]) -> &'static str {
    if data.starts_with(b"PK\x03\x04") {
        "无法预览（OFD 矢量印模）"
    } else {
        "无法预览（印模图片格式无法在浏览器中显示）"
    }
}

fn report_view(
    pictures_cache: &ReportPictures,
    auth: &Auth,
    r: &DocumentReport,
    signed: Option<Vec<u8>>,
) -> ReportView {
    let report_id = hex::encode(sm::random_bytes::<8>());
    let signed_json_url = if signed.is_some() {
        format!("/console/verify/report/{report_id}")
    } else {
        String::new()
    };
    let mut pictures = Vec::new();
    let mut reasons = Vec::new();
    let signatures = r
        .details
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let pic = base64::engine::general_purpose::STANDARD
                .decode(&d.seal_pic_base64)
                .ok()
                .filter(|p| !p.is_empty() && p.len() <= MAX_CACHED_PICTURE);
            let url = format!("/console/verify/picture/{report_id}/{i}");
            let (picture_url, picture_note, picture_download) = match &pic {
                Some(p) if picture_content_type(p).is_some() => (url, String::new(), String::new()),
                Some(p) => (String::new(), picture_note(p).to_string(), url),
                None => (String::new(), String::new(), String::new()),
            };
            pictures.push(pic);
            let steps: Vec<StepRow> = d
                .flow_vo_list
                .iter()
                .map(|f| {
                    let (verdict, class) = verdict(f.level);
                    // A step that did not run is not a reason of its own: the one before it is.
                    if f.level == Level::Fail && f.hint != crate::verify::report::HINT_NOT_RUN {
                        reasons.push(Reason {
                            signature: i + 1,
                            why: plain_reason(f.step),
                            detail: f.hint.clone(),
                        });
                    }
                    StepRow {
                        step: f.step.name(),
                        label: step_label(f.step),
                        verdict,
                        class,
                        hint: f.hint.clone(),
                    }
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
                signature_type: if d.signature_type == SignatureType::Seal {
                    "电子签章".into()
                } else {
                    "数字签名".into()
                },
                algorithm: d.algorithm.to_string(),
                registry_state: d.registry_state.clone(),
                location: d.location.clone(),
                picture_url,
                picture_note,
                picture_download,
                steps,
            }
        })
        .collect();
    pictures_cache.keep(&auth.token, &report_id, pictures, signed);
    ReportView {
        file_name: r.file_name.clone(),
        file_size: r.file_size,
        format: r.format.name().to_string(),
        sign_count: r.sign_count,
        verify_result: r.verify_result,
        error: r.error.clone().unwrap_or_default(),
        reasons,
        signed_json_url,
        signatures,
    }
}

/// The largest signed report kept for download (the pictures dominate it).
/// 32 sessions keep one each (`ReportPictures`), so this bounds the cache too.
const MAX_SIGNED_REPORT: usize = 4 * 1024 * 1024;

/// The report as the API answers it — the same `{code,message,data}` bytes — with the
/// platform's SM2 signature over them and its certificate beside, both from one snapshot of
/// the platform key, so the file kept for a case can be checked with the certificate alone.
/// `None` when too large to keep (the API gives the same report).
fn signed_report(
    state: &AppState,
    report: &DocumentReport,
) -> Result<Option<Vec<u8>>, ConsoleError> {
    let data = serde_json::to_value(report).map_err(|e| ConsoleError::Internal(e.to_string()))?;
    let (body, signature, cert) = state.signed_body_and_cert("0", "成功", &data);
    let bundle = serde_json::json!({
        "body": String::from_utf8_lossy(&body),
        "signature": signature,
        "signatureAlgorithm": "SM2withSM3, ID 1234567812345678, DER, over the UTF-8 bytes of body",
        "platformCertificate": sm::pem_encode("CERTIFICATE", &cert),
    });
    let bytes =
        serde_json::to_vec_pretty(&bundle).map_err(|e| ConsoleError::Internal(e.to_string()))?;
    Ok((bytes.len() <= MAX_SIGNED_REPORT).then_some(bytes))
}

/// The signed report of the session's last verification, as a download.
pub(super) async fn signed_report_download(
    auth: Auth,
    pictures_cache: web::Data<ReportPictures>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    let bytes = pictures_cache
        .signed(&auth.token, &path.into_inner())
        .ok_or_else(|| ConsoleError::NotFound("报告已失效，请重新上传文件".into()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .insert_header((actix_web::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "private, no-store"))
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"verification-report.json\"",
        ))
        .body(bytes))
}

fn max_mb(state: &AppState) -> String {
    let mb = state.config.api.max_file_bytes as f64 / (1024.0 * 1024.0);
    format!("{mb:.0}")
}

pub(super) async fn verify_page(
    auth: Auth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    html(&VerifyPage {
        ctx: Ctx::new(&auth, "/console/verify"),
        max_mb: max_mb(&state),
        report: None,
        error: String::new(),
    })
}

pub(super) async fn verify_upload(
    auth: Auth,
    state: web::Data<AppState>,
    pictures_cache: web::Data<ReportPictures>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    if auth.require(Role::Operator).is_err() {
        guard(
            &state,
            &auth,
            Role::Operator,
            "",
            Action::DocumentVerify,
            "",
        )?;
    }
    let max = state.config.api.max_file_bytes;
    let form = match read_multipart(&req, payload, "file", max).await {
        Ok(f) => f,
        Err(e) => {
            return Err(failed(&state, &auth, Action::DocumentVerify, e));
        }
    };
    guard(
        &state,
        &auth,
        Role::Operator,
        csrf(&form),
        Action::DocumentVerify,
        "",
    )?;
    let Some((name, bytes)) = form.file.filter(|(_, b)| !b.is_empty()) else {
        let e = ConsoleError::Invalid("请选择要验证的 PDF 或 OFD 文件".into());
        return Err(failed(&state, &auth, Action::DocumentVerify, e));
    };
    let digest = sm::sm3_hex(&bytes);
    let st = state.clone();
    let n = name.clone();
    let res = web::block(move || documents::verify_upload(&st.store, &st.config, bytes, &n))
        .await
        .map_err(blocking_err)?;
    let ctx = Ctx::new(&auth, "/console/verify");
    match res {
        Ok(report) => {
            audit(
                &state,
                &auth,
                Action::DocumentVerify,
                &name,
                Outcome::Ok,
                &format!(
                    "SM3={digest}; verifyResult={}; 签章数={}",
                    report.verify_result, report.sign_count
                ),
            );
            let signed = signed_report(&state, &report)?;
            html(&VerifyPage {
                ctx,
                max_mb: max_mb(&state),
                report: Some(report_view(&pictures_cache, &auth, &report, signed)),
                error: String::new(),
            })
        }
        Err(e) => {
            let msg = e.to_string();
            audit(
                &state,
                &auth,
                Action::DocumentVerify,
                &name,
                Outcome::Failed,
                &format!("SM3={digest}; {msg}"),
            );
            // A platform fault is the console's error page (500), not the document's fault.
            if matches!(e, documents::VerifyError::Store(_)) {
                return Err(ConsoleError::from(e));
            }
            let mut resp = html(&VerifyPage {
                ctx,
                max_mb: max_mb(&state),
                report: None,
                error: format!("{name}: {msg}"),
            })?;
            *resp.status_mut() = if matches!(e, documents::VerifyError::Busy(_)) {
                actix_web::http::StatusCode::TOO_MANY_REQUESTS
            } else {
                actix_web::http::StatusCode::BAD_REQUEST
            };
            Ok(resp)
        }
    }
}

pub(super) async fn report_picture(
    auth: Auth,
    pictures_cache: web::Data<ReportPictures>,
    path: web::Path<(String, usize)>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    let (report, index) = path.into_inner();
    let pic = pictures_cache
        .get(&auth.token, &report, index)
        .ok_or_else(|| ConsoleError::NotFound("印章图片已失效，请重新上传文件".into()))?;
    if picture_content_type(&pic).is_none() {
        // An OFD vector picture (or another format): the bytes as they are, to open elsewhere.
        let name = if pic.starts_with(b"PK\x03\x04") {
            "seal-picture.ofd"
        } else {
            "seal-picture.bin"
        };
        return Ok(HttpResponse::Ok()
            .content_type("application/octet-stream")
            .insert_header((actix_web::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((actix_web::http::header::CACHE_CONTROL, "private, no-store"))
            .insert_header((
                actix_web::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ))
            .body(pic));
    }
    picture_response(pic)
}

#[cfg(test)]
mod tests {
    use super::picture_note;

    #[test]
    fn a_picture_the_browser_cannot_show_says_why() {
        // An OFD-format seal picture is a ZIP package (GB/T 33190).
        assert_eq!(
            picture_note(b"PK\x03\x04\x14\x00rest"),
            "无法预览（OFD 矢量印模）"
        );
        assert!(picture_note(b"\x00\x01garbage").starts_with("无法预览"));
    }
}
