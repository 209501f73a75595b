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
use crate::interop::{InteropError, MemberClient};
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
            .route(&home, "/cloud/auth/apply", fields, |answer| {
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
            .route(&home, "/cloud/auth/result", fields, |answer| match answer {
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
            .route(&home, "/cloud/sign", fields, |answer| {
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
