//! Outbound HTTPS client to a member's callback base URL (SPEC §4).
//!
//! Every request uses the §2 envelope with the **callee's** `appId` and the **platform's**
//! signature. TLS uses rustls with the ring provider and the member's own verifier
//! ([`super::tls::MemberVerifier`]: its registered certificate as a pin or CA, plus the
//! operating system's roots), so a self-signed test member works without weakening the check
//! for anyone else. Every failure carries a typed [`Cause`]; the last one per member is kept
//! for the console.
//! One call is bounded by a total timeout (3 s by default) and never retried. A member that
//! fails [`BREAKER_THRESHOLD`] times in a row is answered `40001` at once for
//! [`BREAKER_OPEN`].

use super::cause::{Cause, DnsFailure};
use super::tls::MemberVerifier;
use crate::keys::Keyring;
use crate::protocol::canonical_string;
use crate::store::systems::SystemRecord;
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// A failed callback. `Display` is what the requester is told (no host, address or library
/// text); [`InteropError::detail`] is the full reason for the log, the audit entry and the
/// console.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InteropError {
    /// The member could not be reached, or its TLS or HTTP answer was unusable (`40001`).
    #[error("印章所属系统 {0} 无法访问：{public}", public = .1.public())]
    Unreachable(String, Cause),
    /// The member answered with an error code of its own (`40001`, or passed on by the caller).
    #[error("印章所属系统 {app_id} 返回错误 {code}：{message}")]
    Refused {
        app_id: String,
        code: String,
        message: String,
    },
    /// The member did not answer within the total timeout (`40002`).
    #[error("印章所属系统 {0} 未在规定时间内应答")]
    Timeout(String, Cause),
    /// The member's answer is not the §2 response shape (`40003`).
    #[error("印章所属系统 {0} 的应答未通过校验：{public}", public = .1.public())]
    BadAnswer(String, Cause),
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
            InteropError::Timeout(..) => Code::HomeTimeout,
            InteropError::BadAnswer(..) => Code::HomeBadAnswer,
        }
    }

    /// The typed cause, when the failure has one (not a member's own refusal or the breaker).
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            InteropError::Unreachable(_, c)
            | InteropError::Timeout(_, c)
            | InteropError::BadAnswer(_, c) => Some(c),
            InteropError::Refused { .. } | InteropError::Degraded(_) => None,
        }
    }

    /// The full reason, naming the member's host or address where that is the point.
    pub fn detail(&self) -> String {
        match self.cause() {
            Some(c) => format!("回调失败：{c}"),
            None => self.to_string(),
        }
    }
}

/// The last failed callback of a member: when, and the full reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastFailure {
    pub at_ms: i64,
    pub detail: String,
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
    /// HTTP clients per (appId, CA PEM): the TLS trust differs per member.
    clients: Mutex<HashMap<(String, String), reqwest::Client>>,
    /// Live state of this process, like the breaker: shown on the console's system page.
    last_failures: Mutex<HashMap<String, LastFailure>>,
}

impl Default for MemberClient {
    fn default() -> Self {
        Self::new(DEFAULT_TIMEOUT)
    }
}

