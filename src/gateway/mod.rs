//! Request authentication (SPEC §2): common parameters, canonical string, SM2 signature, time
//! window, nonce replay, system state and per-appId rate limit.
//!
//! The order of checks is fixed so a client can rely on it: envelope shape (`10001`/`10002`),
//! unknown appId (`20001`), state (`20002`), time (`20004`), signature (`20003`), nonce
//! (`20005`, only after the signature so nobody can burn another system's nonces), rate (`20006`).
//!
//! Parsed verifying keys are cached per appId ([`KeyCache`]); the system record itself (its
//! state and key list) is read from the store on every request, and a cache entry is used
//! only while the record's key list is exactly the one it was parsed from. So a rotation or a
//! suspension made by any writer (console, control socket, onboarding, offline CLI) takes
//! effect on the next request, without a hook each writer would have to remember.

use crate::config::ApiConfig;
use crate::crypto::sm;
use crate::domain::vocab::SystemState;
use crate::protocol::{VERSION, canonical_string};
use crate::store::systems::SystemRecord;
use crate::store::{Store, StoreError};
use base64::Engine;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

const NONCE_LIMIT: u64 = 100_000_000;
/// What a `testing` system is reminded of when its signature fails.
const TESTING_SIGNATURE_HINT: &str =
    "（SM2 签名须使用签名者 ID 1234567812345678；平台计算的待签字符串见 data.canonical）";
/// Systems whose parsed keys are kept; beyond it the cache starts over (members are few).
const KEY_CACHE_LIMIT: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GatewayError {
    #[error("参数 {0} 缺失")]
    Missing(&'static str),
    #[error("参数 {name} 无效: {why}")]
    Invalid {
        name: &'static str,
        why: &'static str,
    },
    #[error("不支持的接口版本 {0}，当前版本为 1.0")]
    Version(String),
    /// `version` present but not a JSON string, e.g. the number `1.0`.
    #[error("参数 version 应为字符串 \"1.0\"")]
    VersionNotString,
    #[error("appId {0} 未在本平台注册")]
    UnknownApp(String),
    #[error("系统 {0} 当前状态不允许调用接口")]
    NotActive(String),
    /// `sign` does not verify. For a system in `testing` it carries the canonical string the
    /// platform computed, so an integrator can compare it with its own; an `online` system
    /// gets no such help (it would tell an attacker what to sign).
    #[error(
        "签名验证失败，请检查待签字符串与签名私钥{}",
        if .canonical.is_some() { TESTING_SIGNATURE_HINT } else { "" }
    )]
    BadSignature { canonical: Option<String> },
    #[error("时间戳 time 超出平台允许的时间窗口（±{0} 秒）")]
    StaleTime(u64),
    #[error("nonce {0} 在时间窗口内已使用，请求被视为重放")]
    Replay(u32),
    #[error("调用频率超过限制，请稍后再试")]
    RateLimited,
    #[error("存储错误")]
    Store(String),
}

impl From<StoreError> for GatewayError {
    fn from(e: StoreError) -> Self {
        GatewayError::Store(e.to_string())
    }
}

/// A request that passed authentication.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub system: SystemRecord,
    pub params: Map<String, Value>,
}

struct Bucket {
    tokens: f64,
    last_ms: i64,
}

pub struct Gateway {
    store: Store,
    cfg: ApiConfig,
    buckets: Mutex<HashMap<String, Bucket>>,
    keys: KeyCache,
}

/// The keys of one system as parsed from `pems` (unparseable PEMs are left out: they can
/// verify nothing, as before the cache).
struct ParsedKeys {
    pems: Vec<String>,
    keys: Vec<sm2::PublicKey>,
}

/// Parsed SM2 verifying keys per appId, so no PEM or certificate is parsed per request.
#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<String, Arc<ParsedKeys>>>,
}

impl KeyCache {
    /// The parsed keys of `system`, from the cache when its key list is unchanged.
    fn keys_of(&self, system: &SystemRecord) -> Arc<ParsedKeys> {
        if let Ok(entries) = self.entries.read()
            && let Some(hit) = entries.get(&system.app_id)
            && hit.pems == system.public_keys
        {
            return hit.clone();
        }
        let parsed = Arc::new(ParsedKeys {
            pems: system.public_keys.clone(),
            keys: system
                .public_keys
                .iter()
                .filter_map(|pem| sm::sm2_public_key_from_pem(pem).ok())
                .collect(),
        });
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= KEY_CACHE_LIMIT && !entries.contains_key(&system.app_id) {
                entries.clear();
            }
            entries.insert(system.app_id.clone(), parsed.clone());
        }
        parsed
    }
}

