//! The real `hutong` binary as a separate process: management commands and a served instance.

use super::Member;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU32;

pub fn hutong(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hutong"));
    // Tests run side by side: the monitoring listener on a free port, not the default one.
    c.arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .env("HUTONG_METRICS__LISTEN", "127.0.0.1:0");
    c
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run hutong");
    assert!(
        out.status.success(),
        "hutong failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn new_member_key(dir: &Path) -> (sm2::SecretKey, std::path::PathBuf) {
    use sm2::pkcs8::EncodePublicKey;
    let key = sm2::SecretKey::from_slice(&hutong::crypto::sm::random_bytes::<32>()).unwrap();
    let path = dir.join(format!(
        "member-{}.pem",
        hex::encode(hutong::crypto::sm::random_bytes::<4>())
    ));
    std::fs::write(
        &path,
        key.public_key()
            .to_public_key_pem(Default::default())
            .unwrap(),
    )
    .unwrap();
    (key, path)
}

pub fn add_system(data_dir: &Path, key_file: &Path, key: sm2::SecretKey, state: &str) -> Member {
    let out = run_ok(
        hutong(data_dir)
            .args([
                "system",
                "add",
                "--name",
                "外部印章系统",
                "--plat-name",
                "外部平台",
                "--json",
                "--state",
                state,
            ])
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

pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub banner: Vec<String>,
    /// `http://127.0.0.1:PORT` of the monitoring listener, when it has one.
    pub metrics_base: Option<String>,
    /// The server's standard error, read to the end (see [`Daemon::terminate`]).
    errors: Option<std::thread::JoinHandle<String>>,
}

pub fn serve(data_dir: &Path) -> Daemon {
    spawn(hutong(data_dir)).unwrap_or_else(|e| panic!("server did not start: {e}"))
}

/// Runs `cmd serve --listen 127.0.0.1:0 …` until it prints its address; `Err(stderr)` when it
/// exits instead.
pub fn spawn(mut cmd: Command) -> Result<Daemon, String> {
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.wait();
            return Err(errors.join().unwrap_or_default());
        };
        if let Some(rest) = line.strip_prefix("hutong listening on https://") {
            let addr = rest.split_whitespace().next().unwrap();
            let port = addr.rsplit(':').next().unwrap().parse().unwrap();
            // The monitoring listener's line follows at once when there is one.
            let metrics_base = match lines.next() {
                Some(Ok(next)) => next
                    .strip_prefix("metrics and health on ")
                    .map(|m| m.trim().to_string()),
                _ => None,
            };
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return Ok(Daemon {
                child,
                port,
                banner,
                metrics_base,
                errors: Some(errors),
            });
        }
        banner.push(line);
    }
}

impl Daemon {
    pub fn client(&self, data_dir: &Path) -> (reqwest::Client, String) {
        let (cert, _) = hutong::server::tls::generated_paths(data_dir);
        (
            super::https_client(&std::fs::read(cert).unwrap()),
            format!("https://localhost:{}", self.port),
        )
    }

    /// SIGTERM, then the exit status and everything the server wrote to standard error.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        self.signal(libc::SIGTERM);
        let status = self.child.wait().unwrap();
        let errors = self
            .errors
            .take()
            .and_then(|e| e.join().ok())
            .unwrap_or_default();
        (status, errors)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }
}

pub async fn call(
    client: &reqwest::Client,
    base: &str,
    params: &serde_json::Map<String, Value>,
) -> Value {
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