/// Resolves callback hosts with the system resolver and says so when that fails, so a DNS
/// failure is told apart from other connect failures.
struct Resolver;

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<_> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(addrs) => addrs.collect(),
                Err(_) => Vec::new(),
            };
            if found.is_empty() {
                return Err(Box::new(DnsFailure(host)) as _);
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl MemberClient {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            breakers: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            last_failures: Mutex::new(HashMap::new()),
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

    /// A failed callback check is a failed callback of that member: noted (and logged) like a
    /// routed call's, so the last-failure line agrees with the check just run.
    pub fn note_check(&self, r: &super::check::CheckReport) {
        if !r.passed() {
            self.note_failure(&r.app_id, "/cloud/auth/result", r.summary());
        }
    }

    /// The members whose breaker is open now, sorted.
    pub fn open_breakers(&self) -> Vec<String> {
        let Ok(map) = self.breakers.lock() else {
            return Vec::new();
        };
        let now = Instant::now();
        let mut open: Vec<String> = map
            .iter()
            .filter(|(_, b)| b.open_until.is_some_and(|t| t > now))
            .map(|(id, _)| id.clone())
            .collect();
        open.sort();
        open
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

    /// The member's last failed callback in this process, if any.
    pub fn last_failure(&self, app_id: &str) -> Option<LastFailure> {
        self.last_failures.lock().ok()?.get(app_id).cloned()
    }

    /// Records a failed callback: in the log with its full reason, and for the console.
    pub fn note_failure(&self, app_id: &str, path: &str, detail: String) {
        tracing::warn!(app_id, path, cause = %detail, "member callback failed");
        if let Ok(mut map) = self.last_failures.lock() {
            map.insert(
                app_id.to_string(),
                LastFailure {
                    at_ms: crate::time::now_ms(),
                    detail,
                },
            );
        }
    }

    /// Forgets what this process learnt about `app_id`'s callback (its TLS clients, the
    /// breaker, the last failure) once its callback settings changed: they were about the
    /// old address or CA. The settings themselves are read from the record on every call.
    pub fn callback_changed(&self, app_id: &str) {
        if let Ok(mut map) = self.clients.lock() {
            map.retain(|(id, _), _| id != app_id);
        }
        if let Ok(mut map) = self.breakers.lock() {
            map.remove(app_id);
        }
        if let Ok(mut map) = self.last_failures.lock() {
            map.remove(app_id);
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
        let client = build_http_client(member, self.timeout)?;
        if let Ok(mut map) = self.clients.lock() {
            // One client per member: a client for a CA it no longer has is never used again.
            map.retain(|(id, _), _| *id != member.app_id);
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
        if let Err(e) = &outcome
            && !ok
        {
            self.note_failure(&app_id, path, e.detail());
        }
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
        let (host, target) = host_and_target(&url).ok_or_else(|| {
            InteropError::Unreachable(app_id.clone(), Cause::BadCallbackUrl(url.clone()))
        })?;
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
            // Read at most one byte past the limit: enough for `read_answer` to refuse it,
            // never an allocation a member chooses.
            let mut resp = resp;
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                let room = MAX_ANSWER_BYTES + 1 - bytes.len();
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if bytes.len() > MAX_ANSWER_BYTES {
                    break;
                }
            }
            Ok::<_, reqwest::Error>((status, bytes))
        };
        let timed_out = || {
            InteropError::Timeout(
                app_id.clone(),
                Cause::Timeout(self.timeout.as_millis() as u64),
            )
        };
        // The client's own timeout bounds the whole call too; this one makes the budget exact.
        let (status, bytes) = match tokio::time::timeout(self.timeout, send).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(e)) if e.is_timeout() => return Err(timed_out()),
            Ok(Err(e)) => {
                tracing::debug!(app_id, error = ?e, "member callback transport error");
                let cause = Cause::from_request_error(&e, &host, &target);
                return Err(InteropError::Unreachable(app_id, cause));
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
        read_answer(&app_id, status.as_u16(), &bytes).map(|a| a.data)
    }
}

/// A member's §2 answer as read: its code (checked to be "0" by [`read_answer`]) and `data`.
pub struct Answer {
    pub data: Value,
}

/// What a member's answer tells: the `data` of a `code` "0" answer, its own refusal, or why
/// the body is not a §2 answer. Shared by routed calls and the callback check.
pub fn read_answer(app_id: &str, status: u16, bytes: &[u8]) -> Result<Answer, InteropError> {
    let app_id = app_id.to_string();
    let unparsable =
        |why| InteropError::BadAnswer(app_id.clone(), Cause::Unparsable { status, why });
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(unparsable("应答过大"));
    }
    let answer: Value =
        serde_json::from_slice(bytes).map_err(|_| unparsable("应答不是有效的 JSON"))?;
    let code = match &answer["code"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(unparsable("应答缺少 code 字段")),
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
    Ok(Answer {
        data: answer.get("data").cloned().unwrap_or(Value::Null),
    })
}

/// The HTTP client of one member: its own TLS trust, the total timeout, no redirects, https
/// only.
fn build_http_client(
    member: &SystemRecord,
    timeout: Duration,
) -> Result<reqwest::Client, InteropError> {
    let unreachable = |c: Cause| InteropError::Unreachable(member.app_id.clone(), c);
    let tls = member_tls_config(member)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .dns_resolver(Arc::new(Resolver))
        .timeout(timeout)
        // Below the keep-alive of common member servers (actix 5 s, Tomcat 20 s, nginx 75 s):
        // the platform drops an idle connection first, instead of sending a call on one the
        // member is closing at that moment (answered "closed before answering").
        .pool_idle_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true)
        .build()
        .map_err(|_| unreachable(Cause::Tls("TLS 配置失败")))
}

/// The TLS client configuration trusting `member`'s callback server.
pub fn member_tls_config(member: &SystemRecord) -> Result<rustls::ClientConfig, InteropError> {
    let unreachable = |c: Cause| InteropError::Unreachable(member.app_id.clone(), c);
    MemberVerifier::new(member.callback_ca_pem.as_deref())
        .map_err(unreachable)?
        .client_config()
        .map_err(|_| unreachable(Cause::Tls("TLS 配置失败")))
}

/// The host (for certificate names) and `host:port` (for connect failures) of an https URL.
pub fn host_and_target(url: &str) -> Option<(String, String)> {
    let u = reqwest::Url::parse(url).ok()?;
    let bracketed = u.host_str()?;
    let port = u.port_or_known_default()?;
    let host = bracketed.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), format!("{bracketed}:{port}")))
}

