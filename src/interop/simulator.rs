//! A seal-system simulator (SPEC §4): a member over HTTPS with its own SM2 keys that answers
//! the three platform callbacks, verifying the platform's signature on each, auto-confirms the
//! signer's intention after a configurable delay and signs digests (P1, and P7 as a detached
//! CMS SignedData) with its seal's signer key. It can be told to misbehave (wrong key, hang,
//! garbage, slow) so the platform's checks can be tested against a real peer, and it can file
//! demo seals at a platform as the member it plays ([`file_demo_seals`]). Used by
//! `hutong simulate-member` and by the integration tests.
//!
//! It is a test and integration tool: state lives in memory and is lost on exit.

use crate::crypto::sm::{self, Sm2KeyPair};
use crate::crypto::x509::HashAlg;
use crate::protocol::canonical_string;
use crate::ses::kit::SealKit;
use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the simulator answers `cloud/sign`-type calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers correctly.
    Normal,
    /// Signs with a key that is not the seal's.
    WrongKey,
    /// Never answers in time (sleeps 30 s before answering).
    Hang,
    /// Answers bytes that are not JSON.
    Garbage,
    /// Answers correctly, but sends the answer's body in pieces spread over this long: the
    /// connection is alive all the time, so only a total time budget catches it.
    Slow(Duration),
}

/// How long a `slow` answer takes unless told otherwise: beyond the platform's 3 s budget.
pub const DEFAULT_SLOW_ANSWER: Duration = Duration::from_secs(5);

impl Behaviour {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "normal" => Some(Self::Normal),
            "wrong-key" => Some(Self::WrongKey),
            "hang" => Some(Self::Hang),
            "garbage" => Some(Self::Garbage),
            "slow" => Some(Self::Slow(DEFAULT_SLOW_ANSWER)),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("证书或印章生成失败：{0}")]
    Build(String),
    #[error("监听 {0} 失败：{1}")]
    Bind(String, String),
    #[error("向平台备案演示印章失败：{0}")]
    Filing(String),
}

/// The simulated member's keys and certificates.
pub struct MemberIdentity {
    /// The member's CA, seal maker and seal signer (the "cloud certificate" key it holds for
    /// its user).
    pub kit: SealKit,
    /// When present, the seal's signer is this RSA key instead of the kit's SM2 signer.
    pub rsa_signer: Option<RsaSigner>,
}

/// An RSA seal signer: its key and its certificate issued by the member's CA.
pub struct RsaSigner {
    pub key: rsa::PrivateKey,
    pub cert: Vec<u8>,
}

/// A PKCS#1 v1.5 signature over a SHA-256 digest (P1 of an RSA seal, SPEC §3.6).
fn rsa_sign_sha256(key: &rsa::PrivateKey, digest: &[u8]) -> Result<Vec<u8>, String> {
    let padding = rsa::Pkcs1v15Sign {
        hash_len: Some(32),
        prefix: HashAlg::Sha256.digest_info_prefix(true).into_boxed_slice(),
    };
    key.sign(padding, digest).map_err(|e| e.to_string())
}

impl MemberIdentity {
    /// A fresh root, maker and signer, valid from yesterday for a year.
    pub fn generate(org_name: &str) -> Result<Self, SimulatorError> {
        SealKit::generate(org_name)
            .map(|kit| Self {
                kit,
                rsa_signer: None,
            })
            .map_err(|e| SimulatorError::Build(e.to_string()))
    }

