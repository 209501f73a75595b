//! The platform's SM2 key and its certificates (SPEC §5): the current pair, the certificates
//! it replaced, and `hutong keys rotate platform`.
//!
//! Replaced certificates stay on disk as `keys/platform-<first 16 hex of SM3>.crt`, listed
//! with their retirement time in `keys/platform-history.json`, because audit checkpoints,
//! reports and backups signed before a rotation must still verify (the checkpoint origin
//! names the certificate by that fingerprint, SPEC §6.1). A rotation writes the new key,
//! certificate and history under `.next` names, fsyncs them, writes a commit marker, then
//! renames; [`recover`] finishes a rotation whose marker exists and discards one whose
//! marker does not, so a crash leaves the old pair or the new pair, never a mix.

use super::{
    HISTORY_FILE_PREFIX, KeyError, KeyProvider, PLATFORM_CERT_FILE, PLATFORM_KEY_FILE, io_err,
    write_private,
};
use crate::config::{Config, KeyProviderKind, PlatformKeyKind};
use crate::crypto::certgen::{self, CertSpec};
use crate::crypto::sm::{self, Sm2KeyPair};
use std::path::Path;

/// The record of replaced certificates, newest first.
pub const HISTORY_FILE: &str = "platform-history.json";
/// Present only between the fsync of a rotation's `.next` files and their renames.
const COMMIT_MARKER: &str = "platform-rotation.commit";
const STAGED_SUFFIX: &str = "next";
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The platform key pair with its certificate and the certificates it replaced.
pub struct Platform {
    pair: Sm2KeyPair,
    cert_der: Vec<u8>,
    previous: Vec<PreviousCert>,
}

/// A certificate the platform signed with before a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousCert {
    pub cert_der: Vec<u8>,
    /// UTC ms of the rotation that replaced it.
    pub retired_ms: i64,
}

/// What `hutong keys rotate platform` reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformRotation {
    /// SM3 fingerprints (hex) of the replaced and the new certificate.
    pub previous_sm3: String,
    pub current_sm3: String,
    pub rotated_ms: i64,
    /// Until when the replaced certificate is listed as `previous`.
    pub overlap_end_ms: i64,
}

/// One entry of `GET /api/v1/platform/certificates`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateListing {
    /// `current`; `previous` during the overlap after its rotation; `retired` after it (kept
    /// only so that older signatures still verify).
    pub status: &'static str,
    /// Lower-case hex SM3 of the certificate DER; its first 16 characters are the audit
    /// checkpoint origin's.
    pub fingerprint: String,
    pub serial_number: String,
    pub subject: String,
    /// Validity in platform time (`YYYY-MM-DD HH:MM:SS`) and UTC ms.
    pub not_before: String,
    pub not_after: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    /// When a rotation replaced it and until when it stays `previous`.
    pub retired_ms: Option<i64>,
    pub overlap_end_ms: Option<i64>,
    pub overlap_end: Option<String>,
    pub certificate: String,
}

impl Platform {
    pub(super) fn new(pair: Sm2KeyPair, cert_der: Vec<u8>, previous: Vec<PreviousCert>) -> Self {
        Self {
            pair,
            cert_der,
            previous,
        }
    }

    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.pair.sign(msg)
    }

    pub fn public_key(&self) -> sm2::PublicKey {
        self.pair.public_key()
    }

    pub(super) fn secret_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        self.pair.secret_bytes()
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    pub fn previous(&self) -> &[PreviousCert] {
        &self.previous
    }

    /// The current certificate first, then the replaced ones, newest first.
    pub fn all_cert_ders(&self) -> Vec<Vec<u8>> {
        std::iter::once(self.cert_der.clone())
            .chain(self.previous.iter().map(|p| p.cert_der.clone()))
            .collect()
    }

    /// Every certificate with its validity and status at `now_ms`.
    pub fn listing(&self, overlap_days: u32, now_ms: i64) -> Vec<CertificateListing> {
        let overlap = i64::from(overlap_days) * DAY_MS;
        std::iter::once((&self.cert_der, None))
            .chain(
                self.previous
                    .iter()
                    .map(|p| (&p.cert_der, Some(p.retired_ms))),
            )
            .map(|(der, retired)| {
                let info = crate::crypto::x509::CertInfo::parse(der).ok();
                let end = retired.map(|r| r + overlap);
                let status = match end {
                    None => "current",
                    Some(e) if now_ms < e => "previous",
                    Some(_) => "retired",
                };
                let (nb, na) = info
                    .as_ref()
                    .map_or((0, 0), |i| (i.not_before_ms, i.not_after_ms));
                CertificateListing {
                    status,
                    fingerprint: sm::sm3_hex(der),
                    serial_number: info
                        .as_ref()
                        .map(|i| i.serial_hex.clone())
                        .unwrap_or_default(),
                    subject: info.map(|i| i.subject).unwrap_or_default(),
                    not_before: crate::time::format_time_ms(nb),
                    not_after: crate::time::format_time_ms(na),
                    not_before_ms: nb,
                    not_after_ms: na,
                    retired_ms: retired,
                    overlap_end_ms: end,
                    overlap_end: end.map(crate::time::format_time_ms),
                    certificate: sm::pem_encode("CERTIFICATE", der),
                }
            })
            .collect()
    }
}

