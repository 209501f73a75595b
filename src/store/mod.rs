//! Storage: the one `Store` handle, one module per keyspace family, typed records, the
//! schema version. Families (`systems`, `seals`, `nonces`, `usage`, `sessions`, …) are written
//! against the [`engine`] seam only; [`sled_engine`] is the embedded default and the only
//! place that names sled. Nothing outside `store` sees an engine type, a keyspace or raw
//! bytes: it calls typed functions on [`Store`].
//!
//! Every state change is acknowledged only after [`Store::commit`] returns, which flushes the
//! database to disk; concurrent commits share one flush (group commit). The sled engine holds
//! an exclusive file lock, so two processes never write one database.

pub mod accounts;
pub mod applications;
pub mod audit_log;
pub mod backup;
pub mod cloud_auths;
pub mod engine;
pub mod events;
pub mod nonces;
pub mod seals;
pub mod sessions;
pub mod sled_engine;
pub mod systems;
pub mod trust;
pub mod usage;

use engine::{Engine, EngineError, Keyspace, TxError, Txn};
use serde::{Serialize, de::DeserializeOwned};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{Mutex, watch};

/// Bumped when the layout of any keyspace changes; [`Store::open`] refuses newer databases.
/// Version 2: `data_keys` entries are JSON (a data key under its owner's tenant KEK, or a
/// destroyed owner's tombstone); version 1's raw platform-KEK blobs still read.
/// Version 3: `audit_index` has no keys for kind `api` or result `ok`, and an API entry's
/// appId is found through its actor keys; an older binary would trust the index and miss
/// those entries in a search, so it must refuse the database.
pub const SCHEMA_VERSION: u32 = 3;

/// Every keyspace of the schema, by name (sled tree names of existing data
/// directories). A family's module documents its keys and values.
pub mod keyspace {
    pub const META: &str = "meta";
    pub const SYSTEMS: &str = "systems";
    pub const NONCES: &str = "nonces";
    pub const ACCOUNTS: &str = "accounts";
    pub const EVENTS: &str = "events";
    pub const SEALS: &str = "seals";
    pub const SEAL_DERS: &str = "seal_ders";
    pub const SEAL_INDEX: &str = "seal_index";
    pub const SIGN_IDS: &str = "sign_ids";
    pub const FETCHED: &str = "fetched";
    pub const DATA_KEYS: &str = "data_keys";
    pub const TRUST_ANCHORS: &str = "trust_anchors";
    pub const CLOUD_AUTHS: &str = "cloud_auths";
    pub const USAGE: &str = "usage";
    pub const USAGE_USERS: &str = "usage_users";
    pub const QUOTAS: &str = "quotas";
    pub const QUOTA_USERS: &str = "quota_users";
    pub const VENDOR_PROFILES: &str = "vendor_profiles";
    pub const APPLICATIONS: &str = "applications";
    pub const SESSIONS: &str = "console_sessions";
    pub const AUDIT_LEAVES: &str = "audit_leaves";
    pub const AUDIT_STATE: &str = "audit_state";
    pub const AUDIT_CHECKPOINTS: &str = "audit_checkpoints";
    pub const AUDIT_INDEX: &str = "audit_index";

