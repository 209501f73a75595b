//! The real `hutong` binary: management commands with and without a running server, crash
//! durability (SIGKILL right after a 200), bootstrap credentials printed once, and graceful
//! SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;

use common::daemon::{add_system, call, hutong, new_member_key, run_ok, serve};
use serde_json::{Value, json};
use std::io::Write;
use std::process::Stdio;

#[test]
fn management_commands_work_without_a_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = run_ok(hutong(&data).arg("init"));
    assert!(
        out.contains("secadmin"),
        "init prints the bootstrap administrator: {out}"
    );
    assert!(
        hutong(&data).arg("init").output().unwrap().status.code() != Some(0),
        "init runs once"
    );

    let (key, key_file) = new_member_key(tmp.path());
    let m = add_system(&data, &key_file, key, "testing");
    assert!(m.app_id.starts_with("HT"));
    let list: Value =
        serde_json::from_str(run_ok(hutong(&data).args(["system", "list", "--json"])).trim())
            .unwrap();
    assert_eq!(list[0]["appId"], m.app_id.as_str());
    assert_eq!(list[0]["state"], "testing");
    run_ok(hutong(&data).args([
        "system",
        "set-state",
        &m.app_id,
        "suspended",
        "--reason",
        "违规调用",
    ]));
    let list: Value =
        serde_json::from_str(run_ok(hutong(&data).args(["system", "list", "--json"])).trim())
            .unwrap();
    assert_eq!(list[0]["state"], "suspended");
    // Scripts get JSON from the commands that change things too.
    let changed: Value = serde_json::from_str(
        run_ok(hutong(&data).args([
            "system",
            "set-state",
            &m.app_id,
            "testing",
            "--reason",
            "整改完成",
            "--json",
        ]))
        .trim(),
    )
    .unwrap();
    assert_eq!(
        (changed["appId"].as_str(), changed["state"].as_str()),
        (Some(m.app_id.as_str()), Some("testing")),
        "{changed}"
    );
    let quota: Value = serde_json::from_str(
        run_ok(hutong(&data).args([
            "quota",
            "set",
            &m.app_id,
            "--kind",
            "signatures",
            "--limit",
            "10",
            "--from",
            "2026-01-01",
            "--until",
            "2036-12-31",
            "--json",
        ]))
        .trim(),
    )
    .unwrap();
    assert_eq!(quota["limit"], 10, "{quota}");
    let cleared = run_ok(hutong(&data).args(["quota", "clear", &m.app_id, "--json"]));
    serde_json::from_str::<Value>(cleared.trim()).unwrap();

    let status: Value =
        serde_json::from_str(run_ok(hutong(&data).args(["keys", "status", "--json"])).trim())
            .unwrap();
    assert_eq!(status["provider"], "file");

    let mut child = hutong(&data)
        .args([
            "admin",
            "create",
            "--role",
            "auditor",
            "--username",
            "audit1",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Audit-Password-9\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    // Weak passwords and unknown roles are refused with a message.
    let out = hutong(&data)
        .args([
            "admin",
            "create",
            "--role",
            "operator",
            "--username",
            "op1",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"weak\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("密码"));
}

#[tokio::test]
async fn nothing_acknowledged_is_lost_on_sigkill_and_sigterm_drains_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = serve(&data);
    assert!(
        d.banner.iter().any(|l| l.contains("password:")),
        "first start prints the one-time password"
    );

    // Management through the control socket while the server holds the store.
    let (key, key_file) = new_member_key(tmp.path());
    let m = add_system(&data, &key_file, key, "online");
    let (client, base) = d.client(&data);
    let first = m.request(json!({}));
    assert_eq!(call(&client, &base, &first).await["code"], "0");

    // Crash right after the acknowledgement.
    d.signal(libc::SIGKILL);
    let mut d = d;
    d.child.wait().unwrap();

    let d2 = serve(&data);
    assert!(
        !d2.banner.iter().any(|l| l.contains("password:")),
        "credentials are printed once"
    );
    let (client, base) = d2.client(&data);
    // The system added over the socket survived, and so did the nonce: a replay is refused.
    let mut replay = first.clone();
    replay.insert("time".into(), common::now_ms().to_string().into());
    m.resign(&mut replay);
    let v = call(&client, &base, &replay).await;
    assert_eq!(v["code"], "20005", "{v}");
    assert_eq!(
        call(&client, &base, &m.request(json!({}))).await["code"],
        "0"
    );

    // Metering survived the crash too: the call before it and the one after are counted, the
    // refused replay (never authenticated) is not.
    let csv = run_ok(hutong(&data).args(["usage", "--csv", "--app-id", &m.app_id]));
    assert!(csv.starts_with("\u{feff}date,appId,"), "{csv}");
    let row = csv
        .lines()
        .find(|l| l.contains(",system/info,"))
        .unwrap_or_else(|| panic!("a system/info row: {csv}"));
    assert!(row.ends_with(",system/info,2,2,0,0,0"), "{row}");
    // A quota set through the socket shows up in system/info at once.
    run_ok(hutong(&data).args([
        "quota",
        "set",
        &m.app_id,
        "--kind",
        "users",
        "--limit",
        "5",
        "--from",
        "2026-01-01",
        "--until",
        "2099-12-31",
    ]));
    let shown: Value = serde_json::from_str(
        run_ok(hutong(&data).args(["quota", "show", &m.app_id, "--json"])).trim(),
    )
    .unwrap();
    assert_eq!(
        (shown["kind"].as_str(), shown["limit"].as_u64()),
        (Some("users"), Some(5))
    );
    let info = call(&client, &base, &m.request(json!({}))).await;
    assert_eq!(info["data"]["quota"]["remaining"], 5, "{info}");

    d2.signal(libc::SIGTERM);
    let mut d2 = d2;
    let status = d2.child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(
        !hutong::server::control::socket_path(&data).exists(),
        "socket removed on shutdown"
    );
}

/// Runs `hutong` expecting a refusal; returns its standard error.
fn refused(cmd: &mut std::process::Command) -> String {
    let out = cmd.env("RUST_BACKTRACE", "0").output().unwrap();
    assert!(!out.status.success(), "expected a refusal");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_cli_refuses_as_the_console_does_with_or_without_a_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    run_ok(hutong(&data).arg("init"));
    let (key, key_file) = new_member_key(tmp.path());
    let m = add_system(&data, &key_file, key, "testing");
    let check = |how: &str| {
        // Clearing a quota that is not there is the domain's not-found answer, as in the console.
        let e = refused(hutong(&data).args(["quota", "clear", &m.app_id]));
        assert!(
            e.contains(&format!("系统 {} 没有配额", m.app_id)),
            "{how}: {e}"
        );
        // One report limit: 366 days.
        let e =
            refused(hutong(&data).args(["usage", "--from", "2024-01-01", "--to", "2025-01-01"]));
        assert!(e.contains("最多 366 天"), "{how}: {e}");
        run_ok(hutong(&data).args(["usage", "--from", "2024-01-01", "--to", "2024-12-31"]));
        let e = refused(hutong(&data).args(["trust", "remove", "no-such-anchor"]));
        assert!(e.contains("信任锚 no-such-anchor 不存在"), "{how}: {e}");
        let e = refused(hutong(&data).args([
            "system",
            "set-state",
            "HTNOSUCH",
            "online",
            "--reason",
            "x",
        ]));
        assert!(e.contains("系统 HTNOSUCH 不存在"), "{how}: {e}");
    };
    check("store opened by the CLI");
    let mut d = serve(&data);
    check("through the control socket");
    d.signal(libc::SIGTERM);
    assert!(d.child.wait().unwrap().success());
}

/// `hutong config check` passes on a fresh data directory and names each problem an operator
/// must fix, in Chinese and English, failing the command.
#[test]
fn config_check_names_what_is_wrong() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free_addr = free.local_addr().unwrap().to_string();
    drop(free);
    let conf = tmp.path().join("hutong.toml");
    let check = |text: &str| {
        std::fs::write(&conf, text).unwrap();
        let mut cmd = hutong(&data);
        // The harness's free-port override would hide a file's own [metrics].
        if text.contains("[metrics]") {
            cmd.env_remove("HUTONG_METRICS__LISTEN");
        }
        let out = cmd
            .arg("--config")
            .arg(&conf)
            .args(["config", "check"])
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap())
    };
    let listen = format!("listen = \"{free_addr}\"\n");

    let (ok, out) = check(&listen);
    assert!(ok, "{out}");
    assert!(
        out.contains("尚不存在") && out.contains("does not exist yet"),
        "{out}"
    );
    run_ok(hutong(&data).arg("init"));
    let (ok, out) = check(&listen);
    assert!(
        ok && out.contains("KEK 存在") && out.contains("configuration check passed"),
        "{out}"
    );

    let (ok, out) = check(&format!(
        "{listen}[server]\nbody_timeout_secs = 3\nmax_connections_per_ip = 16\n[log]\nformat = \"json\"\n"
    ));
    assert!(
        ok && out.contains("请求体超时 3 秒") && out.contains("at most 16 connections"),
        "{out}"
    );
    assert!(out.contains("✓ 日志格式 json"), "{out}");
    let (ok, out) = check(&format!("{listen}[log]\nformat = \"xml\"\n"));
    assert!(!ok && out.contains("log.format must be"), "{out}");
    let (ok, out) = check(&format!("{listen}[server]\nbody_timeout_secs = 0\n"));
    assert!(
        !ok && out.contains("配置无效") && out.contains("server.body_timeout_secs"),
        "{out}"
    );

    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let token = tmp.path().join("metrics.token");
    std::fs::write(&token, "a-long-enough-metrics-token\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, out) = check(&format!(
        "{listen}[metrics]\nlisten = \"{}\"\ntoken_file = \"{}\"\n",
        held.local_addr().unwrap(),
        token.display()
    ));
    assert!(!ok, "{out}");
    assert!(
        out.contains("✗ 监控监听地址") && out.contains("metrics listen address"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "✗ 监控令牌文件 {} 可被属主以外的用户访问",
            token.display()
        )),
        "{out}"
    );
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, out) = check(&format!(
        "{listen}[metrics]\nlisten = \"\"\ntoken_file = \"{}\"\n",
        token.display()
    ));
    assert!(
        ok && out.contains("无单独的监控监听地址") && out.contains("requires the bearer token"),
        "{out}"
    );
    drop(held);

    let (ok, out) = check(&format!("{listen}bogus_key = 1\n"));
    assert!(
        !ok && out.contains("配置无效") && out.contains("bogus_key"),
        "{out}"
    );

    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (ok, out) = check(&format!("listen = \"{}\"\n", held.local_addr().unwrap()));
    assert!(
        !ok && out.contains("不可用") && out.contains("cannot be bound"),
        "{out}"
    );
    drop(held);

    let kek = data.join("keys/kek.key");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, out) = check(&listen);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("✗ {} 可被属主以外的用户访问", kek.display())),
        "{out}"
    );
    assert!(out.contains("密钥提供者不可用"), "{out}");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();

    let cert = tmp.path().join("tls.pem");
    let key = tmp.path().join("tls-key.pem");
    std::fs::write(&cert, "not a certificate").unwrap();
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (ok, out) = check(&format!(
        "{listen}[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    assert!(!ok, "{out}");
    assert!(
        out.contains("不是 PEM 文件") && out.contains("TLS 私钥"),
        "{out}"
    );
    assert!(out.contains("use 0600"), "{out}");
}

/// `hutong status` answers from the running appliance only: version, listeners, systems by
/// state, the audit log and its checkpoint; the call itself is audited.
#[test]
fn status_summarises_the_running_appliance() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    run_ok(hutong(&data).arg("init"));
    let out = hutong(&data).arg("status").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("hutong 未运行"));

    let (key, key_file) = new_member_key(tmp.path());
    add_system(&data, &key_file, key, "testing");
    let mut d = serve(&data);
    let s: Value =
        serde_json::from_str(run_ok(hutong(&data).args(["status", "--json"])).trim()).unwrap();
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        s["listeners"][0]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{}", d.port)),
        "{s}"
    );
    assert_eq!(s["keys"]["provider"], "file");
    assert_eq!(
        s["systems"],
        json!([["testing", 1], ["online", 0], ["suspended", 0]])
    );
    let size = s["auditSize"].as_u64().unwrap();
    assert!(size > 0, "{s}");
    assert!(s["lastCheckpoint"][1].as_u64().unwrap() <= size, "{s}");
    assert_eq!(s["openBreakers"], json!([]));
    assert!(s["storeBytes"].as_u64().unwrap() > 0);

    let text = run_ok(hutong(&data).arg("status"));
    assert!(
        text.contains("运行时间 uptime") && text.contains("接入系统 systems: testing 1"),
        "{text}"
    );
    d.signal(libc::SIGTERM);
    assert!(d.child.wait().unwrap().success());

    let statuses = audit_entries(&data, tmp.path())
        .iter()
        .filter(|e| e["action"] == "platform.status" && e["result"] == "ok")
        .count();
    assert_eq!(statuses, 2, "one entry for each status call");
}

