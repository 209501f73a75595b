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
        );
}

/// The browser content type of a seal picture, from its bytes; `None` when a browser cannot
/// show it (OFD-packaged pictures, unknown formats).
pub fn picture_content_type(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if data.starts_with(b"GIF8") {
        return Some("image/gif");
    }
    if data.starts_with(b"BM") {
        return Some("image/bmp");
    }
    let head = String::from_utf8_lossy(data.get(..1024).unwrap_or(data));
    let head = head.trim_start_matches('\u{feff}').trim_start();
    if (head.starts_with("<?xml") || head.starts_with("<svg") || head.starts_with("<!--"))
        && head.contains("<svg")
    {
        return Some("image/svg+xml");
    }
    None
}

/// Serves picture bytes; SVG stays inert (the scope's CSP forbids scripts, and it is offered as
/// a download when opened directly).
fn picture_response(data: Vec<u8>) -> Result<HttpResponse, ConsoleError> {
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

#[cfg(test)]
mod tests {
    use super::picture_content_type;

    #[test]
    fn picture_types_come_from_the_bytes() {
        assert_eq!(
            picture_content_type(b"\x89PNG\r\n\x1a\nrest"),
            Some("image/png")
        );
        assert_eq!(
            picture_content_type(b"\xFF\xD8\xFF\xE0"),
            Some("image/jpeg")
        );
        assert_eq!(
            picture_content_type(b"<?xml version=\"1.0\"?><svg xmlns=\"x\"/>"),
            Some("image/svg+xml")
        );
        assert_eq!(picture_content_type(b"PK\x03\x04ofd"), None);
        assert_eq!(picture_content_type(b""), None);
    }
}