    /// Like [`MemberIdentity::generate`], with an RSA-2048 seal signer certified by the same
    /// (SM2) CA: the member signs P1 with RSA over SHA-256 digests.
    pub fn generate_rsa(org_name: &str) -> Result<Self, SimulatorError> {
        use rsa::pkcs8::EncodePublicKey;
        let build = |e: &dyn std::fmt::Display| SimulatorError::Build(e.to_string());
        let mut id = Self::generate(org_name)?;
        let key = rsa::PrivateKey::new(&mut rand::rng(), 2048).map_err(|e| build(&e))?;
        let spki = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| build(&e))?;
        let now = crate::time::now_ms();
        let spec = crate::crypto::certgen::CertSpec {
            common_name: org_name.into(),
            organization: Some(org_name.into()),
            not_before_ms: now - 86_400_000,
            not_after_ms: now + 365 * 86_400_000,
            is_ca: false,
            serial: None,
        };
        let cert = crate::crypto::certgen::issue_for_spki(
            &spec,
            spki.as_bytes(),
            &id.kit.root_cert,
            &id.kit.root,
        )
        .map_err(|e| build(&e))?;
        id.rsa_signer = Some(RsaSigner { key, cert });
        Ok(id)
    }

    /// A GB/T 38540 v4 seal carrying the signer certificate, valid for `valid_days`.
    pub fn build_seal(
        &self,
        name: &str,
        es_id: &str,
        picture_png: Vec<u8>,
        valid_days: i64,
    ) -> Result<Vec<u8>, SimulatorError> {
        let mut params = self.kit.params(name, es_id, valid_days, picture_png);
        if let Some(rsa) = &self.rsa_signer {
            params.cert_list = vec![rsa.cert.clone()];
        }
        self.kit
            .seal_v4(&params)
            .map_err(|e| SimulatorError::Build(e.to_string()))
    }
}

/// What the simulator needs to run.
pub struct SimulatorConfig {
    /// The member's appId at the platform (callbacks carry it as `appId`); empty accepts any
    /// appId, for a member started before it is registered.
    pub app_id: String,
    /// The platform's SM2 public key (from `GET /api/v1/platform/certificate`).
    pub platform_key: sm2::PublicKey,
    pub identity: MemberIdentity,
    /// Time after `cloud/auth/apply` at which the intention counts as confirmed.
    pub confirm_delay: Duration,
    /// Allowed clock difference for the callbacks' `time`.
    pub time_window: Duration,
    /// `host:port` to listen on, e.g. `127.0.0.1:0`.
    pub listen: String,
}

struct AuthEntry {
    seal_code: String,
    created: Instant,
    auth_code: Option<String>,
}

struct Shared {
    app_id: Mutex<String>,
    platform_key: sm2::PublicKey,
    signer: Sm2KeyPair,
    signer_cert_der: Vec<u8>,
    rsa_signer: Option<RsaSigner>,
    confirm_delay: Duration,
    time_window_ms: i64,
    behaviour: Mutex<Behaviour>,
    auths: Mutex<HashMap<String, AuthEntry>>,
    nonces: Mutex<HashMap<u64, i64>>,
    calls: Mutex<u64>,
}

/// A running simulator.
pub struct RunningSimulator {
    /// The callback base URL to register at the platform.
    pub base_url: String,
    /// PEM of the self-signed TLS certificate: register it as the member's callback CA.
    pub tls_cert_pem: String,
    /// PEM (PKCS#8) of the TLS certificate's key, so a restart can keep the registered one.
    pub tls_key_pem: String,
    handle: actix_web::dev::ServerHandle,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningSimulator {
    pub fn set_behaviour(&self, b: Behaviour) {
        if let Ok(mut g) = self.shared.behaviour.lock() {
            *g = b;
        }
    }

    /// Sets the appId the callbacks must carry (when the member is registered after start).
    pub fn set_app_id(&self, app_id: &str) {
        if let Ok(mut g) = self.shared.app_id.lock() {
            *g = app_id.to_string();
        }
    }

    /// Number of callbacks that reached the simulator (authenticated or not).
    pub fn calls(&self) -> u64 {
        self.shared.calls.lock().map(|g| *g).unwrap_or(0)
    }

    /// Stops at once, dropping calls in flight.
    pub async fn stop(self) {
        self.handle.stop(false).await;
        let _ = self.task.await;
    }

    /// Serves until stopped.
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.unwrap_or(Ok(()))
    }
}

