//! Management commands and the local control socket.
//!
//! The CLI's management commands run through [`execute`] either inside the running server
//! (sent over `control.sock` in the data directory, mode 0600) or, when no server runs, in
//! the CLI process against the store it opens itself. sled's file lock guarantees only one
//! of the two ever writes. Each command calls the same domain function as the console for
//! the same act, so both give the same answer and record the same audit event.
//!
//! The protocol is one JSON line each way: a [`Command`], then a [`Reply`] carrying either the
//! command's typed [`Response`] or a [`ControlError`] with a code and a Chinese message.
//! Internal faults are logged here and reach the CLI as `internal` without their text.

use crate::config::Config;
use crate::domain::audit;
use crate::domain::audit_event::{Action, Actor, Outcome};
use crate::domain::metering::{self, QuotaStatus, ReportRow};
use crate::domain::vocab::{QuotaKind, Role, SystemState};
use crate::domain::{DomainError, accounts, documents, systems};
use crate::keys::{KekRotation, Keyring, PlatformRotation, ProviderStatus, RetiredKek};
use crate::store::Store;
use crate::time::Day;
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
        state: Option<SystemState>,
    },
    SystemList,
    SystemSetState {
        app_id: String,
        state: SystemState,
        reason: String,
    },
    /// Checks a system's callback stage by stage (issue 13 point 3).
    SystemCheckCallback {
        app_id: String,
    },
    AdminCreate {
        role: Role,
        username: String,
        password: String,
    },
    /// Removes an account's second factors; answered with the username.
    AdminResetSecondFactor {
        username: String,
    },
    KeysStatus,
    /// `hutong keys rotate platform`: a new platform SM2 key and certificate, in use at once.
    KeysRotatePlatform,
    /// `hutong keys rotate kek`: a new KEK, the platform key re-wrapped, the old KEK retired.
    KeysRotateKek,
    /// `hutong keys rotate kek --finish --verified-backup FILE`: destroys the retired KEK once
    /// FILE (a path the server can read) verifies under the new one.
    KeysFinishKek {
        verified_backup: String,
    },
    /// `hutong status`: answered only by a running server (it needs the live state).
    Status,
    /// `hutong tls reload`: the running server reads its TLS certificate and key again.
    TlsReload,
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
    /// Sets a system's quota, valid on days `from..=until` (`YYYY-MM-DD`).
    QuotaSet {
        app_id: String,
        kind: QuotaKind,
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
    /// `audit export`: the JSON Lines of SPEC §6.1 for entries in the time range (UTC ms).
    AuditExport {
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    },
    /// `audit verify`: the whole log recomputed and every checkpoint checked.
    AuditVerify,
    /// `audit proof --seq N --size M`.
    AuditInclusion {
        seq: u64,
        size: u64,
    },
    /// `audit proof --consistency A B`.
    AuditConsistency {
        from_size: u64,
        to_size: u64,
    },
    /// `admin list`.
    AdminList,
    /// `admin disable|enable USER`: also ends its sessions.
    AdminSetDisabled {
        username: String,
        disabled: bool,
    },
    /// `admin reset-password USER`: a generated password, to change at the next login.
    AdminResetPassword {
        username: String,
    },
    /// `admin unlock USER`: clears a lockout.
    AdminUnlock {
        username: String,
    },
    /// `backup --out FILE`: the file's bytes come back in frames (`control_stream`).
    Backup,
    /// `backup --scheduled`: the scheduled backup, now, into `backup.dir`.
    BackupScheduled,
    /// `tenant destroy`: crypto-shreds a departed system's tenant (needs the key store).
    TenantDestroy {
        app_id: String,
        reason: String,
    },
}

impl Command {
    /// The action and target of a read-only command's audit entry (`None` for commands whose
    /// domain act records itself).
    fn read_audit(&self) -> Option<(Action, String)> {
        Some(match self {
            Command::SystemList => (Action::SystemList, String::new()),
            Command::AdminList => (Action::AccountList, String::new()),
            Command::KeysStatus => (Action::KeyStatus, "platform".into()),
            Command::Status => (Action::PlatformStatus, "platform".into()),
            Command::TrustList => (Action::TrustList, String::new()),
            Command::VerifyDocument { file_name, .. } => {
                (Action::DocumentVerify, file_name.clone())
            }
            Command::UsageReport { app_id, .. } => {
                (Action::UsageExport, app_id.clone().unwrap_or_default())
            }
            Command::QuotaShow { app_id } => (Action::QuotaShow, app_id.clone()),
            Command::AuditExport { .. } => (Action::AuditExport, String::new()),
            Command::AuditVerify => (Action::AuditVerify, String::new()),
            Command::AuditInclusion { seq, .. } => (Action::AuditProof, seq.to_string()),
            Command::AuditConsistency { from_size, to_size } => {
                (Action::AuditProof, format!("{from_size}..{to_size}"))
            }
            _ => return None,
        })
    }

