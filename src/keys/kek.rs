//! `hutong keys rotate kek`: a new KEK, everything under the old one re-wrapped, the old one
//! kept *retired* until `--finish` sees a verified backup under the new one.
//!
//! What the KEK wraps: the platform key file, the backup key inside every backup file, and
//! data keys of stores from before tenant keys (migrated at start, before a rotation runs).
//! Tenant KEKs are not under it (peer files in `keys/tenants/`, or token objects), so they
//! stay as they are. Older backups open only while their KEK exists: hence the two steps.
//!
//! Crash safety: a journal `keys/kek-rotation.json` is written (fsynced) before the new KEK
//! is made (`staged`, naming its id) and again once the re-wrapped platform key is on disk
//! (`switch`, the commit point). [`recover`] runs before any key is read: a `staged`
//! journal is rolled back (the new KEK and file removed, the old KEK opens everything), a
//! `switch` journal is rolled forward (each step checks whether it is done, so a second
//! crash during recovery is recovered too). The states in between therefore always open
//! with the old KEK or, after the switch, with the new one.

use super::{KeyError, KeyProvider, io_err, write_private};
use super::{file, pkcs11};
use crate::config::{Config, KeyProviderKind};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use zeroize::Zeroizing;

const JOURNAL: &str = "kek-rotation.json";
/// KEKs replaced by a rotation and not yet destroyed.
const RETIRED_RECORD: &str = "kek-retired.json";
const NEXT_KEK_FILE: &str = "kek.key.next";
/// The platform key re-wrapped under the new KEK, before the switch.
const REWRAPPED_PLATFORM_KEY: &str = "platform.key.wrapped.rewrap";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Phase {
    Staged,
    Switch,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Journal {
    phase: Phase,
    provider: String,
    /// Check value (`file`) or hex CKA_ID (`pkcs11`) of the old and the new KEK.
    old_id: String,
    new_id: String,
    started_ms: i64,
}

/// A KEK replaced by a rotation, kept until a verified backup under its successor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetiredKek {
    /// Its file in `keys/` (`file`) or its token label (`pkcs11`).
    pub name: String,
    pub id: String,
    pub retired_ms: i64,
}

/// What `hutong keys rotate kek` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KekRotation {
    pub provider: String,
    pub previous_id: String,
    pub current_id: String,
    /// Where the retired KEK now is, until `--finish`.
    pub retired_name: String,
    /// Files re-wrapped under the new KEK.
    pub rewrapped: Vec<String>,
    pub rotated_ms: i64,
}

/// The KEK providers of one key store: the current KEK wraps; unwrapping falls back to the
/// retired ones, so backups made before a rotation still restore until `--finish`.
pub struct KeyStore {
    current: RwLock<Arc<dyn KeyProvider>>,
    retired: RwLock<Vec<(RetiredKek, Arc<dyn KeyProvider>)>>,
}

impl KeyStore {
    /// A key store with one KEK and none retired (`init`).
    pub(super) fn single(current: Arc<dyn KeyProvider>) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(current),
            retired: RwLock::new(Vec::new()),
        })
    }

    fn current(&self) -> Arc<dyn KeyProvider> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn retired(&self) -> Vec<(RetiredKek, Arc<dyn KeyProvider>)> {
        self.retired
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The retired KEKs' records.
    pub fn retired_keks(&self) -> Vec<RetiredKek> {
        self.retired().into_iter().map(|(r, _)| r).collect()
    }

    /// The current KEK alone, without the fallback: what `--finish` checks a backup with.
    pub fn current_only(&self) -> Arc<dyn KeyProvider> {
        self.current()
    }
}

impl KeyProvider for KeyStore {
    fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.current().wrap(plaintext)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        match self.current().unwrap(wrapped) {
            Err(KeyError::Unwrap) => {
                for (_, p) in self.retired() {
                    if let Ok(plain) = p.unwrap(wrapped) {
                        return Ok(plain);
                    }
                }
                Err(KeyError::Unwrap)
            }
            other => other,
        }
    }

    fn status(&self) -> super::ProviderStatus {
        self.current().status()
    }

    fn tenant_wrap(&self, owner: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.current().tenant_wrap(owner, plaintext)
    }

    fn tenant_unwrap(&self, owner: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.current().tenant_unwrap(owner, wrapped)
    }

    fn destroy_tenant_key(&self, owner: &str) -> Result<bool, KeyError> {
        self.current().destroy_tenant_key(owner)
    }

    fn kek_fingerprint(&self) -> String {
        self.current().kek_fingerprint()
    }
}