/// The simulator's TLS certificate and key (PEM), kept across restarts so the certificate
/// registered as its callback CA stays valid.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TlsIdentity {
    /// A fresh self-signed certificate for `localhost` and `127.0.0.1`.
    pub fn generate() -> Result<Self, SimulatorError> {
        let generated = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .map_err(|e| SimulatorError::Build(e.to_string()))?;
        Ok(Self {
            cert_pem: generated.cert.pem(),
            key_pem: generated.signing_key.serialize_pem(),
        })
    }
}

fn tls_config(tls: &TlsIdentity) -> Result<rustls::ServerConfig, SimulatorError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let bad = |what: &str| SimulatorError::Build(format!("TLS {what} 无法解析"));
    let cert = CertificateDer::from_pem_slice(tls.cert_pem.as_bytes()).map_err(|_| bad("证书"))?;
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes()).map_err(|_| bad("私钥"))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| SimulatorError::Build(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| SimulatorError::Build(e.to_string()))
}

/// Starts the simulator on `config.listen` with a fresh TLS certificate; must run inside a
/// Tokio runtime.
pub fn start(config: SimulatorConfig) -> Result<RunningSimulator, SimulatorError> {
    start_with_tls(config, TlsIdentity::generate()?)
}

/// Like [`start`], serving `tls_identity`.
pub fn start_with_tls(
    config: SimulatorConfig,
    tls_identity: TlsIdentity,
) -> Result<RunningSimulator, SimulatorError> {
    let tls = tls_config(&tls_identity)?;
    let shared = Arc::new(Shared {
        app_id: Mutex::new(config.app_id),
        platform_key: config.platform_key,
        signer: config.identity.kit.signer,
        signer_cert_der: config.identity.kit.signer_cert,
        rsa_signer: config.identity.rsa_signer,
        confirm_delay: config.confirm_delay,
        time_window_ms: config.time_window.as_millis() as i64,
        behaviour: Mutex::new(Behaviour::Normal),
        auths: Mutex::new(HashMap::new()),
        nonces: Mutex::new(HashMap::new()),
        calls: Mutex::new(0),
    });
    let data = web::Data::from(shared.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::JsonConfig::default().limit(1024 * 1024))
            .route(
                super::CALLBACK_AUTH_APPLY,
                web::post().to(|s, b| slowed(s, b, auth_apply)),
            )
            .route(
                super::CALLBACK_AUTH_RESULT,
                web::post().to(|s, b| slowed(s, b, auth_result)),
            )
            .route(
                super::CALLBACK_SIGN,
                web::post().to(|s, b| slowed(s, b, cloud_sign)),
            )
    })
    .workers(2)
    .shutdown_timeout(1)
    .bind_rustls_0_23(&config.listen, tls)
    .map_err(|e| SimulatorError::Bind(config.listen.clone(), e.to_string()))?;
    let addr = *server
        .addrs()
        .first()
        .ok_or_else(|| SimulatorError::Bind(config.listen.clone(), "没有可用地址".into()))?;
    let server = server.run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    let host = if addr.ip().is_loopback() {
        "localhost".to_string()
    } else {
        addr.ip().to_string()
    };
    Ok(RunningSimulator {
        base_url: format!("https://{host}:{}", addr.port()),
        tls_cert_pem: tls_identity.cert_pem,
        tls_key_pem: tls_identity.key_pem,
        handle,
        shared,
        task,
    })
}

fn answer(code: &str, message: &str, data: Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .body(json!({"code": code, "message": message, "data": data}).to_string())
}

fn ok(data: Value) -> HttpResponse {
    answer("0", "成功", data)
}