    pub fn changes_state(&self) -> bool {
        !matches!(
            self,
            Command::SystemList
                | Command::AdminList
                | Command::KeysStatus
                | Command::Status
                | Command::TrustList
                | Command::VerifyDocument { .. }
                | Command::UsageReport { .. }
                | Command::QuotaShow { .. }
                | Command::AuditExport { .. }
                | Command::AuditVerify
                | Command::AuditInclusion { .. }
                | Command::AuditConsistency { .. }
        )
    }
}

/// What a running server knows only about itself (for `hutong status`).
pub struct Live {
    pub started_ms: i64,
    pub listeners: Vec<String>,
    pub interop: std::sync::Arc<crate::interop::MemberClient>,
    pub tls: std::sync::Arc<super::tls::ServerCert>,
    pub metrics: std::sync::Arc<crate::app::metrics::Metrics>,
}

/// `hutong status`: one screen about the running appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub version: String,
    pub uptime_secs: i64,
    pub listeners: Vec<String>,
    pub keys: ProviderStatus,
    /// Bytes of the store's files on disk.
    pub store_bytes: u64,
    /// (state, how many systems), in the vocabulary's order.
    pub systems: Vec<(String, usize)>,
    pub audit_size: u64,
    /// UTC ms of the newest checkpoint and the tree size it signs.
    pub last_checkpoint: Option<(i64, u64)>,
    /// Members whose circuit breaker is open.
    pub open_breakers: Vec<String>,
    /// The newest backup run.
    #[serde(default)]
    pub last_backup: Option<crate::store::backup::BackupStatus>,
    /// The serving TLS certificate.
    #[serde(default)]
    pub tls: Option<super::tls::CertSummary>,
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn status_report(
    store: &Store,
    keys: &Keyring,
    config: &Config,
    live: &Live,
) -> Result<StatusReport, ControlError> {
    let systems = store.list_systems()?;
    let by_state = crate::domain::vocab::SystemState::ALL
        .iter()
        .map(|s| {
            let n = systems.iter().filter(|r| r.state == *s).count();
            (s.as_str().to_string(), n)
        })
        .collect();
    let last_checkpoint = store
        .last_audit_checkpoint()?
        .and_then(|(_, cp)| crate::audit::checkpoint::parse(&cp.text))
        .map(|p| (p.at_ms, p.size));
    Ok(StatusReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_secs: (crate::time::now_ms() - live.started_ms) / 1000,
        listeners: live.listeners.clone(),
        keys: keys.status(),
        store_bytes: dir_bytes(&config.data_dir.join("db")),
        systems: by_state,
        audit_size: store.audit_frontier()?.size,
        last_checkpoint,
        open_breakers: live.interop.open_breakers(),
        last_backup: store.backup_status()?,
        tls: Some(live.tls.summary()),
    })
}

/// `system add`: the new system's appId.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemAdded {
    pub app_id: String,
}

/// One row of `system list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemSummary {
    pub app_id: String,
    pub name: String,
    pub plat_name: String,
    pub state: SystemState,
    pub callback_url: Option<String>,
    pub created_ms: i64,
}

/// `system set-state`: the state the system is in now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemStateChanged {
    pub app_id: String,
    pub state: SystemState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminCreated {
    pub username: String,
    pub role: Role,
}

/// `admin reset-password`: the new password, shown once to whoever ran the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordReset {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustAdded {
    pub id: String,
    pub subject: String,
}

/// One row of `trust list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustAnchor {
    pub id: String,
    pub subject: String,
    pub not_after: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustRemoved {
    pub removed: String,
}

/// A quota and its consumption (`quota set`, `quota show`): the domain's own view.
pub type QuotaView = QuotaStatus;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaCleared {
    pub app_id: String,
    /// Always null: the system has no quota now.
    pub quota: Option<QuotaView>,
}

