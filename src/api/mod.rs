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

/// The base path of the platform API.
pub const BASE: &str = "/api/v1";

/// Every platform interface: its path under [`BASE`] and its route. The server registers
/// exactly these, and a test checks that the integration guide documents each one.
pub fn routes() -> Vec<(&'static str, actix_web::Route)> {
    vec![
        (
            "/platform/certificate",
            web::get().to(platform::certificate),
        ),
        (
            "/platform/certificates",
            web::get().to(platform::certificates),
        ),
        json("/system/info", system::info),
        json("/seal/filing", seal::filing),
        json("/seal/state", seal::set_state),
        json("/seal/query", seal::query),
        json("/cloud/auth/apply", cloud::auth_apply),
        json("/cloud/auth/result", cloud::auth_result),
        json("/cloud/sign", cloud::sign),
        json("/ukey/sign/verify", ukey::sign_verify),
        ("/document/verify", web::post().to(document::verify)),
    ]
}

/// A JSON interface at `path`, audited and metered as `path` without its leading slash.
fn json<F, Fut, R>(path: &'static str, handler: F) -> (&'static str, actix_web::Route)
where
    F: Fn(web::Data<AppState>, crate::gateway::Authenticated) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = Result<R, error::ApiError>> + 'static,
    R: Into<envelope::Reply> + 'static,
{
    (path, json_route(path.trim_start_matches('/'), handler))
}

/// Registers the `/api/v1` routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let scope = routes()
        .into_iter()
        .fold(web::scope(BASE), |scope, (path, route)| {
            scope.route(path, route)
        });
    cfg.service(scope.default_service(web::to(not_found)));
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

#[cfg(test)]
mod tests {
    const GUIDE: &str = include_str!("../../docs/integration-guide.md");

    fn headings() -> Vec<&'static str> {
        GUIDE.lines().filter(|l| l.starts_with('#')).collect()
    }

    #[test]
    fn every_route_the_server_exposes_has_a_heading_in_the_integration_guide() {
        let headings = headings();
        for (path, _) in super::routes() {
            let full = format!("`{} {}{path}`", method_of(path), super::BASE);
            assert!(
                headings.iter().any(|h| h.contains(&full)),
                "docs/integration-guide.md has no heading with {full}"
            );
        }
    }

    #[test]
    fn every_member_callback_has_a_heading_in_the_integration_guide() {
        let headings = headings();
        for path in crate::interop::CALLBACK_PATHS {
            let full = format!("`POST {{base}}{path}`");
            assert!(
                headings.iter().any(|h| h.contains(&full)),
                "docs/integration-guide.md has no heading with {full}"
            );
        }
    }

    /// The guide's quotes of the example clients are their code, verbatim.
    #[test]
    fn the_guides_quotes_of_the_example_clients_are_their_code() {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut quotes = 0;
        let mut rest = GUIDE;
        while let Some(i) = rest.find("<!-- quote: ") {
            let after = &rest[i + "<!-- quote: ".len()..];
            let file = &after[..after.find(" -->").expect("quote marker closed")];
            let fence = after
                .find("```")
                .expect("a fenced block follows the marker");
            let body_start = fence + after[fence..].find('\n').expect("fence line") + 1;
            let body_len = after[body_start..].find("```").expect("fence closed");
            let code = &after[body_start..body_start + body_len];
            let source = std::fs::read_to_string(format!("{root}/{file}")).expect(file);
            assert!(
                source.contains(code),
                "the guide's quote of {file} is not in it:\n{code}"
            );
            quotes += 1;
            rest = &after[body_start + body_len..];
        }
        assert!(quotes >= 5, "{quotes} quotes");
    }

    /// The worked example of §2.3 is the published vector.
    #[test]
    fn the_guides_worked_example_is_the_published_vector() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/test-vectors/vectors.json")).unwrap();
        let r = v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "empty-and-null-dropped")
            .unwrap();
        for field in ["canonical", "canonicalHex", "sm3OfCanonical", "zA", "e"] {
            assert!(GUIDE.contains(r[field].as_str().unwrap()), "{field}");
        }
        assert!(GUIDE.contains(r["params"]["sign"].as_str().unwrap()));
        assert!(GUIDE.contains(v["keys"]["member"]["private"].as_str().unwrap()));
    }

    fn method_of(path: &str) -> &'static str {
        if path.starts_with("/platform/certificate") {
            "GET"
        } else {
            "POST"
        }
    }
}
