//! The second step of a login (`/console/login/verify`) and the account holder's own second
//! factors (`/console/second-factor`: TOTP enrolment with a server-rendered QR code, SM2
//! certificate registration, recovery codes shown once). The rules are in
//! `domain::second_factor`; this module parses, calls and renders.

use super::portal::{blocking, locked_message, login_html, signed_in};
use super::session::{self, Auth};
use super::views::{self, Ctx};
use super::{ConsoleError, DoneQuery, html, redirect};
use crate::app::AppState;
use crate::domain::DomainError;
use crate::domain::second_factor::{self as sf, Proof, StepOutcome};
use crate::domain::vocab::Role;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login/verify", web::get().to(verify_page))
        .route("/login/verify", web::post().to(verify))
        .route("/second-factor", web::get().to(own_page))
        .route("/second-factor/totp", web::post().to(enrol_totp))
        .route(
            "/second-factor/certificate",
            web::post().to(register_certificate),
        );
}

fn verify_html(
    rec: &crate::store::sessions::SessionRecord,
    account: Option<&crate::store::accounts::AccountRecord>,
    error: String,
) -> Result<HttpResponse, ConsoleError> {
    let challenge = rec
        .pending
        .as_ref()
        .map(|p| p.challenge.clone())
        .unwrap_or_default();
    let mut resp = html(&views::LoginVerifyPage {
        csrf: rec.csrf.clone(),
        challenge,
        has_totp: account.is_some_and(|a| a.second_factor.totp.is_some()),
        has_cert: account.is_some_and(|a| a.second_factor.cert_pem.is_some()),
        error: error.clone(),
    })?;
    if !error.is_empty() {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(resp)
}

fn back_to_login(req: &HttpRequest, error: &str) -> Result<HttpResponse, ConsoleError> {
    let mut resp = login_html(req, error, "")?;
    let v = header::HeaderValue::from_str(&session::expired_cookie(session::PENDING_COOKIE))
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    resp.headers_mut().append(header::SET_COOKIE, v);
    Ok(resp)
}

async fn verify_page(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let Some((_, rec)) = session::pending(&state.store, &req)? else {
        return Ok(redirect("/console/login"));
    };
    let account = state.store.get_account(&rec.username)?;
    verify_html(&rec, account.as_ref(), String::new())
}

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    signature: String,
}

enum Verdict {
    Session(crate::store::accounts::AccountRecord, String),
    Again(crate::store::sessions::SessionRecord, String),
    Dropped,
    Locked(i64),
}

async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<VerifyForm>,
) -> Result<HttpResponse, ConsoleError> {
    let Some((token, rec)) = session::pending(&state.store, &req)? else {
        return back_to_login(&req, "登录验证已超时或已失效，请重新输入用户名和密码");
    };
    if !session::tokens_equal(&rec.csrf, &form.csrf) {
        return Err(ConsoleError::Csrf);
    }
    let form = form.into_inner();
    if form.code.len() > 64 || form.signature.len() > 1024 {
        return Err(ConsoleError::Invalid("输入过长".into()));
    }
    let st = state.clone();
    let verdict = blocking(move || {
        let challenge = rec
            .pending
            .as_ref()
            .map(|p| p.challenge.clone())
            .unwrap_or_default();
        let proof = Proof {
            code: &form.code,
            signature: &form.signature,
            challenge: &challenge,
        };
        let out = sf::second_step(&st.store, st.keys.provider(), &rec.username, &proof)?;
        Ok(match out {
            StepOutcome::Ok(account) => {
                st.store.remove_session(&token)?;
                let t = session::create(&st.store, &account.username)?;
                Verdict::Session(account, t)
            }
            StepOutcome::Locked { until_ms } => {
                st.store.remove_session(&token)?;
                Verdict::Locked(until_ms)
            }
            StepOutcome::Failed(msg) => {
                if session::pending_failed(&st.store, &token, rec.clone())? {
                    let mut rec = rec;
                    if let Some(p) = rec.pending.as_mut() {
                        p.attempts += 1;
                    }
                    Verdict::Again(rec, msg)
                } else {
                    Verdict::Dropped
                }
            }
        })
    })
    .await?;
    state.store.commit().await?;
    match verdict {
        Verdict::Session(account, t) => {
            if let Some(old) = session::cookie(&req, session::SESSION_COOKIE) {
                let _ = session::destroy(&state.store, &old);
            }
            let must_enrol = sf::must_enrol(&account, state.config.portal.require_totp);
            signed_in(&account, must_enrol, &t)
        }
        Verdict::Again(rec, msg) => {
            let left =
                session::PENDING_ATTEMPTS - rec.pending.as_ref().map(|p| p.attempts).unwrap_or(0);
            let account = state.store.get_account(&rec.username)?;
            verify_html(&rec, account.as_ref(), format!("{msg}，还可尝试 {left} 次"))
        }
        Verdict::Dropped => back_to_login(&req, "验证失败次数过多，请重新输入用户名和密码"),
        Verdict::Locked(until) => back_to_login(&req, &locked_message(until)),
    }
}

