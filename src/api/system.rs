//! `POST /api/v1/system/info` (SPEC §3.11): connectivity and signing check for integrators.

use super::error::ApiError;
use crate::app::AppState;
use crate::gateway::Authenticated;
use actix_web::web;
use serde_json::{Value, json};

pub async fn info(state: web::Data<AppState>, auth: Authenticated) -> Result<Value, ApiError> {
    let s = auth.system;
    let mut out = json!({
        "appId": s.app_id,
        "name": s.name,
        "platName": s.plat_name,
        "state": s.state.as_str(),
    });
    let quota =
        crate::domain::metering::quota_status(&state.store, &s.app_id, crate::time::now_ms())?;
    if let Some(q) = quota {
        out["quota"] = serde_json::to_value(q).unwrap_or_default();
    }
    Ok(out)
}
