//! Sign-in, sign-out and password change for everyone, and the vendor portal: registration
//! with real-name data, the onboarding application, its status, the platform certificate,
//! key-rotation and callback change requests. A vendor only ever sees its own records: every
//! lookup is keyed by the signed-in username, never by a request parameter.

use super::session::{self, Auth, PRE_COOKIE};
use super::views::{self, AppRow, ApplyForm, Ctx, RegisterForm};
use super::{ConsoleError, DoneQuery, html, redirect};
use crate::app::AppState;
use crate::domain::DomainError;
use crate::domain::accounts::{self as acc, LoginOutcome};
use crate::domain::audit;
use crate::domain::audit_event::{Action, Outcome};
use crate::domain::codes;
use crate::domain::onboarding::{
    self, ApplicationForm, FieldErrors, OnboardingError, Registration,
};
use crate::domain::vocab::ApplicationState;
use crate::domain::vocab::Role;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/register", web::get().to(register_page))
        .route("/register", web::post().to(register))
        .route("/apply", web::post().to(apply))
        .route("/rotate", web::post().to(rotate))
        .route("/callback", web::post().to(change_callback))
        .route("/check-callback", web::post().to(check_callback))
        .route("/platform.pem", web::get().to(platform_cert));
}

/// Runs a store-touching closure off the async workers (argon2 and sled flushes block).
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ConsoleError> + Send + 'static,
) -> Result<T, ConsoleError> {
    web::block(f)
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?
}

/// The anonymous form token: reuse the browser's if it has one, otherwise issue a new one.
fn form_token(req: &HttpRequest) -> (String, bool) {
    match session::cookie(req, PRE_COOKIE) {
        Some(t) if t.len() == 64 => (t, false),
        _ => (session::random_token(), true),
    }
}

fn with_form_cookie(
    mut resp: HttpResponse,
    token: &str,
    fresh: bool,
) -> Result<HttpResponse, ConsoleError> {
    if fresh {
        let v = header::HeaderValue::from_str(&session::form_cookie(token))
            .map_err(|e| ConsoleError::Internal(e.to_string()))?;
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// Double-submit check for anonymous forms: the field must equal the cookie.
fn check_form_token(req: &HttpRequest, field: &str) -> Result<(), ConsoleError> {
    match session::cookie(req, PRE_COOKIE) {
        Some(c) if session::tokens_equal(&c, field) => Ok(()),
        _ => Err(ConsoleError::Csrf),
    }
}

pub(super) fn login_html(
    req: &HttpRequest,
    error: &str,
    notice: &str,
) -> Result<HttpResponse, ConsoleError> {
    let (token, fresh) = form_token(req);
    let resp = html(&views::LoginPage {
        csrf: token.clone(),
        error: error.into(),
        notice: notice.into(),
    })?;
    with_form_cookie(resp, &token, fresh)
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    registered: Option<String>,
}

pub async fn login_page(
    req: HttpRequest,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let notice = if q.registered.is_some() {
        "注册成功，请登录后提交入驻申请。"
    } else {
        ""
    };
    login_html(&req, "", notice)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_form_token(&req, &form.csrf)?;
    let form = form.into_inner();
    let store = state.store.clone();
    let username = form.username.trim().to_string();
    let outcome = blocking(move || {
        let out = acc::sign_in(&store, &username, &form.password)?;
        let next = match &out {
            // Password alone opens no session when a second factor exists.
            LoginOutcome::Ok(rec) if rec.second_factor.is_enrolled() => Some(Next::Pending(
                session::create_pending(&store, &rec.username)?,
            )),
            LoginOutcome::Ok(rec) => Some(Next::Session(session::create(&store, &rec.username)?)),
            _ => None,
        };
        Ok((out, next))
    })
    .await?;
    state.store.commit().await?;
    match outcome {
        (LoginOutcome::Ok(rec), Some(next)) => {
            // A new session token on every login (rotation): a token planted before sign-in is useless.
            if let Some(old) = session::cookie(&req, session::SESSION_COOKIE) {
                let _ = session::destroy(&state.store, &old);
            }
            match next {
                Next::Pending(token) => Ok(HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, "/console/login/verify"))
                    .append_header((header::SET_COOKIE, session::pending_cookie(&token)))
                    .append_header((
                        header::SET_COOKIE,
                        session::expired_cookie(session::SESSION_COOKIE),
                    ))
                    .finish()),
                Next::Session(token) => {
                    let must_enrol = crate::domain::second_factor::must_enrol(
                        &rec,
                        state.config.portal.require_totp,
                    );
                    signed_in(&rec, must_enrol, &token)
                }
            }
        }
        (LoginOutcome::Locked { until_ms }, _) => login_html(&req, &locked_message(until_ms), ""),
        _ => login_html(&req, "用户名或密码错误", ""),
    }
}

