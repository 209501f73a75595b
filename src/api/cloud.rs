//! Cloud-certificate signing across systems (SPEC §3.4–3.6): intention authentication, its
//! result, and digest signing, each routed to the seal's home system through
//! [`crate::interop::MemberClient`]. Nothing the home system returns reaches the requester
//! before the platform checked it: the signature must verify under the seal's own signer
//! certificate.
//!
//! Platform `authId`s are random and stored through [`crate::store::cloud_auths`].

use super::envelope::json_call;
use super::error::ApiError;
use super::params::Params;
use crate::app::AppState;
use crate::crypto::x509::{self, HashAlg};
use crate::crypto::{cms, sm};
use crate::domain::metering;
use crate::domain::vocab::QuotaKind;
use crate::domain::vocab::SealState;
use crate::domain::vocab::SystemState;
use crate::interop::InteropError;
use crate::protocol::Code;
use crate::ses::SesSeal;
use crate::store::cloud_auths::CloudAuthRecord as AuthRecord;
use crate::store::seals::SealRecord;
use crate::store::systems::SystemRecord;
use crate::time::now_ms;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde_json::{Map, Value, json};

/// Longest id or code accepted from a home system.
const MAX_TOKEN_LEN: usize = 128;

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "cloud signing failure");
    ApiError::internal_fault()
}

fn load_auth(state: &AppState, auth_id: &str) -> Result<Option<AuthRecord>, ApiError> {
    Ok(state.store.get_cloud_auth(auth_id)?)
}

fn save_auth(state: &AppState, auth_id: &str, rec: &AuthRecord) -> Result<(), ApiError> {
    Ok(state.store.put_cloud_auth(auth_id, rec)?)
}

/// Counts a routed call against the seal's home system: succeeded when the requester got an
/// answer from it.
fn meter_home<T>(state: &AppState, home: &str, interface: &str, outcome: &Result<T, ApiError>) {
    metering::record_call(
        &state.store,
        home,
        &metering::routed(interface),
        outcome.is_ok(),
        now_ms(),
    );
}

fn interop_error(e: InteropError) -> ApiError {
    ApiError::from(e)
}

/// The seal and its home system, if the seal may be used for cloud signing now: enabled,
/// unexpired, a cloud-certificate seal (certType 2), of a system that is not suspended and
/// has a callback address. Checked before anything is routed.
pub(crate) fn routable_seal(
    state: &AppState,
    seal_code: &str,
    cloud_only: bool,
) -> Result<(SealRecord, SystemRecord), ApiError> {
    let rec = state
        .store
        .get_seal(seal_code)?
        .ok_or_else(|| ApiError::new(Code::SealNotFound, format!("印章 {seal_code} 不存在")))?;
    if rec.state != SealState::Enabled {
        return Err(ApiError::new(
            Code::SealState,
            format!("印章 {seal_code} 当前状态为{}，不能签章", rec.state.label()),
        ));
    }
    let valid = rec.current().is_some_and(|v| v.valid_end_ms > now_ms());
    if !valid {
        return Err(ApiError::new(
            Code::SealState,
            format!("印章 {seal_code} 已过有效期，不能签章"),
        ));
    }
    if cloud_only && rec.cert_type != 2 {
        return Err(ApiError::new(
            Code::SealState,
            format!("印章 {seal_code} 不是云证书印章（certType 应为 2）"),
        ));
    }
    let home = state
        .store
        .get_system(&rec.app_id)?
        .ok_or_else(|| internal("seal without a home system"))?;
    if home.state == SystemState::Suspended {
        return Err(ApiError::new(
            Code::SealState,
            format!("印章 {seal_code} 所属系统已暂停服务，不能签章"),
        ));
    }
    Ok((rec, home))
}

/// Requester fields are `Some` only when present, so nothing empty is forwarded.
fn put(fields: &mut Map<String, Value>, name: &str, v: Option<String>) {
    if let Some(v) = v {
        fields.insert(name.into(), Value::String(v));
    }
}

