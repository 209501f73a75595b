//! Seal lifecycle (SPEC §3.1–3.3, §3.8): filing, extension and change with the seal verified
//! and checked against the request; state changes; the query other systems use; signIds.

use super::DomainError;
use super::codes::{self, SealCode};
use crate::crypto::{sm, x509};
use crate::domain::vocab::{BizType, CertType, PossessorType, SealState, SystemState};
use crate::keys::KeyProvider;
use crate::ses::SesSeal;
use crate::store::seals::{self as tree, Field, SealRecord, SealVersion, SignIdRecord, SignIdTake};
use crate::store::systems::SystemRecord;
use crate::store::{Store, StoreError};
use crate::time::now_ms;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// Largest `sealData` accepted (Base64-decoded).
pub const MAX_SEAL_BYTES: usize = 4 * 1024 * 1024;
/// Largest `userList`.
pub const MAX_USERS: usize = 200;
/// Most seals one query answers with (each also mints a signId).
pub const MAX_QUERY_RESULTS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_name: String,
    pub mobile_phone: String,
}

/// The parameters of 表1 plus the SPEC's extensions, already type-checked by the API layer;
/// the integer codes are parsed into their types by [`file`], which names a bad one.
#[derive(Debug, Clone, Default)]
pub struct Filing {
    pub code: Option<String>,
    pub seal_code: Option<String>,
    pub name: String,
    pub seal_type: String,
    pub ukey_id: Option<String>,
    pub cert_number: Option<String>,
    pub possessor: String,
    pub possessor_cert_no: String,
    pub possessor_type: i64,
    pub biz_type: i64,
    pub cert_type: i64,
    pub seal_data: Option<String>,
    pub user_list: Option<Vec<User>>,
}

fn sealed(key: &[u8; 16], s: &str) -> Field {
    Field::seal(key, s)
}

/// Decrypts a field with the owner's data key.
pub fn reveal(
    store: &Store,
    provider: &dyn KeyProvider,
    owner: &str,
    f: &Field,
) -> Result<String, DomainError> {
    Ok(f.open(|| store.data_key(provider, owner))?)
}