/// A refusal to answer with: (code, message).
struct Refusal(&'static str, String);

impl Refusal {
    fn response(self) -> HttpResponse {
        answer(self.0, &self.1, Value::String(String::new()))
    }
}

/// Checks the platform's envelope on a callback; the error is the answer to send.
fn authenticate(shared: &Shared, body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    if let Ok(mut c) = shared.calls.lock() {
        *c += 1;
    }
    let bad = |code: &'static str, m: &str| Refusal(code, m.to_string());
    let p = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(p)) => p,
        _ => return Err(bad("10001", "请求体必须是 JSON 对象")),
    };
    if p.get("version").and_then(Value::as_str) != Some(crate::protocol::VERSION) {
        return Err(bad("10002", "不支持的接口版本"));
    }
    let own = shared.app_id.lock().map(|g| g.clone()).unwrap_or_default();
    // An empty own appId (not registered yet) accepts any; the platform signature still counts.
    if !own.is_empty() && p.get("appId").and_then(Value::as_str) != Some(own.as_str()) {
        return Err(bad("20001", "appId 不是本系统"));
    }
    let time: i64 = p
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let now = crate::time::now_ms();
    if (now - time).abs() > shared.time_window_ms {
        return Err(bad("20004", "时间戳 time 超出允许的时间窗口"));
    }
    let Some(nonce) = p.get("nonce").and_then(Value::as_u64) else {
        return Err(bad("10001", "参数 nonce 缺失"));
    };
    let sig = p
        .get("sign")
        .and_then(Value::as_str)
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .unwrap_or_default();
    if sm::sm2_verify(&shared.platform_key, canonical_string(&p).as_bytes(), &sig).is_err() {
        return Err(bad("20003", "平台签名验证失败"));
    }
    if let Ok(mut seen) = shared.nonces.lock() {
        seen.retain(|_, t| now - *t <= shared.time_window_ms);
        if seen.insert(nonce, now).is_some() {
            return Err(bad("20005", "nonce 已使用，请求被视为重放"));
        }
    }
    Ok(p)
}

fn str_param(p: &Map<String, Value>, name: &str) -> Result<String, Refusal> {
    p.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| Refusal("10001", format!("参数 {name} 缺失")))
}

fn behaviour(shared: &Shared) -> Behaviour {
    shared
        .behaviour
        .lock()
        .map(|g| *g)
        .unwrap_or(Behaviour::Normal)
}

/// Applies Hang/Garbage; `Some` is the answer to give instead of the normal one.
async fn misbehave(shared: &Shared) -> Option<HttpResponse> {
    match behaviour(shared) {
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            None
        }
        Behaviour::Garbage => Some(
            HttpResponse::Ok()
                .content_type("application/json")
                .body("<html>not json"),
        ),
        Behaviour::Normal | Behaviour::WrongKey | Behaviour::Slow(_) => None,
    }
}

/// Pieces a `slow` answer's body is cut into.
const SLOW_PIECES: u32 = 10;

/// Runs `handler`; in `slow` mode its answer goes out at once as headers, then its body in
/// [`SLOW_PIECES`] pieces spread over the configured time.
async fn slowed<F, Fut>(shared: web::Data<Shared>, body: web::Bytes, handler: F) -> HttpResponse
where
    F: FnOnce(web::Data<Shared>, web::Bytes) -> Fut,
    Fut: std::future::Future<Output = HttpResponse>,
{
    let resp = handler(shared.clone(), body).await;
    let Behaviour::Slow(total) = behaviour(&shared) else {
        return resp;
    };
    let status = resp.status();
    let Ok(bytes) = actix_web::body::to_bytes(resp.into_body()).await else {
        return answer("50000", "内部错误", Value::String(String::new()));
    };
    let step = bytes.len().div_ceil(SLOW_PIECES as usize).max(1);
    let pause = total / SLOW_PIECES;
    let pieces: Vec<web::Bytes> = bytes
        .chunks(step)
        .map(web::Bytes::copy_from_slice)
        .collect();
    let stream = futures_util::stream::unfold(pieces.into_iter(), move |mut rest| async move {
        let piece = rest.next()?;
        tokio::time::sleep(pause).await;
        Some((Ok::<_, std::io::Error>(piece), rest))
    });
    HttpResponse::build(status)
        .content_type("application/json; charset=utf-8")
        .streaming(stream)
}

