//! The real `hutong` binary: management commands with and without a running server, crash
//! durability (SIGKILL right after a 200), bootstrap credentials printed once, and graceful
//! SIGTERM.

mod common;

use common::Member;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU32;

fn hutong(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hutong"));
    c.arg("--data-dir").arg(data_dir).env("RUST_LOG", "warn");
    c
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run hutong");
    assert!(
        out.status.success(),
        "hutong failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn new_member_key(dir: &Path) -> (sm2::SecretKey, std::path::PathBuf) {
    use sm2::pkcs8::EncodePublicKey;
    let key = sm2::SecretKey::from_slice(&hutong::crypto::sm::random_bytes::<32>()).unwrap();
    let path = dir.join(format!("member-{}.pem", hex::encode(hutong::crypto::sm::random_bytes::<4>())));
    std::fs::write(&path, key.public_key().to_public_key_pem(Default::default()).unwrap()).unwrap();
    (key, path)
}

fn add_system(data_dir: &Path, key_file: &Path, key: sm2::SecretKey, state: &str) -> Member {
    let out = run_ok(
        hutong(data_dir)
            .args(["system", "add", "--name", "外部印章系统", "--plat-name", "外部平台", "--json", "--state", state])
            .arg("--public-key")
            .arg(key_file),
    );
    let v: Value = serde_json::from_str(out.trim()).expect("--json output");
    Member {
        app_id: v["appId"].as_str().unwrap().to_string(),
        key,
        nonce: AtomicU32::new(1),
    }
}

struct Daemon {
    child: Child,
    port: u16,
    banner: Vec<String>,
}

fn serve(data_dir: &Path) -> Daemon {
    let mut child = hutong(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    loop {
        let line = lines.next().expect("server exited before listening").unwrap();
        if let Some(rest) = line.strip_prefix("hutong listening on https://") {
            let addr = rest.split_whitespace().next().unwrap();
            let port = addr.rsplit(':').next().unwrap().parse().unwrap();
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return Daemon { child, port, banner };
        }
        banner.push(line);
    }
}

impl Daemon {
    fn client(&self, data_dir: &Path) -> (reqwest::Client, String) {
        let (cert, _) = hutong::server::tls::generated_paths(data_dir);
        (common::https_client(&std::fs::read(cert).unwrap()), format!("https://localhost:{}", self.port))
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }
}

async fn call(client: &reqwest::Client, base: &str, params: &serde_json::Map<String, Value>) -> Value {
    client
        .post(format!("{base}/api/v1/system/info"))
        .json(params)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[test]
fn management_commands_work_without_a_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = run_ok(hutong(&data).arg("init"));
    assert!(out.contains("secadmin"), "init prints the bootstrap administrator: {out}");
    assert!(hutong(&data).arg("init").output().unwrap().status.code() != Some(0), "init runs once");

    let (key, key_file) = new_member_key(tmp.path());
    let m = add_system(&data, &key_file, key, "testing");
    assert!(m.app_id.starts_with("HT"));
    let list: Value = serde_json::from_str(run_ok(hutong(&data).args(["system", "list", "--json"])).trim()).unwrap();
    assert_eq!(list[0]["appId"], m.app_id.as_str());
    assert_eq!(list[0]["state"], "testing");
    run_ok(hutong(&data).args(["system", "set-state", &m.app_id, "suspended", "--reason", "违规调用"]));
    let list: Value = serde_json::from_str(run_ok(hutong(&data).args(["system", "list", "--json"])).trim()).unwrap();
    assert_eq!(list[0]["state"], "suspended");

    let status: Value = serde_json::from_str(run_ok(hutong(&data).args(["keys", "status", "--json"])).trim()).unwrap();
    assert_eq!(status["provider"], "file");

    let mut child = hutong(&data)
        .args(["admin", "create", "--role", "auditor", "--username", "audit1", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"Audit-Password-9\n").unwrap();
    assert!(child.wait().unwrap().success());
    // Weak passwords and unknown roles are refused with a message.
    let out = hutong(&data)
        .args(["admin", "create", "--role", "operator", "--username", "op1", "--password-stdin"])
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
    assert!(d.banner.iter().any(|l| l.contains("password:")), "first start prints the one-time password");

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
    assert!(!d2.banner.iter().any(|l| l.contains("password:")), "credentials are printed once");
    let (client, base) = d2.client(&data);
    // The system added over the socket survived, and so did the nonce: a replay is refused.
    let mut replay = first.clone();
    replay.insert("time".into(), common::now_ms().to_string().into());
    m.resign(&mut replay);
    let v = call(&client, &base, &replay).await;
    assert_eq!(v["code"], "20005", "{v}");
    assert_eq!(call(&client, &base, &m.request(json!({}))).await["code"], "0");

    d2.signal(libc::SIGTERM);
    let mut d2 = d2;
    let status = d2.child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(!hutong::server::control::socket_path(&data).exists(), "socket removed on shutdown");
}
