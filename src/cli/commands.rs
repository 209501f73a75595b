//! The management command groups: each builds its control command, runs it where it must
//! run (`manage`), and prints the typed response as text or `--json`.

use super::args::{
    AdminCmd, AuditCmd, KeysCmd, QuotaCmd, RotateCmd, SystemCmd, TenantCmd, TlsCmd, TrustCmd,
};
use super::manage::{expect_response, manage};
use super::output;
use anyhow::{Context, Result, bail};
use hutong::config::Config;
use hutong::domain::metering;
use hutong::server::control::{Command, Response};
use hutong::time::Day;
use std::io::Read;
use std::path::Path;

fn read_text(path: &Path, what: &str) -> Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("{what} {}", path.display()))?;
    if meta.len() > 64 * 1024 {
        bail!("{what} {} is larger than 64 KiB", path.display());
    }
    std::fs::read_to_string(path).with_context(|| format!("{what} {}", path.display()))
}

pub fn keys(config: &Config, cmd: KeysCmd) -> Result<()> {
    match cmd {
        KeysCmd::Init { .. } => bail!("keys init runs as hutong init"),
        KeysCmd::Status { json } => {
            let k = expect_response!(manage(config, Command::KeysStatus)?, KeysStatus);
            if json {
                output::json(&k);
            } else {
                output::keys(&k);
            }
        }
        KeysCmd::Rotate(RotateCmd::Platform { json }) => {
            let r = expect_response!(
                manage(config, Command::KeysRotatePlatform)?,
                KeysRotatePlatform
            );
            if json {
                output::json(&r);
            } else {
                let until = hutong::time::format_time_ms(r.overlap_end_ms);
                println!(
                    "平台密钥已轮换，即时生效，无需重启 / platform key rotated, in use now, no restart needed"
                );
                println!("新证书 SM3 / new certificate: {}", r.current_sm3);
                println!("旧证书 SM3 / previous certificate: {}", r.previous_sm3);
                println!(
                    "旧证书在 GET /api/v1/platform/certificates 中列为 previous 至 {until} / listed as previous until {until}"
                );
            }
        }
        KeysCmd::Rotate(RotateCmd::Kek {
            verified_backup: Some(file),
            json,
            ..
        }) => {
            // The server reads the file itself: give it a path that does not depend on our cwd.
            let file = std::path::absolute(&file)
                .with_context(|| format!("备份路径 {} 无效", file.display()))?;
            let cmd = Command::KeysFinishKek {
                verified_backup: file.display().to_string(),
            };
            let destroyed = expect_response!(manage(config, cmd)?, KeysFinishKek);
            if json {
                output::json(&destroyed);
            } else {
                for r in &destroyed {
                    println!(
                        "已销毁旧 KEK / retired KEK destroyed: {} ({})",
                        r.name, r.id
                    );
                }
            }
        }
        KeysCmd::Rotate(RotateCmd::Kek { json, .. }) => {
            let r = expect_response!(manage(config, Command::KeysRotateKek)?, KeysRotateKek);
            if json {
                output::json(&r);
            } else {
                println!(
                    "KEK 已轮换，即时生效，无需重启 / KEK rotated, in use now, no restart needed"
                );
                println!("新 KEK / new KEK: {}", r.current_id);
                println!(
                    "旧 KEK 保留为 / old KEK kept retired as: {}",
                    r.retired_name
                );
                println!("已重新封装 / re-wrapped: {}", r.rewrapped.join(", "));
                println!(
                    "下一步：hutong backup --out FILE，然后 hutong keys rotate kek --finish --verified-backup FILE 销毁旧 KEK / next: back up, then --finish --verified-backup FILE destroys the old KEK"
                );
            }
        }
    }
    Ok(())
}

/// A command only a running server can answer, through its control socket.
fn ask_running(config: &Config, cmd: &Command) -> Result<Response> {
    hutong::server::control::call(&config.data_dir, cmd)?.ok_or_else(|| {
        anyhow::anyhow!(
            "hutong 未运行（{} 中没有控制套接字）/ hutong is not running (no control socket in {})",
            config.data_dir.display(),
            config.data_dir.display()
        )
    })
}