/// Every audit entry of `data`, exported with `hutong audit export` into `tmp`.
fn audit_entries(data: &std::path::Path, tmp: &std::path::Path) -> Vec<Value> {
    use base64::Engine as _;
    let export = tmp.join("audit.jsonl");
    run_ok(hutong(data).args(["audit", "export", "--out"]).arg(&export));
    std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["leaf"]
                .as_str()
                .map(String::from)
        })
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b).unwrap())
        .map(|leaf| serde_json::from_slice::<Value>(&leaf).unwrap())
        .collect()
}

/// `hutong tenant destroy` through the control socket and against the store directly: the
/// system is suspended for good, a second run only finishes the key store, and each run is
/// one `tenant.destroy` entry of kind `cli`.
#[test]
fn tenant_destroy_suspends_for_good_and_is_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    run_ok(hutong(&data).arg("init"));
    let (key, key_file) = new_member_key(tmp.path());
    let local = add_system(&data, &key_file, key, "online");
    let (key, key_file) = new_member_key(tmp.path());
    let served = add_system(&data, &key_file, key, "online");
    let destroy = |app_id: &str| -> Value {
        let out = run_ok(hutong(&data).args([
            "tenant",
            "destroy",
            app_id,
            "--reason",
            "合同终止",
            "--json",
        ]));
        serde_json::from_str(out.trim()).unwrap()
    };
    let r = destroy(&local.app_id);
    assert_eq!(r["appId"], local.app_id.as_str());
    assert_eq!(r["alreadyDestroyed"], false);
    let e = refused(hutong(&data).args(["tenant", "destroy", &local.app_id, "--reason", " "]));
    assert!(e.contains("必须填写销毁原因"), "{e}");

    let mut d = serve(&data);
    let r = destroy(&served.app_id);
    assert_eq!(r["owners"], json!([served.app_id]));
    let again =
        run_ok(hutong(&data).args(["tenant", "destroy", &served.app_id, "--reason", "再次确认"]));
    assert!(again.contains("此前已销毁"), "{again}");
    let e = refused(hutong(&data).args([
        "system",
        "set-state",
        &served.app_id,
        "online",
        "--reason",
        "恢复",
    ]));
    assert!(e.contains("已销毁"), "{e}");
    let list: Value =
        serde_json::from_str(run_ok(hutong(&data).args(["system", "list", "--json"])).trim())
            .unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "suspended"),
        "{list}"
    );
    d.signal(libc::SIGTERM);
    assert!(d.child.wait().unwrap().success());

    let destroys: Vec<Value> = audit_entries(&data, tmp.path())
        .into_iter()
        .filter(|e| e["action"] == "tenant.destroy")
        .collect();
    let summary: Vec<(&str, &str, &str)> = destroys
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                e["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("cli", local.app_id.as_str(), "ok"),
            ("cli", local.app_id.as_str(), "error"),
            ("cli", served.app_id.as_str(), "ok"),
            ("cli", served.app_id.as_str(), "ok"),
        ],
        "{destroys:?}"
    );
    assert!(
        destroys[0]["detail"].as_str().unwrap().contains("合同终止"),
        "{destroys:?}"
    );
}

