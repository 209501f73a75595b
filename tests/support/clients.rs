//! The harness that runs the example clients of `examples/clients/` (Python, Java) against the
//! real server over HTTPS: one suite, the language only decides the commands. Each example
//! is a keygen, a client (`demo`, `cloud-sign`) and a member callback server, all with the
//! same command-line options, run as child processes.
#![allow(dead_code)]

use super::common::{self, TestServer};
use base64::Engine;
use hutong::interop::simulator::MemberIdentity;
use hutong::server::control;
use serde_json::{Map, Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const ORG: &str = "91350100M000100Y43";
pub const SM2_PDF: &str = "tests/data/pdf/generated/sm2-cms-pkcs7oid-detached.pdf";

/// A self-signed P-256 TLS certificate for `localhost`/`127.0.0.1`, made the usual way
/// (`openssl req -x509` marks it `CA:TRUE`; the platform pins it as the recorded callback
/// certificate): (certificate PEM path, private key PEM path).
pub fn member_tls_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.pem"), dir.join("tls-key.pem"));
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert);
    let out = cmd.output().expect("openssl");
    assert!(out.status.success(), "openssl req: {out:?}");
    (cert, key)
}

/// How to run one language's example: `argv` prefixes for the client and the member server.
pub struct Example {
    pub client: Vec<String>,
    pub member: Vec<String>,
}

impl Example {
    fn command(prefix: &[String]) -> Command {
        let mut c = Command::new(&prefix[0]);
        c.args(&prefix[1..]);
        c
    }

    pub fn client_cmd(&self) -> Command {
        Self::command(&self.client)
    }

    pub fn member_cmd(&self) -> Command {
        Self::command(&self.member)
    }
}

/// A child process killed when dropped, so a failed assertion leaves nothing running.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a client command; (exit status success, JSON lines of stdout, stderr).
pub fn run(mut cmd: Command) -> (bool, Vec<Value>, String) {
    let out = cmd.output().expect("client runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (
        out.status.success(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The line of `step` in a client's report.
pub fn step<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["step"] == name)
        .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
}

/// A system key made by the example's own `keygen`: (private key file, public PEM).
pub fn keygen(ex: &Example, dir: &Path) -> (PathBuf, String) {
    let mut cmd = ex.client_cmd();
    cmd.arg("keygen").arg("--out").arg(dir);
    let out = cmd.output().expect("keygen");
    assert!(out.status.success(), "keygen: {out:?}");
    let pem = std::fs::read_to_string(dir.join("public.pem")).unwrap();
    (dir.join("key.hex"), pem)
}

/// Registers an online system with `public_pem` and an optional callback; its appId.
pub fn register(srv: &TestServer, public_pem: &str, callback: Option<(String, String)>) -> String {
    let (callback_url, callback_ca_pem) = callback.unzip();
    let v = control::execute(
        &srv.state.store,
        None,
        &srv.state.config,
        control::Command::SystemAdd {
            name: "示例印章系统".into(),
            plat_name: "示例平台".into(),
            public_key_pem: public_pem.to_string(),
            callback_url,
            callback_ca_pem,
            dest_host: None,
            state: Some(hutong::domain::vocab::SystemState::Online),
        },
    )
    .expect("system add");
    let control::Response::SystemAdd(added) = v else {
        panic!("system add answered {v:?}");
    };
    added.app_id
}

/// A loopback port free a moment ago, for a member that must be registered before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a member server and waits for its `{"listening": port}` line.
pub fn start_member(mut cmd: Command) -> ChildGuard {
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = ChildGuard(cmd.spawn().expect("member server starts"));
    let stdout = child.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("member said {line:?}"));
    assert!(v["listening"].is_u64(), "{v}");
    child
}

/// Everything one suite run shares.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub platform_cert: PathBuf,
    pub tls_ca: PathBuf,
}

pub async fn setup(srv: &TestServer) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pem = srv.platform_certificate().await;
    let platform_cert = dir.path().join("platform.pem");
    std::fs::write(&platform_cert, pem).unwrap();
    let (tls_ca, _) = hutong::server::tls::generated_paths(srv.data_dir.path());
    Setup {
        dir,
        platform_cert,
        tls_ca,
    }
}