/// [`reveal`] for a view of the registry: `None` when the owner's tenant was destroyed, whose
/// seals stay listed as public history without their personal fields.
pub fn reveal_kept(
    store: &Store,
    provider: &dyn KeyProvider,
    owner: &str,
    f: &Field,
) -> Result<Option<String>, DomainError> {
    match f.open(|| store.data_key(provider, owner)) {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::TenantDestroyed(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The `orgCode` index key: salted SM3, so ID numbers never appear in an index.
pub fn org_key(store: &Store, org_code: &str) -> Result<String, DomainError> {
    let mut input = store.index_salt()?;
    input.extend_from_slice(org_code.trim().to_ascii_uppercase().as_bytes());
    Ok(sm::sm3_hex(&input))
}

/// The integer codes of a filing, parsed.
#[derive(Debug, Clone, Copy)]
struct Kinds {
    possessor: PossessorType,
    biz: BizType,
    cert: CertType,
}

fn validate(f: &Filing) -> Result<Kinds, DomainError> {
    let invalid = |m: &str| Err(DomainError::Invalid(m.to_string()));
    if f.name.trim().is_empty() || f.name.chars().count() > 128 {
        return invalid("name 不能为空且不超过 128 字");
    }
    codes::check_seal_type(&f.seal_type)?;
    if f.possessor.trim().is_empty() || f.possessor.chars().count() > 256 {
        return invalid("possessor 不能为空且不超过 256 字");
    }
    let Some(possessor) = PossessorType::from_code(f.possessor_type) else {
        return invalid("possessorType 应为 1（机构）或 2（个人）");
    };
    match possessor {
        PossessorType::Organization if !codes::is_valid_uscc(&f.possessor_cert_no) => {
            return invalid("possessorCertNo 不是有效的统一社会信用代码（校验位错误）");
        }
        PossessorType::Person if !codes::is_valid_resident_id(&f.possessor_cert_no) => {
            return invalid("possessorCertNo 不是有效的居民身份证号码（校验位错误）");
        }
        _ => {}
    }
    let Some(biz) = BizType::from_code(f.biz_type) else {
        return invalid("bizType 应为 1（备案）、2（延期）或 3（变更）");
    };
    let Some(cert) = CertType::from_code(f.cert_type) else {
        return invalid("certType 应为 1（UKey）或 2（云证书）");
    };
    if biz == BizType::Filing && f.seal_code.is_some() {
        return invalid("sealCode 在备案（bizType=1）时不应填写，由平台赋码");
    }
    if biz != BizType::Filing && f.seal_code.is_none() {
        return invalid("sealCode 在延期或变更时必填");
    }
    if biz != BizType::Change && f.seal_data.is_none() {
        return invalid("sealData 在备案和延期时必填");
    }
    for (name, v, max) in [
        ("code", &f.code, 64),
        ("UKeyId", &f.ukey_id, 128),
        ("certNumber", &f.cert_number, 128),
    ] {
        if v.as_ref().is_some_and(|s| s.chars().count() > max) {
            return Err(DomainError::Invalid(format!("{name} 超过 {max} 字")));
        }
    }
    if let Some(users) = &f.user_list {
        if users.len() > MAX_USERS {
            return Err(DomainError::Invalid(format!(
                "userList 最多 {MAX_USERS} 项"
            )));
        }
        for u in users {
            if u.user_name.trim().is_empty() || u.user_name.chars().count() > 64 {
                return invalid("userList.userName 不能为空且不超过 64 字");
            }
            if !codes::is_valid_mobile(&u.mobile_phone) {
                return invalid("userList.mobilePhone 应为 11 位手机号码");
            }
        }
    }
    Ok(Kinds {
        possessor,
        biz,
        cert,
    })
}

/// A parsed, verified seal and what the registry keeps of it.
struct CheckedSeal {
    der: Vec<u8>,
    version: SealVersion,
}

fn check_seal(f: &Filing, biz: BizType, b64: &str, now: i64) -> Result<CheckedSeal, DomainError> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| DomainError::Invalid("sealData 不是有效的 Base64".into()))?;
    if der.len() > MAX_SEAL_BYTES {
        return Err(DomainError::SealInvalid("sealData 超过 4 MiB".into()));
    }
    let seal = SesSeal::decode(&der)
        .map_err(|e| DomainError::SealInvalid(format!("印章数据无法解析: {e}")))?;
    seal.verify_maker()
        .map_err(|e| DomainError::SealInvalid(format!("制章者签名验证失败: {e}")))?;
    if seal.name.trim() != f.name.trim() {
        return Err(DomainError::SealInvalid(format!(
            "name 与印章数据中的印章名称“{}”不一致",
            seal.name
        )));
    }
    if seal.valid_end_ms <= now {
        return Err(DomainError::SealInvalid("印章数据已过有效期".into()));
    }
    let cert_serials: Vec<String> = if seal.cert_list_is_digest {
        Vec::new()
    } else {
        seal.cert_list
            .iter()
            .filter_map(|c| x509::CertInfo::parse(c).ok())
            .map(|c| c.serial_hex.to_ascii_lowercase())
            .collect()
    };
    if let Some(n) = &f.cert_number
        && !cert_serials.is_empty()
        && !cert_serials
            .iter()
            .any(|s| s.eq_ignore_ascii_case(n.trim_start_matches("0x")))
    {
        return Err(DomainError::SealInvalid(format!(
            "certNumber {n} 与印章数据中的签章者证书序列号不一致"
        )));
    }
    Ok(CheckedSeal {
        version: SealVersion {
            digest: hex::encode(seal.digest()),
            es_id: seal.es_id.clone(),
            valid_start_ms: seal.valid_start_ms,
            valid_end_ms: seal.valid_end_ms,
            cert_serials,
            filed_ms: now,
            biz_type: biz,
        },
        der,
    })
}

/// Files, extends or changes a seal (SPEC §3.1); returns the seal code.
pub fn file(
    store: &Store,
    provider: &dyn KeyProvider,
    region: &str,
    caller: &SystemRecord,
    f: Filing,
) -> Result<String, DomainError> {
    file_audited(store, provider, region, caller, f, None)
}

/// [`file`] with the calling interface's audit entry written in the seal's own transaction
/// (SPEC §6.1 must-succeed: no entry, no seal).
pub fn file_audited(
    store: &Store,
    provider: &dyn KeyProvider,
    region: &str,
    caller: &SystemRecord,
    f: Filing,
    audit: Option<&crate::audit::entry::Draft>,
) -> Result<String, DomainError> {
    let kinds = validate(&f)?;
    let now = now_ms();
    let existing = match &f.seal_code {
        None => None,
        Some(c) => {
            let code = SealCode::parse(c)?;
            let rec = store
                .get_seal(code.as_str())?
                .ok_or_else(|| DomainError::NotFound(format!("印章 {code} 不存在")))?;
            if rec.app_id != caller.app_id {
                return Err(DomainError::Forbidden(format!(
                    "印章 {code} 不是本系统备案的印章"
                )));
            }
            if rec.state == SealState::Revoked {
                return Err(DomainError::Conflict(format!(
                    "印章 {code} 已注销，不能延期或变更"
                )));
            }
            Some(rec)
        }
    };
    let checked = f
        .seal_data
        .as_deref()
        .map(|b| check_seal(&f, kinds.biz, b, now))
        .transpose()?;
    if let Some(c) = &checked
        && store
            .seal_by_index(&tree::key_digest(&c.version.digest))?
            .is_some()
    {
        return Err(DomainError::Duplicate("相同的印章数据已备案".into()));
    }
    if let Some(code) = &f.code
        && let Some(other) = store.seal_by_index(&tree::key_code(&caller.app_id, code))?
        && existing.as_ref().is_none_or(|e| e.seal_code != other)
    {
        return Err(DomainError::Duplicate(format!(
            "业务系统印章编码 code {code} 已备案为 {other}"
        )));
    }

    let key = store.data_key(provider, &caller.app_id)?;
    let personal = kinds.possessor == PossessorType::Person;
    let possessor = if personal {
        sealed(&key, &f.possessor)
    } else {
        Field::Plain(f.possessor.clone())
    };
    let cert_no = if personal {
        sealed(&key, &f.possessor_cert_no)
    } else {
        Field::Plain(f.possessor_cert_no.clone())
    };
    let user_list = f
        .user_list
        .as_ref()
        .map(|u| serde_json::to_string(u).map(|j| sealed(&key, &j)))
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let org = org_key(store, &f.possessor_cert_no)?;

    let mut rec = match existing.clone() {
        Some(mut r) => {
            if kinds.biz == BizType::Extension
                && let (Some(c), Some(cur)) = (&checked, r.current())
                && c.version.valid_end_ms <= cur.valid_end_ms
            {
                return Err(DomainError::SealInvalid(
                    "延期的印章有效期必须晚于当前版本".into(),
                ));
            }
            r.name = f.name.trim().to_string();
            r.seal_type = f.seal_type.clone();
            r.code = f.code.clone().or(r.code);
            r.ukey_id = f.ukey_id.clone().or(r.ukey_id);
            r.cert_number = f.cert_number.clone().or(r.cert_number);
            r.possessor = possessor;
            r.possessor_cert_no = cert_no;
            r.org_key = org.clone();
            r.possessor_type = kinds.possessor;
            r.cert_type = kinds.cert;
            if user_list.is_some() {
                r.user_list = user_list;
            }
            r
        }
        None => {
            let seq = store.next_seal_sequence()?;
            let code = SealCode::new(region, &f.seal_type, seq)?;
            SealRecord {
                seal_code: code.to_string(),
                app_id: caller.app_id.clone(),
                code: f.code.clone(),
                name: f.name.trim().to_string(),
                seal_type: f.seal_type.clone(),
                ukey_id: f.ukey_id.clone(),
                cert_number: f.cert_number.clone(),
                possessor,
                possessor_cert_no: cert_no,
                org_key: org.clone(),
                possessor_type: kinds.possessor,
                cert_type: kinds.cert,
                user_list,
                state: SealState::Enabled,
                state_history: vec![(SealState::Enabled, now)],
                versions: Vec::new(),
                test_data: caller.state == SystemState::Testing,
                created_ms: now,
            }
        }
    };
    let mut index = vec![
        [
            tree::key_org_prefix(&org),
            rec.seal_code.as_bytes().to_vec(),
        ]
        .concat(),
    ];
    if let Some(code) = &rec.code {
        index.push(tree::key_code(&caller.app_id, code));
    }
    if let Some(c) = &checked {
        index.push(tree::key_digest(&c.version.digest));
        index.push(tree::key_es_id(&c.version.es_id));
        index.extend(c.version.cert_serials.iter().map(|s| tree::key_cert_sn(s)));
        rec.versions.push(c.version.clone());
    }
    // The entry names the seal the call filed.
    let audit = audit.map(|d| crate::audit::entry::Draft {
        target: rec.seal_code.clone(),
        ..d.clone()
    });
    store
        .put_seal_audited(
            existing.as_ref(),
            &rec,
            checked.as_ref().map(|c| c.der.as_slice()),
            &index,
            audit.as_ref(),
        )
        .map_err(|e| match e {
            StoreError::Conflict => DomainError::Duplicate("印章同时被另一请求修改，请重试".into()),
            other => other.into(),
        })?;
    Ok(rec.seal_code)
}

/// Changes a seal's state (SPEC §3.2): 1↔4, 1→3, 4→3; revoked is final; same state succeeds.
/// `audit`, the call's entry, is written with the change (or alone when nothing changes).
pub fn set_state(
    store: &Store,
    caller: &SystemRecord,
    seal_code: &str,
    state: i64,
    audit: Option<&crate::audit::entry::Draft>,
) -> Result<(), DomainError> {
    let to = SealState::from_code(state).ok_or_else(|| {
        DomainError::Invalid("state 应为 1（启用）、3（注销）或 4（停用）".into())
    })?;
    let code = SealCode::parse(seal_code)?;
    loop {
        let old = store
            .get_seal(code.as_str())?
            .ok_or_else(|| DomainError::NotFound(format!("印章 {code} 不存在")))?;
        if old.app_id != caller.app_id {
            return Err(DomainError::Forbidden(format!(
                "印章 {code} 不是本系统备案的印章"
            )));
        }
        if old.state == to {
            if let Some(d) = audit {
                store.append_audit(d)?;
            }
            return Ok(());
        }
        if old.state == SealState::Revoked {
            return Err(DomainError::Conflict(format!(
                "印章 {code} 已注销，状态不能再变更"
            )));
        }
        let mut new = old.clone();
        new.state = to;
        new.state_history.push((to, now_ms()));
        match store.put_seal_audited(Some(&old), &new, None, &[], audit) {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The query of 表5.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub org_code: String,
    pub seal_type: String,
    pub cert_type: i64,
    pub cert_number: Option<String>,
    pub ukey_id: Option<String>,
}

fn cert_entry(der: &[u8]) -> Option<Value> {
    let c = x509::CertInfo::parse(der).ok()?;
    let algorithm = if x509::key_type_name(&c.spki_der).contains("RSA") {
        1
    } else {
        2
    };
    let cn = c
        .subject
        .split(',')
        .find_map(|p| p.trim().strip_prefix("CN="))
        .unwrap_or(&c.subject)
        .to_string();
    Some(json!({
        "algorithm": algorithm,
        "certCode": c.serial_hex,
        "invalidTime": crate::time::format_time_ms(c.not_after_ms),
        "signPublicKey": base64::engine::general_purpose::STANDARD.encode(der),
        "subjectCn": cn,
    }))
}

/// Test isolation (SPEC §1.4), the one rule every interface applies before it names a seal
/// to `caller`: seals filed while their system was testing, and any seal of a system that
/// is testing now, are visible to testing systems only. To a caller that may not see it, a
/// seal does not exist (`30001`, worded as for an unknown seal).
pub fn visible_to(caller: &SystemRecord, rec: &SealRecord, home: &SystemRecord) -> bool {
    let caller_testing = caller.state == SystemState::Testing;
    if rec.test_data {
        return caller_testing;
    }
    match home.state {
        SystemState::Online | SystemState::Suspended => true,
        SystemState::Testing => caller_testing,
    }
}

/// Why a visible seal cannot be used now (`30002`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Revoked or disabled.
    State(SealState),
    /// Its current version's validity has ended (or it has none).
    Expired,
    /// Its home system is suspended and answers nothing.
    HomeSuspended,
}

/// The seal's current version if the seal may be used at `now`: enabled, unexpired, and its
/// home system not suspended. The query lists only such seals; signing refuses the others.
pub fn usable<'a>(
    rec: &'a SealRecord,
    home: &SystemRecord,
    now: i64,
) -> Result<&'a SealVersion, Unusable> {
    if rec.state != SealState::Enabled {
        return Err(Unusable::State(rec.state));
    }
    let version = rec
        .current()
        .filter(|v| v.valid_end_ms > now)
        .ok_or(Unusable::Expired)?;
    if home.state == SystemState::Suspended {
        return Err(Unusable::HomeSuspended);
    }
    Ok(version)
}

