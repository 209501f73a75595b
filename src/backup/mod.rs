//! Backups (SPEC §6.2): take one from a serving store, check one, restore one into a new
//! data directory. The file's bytes are [`format`]'s; this module supplies its keys (a fresh
//! SM4 backup key wrapped by the KEK, the platform key's signature) and its audit entries.

pub mod format;
pub mod schedule;

use crate::audit::merkle::Frontier;
use crate::config::Config;
use crate::crypto::sm;
use crate::domain::audit;
use crate::domain::audit_event::{Action, Actor, Outcome};
use crate::keys::{self, KeyError, KeyProvider, Keyring};
use crate::store::{Store, StoreError};
use base64::Engine as _;
use format::{FormatError, Header, Records, Writer};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::io::{BufReader, Write};
use std::path::Path;
use zeroize::Zeroizing;

/// The pseudo-keyspace that carries the backed-up files of `keys/` (never a KEK).
const KEY_FILES: &str = "@keys";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("备份不属于本平台：备份的平台证书 SM3 为 {found}，本机为 {expected}")]
    OtherPlatform { found: String, expected: String },
    #[error("备份签名验证失败：不是平台私钥签发的备份，或文件被改动")]
    Signature,
    #[error("本机密钥库无法解封备份密钥：{0}")]
    KeyStore(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("备份审计记录写入失败: {0}")]
    Audit(String),
    #[error("运行中的服务未能完成备份: {0}")]
    Server(String),
    #[error("{0} 中没有数据库（先运行 hutong init）")]
    NoStore(std::path::PathBuf),
}

/// How far a backup or restore is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub records: u64,
    pub bytes: u64,
}

/// What a finished backup reports (and the control socket carries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupSummary {
    pub created_ms: i64,
    pub bytes: u64,
    pub records: u64,
    pub audit_tree_size: u64,
    pub audit_root: String,
    /// Hex SM3 over the file, as its trailer holds.
    pub digest: String,
    pub duration_ms: u64,
}

/// Records the run of a backup written by a CLI (`file` unknown to the server, not read
/// back): the console, `status` and `/metrics` show it.
pub fn record_cli_run(store: &Store, res: &Result<BackupSummary, BackupError>) {
    let status = crate::store::backup::BackupStatus {
        at_ms: crate::time::now_ms(),
        file: None,
        bytes: res.as_ref().map(|s| s.bytes).unwrap_or(0),
        digest: res.as_ref().map(|s| s.digest.clone()).unwrap_or_default(),
        verified: None,
        error: res.as_ref().err().map(|e| e.to_string()),
        last_good_ms: None,
    };
    if let Err(e) = store.put_backup_status(status) {
        tracing::error!(error = %e, "backup status not recorded");
    }
}

/// Calls `progress` at most every this many records.
const PROGRESS_EVERY: u64 = 2_000;

/// Takes a backup of `store` into `out` while the appliance serves, and records it in the
/// audit log (as `actor` did it) before returning.
pub fn take<W: Write>(
    store: &Store,
    keys: &Keyring,
    cfg: &Config,
    actor: &Actor,
    out: W,
    progress: &mut dyn FnMut(Progress),
) -> Result<(W, BackupSummary), BackupError> {
    let started = std::time::Instant::now();
    let res = write_backup(store, keys, cfg, out, progress, started);
    match &res {
        Ok((_, s)) => audit::record(
            store,
            actor,
            Action::PlatformBackup,
            Outcome::Ok,
            "platform",
            format!(
                "{} 条记录，{} 字节，审计树大小 {}，SM3 {}",
                s.records, s.bytes, s.audit_tree_size, s.digest
            ),
        )
        .map_err(|e| BackupError::Audit(e.to_string()))?,
        Err(e) => audit::note(
            store,
            actor,
            Action::PlatformBackup,
            Outcome::Failed,
            "platform",
            e.to_string(),
        ),
    }
    res
}