enum Next {
    Pending(String),
    Session(String),
}

pub(super) fn locked_message(until_ms: i64) -> String {
    format!(
        "登录失败次数过多，账户已锁定至 {}，请稍后再试",
        super::fmt_time(until_ms)
    )
}

/// The answer that hands over a new session: where the account goes first, the cookie, and the
/// end of the anonymous form and pending-login cookies.
pub(super) fn signed_in(
    rec: &crate::store::accounts::AccountRecord,
    must_enrol: bool,
    token: &str,
) -> Result<HttpResponse, ConsoleError> {
    let to = if rec.must_change_password {
        "/console/password"
    } else if must_enrol {
        "/console/second-factor"
    } else if rec.role == Role::Vendor {
        "/portal/"
    } else {
        "/console/"
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .append_header((header::SET_COOKIE, session::session_cookie(token)))
        .append_header((header::SET_COOKIE, session::expired_cookie(PRE_COOKIE)))
        .append_header((
            header::SET_COOKIE,
            session::expired_cookie(session::PENDING_COOKIE),
        ))
        .finish())
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    auth: Auth,
    state: web::Data<AppState>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, ConsoleError> {
    auth.check_csrf(&form.csrf)?;
    session::destroy(&state.store, &auth.token)?;
    audit::record(
        &state.store,
        &super::admin::actor(&auth),
        Action::ConsoleLogout,
        Outcome::Ok,
        &auth.username,
        "",
    )?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/login"))
        .append_header((
            header::SET_COOKIE,
            session::expired_cookie(session::SESSION_COOKIE),
        ))
        .finish())
}

pub async fn password_page(auth: Auth) -> Result<HttpResponse, ConsoleError> {
    html(&views::PasswordPage {
        forced: auth.must_change_password,
        ctx: Ctx::new(&auth, "/console/password"),
        error: String::new(),
    })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

pub async fn change_password(
    auth: Auth,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, ConsoleError> {
    auth.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let store = state.store.clone();
    let user = auth.username.clone();
    let actor = super::admin::actor(&auth);
    let result: Result<String, String> = blocking(move || {
        if form.new != form.confirm {
            return Ok(Err("两次输入的新密码不一致".into()));
        }
        match acc::change_password(&store, &actor, &form.current, &form.new) {
            Ok(_) => {}
            Err(DomainError::Invalid(m)) => return Ok(Err(m)),
            Err(e) => return Err(e.into()),
        }
        // Every other session of this account ends; this one is replaced by a new token.
        session::destroy_all_of(&store, &user)?;
        let token = session::create(&store, &user)?;
        Ok(Ok(token))
    })
    .await?;
    state.store.commit().await?;
    match result {
        Ok(token) => {
            let to = if auth.must_enrol {
                "/console/second-factor?done=password"
            } else if auth.role == Role::Vendor {
                "/portal/?done=password"
            } else {
                "/console/?done=password"
            };
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to))
                .append_header((header::SET_COOKIE, session::session_cookie(&token)))
                .finish())
        }
        Err(msg) => {
            let mut resp = html(&views::PasswordPage {
                forced: auth.must_change_password,
                ctx: Ctx::new(&auth, "/console/password"),
                error: msg,
            })?;
            *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            Ok(resp)
        }
    }
}

pub async fn register_page(req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let (token, fresh) = form_token(&req);
    let resp = html(&views::RegisterPage {
        csrf: token.clone(),
        form: RegisterForm::default(),
        errors: FieldErrors::default(),
        error: String::new(),
    })?;
    with_form_cookie(resp, &token, fresh)
}

pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<RegisterForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_form_token(&req, &form.csrf)?;
    let mut form = form.into_inner();
    let reg = Registration {
        username: form.username.clone(),
        password: form.password.clone(),
        org_name: form.org_name.clone(),
        uscc: form.uscc.clone(),
        legal_rep: form.legal_rep.clone(),
        contact_name: form.contact_name.clone(),
        mobile: form.mobile.clone(),
        email: form.email.clone(),
    };
    let st = state.clone();
    let res = blocking(move || {
        Ok(onboarding::register_vendor(
            &st.store,
            st.keys.provider(),
            &reg,
        ))
    })
    .await?;
    match res {
        Ok(()) => {
            state.store.commit().await?;
            Ok(redirect("/portal/login?registered=1"))
        }
        Err(e) => {
            let (errors, error) = match e {
                OnboardingError::Fields(f) => (f, "请修改标红的字段后重新提交".to_string()),
                OnboardingError::Domain(d) => {
                    (FieldErrors::default(), ConsoleError::from(d).to_string())
                }
            };
            form.password.clear();
            let mut resp = html(&views::RegisterPage {
                csrf: form.csrf.clone(),
                form,
                errors,
                error,
            })?;
            *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            Ok(resp)
        }
    }
}

fn portal_page(
    state: &AppState,
    auth: &Auth,
    form: ApplyForm,
    errors: FieldErrors,
    error: String,
    notice: String,
) -> Result<views::PortalPage, ConsoleError> {
    let profile = crate::domain::onboarding::vendor_profile(
        &state.store,
        state.keys.provider(),
        &auth.username,
    )?;
    let app = state.store.get_application(&auth.username)?;
    let app_id = app.as_ref().and_then(|a| a.app_id.clone());
    let sys = match &app_id {
        Some(id) => state.store.get_system(id)?,
        None => None,
    };
    let testing = sys
        .as_ref()
        .is_some_and(|s| s.state == crate::domain::vocab::SystemState::Testing);
    let callback_form = sys
        .as_ref()
        .map(|s| views::CallbackChangeForm {
            csrf: String::new(),
            callback_url: s.callback_url.clone().unwrap_or_default(),
            callback_ca_pem: s.callback_ca_pem.clone().unwrap_or_default(),
            dest_host: s.dest_host.clone().unwrap_or_default(),
        })
        .unwrap_or_default();
    let pending_callback = onboarding::pending_callback(&state.store, &auth.username)?
        .map(|p| views::CallbackChangeView::new(&p));
    let can_apply = app.as_ref().is_none_or(|a| {
        matches!(
            a.state,
            ApplicationState::Draft | ApplicationState::Rejected
        )
    });
    Ok(views::PortalPage {
        ctx: Ctx::new(auth, "/portal/"),
        org_name: profile
            .as_ref()
            .map(|p| p.org_name.clone())
            .unwrap_or_default(),
        uscc: profile.as_ref().map(|p| p.uscc.clone()).unwrap_or_default(),
        legal_rep: profile
            .as_ref()
            .map(|p| codes::mask_name(&p.legal_rep))
            .unwrap_or_default(),
        contact: profile
            .as_ref()
            .map(views::masked_contact)
            .unwrap_or_default(),
        email: profile
            .as_ref()
            .map(|p| p.email.clone())
            .unwrap_or_default(),
        app: app.as_ref().map(|a| AppRow::new(a, profile.as_ref())),
        can_apply,
        form,
        errors,
        error,
        notice,
        can_check_callback: testing,
        last_failure: app_id.and_then(|id| views::last_failure(state, &id)),
        check: None,
        callback_form,
        pending_callback,
    })
}

/// 测试回调 for the vendor's own system while it is in testing.
async fn check_callback(
    auth: Auth,
    state: web::Data<AppState>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Vendor)?;
    auth.check_csrf(&form.csrf)?;
    let (s, user) = (state.clone(), auth.username.clone());
    let timeout = std::time::Duration::from_millis(state.config.interop.member_timeout_ms);
    let res = blocking(move || {
        Ok(onboarding::vendor_check_callback(
            &s.store, &s.keys, &user, timeout,
        ))
    })
    .await?;
    state.store.commit().await?;
    let (check, error, status) = match res {
        Ok(r) => {
            state.interop.note_check(&r);
            (Some(views::CheckView::new(&r)), String::new(), None)
        }
        Err(e) => {
            let e = ConsoleError::from(e);
            (None, e.to_string(), Some(e.status_code()))
        }
    };
    let mut page = portal_page(
        &state,
        &auth,
        ApplyForm::default(),
        FieldErrors::default(),
        error,
        String::new(),
    )?;
    page.check = check;
    let mut resp = html(&page)?;
    if let Some(status) = status {
        *resp.status_mut() = status;
    }
    Ok(resp)
}