/// Where the KEKs of this configuration live, and the few operations a rotation needs that
/// differ between providers.
enum Backend {
    File {
        dir: PathBuf,
    },
    /// `dir` holds the journal and the record, as with `file`.
    Pkcs11 {
        cfg: pkcs11::Pkcs11Config,
        dir: PathBuf,
    },
}

impl Backend {
    fn of(cfg: &Config, dir: &Path) -> Result<Self, KeyError> {
        Ok(match cfg.keys.provider {
            KeyProviderKind::File => Backend::File {
                dir: dir.to_path_buf(),
            },
            KeyProviderKind::Pkcs11 => Backend::Pkcs11 {
                cfg: super::pkcs11_glue::config(cfg)?,
                dir: dir.to_path_buf(),
            },
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::File { .. } => "file",
            Backend::Pkcs11 { .. } => "pkcs11",
        }
    }

    fn labelled(cfg: &pkcs11::Pkcs11Config, label: String) -> pkcs11::Pkcs11Config {
        let mut c = cfg.clone();
        c.kek_label = label;
        c
    }

    fn next_label(cfg: &pkcs11::Pkcs11Config) -> String {
        format!("{}-next", cfg.kek_label)
    }

    fn retired_name(&self, old_id: &str) -> String {
        match self {
            Backend::File { .. } => format!("kek-retired-{}.key", &old_id[..16]),
            Backend::Pkcs11 { cfg, .. } => format!("{}-retired-{old_id}", cfg.kek_label),
        }
    }

    fn open_current(&self) -> Result<Arc<dyn KeyProvider>, KeyError> {
        Ok(match self {
            Backend::File { dir } => {
                Arc::new(file::FileProvider::open(&dir.join(super::FILE_KEK))?)
            }
            Backend::Pkcs11 { cfg, .. } => Arc::new(pkcs11::Pkcs11Provider::open(cfg)?),
        })
    }

    fn open_retired(&self, r: &RetiredKek) -> Result<Arc<dyn KeyProvider>, KeyError> {
        Ok(match self {
            Backend::File { dir } => Arc::new(file::FileProvider::open(&dir.join(&r.name))?),
            Backend::Pkcs11 { cfg, .. } => Arc::new(pkcs11::Pkcs11Provider::open(
                &Self::labelled(cfg, r.name.clone()),
            )?),
        })
    }

    /// Makes the new KEK under its staging name; `journal` (already on disk) names its id.
    fn create_next(&self, journal: &mut Journal) -> Result<Arc<dyn KeyProvider>, KeyError> {
        Ok(match self {
            Backend::File { dir } => {
                let kek = Zeroizing::new(crate::crypto::sm::random_bytes::<32>());
                journal.new_id = file::check_value(&kek[..]);
                write_journal(dir, journal)?;
                Arc::new(file::FileProvider::create_with(
                    &dir.join(NEXT_KEK_FILE),
                    kek,
                )?)
            }
            Backend::Pkcs11 { cfg, dir } => {
                let id = pkcs11::new_kek_id()?;
                journal.new_id = hex::encode(&id);
                write_journal(dir, journal)?;
                let next = Self::labelled(cfg, Self::next_label(cfg));
                Arc::new(pkcs11::Pkcs11Provider::create_kek_with_id(&next, id)?)
            }
        })
    }

    /// Removes a staged new KEK (rollback); nothing when it was never made.
    fn discard_next(&self, new_id: &str) -> Result<(), KeyError> {
        match self {
            Backend::File { dir } => {
                let path = dir.join(NEXT_KEK_FILE);
                if file::FileProvider::check_value_of(&path).is_ok_and(|c| c == new_id) {
                    file::shred(&path)?;
                }
            }
            Backend::Pkcs11 { cfg, .. } => {
                let id = hex::decode(new_id).map_err(|_| corrupt_journal())?;
                pkcs11::destroy_kek(cfg, &Self::next_label(cfg), &id)?;
            }
        }
        Ok(())
    }

    /// The switch, each step skipped when already done: the old KEK under its retired name,
    /// the new one under the configured name.
    fn switch(&self, old_id: &str, new_id: &str) -> Result<(), KeyError> {
        match self {
            Backend::File { dir } => {
                let current = dir.join(super::FILE_KEK);
                let retired = dir.join(self.retired_name(old_id));
                if !retired.exists()
                    && file::FileProvider::check_value_of(&current).is_ok_and(|c| c == old_id)
                {
                    std::fs::rename(&current, &retired).map_err(|e| io_err(&current, e))?;
                }
                let next = dir.join(NEXT_KEK_FILE);
                if next.exists() && !current.exists() {
                    std::fs::rename(&next, &current).map_err(|e| io_err(&next, e))?;
                }
                file::sync_dir(dir)
            }
            Backend::Pkcs11 { cfg, .. } => {
                let old = hex::decode(old_id).map_err(|_| corrupt_journal())?;
                let new = hex::decode(new_id).map_err(|_| corrupt_journal())?;
                pkcs11::relabel_kek(cfg, &old, &self.retired_name(old_id))?;
                pkcs11::relabel_kek(cfg, &new, &cfg.kek_label)?;
                Ok(())
            }
        }
    }

    fn destroy_retired(&self, r: &RetiredKek) -> Result<bool, KeyError> {
        match self {
            Backend::File { dir } => file::shred(&dir.join(&r.name)),
            Backend::Pkcs11 { cfg, .. } => {
                let id = hex::decode(&r.id).map_err(|_| corrupt_journal())?;
                pkcs11::destroy_kek(cfg, &r.name, &id)
            }
        }
    }
}

fn corrupt_journal() -> KeyError {
    KeyError::Config(format!("{JOURNAL} 或 {RETIRED_RECORD} 损坏"))
}

fn write_journal(dir: &Path, j: &Journal) -> Result<(), KeyError> {
    let bytes = serde_json::to_vec_pretty(j).map_err(|e| KeyError::Config(e.to_string()))?;
    write_private(&dir.join(JOURNAL), &bytes)?;
    file::sync_dir(dir)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, KeyError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| KeyError::Config(format!("{} 无法解析: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

fn read_retired(dir: &Path) -> Result<Vec<RetiredKek>, KeyError> {
    Ok(read_json(&dir.join(RETIRED_RECORD))?.unwrap_or_default())
}

fn write_retired(dir: &Path, list: &[RetiredKek]) -> Result<(), KeyError> {
    let path = dir.join(RETIRED_RECORD);
    if list.is_empty() {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path, e)),
        }
    } else {
        let bytes = serde_json::to_vec_pretty(list).map_err(|e| KeyError::Config(e.to_string()))?;
        write_private(&path, &bytes)?;
    }
    file::sync_dir(dir)
}

/// Whether a rotation left its journal (running now, or interrupted).
pub(super) fn pending(dir: &Path) -> bool {
    dir.join(JOURNAL).exists()
}

/// Rolls an interrupted rotation back (`staged`) or forward (`switch`); returns what it did.
pub(super) fn recover(cfg: &Config, dir: &Path) -> Result<Option<&'static str>, KeyError> {
    let Some(j) = read_json::<Journal>(&dir.join(JOURNAL))? else {
        return Ok(None);
    };
    let backend = Backend::of(cfg, dir)?;
    if j.provider != backend.name() {
        return Err(KeyError::Config(format!(
            "{JOURNAL} 属于 {} 提供者，当前配置为 {}",
            j.provider,
            backend.name()
        )));
    }
    let done = match j.phase {
        Phase::Staged => {
            backend.discard_next(&j.new_id)?;
            remove_if_exists(&dir.join(REWRAPPED_PLATFORM_KEY))?;
            "rolled back: the old KEK stays current"
        }
        Phase::Switch => {
            finish_switch(&backend, dir, &j)?;
            "completed: the new KEK is current, the old one retired"
        }
    };
    std::fs::remove_file(dir.join(JOURNAL)).map_err(|e| io_err(&dir.join(JOURNAL), e))?;
    file::sync_dir(dir)?;
    tracing::warn!("an interrupted KEK rotation was {done}");
    Ok(Some(done))
}

