//! `hutong simulate-member` as an integrator runs it: a first start writes its keys and TLS
//! certificate, the operator registers it, a restart with `--app-id --file-seals` files demo
//! cloud seals at the platform, and each `--mode` produces its documented error path in the
//! routed cloud-signing flow of another member.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;

use base64::Engine;
use common::{Member, TestServer};
use hutong::server::control;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ORG: &str = "91350100M000100Y43";

/// Where the routed flow stopped: (interface, HTTP status, code).
type Refusal<'a> = (&'a str, u16, &'a str);

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the simulator with `args` and reads its output up to the line starting with
/// `until`; that line's remainder.
fn simulate(common_args: &[String], args: &[&str], until: &str) -> (Sim, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .arg("simulate-member")
        .args(common_args)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let sim = Sim(child);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "simulator ended before {until:?}: {seen}"
        );
        if let Some(rest) = line.strip_prefix(until) {
            return (sim, rest.trim().to_string());
        }
        seen.push_str(&line);
    }
}

fn register(srv: &TestServer, out: &Path, port: u16) -> String {
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    let v = control::execute(
        &srv.state.store,
        None,
        &srv.state.config,
        control::Command::SystemAdd {
            name: "模拟印章系统".into(),
            plat_name: "模拟平台".into(),
            public_key_pem: read("member-public.pem"),
            callback_url: Some(format!("https://localhost:{port}")),
            callback_ca_pem: Some(read("callback-ca.pem")),
            dest_host: None,
            state: Some(hutong::domain::vocab::SystemState::Online),
        },
    )
    .unwrap();
    let control::Response::SystemAdd(added) = v else {
        panic!("{v:?}");
    };
    added.app_id
}

async fn call(srv: &TestServer, a: &Member, path: &str, extra: Value) -> (u16, Value) {
    srv.post(path, &a.request(extra)).await
}

/// A's routed flow on `seal_code`: the first interface that does not answer `0` and its
/// (status, code), or `None` when the signature came back and verifies.
async fn routed_flow(
    srv: &TestServer,
    a: &Member,
    seal_code: &str,
) -> Option<(String, u16, String)> {
    let (_, list) = call(
        srv,
        a,
        "/api/v1/seal/query",
        json!({"orgCode": ORG, "sealType": "0"}),
    )
    .await;
    let seal = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sealCode"] == seal_code)
        .expect("the demo seal is listed")
        .clone();
    let b64 = base64::engine::general_purpose::STANDARD;
    let cert = b64
        .decode(seal["certList"][0]["signPublicKey"].as_str().unwrap())
        .unwrap();
    let signer = hutong::crypto::sm::sm2_public_key_from_cert_der(&cert).unwrap();
    let refused = |path: &str, s: u16, v: &Value| {
        Some((path.to_string(), s, v["code"].as_str().unwrap().to_string()))
    };

    let path = "/api/v1/cloud/auth/apply";
    let (s, v) = call(
        srv,
        a,
        path,
        json!({"sealCode": seal_code, "mobile": "13812345678"}),
    )
    .await;
    if v["code"] != "0" {
        return refused(path, s, &v);
    }
    let auth_id = v["data"]["authId"].as_str().unwrap().to_string();
    let path = "/api/v1/cloud/auth/result";
    let deadline = Instant::now() + Duration::from_secs(5);
    let auth_code = loop {
        let (s, v) = call(
            srv,
            a,
            path,
            json!({"authId": auth_id, "sealCode": seal_code}),
        )
        .await;
        match v["code"].as_str().unwrap() {
            "0" => break v["data"]["authCode"].as_str().unwrap().to_string(),
            "30007" if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            _ => return refused(path, s, &v),
        }
    };
    let tbs = b"DER of an OFD TBS_Sign";
    let e = hutong::crypto::sm::sm2_message_digest(&signer, tbs).unwrap();
    let path = "/api/v1/cloud/sign";
    let (s, v) = call(
        srv,
        a,
        path,
        json!({"sealCode": seal_code, "authId": auth_id, "authCode": auth_code, "type": "P1",
               "docHash": b64.encode(e), "credentNo": "11010519491231002X", "orgCode": ORG,
               "signId": seal["signId"], "hashType": 4}),
    )
    .await;
    if v["code"] != "0" {
        assert_eq!(v["data"], "", "nothing of a failed signature is returned");
        return refused(path, s, &v);
    }
    let sig = b64.decode(v["data"]["signData"].as_str().unwrap()).unwrap();
    hutong::crypto::sm::sm2_verify(&signer, tbs, &sig).expect("signed by the demo seal's key");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_files_demo_seals_and_each_mode_shows_its_error_path() {
    let srv = common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let platform_cert = dir.path().join("platform.pem");
    let pem = srv.platform_certificate().await;
    std::fs::write(&platform_cert, pem).unwrap();
    let (platform_ca, _) = hutong::server::tls::generated_paths(srv.data_dir.path());
    let out = dir.path().join("sim");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let common_args: Vec<String> = vec![
        "--platform-cert".into(),
        platform_cert.display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--out".into(),
        out.display().to_string(),
        "--confirm-delay".into(),
        "0".into(),
    ];

    // First start: it writes what the operator registers, then it is stopped.
    drop(simulate(&common_args, &[], "simulated member listening at"));
    let b = register(&srv, &out, port);
    let a = srv.add_member("online");

    let filing = [
        "--app-id",
        &b,
        "--file-seals",
        ORG,
        "--platform",
        &srv.base,
        "--platform-ca",
        platform_ca.to_str().unwrap(),
    ];
    let cases: [(&[&str], Option<Refusal>); 6] = [
        (&["--mode", "normal"], None),
        (
            &["--mode", "wrong-key"],
            Some(("/api/v1/cloud/sign", 502, "40003")),
        ),
        // The option's older name keeps working.
        (
            &["--behaviour", "garbage"],
            Some(("/api/v1/cloud/auth/apply", 502, "40003")),
        ),
        (
            &["--mode", "hang"],
            Some(("/api/v1/cloud/auth/apply", 504, "40002")),
        ),
        // The body trickles for 5 s: alive all along, still beyond the 3 s total budget.
        (
            &["--mode", "slow"],
            Some(("/api/v1/cloud/auth/apply", 504, "40002")),
        ),
        // Slow within the budget: every step succeeds.
        (&["--mode", "slow", "--slow-secs", "1"], None),
    ];
    for (mode, want) in cases {
        let args: Vec<&str> = filing.iter().chain(mode.iter()).copied().collect();
        let (sim, filed) = simulate(&common_args, &args, "filed seal ");
        let seal_code = filed.split_whitespace().next().unwrap().to_string();
        assert_eq!(seal_code.len(), 18, "{filed}");
        let started = Instant::now();
        let got = routed_flow(&srv, &a, &seal_code).await;
        let got = got.as_ref().map(|(p, s, c)| (p.as_str(), *s, c.as_str()));
        assert_eq!(got, want, "{mode:?}");
        assert!(started.elapsed() < Duration::from_secs(8), "{mode:?}");
        drop(sim);
    }
    srv.stop().await;
}
