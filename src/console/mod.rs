//! The web console (`/console/`, the three separated administrator roles) and the vendor portal
//! (`/portal/`), server-rendered with askama in zh-CN. Every page and action checks the role on
//! the server; every form carries a CSRF token; every action is recorded as an event. Pages use
//! no script and no inline style, so the Content-Security-Policy forbids both.
//!
//! This module renders and checks; the rules live in `domain` (accounts, onboarding, systems).

mod admin;
mod audit;
mod chart;
mod portal;
mod registry;
mod second_factor;

pub use registry::ReportPictures;
pub mod session;
mod usage;
mod views;

use crate::domain::DomainError;
use crate::domain::documents::VerifyError;
use crate::domain::vocab::Role;
use crate::protocol::Code;
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError, middleware, web};
use askama::Template;

/// No script at all, styles only from our own stylesheet, nothing external, no framing. Images
/// may also be `data:` URIs: the enrolment QR code is rendered on the server and inlined.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE_CSS: &str = include_str!("../../static/console.css");

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("请先登录")]
    Unauthenticated,
    #[error("请先修改初始密码")]
    MustChangePassword,
    #[error("请先启用两步验证")]
    MustEnrol,
    #[error("当前角色无权访问此页面或执行此操作")]
    Forbidden,
    #[error("表单已失效或来源不明（CSRF 校验失败），请返回页面刷新后重试")]
    Csrf,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// The detail goes to the log only; the page says no more than that something failed.
    #[error("平台内部错误，详情已记入服务日志")]
    Internal(String),
}

impl ConsoleError {
    /// A refusal as the console shows it, from the SPEC §2 code the same fault gets in the API
    /// (`DomainError::code`, `VerifyError::code`): the decision is taken once, below both.
    fn from_code(code: Code, message: String) -> Self {
        match code {
            Code::Internal => ConsoleError::Internal(message),
            Code::Forbidden => ConsoleError::Forbidden,
            Code::SealNotFound => ConsoleError::NotFound(message),
            _ => ConsoleError::Invalid(message),
        }
    }
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        // The detail is logged when the page is rendered, never shown.
        ConsoleError::Internal(e.to_string())
    }
}

impl From<DomainError> for ConsoleError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Store(s) => s.into(),
            other => ConsoleError::from_code(other.code(), other.to_string()),
        }
    }
}

impl From<VerifyError> for ConsoleError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Store(s) => s.into(),
            other => ConsoleError::from_code(other.code(), other.to_string()),
        }
    }
}

impl From<askama::Error> for ConsoleError {
    fn from(e: askama::Error) -> Self {
        ConsoleError::Internal(format!("页面渲染失败: {e}"))
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::Unauthenticated
            | ConsoleError::MustChangePassword
            | ConsoleError::MustEnrol => StatusCode::SEE_OTHER,
            ConsoleError::Forbidden | ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Invalid(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ConsoleError::Unauthenticated => redirect("/console/login"),
            ConsoleError::MustChangePassword => redirect("/console/password"),
            ConsoleError::MustEnrol => redirect("/console/second-factor"),
            other => {
                if let ConsoleError::Internal(m) = other {
                    tracing::error!(error = %m, "console error");
                }
                let body = views::ErrorPage {
                    status: other.status_code().as_u16(),
                    message: other.to_string(),
                }
                .render()
                .unwrap_or_else(|_| other.to_string());
                HttpResponse::build(other.status_code())
                    .content_type("text/html; charset=utf-8")
                    .body(body)
            }
        }
    }
}

pub(crate) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// The result message after an account holder changed their password.
pub(crate) const PASSWORD_CHANGED: &str = "密码已修改，其他会话已结束。";

/// `?done=…`: which act a redirect came back from, for the page's result message.
#[derive(serde::Deserialize)]
pub(crate) struct DoneQuery {
    #[serde(default)]
    pub done: Option<String>,
}

