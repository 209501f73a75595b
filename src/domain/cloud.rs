//! Cross-system cloud signing (SPEC §3.4–3.6), free of HTTP: which seals may be routed, the
//! platform authId lifecycle, the hashType policy, the checks on the home system's answers,
//! the requester's quota and the metering of both sides. Nothing the home system returns
//! reaches the requester before it was checked here: a signature must verify under one of
//! the seal's own signer certificates.
//!
//! The outbound call is transport and stays in `interop`; this module reaches it through
//! [`Members`] (in production [`Routed`], the platform's `MemberClient`), so the rules are
//! tested without a network. It must not build envelopes or speak TLS itself.

use super::DomainError;
use super::metering;
use super::seals::{self, Unusable};
use crate::crypto::x509::{self, HashAlg};
use crate::crypto::{cms, sm};
use crate::domain::vocab::{CertType, QuotaKind};
use crate::interop::client::callback_base;
use crate::interop::{
    CALLBACK_AUTH_APPLY, CALLBACK_AUTH_RESULT, CALLBACK_SIGN, InteropError, MemberClient,
};
use crate::keys::Keyring;
use crate::ses::SesSeal;
use crate::store::cloud_auths::CloudAuthRecord;
use crate::store::seals::SealRecord;
use crate::store::systems::SystemRecord;
use crate::store::{Store, StoreError};
use crate::time::now_ms;
use base64::Engine;
use serde_json::{Map, Value};
use std::future::Future;

/// Longest id or code accepted from a home system.
const MAX_TOKEN_LEN: usize = 128;
/// Longest optional text a requester may forward (orgCode, name, idCard, redirectUrl).
const MAX_FIELD_CHARS: usize = 1024;

/// The platform's signed call to a member's callback (SPEC §4).
pub trait Members {
    /// Calls `path` of `home` with `fields`; the `data` of a successful answer.
    fn call(
        &self,
        home: &SystemRecord,
        path: &'static str,
        fields: Map<String, Value>,
    ) -> impl Future<Output = Result<Value, InteropError>>;

    /// Notes that `home`'s answer to `path` failed the platform's checks (`why`), for the log
    /// and the console's last callback failure; nothing by default.
    fn answer_refused(&self, _home: &SystemRecord, _path: &str, _why: &str) {}
}

/// The real transport: the process's member client signing with the platform key.
pub struct Routed<'a> {
    pub client: &'a MemberClient,
    pub keys: &'a Keyring,
}

impl Members for Routed<'_> {
    fn call(
        &self,
        home: &SystemRecord,
        path: &'static str,
        fields: Map<String, Value>,
    ) -> impl Future<Output = Result<Value, InteropError>> {
        self.client.call(self.keys, home, path, fields)
    }

    fn answer_refused(&self, home: &SystemRecord, path: &str, why: &str) {
        self.client
            .note_failure(&home.app_id, path, why.to_string());
    }
}

/// What the cloud-signing rules need: the store, the transport and two settings.
pub struct Cloud<'a, M> {
    pub store: &'a Store,
    pub members: &'a M,
    /// Lifetime of a platform authId (the signId lifetime, `api.sign_id_ttl_secs`).
    pub auth_ttl_ms: i64,
    /// `api.allow_legacy_hashes`: whether hashType 1 (MD5) and 2 (SHA1) may be routed.
    pub allow_legacy_hashes: bool,
}

/// `cloud/auth/apply` (表10).
#[derive(Debug, Clone, Default)]
pub struct Apply {
    pub seal_code: String,
    pub mobile: String,
    pub org_code: Option<String>,
    pub name: Option<String>,
    pub id_card: Option<String>,
    pub redirect_url: Option<String>,
}

/// The answer to `cloud/auth/apply` (表12), with the platform's own authId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub auth_url: String,
    /// `H5` or `PC`.
    pub client_type: &'static str,
    pub auth_id: String,
}

/// `cloud/sign` (表16), type-checked by the caller.
#[derive(Debug, Clone, Default)]
pub struct SignRequest {
    pub seal_code: String,
    pub auth_id: String,
    pub auth_code: String,
    pub kind: String,
    pub doc_hash: String,
    pub credent_no: String,
    pub org_code: Option<String>,
    pub sign_id: String,
    pub hash_type: i64,
}

/// A checked signature of the home system (表18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub kind: SignKind,
    /// Base64 as the home system sent it.
    pub sign_data: String,
}

/// `type` of 表16: what the platform can verify, so what it routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignKind {
    /// An SM2 signature over e = SM3(Z‖M), or an RSA signature over a SHA-256 digest.
    P1,
    /// A detached CMS SignedData whose `messageDigest` is `docHash`.
    P7,
}

impl SignKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignKind::P1 => "P1",
            SignKind::P7 => "P7",
        }
    }
}

const P1_HASH_RULE: &str = "P1 摘要签名的 hashType 须与印章签名证书的算法一致：SM2 印章为 4（SM3），RSA 印章为 3（SHA256）";

/// The hashType policy: 3 (SHA256) and 4 (SM3) always, 1 (MD5) and 2 (SHA1) only where the
/// configuration allows legacy hashes.
pub fn hash_alg(hash_type: i64, allow_legacy: bool) -> Result<HashAlg, DomainError> {
    match hash_type {
        3 => Ok(HashAlg::Sha256),
        4 => Ok(HashAlg::Sm3),
        1 | 2 if !allow_legacy => Err(DomainError::Invalid(
            "参数 hashType 为 MD5/SHA1，平台配置不允许使用弱杂凑算法".into(),
        )),
        1 => Ok(HashAlg::Md5),
        2 => Ok(HashAlg::Sha1),
        _ => Err(DomainError::Invalid(
            "参数 hashType 应为 1（MD5）、2（SHA1）、3（SHA256）或 4（SM3）".into(),
        )),
    }
}

