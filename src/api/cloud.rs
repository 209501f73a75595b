//! Cloud-certificate signing across systems (SPEC §3.4–3.6): intention authentication, its
//! result, and digest signing. Each handler parses its parameters, calls
//! [`domain::cloud`](crate::domain::cloud), which holds every rule and routes through
//! `interop`, and renders the answer.

use super::error::ApiError;
use super::params::Params;
use crate::app::AppState;
use crate::domain::cloud::{self, Cloud, Routed};
use crate::gateway::Authenticated;
use actix_web::web;
use serde_json::{Value, json};

fn routed(state: &AppState) -> Routed<'_> {
    Routed {
        client: &state.interop,
        keys: &state.keys,
    }
}

fn rules<'a>(state: &'a AppState, members: &'a Routed<'a>) -> Cloud<'a, Routed<'a>> {
    Cloud {
        store: &state.store,
        members,
        auth_ttl_ms: state.config.api.sign_id_ttl_secs as i64 * 1000,
        allow_legacy_hashes: state.config.api.allow_legacy_hashes,
    }
}

pub async fn auth_apply(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<Value, ApiError> {
    let p = Params(&auth.params);
    let apply = cloud::Apply {
        seal_code: p.str("sealCode")?,
        mobile: p.str("mobile")?,
        org_code: p.opt_str("orgCode")?,
        name: p.opt_str("name")?,
        id_card: p.opt_str("idCard")?,
        redirect_url: p.opt_str("redirectUrl")?,
    };
    let members = routed(&state);
    let started = rules(&state, &members).apply(&auth.system, apply).await?;
    Ok(json!({
        "authUrl": started.auth_url,
        "clientType": started.client_type,
        "authId": started.auth_id,
    }))
}

pub async fn auth_result(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<Value, ApiError> {
    let p = Params(&auth.params);
    let auth_id = p.str("authId")?;
    let seal_code = p.str("sealCode")?;
    let members = routed(&state);
    let auth_code = rules(&state, &members)
        .result(&auth.system, &auth_id, &seal_code)
        .await?;
    Ok(json!({"authCode": auth_code, "authId": auth_id}))
}

pub async fn sign(state: web::Data<AppState>, auth: Authenticated) -> Result<Value, ApiError> {
    let p = Params(&auth.params);
    let request = cloud::SignRequest {
        seal_code: p.str("sealCode")?,
        auth_id: p.str("authId")?,
        auth_code: p.str("authCode")?,
        kind: p.str("type")?,
        doc_hash: p.str("docHash")?,
        credent_no: p.str("credentNo")?,
        org_code: p.opt_str("orgCode")?,
        sign_id: p.str("signId")?,
        hash_type: p.int("hashType")?,
    };
    let members = routed(&state);
    let signed = rules(&state, &members).sign(&auth.system, request).await?;
    Ok(json!({"type": signed.kind.as_str(), "signData": signed.sign_data}))
}