/// The message of `30001` for `seal_code`, the same whether the seal is unknown or hidden.
pub fn not_found(seal_code: &str) -> DomainError {
    DomainError::NotFound(format!("印章 {seal_code} 不存在"))
}

/// The parts of a query answer that depend only on one filed seal version's DER: its Base64,
/// its picture's Base64 and sizes, its `certList`. The large ones are kept as JSON already
/// written, so an answer copies them instead of encoding and escaping them again.
#[derive(Debug)]
struct SealView {
    moulage_data: Box<RawValue>,
    seal_data: Box<RawValue>,
    width: i64,
    height: i64,
    dpi_x: i64,
    dpi_y: i64,
    algorithm: String,
    cert_list: Box<RawValue>,
}

impl SealView {
    fn of(der: &[u8]) -> Result<Self, DomainError> {
        let seal =
            SesSeal::decode(der).map_err(|e| StoreError::Corrupt(format!("filed seal: {e}")))?;
        let cert_list: Vec<Value> = if seal.cert_list_is_digest {
            Vec::new()
        } else {
            seal.cert_list
                .iter()
                .filter_map(|c| cert_entry(c))
                .collect()
        };
        let algorithm = cert_list
            .first()
            .and_then(|c| c["algorithm"].as_i64())
            .unwrap_or(2)
            .to_string();
        // 表7 sizes: millimetres from the seal, pixels from the picture when it says.
        let (dpi_x, dpi_y) = crate::ses::picture::pixel_size(&seal.picture.data)
            .map_or((0, 0), |(w, h)| (i64::from(w), i64::from(h)));
        let b64 = &base64::engine::general_purpose::STANDARD;
        fn raw(v: &impl Serialize) -> Result<Box<RawValue>, StoreError> {
            serde_json::value::to_raw_value(v).map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        Ok(SealView {
            moulage_data: raw(&b64.encode(&seal.picture.data))?,
            seal_data: raw(&b64.encode(der))?,
            width: seal.picture.width_mm.round() as i64,
            height: seal.picture.height_mm.round() as i64,
            dpi_x,
            dpi_y,
            algorithm,
            cert_list: raw(&cert_list)?,
        })
    }

    /// Bytes it holds, for the cache's budget.
    fn weight(&self) -> usize {
        self.moulage_data.get().len()
            + self.seal_data.get().len()
            + self.cert_list.get().len()
            + 256
    }
}

/// Bytes of [`SealView`]s kept; the oldest entries go first beyond it.
const SEAL_VIEW_BUDGET: usize = 64 * 1024 * 1024;

/// [`SealView`]s by version digest (SM3 of the DER, so an entry can never be stale: a changed
/// or extended seal has a new digest). Process-wide because the digest names the same bytes
/// in every store; bounded by [`SEAL_VIEW_BUDGET`], FIFO.
#[derive(Default)]
struct SealViewCache {
    views: std::collections::HashMap<String, std::sync::Arc<SealView>>,
    order: std::collections::VecDeque<String>,
    bytes: usize,
}

static SEAL_VIEWS: std::sync::LazyLock<std::sync::Mutex<SealViewCache>> =
    std::sync::LazyLock::new(Default::default);

/// The view of the seal version `digest`, from the cache or built from the stored DER; `None`
/// when the store has no such DER.
fn seal_view(store: &Store, digest: &str) -> Result<Option<std::sync::Arc<SealView>>, DomainError> {
    if let Ok(cache) = SEAL_VIEWS.lock()
        && let Some(v) = cache.views.get(digest)
    {
        return Ok(Some(v.clone()));
    }
    let Some(der) = store.seal_der(digest)? else {
        return Ok(None);
    };
    // Built outside the lock: decoding a large seal must not stall other queries.
    let view = std::sync::Arc::new(SealView::of(&der)?);
    let weight = view.weight();
    if weight <= SEAL_VIEW_BUDGET
        && let Ok(mut cache) = SEAL_VIEWS.lock()
        && !cache.views.contains_key(digest)
    {
        while cache.bytes + weight > SEAL_VIEW_BUDGET {
            let Some(old) = cache.order.pop_front() else {
                break;
            };
            if let Some(v) = cache.views.remove(&old) {
                cache.bytes -= v.weight();
            }
        }
        cache.bytes += weight;
        cache.order.push_back(digest.to_string());
        cache.views.insert(digest.to_string(), view.clone());
    }
    Ok(Some(view))
}

/// Enabled, unexpired seals for `orgCode` that the caller may see ([`visible_to`]) and use
/// ([`usable`]), each with a fresh signId bound to the caller (表7–9).
pub fn query(
    store: &Store,
    provider: &dyn KeyProvider,
    caller: &SystemRecord,
    q: &Query,
    sign_id_ttl_ms: i64,
) -> Result<Vec<QueriedSeal>, DomainError> {
    if q.org_code.trim().is_empty() || q.org_code.len() > 64 {
        return Err(DomainError::Invalid(
            "orgCode 不能为空且不超过 64 字".into(),
        ));
    }
    if q.seal_type != "0" {
        codes::check_seal_type(&q.seal_type)?;
    }
    // 0 asks for either kind.
    let cert_type = match q.cert_type {
        0 => None,
        c => Some(
            CertType::from_code(c)
                .ok_or_else(|| DomainError::Invalid("certType 应为 0、1 或 2".into()))?,
        ),
    };
    let now = now_ms();
    let mut out = Vec::new();
    let org = org_key(store, &q.org_code)?;
    for code in store.seals_of_org(&org)? {
        if out.len() >= MAX_QUERY_RESULTS {
            break;
        }
        let Some(rec) = store.get_seal(&code)? else {
            continue;
        };
        // A change of possessor leaves the old index entry behind; the record decides.
        if rec.org_key != org {
            continue;
        }
        let Some(home) = store.get_system(&rec.app_id)? else {
            continue;
        };
        // The query lists exactly the seals another system may use now.
        if !visible_to(caller, &rec, &home) {
            continue;
        }
        let Ok(version) = usable(&rec, &home, now).cloned() else {
            continue;
        };
        if (q.seal_type != "0" && rec.seal_type != q.seal_type)
            || cert_type.is_some_and(|c| rec.cert_type != c)
            || q.cert_number.as_ref().is_some_and(|n| {
                rec.cert_number.as_deref() != Some(n.as_str())
                    && !version
                        .cert_serials
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(n))
            })
            || q.ukey_id
                .as_ref()
                .is_some_and(|u| rec.ukey_id.as_deref() != Some(u.as_str()))
        {
            continue;
        }
        let Some(view) = seal_view(store, &version.digest)? else {
            continue;
        };
        let sign_id = issue_sign_id(store, &caller.app_id, &rec.seal_code, now + sign_id_ttl_ms)?;
        let fetched_before = store.mark_fetched(&caller.app_id, &rec.seal_code)?;
        let users: Vec<User> = match &rec.user_list {
            Some(f) => {
                serde_json::from_str(&reveal(store, provider, &rec.app_id, f)?).unwrap_or_default()
            }
            None => Vec::new(),
        };
        out.push(QueriedSeal {
            sign_id,
            seal_type: rec.seal_type,
            seal_relate_type: rec.possessor_type.code().to_string(),
            seal_code: rec.seal_code,
            seal_name: rec.name,
            view,
            seal_invalid_time: crate::time::format_time_ms(version.valid_end_ms),
            cert_type: rec.cert_type.code(),
            dest_host: if rec.cert_type == CertType::UKey {
                home.dest_host.clone().unwrap_or_default()
            } else {
                String::new()
            },
            plat_name: home.plat_name,
            ukey_id: rec.ukey_id.unwrap_or_default(),
            state: if fetched_before { 2 } else { 1 },
            user_list: users,
        });
    }
    Ok(out)
}

