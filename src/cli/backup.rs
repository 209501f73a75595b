//! `hutong backup` and `hutong restore` (SPEC §6.2). A backup is taken by the running server
//! through its control socket, or here when no server runs; either way this process writes
//! the file. Checks and restores run here: they need the key store, not the store.

use super::output;
use anyhow::{Context, Result, bail};
use hutong::backup::{self, BackupSummary, Progress};
use hutong::config::Config;
use hutong::server::control::Response;
use std::io::IsTerminal;
use std::path::Path;

/// A progress line on a terminal (stderr), nothing otherwise.
fn progress_line(verb: &'static str) -> impl FnMut(Progress) {
    let tty = std::io::stderr().is_terminal();
    move |p: Progress| {
        if tty {
            eprint!(
                "\r{verb} {} 条记录，{:.1} MiB   ",
                p.records,
                p.bytes as f64 / 1048576.0
            );
        }
    }
}

fn end_progress() {
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
}

pub fn take(config: &Config, out: &Path, json: bool) -> Result<()> {
    let mut progress = progress_line("已写入");
    let summary: BackupSummary =
        backup::write_atomically(
            out,
            |file| match hutong::server::control_stream::call_backup(
                &config.data_dir,
                file,
                &mut progress,
            ) {
                Ok(Some(Response::Backup(s))) => Ok(s),
                Ok(Some(other)) => Err(backup::BackupError::Server(format!(
                    "unexpected control response {other:?} (is the server another version?)"
                ))),
                Ok(None) => local_backup(config, file, &mut progress),
                Err(e) => Err(backup::BackupError::Server(e.to_string())),
            },
        )
        .map_err(anyhow::Error::from)
        .with_context(|| format!("备份失败，未写出 {}", out.display()))?;
    end_progress();
    if json {
        output::json(&summary);
    } else {
        println!(
            "备份已写入 {}：{} 条记录，{} 字节，审计树大小 {}，SM3 {}，用时 {} ms",
            out.display(),
            summary.records,
            summary.bytes,
            summary.audit_tree_size,
            summary.digest,
            summary.duration_ms
        );
    }
    Ok(())
}

/// No server runs: open the store and the keys here.
fn local_backup(
    config: &Config,
    file: &mut std::io::BufWriter<std::fs::File>,
    progress: &mut dyn FnMut(Progress),
) -> Result<BackupSummary, backup::BackupError> {
    if !config.data_dir.join("db").exists() {
        return Err(backup::BackupError::NoStore(config.data_dir.clone()));
    }
    let store = hutong::store::Store::open(&config.data_dir)?;
    let keys = hutong::keys::Keyring::load(config)?;
    // As a server start does: no backup may hold a data key the platform KEK alone opens.
    store.migrate_data_keys(keys.provider())?;
    let actor = hutong::server::control::local_cli_actor();
    let res = backup::take(&store, &keys, config, &actor, file, progress).map(|(_, s)| s);
    backup::record_cli_run(&store, &res);
    store.flush_blocking()?;
    res
}

/// `backup --scheduled`: the scheduled run, now (in the server when it runs).
pub fn scheduled(config: &Config, json: bool) -> Result<()> {
    let s = super::manage::expect_response!(
        super::manage::manage(config, hutong::server::control::Command::BackupScheduled)?,
        BackupScheduled
    );
    if json {
        output::json(&s);
    }
    match (&s.error, json) {
        (Some(e), _) => bail!("定时备份失败: {e}"),
        (None, false) => println!(
            "备份已写入 {} 并校验通过：{} 字节，SM3 {}",
            s.file.as_deref().unwrap_or_default(),
            s.bytes,
            s.digest
        ),
        (None, true) => {}
    }
    Ok(())
}

pub fn verify(config: &Config, file: &Path, cert: Option<&Path>, json: bool) -> Result<()> {
    let trusted = match cert {
        Some(p) => {
            let pem = std::fs::read_to_string(p)
                .with_context(|| format!("读取证书 {} 失败", p.display()))?;
            Some(vec![hutong::crypto::sm::pem_decode(&pem)?.1])
        }
        None => hutong::keys::platform_cert_ders(config).ok(),
    };
    let provider = hutong::keys::open_key_store(config);
    let provider = provider
        .as_ref()
        .map(|p| p.as_ref())
        .map_err(|e| e.to_string());
    let report = backup::verify(file, trusted.as_deref(), provider)
        .with_context(|| format!("备份 {} 校验失败", file.display()))?;
    if json {
        output::json(&report);
        return Ok(());
    }
    let h = &report.header;
    println!(
        "备份 {}：格式 {}，创建于 {}，{} 字节，审计树大小 {}（根 {}）",
        file.display(),
        h.format,
        h.created_at,
        report.bytes,
        h.audit_tree_size,
        h.audit_root
    );
    println!(
        "摘要 SM3 {} 与平台签名有效（证书 SM3 {}{}）",
        report.digest,
        h.platform_cert_sm3,
        if report.cert_from_key_store {
            ""
        } else {
            "，取自备份文件本身：请与平台证书核对指纹"
        }
    );
    match (&report.body, &report.body_skipped) {
        (Some(counts), _) => {
            let total: u64 = counts.iter().map(|(_, n)| n).sum();
            println!("内容已解密校验：{total} 条记录");
            for (space, n) in counts {
                println!("  {space}: {n}");
            }
        }
        (None, Some(why)) => {
            println!("内容未解密（本机密钥库不可用：{why}）；只校验了摘要与签名")
        }
        (None, None) => bail!("校验结果不完整"),
    }
    Ok(())
}

pub fn restore(config: &Config, file: &Path, json: bool) -> Result<()> {
    let mut progress = progress_line("已恢复");
    let summary = backup::restore(file, config, &mut progress)
        .with_context(|| format!("恢复 {} 失败", file.display()))?;
    end_progress();
    if json {
        output::json(&summary);
    } else {
        println!(
            "已从 {} 的备份恢复 {} 条记录到 {}（审计树大小 {}）；可运行 hutong audit verify 检查审计日志",
            summary.backup_created_at,
            summary.records,
            config.data_dir.display(),
            summary.audit_tree_size
        );
        if !summary.tenant_keys_missing.is_empty() {
            eprintln!(
                "警告：密钥库中缺少 {} 个租户的密钥（{}），其个人数据不可读；file 提供者请同时恢复 keys/tenants/，pkcs11 请使用同一令牌 / warning: the key store lacks {} tenant key(s): restore keys/tenants/ (or use the same token)",
                summary.tenant_keys_missing.len(),
                summary.tenant_keys_missing.join("、"),
                summary.tenant_keys_missing.len()
            );
        }
        if summary.cert_from_file {
            println!(
                "签名以备份文件自带的平台证书校验（SM3 {}）：请与平台证书的指纹核对 / checked with the certificate inside the file: compare its SM3 with the platform's",
                summary.platform_cert_sm3
            );
        }
    }
    Ok(())
}