/// Parses `type`; P1 only with a digest a P1 key signs (SHA256 or SM3).
pub fn sign_kind(kind: &str, hash: HashAlg) -> Result<SignKind, DomainError> {
    match kind {
        "P1" if !matches!(hash, HashAlg::Sha256 | HashAlg::Sm3) => {
            Err(DomainError::Invalid(P1_HASH_RULE.into()))
        }
        "P1" => Ok(SignKind::P1),
        "P7" => Ok(SignKind::P7),
        _ => Err(DomainError::Invalid("参数 type 应为 P1 或 P7".into())),
    }
}

/// `docHash` decoded, of the length `hash` produces.
fn doc_digest(doc_hash: &str, hash: HashAlg) -> Result<Vec<u8>, DomainError> {
    let len = hash.digest(b"").len();
    base64::engine::general_purpose::STANDARD
        .decode(doc_hash)
        .ok()
        .filter(|d| d.len() == len)
        .ok_or_else(|| {
            DomainError::Invalid(format!(
                "参数 docHash 应为 {len} 字节 {} 摘要的标准 Base64",
                hash.name()
            ))
        })
}

/// The seal and its home system, if `caller` may have it signed now: visible to the caller
/// (else `30001`, as for an unknown seal), enabled, unexpired, of a home system that is not
/// suspended (`30002`), a cloud-certificate seal (`30002`), and its home system has an https
/// callback (`40001`). Checked before anything is routed or paid for.
pub fn routable_seal(
    store: &Store,
    caller: &SystemRecord,
    seal_code: &str,
) -> Result<(SealRecord, SystemRecord), DomainError> {
    let rec = store
        .get_seal(seal_code)?
        .ok_or_else(|| seals::not_found(seal_code))?;
    let home = store
        .get_system(&rec.app_id)?
        .ok_or_else(|| StoreError::Corrupt(format!("seal {seal_code} without a home system")))?;
    if !seals::visible_to(caller, &rec, &home) {
        return Err(seals::not_found(seal_code));
    }
    let refused = |why: String| Err(DomainError::Conflict(format!("印章 {seal_code} {why}")));
    match seals::usable(&rec, &home, now_ms()) {
        Ok(_) => {}
        Err(Unusable::State(s)) => return refused(format!("当前状态为{}，不能签章", s.label())),
        Err(Unusable::Expired) => return refused("已过有效期，不能签章".into()),
        Err(Unusable::HomeSuspended) => return refused("所属系统已暂停服务，不能签章".into()),
    }
    if rec.cert_type != CertType::Cloud {
        return refused("不是云证书印章（certType 应为 2）".into());
    }
    callback_base(&home)?;
    Ok((rec, home))
}

/// Mints a platform authId bound to the requester, the seal and the home system's own authId.
fn mint_auth(
    store: &Store,
    requester: &str,
    seal_code: &str,
    home: &SystemRecord,
    home_auth_id: String,
    expires_ms: i64,
) -> Result<String, DomainError> {
    let auth_id = hex::encode(sm::random_bytes::<16>());
    store.put_cloud_auth(
        &auth_id,
        &CloudAuthRecord {
            requester: requester.to_string(),
            seal_code: seal_code.to_string(),
            home_app_id: home.app_id.clone(),
            home_auth_id,
            auth_code: None,
            expires_ms,
        },
    )?;
    Ok(auth_id)
}

/// The caller's live authId record for `seal_code`, else `30006`.
pub fn owned_auth(
    store: &Store,
    auth_id: &str,
    requester: &str,
    seal_code: &str,
) -> Result<CloudAuthRecord, DomainError> {
    let unknown = || {
        DomainError::AuthId(format!(
            "authId {} 不存在、已过期或不属于该印章",
            auth_id.chars().take(40).collect::<String>()
        ))
    };
    if auth_id.len() != 32 || !auth_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unknown());
    }
    let rec = store.get_cloud_auth(auth_id)?.ok_or_else(unknown)?;
    if rec.expires_ms < now_ms() || rec.requester != requester || rec.seal_code != seal_code {
        return Err(unknown());
    }
    Ok(rec)
}

/// An authId stays with the home system that issued its intention request.
fn same_home(auth: &CloudAuthRecord, home: &SystemRecord) -> Result<(), DomainError> {
    if auth.home_app_id != home.app_id {
        return Err(DomainError::AuthId(
            "印章所属系统已变更，请重新发起意愿认证".into(),
        ));
    }
    Ok(())
}

/// A required id or code of the home system's answer.
fn answer_str(data: &Value, name: &str, home: &str) -> Result<String, DomainError> {
    data.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_TOKEN_LEN)
        .map(str::to_string)
        .ok_or_else(|| {
            DomainError::HomeAnswer(format!("印章所属系统 {home} 的应答缺少有效的 {name}"))
        })
}

/// The seal's signer certificates (DER) from the filed `SES_Seal`'s certificate list; empty
/// when the seal carries only their digests.
pub fn seal_signer_certs(store: &Store, rec: &SealRecord) -> Result<Vec<Vec<u8>>, DomainError> {
    let version = rec
        .current()
        .ok_or_else(|| StoreError::Corrupt(format!("seal {} without version", rec.seal_code)))?;
    let der = store
        .seal_der(&version.digest)?
        .ok_or_else(|| StoreError::Corrupt(format!("filed seal {} DER missing", rec.seal_code)))?;
    let seal =
        SesSeal::decode(&der).map_err(|e| StoreError::Corrupt(format!("filed seal: {e}")))?;
    if seal.cert_list_is_digest {
        return Ok(Vec::new());
    }
    Ok(seal.cert_list)
}

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

