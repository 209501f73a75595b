//! The platform's published certificates, no authentication (like a CA's published certs):
//! `GET /api/v1/platform/certificate` (the current one, PEM) and
//! `GET /api/v1/platform/certificates` (every one, with validity and status, so members can
//! switch during a key rotation's overlap).

use super::envelope;
use super::error::ApiError;
use crate::app::AppState;
use actix_web::{HttpRequest, HttpResponse, web};

pub async fn certificate(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .body(state.keys.platform_cert_pem())
}

/// The `{code,message,data}` envelope, signed by the current key like every response.
pub async fn certificates(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let rid = envelope::request_id(&req);
    let overlap_days = state.config.keys.platform_overlap_days;
    let list = state
        .keys
        .platform()
        .listing(overlap_days, crate::time::now_ms());
    let data = serde_json::to_value(list)
        .map(|certificates| {
            serde_json::json!({"overlapDays": overlap_days, "certificates": certificates})
        })
        .map_err(|_| ApiError::internal(&rid));
    envelope::respond(&state, &rid, data.map(Into::into)).0
}
