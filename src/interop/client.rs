//! Outbound HTTPS client to a member's callback base URL (SPEC §4).
//!
//! Every request uses the §2 envelope with the **callee's** `appId` and the **platform's**
//! signature. TLS uses rustls with the ring provider; the roots are the member's own CA
//! certificate recorded at onboarding plus the operating system's roots (`rustls-native-certs`),
//! so a self-signed test member works without weakening the check for anyone else.
//! One call is bounded by a total timeout (3 s by default) and never retried. A member that
//! fails [`BREAKER_THRESHOLD`] times in a row is answered `40001` at once for
//! [`BREAKER_OPEN`].

use crate::keys::Keyring;
use crate::protocol::canonical_string;
use crate::store::systems::SystemRecord;
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Consecutive failures after which calls to a member are refused without trying.
pub const BREAKER_THRESHOLD: u32 = 5;
/// How long the breaker stays open.
pub const BREAKER_OPEN: Duration = Duration::from_secs(30);
tokio::task_local! {
    /// Milliseconds the current API request spent waiting for members; reported in its
    /// `Server-Timing` header so the platform's own share of a routed call is visible.
    pub static MEMBER_MS: std::cell::Cell<f64>;
}

/// Default total timeout of one callback.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest answer body read from a member.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InteropError {
    /// The member could not be reached, or its TLS or HTTP answer was unusable (`40001`).
    #[error("印章所属系统 {0} 无法访问：{1}")]
    Unreachable(String, String),
    /// The member answered with an error code of its own (`40001`, or passed on by the caller).
    #[error("印章所属系统 {app_id} 返回错误 {code}：{message}")]
    Refused {
        app_id: String,
        code: String,
        message: String,
    },
    /// The member did not answer within the total timeout (`40002`).
    #[error("印章所属系统 {0} 未在规定时间内应答")]
    Timeout(String),
    /// The member's answer is not the §2 response shape (`40003`).
    #[error("印章所属系统 {0} 的应答未通过校验：{1}")]
    BadAnswer(String, String),
    /// The breaker is open for this member (`40001`).
    #[error("印章所属系统 {0} 连续调用失败，已暂时熔断，请稍后再试")]
    Degraded(String),
}

impl InteropError {
    /// The platform error code of SPEC §2 for this failure.
    pub fn code(&self) -> crate::protocol::Code {
        use crate::protocol::Code;
        match self {
            InteropError::Unreachable(..)
            | InteropError::Refused { .. }
            | InteropError::Degraded(_) => Code::HomeUnreachable,
            InteropError::Timeout(_) => Code::HomeTimeout,
            InteropError::BadAnswer(..) => Code::HomeBadAnswer,
        }
    }
}

#[derive(Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
}

/// The platform's client for member callbacks. One per process; cheap to share.
pub struct MemberClient {
    timeout: Duration,
    breakers: Mutex<HashMap<String, BreakerState>>,
    /// HTTP clients per (appId, CA PEM): the TLS roots differ per member.
    clients: Mutex<HashMap<(String, String), reqwest::Client>>,
}

impl Default for MemberClient {
    fn default() -> Self {
        Self::new(DEFAULT_TIMEOUT)
    }
}

fn system_roots() -> &'static [rustls::pki_types::CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<rustls::pki_types::CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        if !loaded.errors.is_empty() {
            tracing::warn!(
                errors = loaded.errors.len(),
                "some operating-system root certificates could not be loaded"
            );
        }
        loaded.certs
    })
}

impl MemberClient {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            breakers: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the breaker for `app_id` is open now (the console shows it as degraded).
    pub fn is_degraded(&self, app_id: &str) -> bool {
        let Ok(map) = self.breakers.lock() else {
            return false;
        };
        map.get(app_id)
            .and_then(|b| b.open_until)
            .is_some_and(|t| t > Instant::now())
    }

    fn record(&self, app_id: &str, ok: bool) {
        let Ok(mut map) = self.breakers.lock() else {
            return;
        };
        let b = map.entry(app_id.to_string()).or_default();
        if ok {
            *b = BreakerState::default();
        } else {
            b.failures = b.failures.saturating_add(1);
            if b.failures >= BREAKER_THRESHOLD {
                b.open_until = Some(Instant::now() + BREAKER_OPEN);
                b.failures = 0;
                tracing::warn!(
                    app_id,
                    "member callbacks failing repeatedly: circuit breaker open"
                );
            }
        }
    }