/// `hutong status`: only a running server can answer.
pub fn status(config: &Config, json: bool) -> Result<()> {
    let r = expect_response!(ask_running(config, &Command::Status)?, Status);
    if json {
        output::json(&r);
    } else {
        output::status(&r);
    }
    Ok(())
}

/// `hutong tls reload`: the running server reads its certificate and key again.
pub fn tls(config: &Config, cmd: TlsCmd) -> Result<()> {
    let TlsCmd::Reload { json } = cmd;
    let r = expect_response!(ask_running(config, &Command::TlsReload)?, TlsReload);
    if json {
        output::json(&r);
    } else {
        println!(
            "TLS 证书已重新加载 / TLS certificate reloaded: {}，有效期至 / valid until {}",
            r.subject,
            hutong::time::format_time_ms(r.not_after_ms)
        );
    }
    Ok(())
}

pub fn system(config: &Config, cmd: SystemCmd) -> Result<()> {
    match cmd {
        SystemCmd::Add {
            name,
            plat_name,
            public_key,
            callback_url,
            callback_ca,
            dest_host,
            state,
            json,
        } => {
            let public_key_pem = read_text(&public_key, "public key")?;
            let callback_ca_pem = callback_ca
                .map(|p| read_text(&p, "callback CA"))
                .transpose()?;
            let cmd = Command::SystemAdd {
                name,
                plat_name,
                public_key_pem,
                callback_url,
                callback_ca_pem,
                dest_host,
                state: Some(state.into()),
            };
            let added = expect_response!(manage(config, cmd)?, SystemAdd);
            if json {
                output::json(&added);
            } else {
                println!("{}", added.app_id);
            }
        }
        SystemCmd::List { json } => {
            let list = expect_response!(manage(config, Command::SystemList)?, SystemList);
            if json {
                output::json(&list);
            } else {
                output::systems(&list);
            }
        }
        SystemCmd::SetState {
            app_id,
            state,
            reason,
            json,
        } => {
            let cmd = Command::SystemSetState {
                app_id,
                state: state.into(),
                reason,
            };
            let r = expect_response!(manage(config, cmd)?, SystemSetState);
            if json {
                output::json(&r);
            } else {
                println!("{} {}", r.app_id, r.state.as_str());
            }
        }
        SystemCmd::CheckCallback { app_id, json } => {
            let cmd = Command::SystemCheckCallback { app_id };
            let r = expect_response!(manage(config, cmd)?, SystemCheckCallback);
            if json {
                output::json(&r);
            } else {
                output::callback_check(&r);
            }
            if !r.passed() {
                bail!("{}", r.summary());
            }
        }
    }
    Ok(())
}

pub fn tenant(config: &Config, cmd: TenantCmd) -> Result<()> {
    let TenantCmd::Destroy {
        app_id,
        reason,
        json,
    } = cmd;
    let r = expect_response!(
        manage(config, Command::TenantDestroy { app_id, reason })?,
        TenantDestroy
    );
    if json {
        output::json(&r);
    } else if r.already_destroyed {
        println!(
            "{} 此前已销毁；本次删除密钥库中的租户密钥 {} 个",
            r.app_id, r.keys_deleted
        );
    } else {
        println!(
            "{} 已销毁：注销印章 {} 枚，删除密钥库中的租户密钥 {} 个（数据密钥所有者 {} 个），系统已暂停",
            r.app_id,
            r.seals_revoked,
            r.keys_deleted,
            r.owners.len()
        );
    }
    Ok(())
}

