//! `POST /api/v1/document/verify` over real HTTPS, trust anchors managed through the control
//! commands, and the CLI giving the same report through the running server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;

use serde_json::Value;

const SM2_PDF: &str = "tests/data/pdf/generated/sm2-cms-pkcs7oid-detached.pdf";
const SM2_ROOT: &str = "tests/data/pdf/generated/pki-sm2/root.pem";

fn step<'a>(detail: &'a Value, name: &str) -> &'a Value {
    detail["flowVoList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_uses_the_platforms_trust_anchors_and_matches_the_cli() {
    let srv = common::start().await;
    let m = srv.add_member("online");
    let pdf = std::fs::read(SM2_PDF).unwrap();

    // No anchor yet: everything verifies except the chain.
    let (s, v) = srv
        .upload_document(&m.signed_upload_params(&pdf), "contract.pdf", pdf.clone())
        .await;
    assert_eq!((s, v["code"].as_str().unwrap()), (200, "0"), "{v}");
    let d = &v["data"];
    assert_eq!(d["fileName"], "contract.pdf");
    assert_eq!(d["fileSize"], pdf.len());
    assert_eq!(d["signCount"], 1);
    assert_eq!(d["verifyResult"], false);
    assert_eq!(step(&d["details"][0], "certificate")["status"], 0);
    assert_eq!(step(&d["details"][0], "signature")["status"], 1);
    assert_eq!(d["details"][0]["flowVoList"].as_array().unwrap().len(), 8);

    // The operator trusts the SM2 root: now the document verifies; not on file is only a hint.
    srv.trust(SM2_ROOT);
    let (_, v) = srv
        .upload_document(&m.signed_upload_params(&pdf), "contract.pdf", pdf.clone())
        .await;
    let d = &v["data"];
    assert_eq!(d["verifyResult"], true, "{d}");
    assert_eq!(step(&d["details"][0], "registry")["hint"], "未在本平台备案");

    // The CLI asks the running server and prints the same report.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hutong"))
        .arg("--data-dir")
        .arg(srv.data_dir.path())
        .args(["verify", "--json", "--"])
        .arg(SM2_PDF)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["details"], d["details"]);
    assert_eq!(cli["verifyResult"], true);

    // A tampered twin fails, and the CLI's exit status says so.
    let tampered = "tests/data/pdf/generated/sm2-cms-pkcs7oid-detached-tampered.pdf";
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_hutong"))
        .arg("--data-dir")
        .arg(srv.data_dir.path())
        .arg("verify")
        .arg(tampered)
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(2));
    srv.stop().await;
}

#[tokio::test]
async fn upload_errors_have_their_codes() {
    let srv = common::start_with(|c| c.api.max_file_bytes = 64 * 1024).await;
    let m = srv.add_member("online");
    // Not a PDF or OFD, whatever its name.
    let text = b"just some text, not a document".to_vec();
    let (s, v) = srv
        .upload_document(&m.signed_upload_params(&text), "fake.pdf", text)
        .await;
    assert_eq!((s, v["code"].as_str().unwrap()), (415, "10004"), "{v}");
    // The file is part of what is signed.
    let pdf = std::fs::read(SM2_PDF).unwrap();
    let mut other = pdf.clone();
    other.push(b'\n');
    let (s, v) = srv
        .upload_document(&m.signed_upload_params(&pdf), "a.pdf", other)
        .await;
    assert_eq!((s, v["code"].as_str().unwrap()), (401, "20003"), "{v}");
    // Over the configured limit.
    let big = vec![b'%'; 70 * 1024];
    let (s, v) = srv
        .upload_document(&m.signed_upload_params(&big), "big.pdf", big)
        .await;
    assert_eq!((s, v["code"].as_str().unwrap()), (413, "10003"), "{v}");
    // No file part.
    let form = reqwest::multipart::Form::new().text("version", "1.0");
    let resp = srv
        .client
        .post(format!("{}/api/v1/document/verify", srv.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("file"));
    srv.stop().await;
}