fn remove_if_exists(path: &Path) -> Result<(), KeyError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, e)),
    }
}

/// From the commit point on: switch the KEKs, put the re-wrapped platform key in place,
/// record the retired KEK. Every step is idempotent.
fn finish_switch(backend: &Backend, dir: &Path, j: &Journal) -> Result<(), KeyError> {
    backend.switch(&j.old_id, &j.new_id)?;
    let rewrapped = dir.join(REWRAPPED_PLATFORM_KEY);
    if rewrapped.exists() {
        let target = dir.join(super::PLATFORM_KEY_FILE);
        std::fs::rename(&rewrapped, &target).map_err(|e| io_err(&target, e))?;
    }
    let mut retired = read_retired(dir)?;
    if !retired.iter().any(|r| r.id == j.old_id) {
        retired.push(RetiredKek {
            name: backend.retired_name(&j.old_id),
            id: j.old_id.clone(),
            retired_ms: j.started_ms,
        });
    }
    write_retired(dir, &retired)
}

/// Opens the key store: the current KEK and every retired one still recorded (one that
/// cannot be opened is logged and left out: only older backups need it). The caller has run
/// the recovery ([`super::recover_rotations`]).
pub(super) fn open(cfg: &Config, dir: &Path) -> Result<Arc<KeyStore>, KeyError> {
    let backend = Backend::of(cfg, dir)?;
    let current = backend.open_current()?;
    let mut retired = Vec::new();
    for r in read_retired(dir)? {
        match backend.open_retired(&r) {
            Ok(p) => retired.push((r, p)),
            Err(e) => tracing::warn!(kek = %r.name, error = %e, "retired KEK unavailable"),
        }
    }
    Ok(Arc::new(KeyStore {
        current: RwLock::new(current),
        retired: RwLock::new(retired),
    }))
}

