//! The handbooks cannot drift from the command line: every concrete `hutong …` command in a
//! code block of `README.md`, `docs/*.md` and `hsm/README.md` is run with `--help` appended,
//! which clap answers only when every subcommand and flag on the line exists. Synopsis lines
//! (`[--json]`, `a|b`, `…`) and continued lines are skipped; the package test runs the
//! install commands themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

use std::path::{Path, PathBuf};

fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("hsm/README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    files
}

/// The `hutong` invocation of a code line, without shell comments, redirections and the
/// prefixes that only set its environment or user.
fn command_of(line: &str) -> Option<Vec<String>> {
    let mut l = line.trim();
    l = l.strip_prefix("$ ").unwrap_or(l);
    l = l.strip_prefix("sudo -u hutong ").unwrap_or(l);
    while let Some((first, rest)) = l.split_once(' ') {
        if first.contains('=') && first.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            l = rest;
        } else {
            break;
        }
    }
    let rest = l.strip_prefix("hutong ")?;
    let rest = rest.split(" #").next()?;
    let rest = rest.split(" && ").next()?.split(';').next()?;
    let rest = rest.split(['<', '>']).next()?.trim();
    let rest = rest.strip_suffix(" &").unwrap_or(rest);
    if rest.ends_with('\\') || rest.contains(['[', '|', '…', '$', '`']) || rest.contains("...") {
        return None;
    }
    Some(rest.split_whitespace().map(String::from).collect())
}

#[test]
fn every_documented_hutong_command_exists() {
    let data = tempfile::tempdir().unwrap();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut in_code = false;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
                continue;
            }
            let Some(args) = in_code.then(|| command_of(line)).flatten() else {
                continue;
            };
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_hutong"))
                .args(&args)
                .arg("--help")
                .env("HUTONG_DATA_DIR", data.path())
                .output()
                .unwrap();
            checked += 1;
            if !out.status.success() {
                wrong.push(format!(
                    "{}:{}: hutong {}\n{}",
                    file.display(),
                    n + 1,
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "documented commands that do not exist:\n{}",
        wrong.join("\n")
    );
    assert!(
        checked >= 20,
        "only {checked} commands found: the extraction is broken"
    );
}