pub(crate) fn html<T: Template>(page: &T) -> Result<HttpResponse, ConsoleError> {
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

pub(crate) use crate::time::format_time_ms as fmt_time;

pub(crate) fn role_label(role: Role) -> &'static str {
    match role {
        Role::Operator => "系统管理员",
        Role::Security => "安全管理员",
        Role::Auditor => "审计管理员",
        Role::Vendor => "接入单位",
    }
}

/// An audit entry's act in words: the domain act's label, or the API interface called.
pub(crate) fn action_label(wire: &str) -> String {
    match crate::domain::audit_event::Action::from_wire(wire) {
        Some(a) => a.label().to_string(),
        None => format!("接口调用 {}", wire.replace('.', "/")),
    }
}

/// An audit entry's or event's result in words (`ok`, `denied`, `error`, `failed`, `locked`).
pub(crate) fn result_label(result: &str) -> &'static str {
    match result {
        "ok" => "成功",
        "denied" => "拒绝",
        "locked" => "拒绝（账户已锁定）",
        _ => "失败",
    }
}

/// Who acted: the id with the role in words, or the platform itself.
pub(crate) fn actor_label(id: &str, role: Option<&str>) -> String {
    let id = match id {
        "system" => "平台",
        "cli" => "命令行",
        other => other,
    };
    match role.and_then(Role::parse) {
        Some(r) => format!("{id}（{}）", role_label(r)),
        None => id.to_string(),
    }
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLE_CSS)
}

async fn not_found() -> HttpResponse {
    ConsoleError::NotFound("页面不存在".into()).error_response()
}

fn security_headers() -> middleware::DefaultHeaders {
    middleware::DefaultHeaders::new()
        .add((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cross-Origin-Resource-Policy", "same-origin"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=()",
        ))
}

/// Registers `/console/…`, `/portal/…` and the embedded stylesheet.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let forms = web::FormConfig::default().limit(64 * 1024);
    cfg.service(
        web::scope("/console")
            .app_data(forms.clone())
            .wrap(security_headers())
            .route("", web::get().to(|| async { redirect("/console/") }))
            .route("/static/console.css", web::get().to(stylesheet))
            .route("/login", web::get().to(portal::login_page))
            .route("/login", web::post().to(portal::login))
            .route("/logout", web::post().to(portal::logout))
            .route("/password", web::get().to(portal::password_page))
            .route("/password", web::post().to(portal::change_password))
            .configure(second_factor::routes)
            .configure(admin::routes)
            .configure(audit::routes)
            .configure(registry::routes)
            .configure(usage::routes)
            .default_service(web::to(not_found)),
    )
    .service(
        web::scope("/portal")
            .app_data(forms)
            .wrap(security_headers())
            .route("", web::get().to(|| async { redirect("/portal/") }))
            .route("/login", web::get().to(portal::login_page))
            .configure(portal::routes)
            .configure(usage::portal_routes)
            .default_service(web::to(not_found)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_refusals_get_the_same_verdict_as_in_the_api() {
        let e = ConsoleError::from(DomainError::Forbidden("x".into()));
        assert_eq!(e.status_code(), StatusCode::FORBIDDEN);
        let e = ConsoleError::from(DomainError::NotFound("印章 S 不存在".into()));
        assert_eq!(e.status_code(), StatusCode::NOT_FOUND);
        let e = ConsoleError::from(DomainError::Duplicate("重复备案".into()));
        assert_eq!(e.to_string(), "重复备案");
        let e = ConsoleError::from(VerifyError::Store(StoreError::Corrupt("trust/1".into())));
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.to_string().contains("trust/1"));
    }

    #[test]
    fn internal_details_stay_out_of_pages() {
        let e = ConsoleError::Internal("sled: /var/lib/hutong/db/conf: Permission denied".into());
        let page = e.to_string();
        assert!(
            !page.contains("sled") && !page.contains("/var/lib"),
            "{page}"
        );
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
