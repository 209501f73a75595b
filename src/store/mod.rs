//! Storage: one sled database per data directory, one module per tree family, typed records.
//!
//! Every state change is acknowledged only after [`Store::commit`] returns, which flushes the
//! database to disk; concurrent commits share one flush (group commit). sled holds an
//! exclusive file lock, so two processes never write one database.

pub mod accounts;
pub mod applications;
pub mod cloud_auths;
pub mod events;
pub mod nonces;
pub mod seals;
pub mod systems;
pub mod trust;
pub mod usage;

use serde::{Serialize, de::DeserializeOwned};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{Mutex, watch};
use zeroize::Zeroizing;

/// Bumped when the layout of any tree changes; [`Store::open`] refuses newer databases.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("数据目录 {0} 正被另一个 hutong 进程使用（请通过运行中的服务执行管理命令）")]
    Locked(PathBuf),
    #[error("数据库版本 {found} 高于本程序支持的版本 {supported}，请升级 hutong")]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("存储错误: {0}")]
    Sled(#[from] sled::Error),
    #[error("存储记录损坏: {0}")]
    Corrupt(String),
    #[error("事务冲突，请重试")]
    Conflict,
}

/// The handle every service shares.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    pub meta: sled::Tree,
    pub systems: sled::Tree,
    pub nonces: sled::Tree,
    pub accounts: sled::Tree,
    pub events: sled::Tree,
    pub seals: sled::Tree,
    pub seal_ders: sled::Tree,
    pub seal_index: sled::Tree,
    pub sign_ids: sled::Tree,
    pub fetched: sled::Tree,
    pub data_keys: sled::Tree,
    pub trust_anchors: sled::Tree,
    pub cloud_auths: sled::Tree,
    pub usage: sled::Tree,
    pub usage_users: sled::Tree,
    pub quotas: sled::Tree,
    pub quota_users: sled::Tree,
    data_key_cache: Arc<std::sync::Mutex<HashMap<String, Zeroizing<[u8; 16]>>>>,
    commit: Arc<GroupCommit>,
}

struct GroupCommit {
    /// Serialises flushes; whoever holds it flushes for everyone who arrived before.
    lock: Mutex<()>,
    /// Number of completed flushes.
    done: watch::Sender<u64>,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir/db`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join("db");
        let db = sled::Config::new()
            .path(&path)
            .flush_every_ms(Some(200))
            .open()
            .map_err(|e| match e {
                sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    StoreError::Locked(data_dir.to_path_buf())
                }
                sled::Error::Io(ref io) if io.to_string().contains("lock") => {
                    StoreError::Locked(data_dir.to_path_buf())
                }
                other => StoreError::Sled(other),
            })?;
        let meta = db.open_tree("meta")?;
        match meta.get("schema_version")? {
            None => {
                meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
                db.flush()?;
            }
            Some(v) => {
                let found = u32::from_be_bytes(
                    v.as_ref()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("schema_version".into()))?,
                );
                if found > SCHEMA_VERSION {
                    return Err(StoreError::SchemaTooNew {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
            }
        }
        let (done, _) = watch::channel(0);
        Ok(Self {
            systems: db.open_tree("systems")?,
            nonces: db.open_tree("nonces")?,
            accounts: db.open_tree("accounts")?,
            events: db.open_tree("events")?,
            seals: db.open_tree("seals")?,
            seal_ders: db.open_tree("seal_ders")?,
            seal_index: db.open_tree("seal_index")?,
            sign_ids: db.open_tree("sign_ids")?,
            fetched: db.open_tree("fetched")?,
            data_keys: db.open_tree("data_keys")?,
            trust_anchors: db.open_tree("trust_anchors")?,
            cloud_auths: db.open_tree("cloud_auths")?,
            usage: db.open_tree("usage")?,
            usage_users: db.open_tree("usage_users")?,
            quotas: db.open_tree("quotas")?,
            quota_users: db.open_tree("quota_users")?,
            data_key_cache: Arc::new(std::sync::Mutex::new(HashMap::new())),
            meta,
            db,
            commit: Arc::new(GroupCommit {
                lock: Mutex::new(()),
                done,
            }),
        })
    }

    pub fn db(&self) -> &sled::Db {
        &self.db
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
                let db = self.db.clone();
                let res = tokio::task::spawn_blocking(move || db.flush())
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
        self.db.flush()?;
        Ok(())
    }

    /// Whether the database answers reads (readiness probe).
    pub fn is_ready(&self) -> bool {
        self.meta
            .get("schema_version")
            .map(|v| v.is_some())
            .unwrap_or(false)
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
                s.meta.insert(i.to_be_bytes(), &b"x"[..]).unwrap();
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
