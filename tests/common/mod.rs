//! Test harness: the real server on `127.0.0.1:0` over real HTTPS, in a fresh data directory,
//! and a member client that signs requests as SPEC §2 describes — written from the spec, not
//! from the gateway's code (it has its own canonical string and uses the SM2 library signer).
#![allow(dead_code)]

pub mod daemon;

use base64::Engine;
use hutong::config::Config;
use hutong::server;
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct TestServer {
    pub base: String,
    pub handle: actix_web::dev::ServerHandle,
    pub state: actix_web::web::Data<hutong::app::AppState>,
    pub client: reqwest::Client,
    /// `http://127.0.0.1:PORT` of the monitoring listener (`/metrics` without a token).
    pub metrics_base: Option<String>,
    pub data_dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A rustls client configuration (ring) trusting exactly `roots`.
pub fn client_tls(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth()
}

/// A client that trusts exactly the server's generated certificate.
pub fn https_client(cert_pem: &[u8]) -> reqwest::Client {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(cert_pem) {
        roots.add(c.expect("server certificate PEM")).expect("root");
    }
    reqwest::Client::builder()
        .tls_backend_preconfigured(client_tls(roots))
        .build()
        .expect("client")
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::load(None, Vec::<(String, String)>::new()).expect("defaults");
    config.data_dir = data_dir.path().to_path_buf();
    config.listen = "127.0.0.1:0".into();
    config.metrics.listen = "127.0.0.1:0".into();
    tweak(&mut config);
    let prepared = tokio::task::spawn_blocking(move || server::prepare(config))
        .await
        .unwrap()
        .expect("prepare");
    let running = server::start(prepared).expect("start");
    let base = format!("https://localhost:{}", running.addr.port());
    let handle = running.handle.clone();
    let state = running.state.clone();
    let metrics_base = running.metrics_addr.map(|a| format!("http://{a}"));
    let task = tokio::spawn(running.serve());
    let (cert, _) = server::tls::generated_paths(data_dir.path());
    let client = https_client(&std::fs::read(cert).unwrap());
    TestServer {
        base,
        handle,
        state,
        client,
        metrics_base,
        data_dir,
        task,
    }
}

impl TestServer {
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }

    /// GETs `path` on the monitoring listener (plain HTTP on loopback).
    pub async fn monitoring_get(&self, path: &str) -> reqwest::Response {
        let base = self.metrics_base.as_deref().expect("a monitoring listener");
        https_client(&[])
            .get(format!("{base}{path}"))
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .expect("the monitoring listener answers")
    }

    /// The platform certificate PEM, as a vendor fetches it (no authentication).
    pub async fn platform_certificate(&self) -> String {
        self.client
            .get(format!("{}/api/v1/platform/certificate", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Registers a member system with its own fresh SM2 key.
    pub fn add_member(&self, state: &str) -> Member {
        let key = sm2::SecretKey::from_slice(&hutong::crypto::sm::random_bytes::<32>())
            .expect("random scalar");
        let pem = {
            use sm2::pkcs8::EncodePublicKey;
            key.public_key()
                .to_public_key_pem(Default::default())
                .unwrap()
        };
        let v = server::control::execute(
            &self.state.store,
            None,
            &self.state.config,
            server::control::Command::SystemAdd {
                name: "测试印章系统".into(),
                plat_name: "测试平台".into(),
                public_key_pem: pem,
                callback_url: None,
                callback_ca_pem: None,
                dest_host: None,
                state: Some(
                    hutong::domain::vocab::SystemState::parse(state).expect("system state"),
                ),
            },
        )
        .expect("system add");
        let server::control::Response::SystemAdd(added) = v else {
            panic!("system add answered {v:?}");
        };
        Member {
            app_id: added.app_id,
            key,
            nonce: AtomicU32::new(1),
        }
    }

    /// POSTs a JSON body as is; returns status, headers and parsed body.
    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let resp = self
            .client
            .post(format!("{}{}", self.base, path))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body").to_vec();
        (status, headers, bytes)
    }

    /// Adds the CA certificate (PEM file) to the trust anchors, as `hutong trust add` does.
    pub fn trust(&self, pem_file: &str) {
        use base64::Engine as _;
        let root = std::fs::read(pem_file).unwrap();
        server::control::execute(
            &self.state.store,
            None,
            &self.state.config,
            server::control::Command::TrustAdd {
                certificate_b64: base64::engine::general_purpose::STANDARD.encode(&root),
            },
        )
        .unwrap();
    }

    /// `POST /api/v1/document/verify` as multipart: the signed parameters and the file.
    pub async fn upload_document(
        &self,
        params: &Map<String, Value>,
        name: &str,
        file: Vec<u8>,
    ) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in params {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            form = form.text(k.clone(), text);
        }
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(file).file_name(name.to_string()),
        );
        let resp = self
            .client
            .post(format!("{}/api/v1/document/verify", self.base))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    pub async fn post(&self, path: &str, params: &Map<String, Value>) -> (u16, Value) {
        let (status, _, body) = self
            .post_raw(path, serde_json::to_vec(params).unwrap())
            .await;
        (status, serde_json::from_slice(&body).expect("JSON body"))
    }
}

pub struct Member {
    pub app_id: String,
    pub key: sm2::SecretKey,
    pub nonce: AtomicU32,
}

/// SPEC §2 canonical string, written independently of the gateway.
pub fn canonical(params: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = params
        .keys()
        .filter(|k| *k != "sign")
        .filter(|k| match &params[*k] {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            _ => true,
        })
        .collect();
    keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    keys.iter()
        .map(|k| {
            let v = match &params[*k] {
                Value::String(s) => s.clone(),
                other => serde_json::to_string(other).unwrap(),
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl Member {
    pub fn next_nonce(&self) -> u32 {
        self.nonce.fetch_add(1, Ordering::Relaxed)
    }

    /// Signs with the SM2 library's own signer (DER), ID 1234567812345678.
    pub fn sign(&self, canonical: &str) -> String {
        use signature::Signer;
        let sk = sm2::dsa::SigningKey::new("1234567812345678", &self.key).unwrap();
        let sig: sm2::dsa::Signature = sk.sign(canonical.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
    }

    /// The common parameters plus `extra`, signed.
    pub fn request(&self, extra: Value) -> Map<String, Value> {
        let mut p = json!({
            "version": "1.0",
            "appId": self.app_id,
            "time": now_ms().to_string(),
            "nonce": self.next_nonce(),
        })
        .as_object()
        .unwrap()
        .clone();
        if let Value::Object(e) = extra {
            p.extend(e);
        }
        self.resign(&mut p);
        p
    }

    /// The common parameters signed with `file` = hex SM3 of the document, as SPEC §2 says
    /// for uploads (the `file` parameter itself is the multipart part).
    pub fn signed_upload_params(&self, file: &[u8]) -> Map<String, Value> {
        let mut p = self.request(json!({}));
        p.remove("sign");
        p.insert("file".into(), hutong::crypto::sm::sm3_hex(file).into());
        let sig = self.sign(&canonical(&p));
        p.remove("file");
        p.insert("sign".into(), sig.into());
        p
    }

    pub fn resign(&self, p: &mut Map<String, Value>) {
        let sig = self.sign(&canonical(p));
        p.insert("sign".into(), Value::String(sig));
    }
}