pub fn admin(config: &Config, cmd: AdminCmd) -> Result<()> {
    let (role, username, json) = match cmd {
        AdminCmd::Create {
            role,
            username,
            json,
            ..
        } => (role, username, json),
        AdminCmd::ResetSecondFactor { username, json } => {
            let cmd = Command::AdminResetSecondFactor { username };
            let r = expect_response!(manage(config, cmd)?, AdminResetSecondFactor);
            if json {
                output::json(&serde_json::json!({"username": r, "secondFactorReset": true}));
            } else {
                println!("second factor of {r} reset; it enrols again at its next login");
            }
            return Ok(());
        }
        AdminCmd::List { json } => {
            let list = expect_response!(manage(config, Command::AdminList)?, AdminList);
            if json {
                output::json(&list);
            } else {
                output::admins(&list);
            }
            return Ok(());
        }
        AdminCmd::Disable { username, json } => {
            return admin_changed(
                config,
                Command::AdminSetDisabled {
                    username,
                    disabled: true,
                },
                "已停用 / disabled",
                json,
            );
        }
        AdminCmd::Enable { username, json } => {
            return admin_changed(
                config,
                Command::AdminSetDisabled {
                    username,
                    disabled: false,
                },
                "已启用 / enabled",
                json,
            );
        }
        AdminCmd::Unlock { username, json } => {
            return admin_changed(
                config,
                Command::AdminUnlock { username },
                "已解除锁定 / unlocked",
                json,
            );
        }
        AdminCmd::ResetPassword { username, json } => {
            let cmd = Command::AdminResetPassword { username };
            let r = expect_response!(manage(config, cmd)?, AdminResetPassword);
            if json {
                output::json(&r);
            } else {
                println!(
                    "{} 的新密码（只显示这一次，下次登录须修改）/ new password, shown once: {}",
                    r.username, r.password
                );
            }
            return Ok(());
        }
    };
    let mut line = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut line)
        .context("reading the password from standard input")?;
    let password = line.lines().next().unwrap_or_default().to_string();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    let cmd = Command::AdminCreate {
        role: role.into(),
        username,
        password,
    };
    let r = expect_response!(manage(config, cmd)?, AdminCreate);
    if json {
        output::json(&r);
    } else {
        println!("created {} ({})", r.username, r.role.as_str());
    }
    Ok(())
}

fn admin_changed(config: &Config, cmd: Command, done: &str, json: bool) -> Result<()> {
    let user = expect_response!(manage(config, cmd)?, AdminChanged);
    if json {
        output::json(&serde_json::json!({"username": user, "done": done}));
    } else {
        println!("{user} {done}");
    }
    Ok(())
}

pub fn usage(
    config: &Config,
    app_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    csv: bool,
    json: bool,
) -> Result<()> {
    let to = match to {
        Some(t) => t,
        None => Day::today().to_string(),
    };
    let from = match from {
        Some(f) => f,
        None => metering::default_report_start(Day::parse(&to)?).to_string(),
    };
    let cmd = Command::UsageReport { app_id, from, to };
    let rows = expect_response!(manage(config, cmd)?, UsageReport);
    if json {
        output::json(&rows);
    } else if csv {
        print!("{}", metering::to_csv(&rows));
    } else {
        output::usage(&rows);
    }
    Ok(())
}

pub fn quota(config: &Config, cmd: QuotaCmd) -> Result<()> {
    match cmd {
        QuotaCmd::Set {
            app_id,
            kind,
            limit,
            from,
            until,
            json,
        } => {
            let cmd = Command::QuotaSet {
                app_id,
                kind: kind.into(),
                limit,
                from,
                until,
            };
            let q = expect_response!(manage(config, cmd)?, QuotaSet);
            if json {
                output::json(&q);
            } else {
                output::quota(Some(&q));
            }
        }
        QuotaCmd::Clear { app_id, json } => {
            let r = expect_response!(manage(config, Command::QuotaClear { app_id })?, QuotaClear);
            if json {
                output::json(&r);
            } else {
                println!("quota removed");
            }
        }
        QuotaCmd::Show { app_id, json } => {
            let q = expect_response!(manage(config, Command::QuotaShow { app_id })?, QuotaShow);
            if json {
                output::json(&q);
            } else {
                output::quota(q.as_ref());
            }
        }
    }
    Ok(())
}

pub fn trust(config: &Config, cmd: TrustCmd) -> Result<()> {
    use base64::Engine;
    match cmd {
        TrustCmd::Add { certificate, json } => {
            let bytes = std::fs::read(&certificate)
                .with_context(|| format!("certificate {}", certificate.display()))?;
            let cmd = Command::TrustAdd {
                certificate_b64: base64::engine::general_purpose::STANDARD.encode(bytes),
            };
            let r = expect_response!(manage(config, cmd)?, TrustAdd);
            if json {
                output::json(&r);
            } else {
                println!("{} {}", r.id, r.subject);
            }
        }
        TrustCmd::List { json } => {
            let list = expect_response!(manage(config, Command::TrustList)?, TrustList);
            if json {
                output::json(&list);
            } else {
                output::trust_anchors(&list);
            }
        }
        TrustCmd::Remove { id, json } => {
            let r = expect_response!(manage(config, Command::TrustRemove { id })?, TrustRemove);
            if json {
                output::json(&r);
            } else {
                println!("removed");
            }
        }
    }
    Ok(())
}