/// The member's registered https callback base URL; without one nothing can be routed to it.
pub fn callback_base(member: &SystemRecord) -> Result<&str, InteropError> {
    member
        .callback_url
        .as_deref()
        .filter(|u| u.starts_with("https://"))
        .ok_or_else(|| InteropError::Unreachable(member.app_id.clone(), Cause::NoCallbackUrl))
}

/// The nonce of the platform's next call (§2: below 10⁸). Consecutive from a start read off
/// the clock (ms): random nonces collide by the birthday bound — at 40 calls/s to one member,
/// about one refused replay every 200 s — while these repeat only after 10⁸ calls. A restart
/// begins beyond the values the previous run used when that run averaged under 1,000 calls a
/// second and lasted under 10⁸ ms (27.7 h); after a longer run the new start may land among
/// its last values (a chance of about calls/s × replay window / 10⁸ per restart), and calls
/// are refused as replays until the window passes. Not taken yet: a reserved block kept in
/// the store, so a restart never reuses a value.
fn next_nonce() -> u32 {
    static NEXT: std::sync::LazyLock<std::sync::atomic::AtomicU64> =
        std::sync::LazyLock::new(|| {
            std::sync::atomic::AtomicU64::new(crate::time::now_ms().max(0) as u64)
        });
    (NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100_000_000) as u32
}

/// The §2 envelope around `fields`: `version`, the callee's `appId`, `time`, a fresh `nonce`
/// ([`next_nonce`]) and `sign` by the platform key over the canonical string.
pub fn envelope(keys: &Keyring, callee_app_id: &str, fields: Map<String, Value>) -> Vec<u8> {
    let nonce = next_nonce();
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

#[cfg(test)]
mod tests {
    #[test]
    fn nonces_do_not_repeat_within_a_busy_replay_window() {
        // 200,000 calls: random nonces below 10⁸ would repeat about 200 times.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200_000 {
            let n = super::next_nonce();
            assert!(n < 100_000_000);
            assert!(seen.insert(n), "nonce {n} repeated");
        }
    }
}