fn answer_str(data: &Value, name: &str, home: &str) -> Result<String, ApiError> {
    data.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_TOKEN_LEN)
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::new(
                Code::HomeBadAnswer,
                format!("印章所属系统 {home} 的应答缺少有效的 {name}"),
            )
        })
}

pub async fn auth_apply(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    json_call(
        state,
        req,
        payload,
        "cloud/auth/apply",
        |state, auth| async move {
            let p = Params(&auth.params);
            let seal_code = p.str("sealCode")?;
            let mobile = p.str("mobile")?;
            let org_code = p.opt_str("orgCode")?;
            let name = p.opt_str("name")?;
            let id_card = p.opt_str("idCard")?;
            let redirect_url = p.opt_str("redirectUrl")?;
            for (n, v) in [
                ("orgCode", &org_code),
                ("name", &name),
                ("idCard", &id_card),
                ("redirectUrl", &redirect_url),
            ] {
                if v.as_ref().is_some_and(|s| s.chars().count() > 1024) {
                    return Err(ApiError::invalid(format!("参数 {n} 过长")));
                }
            }
            if mobile.chars().count() > 32 {
                return Err(ApiError::invalid("参数 mobile 过长"));
            }
            let (rec, home) = routable_seal(&state, &seal_code, true)?;
            // A users quota counts each person once, on their first intention request.
            let user = metering::user_hash(&state.store, id_card.as_deref(), &mobile)?;
            metering::take(
                &state.store,
                &auth.system.app_id,
                QuotaKind::Users,
                Some(&user),
                now_ms(),
            )?;
            let mut fields = Map::new();
            fields.insert("sealCode".into(), Value::String(rec.seal_code.clone()));
            fields.insert("mobile".into(), Value::String(mobile));
            put(&mut fields, "orgCode", org_code);
            put(&mut fields, "name", name);
            put(&mut fields, "idCard", id_card);
            put(&mut fields, "redirectUrl", redirect_url);
            fields.insert(
                "requesterAppId".into(),
                Value::String(auth.system.app_id.clone()),
            );
            fields.insert(
                "requesterPlatName".into(),
                Value::String(auth.system.plat_name.clone()),
            );
            let routed = async {
                let data = state
                    .interop
                    .call(&state.keys, &home, "/cloud/auth/apply", fields)
                    .await
                    .map_err(interop_error)?;
                let home_auth_id = answer_str(&data, "authId", &home.app_id)?;
                let auth_url = answer_str(&data, "authUrl", &home.app_id)?;
                let client_type = data
                    .get("clientType")
                    .and_then(Value::as_str)
                    .filter(|t| matches!(*t, "H5" | "PC"))
                    .unwrap_or("H5")
                    .to_string();
                Ok((home_auth_id, auth_url, client_type))
            }
            .await;
            meter_home(&state, &home.app_id, "cloud/auth/apply", &routed);
            let (home_auth_id, auth_url, client_type) = routed?;
            metering::record_user(&state.store, &auth.system.app_id, &user, now_ms());
            metering::record_user(&state.store, &home.app_id, &user, now_ms());
            let auth_id = hex::encode(sm::random_bytes::<16>());
            let ttl = state.config.api.sign_id_ttl_secs as i64 * 1000;
            save_auth(
                &state,
                &auth_id,
                &AuthRecord {
                    requester: auth.system.app_id.clone(),
                    seal_code: rec.seal_code,
                    home_app_id: home.app_id,
                    home_auth_id,
                    auth_code: None,
                    expires_ms: now_ms() + ttl,
                },
            )?;
            Ok(json!({"authUrl": auth_url, "clientType": client_type, "authId": auth_id}))
        },
    )
    .await
}

/// The caller's live authId record for `seal_code`, else `30006`.
fn owned_auth(
    state: &AppState,
    auth_id: &str,
    requester: &str,
    seal_code: &str,
) -> Result<AuthRecord, ApiError> {
    let unknown = || {
        ApiError::new(
            Code::AuthId,
            format!(
                "authId {} 不存在、已过期或不属于该印章",
                auth_id.chars().take(40).collect::<String>()
            ),
        )
    };
    if auth_id.len() != 32 || !auth_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unknown());
    }
    let rec = load_auth(state, auth_id)?.ok_or_else(unknown)?;
    if rec.expires_ms < now_ms() || rec.requester != requester || rec.seal_code != seal_code {
        return Err(unknown());
    }
    Ok(rec)
}