/// The rotation itself; `platform_secret` is the platform key to re-wrap. The caller holds
/// the keyring's rotation lock.
pub(super) fn rotate(
    cfg: &Config,
    dir: &Path,
    store: &KeyStore,
    platform_secret: &[u8],
) -> Result<KekRotation, KeyError> {
    // A rotation that failed after its commit point left its journal: it is finished at the
    // next start (or by `recover`), never overwritten by a new rotation, which would roll the
    // committed switch back and leave no KEK under the configured name.
    if pending(dir) {
        return Err(KeyError::Config(
            "上一次 KEK 轮换未完成（keys/kek-rotation.json 仍在）：请重启服务以完成或回滚它，再重试 / an earlier KEK rotation is unfinished: restart the service to complete or roll it back first".into(),
        ));
    }
    if let Some(r) = store.retired_keks().first() {
        return Err(KeyError::Config(format!(
            "上一次轮换的旧 KEK {} 尚未销毁：请先备份并以 hutong keys rotate kek --finish --verified-backup FILE 完成 / the previous rotation's KEK is still retired; finish it first",
            r.name
        )));
    }
    let backend = Backend::of(cfg, dir)?;
    let current = store.current();
    let mut journal = Journal {
        phase: Phase::Staged,
        provider: backend.name().into(),
        old_id: current.kek_fingerprint(),
        new_id: String::new(),
        started_ms: crate::time::now_ms(),
    };
    let next = match backend.create_next(&mut journal) {
        Ok(p) => p,
        Err(e) => {
            // The journal may name a KEK that was never made: roll back now.
            let _ = recover(cfg, dir);
            return Err(e);
        }
    };
    let rewrap = next
        .wrap(platform_secret)
        .and_then(|w| write_private(&dir.join(REWRAPPED_PLATFORM_KEY), &w))
        .and_then(|()| file::sync_dir(dir));
    if let Err(e) = rewrap {
        // Not committed: undo now rather than at the next start.
        let _ = recover(cfg, dir);
        return Err(e);
    }
    journal.phase = Phase::Switch;
    write_journal(dir, &journal)?;
    finish_switch(&backend, dir, &journal)?;
    remove_if_exists(&dir.join(JOURNAL))?;
    file::sync_dir(dir)?;
    // Reopened under their final names, as the next start will find them.
    let now_current = backend.open_current()?;
    let retired: Vec<_> = read_retired(dir)?
        .into_iter()
        .filter_map(|r| backend.open_retired(&r).ok().map(|p| (r, p)))
        .collect();
    let retired_name = backend.retired_name(&journal.old_id);
    *store
        .current
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = now_current;
    *store
        .retired
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = retired;
    Ok(KekRotation {
        provider: journal.provider,
        previous_id: journal.old_id,
        current_id: journal.new_id,
        retired_name,
        rewrapped: vec![super::PLATFORM_KEY_FILE.to_string()],
        rotated_ms: journal.started_ms,
    })
}