/// Checks a P1 answer: a signature over `digest` by one of the seal's certificates.
fn verify_p1(sig: &[u8], hash: HashAlg, digest: &[u8], seal_certs: &[Vec<u8>]) -> bool {
    seal_certs.iter().any(|c| {
        x509::CertInfo::parse(c)
            .is_ok_and(|ci| x509::verify_digest(&ci.spki_der, hash, digest, sig).is_ok())
    })
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
        .message_digest()
        .map_err(|_| "P7 签名数据缺少 messageDigest")?;
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

/// What a digest signature must be for the platform to return it.
struct Expected<'a> {
    kind: SignKind,
    hash: HashAlg,
    digest: &'a [u8],
    certs: &'a [Vec<u8>],
}

/// Checks the home system's `cloud/sign` answer; the `signData` if it verifies.
fn check_signature(data: &Value, home: &str, want: &Expected) -> Result<String, DomainError> {
    let bad = |why: &'static str| {
        tracing::warn!(home, why, "home system signature refused");
        DomainError::HomeAnswer(format!(
            "印章所属系统 {home} 返回的签名数据未通过验证：{why}"
        ))
    };
    if data.get("type").and_then(Value::as_str) != Some(want.kind.as_str()) {
        return Err(bad("签名格式与请求不符"));
    }
    let sign_data = data
        .get("signData")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("缺少 signData"))?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sign_data)
        .map_err(|_| bad("signData 不是标准 Base64"))?;
    match want.kind {
        SignKind::P1 if !verify_p1(&sig, want.hash, want.digest, want.certs) => {
            return Err(bad("签名值不能用印章签名证书的公钥验证"));
        }
        SignKind::P1 => {}
        SignKind::P7 => verify_p7(&sig, want.hash, want.digest, want.certs).map_err(bad)?,
    }
    Ok(sign_data.to_string())
}

fn too_long(name: &str, v: &Option<String>, max: usize) -> Result<(), DomainError> {
    if v.as_ref().is_some_and(|s| s.chars().count() > max) {
        return Err(DomainError::Invalid(format!("参数 {name} 过长")));
    }
    Ok(())
}

/// Requester fields are forwarded only when present, so nothing empty is sent.
fn put(fields: &mut Map<String, Value>, name: &str, v: Option<String>) {
    if let Some(v) = v {
        fields.insert(name.into(), Value::String(v));
    }
}