fn home_of(state: &AppState, rec: &AuthRecord) -> Result<SystemRecord, ApiError> {
    let (_, home) = routable_seal(state, &rec.seal_code, true)?;
    if home.app_id != rec.home_app_id {
        return Err(ApiError::new(
            Code::AuthId,
            "印章所属系统已变更，请重新发起意愿认证",
        ));
    }
    Ok(home)
}

pub async fn auth_result(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    json_call(
        state,
        req,
        payload,
        "cloud/auth/result",
        |state, auth| async move {
            let p = Params(&auth.params);
            let auth_id = p.str("authId")?;
            let seal_code = p.str("sealCode")?;
            let mut rec = owned_auth(&state, &auth_id, &auth.system.app_id, &seal_code)?;
            let home = home_of(&state, &rec)?;
            let mut fields = Map::new();
            fields.insert("authId".into(), Value::String(rec.home_auth_id.clone()));
            fields.insert("sealCode".into(), Value::String(seal_code));
            let routed = match state
                .interop
                .call(&state.keys, &home, "/cloud/auth/result", fields)
                .await
            {
                Ok(data) => answer_str(&data, "authCode", &home.app_id),
                Err(InteropError::Refused { code, .. }) if code == "30007" => Err(ApiError::new(
                    Code::AuthIncomplete,
                    "签署人尚未完成意愿认证，请稍后再查询",
                )),
                Err(e) => Err(interop_error(e)),
            };
            meter_home(&state, &home.app_id, "cloud/auth/result", &routed);
            let auth_code = routed?;
            rec.auth_code = Some(auth_code.clone());
            save_auth(&state, &auth_id, &rec)?;
            Ok(json!({"authCode": auth_code, "authId": auth_id}))
        },
    )
    .await
}

/// The seal's signer certificates (DER) from the filed `SES_Seal`'s certificate list.
fn seal_signer_certs(state: &AppState, rec: &SealRecord) -> Result<Vec<Vec<u8>>, ApiError> {
    let version = rec
        .current()
        .ok_or_else(|| internal("seal without version"))?;
    let der = state
        .store
        .seal_der(&version.digest)?
        .ok_or_else(|| internal("filed seal DER missing"))?;
    let seal = SesSeal::decode(&der).map_err(internal)?;
    if seal.cert_list_is_digest {
        return Ok(Vec::new());
    }
    Ok(seal.cert_list)
}

/// Checks a P7 answer: a detached SignedData with signed attributes whose `messageDigest` is
/// `digest`, whose digest algorithm is `hash`, signed by one of the seal's own certificates.
fn verify_p7(
    cms_der: &[u8],
    hash: HashAlg,
    digest: &[u8],
    seal_certs: &[Vec<u8>],
) -> Result<(), &'static str> {
    let sd = cms::parse_signed_data(cms_der).map_err(|_| "signData 不是有效的 CMS SignedData")?;
    if sd.econtent.is_some() {
        return Err("P7 签名数据应为不含原文的分离式签名");
    }
    let attrs = sd
        .signer
        .signed_attrs_der
        .as_deref()
        .ok_or("P7 签名数据缺少签名属性")?;
    if sd.digest_alg() != Some(hash) {
        return Err("P7 签名的摘要算法与 hashType 不符");
    }
    let md = sd
        .attr(cms::OID_MESSAGE_DIGEST)
        .and_then(|v| x509::read_tlv(v).ok())
        .and_then(|(t, _)| x509::octet_string(&t).ok())
        .ok_or("P7 签名数据缺少 messageDigest")?;
    if md != digest {
        return Err("P7 签名的 messageDigest 与 docHash 不符");
    }
    let cert = sd.signer_cert().map_err(|_| "P7 签名数据缺少签名证书")?;
    if !seal_certs.contains(&cert.der) {
        return Err("P7 签名证书不是该印章的签名证书");
    }
    let mut scheme =
        x509::scheme_for_key(&cert.spki_der, hash).map_err(|_| "P7 签名证书的密钥算法不受支持")?;
    if scheme.family == x509::SigFamily::Sm2 {
        scheme.hash = HashAlg::Sm3;
    }
    x509::verify_signature(&cert.spki_der, scheme, attrs, &sd.signer.signature)
        .map_err(|_| "P7 签名值不能用印章签名证书的公钥验证")
}