fn required_str<'a>(
    p: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, GatewayError> {
    match p.get(name) {
        None | Some(Value::Null) => Err(GatewayError::Missing(name)),
        Some(Value::String(s)) if s.is_empty() => Err(GatewayError::Missing(name)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(GatewayError::Invalid {
            name,
            why: "应为字符串",
        }),
    }
}

/// `time` is a String in the standard; integer milliseconds are accepted too since the
/// canonical string renders both the same way.
fn parse_time(p: &Map<String, Value>) -> Result<i64, GatewayError> {
    let invalid = GatewayError::Invalid {
        name: "time",
        why: "应为以毫秒为单位的 Unix 时间戳",
    };
    match p.get("time") {
        None | Some(Value::Null) => Err(GatewayError::Missing("time")),
        Some(Value::String(s)) if s.is_empty() => Err(GatewayError::Missing("time")),
        Some(Value::String(s)) if s.len() <= 15 && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| invalid)
        }
        Some(Value::Number(n)) => n.as_i64().filter(|v| *v >= 0).ok_or(invalid),
        Some(_) => Err(invalid),
    }
}

fn parse_nonce(p: &Map<String, Value>) -> Result<u32, GatewayError> {
    match p.get("nonce") {
        None | Some(Value::Null) => Err(GatewayError::Missing("nonce")),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|v| *v < NONCE_LIMIT)
            .map(|v| v as u32)
            .ok_or(GatewayError::Invalid {
                name: "nonce",
                why: "应为 0 到 99999999 之间的整数",
            }),
        Some(_) => Err(GatewayError::Invalid {
            name: "nonce",
            why: "应为整数",
        }),
    }
}

impl Gateway {
    pub fn new(store: Store, cfg: ApiConfig) -> Self {
        Self {
            store,
            cfg,
            buckets: Mutex::new(HashMap::new()),
            keys: KeyCache::default(),
        }
    }

    pub fn config(&self) -> &ApiConfig {
        &self.cfg
    }

    /// Authenticates a request whose parameters are `params` (for multipart uploads, `file`
    /// already replaced by the hex SM3 of its bytes).
    pub fn authenticate(
        &self,
        params: Map<String, Value>,
        now_ms: i64,
    ) -> Result<Authenticated, GatewayError> {
        match params.get("version") {
            None | Some(Value::Null) => return Err(GatewayError::Missing("version")),
            Some(Value::String(v)) if v == VERSION => {}
            Some(Value::String(v)) => {
                return Err(GatewayError::Version(v.chars().take(16).collect()));
            }
            Some(_) => return Err(GatewayError::VersionNotString),
        }
        let app_id = required_str(&params, "appId")?;
        let time = parse_time(&params)?;
        let nonce = parse_nonce(&params)?;
        let sign = required_str(&params, "sign")?;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sign)
            .map_err(|_| GatewayError::Invalid {
                name: "sign",
                why: "应为标准 Base64 编码",
            })?;

        if app_id.len() > 64 {
            return Err(GatewayError::UnknownApp(app_id.chars().take(64).collect()));
        }
        let system = self
            .store
            .get_system(app_id)?
            .ok_or_else(|| GatewayError::UnknownApp(app_id.to_string()))?;
        if system.state == SystemState::Suspended {
            return Err(GatewayError::NotActive(app_id.to_string()));
        }

        let window_ms = (self.cfg.time_window_secs as i64).saturating_mul(1000);
        if (time - now_ms).abs() > window_ms {
            return Err(GatewayError::StaleTime(self.cfg.time_window_secs));
        }

        let canonical = canonical_string(&params);
        let verified = self
            .keys
            .keys_of(&system)
            .keys
            .iter()
            .any(|k| sm::sm2_verify(k, canonical.as_bytes(), &sig).is_ok());
        if !verified {
            return Err(GatewayError::BadSignature {
                canonical: (system.state == SystemState::Testing).then_some(canonical),
            });
        }

