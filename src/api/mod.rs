//! actix-web handlers for the platform API (SPEC §3), one file per interface group, and the
//! mapping of every error to the codes of SPEC §2.

mod cloud;
mod document;
pub mod envelope;
pub mod error;
pub mod params;
mod platform;
mod seal;
mod system;
mod ukey;

use crate::app::AppState;
use actix_web::web;
use envelope::json_route;

/// Registers the `/api/v1` routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .route(
                "/platform/certificate",
                web::get().to(platform::certificate),
            )
            .route("/system/info", json_route("system/info", system::info))
            .route("/seal/filing", json_route("seal/filing", seal::filing))
            .route("/seal/state", json_route("seal/state", seal::set_state))
            .route("/seal/query", json_route("seal/query", seal::query))
            .route(
                "/cloud/auth/apply",
                json_route("cloud/auth/apply", cloud::auth_apply),
            )
            .route(
                "/cloud/auth/result",
                json_route("cloud/auth/result", cloud::auth_result),
            )
            .route("/cloud/sign", json_route("cloud/sign", cloud::sign))
            .route(
                "/ukey/sign/verify",
                json_route("ukey/sign/verify", ukey::sign_verify),
            )
            .route("/document/verify", web::post().to(document::verify))
            .default_service(web::to(not_found)),
    );
}

async fn not_found(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
) -> actix_web::HttpResponse {
    let rid = envelope::request_id(&req);
    let mut resp = envelope::respond(
        &state,
        &rid,
        Err(error::ApiError::invalid(format!(
            "接口 {} {} 不存在",
            req.method(),
            req.path()
        ))),
    )
    .0;
    *resp.status_mut() = actix_web::http::StatusCode::NOT_FOUND;
    resp
}