fn write_backup<W: Write>(
    store: &Store,
    keys: &Keyring,
    cfg: &Config,
    out: W,
    progress: &mut dyn FnMut(Progress),
    started: std::time::Instant,
) -> Result<(W, BackupSummary), BackupError> {
    let key = Zeroizing::new(sm::random_bytes::<16>());
    // One set for the wrapped backup key, the header's certificate, the signature and the key
    // files, whatever a rotation does meanwhile.
    let keys::BackupMaterial {
        wrapped_key: wrapped,
        status,
        platform,
        key_files,
    } = keys.backup_material(cfg, &key[..])?;
    let prefix = sm::random_bytes::<4>();
    let cert = platform.cert_der();
    let created_ms = crate::time::now_ms();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut header = Header {
        format: format::FORMAT,
        created_ms,
        created_at: crate::time::format_time_ms(created_ms),
        schema_version: crate::store::SCHEMA_VERSION,
        audit_tree_size: 0,
        audit_root: String::new(),
        platform_cert_sm3: sm::sm3_hex(cert),
        platform_cert: b64.encode(cert),
        key_provider: status.provider.clone(),
        kek_id: status.kek_id.clone(),
        wrapped_key: b64.encode(&wrapped),
        nonce_prefix: hex::encode(prefix),
        chunk_bytes: format::CHUNK_BYTES,
    };
    let writer = RefCell::new(None);
    let failed = RefCell::new(None);
    let out = RefCell::new(Some(out));
    let fail = |e: FormatError| {
        let text = e.to_string();
        *failed.borrow_mut() = Some(e);
        StoreError::Corrupt(text)
    };
    let start = |tree: &Frontier| {
        header.audit_tree_size = tree.size;
        header.audit_root = hex::encode(tree.root());
        let sink = out
            .borrow_mut()
            .take()
            .ok_or_else(|| StoreError::Corrupt("备份开始了两次".into()))?;
        let mut w = Writer::new(sink, &header, &key, prefix).map_err(fail)?;
        for (name, bytes) in &key_files {
            w.record(KEY_FILES, name.as_bytes(), bytes).map_err(fail)?;
        }
        *writer.borrow_mut() = Some(w);
        Ok(())
    };
    let visit = |space: &str, k: &[u8], v: &[u8]| {
        let mut guard = writer.borrow_mut();
        let w = guard
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt("备份尚未开始就读到了记录".into()))?;
        w.record(space, k, v).map_err(fail)?;
        if w.records().is_multiple_of(PROGRESS_EVERY) {
            progress(Progress {
                records: w.records(),
                bytes: w.bytes(),
            });
        }
        Ok(())
    };
    let snap = store.backup_snapshot(start, visit);
    if let Some(e) = failed.borrow_mut().take() {
        return Err(e.into());
    }
    snap?;
    let w = writer
        .into_inner()
        .ok_or_else(|| StoreError::Corrupt("备份没有开始".into()))?;
    let (out, written) = w.finish(|d| platform.sign(d))?;
    progress(Progress {
        records: written.records,
        bytes: written.bytes,
    });
    Ok((
        out,
        BackupSummary {
            created_ms,
            bytes: written.bytes,
            records: written.records,
            audit_tree_size: header.audit_tree_size,
            audit_root: header.audit_root.clone(),
            digest: hex::encode(written.digest),
            duration_ms: started.elapsed().as_millis() as u64,
        },
    ))
}

/// What `hutong backup --verify` found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub header: Header,
    pub bytes: u64,
    pub digest: String,
    /// Whether the certificate the signature was checked with came from outside the file.
    pub cert_from_key_store: bool,
    /// Records per keyspace, when the key store could open the body.
    pub body: Option<Vec<(String, u64)>>,
    /// Why the body was not opened (no key store here), when it was not.
    pub body_skipped: Option<String>,
}

fn open_file(path: &Path) -> Result<BufReader<std::fs::File>, BackupError> {
    std::fs::File::open(path)
        .map(|f| BufReader::with_capacity(256 * 1024, f))
        .map_err(|e| {
            FormatError::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            ))
            .into()
        })
}

/// First pass: digest and signature. `trusted` is the platform certificate to check against
/// (the key store's); without it the certificate in the header is used.
fn authenticate(path: &Path, trusted: Option<&[Vec<u8>]>) -> Result<format::Sealed, BackupError> {
    let sealed = format::read_sealed(open_file(path)?)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let in_file = b64
        .decode(&sealed.header.platform_cert)
        .map_err(|_| FormatError::Corrupt("文件头中的平台证书不是 Base64".into()))?;
    if sm::sm3_hex(&in_file) != sealed.header.platform_cert_sm3 {
        return Err(FormatError::Corrupt("文件头中的平台证书与其指纹不符".into()).into());
    }
    // Any of the platform's certificates: a backup made before a rotation still verifies.
    let cert = match trusted {
        Some(certs) => match certs
            .iter()
            .find(|t| sm::sm3_hex(t) == sealed.header.platform_cert_sm3)
        {
            Some(t) => t.clone(),
            None => {
                return Err(BackupError::OtherPlatform {
                    found: sealed.header.platform_cert_sm3.clone(),
                    expected: certs.first().map(|t| sm::sm3_hex(t)).unwrap_or_default(),
                });
            }
        },
        None => in_file,
    };
    let key = sm::sm2_public_key_from_cert_der(&cert)
        .map_err(|e| FormatError::Corrupt(format!("平台证书无效: {e}")))?;
    sm::sm2_verify(&key, &sealed.digest, &sealed.signature).map_err(|_| BackupError::Signature)?;
    Ok(sealed)
}

