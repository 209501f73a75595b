//! Management commands and the local control socket.
//!
//! The CLI's management commands run through [`execute`] either inside the running server
//! (sent over `control.sock` in the data directory, mode 0600) or, when no server runs, in
//! the CLI process against the store it opens itself. sled's file lock guarantees only one
//! of the two ever writes.

use crate::config::Config;
use crate::domain::vocab::QuotaKind;
use crate::domain::vocab::Role;
use crate::domain::vocab::SystemState;
use crate::domain::{accounts, documents, metering, systems};
use crate::keys::Keyring;
use crate::store::Store;
use crate::store::usage::Quota;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub const SOCKET_NAME: &str = "control.sock";
/// Bounds one control request line: a document to verify, Base64-encoded, at most.
const MAX_LINE: usize = 140 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Command {
    SystemAdd {
        name: String,
        plat_name: String,
        public_key_pem: String,
        callback_url: Option<String>,
        callback_ca_pem: Option<String>,
        dest_host: Option<String>,
        state: Option<String>,
    },
    SystemList,
    SystemSetState {
        app_id: String,
        state: String,
        reason: String,
    },
    AdminCreate {
        role: String,
        username: String,
        password: String,
    },
    KeysStatus,
    /// A CA certificate (Base64 of PEM or DER) to trust for document verification.
    TrustAdd {
        certificate_b64: String,
    },
    TrustList,
    TrustRemove {
        id: String,
    },
    /// Verifies a document with the platform's trust anchors and registry.
    VerifyDocument {
        file_name: String,
        content_b64: String,
    },
    /// Usage rows of one system (or all) for days `from..=to` (`YYYY-MM-DD`).
    UsageReport {
        app_id: Option<String>,
        from: String,
        to: String,
    },
    /// Sets a system's quota (kind `signatures` or `users`), valid on days `from..=until`.
    QuotaSet {
        app_id: String,
        kind: String,
        limit: u64,
        from: String,
        until: String,
    },
    QuotaClear {
        app_id: String,
    },
    QuotaShow {
        app_id: String,
    },
}

impl Command {
    pub fn changes_state(&self) -> bool {
        !matches!(
            self,
            Command::SystemList
                | Command::KeysStatus
                | Command::TrustList
                | Command::VerifyDocument { .. }
                | Command::UsageReport { .. }
                | Command::QuotaShow { .. }
        )
    }
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

fn parse_state(s: &str) -> Result<SystemState, String> {
    SystemState::parse(s).ok_or_else(|| format!("未知状态 {s}（可用 testing、online、suspended）"))
}

/// Runs a management command. `keys` is absent when the caller could not load them.
pub fn execute(
    store: &Store,
    keys: Option<&Keyring>,
    config: &Config,
    cmd: Command,
    actor: &str,
) -> Result<Value, String> {
    match cmd {
        Command::SystemAdd {
            name,
            plat_name,
            public_key_pem,
            callback_url,
            callback_ca_pem,
            dest_host,
            state,
        } => {
            let state = state.as_deref().map(parse_state).transpose()?;
            let rec = systems::add_system(
                store,
                systems::NewSystem {
                    name,
                    plat_name,
                    vendor: None,
                    public_key_pem,
                    callback_url,
                    callback_ca_pem,
                    dest_host,
                    state,
                },
                actor,
            )
            .map_err(|e| e.to_string())?;
            Ok(json!({"appId": rec.app_id}))
        }
        Command::SystemList => {
            let list = store.list_systems().map_err(|e| e.to_string())?;
            Ok(Value::Array(
                list.into_iter()
                    .map(|s| {
                        json!({
                            "appId": s.app_id,
                            "name": s.name,
                            "platName": s.plat_name,
                            "state": s.state.as_str(),
                            "callbackUrl": s.callback_url,
                            "createdMs": s.created_ms,
                        })
                    })
                    .collect(),
            ))
        }
        Command::SystemSetState {
            app_id,
            state,
            reason,
        } => {
            let rec = systems::set_state(store, &app_id, parse_state(&state)?, &reason, actor)
                .map_err(|e| e.to_string())?;
            Ok(json!({"appId": rec.app_id, "state": rec.state.as_str()}))
        }
        Command::AdminCreate {
            role,
            username,
            password,
        } => {
            let role = match Role::parse(&role) {
                Some(r @ (Role::Operator | Role::Security | Role::Auditor)) => r,
                _ => {
                    return Err(format!(
                        "未知管理员角色 {role}（可用 operator、security、auditor）"
                    ));
                }
            };
            let rec = accounts::create_account(store, &username, role, &password, true, actor)
                .map_err(|e| e.to_string())?;
            Ok(json!({"username": rec.username, "role": rec.role.as_str()}))
        }
        Command::KeysStatus => match keys {
            Some(k) => serde_json::to_value(k.status()).map_err(|e| e.to_string()),
            None => Err("密钥未加载".into()),
        },
        Command::TrustAdd { certificate_b64 } => {
            let bytes = b64_decode(&certificate_b64)?;
            let (id, subject) =
                documents::add_trust_anchor(store, &bytes, actor).map_err(|e| e.to_string())?;
            Ok(json!({"id": id, "subject": subject}))
        }
        Command::TrustList => {
            let list = store.trust_anchors().map_err(|e| e.to_string())?;
            Ok(Value::Array(
                list.into_iter()
                    .map(|(id, der)| {
                        let info = crate::crypto::x509::CertInfo::parse(&der).ok();
                        json!({
                            "id": id,
                            "subject": info.as_ref().map(|i| i.subject.clone()).unwrap_or_default(),
                            "notAfter": info.map(|i| crate::time::format_time_ms(i.not_after_ms)).unwrap_or_default(),
                        })
                    })
                    .collect(),
            ))
        }
        Command::TrustRemove { id } => {
            if store.remove_trust_anchor(&id).map_err(|e| e.to_string())? {
                store
                    .record_event(actor, "trust.remove", &id, "ok", "")
                    .map_err(|e| e.to_string())?;
                Ok(json!({"removed": id}))
            } else {
                Err(format!("信任锚 {id} 不存在"))
            }
        }
        Command::VerifyDocument {
            file_name,
            content_b64,
        } => {
            let bytes = b64_decode(&content_b64)?;
            let report =
                documents::verify(store, config, &bytes, &file_name).map_err(|e| e.to_string())?;
            serde_json::to_value(report).map_err(|e| e.to_string())
        }
        Command::UsageReport { app_id, from, to } => {
            let (from, to) = (day(&from)?, day(&to)?);
            if to < from || metering::add_days(from, 3660) < to {
                return Err("日期范围无效（截止日期不早于起始日期，且不超过十年）".into());
            }
            let rows =
                metering::report(store, app_id.as_deref(), from, to).map_err(|e| e.to_string())?;
            serde_json::to_value(rows).map_err(|e| e.to_string())
        }
        Command::QuotaSet {
            app_id,
            kind,
            limit,
            from,
            until,
        } => {
            let kind = QuotaKind::parse(&kind)
                .ok_or_else(|| format!("未知配额类型 {kind}（可用 signatures、users）"))?;
            let q = metering::set_quota(
                store,
                &app_id,
                kind,
                limit,
                day(&from)?,
                day(&until)?,
                actor,
            )
            .map_err(|e| e.to_string())?;
            let detail = format!("{} {} {from}..{until}", kind.as_str(), q.limit);
            store
                .record_event(actor, "quota.set", &app_id, "ok", &detail)
                .map_err(|e| e.to_string())?;
            quota_value(&q)
        }
        Command::QuotaClear { app_id } => {
            if metering::clear_quota(store, &app_id)
                .map_err(|e| e.to_string())?
                .is_none()
            {
                return Err(format!("系统 {app_id} 没有配额"));
            }
            store
                .record_event(actor, "quota.clear", &app_id, "ok", "")
                .map_err(|e| e.to_string())?;
            Ok(json!({"appId": app_id, "quota": null}))
        }
        Command::QuotaShow { app_id } => {
            match store.get_quota(&app_id).map_err(|e| e.to_string())? {
                Some(q) => quota_value(&q),
                None => Ok(Value::Null),
            }
        }
    }
}

fn day(s: &str) -> Result<u32, String> {
    metering::parse_day(s).map_err(|e| e.to_string())
}

fn quota_value(q: &Quota) -> Result<Value, String> {
    serde_json::to_value(metering::QuotaStatus::of(q, crate::time::now_ms()))
        .map_err(|e| e.to_string())
}

fn b64_decode(s: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| "内容不是有效的 Base64".to_string())
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    ok: bool,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error: String,
}