/// The self-issued platform certificate for `pair`, valid ten years from `now_ms`.
pub(super) fn new_certificate(pair: &Sm2KeyPair, now_ms: i64) -> Result<Vec<u8>, KeyError> {
    let spec = CertSpec {
        common_name: "Hutong Platform".into(),
        organization: Some("电子印章互通互认服务平台".into()),
        not_before_ms: now_ms - 60_000,
        not_after_ms: now_ms + 10 * 365 * DAY_MS,
        is_ca: false,
        serial: None,
    };
    certgen::self_signed_sm2(&spec, pair)
        .map_err(|e| KeyError::Config(format!("平台证书生成失败: {e}")))
}

fn previous_cert_file(fingerprint: &str) -> String {
    format!("{HISTORY_FILE_PREFIX}{}.crt", &fingerprint[..16])
}

/// `platform-history.json` or a `platform-<16 hex>.crt` it lists.
pub(super) fn is_history_file(name: &str) -> bool {
    name == HISTORY_FILE
        || name
            .strip_prefix(HISTORY_FILE_PREFIX)
            .and_then(|r| r.strip_suffix(".crt"))
            .is_some_and(|fp| fp.len() == 16 && fp.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryEntry {
    fingerprint: String,
    retired_ms: i64,
}

/// The replaced certificates, newest first; none before the first rotation.
pub fn read_history(dir: &Path) -> Result<Vec<PreviousCert>, KeyError> {
    let path = dir.join(HISTORY_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&path, e)),
    };
    let entries: Vec<HistoryEntry> = serde_json::from_slice(&bytes)
        .map_err(|e| KeyError::Config(format!("{} 无法解析: {e}", path.display())))?;
    entries
        .into_iter()
        .map(|e| {
            // Used as part of a file name: 64 lower-case hex digits and nothing else.
            if e.fingerprint.len() != 64
                || !e
                    .fingerprint
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(KeyError::Config(format!("{} 中的指纹无效", path.display())));
            }
            let cert_der = super::read_cert(&dir.join(previous_cert_file(&e.fingerprint)))?;
            if sm::sm3_hex(&cert_der) != e.fingerprint {
                return Err(KeyError::Config(format!(
                    "{} 与 {} 中记录的指纹不符",
                    previous_cert_file(&e.fingerprint),
                    HISTORY_FILE
                )));
            }
            Ok(PreviousCert {
                cert_der,
                retired_ms: e.retired_ms,
            })
        })
        .collect()
}

/// The history's files by name, for a backup: the record and every certificate it lists.
pub(super) fn history_files(dir: &Path) -> Result<Vec<String>, KeyError> {
    let previous = read_history(dir)?;
    if previous.is_empty() {
        return Ok(Vec::new());
    }
    let mut names = vec![HISTORY_FILE.to_string()];
    names.extend(
        previous
            .iter()
            .map(|p| previous_cert_file(&sm::sm3_hex(&p.cert_der))),
    );
    Ok(names)
}

fn staged(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join(format!("{name}.{STAGED_SUFFIX}"))
}

/// The files a rotation replaces together.
const ROTATED: [&str; 3] = [PLATFORM_KEY_FILE, PLATFORM_CERT_FILE, HISTORY_FILE];

/// Whether a rotation left files behind (running now, or interrupted).
pub(super) fn pending(dir: &Path) -> bool {
    dir.join(COMMIT_MARKER).exists() || ROTATED.iter().any(|n| staged(dir, n).exists())
}

