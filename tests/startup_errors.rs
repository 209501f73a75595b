//! Every start-up failure a test machine can provoke stops `hutong serve` with one `Error: …`
//! line that the troubleshooting table of docs/operations.md explains, so an operator who
//! reads the journal finds the cause and the remedy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

use hutong::store::engine::Engine;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The first-column patterns of the table (`…` stands for any text).
fn table() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .unwrap();
    let section = doc
        .split("## Troubleshooting start-up errors")
        .nth(1)
        .expect("the troubleshooting section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

/// Whether `line` is `pattern` with each `…` standing for some text.
fn matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split('…').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return line == pattern;
    }
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

fn hutong(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hutong"));
    c.arg("--data-dir")
        .arg(data)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env("HUTONG_METRICS__LISTEN", "")
        .stdin(Stdio::null());
    c
}

fn initialised(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let out = hutong(&data)
        .arg("init")
        .arg("--credentials-file")
        .arg(dir.join("credentials"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    data
}

/// Runs `serve` (extra arguments before it, `listen` after) and returns its `Error:` line;
/// a server that starts anyway is stopped and the test fails.
fn start_error(mut cmd: Command, listen: &str) -> String {
    let mut child = cmd
        .args(["serve", "--listen", listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "hutong serve started although it should not: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Error: "))
        .unwrap_or_else(|| panic!("no `Error:` line in {stderr}"));
    assert!(
        !stderr.contains("stack backtrace"),
        "a start-up error is one line, not a backtrace: {stderr}"
    );
    line.to_string()
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

#[test]
fn every_start_up_error_is_explained_in_the_troubleshooting_table() {
    let rows = table();
    assert!(rows.len() >= 15, "{rows:?}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = initialised(d);
    let copy = |name: &str| {
        let to = d.join(name);
        let status = Command::new("cp")
            .arg("-a")
            .arg(&data)
            .arg(&to)
            .status()
            .unwrap();
        assert!(status.success());
        to
    };
    let with_config = |data: &Path, file: PathBuf| {
        let mut c = hutong(data);
        c.arg("--config").arg(file);
        c
    };
    let any = "127.0.0.1:0";
    let mut cases: Vec<(&str, Command, String)> = Vec::new();

    cases.push((
        "无法读取配置文件",
        with_config(&data, d.join("missing.toml")),
        any.into(),
    ));
    let syntax = write(&d.join("syntax.toml"), "listen = [1\n");
    cases.push(("配置无效", with_config(&data, syntax), any.into()));
    let unknown = write(&d.join("unknown.toml"), "no_such_key = 1\n");
    cases.push(("配置无效", with_config(&data, unknown), any.into()));
    let value = write(&d.join("value.toml"), "region_code = \"abc\"\n");
    cases.push(("配置无效", with_config(&data, value), any.into()));

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    cases.push((
        "监听 … 失败: Address already in use",
        hutong(&data),
        busy.local_addr().unwrap().to_string(),
    ));
    cases.push(("监听 … 失败: …", hutong(&data), "nonsense".into()));

    let locked = copy("locked");
    let held = hutong::store::Store::open(&locked).unwrap();
    cases.push((
        "数据目录 … 正被另一个 hutong 进程使用",
        hutong(&locked),
        any.into(),
    ));

    let newer = copy("newer");
    {
        let store = hutong::store::Store::open(&newer).unwrap();
        store.flush_blocking().unwrap();
    }
    {
        let engine = hutong::store::sled_engine::SledEngine::open(&newer.join("db")).unwrap();
        let meta = engine.keyspace("meta").unwrap();
        meta.insert(
            b"schema_version",
            &(hutong::store::SCHEMA_VERSION + 1).to_be_bytes(),
        )
        .unwrap();
        engine.flush().unwrap();
    }
    cases.push(("数据库版本", hutong(&newer), any.into()));

    let file_in_place = write(&d.join("a-file"), "");
    cases.push(("数据目录 …: …", hutong(&file_in_place), any.into()));

    let no_kek = copy("no-kek");
    std::fs::remove_file(no_kek.join("keys/kek.key")).unwrap();
    cases.push(("密钥文件读写失败", hutong(&no_kek), any.into()));

    let altered = copy("altered");
    write(&altered.join("keys/platform.key.wrapped"), "garbage\n");
    cases.push(("密钥解封失败", hutong(&altered), any.into()));

    let module = write(
        &d.join("module.toml"),
        "[keys]\nprovider = \"pkcs11\"\n[keys.pkcs11]\nmodule = \"/nonexistent/libpkcs11.so\"\npin = \"1234\"\n",
    );
    cases.push((
        "密钥提供者配置错误",
        with_config(&d.join("hsm-data"), module),
        any.into(),
    ));

    let tls = write(
        &d.join("tls.toml"),
        "[tls]\ncert = \"/nonexistent/server.crt\"\nkey = \"/nonexistent/server.key\"\n",
    );
    cases.push(("TLS 证书或私钥文件", with_config(&data, tls), any.into()));

    // The generated pair with the key of another installation's pair.
    std::fs::create_dir_all(d.join("other")).unwrap();
    let other = initialised(&d.join("other"));
    let mismatched = copy("mismatched");
    let started_other = start_and_stop(&other);
    let started_mine = start_and_stop(&mismatched);
    assert!(started_other && started_mine);
    std::fs::copy(
        other.join("tls/server.key"),
        mismatched.join("tls/server.key"),
    )
    .unwrap();
    cases.push(("TLS 配置错误", hutong(&mismatched), any.into()));

    let token = write(
        &d.join("token.toml"),
        "[metrics]\ntoken_file = \"/nonexistent/token\"\n",
    );
    cases.push(("监控令牌文件", with_config(&data, token), any.into()));

    for (row_start, cmd, listen) in cases {
        let line = start_error(cmd, &listen);
        let row = rows
            .iter()
            .find(|r| *r == row_start)
            .or_else(|| rows.iter().find(|r| r.starts_with(row_start)))
            .unwrap_or_else(|| panic!("no row for {row_start:?} in {rows:?}"));
        assert!(
            matches(row, &line),
            "`{line}` is not what the row `{row}` says"
        );
    }
    drop(held);
}

/// Starts the server until it listens (making its TLS pair), then stops it.
fn start_and_stop(data: &Path) -> bool {
    let mut child = hutong(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let listening = data.join("tls/server.key");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !listening.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    listening.exists()
}

/// Each row's fixed text is something the program says, so the table cannot keep a message
/// that no longer exists.
#[test]
fn every_row_is_a_message_of_the_program() {
    let sources = [
        "src/config.rs",
        "src/server/mod.rs",
        "src/server/tls.rs",
        "src/store/mod.rs",
        "src/keys/mod.rs",
    ]
    .map(|f| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap())
    .join("\n");
    for row in table() {
        let fixed = row.split('…').next().unwrap().trim();
        let fixed = fixed.split(':').next().unwrap().trim();
        assert!(
            sources.contains(fixed),
            "the table's `{row}` is not a message of the program"
        );
    }
}
