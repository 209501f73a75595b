//! The TLS certificate of a running `hutong serve` replaced without a restart: on SIGHUP and
//! on `hutong tls reload` new connections get the new certificate; a broken file is refused
//! and the old one stays; the expiry is in `hutong status` and in `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;

use common::daemon::{hutong, run_ok, spawn};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A self-signed certificate for localhost named `cn`, valid until 1 January of `year`.
struct Pair {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
    not_after_secs: i64,
}

fn pair(cn: &str, year: i32) -> Pair {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.not_after = rcgen::date_time_ymd(year, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
        not_after_secs: params.not_after.unix_timestamp(),
    }
}

fn install(dir: &Path, p: &Pair) {
    std::fs::write(dir.join("server.crt"), &p.cert_pem).unwrap();
    std::fs::write(dir.join("server.key"), &p.key_pem).unwrap();
}

/// The certificate a new TLS connection to `port` is served (trusting every pair given).
async fn served(port: u16, trusted: &[&Pair]) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for p in trusted {
        roots.add(CertificateDer::from(p.der.clone())).unwrap();
    }
    let config = common::client_tls(roots);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// Waits (generously) until new connections are served `want`.
async fn until_served(port: u16, trusted: &[&Pair], want: &Pair) {
    for _ in 0..50 {
        if served(port, trusted).await == want.der {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the new certificate was not served");
}

async fn expiry_metric(metrics_base: &str) -> i64 {
    let text = common::https_client(&[])
        .get(format!("{metrics_base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("hutong_tls_certificate_expiry_seconds "))
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_new_certificate_is_served_after_sighup_and_tls_reload_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tls_dir = tmp.path().join("tls");
    std::fs::create_dir_all(&tls_dir).unwrap();
    let (a, b, c) = (
        pair("hutong-a", 2030),
        pair("hutong-b", 2031),
        pair("hutong-c", 2032),
    );
    let all = [&a, &b, &c];
    install(&tls_dir, &a);
    let with_tls = |cmd: &mut std::process::Command| {
        cmd.env("HUTONG_TLS__CERT", tls_dir.join("server.crt"))
            .env("HUTONG_TLS__KEY", tls_dir.join("server.key"));
    };
    let mut cmd = hutong(&data);
    with_tls(&mut cmd);
    let mut d = spawn(cmd).unwrap_or_else(|e| panic!("server did not start: {e}"));
    let metrics = d.metrics_base.clone().expect("monitoring listener");
    assert_eq!(served(d.port, &all).await, a.der);
    assert_eq!(expiry_metric(&metrics).await, a.not_after_secs);

    // SIGHUP.
    install(&tls_dir, &b);
    d.signal(libc::SIGHUP);
    until_served(d.port, &all, &b).await;
    assert_eq!(expiry_metric(&metrics).await, b.not_after_secs);

    // hutong tls reload, through the control socket.
    install(&tls_dir, &c);
    let mut reload = hutong(&data);
    with_tls(&mut reload);
    let out: Value =
        serde_json::from_str(run_ok(reload.args(["tls", "reload", "--json"])).trim()).unwrap();
    assert!(
        out["subject"].as_str().unwrap().contains("hutong-c"),
        "{out}"
    );
    assert_eq!(out["notAfterMs"].as_i64().unwrap(), c.not_after_secs * 1000);
    assert_eq!(served(d.port, &all).await, c.der);
    let status: Value =
        serde_json::from_str(run_ok(hutong(&data).args(["status", "--json"])).trim()).unwrap();
    assert_eq!(
        status["tls"]["notAfterMs"].as_i64().unwrap(),
        c.not_after_secs * 1000
    );
    let text = run_ok(hutong(&data).arg("status"));
    assert!(
        text.contains("TLS 证书 certificate: ") && text.contains("hutong-c"),
        "{text}"
    );

    // A broken file is refused, and the current certificate stays.
    std::fs::write(tls_dir.join("server.crt"), "not a certificate").unwrap();
    let out = hutong(&data).args(["tls", "reload"]).output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("仍使用原证书"), "{said}");
    d.signal(libc::SIGHUP);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(served(d.port, &all).await, c.der);
    assert_eq!(expiry_metric(&metrics).await, c.not_after_secs);

    d.signal(libc::SIGTERM);
    assert!(d.child.wait().unwrap().success());
}