fn client_args(
    cmd: &mut Command,
    srv: &TestServer,
    s: &Setup,
    platform_cert: &Path,
    app_id: &str,
    key: &Path,
) {
    cmd.arg("--base")
        .arg(&srv.base)
        .arg("--app-id")
        .arg(app_id)
        .arg("--key")
        .arg(key)
        .arg("--platform-cert")
        .arg(platform_cert)
        .arg("--tls-ca")
        .arg(&s.tls_ca)
        .arg("--org-code")
        .arg(ORG);
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The whole suite for one example: the client's calls, the member server as the home system
/// of a routed cloud signing, the member's own checks, and a client that must notice a forged
/// platform signature.
pub async fn client_suite(ex: &Example) {
    let srv = common::start().await;
    let s = setup(&srv).await;
    let dir = s.dir.path();

    // B: the seal's home system, its key from the example's keygen, its member server on TLS.
    let b_dir = dir.join("b");
    let (b_key, b_pem) = keygen(ex, &b_dir);
    let (tls_cert, tls_key) = member_tls_certificate(dir);
    let port = free_port();
    let b_app = register(
        &srv,
        &b_pem,
        Some((
            format!("https://localhost:{port}"),
            std::fs::read_to_string(&tls_cert).unwrap(),
        )),
    );
    let identity = MemberIdentity::generate("某某科技有限公司").unwrap();
    let seal = identity
        .build_seal(
            "合同专用章",
            "example-es-1",
            hutong::ses::kit::png_header(120, 80),
            365,
        )
        .unwrap();
    let seal_file = dir.join("seal.der");
    std::fs::write(&seal_file, &seal).unwrap();
    let signer_key = dir.join("signer.hex");
    std::fs::write(
        &signer_key,
        hex::encode(identity.kit.signer.secret_bytes().as_slice()),
    )
    .unwrap();
    let serial = hutong::crypto::x509::CertInfo::parse(&identity.kit.signer_cert)
        .unwrap()
        .serial_hex;

    let mut member = ex.member_cmd();
    member
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--cert")
        .arg(&tls_cert)
        .arg("--tls-key")
        .arg(&tls_key)
        .arg("--platform-cert")
        .arg(&s.platform_cert)
        .arg("--app-id")
        .arg(&b_app)
        .arg("--key")
        .arg(&b_key)
        .arg("--signer-key")
        .arg(&signer_key)
        .arg("--confirm-delay")
        .arg("0.5");
    let _member = start_member(member);

    // B's client: system/info, filing, query, document verification; every answer verified.
    let mut demo = ex.client_cmd();
    demo.arg("demo");
    client_args(&mut demo, &srv, &s, &s.platform_cert, &b_app, &b_key);
    demo.arg("--seal")
        .arg(&seal_file)
        .arg("--cert-number")
        .arg(&serial)
        .arg("--document")
        .arg(SM2_PDF);
    let (ok, lines, err) = run(demo);
    assert!(ok, "demo failed: {err} {lines:?}");
    let info = step(&lines, "system/info");
    assert_eq!(info["status"], 200);
    assert_eq!(info["answer"]["code"], "0", "{info}");
    assert_eq!(info["answer"]["data"]["appId"], b_app.as_str());
    assert_eq!(info["answer"]["data"]["state"], "online");
    let filed = step(&lines, "seal/filing");
    assert_eq!(filed["answer"]["code"], "0", "{filed}");
    let seal_code = filed["answer"]["data"].as_str().unwrap().to_string();
    assert_eq!(seal_code.len(), 18);
    let query = step(&lines, "seal/query");
    assert_eq!(query["answer"]["code"], "0", "{query}");
    let listed = query["answer"]["data"].as_array().unwrap();
    let entry = listed
        .iter()
        .find(|e| e["sealCode"] == seal_code.as_str())
        .expect("the filed seal is listed");
    assert_eq!(entry["sealData"], b64(&seal).as_str());
    let verified = step(&lines, "document/verify");
    assert_eq!(verified["answer"]["code"], "0", "{verified}");
    assert_eq!(verified["answer"]["data"]["signCount"], 1);
    assert_eq!(
        verified["answer"]["data"]["fileName"],
        "sm2-cms-pkcs7oid-detached.pdf"
    );
    let steps = &verified["answer"]["data"]["details"][0]["flowVoList"];
    assert_eq!(steps[2]["step"], "signature");
    assert_eq!(steps[2]["status"], 1, "{steps}");

    // A: another system signs with B's cloud seal; the platform routes to B's member server.
    let a_dir = dir.join("a");
    let (a_key, a_pem) = keygen(ex, &a_dir);
    let a_app = register(&srv, &a_pem, None);
    let mut sign = ex.client_cmd();
    sign.arg("cloud-sign");
    client_args(&mut sign, &srv, &s, &s.platform_cert, &a_app, &a_key);
    sign.arg("--seal-code").arg(&seal_code);
    let (ok, lines, err) = run(sign);
    assert!(ok, "cloud-sign failed: {err} {lines:?}");
    for name in ["cloud/auth/apply", "cloud/auth/result", "cloud/sign"] {
        assert_eq!(
            step(&lines, name)["answer"]["code"],
            "0",
            "{name}: {lines:?}"
        );
    }
    assert_eq!(step(&lines, "cloud/sign")["signDataVerified"], true);
    assert_eq!(step(&lines, "cloud/sign")["answer"]["data"]["type"], "P1");

    member_checks_the_platform(&srv, &b_app, &b_pem, port).await;
    forged_platform_signature_is_noticed(&srv, ex, &s, &a_app, &a_key, &identity).await;
    srv.stop().await;
}

/// Talks to the member server directly, trusting its certificate as the platform does (the
/// recorded `CA:TRUE` certificate as a pin): a platform-signed call gets the member's own
/// signed business answer; a forged or replayed one is refused.
async fn member_checks_the_platform(srv: &TestServer, app_id: &str, member_pem: &str, port: u16) {
    let member = srv.state.store.get_system(app_id).unwrap().unwrap();
    let tls = hutong::interop::client::member_tls_config(&member).unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/cloud/auth/result");
    let fields: Map<String, Value> = json!({"authId": "no-such-auth", "sealCode": "X"})
        .as_object()
        .unwrap()
        .clone();
    let body = hutong::interop::client::envelope(&srv.state.keys, app_id, fields.clone());
    let post = |body: Vec<u8>| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let resp = client
                .post(&url)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let sig = resp
                .headers()
                .get("X-Hutong-Signature")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let raw = resp.bytes().await.unwrap().to_vec();
            (raw, sig)
        }
    };
    let (raw, sig) = post(body.clone()).await;
    let answer: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(answer["code"], "30006", "{answer}");
    let member_key = hutong::crypto::sm::sm2_public_key_from_pem(member_pem).unwrap();
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig)
        .unwrap();
    hutong::crypto::sm::sm2_verify(&member_key, &raw, &sig).expect("the member signs its answers");

    let (raw, _) = post(body).await;
    let answer: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(answer["code"], "20005", "a replay is refused: {answer}");

    // Signed by someone else's key: the member refuses it.
    let body = hutong::interop::client::envelope(&srv.state.keys, app_id, fields);
    let mut forged: Map<String, Value> = serde_json::from_slice(&body).unwrap();
    let other = hutong::crypto::sm::Sm2KeyPair::generate();
    let sig = other.sign(hutong::protocol::canonical_string(&forged).as_bytes());
    forged.insert("sign".into(), b64(&sig).into());
    let (raw, _) = post(serde_json::to_vec(&forged).unwrap()).await;
    let answer: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(answer["code"], "20003", "{answer}");
}

/// A client given the wrong platform certificate must refuse the (genuine) answers.
async fn forged_platform_signature_is_noticed(
    srv: &TestServer,
    ex: &Example,
    s: &Setup,
    app_id: &str,
    key: &Path,
    identity: &MemberIdentity,
) {
    let wrong = s.dir.path().join("not-the-platform.pem");
    std::fs::write(
        &wrong,
        hutong::crypto::sm::pem_encode("CERTIFICATE", &identity.kit.root_cert),
    )
    .unwrap();
    let mut demo = ex.client_cmd();
    demo.arg("demo");
    client_args(&mut demo, srv, s, &wrong, app_id, key);
    let (ok, lines, err) = run(demo);
    assert!(
        !ok,
        "a client must refuse an answer it cannot verify: {lines:?}"
    );
    assert!(lines.is_empty(), "{lines:?}");
    assert!(err.contains("X-Hutong-Signature"), "{err}");
}