/// Unwraps the backup key with this machine's key store, naming both KEKs when it cannot.
fn backup_key(
    provider: &dyn KeyProvider,
    header: &Header,
) -> Result<Zeroizing<[u8; 16]>, BackupError> {
    let wrapped = base64::engine::general_purpose::STANDARD
        .decode(&header.wrapped_key)
        .map_err(|_| FormatError::Corrupt("文件头中的封装密钥不是 Base64".into()))?;
    let here = provider.status();
    let plain = provider.unwrap(&wrapped).map_err(|e| {
        BackupError::KeyStore(format!(
            "备份密钥由 {}（KEK {}）封装，本机为 {}（KEK {}）: {e}",
            header.key_provider, header.kek_id, here.provider, here.kek_id
        ))
    })?;
    let key: [u8; 16] = plain
        .as_slice()
        .try_into()
        .map_err(|_| FormatError::Corrupt("备份密钥长度不是 16 字节".into()))?;
    Ok(Zeroizing::new(key))
}

/// Checks a backup without restoring it: structure, digest and signature always; with a key
/// store (`provider`), every chunk's tag and the record stream too.
pub fn verify(
    path: &Path,
    trusted_cert: Option<&[Vec<u8>]>,
    provider: Result<&dyn KeyProvider, String>,
) -> Result<VerifyReport, BackupError> {
    let sealed = authenticate(path, trusted_cert)?;
    let (body, body_skipped) = match provider {
        Ok(p) => {
            let key = backup_key(p, &sealed.header)?;
            let (_, records) = Records::open(open_file(path)?, &key)?;
            let mut counts: Vec<(String, u64)> = Vec::new();
            for r in records {
                let r = r?;
                if r.space != KEY_FILES && !crate::store::backup::kept(&r.space) {
                    return Err(FormatError::Corrupt(format!(
                        "本版本不认识的数据空间 {:?}",
                        r.space
                    ))
                    .into());
                }
                match counts.iter_mut().find(|(s, _)| *s == r.space) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((r.space, 1)),
                }
            }
            (Some(counts), None)
        }
        Err(why) => (None, Some(why)),
    };
    Ok(VerifyReport {
        bytes: sealed.bytes,
        digest: hex::encode(sealed.digest),
        cert_from_key_store: trusted_cert.is_some(),
        header: sealed.header,
        body,
        body_skipped,
    })
}

/// What a restore reports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSummary {
    pub records: u64,
    pub backup_created_at: String,
    pub audit_tree_size: u64,
    pub platform_cert_sm3: String,
    /// Whether the signature was checked with the certificate inside the file (the target
    /// had none): then only the KEK-wrapped backup key vouches for the file's origin, and the
    /// operator compares the fingerprint with the platform's.
    pub cert_from_file: bool,
    /// Data-key owners whose tenant key this key store lacks: their personal data stays
    /// unreadable until the key store's tenant keys are restored too.
    pub tenant_keys_missing: Vec<String>,
}