/// One seal of a query answer (表7–9), serialised in that table's order.
pub struct QueriedSeal {
    sign_id: String,
    seal_type: String,
    seal_relate_type: String,
    seal_code: String,
    seal_name: String,
    view: std::sync::Arc<SealView>,
    seal_invalid_time: String,
    cert_type: i64,
    dest_host: String,
    plat_name: String,
    ukey_id: String,
    state: u8,
    user_list: Vec<User>,
}

impl Serialize for QueriedSeal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let v = &self.view;
        let mut m = s.serialize_map(Some(20))?;
        m.serialize_entry("signId", &self.sign_id)?;
        m.serialize_entry("sealType", &self.seal_type)?;
        m.serialize_entry("sealRelateType", &self.seal_relate_type)?;
        m.serialize_entry("sealCode", &self.seal_code)?;
        m.serialize_entry("sealName", &self.seal_name)?;
        m.serialize_entry("moulageData", &v.moulage_data)?;
        m.serialize_entry("width", &v.width)?;
        m.serialize_entry("height", &v.height)?;
        m.serialize_entry("dpiX", &v.dpi_x)?;
        m.serialize_entry("dpiY", &v.dpi_y)?;
        m.serialize_entry("sealData", &v.seal_data)?;
        m.serialize_entry("sealInvalidTime", &self.seal_invalid_time)?;
        m.serialize_entry("certType", &self.cert_type)?;
        m.serialize_entry("destHost", &self.dest_host)?;
        m.serialize_entry("platName", &self.plat_name)?;
        m.serialize_entry("UKeyId", &self.ukey_id)?;
        m.serialize_entry("algorithm", &v.algorithm)?;
        m.serialize_entry("certList", &v.cert_list)?;
        m.serialize_entry("state", &self.state)?;
        m.serialize_entry("userList", &self.user_list)?;
        m.end()
    }
}

