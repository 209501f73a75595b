//! UKey signing support (SPEC §3.7): the seal's home system asks the platform to vouch for a
//! `signId` that another system's page handed to its client program. The signId is consumed.

use super::envelope::json_call;
use super::error::ApiError;
use super::params::Params;
use crate::app::AppState;
use crate::protocol::Code;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

pub async fn sign_verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    json_call(
        state,
        req,
        payload,
        "ukey/sign/verify",
        |state, auth| async move {
            let p = Params(&auth.params);
            let sign_id = p.str("signId")?;
            let seal_code = p.str("sealCode")?;
            // Optional and only type-checked: the platform vouches for the token, not the data.
            let _ = p.opt_str("docHash")?;
            let _ = p.opt_int("hashType")?;
            let _ = p.opt_str("signFormat")?;
            let rec = state.store.get_seal(&seal_code)?.ok_or_else(|| {
                ApiError::new(Code::SealNotFound, format!("印章 {seal_code} 不存在"))
            })?;
            if rec.app_id != auth.system.app_id {
                return Err(ApiError::new(
                    Code::Forbidden,
                    format!("印章 {seal_code} 不属于本系统，只有印章所属系统可以核验 signId"),
                ));
            }
            let token =
                crate::domain::seals::consume_sign_id(&state.store, &sign_id, &seal_code, None)?;
            let plat_name = state
                .store
                .get_system(&token.requester)
                .ok()
                .flatten()
                .map(|s| s.plat_name)
                .unwrap_or_default();
            // A vouched signId is one cross-system UKey signature for both sides.
            let now = crate::time::now_ms();
            crate::domain::metering::record_signature(
                &state.store,
                &token.requester,
                "ukey/sign",
                now,
            );
            crate::domain::metering::record_signature(
                &state.store,
                &auth.system.app_id,
                "ukey/sign/verify",
                now,
            );
            Ok(json!({
                "requesterAppId": token.requester,
                "requesterPlatName": plat_name,
                "sealCode": seal_code,
                "expiresAt": crate::time::format_time_ms(token.expires_ms),
            }))
        },
    )
    .await
}