async fn auth_apply(shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    let p = match authenticate(&shared, &body) {
        Ok(p) => p,
        Err(r) => return r.response(),
    };
    if let Some(r) = misbehave(&shared).await {
        return r;
    }
    let seal_code = match (str_param(&p, "sealCode"), str_param(&p, "mobile")) {
        (Ok(s), Ok(_)) => s,
        (Err(r), _) | (_, Err(r)) => return r.response(),
    };
    let auth_id = hex::encode(sm::random_bytes::<16>());
    if let Ok(mut auths) = shared.auths.lock() {
        auths.insert(
            auth_id.clone(),
            AuthEntry {
                seal_code,
                created: Instant::now(),
                auth_code: None,
            },
        );
    }
    ok(json!({
        "authUrl": format!("https://member.example/confirm/{auth_id}"),
        "clientType": "H5",
        "authId": auth_id,
    }))
}

async fn auth_result(shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    let p = match authenticate(&shared, &body) {
        Ok(p) => p,
        Err(r) => return r.response(),
    };
    if let Some(r) = misbehave(&shared).await {
        return r;
    }
    let (auth_id, seal_code) = match (str_param(&p, "authId"), str_param(&p, "sealCode")) {
        (Ok(a), Ok(s)) => (a, s),
        (Err(r), _) | (_, Err(r)) => return r.response(),
    };
    let Ok(mut auths) = shared.auths.lock() else {
        return answer("50000", "内部错误", Value::String(String::new()));
    };
    let Some(entry) = auths.get_mut(&auth_id).filter(|e| e.seal_code == seal_code) else {
        return answer(
            "30006",
            "authId 不存在或已过期",
            Value::String(String::new()),
        );
    };
    if entry.created.elapsed() < shared.confirm_delay {
        return answer(
            "30007",
            "签署人尚未完成意愿认证",
            Value::String(String::new()),
        );
    }
    let code = entry
        .auth_code
        .get_or_insert_with(|| hex::encode(sm::random_bytes::<16>()))
        .clone();
    ok(json!({"authCode": code, "authId": auth_id}))
}

async fn cloud_sign(shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    let p = match authenticate(&shared, &body) {
        Ok(p) => p,
        Err(r) => return r.response(),
    };
    if let Some(r) = misbehave(&shared).await {
        return r;
    }
    let fields = ["authId", "authCode", "sealCode", "type", "docHash"].map(|n| str_param(&p, n));
    let mut vals = Vec::new();
    for f in fields {
        match f {
            Ok(v) => vals.push(v),
            Err(r) => return r.response(),
        }
    }
    let [auth_id, auth_code, seal_code, kind, doc_hash] = match <[String; 5]>::try_from(vals) {
        Ok(a) => a,
        Err(_) => return answer("50000", "内部错误", Value::String(String::new())),
    };
    let confirmed = shared.auths.lock().ok().is_some_and(|a| {
        a.get(&auth_id).is_some_and(|e| {
            e.seal_code == seal_code && e.auth_code.as_deref() == Some(auth_code.as_str())
        })
    });
    if !confirmed {
        return answer(
            "30007",
            "意愿认证未完成或 authCode 无效",
            Value::String(String::new()),
        );
    }
    let hash_type = p.get("hashType").and_then(Value::as_i64).unwrap_or(0);
    let hash = match hash_type {
        3 => HashAlg::Sha256,
        4 => HashAlg::Sm3,
        _ => {
            return answer(
                "10001",
                "本模拟系统仅支持 hashType 3（SHA256）与 4（SM3）",
                Value::String(String::new()),
            );
        }
    };
    let digest = base64::engine::general_purpose::STANDARD
        .decode(&doc_hash)
        .ok()
        .filter(|d| d.len() == 32);
    let Some(digest) = digest else {
        return answer(
            "10001",
            "参数 docHash 应为 32 字节摘要的 Base64",
            Value::String(String::new()),
        );
    };
    let wrong;
    let key = if behaviour(&shared) == Behaviour::WrongKey {
        wrong = Sm2KeyPair::generate();
        &wrong
    } else {
        &shared.signer
    };
    let sign_data = match kind.as_str() {
        "P1" if hash == HashAlg::Sha256 && shared.rsa_signer.is_some() => {
            let signed = match (
                &shared.rsa_signer,
                behaviour(&shared) == Behaviour::WrongKey,
            ) {
                (Some(rsa), false) => rsa_sign_sha256(&rsa.key, &digest),
                // Any other RSA key: a signature the seal's certificate does not verify.
                _ => rsa::PrivateKey::new(&mut rand::rng(), 1024)
                    .map_err(|e| e.to_string())
                    .and_then(|k| rsa_sign_sha256(&k, &digest)),
            };
            match signed {
                Ok(s) => s,
                Err(m) => return answer("50000", &m, Value::String(String::new())),
            }
        }
        "P1" if hash == HashAlg::Sm3 => {
            let mut e = [0u8; 32];
            e.copy_from_slice(&digest);
            key.sign_prehashed(&e)
        }
        "P7" => match p7_detached(key, &shared.signer_cert_der, hash, &digest) {
            Ok(d) => d,
            Err(m) => return answer("50000", &m, Value::String(String::new())),
        },
        _ => {
            return answer(
                "10001",
                "本模拟系统支持 P1（SM2 印章 hashType 4，RSA 印章 hashType 3）与 P7",
                Value::String(String::new()),
            );
        }
    };
    ok(json!({
        "type": kind,
        "signData": base64::engine::general_purpose::STANDARD.encode(sign_data),
    }))
}

