//! Seal registry search (系统管理员), trust anchors (安全管理员) and document verification
//! (系统管理员): one file per page family. Same rules as the other pages: the role is checked
//! on the server first, every form carries the session's CSRF token, every act is recorded by
//! the domain. Seal pictures are served from same-origin routes (the CSP allows
//! `img-src 'self'` only, no `data:` URLs).
//!
//! Pages parse, call the domain, render: no rules and no storage writes here.

mod multipart;
pub mod pictures;
mod seals;
mod trust;
mod verify;

use super::ConsoleError;
use crate::ses::picture::PictureFormat;
use actix_web::http::header;
use actix_web::{HttpResponse, web};

pub use pictures::ReportPictures;

/// At most this many seals are listed for one search.
pub const MAX_RESULTS: usize = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/seals", web::get().to(seals::seals_page))
        .route("/seals/{code}/picture", web::get().to(seals::seal_picture))
        .route("/trust", web::get().to(trust::trust_page))
        .route("/trust", web::post().to(trust::trust_add))
        .route("/trust/{id}/remove", web::post().to(trust::trust_remove))
        .route("/verify", web::get().to(verify::verify_page))
        .route("/verify", web::post().to(verify::verify_upload))
        .route(
            "/verify/picture/{report}/{index}",
            web::get().to(verify::report_picture),
        )
        .route(
            "/verify/report/{report}",
            web::get().to(verify::signed_report_download),
        );
}

/// The browser content type of a seal picture, from its bytes; `None` when a browser cannot
/// show it (OFD-packaged pictures, unknown formats).
pub fn picture_content_type(data: &[u8]) -> Option<&'static str> {
    PictureFormat::sniff(data).map(PictureFormat::content_type)
}

/// Serves picture bytes; SVG stays inert (the scope's CSP forbids scripts, and it is offered as
/// a download when opened directly).
fn picture_response(data: Vec<u8>) -> Result<HttpResponse, ConsoleError> {
    // A BMP is served as PNG: browsers differ in the BMP variants they draw.
    let data = match PictureFormat::sniff(&data) {
        Some(PictureFormat::Bmp) => crate::ses::bmp::to_png(&data).unwrap_or(data),
        _ => data,
    };
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