impl<M: Members> Cloud<'_, M> {
    /// Sends one routed call and counts it against the home system: succeeded when the
    /// requester got a usable answer from it (`check` passed).
    async fn route<T>(
        &self,
        home: &SystemRecord,
        path: &'static str,
        fields: Map<String, Value>,
        check: impl FnOnce(Result<Value, InteropError>) -> Result<T, DomainError>,
    ) -> Result<T, DomainError> {
        let outcome = check(self.members.call(home, path, fields).await);
        if let Err(DomainError::HomeAnswer(why)) = &outcome {
            self.members.answer_refused(home, path, why);
        }
        let interface = metering::routed(path.trim_start_matches('/'));
        metering::record_call(
            self.store,
            &home.app_id,
            &interface,
            outcome.is_ok(),
            now_ms(),
        );
        outcome
    }

    /// Intention authentication (SPEC §3.4): routed to the seal's home system; a users quota
    /// counts each person once, on their first intention request.
    pub async fn apply(&self, caller: &SystemRecord, req: Apply) -> Result<Started, DomainError> {
        too_long("orgCode", &req.org_code, MAX_FIELD_CHARS)?;
        too_long("name", &req.name, MAX_FIELD_CHARS)?;
        too_long("idCard", &req.id_card, MAX_FIELD_CHARS)?;
        too_long("redirectUrl", &req.redirect_url, MAX_FIELD_CHARS)?;
        too_long("mobile", &Some(req.mobile.clone()), 32)?;
        let (rec, home) = routable_seal(self.store, caller, &req.seal_code)?;
        let user = metering::user_hash(self.store, req.id_card.as_deref(), &req.mobile)?;
        metering::take(
            self.store,
            &caller.app_id,
            QuotaKind::Users,
            Some(&user),
            now_ms(),
        )?;
        let mut fields = Map::new();
        fields.insert("sealCode".into(), Value::String(rec.seal_code.clone()));
        fields.insert("mobile".into(), Value::String(req.mobile));
        put(&mut fields, "orgCode", req.org_code);
        put(&mut fields, "name", req.name);
        put(&mut fields, "idCard", req.id_card);
        put(&mut fields, "redirectUrl", req.redirect_url);
        fields.insert(
            "requesterAppId".into(),
            Value::String(caller.app_id.clone()),
        );
        fields.insert(
            "requesterPlatName".into(),
            Value::String(caller.plat_name.clone()),
        );
        let (home_auth_id, auth_url, client_type) = self
            .route(&home, CALLBACK_AUTH_APPLY, fields, |answer| {
                let data = answer?;
                let client_type = match data.get("clientType").and_then(Value::as_str) {
                    Some("PC") => "PC",
                    _ => "H5",
                };
                Ok((
                    answer_str(&data, "authId", &home.app_id)?,
                    answer_str(&data, "authUrl", &home.app_id)?,
                    client_type,
                ))
            })
            .await?;
        let now = now_ms();
        metering::record_user(self.store, &caller.app_id, &user, now);
        metering::record_user(self.store, &home.app_id, &user, now);
        let auth_id = mint_auth(
            self.store,
            &caller.app_id,
            &rec.seal_code,
            &home,
            home_auth_id,
            now + self.auth_ttl_ms,
        )?;
        Ok(Started {
            auth_url,
            client_type,
            auth_id,
        })
    }

    /// The intention's result (SPEC §3.5): asks the home system and records its authCode on
    /// the caller's authId. Returns the authCode.
    pub async fn result(
        &self,
        caller: &SystemRecord,
        auth_id: &str,
        seal_code: &str,
    ) -> Result<String, DomainError> {
        let mut auth = owned_auth(self.store, auth_id, &caller.app_id, seal_code)?;
        let (_, home) = routable_seal(self.store, caller, &auth.seal_code)?;
        same_home(&auth, &home)?;
        let mut fields = Map::new();
        fields.insert("authId".into(), Value::String(auth.home_auth_id.clone()));
        fields.insert("sealCode".into(), Value::String(seal_code.to_string()));
        let auth_code = self
            .route(&home, CALLBACK_AUTH_RESULT, fields, |answer| match answer {
                Ok(data) => answer_str(&data, "authCode", &home.app_id),
                // The one refusal of the home system the requester acts on: ask again later.
                Err(InteropError::Refused { code, .. }) if code == "30007" => Err(
                    DomainError::NotConfirmed("签署人尚未完成意愿认证，请稍后再查询".into()),
                ),
                Err(e) => Err(e.into()),
            })
            .await?;
        auth.auth_code = Some(auth_code.clone());
        self.store.put_cloud_auth(auth_id, &auth)?;
        Ok(auth_code)
    }

    /// Digest signing (SPEC §3.6). Everything that can refuse without the home system is
    /// checked first, so such a refusal neither burns the signId nor costs quota: the
    /// request, the seal, the authId and its authCode, the quota, and the signId itself (taken
    /// only if it is the caller's, for this seal). Once the call is sent the signId is spent,
    /// whatever the home system answers; a failed signature gives its quota unit back.
    pub async fn sign(
        &self,
        caller: &SystemRecord,
        req: SignRequest,
    ) -> Result<Signed, DomainError> {
        let hash = hash_alg(req.hash_type, self.allow_legacy_hashes)?;
        let kind = sign_kind(&req.kind, hash)?;
        let digest = doc_digest(&req.doc_hash, hash)?;
        if req.credent_no.chars().count() > 64 {
            return Err(DomainError::Invalid("参数 credentNo 过长".into()));
        }
        let seal_code = req.seal_code.as_str();
        let (rec, home) = routable_seal(self.store, caller, seal_code)?;
        let certs = seal_signer_certs(self.store, &rec)?;
        if certs.is_empty() {
            return Err(DomainError::SealInvalid(format!(
                "印章 {seal_code} 未携带可用于验证的签名证书"
            )));
        }
        if kind == SignKind::P1 && !certs.iter().any(|c| p1_fits(c, hash)) {
            return Err(DomainError::Invalid(P1_HASH_RULE.into()));
        }
        let auth = owned_auth(self.store, &req.auth_id, &caller.app_id, seal_code)?;
        same_home(&auth, &home)?;
        if auth.auth_code.as_deref() != Some(req.auth_code.as_str()) {
            return Err(DomainError::NotConfirmed(
                "意愿认证尚未完成或 authCode 无效".into(),
            ));
        }
        let quota = metering::take(
            self.store,
            &caller.app_id,
            QuotaKind::Signatures,
            None,
            now_ms(),
        )?;
        let token =
            match seals::consume_sign_id(self.store, &req.sign_id, seal_code, Some(&caller.app_id))
            {
                Ok(t) => t,
                Err(e) => {
                    metering::give_back(self.store, &caller.app_id, quota);
                    return Err(e);
                }
            };
        let mut fields = Map::new();
        fields.insert("sealCode".into(), Value::String(req.seal_code.clone()));
        fields.insert("authId".into(), Value::String(auth.home_auth_id));
        fields.insert("authCode".into(), Value::String(req.auth_code));
        fields.insert("type".into(), Value::String(kind.as_str().into()));
        fields.insert("docHash".into(), Value::String(req.doc_hash));
        fields.insert("credentNo".into(), Value::String(req.credent_no));
        put(&mut fields, "orgCode", req.org_code);
        fields.insert("signId".into(), Value::String(req.sign_id.clone()));
        fields.insert("hashType".into(), Value::from(req.hash_type));
        let want = Expected {
            kind,
            hash,
            digest: &digest,
            certs: &certs,
        };
        let signed = self
            .route(&home, CALLBACK_SIGN, fields, |answer| {
                check_signature(&answer?, &home.app_id, &want)
            })
            .await;
        match &signed {
            Ok(_) => {
                let now = now_ms();
                metering::record_signature(self.store, &caller.app_id, "cloud/sign", now);
                let served = metering::routed("cloud/sign");
                metering::record_signature(self.store, &home.app_id, &served, now);
            }
            Err(e) => {
                metering::give_back(self.store, &caller.app_id, quota);
                // An open breaker answers without sending: the home system never saw it.
                if matches!(e, DomainError::Interop(InteropError::Degraded(_))) {
                    seals::restore_sign_id(self.store, &req.sign_id, &token)?;
                }
            }
        }
        Ok(Signed {
            kind,
            sign_data: signed?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testkit::{CLOUD, UKEY, World};
    use crate::domain::vocab::SystemState;
    use crate::interop::simulator::p7_detached;
    use crate::ses::kit::SealKit;
    use crate::store::usage::UsageCounts;
    use serde_json::json;
    use std::cell::RefCell;

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    /// A home system that answers with `reply(path, fields)` and records what it was sent.
    struct Fake<F> {
        reply: F,
        sent: RefCell<Vec<(&'static str, Map<String, Value>)>>,
    }

    impl<F> Fake<F> {
        fn new(reply: F) -> Self {
            Fake {
                reply,
                sent: RefCell::new(Vec::new()),
            }
        }

        fn calls(&self, path: &str) -> usize {
            self.sent
                .borrow()
                .iter()
                .filter(|(p, _)| *p == path)
                .count()
        }
    }

    impl<F: Fn(&str, &Map<String, Value>) -> Result<Value, InteropError>> Members for Fake<F> {
        fn call(
            &self,
            _home: &SystemRecord,
            path: &'static str,
            fields: Map<String, Value>,
        ) -> impl Future<Output = Result<Value, InteropError>> {
            let answer = (self.reply)(path, &fields);
            self.sent.borrow_mut().push((path, fields));
            std::future::ready(answer)
        }
    }

    /// A well-behaved home system whose seal key is `kit`'s signer.
    fn honest(kit: &SealKit) -> impl Fn(&str, &Map<String, Value>) -> Result<Value, InteropError> {
        move |path, fields| match path {
            "/cloud/auth/apply" => Ok(json!({
                "authId": "home-auth-1",
                "authUrl": "https://member.test/confirm",
                "clientType": "PC",
            })),
            "/cloud/auth/result" => Ok(json!({"authCode": "code-1", "authId": "home-auth-1"})),
            _ => {
                let digest = base64::engine::general_purpose::STANDARD
                    .decode(fields["docHash"].as_str().unwrap())
                    .unwrap();
                let kind = fields["type"].as_str().unwrap();
                let sig = if kind == "P1" {
                    kit.signer
                        .sign_prehashed(&digest.clone().try_into().unwrap())
                } else {
                    let hash = hash_alg(fields["hashType"].as_i64().unwrap(), true).unwrap();
                    p7_detached(&kit.signer, &kit.signer_cert, hash, &digest).unwrap()
                };
                Ok(json!({"type": kind, "signData": b64(&sig)}))
            }
        }
    }

    fn cloud<'a, M>(w: &'a World, members: &'a M) -> Cloud<'a, M> {
        Cloud {
            store: &w.store,
            members,
            auth_ttl_ms: 600_000,
            allow_legacy_hashes: false,
        }
    }

    fn apply_for(seal_code: &str) -> Apply {
        Apply {
            seal_code: seal_code.into(),
            mobile: "13812345678".into(),
            name: Some("张三".into()),
            ..Default::default()
        }
    }

    /// Applies and fetches the result through `c`: (authId, authCode).
    async fn authorise<M: Members>(
        c: &Cloud<'_, M>,
        caller: &SystemRecord,
        seal_code: &str,
    ) -> (String, String) {
        let started = c.apply(caller, apply_for(seal_code)).await.unwrap();
        let code = c.result(caller, &started.auth_id, seal_code).await.unwrap();
        (started.auth_id, code)
    }

    fn sign_req(seal_code: &str, auth: &(String, String), sign_id: &str) -> SignRequest {
        SignRequest {
            seal_code: seal_code.into(),
            auth_id: auth.0.clone(),
            auth_code: auth.1.clone(),
            kind: "P1".into(),
            doc_hash: b64(&[7u8; 32]),
            credent_no: "11010519491231002X".into(),
            org_code: None,
            sign_id: sign_id.into(),
            hash_type: 4,
        }
    }

    fn usage(w: &World, app_id: &str, interface: &str) -> UsageCounts {
        let today = crate::time::Day::of_ms(now_ms());
        let mut t = UsageCounts::default();
        for r in metering::report(&w.store, Some(app_id), today, today).unwrap() {
            if r.interface == interface {
                t.add(r.counts);
            }
        }
        t
    }

    #[test]
    fn only_visible_enabled_unexpired_cloud_seals_of_reachable_homes_are_routable() {
        let w = World::new();
        let home = w.system(SystemState::Online, true);
        let a = w.system(SystemState::Online, false);
        let seal = w.file(&home, CLOUD, "ES-1");
        let (rec, found) = routable_seal(&w.store, &a, &seal).unwrap();
        assert_eq!(
            (rec.seal_code.as_str(), found.app_id.as_str()),
            (seal.as_str(), home.app_id.as_str())
        );

        // A testing system's seal does not exist for an online caller, worded as an unknown
        // one (no appId named); another testing system may use it.
        let tester = w.system(SystemState::Testing, true);
        let test_seal = w.file(&tester, CLOUD, "ES-T");
        let unknown = routable_seal(&w.store, &a, "NOSUCHSEAL")
            .unwrap_err()
            .to_string();
        assert_eq!(unknown, "印章 NOSUCHSEAL 不存在");
        match routable_seal(&w.store, &a, &test_seal) {
            Err(DomainError::NotFound(m)) => {
                assert_eq!(m, format!("印章 {test_seal} 不存在"));
                assert!(!m.contains(&tester.app_id));
            }
            other => panic!("a test seal is hidden from online callers: {other:?}"),
        }
        let other_tester = w.system(SystemState::Testing, false);
        assert!(routable_seal(&w.store, &other_tester, &test_seal).is_ok());

        // Disabled, of a suspended home, a UKey seal, expired: 30002.
        seals::set_state(&w.store, &home, &seal, 4, None).unwrap();
        assert!(matches!(
            routable_seal(&w.store, &a, &seal),
            Err(DomainError::Conflict(_))
        ));
        seals::set_state(&w.store, &home, &seal, 1, None).unwrap();
        let home = w.set_state(&home, SystemState::Suspended);
        assert!(matches!(
            routable_seal(&w.store, &a, &seal),
            Err(DomainError::Conflict(_))
        ));
        let home = w.set_state(&home, SystemState::Online);
        let ukey = w.file(&home, UKEY, "ES-U");
        assert!(matches!(
            routable_seal(&w.store, &a, &ukey),
            Err(DomainError::Conflict(_))
        ));
        let old = w.store.get_seal(&seal).unwrap().unwrap();
        let mut expired = old.clone();
        if let Some(v) = expired.versions.last_mut() {
            v.valid_end_ms = now_ms() - 1;
        }
        w.store.put_seal(Some(&old), &expired, None, &[]).unwrap();
        assert!(matches!(
            routable_seal(&w.store, &a, &seal),
            Err(DomainError::Conflict(_))
        ));

        // A home without an https callback cannot be reached: 40001 before anything is paid.
        let silent = w.system(SystemState::Online, false);
        let unreachable = w.file(&silent, CLOUD, "ES-S");
        match routable_seal(&w.store, &a, &unreachable) {
            Err(DomainError::Interop(e)) => {
                assert_eq!(e.code(), crate::protocol::Code::HomeUnreachable)
            }
            other => panic!("expected 40001, got {other:?}"),
        }
    }

    #[test]
    fn hash_types_3_and_4_always_1_and_2_only_when_allowed_and_p1_only_with_a_p1_digest() {
        assert_eq!(hash_alg(3, false).unwrap(), HashAlg::Sha256);
        assert_eq!(hash_alg(4, false).unwrap(), HashAlg::Sm3);
        for legacy in [1, 2] {
            assert!(matches!(
                hash_alg(legacy, false),
                Err(DomainError::Invalid(_))
            ));
        }
        assert_eq!(hash_alg(1, true).unwrap(), HashAlg::Md5);
        assert_eq!(hash_alg(2, true).unwrap(), HashAlg::Sha1);
        assert!(hash_alg(5, true).is_err());
        assert_eq!(sign_kind("P1", HashAlg::Sm3).unwrap(), SignKind::P1);
        assert_eq!(sign_kind("P7", HashAlg::Md5).unwrap(), SignKind::P7);
        assert!(sign_kind("P1", HashAlg::Sha1).is_err());
        assert!(sign_kind("P3", HashAlg::Sm3).is_err());
        assert!(doc_digest(&b64(&[0; 32]), HashAlg::Sm3).is_ok());
        assert!(doc_digest(&b64(&[0; 20]), HashAlg::Sm3).is_err());
        assert!(doc_digest("not base64!", HashAlg::Sha1).is_err());

        // P1 must match the seal's key: SM3 for an SM2 seal, never SHA-256.
        let kit = SealKit::generate("某某科技有限公司").unwrap();
        assert!(p1_fits(&kit.signer_cert, HashAlg::Sm3));
        assert!(!p1_fits(&kit.signer_cert, HashAlg::Sha256));
    }

    #[tokio::test]
    async fn an_intention_is_routed_and_its_auth_id_bound_to_requester_seal_and_home() {
        let w = World::new();
        let home = w.system(SystemState::Online, true);
        let a = w.system(SystemState::Online, false);
        let c = w.system(SystemState::Online, false);
        let seal = w.file(&home, CLOUD, "ES-1");
        let other_seal = w.file(&home, CLOUD, "ES-2");
        let fake = Fake::new(honest(&w.kit));
        let rules = cloud(&w, &fake);

        let started = rules.apply(&a, apply_for(&seal)).await.unwrap();
        assert_eq!(started.client_type, "PC");
        assert_eq!(started.auth_url, "https://member.test/confirm");
        assert_ne!(
            started.auth_id, "home-auth-1",
            "the home system's authId stays inside"
        );
        {
            let sent = fake.sent.borrow();
            let (_, fields) = &sent[0];
            assert_eq!(fields["requesterAppId"], a.app_id.as_str());
            assert_eq!(fields["requesterPlatName"], "测试平台");
            assert!(
                !fields.contains_key("idCard"),
                "absent fields are not forwarded"
            );
        }
        let id = started.auth_id.as_str();
        assert!(owned_auth(&w.store, id, &a.app_id, &seal).is_ok());
        for (who, which) in [(&c.app_id, &seal), (&a.app_id, &other_seal)] {
            assert!(matches!(
                owned_auth(&w.store, id, who, which),
                Err(DomainError::AuthId(_))
            ));
        }
        assert!(matches!(
            rules.result(&c, id, &seal).await,
            Err(DomainError::AuthId(_))
        ));

        // The result asks the home system with its own authId and records the authCode.
        assert_eq!(rules.result(&a, id, &seal).await.unwrap(), "code-1");
        assert_eq!(fake.sent.borrow()[1].1["authId"], "home-auth-1");
        let rec = w.store.get_cloud_auth(id).unwrap().unwrap();
        assert_eq!(rec.auth_code.as_deref(), Some("code-1"));

        // Both sides count the person; the home system counts its routed calls.
        let day = crate::time::Day::of_ms(now_ms());
        assert_eq!(
            w.store.usage_user_count(&a.app_id, day.yyyymmdd()).unwrap(),
            1
        );
        assert_eq!(
            w.store
                .usage_user_count(&home.app_id, day.yyyymmdd())
                .unwrap(),
            1
        );
        let served = usage(&w, &home.app_id, "routed:cloud/auth/apply");
        assert_eq!((served.calls, served.succeeded), (1, 1));

        // An authId expires.
        let short = Cloud {
            auth_ttl_ms: -1,
            ..cloud(&w, &fake)
        };
        let stale = short.apply(&a, apply_for(&seal)).await.unwrap().auth_id;
        assert!(matches!(
            owned_auth(&w.store, &stale, &a.app_id, &seal),
            Err(DomainError::AuthId(_))
        ));
        assert!(matches!(
            owned_auth(&w.store, "not-hex", &a.app_id, &seal),
            Err(DomainError::AuthId(_))
        ));
    }

    #[tokio::test]
    async fn the_home_systems_answers_are_checked_and_30007_is_passed_on() {
        let w = World::new();
        let home = w.system(SystemState::Online, true);
        let a = w.system(SystemState::Online, false);
        let seal = w.file(&home, CLOUD, "ES-1");

        // An answer without authUrl is the home system's failure (40003), counted against it.
        let fake = Fake::new(|_: &str, _: &Map<String, Value>| Ok(json!({"authId": "x"})));
        match cloud(&w, &fake).apply(&a, apply_for(&seal)).await {
            Err(DomainError::HomeAnswer(m)) => assert!(m.contains("authUrl"), "{m}"),
            other => panic!("expected 40003, got {other:?}"),
        }
        let served = usage(&w, &home.app_id, "routed:cloud/auth/apply");
        assert_eq!((served.calls, served.failed), (1, 1));

        // "Not confirmed yet" from the home system is 30007 for the requester; any other
        // refusal is the home system's error (40001).
        let honest_home = Fake::new(honest(&w.kit));
        let auth_id = cloud(&w, &honest_home)
            .apply(&a, apply_for(&seal))
            .await
            .unwrap()
            .auth_id;
        let refusing = |code: &'static str| {
            Fake::new(move |_: &str, _: &Map<String, Value>| {
                Err(InteropError::Refused {
                    app_id: "HOME".into(),
                    code: code.into(),
                    message: "…".into(),
                })
            })
        };
        let not_yet = refusing("30007");
        assert!(matches!(
            cloud(&w, &not_yet).result(&a, &auth_id, &seal).await,
            Err(DomainError::NotConfirmed(_))
        ));
        let broken = refusing("50000");
        match cloud(&w, &broken).result(&a, &auth_id, &seal).await {
            Err(DomainError::Interop(e)) => {
                assert_eq!(e.code(), crate::protocol::Code::HomeUnreachable)
            }
            other => panic!("expected 40001, got {other:?}"),
        }
        assert_eq!(
            w.store.get_cloud_auth(&auth_id).unwrap().unwrap().auth_code,
            None
        );
    }

    #[test]
    fn a_signature_is_returned_only_if_it_verifies_under_the_seals_certificate() {
        let kit = SealKit::generate("某某科技有限公司").unwrap();
        let stranger = SealKit::generate("另一单位").unwrap();
        let certs = [kit.signer_cert.clone()];
        let digest = HashAlg::Sm3.digest(b"document");
        let want = |kind| Expected {
            kind,
            hash: HashAlg::Sm3,
            digest: &digest,
            certs: &certs,
        };
        let e: [u8; 32] = digest.clone().try_into().unwrap();
        let answer = |kind: &str, sig: &[u8]| json!({"type": kind, "signData": b64(sig)});
        let refused = |data: Value, kind| {
            matches!(
                check_signature(&data, "HOME", &want(kind)),
                Err(DomainError::HomeAnswer(_))
            )
        };

        // P1: by the seal's key, over docHash.
        let good = kit.signer.sign_prehashed(&e);
        assert_eq!(
            check_signature(&answer("P1", &good), "HOME", &want(SignKind::P1)).unwrap(),
            b64(&good)
        );
        assert!(refused(
            answer("P1", &stranger.signer.sign_prehashed(&e)),
            SignKind::P1
        ));
        assert!(refused(
            answer("P1", &kit.signer.sign_prehashed(&[0; 32])),
            SignKind::P1
        ));
        assert!(
            refused(answer("P7", &good), SignKind::P1),
            "type must match"
        );
        assert!(refused(
            json!({"type": "P1", "signData": "%%%"}),
            SignKind::P1
        ));
        assert!(refused(json!({"type": "P1"}), SignKind::P1));

        // P7: detached, messageDigest = docHash, digest algorithm = hashType, the seal's cert.
        let p7 = |key: &SealKit, hash, md: &[u8]| {
            p7_detached(&key.signer, &key.signer_cert, hash, md).unwrap()
        };
        let good = p7(&kit, HashAlg::Sm3, &digest);
        assert!(check_signature(&answer("P7", &good), "HOME", &want(SignKind::P7)).is_ok());
        assert!(refused(
            answer("P7", &p7(&kit, HashAlg::Sm3, &[0; 32])),
            SignKind::P7
        ));
        assert!(refused(
            answer("P7", &p7(&kit, HashAlg::Sha256, &digest)),
            SignKind::P7
        ));
        assert!(refused(
            answer("P7", &p7(&stranger, HashAlg::Sm3, &digest)),
            SignKind::P7
        ));
        // The seal's certificate, someone else's key.
        let forged =
            p7_detached(&stranger.signer, &kit.signer_cert, HashAlg::Sm3, &digest).unwrap();
        assert!(refused(answer("P7", &forged), SignKind::P7));
        assert!(refused(answer("P7", b"not DER"), SignKind::P7));
    }

    #[tokio::test]
    async fn a_sign_id_is_spent_only_by_its_requester_for_its_seal_once_the_call_is_sent() {
        let w = World::new();
        let home = w.system(SystemState::Online, true);
        let a = w.system(SystemState::Online, false);
        let c = w.system(SystemState::Online, false);
        let seal = w.file(&home, CLOUD, "ES-1");
        let other_seal = w.file(&home, CLOUD, "ES-2");
        let fake = Fake::new(honest(&w.kit));
        let rules = cloud(&w, &fake);
        let auth = authorise(&rules, &a, &seal).await;

        // Another requester's signId, or one for another seal: 30005, nothing routed, and the
        // signId is still there for its owner.
        let cs = w.sign_id(&c, &seal);
        let for_other_seal = w.sign_id(&a, &other_seal);
        for token in [&cs, &for_other_seal] {
            assert!(matches!(
                rules.sign(&a, sign_req(&seal, &auth, token)).await,
                Err(DomainError::SignId(_))
            ));
        }
        assert_eq!(fake.calls("/cloud/sign"), 0);
        assert!(w.sign_id_alive(&cs, &c, &seal));
        assert!(w.sign_id_alive(&for_other_seal, &a, &other_seal));

        // Refusals checked before routing keep the signId: a wrong authCode, an unknown
        // authId, a bad docHash.
        let mine = w.sign_id(&a, &seal);
        let wrong_code = (auth.0.clone(), "0".repeat(32));
        assert!(matches!(
            rules.sign(&a, sign_req(&seal, &wrong_code, &mine)).await,
            Err(DomainError::NotConfirmed(_))
        ));
        let unknown = (hex::encode([7u8; 16]), auth.1.clone());
        assert!(matches!(
            rules.sign(&a, sign_req(&seal, &unknown, &mine)).await,
            Err(DomainError::AuthId(_))
        ));
        let mut short = sign_req(&seal, &auth, &mine);
        short.doc_hash = b64(b"short");
        assert!(matches!(
            rules.sign(&a, short).await,
            Err(DomainError::Invalid(_))
        ));
        assert_eq!(fake.calls("/cloud/sign"), 0);

        // The rightful use signs, once.
        let signed = rules.sign(&a, sign_req(&seal, &auth, &mine)).await.unwrap();
        assert_eq!(signed.kind, SignKind::P1);
        assert!(matches!(
            rules.sign(&a, sign_req(&seal, &auth, &mine)).await,
            Err(DomainError::SignId(_))
        ));

        // Sent and failed: spent. Not sent (breaker open): kept.
        let liar = Fake::new(|_: &str, _: &Map<String, Value>| {
            Ok(json!({"type": "P1", "signData": b64(&[1; 64])}))
        });
        let spent = w.sign_id(&a, &seal);
        assert!(matches!(
            cloud(&w, &liar)
                .sign(&a, sign_req(&seal, &auth, &spent))
                .await,
            Err(DomainError::HomeAnswer(_))
        ));
        assert!(!w.sign_id_alive(&spent, &a, &seal));
        let open =
            Fake::new(|_: &str, _: &Map<String, Value>| Err(InteropError::Degraded("HOME".into())));
        let kept = w.sign_id(&a, &seal);
        match cloud(&w, &open)
            .sign(&a, sign_req(&seal, &auth, &kept))
            .await
        {
            Err(DomainError::Interop(e)) => {
                assert_eq!(e.code(), crate::protocol::Code::HomeUnreachable)
            }
            other => panic!("expected 40001, got {other:?}"),
        }
        assert!(w.sign_id_alive(&kept, &a, &seal));
    }

    #[tokio::test]
    async fn quota_is_paid_before_routing_given_back_on_failure_and_both_sides_metered() {
        let w = World::new();
        let home = w.system(SystemState::Online, true);
        let a = w.system(SystemState::Online, false);
        let seal = w.file(&home, CLOUD, "ES-1");
        let today = crate::time::Day::of_ms(now_ms());
        metering::set_quota(
            &w.store,
            &a.app_id,
            QuotaKind::Signatures,
            1,
            today,
            today,
            &crate::domain::audit_event::Actor::cli(),
        )
        .unwrap();
        let fake = Fake::new(honest(&w.kit));
        let rules = cloud(&w, &fake);
        let auth = authorise(&rules, &a, &seal).await;
        let used = || w.store.get_quota(&a.app_id).unwrap().unwrap().used;

        // A failed signature gives its unit back; a good one keeps it.
        let liar = Fake::new(|_: &str, _: &Map<String, Value>| {
            Ok(json!({"type": "P1", "signData": b64(&[1; 64])}))
        });
        assert!(
            cloud(&w, &liar)
                .sign(&a, sign_req(&seal, &auth, &w.sign_id(&a, &seal)))
                .await
                .is_err()
        );
        assert_eq!(used(), 0);
        // A refused signId gives it back too.
        assert!(
            rules
                .sign(&a, sign_req(&seal, &auth, &hex::encode([9u8; 16])))
                .await
                .is_err()
        );
        assert_eq!(used(), 0);
        rules
            .sign(&a, sign_req(&seal, &auth, &w.sign_id(&a, &seal)))
            .await
            .unwrap();
        assert_eq!(used(), 1);

        // Exhausted: 20007 before anything is routed, and the signId is kept.
        let next = w.sign_id(&a, &seal);
        assert!(matches!(
            rules.sign(&a, sign_req(&seal, &auth, &next)).await,
            Err(DomainError::Quota(_))
        ));
        assert_eq!(fake.calls("/cloud/sign"), 1);
        assert!(w.sign_id_alive(&next, &a, &seal));

        // The requester counts its signature, the home system the routed calls it served.
        assert_eq!(usage(&w, &a.app_id, "cloud/sign").signatures, 1);
        let served = usage(&w, &home.app_id, "routed:cloud/sign");
        assert_eq!(
            (
                served.calls,
                served.succeeded,
                served.failed,
                served.signatures
            ),
            (2, 1, 1, 1)
        );
    }
}