        // A pair is a replay while a request carrying it could still pass the time check.
        if !self
            .store
            .claim_nonce(app_id, nonce, now_ms, now_ms - 2 * window_ms)?
        {
            return Err(GatewayError::Replay(nonce));
        }

        if !self.take_token(app_id, now_ms) {
            return Err(GatewayError::RateLimited);
        }
        Ok(Authenticated { system, params })
    }

    fn take_token(&self, app_id: &str, now_ms: i64) -> bool {
        let rate = f64::from(self.cfg.rate_limit_per_sec);
        let burst = f64::from(self.cfg.rate_limit_burst.max(1));
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        let b = buckets.entry(app_id.to_string()).or_insert(Bucket {
            tokens: burst,
            last_ms: now_ms,
        });
        let elapsed = (now_ms - b.last_ms).max(0) as f64 / 1000.0;
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.last_ms = now_ms;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    use crate::crypto::sm::Sm2KeyPair;
    use crate::domain::audit_event::Actor;
    use crate::domain::systems::{self, NewSystem};

    struct Member {
        _dir: tempfile::TempDir,
        store: Store,
        gateway: Gateway,
        app_id: String,
        nonce: std::cell::Cell<u32>,
    }

    fn member(key: &Sm2KeyPair) -> Member {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = systems::add_system(
            &store,
            NewSystem {
                name: "测试印章系统".into(),
                plat_name: "测试平台".into(),
                public_key_pem: sm::sm2_public_key_to_pem(&key.public_key()),
                state: Some(SystemState::Online),
                ..Default::default()
            },
            &Actor::cli(),
        )
        .unwrap();
        Member {
            gateway: Gateway::new(store.clone(), ApiConfig::default()),
            _dir: dir,
            store,
            app_id: rec.app_id,
            nonce: std::cell::Cell::new(0),
        }
    }

    impl Member {
        fn call(&self, key: &Sm2KeyPair) -> Result<Authenticated, GatewayError> {
            let now = crate::time::now_ms();
            self.nonce.set(self.nonce.get() + 1);
            let mut p = json!({"version": "1.0", "appId": self.app_id, "time": now.to_string(), "nonce": self.nonce.get()})
                .as_object()
                .unwrap()
                .clone();
            let sig = key.sign(canonical_string(&p).as_bytes());
            p.insert(
                "sign".into(),
                base64::engine::general_purpose::STANDARD.encode(sig).into(),
            );
            self.gateway.authenticate(p, now)
        }

        /// Replaces the key list as a rotation does (`onboarding::approve_rotation` writes the
        /// record the same way), without telling the gateway.
        fn set_keys(&self, keys: &[&Sm2KeyPair]) {
            let old = self.store.get_system(&self.app_id).unwrap().unwrap();
            let mut new = old.clone();
            new.public_keys = keys
                .iter()
                .map(|k| sm::sm2_public_key_to_pem(&k.public_key()))
                .collect();
            self.store.update_system(&old, &new, None).unwrap();
        }
    }

    #[test]
    fn a_rotated_key_is_used_at_once_and_the_dropped_one_refused() {
        let (old, new) = (Sm2KeyPair::generate(), Sm2KeyPair::generate());
        let m = member(&old);
        // Cached now.
        assert!(m.call(&old).is_ok());
        assert!(m.call(&old).is_ok());
        assert_eq!(
            m.call(&new).unwrap_err(),
            GatewayError::BadSignature { canonical: None }
        );
        m.set_keys(&[&old, &new]);
        assert!(m.call(&new).is_ok());
        assert!(m.call(&old).is_ok());
        m.set_keys(&[&new]);
        assert_eq!(
            m.call(&old).unwrap_err(),
            GatewayError::BadSignature { canonical: None }
        );
        assert!(m.call(&new).is_ok());
    }

    #[test]
    fn a_suspended_system_is_refused_at_once_and_readmitted_when_online() {
        let key = Sm2KeyPair::generate();
        let m = member(&key);
        assert!(m.call(&key).is_ok());
        systems::set_state(
            &m.store,
            &m.app_id,
            SystemState::Suspended,
            "测试",
            &Actor::cli(),
        )
        .unwrap();
        assert_eq!(
            m.call(&key).unwrap_err(),
            GatewayError::NotActive(m.app_id.clone())
        );
        systems::set_state(
            &m.store,
            &m.app_id,
            SystemState::Online,
            "测试",
            &Actor::cli(),
        )
        .unwrap();
        assert!(m.call(&key).is_ok());
    }

    #[test]
    fn a_key_that_does_not_parse_verifies_nothing_and_is_not_cached_as_good() {
        let key = Sm2KeyPair::generate();
        let m = member(&key);
        let old = m.store.get_system(&m.app_id).unwrap().unwrap();
        let mut new = old.clone();
        new.public_keys =
            vec!["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into()];
        m.store.update_system(&old, &new, None).unwrap();
        assert_eq!(
            m.call(&key).unwrap_err(),
            GatewayError::BadSignature { canonical: None }
        );
        m.set_keys(&[&key]);
        assert!(m.call(&key).is_ok());
    }

    #[test]
    fn a_testing_system_is_shown_the_canonical_string_and_an_online_one_is_not() {
        let (key, other) = (Sm2KeyPair::generate(), Sm2KeyPair::generate());
        let m = member(&key);
        let Err(GatewayError::BadSignature { canonical: None }) = m.call(&other) else {
            panic!("an online system gets no canonical string");
        };
        let old = m.store.get_system(&m.app_id).unwrap().unwrap();
        let mut testing = old.clone();
        testing.state = SystemState::Testing;
        m.store.update_system(&old, &testing, None).unwrap();
        let e = m.call(&other).unwrap_err();
        let GatewayError::BadSignature {
            canonical: Some(canonical),
        } = &e
        else {
            panic!("{e:?}");
        };
        let nonce = m.nonce.get();
        assert!(canonical.starts_with(&format!("appId={}&nonce={nonce}&time=", m.app_id)));
        assert!(canonical.ends_with("&version=1.0"), "{canonical}");
        assert!(e.to_string().contains("1234567812345678"), "{e}");
    }

    #[test]
    fn spec_example() {
        let v = json!({"version":"1.0","appId":"A1","time":"1732250000000","nonce":42,"sealCode":"S1","state":4,"sign":"x"});
        assert_eq!(
            canonical_string(v.as_object().unwrap()),
            "appId=A1&nonce=42&sealCode=S1&state=4&time=1732250000000&version=1.0"
        );
    }

    #[test]
    fn nulls_empties_and_nested_values() {
        let v = json!({"b":"","a":null,"userList":[{"userName":"张三","mobilePhone":"13800000000"}],"flag":true,"z":"a=b&c"});
        assert_eq!(
            canonical_string(v.as_object().unwrap()),
            "flag=true&userList=[{\"userName\":\"张三\",\"mobilePhone\":\"13800000000\"}]&z=a=b&c"
        );
    }

    #[test]
    fn byte_order_puts_capitals_first() {
        let v = json!({"appId":"1","UKeyId":"2","Zeta":"3"});
        assert_eq!(
            canonical_string(v.as_object().unwrap()),
            "UKeyId=2&Zeta=3&appId=1"
        );
    }

    proptest! {
        #[test]
        fn canonical_string_is_independent_of_received_order(
            entries in proptest::collection::btree_map("[a-zA-Z]{1,8}", "[^&=]{0,8}", 0..12)
        ) {
            let forward: Map<String, Value> = entries.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            let backward: Map<String, Value> = entries.iter().rev().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            let s = canonical_string(&forward);
            prop_assert_eq!(&s, &canonical_string(&backward));
            // Exactly the non-empty, non-sign parameters appear, each once.
            let expected = entries.iter().filter(|(k, v)| !v.is_empty() && k.as_str() != "sign").count();
            let count = if s.is_empty() { 0 } else { s.split('&').filter(|p| p.contains('=')).count() };
            prop_assert!(count >= expected);
            prop_assert!(!s.contains("sign="));
        }

        #[test]
        fn sign_never_enters_the_canonical_string(sig in ".*") {
            let v = json!({"appId": "A", "sign": sig});
            prop_assert_eq!(canonical_string(v.as_object().unwrap()), "appId=A");
        }
    }
}