/// One response type per command.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    SystemAdd(SystemAdded),
    SystemList(Vec<SystemSummary>),
    SystemSetState(SystemStateChanged),
    SystemCheckCallback(crate::interop::check::CheckReport),
    AdminCreate(AdminCreated),
    AdminResetSecondFactor(String),
    AdminList(Vec<accounts::AdminSummary>),
    /// The account a disable, enable or unlock changed.
    AdminChanged(String),
    AdminResetPassword(PasswordReset),
    /// `keys status`: the provider and key ids, never key material.
    KeysStatus(ProviderStatus),
    KeysRotatePlatform(PlatformRotation),
    KeysRotateKek(KekRotation),
    /// The retired KEKs destroyed by `--finish`.
    KeysFinishKek(Vec<RetiredKek>),
    Status(Box<StatusReport>),
    TlsReload(super::tls::CertSummary),
    TrustAdd(TrustAdded),
    TrustList(Vec<TrustAnchor>),
    TrustRemove(TrustRemoved),
    /// The API's `data` of `document/verify`, as the API renders it.
    VerifyDocument(Value),
    UsageReport(Vec<ReportRow>),
    QuotaSet(QuotaView),
    QuotaClear(QuotaCleared),
    QuotaShow(Option<QuotaView>),
    AuditExport(String),
    AuditVerify(crate::audit::export::Report),
    /// An RFC 9162 proof as JSON.
    AuditProof(Value),
    Backup(crate::backup::BackupSummary),
    BackupScheduled(crate::store::backup::BackupStatus),
    TenantDestroy(crate::domain::tenants::Destruction),
}

/// What kind of refusal a [`ControlError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The command's arguments break a rule.
    Invalid,
    NotFound,
    Conflict,
    Forbidden,
    /// The platform keys are not loaded.
    KeysUnavailable,
    /// The request line is not a command of this version.
    BadCommand,
    /// A fault inside the platform; its details are in the server's log.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    pub code: ErrorCode,
    pub message: String,
}

impl ControlError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ControlError {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{what}");
        ControlError::new(ErrorCode::Internal, "内部错误，详见服务日志")
    }
}

impl From<DomainError> for ControlError {
    fn from(e: DomainError) -> Self {
        let code = match &e {
            DomainError::Invalid(_)
            | DomainError::SealInvalid(_)
            | DomainError::Quota(_)
            | DomainError::SignId(_) => ErrorCode::Invalid,
            DomainError::NotFound(_) => ErrorCode::NotFound,
            DomainError::Conflict(_)
            | DomainError::Duplicate(_)
            | DomainError::AuthId(_)
            | DomainError::NotConfirmed(_) => ErrorCode::Conflict,
            DomainError::Forbidden(_) => ErrorCode::Forbidden,
            // No management command routes to a member; should one, its failure is the platform's.
            DomainError::HomeAnswer(_) | DomainError::Interop(_) => {
                return ControlError::internal("member call", &e);
            }
            DomainError::Store(s) => return ControlError::internal("control command", s),
        };
        ControlError::new(code, e.to_string())
    }
}

