//! Seal registry interfaces: filing/extension/change (§3.1), state (§3.2), query (§3.3).

use super::envelope::Reply;
use super::error::ApiError;
use super::params::Params;
use crate::app::AppState;
use crate::domain::seals::{self, Filing, Query, User};
use crate::gateway::Authenticated;
use actix_web::web;
use serde_json::Value;

pub async fn filing(state: web::Data<AppState>, auth: Authenticated) -> Result<Value, ApiError> {
    let p = Params(&auth.params);
    let user_list =
        match p.opt_value("userList") {
            None => None,
            Some(v) => Some(serde_json::from_value::<Vec<User>>(v.clone()).map_err(|_| {
                ApiError::invalid("参数 userList 应为 [{userName, mobilePhone}] 数组")
            })?),
        };
    let f = Filing {
        code: p.opt_str("code")?,
        seal_code: p.opt_str("sealCode")?,
        name: p.str("name")?,
        seal_type: p.str("sealType")?,
        ukey_id: p.opt_str("UKeyId")?,
        cert_number: p.opt_str("certNumber")?,
        possessor: p.str("possessor")?,
        possessor_cert_no: p.str("possessorCertNo")?,
        possessor_type: p.int("possessorType")?,
        biz_type: p.int("bizType")?,
        cert_type: p.int("certType")?,
        seal_data: p.opt_str("sealData")?,
        user_list,
    };
    let system = auth.system;
    let st = state.clone();
    // The call's audit entry is written with the seal, in one transaction.
    let audit = super::envelope::audit_in_act();
    let code = web::block(move || {
        seals::file_audited(
            &st.store,
            st.keys.provider(),
            &st.config.region_code,
            &system,
            f,
            audit.as_ref(),
        )
    })
    .await
    .map_err(|_| ApiError::internal_fault())??;
    Ok(Value::String(code))
}

pub async fn set_state(state: web::Data<AppState>, auth: Authenticated) -> Result<Value, ApiError> {
    let p = Params(&auth.params);
    let seal_code = p.str("sealCode")?;
    let new_state = p.int("state")?;
    // The call's audit entry is written with the state change, in one transaction.
    let audit = super::envelope::audit_in_act();
    seals::set_state(
        &state.store,
        &auth.system,
        &seal_code,
        new_state,
        audit.as_ref(),
    )?;
    Ok(Value::String(String::new()))
}

pub async fn query(state: web::Data<AppState>, auth: Authenticated) -> Result<Reply, ApiError> {
    let p = Params(&auth.params);
    let device_id = p.opt_str("deviceId")?;
    let id_card = p.opt_str("idCard")?;
    if device_id.is_some() != id_card.is_some() {
        return Err(ApiError::invalid(
            "手机盾查询时 deviceId 与 idCard 必须同时填写",
        ));
    }
    if id_card
        .as_deref()
        .is_some_and(|c| !crate::domain::codes::is_valid_resident_id(c))
    {
        return Err(ApiError::invalid("参数 idCard 不是有效的居民身份证号码"));
    }
    let q = Query {
        org_code: p.str("orgCode")?,
        seal_type: p.str("sealType")?,
        cert_type: p.opt_int("certType")?.unwrap_or(0),
        cert_number: p.opt_str("certNumber")?,
        ukey_id: p.opt_str("UKeyId")?,
    };
    let ttl = state.config.api.sign_id_ttl_secs as i64 * 1000;
    let system = auth.system;
    let st = state.clone();
    let list = web::block(move || seals::query(&st.store, st.keys.provider(), &system, &q, ttl))
        .await
        .map_err(|_| ApiError::internal_fault())??;
    Ok(Reply::Seals(list))
}
