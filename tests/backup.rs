//! Backups of SPEC §6.2 with the real binary: taken through the control socket of a serving
//! appliance while members file seals, checked, and restored into a new data directory that
//! serves the same systems and seals and whose audit log verifies. Damaged files and a key
//! store that is not the backup's are refused with a message that says why.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;

use base64::Engine;
use common::daemon::hutong;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn org_code(i: usize) -> String {
    let first17 = format!("91340000MB{i:07}");
    let check = hutong::domain::codes::uscc_check_char(first17.as_bytes()).unwrap();
    format!("{first17}{}", check as char)
}

fn run(cmd: &mut std::process::Command) -> Output {
    cmd.output().expect("run hutong")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A new data directory holding only the key store the `file` provider needs: the KEK and
/// the tenants' keys (as the runbook's `tar` of `keys/` carries them).
fn key_store_copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("tar -C \"$1\" -cf - keys/kek.key $(cd \"$1\" && ls -d keys/tenants 2>/dev/null) | tar -C \"$2\" -xpf -")
        .args(["-", &from.display().to_string(), &to.display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// Files seals for one member until `stop`; every acknowledged seal code goes to `acked`
/// together with whether the backup had started when it was sent.
async fn file_seals(
    server: Arc<common::TestServer>,
    member: common::Member,
    i: usize,
    acked: Arc<Mutex<Vec<(String, bool)>>>,
    backup_started: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    let kit = hutong::ses::kit::SealKit::generate(&format!("备份测试单位{i}")).unwrap();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let name = format!("备份测试章{i}-{n}");
        let der = kit
            .seal_v4(&kit.params(&name, &format!("BK-{i}-{n}"), 365, vec![0x89; 512]))
            .unwrap();
        let sent_after_start = backup_started.load(Ordering::SeqCst);
        let req = member.request(json!({
            "name": name, "sealType": "01", "possessor": format!("备份测试单位{i}"),
            "possessorCertNo": org_code(i), "possessorType": 1, "bizType": 1, "certType": 2,
            "sealData": base64::engine::general_purpose::STANDARD.encode(&der),
        }));
        let (status, body) = server.post("/api/v1/seal/filing", &req).await;
        assert_eq!((status, &body["code"]), (200, &json!("0")), "{body}");
        let code = body["data"].as_str().unwrap().to_string();
        acked.lock().unwrap().push((code, sent_after_start));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_concurrent_writes_restores_every_write_acknowledged_before_it() {
    let server = Arc::new(common::start().await);
    let data = server.data_dir.path().to_path_buf();
    let members: Vec<_> = (0..4).map(|_| server.add_member("online")).collect();
    let app_ids: Vec<String> = members.iter().map(|m| m.app_id.clone()).collect();
    let reader = server.add_member("online");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (i, m) in members.into_iter().enumerate() {
        writers.push(tokio::spawn(file_seals(
            server.clone(),
            m,
            i,
            acked.clone(),
            started.clone(),
            stop.clone(),
        )));
    }
    while acked.lock().unwrap().len() < 40 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Everything acknowledged from here on was acknowledged before the backup started.
    started.store(true, Ordering::SeqCst);
    let before: BTreeSet<String> = acked
        .lock()
        .unwrap()
        .iter()
        .map(|(c, _)| c.clone())
        .collect();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("hutong.hbk");
    let (d, f) = (data.clone(), file.clone());
    let out = tokio::task::spawn_blocking(move || {
        run(hutong(&d).args(["backup", "--json", "--out"]).arg(&f))
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Writes went on while the backup was taken, and after it.
    let during = acked.lock().unwrap().len();
    while acked.lock().unwrap().len() < during + 8 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let all: BTreeSet<String> = acked
        .lock()
        .unwrap()
        .iter()
        .map(|(c, _)| c.clone())
        .collect();

    // The backup's own entry is in the serving log, after the tree the backup holds.
    let tree = summary["auditTreeSize"].as_u64().unwrap();
    let recent = server.state.store.recent_audit_leaves(10_000).unwrap();
    let entry = recent
        .iter()
        .find(|(_, leaf)| String::from_utf8_lossy(leaf).contains("\"platform.backup\""))
        .expect("platform.backup entry");
    assert!(
        entry.0 >= tree,
        "the backup entry {} is inside the backed-up tree {tree}",
        entry.0
    );

    let out = run(hutong(&data).args(["backup", "--verify"]).arg(&file));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("内容已解密校验"), "{}", text(&out));

    let restored = work.path().join("restored");
    key_store_copy(&data, &restored);
    let out = run(hutong(&restored).arg("restore").arg(&file));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(hutong(&restored).args(["audit", "verify"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("审计日志完整"), "{}", text(&out));

    let store = hutong::store::Store::open(&restored).unwrap();
    let mut missing = Vec::new();
    let mut later = 0;
    for code in &all {
        match store.get_seal(code).unwrap() {
            Some(_) if !before.contains(code) => later += 1,
            Some(_) => {}
            None if before.contains(code) => missing.push(code.clone()),
            None => {}
        }
    }
    assert!(
        missing.is_empty(),
        "acknowledged before the backup, not restored: {missing:?}"
    );
    assert!(
        later < all.len() - before.len(),
        "the backup holds writes made after it ended"
    );
    for id in &app_ids {
        assert!(
            store.get_system(id).unwrap().is_some(),
            "system {id} restored"
        );
    }
    let first_after = store
        .audit_leaf(tree)
        .unwrap()
        .expect("an entry after the backup's tree");
    assert!(
        String::from_utf8_lossy(&first_after).contains("\"platform.restore\""),
        "the restore is the first entry after the backed-up tree"
    );
    drop(store);
    Arc::try_unwrap(server)
        .ok()
        .expect("one owner")
        .stop()
        .await;

    // The restored directory serves: a member registered before the backup is answered.
    let daemon = common::daemon::serve(&restored);
    let (client, base) = daemon.client(&restored);
    let info = common::daemon::call(&client, &base, &reader.request(json!({}))).await;
    assert_eq!(info["code"], "0", "{info}");
    let mut child = daemon.child;
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `docs/verify_backup.py`; (verified, exit status).
fn python_verifies(file: &Path, cert: Option<&Path>) -> (bool, i32) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/verify_backup.py");
    let probe = std::process::Command::new("python3")
        .args(["-c", "import gmssl"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "the independent verifier needs python3 and gmssl: python3 -m pip install gmssl"
    );
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script);
    if let Some(c) = cert {
        cmd.arg("--cert").arg(c);
    }
    let out = cmd.arg(file).output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        matches!(code, 0 | 1),
        "verifier could not run: {}",
        text(&out)
    );
    (out.status.success(), code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_backups_and_foreign_key_stores_are_refused_by_name() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    common::daemon::run_ok(hutong(&data).arg("init"));
    let file = work.path().join("b.hbk");
    // No server runs: the CLI takes the backup against the store itself.
    common::daemon::run_ok(hutong(&data).args(["backup", "--out"]).arg(&file));
    let again = run(hutong(&data).args(["backup", "--out"]).arg(&file));
    assert!(
        !again.status.success(),
        "an existing backup file is never replaced"
    );
    let bytes = std::fs::read(&file).unwrap();

    let refused = |name: &str, content: &[u8], expect: &str| {
        let f = work.path().join(name);
        std::fs::write(&f, content).unwrap();
        let out = run(hutong(&data).args(["backup", "--verify"]).arg(&f));
        assert!(!out.status.success(), "{name} accepted by --verify");
        assert!(text(&out).contains(expect), "{name}: {}", text(&out));
        let target = work.path().join(format!("restore-{name}"));
        key_store_copy(&data, &target);
        let out = run(hutong(&target).arg("restore").arg(&f));
        assert!(!out.status.success(), "{name} restored");
        assert!(text(&out).contains(expect), "{name}: {}", text(&out));
        assert!(
            !target.join("db").exists(),
            "{name}: a refused restore left a database"
        );
    };
    // The independent verifier of docs/ agrees, with nothing but the platform certificate.
    let cert = data.join("keys/platform.crt");
    assert_eq!(python_verifies(&file, Some(&cert)), (true, 0));
    refused("truncated", &bytes[..bytes.len() * 2 / 3], "被截断");
    let mut flipped = bytes.clone();
    let mid = bytes.len() / 2;
    flipped[mid] ^= 0x40;
    refused("flipped", &flipped, "摘要不符");
    refused(
        "not-a-backup",
        b"%PDF-1.7 not a backup at all",
        "不是 hutong 备份文件",
    );
    let mut resigned = bytes.clone();
    let n = resigned.len();
    resigned[n - 3] ^= 1;
    refused("bad-signature", &resigned, "签名验证失败");
    for name in ["truncated", "flipped", "not-a-backup", "bad-signature"] {
        assert!(
            !python_verifies(&work.path().join(name), Some(&cert)).0,
            "{name}"
        );
    }

    // A key store whose KEK is another one: named as such, nothing written.
    let other = work.path().join("other");
    common::daemon::run_ok(hutong(&other).arg("init"));
    let foreign = work.path().join("foreign-kek");
    key_store_copy(&other, &foreign);
    let out = run(hutong(&foreign).arg("restore").arg(&file));
    assert!(!out.status.success());
    assert!(text(&out).contains("无法解封备份密钥"), "{}", text(&out));
    assert!(!foreign.join("db").exists());
    // Another platform's certificate: the Python verifier refuses it too.
    assert_eq!(
        python_verifies(&file, Some(&other.join("keys/platform.crt"))),
        (false, 1)
    );
    // Another platform's whole key store: its certificate is not the backup's.
    std::fs::remove_dir_all(other.join("db")).unwrap();
    let out = run(hutong(&other).arg("restore").arg(&file));
    assert!(!out.status.success());
    assert!(text(&out).contains("备份不属于本平台"), "{}", text(&out));
    // Over an existing store: refused.
    let out = run(hutong(&data).arg("restore").arg(&file));
    assert!(!out.status.success());
    assert!(text(&out).contains("拒绝覆盖"), "{}", text(&out));
    // Without any KEK: the message says to copy the key store first.
    let bare = work.path().join("bare");
    let out = run(hutong(&bare).arg("restore").arg(&file));
    assert!(!out.status.success());
    assert!(text(&out).contains("密钥库"), "{}", text(&out));
    assert!(!bare.join("db").exists());
}

async fn metrics_of(server: &common::TestServer) -> String {
    server
        .monitoring_get("/metrics")
        .await
        .text()
        .await
        .unwrap()
}

/// `backup.dir` and `backup.keep`: the scheduled run (here started by `backup --scheduled`)
/// writes, checks and prunes, and `/metrics` tells monitoring how old the last good one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_are_checked_pruned_and_exposed_to_monitoring() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let b = backups.clone();
    let server = common::start_with(move |c| {
        c.backup.dir = Some(b);
        c.backup.keep = 2;
    })
    .await;
    let data = server.data_dir.path().to_path_buf();
    let metrics = metrics_of(&server).await;
    assert!(
        !metrics.contains("hutong_backup_age_seconds"),
        "no backup yet:\n{metrics}"
    );
    for _ in 0..3 {
        let d = data.clone();
        let out = tokio::task::spawn_blocking(move || {
            run(hutong(&d).args(["backup", "--scheduled", "--json"]))
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let status: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status["verified"], true, "{status}");
        assert!(Path::new(status["file"].as_str().unwrap()).exists());
    }
    let mut left: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left.len(), 2, "keep = 2: {left:?}");
    assert!(
        left.iter()
            .all(|n| n.starts_with("hutong-") && n.ends_with(".hbk"))
    );
    let metrics = metrics_of(&server).await;
    assert!(metrics.contains("hutong_backup_age_seconds "), "{metrics}");
    assert!(metrics.contains("hutong_backup_last_run_ok 1"), "{metrics}");
    // Each run is in the audit log.
    let runs = server
        .state
        .store
        .recent_audit_leaves(100)
        .unwrap()
        .iter()
        .filter(|(_, l)| String::from_utf8_lossy(l).contains("\"platform.backup\""))
        .count();
    assert_eq!(runs, 3);
    server.stop().await;
}