/// Issues a signId (≥128 random bits) bound to the requester and the seal.
pub fn issue_sign_id(
    store: &Store,
    requester: &str,
    seal_code: &str,
    expires_ms: i64,
) -> Result<String, DomainError> {
    let token = hex::encode(sm::random_bytes::<16>());
    store.put_sign_id(
        &token,
        &SignIdRecord {
            requester: requester.to_string(),
            seal_code: seal_code.to_string(),
            expires_ms,
        },
    )?;
    Ok(token)
}

/// Consumes a signId atomically, and only for its rightful use: bound to `seal_code`,
/// unexpired, and issued to `requester` when one is given (cloud signing). The UKey voucher
/// passes `None`: the seal's home system asks on the requester's behalf, and the caller has
/// checked that the seal is its own; a wrong `sealCode` is refused there too. A refused use
/// leaves the signId in place for its rightful consumer.
pub fn consume_sign_id(
    store: &Store,
    token: &str,
    seal_code: &str,
    requester: Option<&str>,
) -> Result<SignIdRecord, DomainError> {
    let invalid = || {
        DomainError::SignId(format!(
            "signId {} 无效、已过期、已使用或不属于该印章",
            token.chars().take(40).collect::<String>()
        ))
    };
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let now = now_ms();
    let taken = store.take_sign_id_if(token, |rec| {
        rec.expires_ms >= now
            && rec.seal_code == seal_code
            && requester.is_none_or(|r| r == rec.requester)
    })?;
    match taken {
        SignIdTake::Taken(rec) => Ok(rec),
        SignIdTake::Refused(_) | SignIdTake::Missing => Err(invalid()),
    }
}

