//! The audit log from outside (SPEC §6.1): one entry per API call over real HTTPS; an export
//! checked by the independent verifier in `docs/verify_audit.py` (Python, public `gmssl`) and
//! by `hutong audit verify`, untouched and tampered; proofs checked by an RFC 9162 verifier
//! written here; every acknowledged call present after a SIGKILL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::daemon::{self, Daemon};
use common::{Member, TestServer, canonical};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

type Hash = [u8; 32];

fn sm3(parts: &[&[u8]]) -> Hash {
    use sm3::Digest;
    let mut h = sm3::Sm3::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn leaf_hash(leaf: &[u8]) -> Hash {
    sm3(&[&[0], leaf])
}

fn node(l: &Hash, r: &Hash) -> Hash {
    sm3(&[&[1], l, r])
}

/// RFC 9162 §2.1.1 MTH, recursively.
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => sm3(&[]),
        1 => d[0],
        n => {
            // The largest power of two smaller than n.
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// The API entries appended since `from`, parsed from their leaves.
fn api_entries(srv: &TestServer, from: u64) -> Vec<Value> {
    srv.state
        .store
        .audit_leaves(from, u64::MAX)
        .map(|r| serde_json::from_slice::<Value>(&r.unwrap().1).unwrap())
        .filter(|e| e["kind"] == "api")
        .collect()
}

fn log_size(srv: &TestServer) -> u64 {
    srv.state.store.audit_frontier().unwrap().size
}

async fn post(srv: &TestServer, path: &str, body: Vec<u8>) -> (String, Value) {
    let (_, headers, body) = srv.post_raw(&format!("/api/v1/{path}"), body).await;
    let rid = headers["x-request-id"].to_str().unwrap().to_string();
    (rid, serde_json::from_slice(&body).unwrap())
}

fn signed(m: &Member, extra: Value) -> Vec<u8> {
    serde_json::to_vec(&m.request(extra)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_interface_call_is_one_entry_with_its_action_code_and_request_id() {
    let srv = common::start().await;
    let m = srv.add_member("testing");
    let stranger = Member {
        app_id: "HT00000000000000".into(),
        ..srv.add_member("testing")
    };
    let mut bad_sign = m.request(json!({}));
    bad_sign.insert("sign".into(), B64.encode([7u8; 64]).into());
    let replayed = m.request(json!({}));
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("system/info", signed(&m, json!({}))),
        ("system/info", serde_json::to_vec(&bad_sign).unwrap()),
        ("system/info", signed(&stranger, json!({}))),
        ("system/info", serde_json::to_vec(&replayed).unwrap()),
        ("system/info", serde_json::to_vec(&replayed).unwrap()),
        ("system/info", b"{not json".to_vec()),
        ("seal/filing", signed(&m, json!({"bizType": 1}))),
        (
            "seal/state",
            signed(&m, json!({"sealCode": "340000011", "state": 4})),
        ),
        (
            "seal/query",
            signed(
                &m,
                json!({"orgCode": "91340000MA2N0000X1", "sealType": "0"}),
            ),
        ),
        ("cloud/auth/apply", signed(&m, json!({"sealCode": "x"}))),
        ("cloud/auth/result", signed(&m, json!({"authId": "a"}))),
        ("cloud/sign", signed(&m, json!({"type": "P1"}))),
        (
            "ukey/sign/verify",
            signed(&m, json!({"signId": "00", "sealCode": "340000011"})),
        ),
    ];
    let mut seen = Vec::new();
    for (path, body) in cases.drain(..) {
        let before = log_size(&srv);
        let params: Option<Map<String, Value>> = serde_json::from_slice(&body).ok();
        let (rid, answer) = post(&srv, path, body).await;
        let code: i64 = answer["code"].as_str().unwrap().parse().unwrap();
        let new = api_entries(&srv, before);
        assert_eq!(new.len(), 1, "{path} answered {answer} and left {new:?}");
        let e = &new[0];
        assert_eq!(e["action"], path.replace('/', "."), "{e}");
        assert_eq!(e["code"], code, "{path}: {e}");
        let result = match code {
            0 => "ok",
            50000 => "error",
            _ => "denied",
        };
        assert_eq!(e["result"], result, "{path}: {e}");
        assert_eq!(e["requestId"], rid.as_str());
        assert_eq!(e["client"], "127.0.0.1");
        assert!(e["latencyMs"].as_i64().unwrap() >= 0);
        // Nothing personal in these parameters: the digest is SM3 of the plain canonical string.
        match params {
            Some(p) => assert_eq!(
                e["paramsDigest"],
                hex::encode(sm3(&[canonical(&p).as_bytes()])),
                "{path}"
            ),
            None => assert!(e["paramsDigest"].is_null()),
        }
        seen.push((path, code));
    }
    // The refusals the cases were built for, so the entries above cover them.
    let codes: Vec<i64> = seen.iter().map(|s| s.1).collect();
    for expected in [0, 20003, 20001, 20005, 10001] {
        assert!(
            codes.contains(&expected),
            "{expected} not exercised: {seen:?}"
        );
    }
    assert_eq!(codes[3..5], [0, 20005]);

    // The multipart interface too, with a file that is neither PDF nor OFD.
    let before = log_size(&srv);
    let file = b"plain text, not a document".to_vec();
    let mut p = m.request(json!({}));
    p.remove("sign");
    p.insert("file".into(), hutong::crypto::sm::sm3_hex(&file).into());
    let sig = m.sign(&canonical(&p));
    p.remove("file");
    let mut form = reqwest::multipart::Form::new().text("sign", sig);
    for (k, v) in &p {
        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        form = form.text(k.clone(), v);
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(file).file_name("x.txt"),
    );
    let answer: Value = srv
        .client
        .post(format!("{}/api/v1/document/verify", srv.base))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = api_entries(&srv, before);
    assert_eq!(answer["code"], "10004", "{answer}");
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(
        (&new[0]["action"], &new[0]["code"]),
        (&json!("document.verify"), &json!(10004))
    );
    srv.stop().await;
}

// ---- the exported log, checked from outside ----

fn python_verifier() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/verify_audit.py");
    let probe = Command::new("python3")
        .args(["-c", "import gmssl"])
        .output()
        .expect("python3 is needed for the independent audit verifier");
    assert!(
        probe.status.success(),
        "the independent verifier needs the gmssl package: python3 -m pip install gmssl"
    );
    script
}

/// Runs the Python verifier; (success, stdout + stderr).
fn verify_with_python(cert: &Path, export: &Path) -> (bool, String) {
    let out = Command::new("python3")
        .arg(python_verifier())
        .arg("--cert")
        .arg(cert)
        .arg(export)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "verifier could not run: {text}"
    );
    (out.status.success(), text)
}

fn verify_with_hutong(dir: &Path, export: &Path) -> (bool, String) {
    let out = daemon::hutong(dir)
        .args(["audit", "verify", "--from-export"])
        .arg(export)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn export(dir: &Path, out: &Path, from: Option<i64>) -> Vec<String> {
    let mut cmd = daemon::hutong(dir);
    cmd.args(["audit", "export", "--out"]).arg(out);
    if let Some(f) = from {
        cmd.args(["--from", &f.to_string()]);
    }
    daemon::run_ok(&mut cmd);
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn cert_path(dir: &Path) -> PathBuf {
    dir.join("keys/platform.crt")
}

/// A served instance that answered some calls, then stopped cleanly (so a checkpoint covers
/// everything).
async fn a_log_with_calls(dir: &Path, calls: usize) -> Daemon {
    let (key, key_file) = daemon::new_member_key(dir);
    let m = daemon::add_system(dir, &key_file, key, "testing");
    let d = daemon::serve(dir);
    let (client, base) = d.client(dir);
    for _ in 0..calls {
        let v = daemon::call(&client, &base, &m.request(json!({}))).await;
        assert_eq!(v["code"], "0", "{v}");
    }
    d
}

fn stop(mut d: Daemon) {
    d.signal(libc::SIGTERM);
    assert!(d.child.wait().unwrap().success());
}

fn with_line(lines: &[String], i: usize, new: Option<String>) -> Vec<String> {
    let mut v = lines.to_vec();
    match new {
        Some(l) => v[i] = l,
        None => {
            v.remove(i);
        }
    }
    v
}

fn entry_lines(lines: &[String]) -> Vec<usize> {
    (0..lines.len())
        .filter(|&i| lines[i].contains("\"type\":\"entry\""))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_verifies_independently_and_each_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = a_log_with_calls(dir.path(), 6).await;
    stop(d);
    let file = dir.path().join("audit.jsonl");
    let lines = export(dir.path(), &file, None);
    let cert = cert_path(dir.path());

    let (ok, text) = verify_with_python(&cert, &file);
    assert!(ok, "{text}");
    let n_entries = entry_lines(&lines).len();
    assert!(text.contains(&format!("OK: {n_entries} entries")), "{text}");
    assert!(!text.contains("not yet signed"), "{text}");
    let (ok, text) = verify_with_hutong(dir.path(), &file);
    assert!(ok, "{text}");

    let entries = entry_lines(&lines);
    let mid = entries[entries.len() / 2];
    // One byte of one leaf: its API code 0 becomes 1 (still canonical JSON).
    let altered = {
        let mut v: Value = serde_json::from_str(&lines[mid]).unwrap();
        let leaf = B64.decode(v["leaf"].as_str().unwrap()).unwrap();
        let text = String::from_utf8(leaf).unwrap();
        assert!(text.contains("\"code\":0") || text.contains("\"detail\":\""));
        let changed = if text.contains("\"code\":0") {
            text.replacen("\"code\":0", "\"code\":1", 1)
        } else {
            text.replacen("\"detail\":\"", "\"detail\":\"x", 1)
        };
        v["leaf"] = B64.encode(changed).into();
        v.to_string()
    };
    let forged_cp = {
        let i = (0..lines.len())
            .find(|&i| lines[i].contains("\"type\":\"checkpoint\""))
            .unwrap();
        let mut v: Value = serde_json::from_str(&lines[i]).unwrap();
        let t = v["text"].as_str().unwrap().to_string();
        let mut parts: Vec<String> = t.lines().map(String::from).collect();
        parts[1] = (parts[1].parse::<u64>().unwrap() + 1).to_string();
        v["text"] = format!("{}\n", parts.join("\n")).into();
        (i, v.to_string())
    };
    let other_key_cp = {
        // A checkpoint signed correctly, but by another SM2 key.
        let i = forged_cp.0;
        let mut v: Value = serde_json::from_str(&lines[i]).unwrap();
        let other = hutong::crypto::sm::Sm2KeyPair::generate();
        v["signature"] = B64
            .encode(other.sign(v["text"].as_str().unwrap().as_bytes()))
            .into();
        v.to_string()
    };
    let swapped = {
        let mut v = lines.clone();
        v.swap(entries[1], entries[2]);
        v
    };
    let inserted = {
        let mut v = lines.clone();
        v.insert(entries[2], lines[entries[1]].clone());
        v
    };
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "a changed leaf",
            with_line(&lines, mid, Some(altered)),
            "root",
        ),
        (
            "a dropped entry",
            with_line(&lines, entries[1], None),
            "seq",
        ),
        ("two swapped entries", swapped, "seq"),
        ("an inserted entry", inserted, "seq"),
        (
            "a forged checkpoint",
            with_line(&lines, forged_cp.0, Some(forged_cp.1)),
            "signature",
        ),
        (
            "a checkpoint by another key",
            with_line(&lines, forged_cp.0, Some(other_key_cp)),
            "signature",
        ),
    ];
    for (what, tampered, says) in cases {
        let f = dir.path().join("tampered.jsonl");
        std::fs::write(&f, tampered.join("\n") + "\n").unwrap();
        let (ok, text) = verify_with_python(&cert, &f);
        assert!(!ok, "{what} passed the independent verifier");
        assert!(
            text.contains("line ") && text.contains(says),
            "{what}: {text}"
        );
        let (ok, text) = verify_with_hutong(dir.path(), &f);
        assert!(!ok, "{what} passed hutong audit verify: {text}");
    }

    // A range export starts from a signed anchor and verifies on its own.
    let second_entry_at = {
        let v: Value = serde_json::from_str(&lines[*entries.last().unwrap()]).unwrap();
        let leaf: Value =
            serde_json::from_slice(&B64.decode(v["leaf"].as_str().unwrap()).unwrap()).unwrap();
        leaf["at"].as_i64().unwrap()
    };
    let part = dir.path().join("part.jsonl");
    let part_lines = export(dir.path(), &part, Some(second_entry_at));
    assert!(
        part_lines[0].contains("\"type\":\"anchor\""),
        "{part_lines:?}"
    );
    let (ok, text) = verify_with_python(&cert, &part);
    assert!(ok, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_check_out_with_an_rfc9162_verifier_written_here() {
    let dir = tempfile::tempdir().unwrap();
    let d = a_log_with_calls(dir.path(), 9).await;
    stop(d);
    let lines = export(dir.path(), &dir.path().join("all.jsonl"), None);
    let leaves: Vec<Hash> = lines
        .iter()
        .filter(|l| l.contains("\"type\":\"entry\""))
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            leaf_hash(&B64.decode(v["leaf"].as_str().unwrap()).unwrap())
        })
        .collect();
    let n = leaves.len() as u64;
    assert!(n >= 12, "{n}");
    let proof = |args: &[String]| -> Value {
        let mut cmd = daemon::hutong(dir.path());
        cmd.args(["audit", "proof"]).args(args);
        serde_json::from_str(daemon::run_ok(&mut cmd).trim()).unwrap()
    };
    let hashes = |v: &Value| -> Vec<Hash> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
            .collect()
    };
    let b64 = |h: &Hash| B64.encode(h);

    for (m, size) in [(0, n), (n - 1, n), (5, 11), (6, 7), (3, 4)] {
        let p = proof(&[
            "--seq".into(),
            m.to_string(),
            "--size".into(),
            size.to_string(),
        ]);
        let root = mth(&leaves[..size as usize]);
        assert_eq!(p["rootHash"], b64(&root));
        // RFC 9162 §2.1.3.2.
        let (mut fnode, mut snode) = (m, size - 1);
        let mut r = leaves[m as usize];
        for h in hashes(&p["inclusionPath"]) {
            assert!(snode != 0, "proof too long");
            if fnode & 1 == 1 || fnode == snode {
                r = node(&h, &r);
                if fnode & 1 == 0 {
                    while fnode & 1 == 0 && fnode != 0 {
                        fnode >>= 1;
                        snode >>= 1;
                    }
                }
            } else {
                r = node(&r, &h);
            }
            fnode >>= 1;
            snode >>= 1;
        }
        assert_eq!((snode, r), (0, root), "inclusion of {m} in {size}");
    }

    for (a, b) in [(1, n), (4, 7), (6, 8), (7, 7), (3, n), (8, 13)] {
        let p = proof(&["--consistency".into(), a.to_string(), b.to_string()]);
        let (r1, r2) = (mth(&leaves[..a as usize]), mth(&leaves[..b as usize]));
        assert_eq!(
            (&p["rootHash1"], &p["rootHash2"]),
            (&b64(&r1).into(), &b64(&r2).into())
        );
        let path = hashes(&p["consistencyPath"]);
        if a == b {
            assert!(path.is_empty());
            continue;
        }
        // RFC 9162 §2.1.4.2.
        let mut path = path;
        if a.is_power_of_two() {
            path.insert(0, r1);
        }
        let (mut fnode, mut snode) = (a - 1, b - 1);
        while fnode & 1 == 1 {
            fnode >>= 1;
            snode >>= 1;
        }
        let (mut fr, mut sr) = (path[0], path[0]);
        for c in &path[1..] {
            assert!(snode != 0, "consistency proof too long");
            if fnode & 1 == 1 || fnode == snode {
                fr = node(c, &fr);
                sr = node(c, &sr);
                if fnode & 1 == 0 {
                    while fnode & 1 == 0 && fnode != 0 {
                        fnode >>= 1;
                        snode >>= 1;
                    }
                }
            } else {
                sr = node(&sr, c);
            }
            fnode >>= 1;
            snode >>= 1;
        }
        assert_eq!((fr, sr, snode), (r1, r2, 0), "consistency {a} -> {b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_call_is_in_the_log_after_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (key, key_file) = daemon::new_member_key(dir.path());
    let m = daemon::add_system(dir.path(), &key_file, key, "testing");
    let mut d = daemon::serve(dir.path());
    let (client, base) = d.client(dir.path());
    let mut acknowledged = Vec::new();
    for _ in 0..40 {
        let resp = client
            .post(format!("{base}/api/v1/system/info"))
            .json(&m.request(json!({})))
            .send()
            .await
            .unwrap();
        let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["code"], "0");
        acknowledged.push(rid);
    }
    d.signal(libc::SIGKILL);
    d.child.wait().unwrap();

    let file = dir.path().join("after-kill.jsonl");
    let lines = export(dir.path(), &file, None);
    let logged: std::collections::HashSet<String> = lines
        .iter()
        .filter(|l| l.contains("\"type\":\"entry\""))
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let leaf: Value =
                serde_json::from_slice(&B64.decode(v["leaf"].as_str().unwrap()).unwrap()).unwrap();
            leaf["requestId"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|r| !logged.contains(*r))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not logged: {missing:?}"
    );
    // The entries after the last checkpoint are recomputed, just not signed yet.
    let (ok, text) = verify_with_python(&cert_path(dir.path()), &file);
    assert!(ok && text.contains("not yet signed"), "{text}");

    // The next start signs a checkpoint over them and the whole log verifies.
    stop(daemon::serve(dir.path()));
    let out = daemon::hutong(dir.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The same for a script.
    let out = daemon::hutong(dir.path())
        .args(["audit", "verify", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["problem"].is_null() && report["treeSize"].as_u64() > Some(0),
        "{report}"
    );
    let f = dir.path().join("after-restart.jsonl");
    let lines = export(dir.path(), &f, None);
    let (ok, text) = verify_with_python(&cert_path(dir.path()), &f);
    assert!(ok, "{text}");
    // Key operations are their own kind: created on the first start, unwrapped on each later one.
    let keyops: Vec<(String, String)> = lines
        .iter()
        .filter(|l| l.contains("\"type\":\"entry\""))
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            serde_json::from_slice::<Value>(&B64.decode(v["leaf"].as_str().unwrap()).unwrap())
                .unwrap()
        })
        .filter(|e| e["kind"] == "key")
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let ok = |a: &str| (a.to_string(), "ok".to_string());
    assert_eq!(keyops, [ok("key.create"), ok("key.unwrap")]);
}
