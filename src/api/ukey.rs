//! UKey signing support (SPEC §3.7): parses `ukey/sign/verify`, lets [`domain::ukey`] vouch
//! for the signId, renders 表23.

use super::error::ApiError;
use super::params::Params;
use crate::app::AppState;
use crate::domain::ukey;
use crate::gateway::Authenticated;
use actix_web::web;
use serde_json::{Value, json};

pub async fn sign_verify(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<Value, ApiError> {
    let p = Params(&auth.params);
    let sign_id = p.str("signId")?;
    let seal_code = p.str("sealCode")?;
    // Optional and only type-checked: the platform vouches for the token, not the data.
    let _ = p.opt_str("docHash")?;
    let _ = p.opt_int("hashType")?;
    let _ = p.opt_str("signFormat")?;
    let v = ukey::vouch(&state.store, &auth.system, &sign_id, &seal_code)?;
    Ok(json!({
        "requesterAppId": v.requester_app_id,
        "requesterPlatName": v.requester_plat_name,
        "sealCode": v.seal_code,
        "expiresAt": crate::time::format_time_ms(v.expires_ms),
    }))
}