/// `hutong admin list|disable|enable|reset-password|unlock`, through the running server's
/// control socket: the locked-out sole security administrator is unlocked by the server's
/// operating-system user, and each act is audited with that user's name.
#[tokio::test]
async fn administrators_are_managed_from_the_cli_and_audited_with_the_os_user() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    run_ok(hutong(&data).arg("init"));
    // Lock the bootstrap security administrator out with wrong passwords.
    {
        let store = hutong::store::Store::open(&data).unwrap();
        for _ in 0..6 {
            let _ = hutong::domain::accounts::login(&store, "secadmin", "wrong-password-1A!");
        }
        store.flush_blocking().unwrap();
    }
    let d = serve(&data);
    let list: Value =
        serde_json::from_str(run_ok(hutong(&data).args(["admin", "list", "--json"])).trim())
            .unwrap();
    assert_eq!(list[0]["username"], "secadmin", "{list}");
    assert!(list[0]["lockedUntilMs"].is_i64(), "locked out: {list}");
    run_ok(hutong(&data).args(["admin", "unlock", "secadmin"]));
    let list: Value =
        serde_json::from_str(run_ok(hutong(&data).args(["admin", "list", "--json"])).trim())
            .unwrap();
    assert!(list[0]["lockedUntilMs"].is_null(), "{list}");
    let said = run_ok(hutong(&data).args(["admin", "reset-password", "secadmin"]));
    assert!(said.contains("新密码"), "{said}");
    run_ok(hutong(&data).args(["admin", "disable", "secadmin"]));
    let list: Value =
        serde_json::from_str(run_ok(hutong(&data).args(["admin", "list", "--json"])).trim())
            .unwrap();
    assert_eq!(list[0]["disabled"], true);
    run_ok(hutong(&data).args(["admin", "enable", "secadmin"]));
    let out = hutong(&data)
        .args(["admin", "unlock", "nobody"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown account is refused");
    d.signal(libc::SIGTERM);
    let mut d = d;
    assert!(d.child.wait().unwrap().success());

    let me = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let acts: Vec<(String, String)> = audit_entries(&data, tmp.path())
        .into_iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("account.") && a != "account.lockout")
        })
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let cli = format!("cli:{me}");
    for action in [
        "account.list",
        "account.unlock",
        "account.reset",
        "account.disable",
        "account.enable",
    ] {
        assert!(
            acts.iter().any(|(a, id)| a == action && *id == cli),
            "{action} by {cli} missing: {acts:?}"
        );
    }
}