/// `--finish`: destroys every retired KEK; the caller has checked a backup under the
/// current one. Returns the destroyed KEKs' records.
pub(super) fn destroy_retired(
    cfg: &Config,
    dir: &Path,
    store: &KeyStore,
) -> Result<Vec<RetiredKek>, KeyError> {
    let backend = Backend::of(cfg, dir)?;
    let records = read_retired(dir)?;
    if records.is_empty() {
        return Err(KeyError::Config(
            "没有待销毁的旧 KEK（未轮换过，或已完成） / no retired KEK to destroy".into(),
        ));
    }
    let mut left = records.clone();
    for r in &records {
        backend.destroy_retired(r)?;
        left.retain(|x| x.id != r.id);
        write_retired(dir, &left)?;
    }
    store
        .retired
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clear();
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::super::{FILE_KEK, Keyring, PLATFORM_KEY_FILE};
    use super::*;

    fn config(dir: &Path) -> Config {
        let mut cfg = Config::load(None, Vec::<(String, String)>::new()).unwrap();
        cfg.data_dir = dir.to_path_buf();
        cfg
    }

    fn check(dir: &Path, name: &str) -> String {
        file::FileProvider::check_value_of(&dir.join(name)).unwrap()
    }

    #[test]
    fn a_rotation_rewraps_under_the_new_kek_and_keeps_the_old_one_until_finished() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = config(tmp.path());
        let keys = Keyring::init(&cfg).unwrap();
        let kdir = tmp.path().join("keys");
        let old_id = check(&kdir, FILE_KEK);
        let old_blob = keys.provider().wrap(b"a backup key").unwrap();
        let public = keys.platform_public_key();

        let r = keys.rotate_kek(&cfg).unwrap();
        assert_eq!(r.previous_id, old_id);
        assert_eq!(check(&kdir, FILE_KEK), r.current_id);
        assert_eq!(check(&kdir, &r.retired_name), old_id);
        assert!(!kdir.join(JOURNAL).exists());
        // Older blobs open through the retired KEK; new ones are under the new KEK alone.
        assert_eq!(
            &keys.provider().unwrap(&old_blob).unwrap()[..],
            b"a backup key"
        );
        assert!(keys.current_kek().unwrap(&old_blob).is_err());
        let new_blob = keys.provider().wrap(b"x").unwrap();
        assert!(keys.current_kek().unwrap(&new_blob).is_ok());
        let again = keys.rotate_kek(&cfg).expect_err("one rotation at a time");
        assert!(again.to_string().contains("--finish"), "{again}");

        // A restart: the platform key opens with the new KEK, the retired one is still there.
        let reloaded = Keyring::load(&cfg).unwrap();
        assert_eq!(reloaded.platform_public_key(), public);
        assert_eq!(reloaded.retired_keks().len(), 1);
        assert!(reloaded.provider().unwrap(&old_blob).is_ok());

        let destroyed = reloaded.finish_kek_rotation(&cfg).unwrap();
        assert_eq!(destroyed[0].id, old_id);
        assert!(!kdir.join(&r.retired_name).exists());
        assert!(!kdir.join(RETIRED_RECORD).exists());
        assert!(matches!(
            reloaded.provider().unwrap(&old_blob),
            Err(KeyError::Unwrap)
        ));
        assert!(
            reloaded.finish_kek_rotation(&cfg).is_err(),
            "nothing left to destroy"
        );
        assert_eq!(Keyring::load(&cfg).unwrap().platform_public_key(), public);
    }

    /// The process dies after the new KEK and the re-wrapped key are on disk, before the
    /// commit point: the next start rolls back and the old KEK opens everything.
    #[test]
    fn a_rotation_killed_before_its_commit_point_is_rolled_back() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = config(tmp.path());
        let keys = Keyring::init(&cfg).unwrap();
        let kdir = tmp.path().join("keys");
        let old_id = check(&kdir, FILE_KEK);
        let backend = Backend::of(&cfg, &kdir).unwrap();
        let mut j = Journal {
            phase: Phase::Staged,
            provider: "file".into(),
            old_id: old_id.clone(),
            new_id: String::new(),
            started_ms: 1,
        };
        let next = backend.create_next(&mut j).unwrap();
        let w = next.wrap(&keys.platform().secret_bytes()).unwrap();
        write_private(&kdir.join(REWRAPPED_PLATFORM_KEY), &w).unwrap();
        drop(keys);

        let reloaded = Keyring::load(&cfg).expect("the store opens after the crash");
        assert_eq!(check(&kdir, FILE_KEK), old_id);
        for gone in [
            JOURNAL,
            NEXT_KEK_FILE,
            REWRAPPED_PLATFORM_KEY,
            RETIRED_RECORD,
        ] {
            assert!(!kdir.join(gone).exists(), "{gone} left behind");
        }
        assert!(reloaded.retired_keks().is_empty());
    }

    /// The process dies in the middle of the switch (old KEK renamed, new one not yet in
    /// place, platform key not yet replaced): the next start completes it.
    #[test]
    fn a_rotation_killed_after_its_commit_point_is_completed() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = config(tmp.path());
        let keys = Keyring::init(&cfg).unwrap();
        let public = keys.platform_public_key();
        let kdir = tmp.path().join("keys");
        let old_id = check(&kdir, FILE_KEK);
        let backend = Backend::of(&cfg, &kdir).unwrap();
        let mut j = Journal {
            phase: Phase::Staged,
            provider: "file".into(),
            old_id: old_id.clone(),
            new_id: String::new(),
            started_ms: 1,
        };
        let next = backend.create_next(&mut j).unwrap();
        let w = next.wrap(&keys.platform().secret_bytes()).unwrap();
        write_private(&kdir.join(REWRAPPED_PLATFORM_KEY), &w).unwrap();
        j.phase = Phase::Switch;
        write_journal(&kdir, &j).unwrap();
        let retired = backend.retired_name(&old_id);
        std::fs::rename(kdir.join(FILE_KEK), kdir.join(&retired)).unwrap();
        drop(keys);

        let reloaded = Keyring::load(&cfg).expect("the store opens after the crash");
        assert_eq!(reloaded.platform_public_key(), public);
        assert_eq!(check(&kdir, FILE_KEK), j.new_id);
        assert_eq!(check(&kdir, &retired), old_id);
        assert_eq!(reloaded.retired_keks()[0].name, retired);
        assert!(!kdir.join(JOURNAL).exists());
        let platform_blob = std::fs::read(kdir.join(PLATFORM_KEY_FILE)).unwrap();
        assert!(reloaded.current_kek().unwrap(&platform_blob).is_ok());
    }

    /// `hutong check` or `backup --verify` in another process while the server rotates: the
    /// half-done rotation is left alone; once nobody holds the lock it counts as crashed.
    #[test]
    fn a_rotation_running_elsewhere_is_not_taken_for_a_crashed_one() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = config(tmp.path());
        let keys = Keyring::init(&cfg).unwrap();
        let kdir = tmp.path().join("keys");
        let mut j = Journal {
            phase: Phase::Staged,
            provider: "file".into(),
            old_id: check(&kdir, FILE_KEK),
            new_id: String::new(),
            started_ms: 1,
        };
        Backend::of(&cfg, &kdir)
            .unwrap()
            .create_next(&mut j)
            .unwrap();
        let running = super::super::rotation_lock_file(&kdir).unwrap();
        running.lock().unwrap();
        let elsewhere = Keyring::load(&cfg).expect("the old KEK still opens everything");
        assert_eq!(elsewhere.platform_public_key(), keys.platform_public_key());
        assert!(kdir.join(JOURNAL).exists() && kdir.join(NEXT_KEK_FILE).exists());
        drop(running);
        Keyring::load(&cfg).unwrap();
        assert!(!kdir.join(JOURNAL).exists() && !kdir.join(NEXT_KEK_FILE).exists());
    }
}