async fn home(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Vendor)?;
    let notice = match q.done.as_deref() {
        Some("apply") => "入驻申请已提交，请等待系统管理员审核。",
        Some("rotate") => "密钥轮换请求已提交，请等待系统管理员处理。",
        Some("callback") => "回调配置变更已提交，请等待系统管理员审批；批准前仍使用当前配置。",
        Some("password") => super::PASSWORD_CHANGED,
        _ => "",
    };
    html(&portal_page(
        &state,
        &auth,
        ApplyForm::default(),
        FieldErrors::default(),
        String::new(),
        notice.into(),
    )?)
}

async fn apply(
    auth: Auth,
    state: web::Data<AppState>,
    form: web::Form<ApplyForm>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Vendor)?;
    auth.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let f = ApplicationForm {
        system_name: form.system_name.clone(),
        plat_name: form.plat_name.clone(),
        vendor: form.vendor.clone(),
        public_key_pem: form.public_key_pem.clone(),
        callback_url: form.callback_url.clone(),
        callback_ca_pem: form.callback_ca_pem.clone(),
        dest_host: form.dest_host.clone(),
    };
    let store = state.store.clone();
    let user = auth.username.clone();
    let res = blocking(move || Ok(onboarding::submit_application(&store, &user, &f))).await?;
    match res {
        Ok(_) => {
            state.store.commit().await?;
            Ok(redirect("/portal/?done=apply"))
        }
        Err(e) => {
            let (errors, error) = match e {
                OnboardingError::Fields(f) => (f, "请修改标红的字段后重新提交".to_string()),
                OnboardingError::Domain(d) => {
                    (FieldErrors::default(), ConsoleError::from(d).to_string())
                }
            };
            let mut resp = html(&portal_page(
                &state,
                &auth,
                form,
                errors,
                error,
                String::new(),
            )?)?;
            *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            Ok(resp)
        }
    }
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    public_key_pem: String,
}

async fn rotate(
    auth: Auth,
    state: web::Data<AppState>,
    form: web::Form<RotateForm>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Vendor)?;
    auth.check_csrf(&form.csrf)?;
    let store = state.store.clone();
    let user = auth.username.clone();
    let pem = form.into_inner().public_key_pem;
    let res = blocking(move || Ok(onboarding::request_rotation(&store, &user, &pem))).await?;
    match res {
        Ok(()) => {
            state.store.commit().await?;
            Ok(redirect("/portal/?done=rotate"))
        }
        Err(e) => {
            let mut resp = html(&portal_page(
                &state,
                &auth,
                ApplyForm::default(),
                FieldErrors::default(),
                ConsoleError::from(e).to_string(),
                String::new(),
            )?)?;
            *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            Ok(resp)
        }
    }
}

/// 变更回调配置: the vendor asks for new callback settings; an operator decides.
async fn change_callback(
    auth: Auth,
    state: web::Data<AppState>,
    form: web::Form<views::CallbackChangeForm>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Vendor)?;
    auth.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let f = onboarding::CallbackForm {
        callback_url: form.callback_url.clone(),
        callback_ca_pem: form.callback_ca_pem.clone(),
        dest_host: form.dest_host.clone(),
    };
    let (store, user) = (state.store.clone(), auth.username.clone());
    let actor = super::admin::actor(&auth);
    let res = blocking(move || {
        Ok(onboarding::request_callback_change(
            &store, &user, &f, &actor,
        ))
    })
    .await?;
    state.store.commit().await?;
    let (errors, error) = match res {
        Ok(()) => return Ok(redirect("/portal/?done=callback")),
        Err(OnboardingError::Fields(f)) => (f, "请修改标红的字段后重新提交".to_string()),
        Err(OnboardingError::Domain(d)) => {
            (FieldErrors::default(), ConsoleError::from(d).to_string())
        }
    };
    let mut page = portal_page(
        &state,
        &auth,
        ApplyForm::default(),
        errors,
        error,
        String::new(),
    )?;
    page.callback_form = form;
    let mut resp = html(&page)?;
    *resp.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
    Ok(resp)
}

async fn platform_cert(
    auth: Auth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Vendor)?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"hutong-platform.pem\"",
        ))
        .body(state.keys.platform_cert_pem()))
}