    /// All of them, for opening and for checks that a snapshot covers the schema.
    pub const ALL: [&str; 24] = [
        META,
        SYSTEMS,
        NONCES,
        ACCOUNTS,
        EVENTS,
        SEALS,
        SEAL_DERS,
        SEAL_INDEX,
        SIGN_IDS,
        FETCHED,
        DATA_KEYS,
        TRUST_ANCHORS,
        CLOUD_AUTHS,
        USAGE,
        USAGE_USERS,
        QUOTAS,
        QUOTA_USERS,
        VENDOR_PROFILES,
        APPLICATIONS,
        SESSIONS,
        AUDIT_LEAVES,
        AUDIT_STATE,
        AUDIT_CHECKPOINTS,
        AUDIT_INDEX,
    ];
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("数据目录 {0} 正被另一个 hutong 进程使用（请通过运行中的服务执行管理命令）")]
    Locked(PathBuf),
    #[error("数据库版本 {found} 高于本程序支持的版本 {supported}，请升级 hutong")]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("存储错误: {0}")]
    Engine(#[from] EngineError),
    #[error("存储记录损坏: {0}")]
    Corrupt(String),
    #[error("事务冲突，请重试")]
    Conflict,
    #[error("{0} 中已有数据库，拒绝覆盖（恢复只写入没有数据库的目录）")]
    NotEmpty(PathBuf),
    #[error("另一个备份正在进行，请待其完成后再试")]
    BackupRunning,
    /// The owner's tenant KEK was deleted (crypto-shredding): its personal data is gone.
    #[error("租户密钥已销毁（{0}），其个人数据不可读")]
    TenantDestroyed(String),
}

type Space = Arc<dyn Keyspace>;

/// The handle every service shares.
#[derive(Clone)]
pub struct Store {
    engine: Arc<dyn Engine>,
    meta: Space,
    systems: Space,
    nonces: Space,
    accounts: Space,
    events: Space,
    seals: Space,
    seal_ders: Space,
    seal_index: Space,
    sign_ids: Space,
    fetched: Space,
    data_keys: Space,
    trust_anchors: Space,
    cloud_auths: Space,
    usage: Space,
    usage_users: Space,
    quotas: Space,
    quota_users: Space,
    vendor_profiles: Space,
    applications: Space,
    sessions: Space,
    audit_leaves: Space,
    audit_state: Space,
    audit_checkpoints: Space,
    audit_index: Space,
    data_key_cache: Arc<std::sync::Mutex<seals::DataKeyCache>>,
    /// The audit tree's frontier; its lock serialises appends (see `audit_log`). Never held
    /// across an await.
    audit_tip: Arc<std::sync::Mutex<crate::audit::merkle::Frontier>>,
    /// Serialises index catch-up and pruning.
    audit_index_lock: Arc<std::sync::Mutex<()>>,
    /// One backup at a time, refused rather than queued (a waiting one would hold the audit
    /// log's tip).
    backup_lock: Arc<std::sync::Mutex<()>>,
    commit: Arc<GroupCommit>,
}

struct GroupCommit {
    /// Serialises flushes; whoever holds it flushes for everyone who arrived before.
    lock: Mutex<()>,
    /// Number of completed flushes.
    done: watch::Sender<u64>,
}

/// Why a transaction body stopped: the engine's signal (passed on with `?`) or the store's
/// own reason to give up.
pub(crate) enum TxAbort {
    Engine(TxError),
    Store(StoreError),
}

impl From<TxError> for TxAbort {
    fn from(e: TxError) -> Self {
        TxAbort::Engine(e)
    }
}

impl From<StoreError> for TxAbort {
    fn from(e: StoreError) -> Self {
        TxAbort::Store(e)
    }
}