/// Sends `cmd` to a running server. `Ok(None)` when no server listens on the socket.
pub fn call(data_dir: &Path, cmd: &Command) -> Result<Option<Value>, String> {
    let path = socket_path(data_dir);
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(_) => return Ok(None),
    };
    // Verifying a large document takes seconds; a server that says nothing for minutes is stuck.
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(300)));
    let mut line = serde_json::to_vec(cmd).map_err(|e| e.to_string())?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|e| format!("控制套接字写入失败: {e}"))?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(|e| format!("控制套接字读取失败: {e}"))?;
    let reply: Reply =
        serde_json::from_str(&reply).map_err(|e| format!("控制套接字应答无效: {e}"))?;
    if reply.ok {
        Ok(Some(reply.result))
    } else {
        Err(reply.error)
    }
}

/// Binds the control socket (owner-only). Called before the server announces itself, so a
/// management command issued right after start-up finds the socket, not a locked store.
pub fn bind(data_dir: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(data_dir);
    // A stale socket from a crashed run; the store lock proves no other server owns it.
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    tokio::net::UnixListener::from_std(listener)
}

/// Serves the control socket until the task is dropped.
pub async fn serve(
    listener: tokio::net::UnixListener,
    config: Config,
    store: Store,
    keys: std::sync::Arc<Keyring>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let config = std::sync::Arc::new(config);
    loop {
        let (stream, _) = listener.accept().await?;
        let store = store.clone();
        let keys = keys.clone();
        let config = config.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut reader = tokio::io::BufReader::new(read.take(MAX_LINE as u64));
            let mut line = String::new();
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let reply = match serde_json::from_str::<Command>(&line) {
                Err(e) => Reply {
                    ok: false,
                    result: Value::Null,
                    error: format!("无效的控制命令: {e}"),
                },
                Ok(cmd) => {
                    let writes = cmd.changes_state();
                    let s = store.clone();
                    let res = tokio::task::spawn_blocking(move || {
                        execute(&s, Some(&keys), &config, cmd, "cli")
                    })
                    .await
                    .unwrap_or_else(|_| Err("命令执行失败".into()));
                    if writes && res.is_ok() && store.commit().await.is_err() {
                        Reply {
                            ok: false,
                            result: Value::Null,
                            error: "写入磁盘失败".into(),
                        }
                    } else {
                        match res {
                            Ok(result) => Reply {
                                ok: true,
                                result,
                                error: String::new(),
                            },
                            Err(error) => Reply {
                                ok: false,
                                result: Value::Null,
                                error,
                            },
                        }
                    }
                }
            };
            if let Ok(mut bytes) = serde_json::to_vec(&reply) {
                bytes.push(b'\n');
                let _ = write.write_all(&bytes).await;
            }
        });
    }
}
