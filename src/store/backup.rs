//! What a backup reads from the store and what a restore writes into a new one (SPEC §6.2).
//! The file format and its keys belong to `crate::backup`; here are only the two store acts:
//! a consistent visit of every kept entry with the audit tree at that point, and filling an
//! empty store from such a visit.

use super::audit_log;
use super::{Store, StoreError, keyspace as ks};
use crate::audit::merkle::Frontier;
use std::path::Path;

/// Console sessions are not kept: a restored appliance starts with everyone logged out.
const NOT_BACKED_UP: &[&str] = &[ks::SESSIONS];

/// Whether a backup keeps entries of `space`.
pub fn kept(space: &str) -> bool {
    ks::ALL.contains(&space) && !NOT_BACKED_UP.contains(&space)
}

impl Store {
    /// Visits every entry a backup keeps at one point in time. `start` first receives the
    /// audit tree at that point: audit appends wait from before the snapshot starts until
    /// the first entry is visited, other writers only while the engine reads a batch (see
    /// [`Store::snapshot`]).
    pub fn backup_snapshot(
        &self,
        start: impl FnOnce(&Frontier) -> Result<(), StoreError>,
        mut visit: impl FnMut(&str, &[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let _one = self
            .backup_lock
            .try_lock()
            .map_err(|_| StoreError::BackupRunning)?;
        // Lock order as every appender's: the tip, then the engine's write gate.
        let mut held = Some(audit_log::lock(&self.audit_tip));
        let mut start = Some(start);
        let mut begin = |held: &mut Option<std::sync::MutexGuard<'_, Frontier>>| match (
            held.take(),
            start.take(),
        ) {
            (Some(tip), Some(f)) => {
                let tree = tip.clone();
                drop(tip);
                f(&tree)
            }
            _ => Ok(()),
        };
        self.snapshot(|space, k, v| {
            begin(&mut held)?;
            if kept(space) {
                visit(space, k, v)
            } else {
                Ok(())
            }
        })?;
        // An empty store visits nothing; the header is still written.
        begin(&mut held)
    }

    /// Creates the store of `data_dir` from a backup's entries; refuses a directory that
    /// already holds a database. The database is built under `db.restoring` and renamed to
    /// `db` only once complete and flushed, so a failed or killed restore never leaves a
    /// partial store where the appliance would serve it.
    pub fn restore(
        data_dir: &Path,
        entries: impl Iterator<Item = Result<(String, Vec<u8>, Vec<u8>), StoreError>>,
    ) -> Result<Store, StoreError> {
        let db = data_dir.join("db");
        if db.exists() {
            return Err(StoreError::NotEmpty(db));
        }
        let staging = data_dir.join("db.restoring");
        // What an earlier, killed restore left.
        let _ = std::fs::remove_dir_all(&staging);
        let filled = Self::open_engine_at(&staging, data_dir).and_then(|store| {
            store.fill(entries)?;
            Ok(store)
        });
        match filled {
            Ok(store) => drop(store),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        }
        std::fs::rename(&staging, &db)
            .map_err(|e| StoreError::Engine(super::engine::EngineError::Io(e.to_string())))?;
        // The engine waits out the lock the dropped staging handle still holds.
        Self::open(data_dir)
    }

    fn fill(
        &self,
        entries: impl Iterator<Item = Result<(String, Vec<u8>, Vec<u8>), StoreError>>,
    ) -> Result<(), StoreError> {
        let mut spaces = std::collections::HashMap::new();
        for e in entries {
            let (space, k, v) = e?;
            if !kept(&space) {
                return Err(StoreError::Corrupt(format!(
                    "备份中有本版本不认识的数据空间 {space:?}"
                )));
            }
            let target = match spaces.get(&space) {
                Some(t) => t,
                None => spaces
                    .entry(space.clone())
                    .or_insert(self.engine.keyspace(&space)?),
            };
            target.insert(&k, &v)?;
        }
        self.flush_blocking()?;
        self.load_audit_tip()?;
        self.catch_up_audit_index()?;
        self.flush_blocking()
    }
}

/// The newest backup the appliance wrote or streamed, for the console, `status` and metrics.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    pub at_ms: i64,
    /// The file, when the server wrote it itself (scheduled); a CLI's file is its own.
    pub file: Option<String>,
    pub bytes: u64,
    pub digest: String,
    /// Whether the file was read back and checked: `None` when it was not (a CLI's).
    pub verified: Option<bool>,
    /// Why the run failed, if it did (then the other fields describe nothing new).
    pub error: Option<String>,
    /// UTC ms of the newest run that wrote a backup and, when checked, verified it.
    pub last_good_ms: Option<i64>,
}

const BACKUP_STATUS: &[u8] = b"backup_status";

impl Store {
    pub fn backup_status(&self) -> Result<Option<BackupStatus>, StoreError> {
        self.meta
            .get(BACKUP_STATUS)?
            .map(|v| super::decode(&v))
            .transpose()
    }

    /// Records a run; a failed one keeps the last good time it had.
    pub fn put_backup_status(&self, mut status: BackupStatus) -> Result<(), StoreError> {
        let good = status.error.is_none() && status.verified != Some(false);
        status.last_good_ms = if good {
            Some(status.at_ms)
        } else {
            self.backup_status()?.and_then(|s| s.last_good_ms)
        };
        self.meta.insert(BACKUP_STATUS, &super::encode(&status)?)?;
        Ok(())
    }
}