/// Finishes a rotation that reached its commit marker, or discards the `.next` files of
/// one that did not. Runs before the platform key is read.
pub(super) fn recover(dir: &Path) -> Result<(), KeyError> {
    let marker = dir.join(COMMIT_MARKER);
    if marker.exists() {
        for name in ROTATED {
            let from = staged(dir, name);
            if from.exists() {
                std::fs::rename(&from, dir.join(name)).map_err(|e| io_err(&from, e))?;
            }
        }
        super::file::sync_dir(dir)?;
        std::fs::remove_file(&marker).map_err(|e| io_err(&marker, e))?;
        tracing::warn!("completed a platform key rotation that was interrupted");
    } else {
        for name in ROTATED {
            let from = staged(dir, name);
            match std::fs::remove_file(&from) {
                Ok(()) => {
                    tracing::warn!(file = %from.display(), "discarded an unfinished platform key rotation")
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&from, e)),
            }
        }
    }
    super::file::sync_dir(dir)
}

/// Makes the new pair and commits it to `dir`; the caller swaps it in.
pub(super) fn rotate(
    dir: &Path,
    provider: &dyn KeyProvider,
    old: &Platform,
    overlap_days: u32,
) -> Result<(Platform, PlatformRotation), KeyError> {
    let now = crate::time::now_ms();
    let pair = Sm2KeyPair::generate();
    let cert = new_certificate(&pair, now)?;
    let wrapped = provider.wrap(&pair.secret_bytes())?;
    let old_fp = sm::sm3_hex(&old.cert_der);
    // Nothing refers to this file until the history listing it is committed.
    write_private(
        &dir.join(previous_cert_file(&old_fp)),
        sm::pem_encode("CERTIFICATE", &old.cert_der).as_bytes(),
    )?;
    let mut previous = vec![PreviousCert {
        cert_der: old.cert_der.clone(),
        retired_ms: now,
    }];
    previous.extend(old.previous.iter().cloned());
    let history: Vec<HistoryEntry> = previous
        .iter()
        .map(|p| HistoryEntry {
            fingerprint: sm::sm3_hex(&p.cert_der),
            retired_ms: p.retired_ms,
        })
        .collect();
    let history =
        serde_json::to_vec_pretty(&history).map_err(|e| KeyError::Config(e.to_string()))?;
    let cert_pem = sm::pem_encode("CERTIFICATE", &cert);
    let files: [(&str, &[u8]); 3] = [
        (PLATFORM_KEY_FILE, &wrapped),
        (PLATFORM_CERT_FILE, cert_pem.as_bytes()),
        (HISTORY_FILE, &history),
    ];
    for (name, bytes) in files {
        write_private(&staged(dir, name), bytes)?;
    }
    super::file::sync_dir(dir)?;
    write_private(&dir.join(COMMIT_MARKER), b"")?;
    // The marker's own name is durable before any staged file is renamed over the live one:
    // after a power cut, a renamed key without its marker would be rolled back alone.
    super::file::sync_dir(dir)?;
    recover(dir)?;
    let rotation = PlatformRotation {
        previous_sm3: old_fp,
        current_sm3: sm::sm3_hex(&cert),
        rotated_ms: now,
        overlap_end_ms: now + i64::from(overlap_days) * DAY_MS,
    };
    Ok((Platform::new(pair, cert, previous), rotation))
}