    fn http_client(&self, member: &SystemRecord) -> Result<reqwest::Client, InteropError> {
        let ca = member.callback_ca_pem.clone().unwrap_or_default();
        let key = (member.app_id.clone(), ca.clone());
        if let Ok(map) = self.clients.lock()
            && let Some(c) = map.get(&key)
        {
            return Ok(c.clone());
        }
        let unreachable = |why: &str| InteropError::Unreachable(member.app_id.clone(), why.into());
        let mut roots = rustls::RootCertStore::empty();
        // Unparsable system roots are skipped; the member's own CA below is mandatory-valid.
        roots.add_parsable_certificates(system_roots().iter().cloned());
        if !ca.is_empty() {
            use rustls::pki_types::{CertificateDer, pem::PemObject};
            for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                let c = c.map_err(|_| unreachable("登记的回调 CA 证书无法解析"))?;
                roots
                    .add(c)
                    .map_err(|_| unreachable("登记的回调 CA 证书无法使用"))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|_| unreachable("TLS 配置失败"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .build()
            .map_err(|_| unreachable("HTTP 客户端创建失败"))?;
        if let Ok(mut map) = self.clients.lock() {
            map.insert(key, client.clone());
        }
        Ok(client)
    }

    /// Calls `POST {callback_url}{path}` with `fields` in the §2 envelope signed by the
    /// platform, and returns the `data` of a successful (`code` "0") answer.
    pub async fn call(
        &self,
        keys: &Keyring,
        member: &SystemRecord,
        path: &str,
        fields: Map<String, Value>,
    ) -> Result<Value, InteropError> {
        let app_id = member.app_id.clone();
        if self.is_degraded(&app_id) {
            return Err(InteropError::Degraded(app_id));
        }
        let started = Instant::now();
        let outcome = self.call_once(keys, member, path, fields).await;
        let waited = started.elapsed().as_secs_f64() * 1000.0;
        let _ = MEMBER_MS.try_with(|ms| ms.set(ms.get() + waited));
        // A member's own business answer (e.g. "not confirmed yet") is not a failure of it.
        let ok = matches!(outcome, Ok(_) | Err(InteropError::Refused { .. }));
        self.record(&app_id, ok);
        outcome
    }

    async fn call_once(
        &self,
        keys: &Keyring,
        member: &SystemRecord,
        path: &str,
        fields: Map<String, Value>,
    ) -> Result<Value, InteropError> {
        let app_id = member.app_id.clone();
        let base = callback_base(member)?;
        let url = format!("{}{}", base.trim_end_matches('/'), path);
        let body = envelope(keys, &app_id, fields);
        let client = self.http_client(member)?;
        let started = Instant::now();
        let send = async {
            let resp = client
                .post(&url)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            let bytes = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        };
        // The client's own timeout bounds the whole call too; this one makes the budget exact.
        let (status, bytes) = match tokio::time::timeout(self.timeout, send).await {
            Err(_) => return Err(InteropError::Timeout(app_id)),
            Ok(Err(e)) if e.is_timeout() => return Err(InteropError::Timeout(app_id)),
            Ok(Err(e)) => {
                tracing::info!(app_id, error = %e, "member callback failed");
                let why = if e.is_connect() {
                    "连接失败"
                } else {
                    "请求失败（网络或 TLS 错误）"
                };
                return Err(InteropError::Unreachable(app_id, why.into()));
            }
            Ok(Ok(r)) => r,
        };
        tracing::debug!(
            app_id,
            path,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "member callback answered"
        );
        if bytes.len() > MAX_ANSWER_BYTES {
            return Err(InteropError::BadAnswer(app_id, "应答过大".into()));
        }
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|_| InteropError::BadAnswer(app_id.clone(), "应答不是有效的 JSON".into()))?;
        let code = match &answer["code"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(InteropError::BadAnswer(app_id, "应答缺少 code 字段".into()));
            }
        };
        if code != "0" {
            let message: String = answer["message"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            return Err(InteropError::Refused {
                app_id,
                code: code.chars().take(16).collect(),
                message,
            });
        }
        Ok(answer.get("data").cloned().unwrap_or(Value::Null))
    }
}

/// The member's registered https callback base URL; without one nothing can be routed to it.
pub fn callback_base(member: &SystemRecord) -> Result<&str, InteropError> {
    member
        .callback_url
        .as_deref()
        .filter(|u| u.starts_with("https://"))
        .ok_or_else(|| {
            InteropError::Unreachable(member.app_id.clone(), "未登记 https 回调地址".into())
        })
}

/// The §2 envelope around `fields`: `version`, the callee's `appId`, `time`, a random `nonce`
/// and `sign` by the platform key over the canonical string.
pub fn envelope(keys: &Keyring, callee_app_id: &str, fields: Map<String, Value>) -> Vec<u8> {
    let nonce = u32::from_be_bytes(crate::crypto::sm::random_bytes::<4>()) % 100_000_000;
    let mut p = json!({
        "version": crate::protocol::VERSION,
        "appId": callee_app_id,
        "time": crate::time::now_ms().to_string(),
        "nonce": nonce,
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    p.extend(fields);
    let sig = keys.sign(canonical_string(&p).as_bytes());
    p.insert(
        "sign".into(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(sig)),
    );
    serde_json::to_vec(&p).unwrap_or_default()
}