const P1_HASH_RULE: &str = "P1 摘要签名的 hashType 须与印章签名证书的算法一致：SM2 印章为 4（SM3），RSA 印章为 3（SHA256）";

/// Whether a P1 signature with `hash` can come from the key of `cert` (SPEC §3.6): SM2 keys
/// sign e = SM3(Z‖M), RSA keys sign a SHA-256 digest.
fn p1_fits(cert: &[u8], hash: HashAlg) -> bool {
    x509::CertInfo::parse(cert)
        .ok()
        .and_then(|ci| x509::scheme_for_key(&ci.spki_der, hash).ok())
        .is_some_and(|s| {
            matches!(
                (s.family, hash),
                (x509::SigFamily::Sm2, HashAlg::Sm3) | (x509::SigFamily::Rsa, HashAlg::Sha256)
            )
        })
}

/// Sends a digest-signing request to the seal's home system and checks the answer: the
/// signature must verify under one of the seal's signer certificates before it is returned.
async fn route_sign(
    state: &AppState,
    home: &SystemRecord,
    fields: Map<String, Value>,
    kind: &str,
    hash: HashAlg,
    digest: &[u8],
    certs: &[Vec<u8>],
) -> Result<Value, ApiError> {
    let seal_code = fields
        .get("sealCode")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let data = state
        .interop
        .call(&state.keys, home, "/cloud/sign", fields)
        .await
        .map_err(interop_error)?;
    let bad = |why: &'static str| {
        tracing::warn!(home = %home.app_id, seal_code, why, "home system signature refused");
        ApiError::new(
            Code::HomeBadAnswer,
            format!(
                "印章所属系统 {} 返回的签名数据未通过验证：{why}",
                home.app_id
            ),
        )
    };
    if data.get("type").and_then(Value::as_str) != Some(kind) {
        return Err(bad("签名格式与请求不符"));
    }
    let sign_data = data
        .get("signData")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("缺少 signData"))?
        .to_string();
    let sig = base64::engine::general_purpose::STANDARD
        .decode(&sign_data)
        .map_err(|_| bad("signData 不是标准 Base64"))?;
    if kind == "P1" {
        let verified = certs.iter().any(|c| {
            x509::CertInfo::parse(c)
                .is_ok_and(|ci| x509::verify_digest(&ci.spki_der, hash, digest, &sig).is_ok())
        });
        if !verified {
            return Err(bad("签名值不能用印章签名证书的公钥验证"));
        }
    } else {
        verify_p7(&sig, hash, digest, certs).map_err(bad)?;
    }
    Ok(json!({"type": kind, "signData": sign_data}))
}