/// `keys.platform_key = "hsm"` needs a module offering an SM2 signing mechanism. This
/// version keeps the platform key wrapped in every case: the probe says which mechanisms it
/// looked for, and the setting is refused rather than pretending the key is in the HSM.
pub fn check_setting(cfg: &Config) -> Result<(), KeyError> {
    if cfg.keys.platform_key != PlatformKeyKind::Hsm {
        return Ok(());
    }
    if cfg.keys.provider != KeyProviderKind::Pkcs11 {
        return Err(KeyError::Config(
            "keys.platform_key = \"hsm\" 需要 keys.provider = \"pkcs11\" / needs keys.provider = \"pkcs11\"".into(),
        ));
    }
    let pcfg = super::pkcs11::Pkcs11Config::from_section(&cfg.keys.pkcs11)?;
    let probe = super::pkcs11::probe_sm2(&pcfg)?;
    let probed = super::pkcs11::PROBED_SM2_SIGN_MECHANISMS.join(", ");
    Err(KeyError::Config(if probe.sign.is_empty() {
        format!(
            "keys.platform_key = \"hsm\"：令牌 {:?} 不提供 SM2 签名机制（已探测 {probed}），平台私钥无法在 HSM 内签名；请改用 keys.platform_key = \"wrapped\" / token {:?} offers no SM2 signing mechanism (probed {probed}); use keys.platform_key = \"wrapped\"",
            probe.token, probe.token
        )
    } else {
        let offered = probe.sign.join(", ");
        format!(
            "keys.platform_key = \"hsm\"：令牌 {:?} 列出了 SM2 机制（{offered}），但本版本尚未实现、也未对真实 HSM 验证在 HSM 内签名；请改用 keys.platform_key = \"wrapped\" / token {:?} lists SM2 mechanisms ({offered}) but HSM-side signing is not implemented in this version; use keys.platform_key = \"wrapped\"",
            probe.token, probe.token
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        let mut cfg = Config::load(None, Vec::<(String, String)>::new()).unwrap();
        cfg.data_dir = dir.to_path_buf();
        cfg
    }

    #[test]
    fn a_rotation_keeps_the_old_certificate_and_swaps_the_signer() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let keys = super::super::Keyring::init(&cfg).unwrap();
        let old = keys.platform_cert_der();
        let r = keys.rotate_platform(&cfg).unwrap();
        assert_eq!(r.previous_sm3, sm::sm3_hex(&old));
        let new = keys.platform_cert_der();
        assert_ne!(new, old);
        let sig = keys.sign(b"after");
        let new_key = sm::sm2_public_key_from_cert_der(&new).unwrap();
        assert!(sm::sm2_verify(&new_key, b"after", &sig).is_ok());
        let old_key = sm::sm2_public_key_from_cert_der(&old).unwrap();
        assert!(sm::sm2_verify(&old_key, b"after", &sig).is_err());
        // What a restart reads is what is in memory.
        let reloaded = super::super::Keyring::load(&cfg).unwrap();
        assert_eq!(
            reloaded.platform_cert_ders(),
            vec![new.clone(), old.clone()]
        );
        let list = reloaded.platform().listing(30, crate::time::now_ms());
        assert_eq!(
            list.iter().map(|c| c.status).collect::<Vec<_>>(),
            ["current", "previous"]
        );
        let later = r.overlap_end_ms + 1;
        assert_eq!(reloaded.platform().listing(30, later)[1].status, "retired");
        let mut files = super::super::backed_up_key_files(&cfg).unwrap();
        files.sort();
        assert_eq!(files.len(), 4, "{files:?}");
        assert!(files.iter().all(|f| super::super::is_backed_up_key_file(f)));
    }

    /// A crash before the commit marker leaves the old pair; one after it, the new pair.
    #[test]
    fn an_interrupted_rotation_leaves_one_consistent_pair() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let keys = super::super::Keyring::init(&cfg).unwrap();
        let kdir = dir.path().join("keys");
        let old = keys.platform_cert_der();
        // Staged but not committed: discarded.
        std::fs::copy(
            kdir.join(PLATFORM_CERT_FILE),
            staged(&kdir, PLATFORM_CERT_FILE),
        )
        .unwrap();
        std::fs::write(staged(&kdir, PLATFORM_KEY_FILE), b"HF1 half-written").unwrap();
        let again = super::super::Keyring::load(&cfg).unwrap();
        assert_eq!(again.platform_cert_der(), old);
        assert!(!staged(&kdir, PLATFORM_KEY_FILE).exists());
        // Committed, killed before the renames: completed at the next start.
        let (next, _) = rotate(&kdir, keys.provider(), &keys.platform(), 30).unwrap();
        let new = next.cert_der().to_vec();
        // Undo the renames as if the process had died right after writing the marker.
        for name in ROTATED {
            std::fs::rename(kdir.join(name), staged(&kdir, name)).unwrap();
        }
        std::fs::write(
            kdir.join(PLATFORM_CERT_FILE),
            sm::pem_encode("CERTIFICATE", &old),
        )
        .unwrap();
        write_private(&kdir.join(COMMIT_MARKER), b"").unwrap();
        let recovered = super::super::Keyring::load(&cfg).unwrap();
        assert_eq!(recovered.platform_cert_ders(), vec![new, old]);
        assert!(!kdir.join(COMMIT_MARKER).exists());
    }
}
