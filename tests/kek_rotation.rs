//! `hutong keys rotate kek` with the `file` provider against the served appliance (its own
//! process): the rotation runs in the server, which keeps serving; the old KEK stays until a
//! backup verifies under the new one, and only then is it destroyed; a restart opens the
//! store under the new KEK and the audit log records both acts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;

use common::daemon::{self, Daemon, hutong, run_ok};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stop(mut d: Daemon) {
    d.signal(libc::SIGTERM);
    assert!(d.child.wait().unwrap().success());
}

fn backup(data: &Path, file: &Path) {
    run_ok(hutong(data).args(["backup", "--out"]).arg(file));
}

fn finish(data: &Path, file: &Path) -> Output {
    hutong(data)
        .args(["keys", "rotate", "kek", "--finish", "--verified-backup"])
        .arg(file)
        .output()
        .unwrap()
}

async fn answers(d: &Daemon, data: &Path, m: &common::Member) {
    let (client, base) = d.client(data);
    let v = daemon::call(&client, &base, &m.request(json!({}))).await;
    assert_eq!(v["code"], "0", "{v}");
}

#[tokio::test]
async fn the_old_kek_is_destroyed_only_after_a_backup_verifies_under_the_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    run_ok(hutong(&data).arg("init"));
    let (key, key_file) = daemon::new_member_key(tmp.path());
    let m = daemon::add_system(&data, &key_file, key, "testing");
    let d = daemon::serve(&data);
    answers(&d, &data, &m).await;
    let before = tmp.path().join("before.hbk");
    backup(&data, &before);
    let old_kek = std::fs::read(data.join("keys/kek.key")).unwrap();

    let out = run_ok(hutong(&data).args(["keys", "rotate", "kek", "--json"]));
    let r: Value = serde_json::from_str(&out).unwrap();
    let retired = data.join("keys").join(r["retiredName"].as_str().unwrap());
    assert_eq!(
        std::fs::read(&retired).unwrap(),
        old_kek,
        "the old KEK is kept"
    );
    assert_ne!(std::fs::read(data.join("keys/kek.key")).unwrap(), old_kek);
    assert_eq!(r["rewrapped"], json!(["platform.key.wrapped"]));
    answers(&d, &data, &m).await;
    // A backup from before the rotation still opens: the retired KEK unwraps its key.
    run_ok(hutong(&data).args(["backup", "--verify"]).arg(&before));

    // That backup does not prove the new KEK: refused, the old KEK stays.
    let out = finish(&data, &before);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("未能在新 KEK 下完整校验"),
        "{}",
        text(&out)
    );
    assert!(retired.exists());
    let out = hutong(&data)
        .args(["keys", "rotate", "kek"])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("尚未销毁"),
        "{}",
        text(&out)
    );

    let after = tmp.path().join("after.hbk");
    backup(&data, &after);
    let out = finish(&data, &after);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!retired.exists(), "the old KEK is gone");
    assert!(!data.join("keys/kek-retired.json").exists());
    answers(&d, &data, &m).await;
    // Older backups went with the old KEK, as the runbook warns.
    let out = hutong(&data)
        .args(["backup", "--verify"])
        .arg(&before)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));

    // A restart opens the platform key under the new KEK; the log holds both acts.
    stop(d);
    let d = daemon::serve(&data);
    answers(&d, &data, &m).await;
    stop(d);
    run_ok(hutong(&data).args(["audit", "verify"]));
    let export = tmp.path().join("audit.jsonl");
    run_ok(
        hutong(&data)
            .args(["audit", "export", "--out"])
            .arg(&export),
    );
    let lines = std::fs::read_to_string(&export).unwrap();
    let actions: Vec<(String, String)> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "entry")
        .map(|v| {
            use base64::Engine as _;
            let leaf = base64::engine::general_purpose::STANDARD
                .decode(v["leaf"].as_str().unwrap())
                .unwrap();
            let e: Value = serde_json::from_slice(&leaf).unwrap();
            (
                e["action"].as_str().unwrap().to_string(),
                e["result"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(a, _)| a.starts_with("key.rotate_kek") || a.starts_with("key.destroy_kek"))
        .collect();
    let pairs: Vec<(&str, &str)> = actions
        .iter()
        .map(|(a, r)| (a.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("key.rotate_kek", "ok"),
            ("key.destroy_kek", "denied"),
            ("key.rotate_kek", "error"),
            ("key.destroy_kek", "ok"),
        ]
    );

    // The new backup restores with the rotated key store.
    let restored = tmp.path().join("restored");
    std::fs::create_dir_all(restored.join("keys")).unwrap();
    std::fs::copy(data.join("keys/kek.key"), restored.join("keys/kek.key")).unwrap();
    run_ok(hutong(&restored).arg("restore").arg(&after));
    run_ok(hutong(&restored).args(["audit", "verify"]));
}
