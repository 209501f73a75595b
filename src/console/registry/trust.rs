//! Trust anchors for document verification (安全管理员): list, add, remove, each through the
//! domain, which validates and records the act.

use super::blocking_err;
use super::multipart::{csrf, read_multipart};
use crate::app::AppState;
use crate::console::admin::{CsrfForm, actor, failed, finish, guard};
use crate::console::session::Auth;
use crate::console::views::Ctx;
use crate::console::{ConsoleError, fmt_time, html};
use crate::crypto::x509::CertInfo;
use crate::domain::audit_event::Action;
use crate::domain::documents;
use crate::domain::vocab::Role;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

/// Largest CA certificate accepted (PEM or DER).
const MAX_CERT_BYTES: usize = 64 * 1024;

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

pub(super) async fn trust_page(
    auth: Auth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Security)?;
    html(&TrustPage {
        ctx: Ctx::new(&auth, "/console/trust"),
        rows: trust_rows(&state)?,
        error: String::new(),
    })
}

pub(super) async fn trust_add(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    // The role is checked before the body is read; the CSRF token comes with the body.
    if auth.require(Role::Security).is_err() {
        guard(&state, &auth, Role::Security, "", Action::TrustAdd, "")?;
    }
    let form = match read_multipart(&req, payload, "cert", MAX_CERT_BYTES).await {
        Ok(f) => f,
        Err(e) => {
            return Err(failed(&state, &auth, Action::TrustAdd, e));
        }
    };
    guard(
        &state,
        &auth,
        Role::Security,
        csrf(&form),
        Action::TrustAdd,
        "",
    )?;
    let pem = form.text("pem").map(str::trim).unwrap_or("");
    let bytes = match &form.file {
        Some((_, b)) if !b.is_empty() => b.clone(),
        _ if !pem.is_empty() => pem.as_bytes().to_vec(),
        _ => {
            let e = ConsoleError::Invalid("请选择证书文件或粘贴 PEM".into());
            return Err(failed(&state, &auth, Action::TrustAdd, e));
        }
    };
    let store = state.store.clone();
    let actor = actor(&auth);
    let res = web::block(move || documents::add_trust_anchor(&store, &bytes, &actor))
        .await
        .map_err(blocking_err)?;
    match res {
        Ok(_) => {
            state.store.commit().await?;
            Ok(crate::console::redirect("/console/trust"))
        }
        Err(e) => {
            let msg = ConsoleError::from(e).to_string();
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

pub(super) async fn trust_remove(
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
        Action::TrustRemove,
        &id,
    )?;
    let res = documents::remove_trust_anchor(&state.store, &id, &actor(&auth));
    finish(&state, res, "/console/trust").await
}
