//! The log of a real `hutong` process: plain text without colour when standard error is not a
//! terminal, one JSON object per line with `log.format = "json"`, and the bootstrap password
//! never in it — nor on a standard output that is the journal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;

use common::daemon::{hutong, run_ok};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

/// Runs `hutong serve` (first start) with `env` until it listens, stops it with SIGTERM, and
/// returns (standard output, standard error).
fn serve_once(env: &[(&str, &str)]) -> (String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let errors = tmp.path().join("stderr.log");
    let mut cmd = hutong(&tmp.path().join("data"));
    cmd.env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&errors).unwrap());
    let mut child = cmd.spawn().unwrap();
    let mut out = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("hutong listening on") {
            break;
        }
    }
    // SAFETY: kill(2) on our own child's pid.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    for line in lines {
        out.push_str(&line.unwrap());
        out.push('\n');
    }
    assert!(child.wait().unwrap().success(), "{out}");
    (out, std::fs::read_to_string(&errors).unwrap())
}

/// The one-time password the first start printed.
fn password(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password printed: {stdout}"))
        .to_string()
}

#[test]
fn text_logs_carry_no_colour_off_a_terminal_and_never_the_bootstrap_password() {
    let (out, log) = serve_once(&[]);
    let password = password(&out);
    assert!(log.contains("open-file limit"), "{log}");
    assert!(log.contains(" INFO "), "{log}");
    assert!(!log.contains('\x1b'), "ANSI escapes in a log file: {log:?}");
    assert!(!log.contains(&password), "{log}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let (out, log) = serve_once(&[("HUTONG_LOG__FORMAT", "json")]);
    let password = password(&out);
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(events.len() >= 2, "{log}");
    for e in &events {
        assert!(e["timestamp"].is_string() && e["level"].is_string(), "{e}");
        assert!(e["target"].is_string() && e["message"].is_string(), "{e}");
    }
    let limit = events
        .iter()
        .find(|e| e["message"] == "open-file limit (RLIMIT_NOFILE)")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(limit["level"], "INFO");
    assert!(limit["to"].as_u64().unwrap() >= limit["from"].as_u64().unwrap());
    assert!(
        events
            .iter()
            .any(|e| e["message"] == "stop signal received: draining requests")
    );
    assert!(!log.contains('\x1b') && !log.contains(&password), "{log}");
}

#[test]
fn credentials_go_to_a_private_file_when_stdout_is_the_journal_or_a_file_is_named() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = tempfile::tempdir().unwrap();

    // Standard output is "the journal": the stream JOURNAL_STREAM names.
    let data = tmp.path().join("journal");
    let journal = tmp.path().join("journal.log");
    let stdout = std::fs::File::create(&journal).unwrap();
    let meta = stdout.metadata().unwrap();
    let status = hutong(&data)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .arg("init")
        .stdout(stdout)
        .status()
        .unwrap();
    assert!(status.success());
    let said = std::fs::read_to_string(&journal).unwrap();
    let file = data.join("initial-admin.txt");
    assert!(said.contains(&file.display().to_string()), "{said}");
    assert!(!said.contains("password:"), "{said}");
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.starts_with("username: secadmin\npassword: "),
        "{written}"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // A JOURNAL_STREAM that is not our stdout (inherited by a redirected child) changes nothing.
    let data = tmp.path().join("inherited");
    let said = run_ok(hutong(&data).env("JOURNAL_STREAM", "1:1").arg("init"));
    assert!(said.contains("password: "), "{said}");

    // An installer names the file.
    let data = tmp.path().join("named");
    let named = tmp.path().join("credentials");
    let said = run_ok(
        hutong(&data)
            .arg("init")
            .arg("--credentials-file")
            .arg(&named),
    );
    assert!(
        !said.contains("password:") && said.contains("credentials"),
        "{said}"
    );
    assert!(
        std::fs::read_to_string(&named)
            .unwrap()
            .contains("password: ")
    );
    let mode = std::fs::metadata(&named).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
