//! `GET /api/v1/platform/certificate`: the platform certificate (PEM), no authentication.

use crate::app::AppState;
use actix_web::{HttpResponse, web};

pub async fn certificate(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .body(state.keys.platform_cert_pem())
}