/// Where and as whom the simulator files its demo seals.
pub struct DemoFiling {
    /// The platform's base URL, e.g. `https://platform:8443`.
    pub platform_url: String,
    /// PEM of the CA (or self-signed certificate) of the platform's HTTPS server; `None`
    /// trusts the operating system's roots.
    pub platform_ca_pem: Option<String>,
    /// The member's appId and the SM2 key registered for it.
    pub app_id: String,
    pub request_key: Sm2KeyPair,
    /// The organisation the seals are filed for (unified social credit code) and its name.
    pub org_code: String,
    pub org_name: String,
}

/// An HTTPS client for the platform: the operating system's roots plus `ca_pem`.
fn platform_client(ca_pem: Option<&str>) -> Result<reqwest::Client, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    for c in CertificateDer::pem_slice_iter(ca_pem.unwrap_or_default().as_bytes()) {
        let c = c.map_err(|_| "平台 CA 证书无法解析".to_string())?;
        roots
            .add(c)
            .map_err(|_| "平台 CA 证书无法使用".to_string())?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP 客户端创建失败：{e}"))
}

/// Files `seals` (DER `SES_Seal`s whose signer certificate has serial `cert_number`) as cloud
/// seals (certType 2) of `filing.org_code`; waits up to `wait` for the member to be
/// registered (system/info answering `0`). Returns the seal codes.
pub async fn file_demo_seals(
    filing: &DemoFiling,
    seals: &[Vec<u8>],
    cert_number: &str,
    wait: Duration,
) -> Result<Vec<String>, SimulatorError> {
    let fail = |m: String| SimulatorError::Filing(m);
    let client = platform_client(filing.platform_ca_pem.as_deref()).map_err(fail)?;
    let call = |path: &'static str, fields: Value| {
        let client = client.clone();
        async move {
            let fields = match fields {
                Value::Object(f) => f,
                _ => Map::new(),
            };
            let p = crate::protocol::signed_envelope(
                &filing.app_id,
                crate::time::now_ms(),
                u32::from_be_bytes(sm::random_bytes::<4>()) % 100_000_000,
                fields,
                |canonical| filing.request_key.sign(canonical),
            );
            let url = format!("{}{path}", filing.platform_url.trim_end_matches('/'));
            let answer: Value = client
                .post(url)
                .json(&p)
                .send()
                .await
                .map_err(|e| fail(format!("{path}：{e}")))?
                .json()
                .await
                .map_err(|e| fail(format!("{path} 的应答不是 JSON：{e}")))?;
            Ok::<Value, SimulatorError>(answer)
        }
    };
    let deadline = Instant::now() + wait;
    loop {
        let answer = call("/api/v1/system/info", json!({})).await?;
        if answer["code"] == "0" {
            break;
        }
        if Instant::now() >= deadline {
            return Err(fail(format!("system/info 应答 {answer}")));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut codes = Vec::new();
    for seal in seals {
        let answer = call(
            "/api/v1/seal/filing",
            json!({
                // Unique per run: the platform refuses a business code filed before (30004).
                "code": format!("sim-{}", hex::encode(sm::random_bytes::<6>())),
                "name": filing.org_name,
                "sealType": "01",
                "certNumber": cert_number,
                "possessor": filing.org_name,
                "possessorCertNo": filing.org_code,
                "possessorType": 1,
                "bizType": 1,
                "certType": 2,
                "sealData": base64::engine::general_purpose::STANDARD.encode(seal),
            }),
        )
        .await?;
        match answer["data"].as_str() {
            Some(code) if answer["code"] == "0" => codes.push(code.to_string()),
            _ => return Err(fail(format!("seal/filing 应答 {answer}"))),
        }
    }
    Ok(codes)
}

/// A detached SignedData (GB/T 35275 OIDs) whose signed attributes carry `messageDigest` =
/// `digest` as given — digest signing: the simulator never sees the content itself.
pub(crate) fn p7_detached(
    key: &Sm2KeyPair,
    cert_der: &[u8],
    hash: HashAlg,
    digest: &[u8],
) -> Result<Vec<u8>, String> {
    use crate::crypto::cms::{
        OID_CONTENT_TYPE, OID_GM_DATA, OID_GM_SIGNED_DATA, OID_MESSAGE_DIGEST,
    };
    use crate::ses::asn1::{self, tag};
    let cert = crate::crypto::x509::CertInfo::parse(cert_der).map_err(|e| e.to_string())?;
    let oid = |o: &str| asn1::oid(o).map_err(|e| e.to_string());
    let alg = |o: &str| -> Result<Vec<u8>, String> { Ok(asn1::sequence(&[&oid(o)?])) };
    let mut attrs = [
        asn1::sequence(&[
            &oid(OID_CONTENT_TYPE)?,
            &asn1::tlv(tag::SET, &oid(OID_GM_DATA)?),
        ]),
        asn1::sequence(&[
            &oid(OID_MESSAGE_DIGEST)?,
            &asn1::tlv(tag::SET, &asn1::tlv(tag::OCTET_STRING, digest)),
        ]),
    ];
    attrs.sort();
    let attrs = attrs.concat();
    let signature = key.sign(&asn1::tlv(tag::SET, &attrs));
    let signer_info = asn1::sequence(&[
        &asn1::integer(1),
        &asn1::sequence(&[&cert.issuer_der, &asn1::tlv(tag::INTEGER, &cert.serial)]),
        &alg(hash.oid())?,
        &asn1::tlv(0xa0, &attrs),
        &alg("1.2.156.10197.1.501")?,
        &asn1::tlv(tag::OCTET_STRING, &signature),
    ]);
    let signed_data = asn1::sequence(&[
        &asn1::integer(1),
        &asn1::tlv(tag::SET, &alg(hash.oid())?),
        &asn1::sequence(&[&oid(OID_GM_DATA)?]),
        &asn1::tlv(0xa0, &cert.der),
        &asn1::tlv(tag::SET, &signer_info),
    ]);
    Ok(asn1::sequence(&[
        &oid(OID_GM_SIGNED_DATA)?,
        &asn1::tlv(0xa0, &signed_data),
    ]))
}