impl From<crate::store::StoreError> for ControlError {
    fn from(e: crate::store::StoreError) -> Self {
        DomainError::from(e).into()
    }
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// Runs a management command as the CLI of this process's user. `keys` is absent when the
/// caller could not load them.
pub fn execute(
    store: &Store,
    keys: Option<&Keyring>,
    config: &Config,
    cmd: Command,
) -> Result<Response, ControlError> {
    execute_as(store, keys, config, cmd, &local_cli_actor())
}

/// The CLI as the operating-system user running this process.
pub fn local_cli_actor() -> Actor {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata("/proc/self") {
        Ok(m) => Actor::cli_user(&os_user_name(m.uid())),
        Err(_) => Actor::cli(),
    }
}

/// The control socket's peer as an audit actor: who ran the command on this machine.
fn peer_actor(stream: &tokio::net::UnixStream) -> Actor {
    match stream.peer_cred() {
        Ok(c) => Actor::cli_user(&os_user_name(c.uid())),
        Err(_) => Actor::cli(),
    }
}

/// The login name of `uid` from `/etc/passwd`, else `uid N`.
fn os_user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// [`execute`] as `actor`.
pub fn execute_as(
    store: &Store,
    keys: Option<&Keyring>,
    config: &Config,
    cmd: Command,
    actor: &Actor,
) -> Result<Response, ControlError> {
    // Commands that change state are audited by the domain act they perform; the read-only
    // ones are audited here, so every management command leaves an entry.
    let Some((action, target)) = cmd.read_audit() else {
        return run(store, keys, config, cmd, actor);
    };
    let res = run(store, keys, config, cmd, actor);
    match &res {
        Ok(_) => audit::record(store, actor, action, Outcome::Ok, &target, "")?,
        Err(e) => audit::note(store, actor, action, Outcome::Failed, &target, &e.message),
    }
    res
}

/// `hutong status`, audited like the other read-only commands.
fn audited_status(
    store: &Store,
    keys: &Keyring,
    config: &Config,
    live: &Live,
    actor: &Actor,
) -> Result<Response, ControlError> {
    let res = status_report(store, keys, config, live);
    let (action, target) = (Action::PlatformStatus, "platform");
    match &res {
        Ok(_) => audit::record(store, actor, action, Outcome::Ok, target, "")?,
        Err(e) => audit::note(store, actor, action, Outcome::Failed, target, &e.message),
    }
    res.map(|r| Response::Status(Box::new(r)))
}

/// `hutong keys rotate platform`. The old key signs a checkpoint of everything before the
/// switch, the rotation's entry names both certificates, and the new key signs a checkpoint
/// covering that entry, so the log shows the hand-over under both keys.
fn rotate_platform(
    store: &Store,
    keys: &Keyring,
    config: &Config,
    actor: &Actor,
) -> Result<PlatformRotation, ControlError> {
    let action = Action::KeyRotatePlatform;
    let region = &config.region_code;
    // No other checkpoint between the old key's last and the new key's first.
    let held = crate::audit::checkpoint::hold();
    crate::audit::checkpoint::make_held(&held, store, keys, region)?;
    match keys.rotate_platform(config) {
        Ok(r) => {
            let detail = format!(
                "平台证书 {} 替换 {}，旧证书公布至 {}",
                r.current_sm3.get(..16).unwrap_or(&r.current_sm3),
                r.previous_sm3.get(..16).unwrap_or(&r.previous_sm3),
                crate::time::format_time_ms(r.overlap_end_ms)
            );
            // The rotation stands once made: a failure to record it is logged, not reported
            // as a failed rotation (a retry would rotate a second time).
            if let Err(e) = audit::record(store, actor, action, Outcome::Ok, "platform", &detail)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    crate::audit::checkpoint::make_held(&held, store, keys, region)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
            {
                tracing::error!(error = %e, "platform key rotated, but its audit entry or checkpoint was not written");
            }
            tracing::info!(current = %r.current_sm3, previous = %r.previous_sm3, "platform key rotated");
            Ok(r)
        }
        Err(e) => {
            let message = format!("平台密钥未轮换，仍使用原密钥：{e}");
            audit::note(store, actor, action, Outcome::Failed, "platform", &message);
            Err(ControlError::new(ErrorCode::Internal, message))
        }
    }
}

/// `hutong keys rotate kek`, audited with both KEKs' ids (or why not).
fn rotate_kek(
    store: &Store,
    keys: &Keyring,
    config: &Config,
    actor: &Actor,
) -> Result<KekRotation, ControlError> {
    let action = Action::KeyRotateKek;
    // A data key still under the KEK alone (a store from before tenant keys) moves under its
    // tenant key first, so destroying the old KEK later loses nothing.
    let rotated = match store.migrate_data_keys(keys.provider()) {
        Ok(_) => keys.rotate_kek(config).map_err(|e| e.to_string()),
        Err(e) => Err(format!("旧式数据密钥迁移到租户密钥失败：{e}")),
    };
    match rotated {
        Ok(r) => {
            let detail = format!(
                "新 KEK {}，旧 KEK {} 保留为 {}（仅供解封较早的备份），已重新封装 {}；请备份后以 --finish 销毁旧 KEK",
                short(&r.current_id),
                short(&r.previous_id),
                r.retired_name,
                r.rewrapped.join("、")
            );
            audit::record(store, actor, action, Outcome::Ok, "kek", &detail)?;
            Ok(r)
        }
        Err(e) => {
            let message = format!("KEK 未轮换，仍使用原 KEK：{e}");
            audit::note(store, actor, action, Outcome::Failed, "kek", &message);
            Err(ControlError::new(ErrorCode::Invalid, message))
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

/// `--finish`: the retired KEK is destroyed only when `backup` verifies completely (digest,
/// signature, every record) with the current KEK alone, i.e. it was made after the rotation.
fn finish_kek_rotation(
    store: &Store,
    keys: &Keyring,
    config: &Config,
    actor: &Actor,
    backup: &Path,
) -> Result<Vec<RetiredKek>, ControlError> {
    let action = Action::KeyDestroyKek;
    let refuse = |message: String| {
        audit::note(store, actor, action, Outcome::Denied, "kek", &message);
        ControlError::new(ErrorCode::Invalid, message)
    };
    if keys.retired_keks().is_empty() {
        return Err(refuse("没有待销毁的旧 KEK（未轮换过，或已完成）".into()));
    }
    let current = keys.current_kek();
    let certs = keys.platform_cert_ders();
    if let Err(e) = crate::backup::verify(backup, Some(&certs), Ok(current.as_ref())) {
        return Err(refuse(format!(
            "旧 KEK 未销毁：备份 {} 未能在新 KEK 下完整校验（须为轮换之后所做的备份）：{e}",
            backup.display()
        )));
    }
    match keys.finish_kek_rotation(config) {
        Ok(destroyed) => {
            let names: Vec<&str> = destroyed.iter().map(|r| r.name.as_str()).collect();
            let detail = format!(
                "已销毁旧 KEK {}（备份 {} 已在新 KEK 下校验通过）",
                names.join("、"),
                backup.display()
            );
            audit::record(store, actor, action, Outcome::Ok, "kek", &detail)?;
            Ok(destroyed)
        }
        Err(e) => {
            let message = format!("旧 KEK 未能销毁：{e}");
            audit::note(store, actor, action, Outcome::Failed, "kek", &message);
            Err(ControlError::new(ErrorCode::Invalid, message))
        }
    }
}

/// `hutong tls reload`, audited with the certificate it now serves (or why not).
fn audited_tls_reload(store: &Store, live: &Live, actor: &Actor) -> Result<Response, ControlError> {
    let action = Action::PlatformTlsReload;
    match super::reload_tls(&live.tls, &live.metrics) {
        Ok(summary) => {
            let detail = format!(
                "{}，有效期至 {}",
                summary.subject,
                crate::time::format_time_ms(summary.not_after_ms)
            );
            audit::record(store, actor, action, Outcome::Ok, "platform", &detail)?;
            Ok(Response::TlsReload(summary))
        }
        Err(e) => {
            let message = format!("TLS 证书未重新加载，仍使用原证书：{e}");
            audit::note(store, actor, action, Outcome::Failed, "platform", &message);
            Err(ControlError::new(ErrorCode::BadCommand, message))
        }
    }
}

fn run(
    store: &Store,
    keys: Option<&Keyring>,
    config: &Config,
    cmd: Command,
    actor: &Actor,
) -> Result<Response, ControlError> {
    let actor = actor.clone();
    Ok(match cmd {
        Command::SystemAdd {
            name,
            plat_name,
            public_key_pem,
            callback_url,
            callback_ca_pem,
            dest_host,
            state,
        } => {
            let new = systems::NewSystem {
                name,
                plat_name,
                vendor: None,
                public_key_pem,
                callback_url,
                callback_ca_pem,
                dest_host,
                state,
            };
            let rec = systems::add_system(store, new, &actor)?;
            Response::SystemAdd(SystemAdded { app_id: rec.app_id })
        }
        Command::SystemList => Response::SystemList(
            store
                .list_systems()?
                .into_iter()
                .map(|s| SystemSummary {
                    app_id: s.app_id,
                    name: s.name,
                    plat_name: s.plat_name,
                    state: s.state,
                    callback_url: s.callback_url,
                    created_ms: s.created_ms,
                })
                .collect(),
        ),
        Command::SystemSetState {
            app_id,
            state,
            reason,
        } => {
            let rec = systems::set_state(store, &app_id, state, &reason, &actor)?;
            Response::SystemSetState(SystemStateChanged {
                app_id: rec.app_id,
                state: rec.state,
            })
        }
        Command::AdminCreate {
            role,
            username,
            password,
        } => {
            if !matches!(role, Role::Operator | Role::Security | Role::Auditor) {
                return Err(ControlError::new(
                    ErrorCode::Invalid,
                    "管理员角色只能是 operator、security 或 auditor",
                ));
            }
            let rec = accounts::create_account(store, &username, role, &password, true, &actor)?;
            Response::AdminCreate(AdminCreated {
                username: rec.username,
                role: rec.role,
            })
        }
        Command::AdminList => Response::AdminList(accounts::list_admins(store)?),
        Command::AdminSetDisabled { username, disabled } => {
            accounts::set_disabled(store, &username, disabled, &actor)?;
            store.retain_sessions(|s| s.username != username)?;
            Response::AdminChanged(username)
        }
        Command::AdminUnlock { username } => {
            accounts::unlock(store, &username, &actor)?;
            Response::AdminChanged(username)
        }
        Command::AdminResetPassword { username } => {
            let password = accounts::generate_password();
            let hash = accounts::hash_password(&password)?;
            accounts::reset_password(store, &username, hash, &actor)?;
            store.retain_sessions(|s| s.username != username)?;
            Response::AdminResetPassword(PasswordReset { username, password })
        }
        Command::AdminResetSecondFactor { username } => {
            crate::domain::second_factor::reset(store, &username, &actor)?;
            Response::AdminResetSecondFactor(username)
        }
        Command::SystemCheckCallback { app_id } => {
            let k = keys.ok_or_else(|| {
                ControlError::new(ErrorCode::KeysUnavailable, "平台密钥未加载，无法签名回调")
            })?;
            let timeout = std::time::Duration::from_millis(config.interop.member_timeout_ms);
            Response::SystemCheckCallback(systems::check_callback(
                store, k, &app_id, &actor, timeout,
            )?)
        }
        Command::TenantDestroy { app_id, reason } => {
            let k = keys.ok_or_else(|| {
                ControlError::new(ErrorCode::KeysUnavailable, "密钥未加载，无法删除租户密钥")
            })?;
            // The command names the appId once; that is its confirmation.
            Response::TenantDestroy(crate::domain::tenants::destroy(
                store,
                k.provider(),
                &app_id,
                &app_id,
                &reason,
                &actor,
            )?)
        }
        Command::Status => {
            return Err(ControlError::new(
                ErrorCode::BadCommand,
                "hutong 未运行：status 只由运行中的服务回答",
            ));
        }
        Command::BackupScheduled => {
            let k =
                keys.ok_or_else(|| ControlError::new(ErrorCode::KeysUnavailable, "密钥未加载"))?;
            Response::BackupScheduled(crate::backup::schedule::run(store, k, config))
        }
        Command::Backup => {
            return Err(ControlError::new(
                ErrorCode::BadCommand,
                "备份的内容经控制套接字分帧传回，不作为单行应答",
            ));
        }
        Command::TlsReload => {
            return Err(ControlError::new(
                ErrorCode::BadCommand,
                "hutong 未运行：tls reload 只由运行中的服务执行",
            ));
        }
        Command::KeysStatus => {
            let k =
                keys.ok_or_else(|| ControlError::new(ErrorCode::KeysUnavailable, "密钥未加载"))?;
            Response::KeysStatus(k.status())
        }
        Command::KeysRotatePlatform => {
            let k = keys.ok_or_else(|| {
                ControlError::new(ErrorCode::KeysUnavailable, "密钥未加载，无法轮换平台密钥")
            })?;
            Response::KeysRotatePlatform(rotate_platform(store, k, config, &actor)?)
        }
        Command::KeysRotateKek => {
            let k = keys.ok_or_else(|| {
                ControlError::new(ErrorCode::KeysUnavailable, "密钥未加载，无法轮换 KEK")
            })?;
            Response::KeysRotateKek(rotate_kek(store, k, config, &actor)?)
        }
        Command::KeysFinishKek { verified_backup } => {
            let k = keys.ok_or_else(|| {
                ControlError::new(ErrorCode::KeysUnavailable, "密钥未加载，无法销毁旧 KEK")
            })?;
            let path = PathBuf::from(verified_backup);
            Response::KeysFinishKek(finish_kek_rotation(store, k, config, &actor, &path)?)
        }
        Command::TrustAdd { certificate_b64 } => {
            let bytes = b64_decode(&certificate_b64)?;
            let (id, subject) = documents::add_trust_anchor(store, &bytes, &actor)?;
            Response::TrustAdd(TrustAdded { id, subject })
        }
        Command::TrustList => Response::TrustList(
            store
                .trust_anchors()?
                .into_iter()
                .map(|(id, der)| {
                    let info = crate::crypto::x509::CertInfo::parse(&der).ok();
                    TrustAnchor {
                        id,
                        subject: info.as_ref().map(|i| i.subject.clone()).unwrap_or_default(),
                        not_after: info
                            .map(|i| crate::time::format_time_ms(i.not_after_ms))
                            .unwrap_or_default(),
                    }
                })
                .collect(),
        ),
        Command::TrustRemove { id } => {
            documents::remove_trust_anchor(store, &id, &actor)?;
            Response::TrustRemove(TrustRemoved { removed: id })
        }
        Command::VerifyDocument {
            file_name,
            content_b64,
        } => {
            let bytes = b64_decode(&content_b64)?;
            let report = documents::verify_upload(store, config, bytes, &file_name)
                .map_err(|e| ControlError::new(ErrorCode::Invalid, e.to_string()))?;
            let v = serde_json::to_value(report)
                .map_err(|e| ControlError::internal("verification report", e))?;
            Response::VerifyDocument(v)
        }
        Command::UsageReport { app_id, from, to } => {
            let rows = metering::report(store, app_id.as_deref(), day(&from)?, day(&to)?)?;
            Response::UsageReport(rows)
        }
        Command::QuotaSet {
            app_id,
            kind,
            limit,
            from,
            until,
        } => {
            let (from, until) = (day(&from)?, day(&until)?);
            let q = metering::set_quota(store, &app_id, kind, limit, from, until, &actor)?;
            Response::QuotaSet(QuotaStatus::of(&q, crate::time::now_ms()))
        }
        Command::QuotaClear { app_id } => {
            metering::clear_quota(store, &app_id, &actor)?;
            Response::QuotaClear(QuotaCleared {
                app_id,
                quota: None,
            })
        }
        Command::QuotaShow { app_id } => Response::QuotaShow(metering::quota_status(
            store,
            &app_id,
            crate::time::now_ms(),
        )?),
        Command::AuditExport { from_ms, to_ms } => {
            let mut out = Vec::new();
            crate::audit::export::export(store, from_ms, to_ms, &mut out)?;
            Response::AuditExport(String::from_utf8_lossy(&out).into_owned())
        }
        Command::AuditVerify => {
            let certs = match keys {
                Some(k) => k.platform_cert_ders(),
                None => crate::keys::platform_cert_ders(config)
                    .map_err(|e| ControlError::new(ErrorCode::KeysUnavailable, e.to_string()))?,
            };
            Response::AuditVerify(crate::audit::export::verify_store(store, &certs)?)
        }
        Command::AuditInclusion { seq, size } => Response::AuditProof(
            crate::audit::export::inclusion(store, seq, size)?
                .map_err(|m| ControlError::new(ErrorCode::Invalid, m))?,
        ),
        Command::AuditConsistency { from_size, to_size } => Response::AuditProof(
            crate::audit::export::consistency(store, from_size, to_size)?
                .map_err(|m| ControlError::new(ErrorCode::Invalid, m))?,
        ),
    })
}

fn day(s: &str) -> Result<Day, ControlError> {
    Day::parse(s).map_err(|e| ControlError::new(ErrorCode::Invalid, e.to_string()))
}

fn b64_decode(s: &str) -> Result<Vec<u8>, ControlError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| ControlError::new(ErrorCode::Invalid, "内容不是有效的 Base64"))
}

/// One answer line: the command's response or why it was refused.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reply {
    Ok(Response),
    Error(ControlError),
}

impl From<Result<Response, ControlError>> for Reply {
    fn from(r: Result<Response, ControlError>) -> Self {
        match r {
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Error(e),
        }
    }
}

/// Why the CLI could not get an answer from the socket at all.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("控制套接字写入失败: {0}")]
    Write(std::io::Error),
    #[error("控制套接字读取失败: {0}")]
    Read(std::io::Error),
    #[error("控制套接字应答无效: {0}")]
    BadReply(serde_json::Error),
    #[error("控制命令无法编码: {0}")]
    Encode(serde_json::Error),
    /// The server answered with a refusal.
    #[error(transparent)]
    Refused(#[from] ControlError),
}

/// Sends `cmd` to a running server. `Ok(None)` when no server listens on the socket.
pub fn call(data_dir: &Path, cmd: &Command) -> Result<Option<Response>, CallError> {
    let path = socket_path(data_dir);
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(_) => return Ok(None),
    };
    // Verifying a large document takes seconds; a server that says nothing for minutes is stuck.
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(300)));
    let mut line = serde_json::to_vec(cmd).map_err(CallError::Encode)?;
    line.push(b'\n');
    stream.write_all(&line).map_err(CallError::Write)?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(CallError::Read)?;
    match serde_json::from_str(&reply).map_err(CallError::BadReply)? {
        Reply::Ok(r) => Ok(Some(r)),
        Reply::Error(e) => Err(e.into()),
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
    live: std::sync::Arc<Live>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let config = std::sync::Arc::new(config);
    loop {
        let (stream, _) = listener.accept().await?;
        let actor = peer_actor(&stream);
        let store = store.clone();
        let keys = keys.clone();
        let config = config.clone();
        let live = live.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut reader = tokio::io::BufReader::new(read.take(MAX_LINE as u64));
            let mut line = String::new();
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let reply = match serde_json::from_str::<Command>(&line) {
                Ok(Command::Backup) => {
                    super::control_stream::serve_backup(write, store, keys, config, actor).await;
                    return;
                }
                Err(e) => Reply::Error(ControlError::new(
                    ErrorCode::BadCommand,
                    format!("无效的控制命令: {e}"),
                )),
                Ok(cmd) => {
                    let writes = cmd.changes_state();
                    let s = store.clone();
                    let interop = live.interop.clone();
                    let res = tokio::task::spawn_blocking(move || match cmd {
                        Command::Status => audited_status(&s, &keys, &config, &live, &actor),
                        Command::TlsReload => audited_tls_reload(&s, &live, &actor),
                        cmd => execute_as(&s, Some(&keys), &config, cmd, &actor),
                    })
                    .await
                    .unwrap_or_else(|e| Err(ControlError::internal("control task", e)));
                    // The CLI's check is one of the member's callbacks, as the console's is.
                    if let Ok(Response::SystemCheckCallback(r)) = &res {
                        interop.note_check(r);
                    }
                    // A refused act is recorded too, so its event is committed like a change.
                    if writes && let Err(e) = store.commit().await {
                        Reply::Error(ControlError::internal("control commit", e))
                    } else {
                        res.into()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_replies_travel_as_typed_json() {
        let cmd = Command::SystemSetState {
            app_id: "HT1".into(),
            state: SystemState::Suspended,
            reason: "违规".into(),
        };
        let line = serde_json::to_value(&cmd).unwrap();
        assert_eq!(line["cmd"], "system-set-state");
        assert_eq!(line["state"], "suspended");
        // A state outside the vocabulary is not a command.
        let bad = r#"{"cmd":"system-set-state","app_id":"HT1","state":"gone","reason":"x"}"#;
        assert!(serde_json::from_str::<Command>(bad).is_err());

        let ok = Reply::Ok(Response::SystemAdd(SystemAdded {
            app_id: "HT1".into(),
        }));
        let text = serde_json::to_string(&ok).unwrap();
        assert_eq!(text, r#"{"ok":{"system-add":{"appId":"HT1"}}}"#);
        let err = Reply::Error(ControlError::new(ErrorCode::NotFound, "系统 HT1 没有配额"));
        let text = serde_json::to_string(&err).unwrap();
        let Reply::Error(back) = serde_json::from_str(&text).unwrap() else {
            panic!("{text}");
        };
        assert_eq!(
            (back.code, back.message.as_str()),
            (ErrorCode::NotFound, "系统 HT1 没有配额")
        );
    }

    #[test]
    fn storage_faults_reach_the_cli_without_their_text() {
        let e = ControlError::from(DomainError::Store(crate::store::StoreError::Corrupt(
            "tree events: bad key 0x00ff".into(),
        )));
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(!e.message.contains("0x00ff"), "{}", e.message);
        let e = ControlError::from(DomainError::NotFound("系统 X 不存在".into()));
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::NotFound, "系统 X 不存在")
        );
    }
}