impl Store {
    /// Opens (creating if needed) the embedded database in `data_dir/db`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_engine_at(&data_dir.join("db"), data_dir)
    }

    /// Opens the embedded database at `path` (of the data directory `data_dir`).
    fn open_engine_at(path: &Path, data_dir: &Path) -> Result<Self, StoreError> {
        let engine = sled_engine::SledEngine::open(path).map_err(|e| match e {
            EngineError::Locked => StoreError::Locked(data_dir.to_path_buf()),
            other => StoreError::Engine(other),
        })?;
        Self::with_engine(Arc::new(engine))
    }

    /// Opens the store on any engine: checks (or, on an empty database, writes) the schema
    /// version, then opens every keyspace of the schema.
    pub fn with_engine(engine: Arc<dyn Engine>) -> Result<Self, StoreError> {
        use keyspace as ks;
        let meta = engine.keyspace(ks::META)?;
        match meta.get(b"schema_version")? {
            None => {
                meta.insert(b"schema_version", &SCHEMA_VERSION.to_be_bytes())?;
                engine.flush()?;
            }
            Some(v) => {
                let found = u32::from_be_bytes(
                    v.as_slice()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("schema_version".into()))?,
                );
                if found > SCHEMA_VERSION {
                    return Err(StoreError::SchemaTooNew {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                // Every older layout reads as it is; this binary writes the current one from
                // now on, so an older binary must refuse the database rather than misread it.
                if found < SCHEMA_VERSION {
                    meta.insert(b"schema_version", &SCHEMA_VERSION.to_be_bytes())?;
                    engine.flush()?;
                }
            }
        }
        let open = |name: &str| engine.keyspace(name);
        let (done, _) = watch::channel(0);
        let store = Self {
            systems: open(ks::SYSTEMS)?,
            nonces: open(ks::NONCES)?,
            accounts: open(ks::ACCOUNTS)?,
            events: open(ks::EVENTS)?,
            seals: open(ks::SEALS)?,
            seal_ders: open(ks::SEAL_DERS)?,
            seal_index: open(ks::SEAL_INDEX)?,
            sign_ids: open(ks::SIGN_IDS)?,
            fetched: open(ks::FETCHED)?,
            data_keys: open(ks::DATA_KEYS)?,
            trust_anchors: open(ks::TRUST_ANCHORS)?,
            cloud_auths: open(ks::CLOUD_AUTHS)?,
            usage: open(ks::USAGE)?,
            usage_users: open(ks::USAGE_USERS)?,
            quotas: open(ks::QUOTAS)?,
            quota_users: open(ks::QUOTA_USERS)?,
            vendor_profiles: open(ks::VENDOR_PROFILES)?,
            applications: open(ks::APPLICATIONS)?,
            sessions: open(ks::SESSIONS)?,
            audit_leaves: open(ks::AUDIT_LEAVES)?,
            audit_state: open(ks::AUDIT_STATE)?,
            audit_checkpoints: open(ks::AUDIT_CHECKPOINTS)?,
            audit_index: open(ks::AUDIT_INDEX)?,
            data_key_cache: Arc::default(),
            audit_tip: Arc::default(),
            audit_index_lock: Arc::default(),
            backup_lock: Arc::default(),
            meta,
            engine,
            commit: Arc::new(GroupCommit {
                lock: Mutex::new(()),
                done,
            }),
        };
        store.load_audit_tip()?;
        store.catch_up_audit_index()?;
        Ok(store)
    }

    /// Makes every write issued before this call durable. Concurrent callers share flushes:
    /// a caller that finds a flush in progress waits for the next one, which covers its writes.
    pub async fn commit(&self) -> Result<(), StoreError> {
        let mut rx = self.commit.done.subscribe();
        let start = *rx.borrow_and_update();
        // A flush that started after we arrived (completed count >= start + 2) covers us.
        loop {
            if let Ok(_guard) = self.commit.lock.try_lock() {
                if *self.commit.done.borrow() >= start + 2 {
                    return Ok(());
                }
                let engine = self.engine.clone();
                let res = tokio::task::spawn_blocking(move || engine.flush())
                    .await
                    .map_err(|_| StoreError::Corrupt("flush task failed".into()))?;
                self.commit.done.send_modify(|n| *n += 1);
                res?;
                return Ok(());
            }
            if rx.changed().await.is_err() {
                break;
            }
            if *rx.borrow_and_update() >= start + 2 {
                return Ok(());
            }
        }
        self.flush_blocking()
    }

    /// Synchronous flush for the CLI and shutdown.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.engine.flush()?;
        Ok(())
    }

    /// Whether the database answers reads (readiness probe).
    pub fn is_ready(&self) -> bool {
        self.meta
            .get(b"schema_version")
            .map(|v| v.is_some())
            .unwrap_or(false)
    }

    /// Visits every stored entry (keyspace name, key, value) as it was at one point in time,
    /// keyspaces in name order: what a backup writes and an at-rest check reads. Writers go
    /// on meanwhile (the engine keeps what they overwrite until it has been visited).
    pub fn snapshot(
        &self,
        mut visit: impl FnMut(&str, &[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut failed = None;
        let res = self.engine.snapshot(&mut |space, k, v| {
            visit(space, k, v).map_err(|e| {
                let stop = EngineError::Other(e.to_string());
                failed = Some(e);
                stop
            })
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(res?),
        }
    }

    /// Runs `body` as one serializable transaction over `spaces` (retried on conflict, so it
    /// may run more than once). A body's `StoreError` aborts it and is returned.
    pub(crate) fn transaction<T>(
        &self,
        spaces: &[&str],
        body: impl Fn(&dyn Txn) -> Result<T, TxAbort>,
    ) -> Result<T, StoreError> {
        // A transaction that appends to the audit log is one of its serialised appends: it
        // starts each attempt from the frontier and publishes the new one once committed.
        let mut tip = spaces
            .contains(&keyspace::AUDIT_STATE)
            .then(|| audit_log::lock(&self.audit_tip));
        let out = RefCell::new(None);
        let reason = RefCell::new(None);
        let res = self.engine.transaction(spaces, &|tx| {
            audit_log::begin_tx_append(tip.as_deref());
            match body(tx) {
                Ok(v) => {
                    *out.borrow_mut() = Some(v);
                    Ok(())
                }
                Err(TxAbort::Engine(e)) => Err(e),
                Err(TxAbort::Store(e)) => {
                    *reason.borrow_mut() = Some(e);
                    Err(TxError::Abort)
                }
            }
        });
        let appended = audit_log::end_tx_append();
        if let (Ok(()), Some(tip), Some(f)) = (&res, tip.as_mut(), appended) {
            **tip = f;
        }
        match res {
            Ok(()) => out
                .into_inner()
                .ok_or_else(|| StoreError::Corrupt("transaction without result".into())),
            Err(TxError::Abort) => Err(reason
                .into_inner()
                .unwrap_or_else(|| StoreError::Corrupt("transaction aborted".into()))),
            Err(TxError::Conflict) => Err(StoreError::Conflict),
            Err(TxError::Engine(e)) => Err(e.into()),
        }
    }
}

/// What a single-record write expects to find under its key.
pub(crate) enum Expect<'a> {
    Anything,
    Absent,
    Exactly(&'a [u8]),
}

impl Store {
    /// Writes one record (`None` removes it) and appends the act's audit entry in the same
    /// transaction (SPEC §6.1 must-succeed: the record changes with its entry or not at all).
    /// `Conflict` when the record is not as `expect` says; returns the value it replaced.
    pub(crate) fn write_record(
        &self,
        space: &'static str,
        key: &[u8],
        expect: Expect<'_>,
        new: Option<&[u8]>,
        entry: &crate::audit::entry::Draft,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let spaces = audit_log::with_audit_spaces(&[space]);
        self.transaction(&spaces, |tx| {
            let current = tx.get(space, key)?;
            let as_expected = match expect {
                Expect::Anything => true,
                Expect::Absent => current.is_none(),
                Expect::Exactly(v) => current.as_deref() == Some(v),
            };
            if !as_expected {
                return Err(TxAbort::Store(StoreError::Conflict));
            }
            match new {
                Some(v) => tx.insert(space, key, v)?,
                None => tx.remove(space, key)?,
            };
            self.append_audit_tx(tx, entry)?;
            Ok(current)
        })
    }
}

/// JSON encoding of a record; records are small and readable in a debugger.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_commits_all_complete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..32u32 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.meta.insert(&i.to_be_bytes(), b"x").unwrap();
                s.commit().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(store.is_ready());
    }

    #[test]
    fn second_open_of_a_locked_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        match Store::open(dir.path()) {
            Err(StoreError::Locked(_)) => {}
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("two handles on one database"),
        }
    }
}