/// The page an account holder manages their second factors on; while the account has none it
/// is the enrolment page every request is sent to.
fn own_view(
    state: &AppState,
    auth: &Auth,
    notice: String,
    error: String,
) -> Result<views::SecondFactorPage, ConsoleError> {
    let rec = state
        .store
        .get_account(&auth.username)?
        .ok_or(ConsoleError::Unauthenticated)?;
    let (qr, secret) = if rec.second_factor.totp.is_none() {
        let secret = sf::enrolment_secret(&state.store, state.keys.provider(), &auth.username)?;
        let qr = sf::qr_data_uri(&sf::otpauth_uri(&auth.username, &secret))?;
        (qr, secret)
    } else {
        (String::new(), String::new())
    };
    let cert = rec
        .second_factor
        .cert_pem
        .as_deref()
        .and_then(|p| crate::crypto::sm::pem_decode(p).ok())
        .and_then(|(_, der)| crate::crypto::x509::CertInfo::parse(&der).ok());
    let page = views::SecondFactorPage {
        ctx: Ctx::new(auth, "/console/second-factor"),
        required: auth.must_enrol,
        totp_enabled: rec.second_factor.totp.is_some(),
        recovery_left: rec.second_factor.recovery_codes.len(),
        cert_allowed: rec.role != Role::Vendor,
        cert_subject: cert.as_ref().map(|c| c.subject.clone()).unwrap_or_default(),
        cert_not_after: cert
            .map(|c| super::fmt_time(c.not_after_ms))
            .unwrap_or_default(),
        qr,
        secret,
        notice,
        error,
    };
    Ok(page)
}

/// Renders the page off the async workers (the enrolment secret may be sealed and stored).
async fn own_html(
    state: &web::Data<AppState>,
    auth: Auth,
    notice: String,
    error: String,
) -> Result<HttpResponse, ConsoleError> {
    let st = state.clone();
    let page = blocking(move || own_view(&st, &auth, notice, error)).await?;
    let mut resp = html(&page)?;
    if !page.error.is_empty() {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(resp)
}

async fn own_page(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    if auth.must_change_password {
        return Err(ConsoleError::MustChangePassword);
    }
    let notice = match q.done.as_deref() {
        Some("totp") => "动态口令已启用。",
        Some("cert") => "SM2 证书已登记。",
        Some("password") => super::PASSWORD_CHANGED,
        _ => "",
    };
    own_html(&state, auth, notice.into(), String::new()).await
}

#[derive(Deserialize)]
pub struct TotpForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
pub struct CertForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    cert_pem: String,
}

/// After an enrolment: the session is replaced (rotation) and the recovery codes, if any were
/// issued, are shown once.
async fn enrolled(
    state: &web::Data<AppState>,
    auth: Auth,
    res: Result<Option<Vec<String>>, DomainError>,
    done: &str,
) -> Result<HttpResponse, ConsoleError> {
    let codes = match res {
        Ok(codes) => codes,
        Err(DomainError::Invalid(m) | DomainError::Conflict(m) | DomainError::Forbidden(m)) => {
            state.store.commit().await?;
            return own_html(state, auth, String::new(), m).await;
        }
        Err(e) => return Err(e.into()),
    };
    let store = state.store.clone();
    let user = auth.username.clone();
    let (token, csrf) = blocking(move || {
        session::destroy_all_of(&store, &user)?;
        let token = session::create(&store, &user)?;
        let csrf = store
            .get_session(&token)?
            .map(|r| r.csrf)
            .unwrap_or_default();
        Ok((token, csrf))
    })
    .await?;
    state.store.commit().await?;
    let next: &'static str = if auth.role == Role::Vendor {
        "/portal/"
    } else {
        "/console/"
    };
    let mut resp = match codes {
        Some(codes) => {
            let fresh = Auth {
                csrf,
                must_enrol: false,
                token: token.clone(),
                ..auth
            };
            html(&views::RecoveryCodesPage {
                ctx: Ctx::new(&fresh, "/console/second-factor"),
                codes,
                next,
            })?
        }
        None => redirect(&format!("/console/second-factor?done={done}")),
    };
    let v = header::HeaderValue::from_str(&session::session_cookie(&token))
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    resp.headers_mut().append(header::SET_COOKIE, v);
    Ok(resp)
}

async fn enrol_totp(
    auth: Auth,
    state: web::Data<AppState>,
    form: web::Form<TotpForm>,
) -> Result<HttpResponse, ConsoleError> {
    auth.check_csrf(&form.csrf)?;
    if auth.must_change_password {
        return Err(ConsoleError::MustChangePassword);
    }
    let code = form.into_inner().code;
    let st = state.clone();
    let actor = super::admin::actor(&auth);
    let res = blocking(move || {
        Ok(sf::confirm_totp(
            &st.store,
            st.keys.provider(),
            &actor,
            &code,
        ))
    })
    .await?;
    enrolled(&state, auth, res, "totp").await
}

async fn register_certificate(
    auth: Auth,
    state: web::Data<AppState>,
    form: web::Form<CertForm>,
) -> Result<HttpResponse, ConsoleError> {
    auth.check_csrf(&form.csrf)?;
    if auth.must_change_password {
        return Err(ConsoleError::MustChangePassword);
    }
    let pem = form.into_inner().cert_pem;
    let st = state.clone();
    let actor = super::admin::actor(&auth);
    let res = blocking(move || Ok(sf::register_certificate(&st.store, &actor, &pem))).await?;
    enrolled(&state, auth, res, "cert").await
}
