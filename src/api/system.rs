//! `POST /api/v1/system/info` (SPEC §3.11): connectivity and signing check for integrators.

use super::envelope::json_call;
use crate::app::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

pub async fn info(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    json_call(
        state,
        req,
        payload,
        "system/info",
        |state, auth| async move {
            let s = auth.system;
            let mut out = json!({
                "appId": s.app_id,
                "name": s.name,
                "platName": s.plat_name,
                "state": s.state.as_str(),
            });
            let quota = crate::domain::metering::quota_status(
                &state.store,
                &s.app_id,
                crate::time::now_ms(),
            )?;
            if let Some(q) = quota {
                out["quota"] = serde_json::to_value(q).unwrap_or_default();
            }
            Ok(out)
        },
    )
    .await
}