pub async fn sign(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    json_call(
        state,
        req,
        payload,
        "cloud/sign",
        |state, auth| async move {
            let p = Params(&auth.params);
            let seal_code = p.str("sealCode")?;
            let auth_id = p.str("authId")?;
            let auth_code = p.str("authCode")?;
            let kind = p.str("type")?;
            let doc_hash = p.str("docHash")?;
            let credent_no = p.str("credentNo")?;
            let org_code = p.opt_str("orgCode")?;
            let sign_id = p.str("signId")?;
            let hash_type = p.int("hashType")?;
            match hash_type {
                3 | 4 => {}
                1 | 2 if state.config.api.allow_legacy_hashes => {}
                1 | 2 => {
                    return Err(ApiError::invalid(
                        "参数 hashType 为 MD5/SHA1，平台配置不允许使用弱杂凑算法",
                    ));
                }
                _ => {
                    return Err(ApiError::invalid(
                        "参数 hashType 应为 1（MD5）、2（SHA1）、3（SHA256）或 4（SM3）",
                    ));
                }
            }
            let hash = match hash_type {
                1 => HashAlg::Md5,
                2 => HashAlg::Sha1,
                3 => HashAlg::Sha256,
                _ => HashAlg::Sm3,
            };
            // P1 is an SM2 signature over e = SM3(Z‖M) or an RSA signature over a SHA-256 digest;
            // P7 is a detached SignedData whose messageDigest is docHash. Nothing else is
            // routed: the platform could not verify it.
            match kind.as_str() {
                "P1" if !matches!(hash_type, 3 | 4) => {
                    return Err(ApiError::invalid(P1_HASH_RULE));
                }
                "P1" | "P7" => {}
                _ => return Err(ApiError::invalid("参数 type 应为 P1 或 P7")),
            }
            let digest_len = hash.digest(b"").len();
            let digest = base64::engine::general_purpose::STANDARD
                .decode(&doc_hash)
                .ok()
                .filter(|d| d.len() == digest_len)
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "参数 docHash 应为 {digest_len} 字节 {} 摘要的标准 Base64",
                        hash.name()
                    ))
                })?;
            if credent_no.chars().count() > 64 {
                return Err(ApiError::invalid("参数 credentNo 过长"));
            }
            let (rec, home) = routable_seal(&state, &seal_code, true)?;
            let certs = seal_signer_certs(&state, &rec)?;
            if certs.is_empty() {
                return Err(ApiError::new(
                    Code::SealInvalid,
                    format!("印章 {seal_code} 未携带可用于验证的签名证书"),
                ));
            }
            if kind == "P1" && !certs.iter().any(|c| p1_fits(c, hash)) {
                return Err(ApiError::invalid(P1_HASH_RULE));
            }
            let requester = auth.system.app_id.clone();
            let quota = metering::take(
                &state.store,
                &requester,
                QuotaKind::Signatures,
                None,
                now_ms(),
            )?;
            let signed = async {
                crate::domain::seals::consume_sign_id(
                    &state.store,
                    &sign_id,
                    &seal_code,
                    Some(&auth.system.app_id),
                )?;
                let arec = owned_auth(&state, &auth_id, &auth.system.app_id, &seal_code)?;
                if arec.home_app_id != home.app_id {
                    return Err(ApiError::new(
                        Code::AuthId,
                        "印章所属系统已变更，请重新发起意愿认证",
                    ));
                }
                if arec.auth_code.as_deref() != Some(auth_code.as_str()) {
                    return Err(ApiError::new(
                        Code::AuthIncomplete,
                        "意愿认证尚未完成或 authCode 无效",
                    ));
                }
                let mut fields = Map::new();
                fields.insert("sealCode".into(), Value::String(seal_code.clone()));
                fields.insert("authId".into(), Value::String(arec.home_auth_id.clone()));
                fields.insert("authCode".into(), Value::String(auth_code));
                fields.insert("type".into(), Value::String(kind.clone()));
                fields.insert("docHash".into(), Value::String(doc_hash));
                fields.insert("credentNo".into(), Value::String(credent_no));
                put(&mut fields, "orgCode", org_code);
                fields.insert("signId".into(), Value::String(sign_id));
                fields.insert("hashType".into(), Value::from(hash_type));
                let routed = route_sign(&state, &home, fields, &kind, hash, &digest, &certs).await;
                meter_home(&state, &home.app_id, "cloud/sign", &routed);
                routed
            }
            .await;
            match &signed {
                Ok(_) => {
                    let now = now_ms();
                    metering::record_signature(&state.store, &requester, "cloud/sign", now);
                    let served = metering::routed("cloud/sign");
                    metering::record_signature(&state.store, &home.app_id, &served, now);
                }
                Err(_) => metering::give_back(&state.store, &requester, quota),
            }
            signed
        },
    )
    .await
}