/// Verifies through the running server when there is one (its registry and trust anchors),
/// else against the data directory directly, else with no anchors and no registry.
pub fn verify(config: &Config, file: &Path, json: bool) -> Result<()> {
    use base64::Engine;
    let meta = std::fs::metadata(file).with_context(|| format!("document {}", file.display()))?;
    if meta.len() > config.api.max_file_bytes as u64 {
        bail!(
            "{} is larger than the {} byte limit",
            file.display(),
            config.api.max_file_bytes
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("document {}", file.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report = if config.data_dir.exists() {
        let cmd = Command::VerifyDocument {
            file_name: name,
            content_b64: base64::engine::general_purpose::STANDARD.encode(&bytes),
        };
        expect_response!(manage(config, cmd)?, VerifyDocument)
    } else {
        let opts = hutong::verify::VerifyOptions {
            max_file_size: config.api.max_file_bytes,
            ..Default::default()
        };
        let r = hutong::verify::verify_document(
            &bytes,
            &name,
            &opts,
            &hutong::verify::report::EmptyRegistry,
        )?;
        serde_json::to_value(r)?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        output::report(&report)?;
    }
    if output::verified(&report) {
        Ok(())
    } else {
        std::process::exit(2)
    }
}

pub fn audit(config: &Config, cmd: AuditCmd) -> Result<()> {
    match cmd {
        AuditCmd::Verify {
            from_export,
            cert,
            json,
        } => {
            let report = match from_export {
                Some(file) => {
                    let certs = if cert.is_empty() {
                        hutong::keys::platform_cert_ders(config)?
                    } else {
                        let mut certs = Vec::with_capacity(cert.len());
                        for p in &cert {
                            let pem = std::fs::read_to_string(p)
                                .with_context(|| format!("读取证书 {} 失败", p.display()))?;
                            certs.push(hutong::crypto::sm::pem_decode(&pem)?.1);
                        }
                        certs
                    };
                    let f = std::fs::File::open(&file)
                        .with_context(|| format!("读取导出文件 {} 失败", file.display()))?;
                    // A line that cannot be read (not UTF-8, an I/O error) is reported where it
                    // stands, never taken as the end of a shorter, intact log.
                    let lines = std::io::BufRead::lines(std::io::BufReader::new(f))
                        .map(|l| l.unwrap_or_else(|_| "\u{0}".to_string()));
                    hutong::audit::export::verify(lines, &certs)
                }
                None => expect_response!(manage(config, Command::AuditVerify)?, AuditVerify),
            };
            if json {
                output::json(&report);
            } else {
                println!(
                    "条目 {}，检查点 {}，树大小 {}，最后检查点之后未签名的条目 {}",
                    report.entries, report.checkpoints, report.tree_size, report.unsigned_tail
                );
            }
            match report.problem {
                None if json => Ok(()),
                None => {
                    println!("审计日志完整");
                    Ok(())
                }
                Some(p) => bail!("审计日志校验失败: {p}"),
            }
        }
        AuditCmd::Export { from, to, out } => {
            let cmd = Command::AuditExport {
                from_ms: from,
                to_ms: to,
            };
            let text = expect_response!(manage(config, cmd)?, AuditExport);
            std::fs::write(&out, text.as_bytes())
                .with_context(|| format!("写入 {} 失败", out.display()))?;
            Ok(())
        }
        AuditCmd::Proof {
            seq,
            size,
            consistency,
        } => {
            let cmd = match (seq, size, consistency.as_deref()) {
                (Some(seq), Some(size), None) => Command::AuditInclusion { seq, size },
                (None, _, Some([a, b])) => Command::AuditConsistency {
                    from_size: *a,
                    to_size: *b,
                },
                _ => bail!("需要 --seq N --size M 或 --consistency A B"),
            };
            let proof = expect_response!(manage(config, cmd)?, AuditProof);
            output::json(&proof);
            Ok(())
        }
    }
}