/// Restores a backup into `cfg.data_dir`, which must hold no store yet; its key store (the
/// `file` provider's `keys/`, or the configured token) must be the one that wrapped the
/// backup key. Nothing is written before the file's digest and signature check out.
pub fn restore(
    path: &Path,
    cfg: &Config,
    progress: &mut dyn FnMut(Progress),
) -> Result<RestoreSummary, BackupError> {
    let db = cfg.data_dir.join("db");
    if db.exists() {
        return Err(StoreError::NotEmpty(db).into());
    }
    // Only a target without any platform certificate trusts the one inside the file; a
    // damaged certificate history is an error, not a reason to trust less.
    let trusted = if keys::has_platform_cert(cfg) {
        Some(keys::platform_cert_ders(cfg).map_err(|e| BackupError::KeyStore(e.to_string()))?)
    } else {
        None
    };
    let sealed = authenticate(path, trusted.as_deref())?;
    if sealed.header.schema_version > crate::store::SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: sealed.header.schema_version,
            supported: crate::store::SCHEMA_VERSION,
        }
        .into());
    }
    let provider = keys::open_key_store(cfg).map_err(|e| {
        BackupError::KeyStore(format!(
            "{e}（{} 的密钥库需与备份时相同：file 提供者请先从密钥库备份复制 keys/，pkcs11 请配置同一令牌）",
            cfg.data_dir.display()
        ))
    })?;
    let key = backup_key(provider.as_ref(), &sealed.header)?;
    let (header, records) = Records::open(open_file(path)?, &key)?;
    let failed = RefCell::new(None);
    let mut count = 0u64;
    // Key files wait until the store is complete: a failed restore installs none.
    let mut key_files = Vec::new();
    let entries = records.filter_map(|r| {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                let text = e.to_string();
                *failed.borrow_mut() = Some(BackupError::from(e));
                return Some(Err(StoreError::Corrupt(text)));
            }
        };
        count += 1;
        if count.is_multiple_of(PROGRESS_EVERY) {
            progress(Progress {
                records: count,
                bytes: 0,
            });
        }
        if r.space == KEY_FILES {
            key_files.push((String::from_utf8_lossy(&r.key).into_owned(), r.value));
            return None;
        }
        Some(Ok((r.space, r.key, r.value)))
    });
    let store = Store::restore(&cfg.data_dir, entries);
    if let Some(e) = failed.borrow_mut().take() {
        return Err(e);
    }
    let store = store?;
    let finished = finish_restore(cfg, &store, &key_files, &header, &sealed.digest)
        .and_then(|()| Ok(store.owners_without_tenant_keys(provider.as_ref())?));
    if finished.is_err() {
        // Leave the directory as it was: no store, no key files this restore put there.
        drop(store);
        let _ = std::fs::remove_dir_all(cfg.data_dir.join("db"));
    }
    let tenant_keys_missing = finished?;
    Ok(RestoreSummary {
        records: count,
        backup_created_at: header.created_at,
        audit_tree_size: header.audit_tree_size,
        platform_cert_sm3: header.platform_cert_sm3,
        cert_from_file: trusted.is_none(),
        tenant_keys_missing,
    })
}

/// The steps of a restore after the store is in place: the key files, a check that the
/// platform key opens with this key store, the `platform.restore` entry. Undoes the key
/// files it installed when a later step fails.
fn finish_restore(
    cfg: &Config,
    store: &Store,
    key_files: &[(String, Vec<u8>)],
    header: &Header,
    digest: &[u8; 32],
) -> Result<(), BackupError> {
    let mut installed = Vec::new();
    let res = (|| {
        for (name, bytes) in key_files {
            if keys::install_key_file(cfg, name, bytes)? {
                installed.push(name.clone());
            }
        }
        // The platform key must open with this key store, or the appliance would not start.
        Keyring::load(cfg)?;
        audit::record(
            store,
            &Actor::cli(),
            Action::PlatformRestore,
            Outcome::Ok,
            "platform",
            format!(
                "自 {} 的备份恢复（审计树大小 {}，SM3 {}）",
                header.created_at,
                header.audit_tree_size,
                hex::encode(digest)
            ),
        )
        .map_err(|e| BackupError::Audit(e.to_string()))?;
        store.flush_blocking()?;
        Ok(())
    })();
    if res.is_err() {
        for name in &installed {
            keys::remove_key_file(cfg, name);
        }
    }
    res
}

/// Writes a file whole or not at all: a temporary name beside it, fsync, rename, fsync of the
/// directory. Refuses to replace an existing file.
pub fn write_atomically<T>(
    path: &Path,
    body: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<T, BackupError>,
) -> Result<T, BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error, p: &Path| {
        BackupError::Format(FormatError::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", p.display()),
        )))
    };
    if path.exists() {
        return Err(io(std::io::ErrorKind::AlreadyExists.into(), path));
    }
    let name = path
        .file_name()
        .ok_or_else(|| io(std::io::ErrorKind::InvalidInput.into(), path))?;
    let tmp = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    // A crashed run's leftover (or a planted link: removing it never touches its target).
    let _ = std::fs::remove_file(&tmp);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io(e, &tmp))?;
    let mut w = std::io::BufWriter::with_capacity(256 * 1024, file);
    let res = body(&mut w).and_then(|v| {
        let f = w.into_inner().map_err(|e| io(e.into_error(), &tmp))?;
        f.sync_all().map_err(|e| io(e, &tmp))?;
        // A link, not a rename: it fails rather than replace a file that appeared meanwhile.
        std::fs::hard_link(&tmp, path).map_err(|e| io(e, path))?;
        std::fs::remove_file(&tmp).map_err(|e| io(e, &tmp))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io(e, dir))?;
        }
        Ok(v)
    });
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}
