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

/// Registers the `/api/v1` routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .route(
                "/platform/certificate",
                web::get().to(platform::certificate),
            )
            .route("/system/info", web::post().to(system::info))
            .route("/seal/filing", web::post().to(seal::filing))
            .route("/seal/state", web::post().to(seal::set_state))
            .route("/seal/query", web::post().to(seal::query))
            .route("/cloud/auth/apply", web::post().to(cloud::auth_apply))
            .route("/cloud/auth/result", web::post().to(cloud::auth_result))
            .route("/cloud/sign", web::post().to(cloud::sign))
            .route("/ukey/sign/verify", web::post().to(ukey::sign_verify))
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