/// Puts back a signId taken by [`consume_sign_id`] for a use that never happened (the call
/// it paid for was not sent).
pub fn restore_sign_id(store: &Store, token: &str, rec: &SignIdRecord) -> Result<(), DomainError> {
    Ok(store.put_sign_id(token, rec)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testkit::{CLOUD, World};

    #[test]
    fn a_filing_whose_audit_entry_cannot_be_written_is_refused_and_not_stored() {
        use crate::audit::entry::{Actor, Draft, Kind, Result as R};
        use std::sync::atomic::Ordering;
        let (w, engine) = World::with_refusing_audit();
        let home = w.system(SystemState::Online, false);
        let draft = Draft {
            at_ms: 1,
            kind: Kind::Api,
            action: "seal.filing".into(),
            actor: Actor {
                kind: "system".into(),
                id: home.app_id.clone(),
                role: None,
            },
            target: String::new(),
            result: R::Ok,
            code: Some(0),
            request_id: Some("r1".into()),
            client: Some("127.0.0.1".into()),
            latency_ms: Some(3),
            params_digest: None,
            detail: String::new(),
        };
        let size = w.store.audit_frontier().unwrap().size;
        engine.refuse.store(true, Ordering::SeqCst);
        let f = w.filing(CLOUD, "ES-A");
        let digest_key = {
            let der = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                f.seal_data.as_deref().unwrap(),
            )
            .unwrap();
            tree::key_digest(&crate::crypto::sm::sm3_hex(&der))
        };
        let err = file_audited(
            &w.store,
            &w.provider,
            "340000",
            &home,
            f.clone(),
            Some(&draft),
        );
        assert!(matches!(err, Err(DomainError::Store(_))), "{err:?}");
        assert_eq!(err.unwrap_err().code(), crate::protocol::Code::Internal);
        // Nothing changed: no seal under its digest, no entry.
        assert_eq!(w.store.seal_by_index(&digest_key).unwrap(), None);
        assert_eq!(w.store.audit_frontier().unwrap().size, size);

        // With the audit device back, the same filing lands with its entry naming the seal.
        engine.refuse.store(false, Ordering::SeqCst);
        let code = file_audited(&w.store, &w.provider, "340000", &home, f, Some(&draft)).unwrap();
        assert_eq!(
            w.store.seal_by_index(&digest_key).unwrap(),
            Some(code.clone())
        );
        let (seq, leaf) = w.store.recent_audit_leaves(1).unwrap().remove(0);
        let e = crate::audit::entry::parse(&leaf).unwrap();
        assert_eq!(
            (seq, e.action.as_str(), e.target),
            (size, "seal.filing", code.clone())
        );

        // A state change whose entry cannot be written is refused and the seal keeps its state.
        let state_entry = Draft {
            action: "seal.state".into(),
            ..draft.clone()
        };
        engine.refuse.store(true, Ordering::SeqCst);
        let err = set_state(&w.store, &home, &code, 4, Some(&state_entry)).unwrap_err();
        assert_eq!(err.code(), crate::protocol::Code::Internal);
        let seal = w.store.get_seal(&code).unwrap().unwrap();
        assert_eq!(seal.state, SealState::Enabled);
        engine.refuse.store(false, Ordering::SeqCst);
        set_state(&w.store, &home, &code, 4, Some(&state_entry)).unwrap();
        assert_eq!(
            w.store.get_seal(&code).unwrap().unwrap().state,
            SealState::Disabled
        );
        // Asking again for the state it has changes nothing but is still one entry.
        let before = w.store.audit_frontier().unwrap().size;
        set_state(&w.store, &home, &code, 4, Some(&state_entry)).unwrap();
        assert_eq!(w.store.audit_frontier().unwrap().size, before + 1);
    }

    #[test]
    fn test_isolation_one_rule_for_every_interface() {
        use SystemState::{Online, Suspended, Testing};
        let w = World::new();
        let home = w.system(Online, true);
        let code = w.file(&home, CLOUD, "ES-1");
        let rec = w.store.get_seal(&code).unwrap().unwrap();
        let as_state = |s: &SystemRecord, state| SystemRecord { state, ..s.clone() };
        // (seal filed while testing, home state, caller state) → visible
        let table = [
            (false, Online, Online, true),
            (false, Online, Testing, true),
            (false, Suspended, Online, true),
            (false, Testing, Online, false),
            (false, Testing, Testing, true),
            (true, Online, Online, false),
            (true, Testing, Online, false),
            (true, Testing, Testing, true),
            (true, Online, Testing, true),
        ];
        for (test_data, home_state, caller_state, visible) in table {
            let rec = SealRecord {
                test_data,
                ..rec.clone()
            };
            assert_eq!(
                visible_to(
                    &as_state(&home, caller_state),
                    &rec,
                    &as_state(&home, home_state)
                ),
                visible,
                "test_data={test_data} home={home_state:?} caller={caller_state:?}"
            );
        }
        // Visible is not usable: a suspended home's seal is named but refused.
        assert_eq!(
            usable(&rec, &as_state(&home, Suspended), now_ms()),
            Err(Unusable::HomeSuspended)
        );
        assert!(usable(&rec, &home, now_ms()).is_ok());
        assert_eq!(
            usable(&rec, &home, rec.current().unwrap().valid_end_ms),
            Err(Unusable::Expired)
        );
    }

    #[test]
    fn the_query_lists_only_seals_the_caller_may_see_and_use() {
        use SystemState::{Online, Testing};
        let w = World::new();
        let online = w.system(Online, true);
        let tester = w.system(Testing, true);
        let caller = w.system(Online, false);
        let other_tester = w.system(Testing, false);
        let public = w.file(&online, CLOUD, "ES-1");
        let test = w.file(&tester, CLOUD, "ES-T");
        let q = Query {
            org_code: crate::domain::testkit::ORG.into(),
            seal_type: "0".into(),
            ..Default::default()
        };
        let listed = |who: &SystemRecord| -> Vec<String> {
            let mut v: Vec<String> = as_json(query(&w.store, &w.provider, who, &q, 60_000))
                .iter()
                .map(|s| s["sealCode"].as_str().unwrap().to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(listed(&caller), vec![public.clone()]);
        let mut both = vec![public.clone(), test];
        both.sort();
        assert_eq!(listed(&other_tester), both);
        w.set_state(&online, SystemState::Suspended);
        assert_eq!(listed(&caller), Vec::<String>::new());
    }

    #[test]
    fn a_sign_id_refused_for_the_wrong_requester_or_seal_is_not_burnt() {
        let w = World::new();
        let home = w.system(SystemState::Online, true);
        let a = w.system(SystemState::Online, false);
        let b = w.system(SystemState::Online, false);
        let seal = w.file(&home, CLOUD, "ES-1");
        let other_seal = w.file(&home, CLOUD, "ES-2");
        let token = w.sign_id(&a, &seal);
        let refused = |seal_code: &str, requester| {
            matches!(
                consume_sign_id(&w.store, &token, seal_code, requester),
                Err(DomainError::SignId(_))
            )
        };
        assert!(refused(&seal, Some(b.app_id.as_str())));
        assert!(refused(&other_seal, Some(a.app_id.as_str())));
        // The UKey voucher (no requester) must name the signId's own seal too.
        assert!(refused(&other_seal, None));
        let taken = consume_sign_id(&w.store, &token, &seal, None).unwrap();
        assert_eq!(taken.requester, a.app_id);
        assert!(refused(&seal, None), "single use");
        assert!(matches!(
            consume_sign_id(&w.store, "short", &seal, None),
            Err(DomainError::SignId(_))
        ));
        let expired = issue_sign_id(&w.store, &a.app_id, &seal, now_ms() - 1).unwrap();
        assert!(consume_sign_id(&w.store, &expired, &seal, Some(&a.app_id)).is_err());
    }

    #[test]
    fn an_extended_seal_answers_its_new_data_not_a_cached_old_one() {
        use crate::ses::kit::png_header;
        let w = World::new();
        let home = w.system(SystemState::Online, true);
        let caller = w.system(SystemState::Online, false);
        let code = w.file(&home, CLOUD, "ES-1");
        let q = Query {
            org_code: crate::domain::testkit::ORG.into(),
            seal_type: "0".into(),
            ..Default::default()
        };
        let answer = || as_json(query(&w.store, &w.provider, &caller, &q, 60_000));
        let first = answer();
        assert_eq!(first.len(), 1);
        // Twice, so the old version's view is surely cached.
        assert_eq!(answer()[0]["sealData"], first[0]["sealData"]);
        assert_eq!(first[0]["dpiX"], 10);

        let newer = w
            .kit
            .seal_v4(&w.kit.params("合同专用章", "ES-1", 730, png_header(20, 30)))
            .unwrap();
        file(
            &w.store,
            &w.provider,
            "340000",
            &home,
            Filing {
                seal_code: Some(code.clone()),
                name: "合同专用章".into(),
                seal_type: "01".into(),
                possessor: "某某科技有限公司".into(),
                possessor_cert_no: crate::domain::testkit::ORG.into(),
                possessor_type: 1,
                biz_type: 2,
                cert_type: CLOUD,
                seal_data: Some(base64::engine::general_purpose::STANDARD.encode(&newer)),
                ..Default::default()
            },
        )
        .unwrap();
        let after = answer();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0]["sealCode"], code);
        assert_eq!(
            after[0]["sealData"],
            base64::engine::general_purpose::STANDARD.encode(&newer)
        );
        assert_eq!(
            (after[0]["dpiX"].clone(), after[0]["dpiY"].clone()),
            (20.into(), 30.into())
        );
        assert_ne!(after[0]["sealInvalidTime"], first[0]["sealInvalidTime"]);
        // signIds stay fresh per answer, and the caller has fetched this seal before.
        assert_ne!(after[0]["signId"], first[0]["signId"]);
        assert_eq!(first[0]["state"], 1);
        assert_eq!(after[0]["state"], 2);
    }

    /// A query's answer as a member reads it.
    fn as_json(answer: Result<Vec<QueriedSeal>, DomainError>) -> Vec<Value> {
        answer
            .unwrap()
            .iter()
            .map(|s| serde_json::to_value(s).unwrap())
            .collect()
    }
}
