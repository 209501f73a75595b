//! The embedded default engine: sled 0.34, one database per data directory, one sled tree per
//! keyspace. The only file of the crate that names `sled`; it maps sled's types and errors to
//! the seam's and adds nothing the seam does not promise.
//!
//! Snapshots: sled has no point-in-time view across trees, so the engine keeps one itself.
//! Every write takes a shared `gate`; a snapshot takes it exclusively only to start and to
//! read each batch of entries. While a snapshot runs, a write to a key the snapshot has not
//! reached yet first saves the value the key had (its *before-image*); the snapshot reports
//! saved values in place of what it finds, and at the end of each keyspace the saved values of
//! keys that were removed meanwhile. Writers so wait for one batch at most, and the visitor
//! runs with the gate released. A write never takes the gate twice (transaction bodies write
//! through the transaction view, which does not take it), so the gate cannot deadlock.

use super::engine::{
    Direction, Engine, EngineError, Entries, Keyspace, Swap, TxBody, TxError, Txn, Visitor,
};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::{IVec, Transactional};
use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// sled's own tree, which the store never uses.
const DEFAULT_TREE: &[u8] = b"__sled__default";

type Gate = Arc<RwLock<()>>;

/// sled's page cache.
const CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// Entries a snapshot reads under the exclusive gate at once, and the bytes they may hold.
const BATCH_ENTRIES: usize = 512;
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The running snapshot's progress and the before-images writers saved for it.
#[derive(Default)]
struct Progress {
    /// Keyspaces visited in full.
    done: HashSet<String>,
    /// The keyspace being visited and the last key read from it.
    cursor: Option<(String, Vec<u8>)>,
    /// Values at the snapshot's start (`None`: absent) of keys written since and not read yet.
    before: HashMap<String, HashMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl Progress {
    fn passed(&self, space: &str, key: &[u8]) -> bool {
        self.done.contains(space)
            || matches!(&self.cursor, Some((s, k)) if s == space && key <= k.as_slice())
    }
}

/// Shared by the engine and its keyspaces; `active` spares writers the lock when no snapshot
/// runs.
#[derive(Default)]
struct Snapshots {
    active: AtomicBool,
    progress: Mutex<Option<Progress>>,
    /// One snapshot at a time.
    exclusive: Mutex<()>,
}

impl Snapshots {
    /// Called by a writer, under the shared gate, after it changed `key` from `old`.
    fn saw_write(&self, space: &str, key: &[u8], old: Option<&[u8]>) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        let mut guard = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = guard.as_mut()
            && !p.passed(space, key)
        {
            p.before
                .entry(space.to_string())
                .or_default()
                .entry(key.to_vec())
                .or_insert_with(|| old.map(<[u8]>::to_vec));
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Progress) -> T) -> Option<T> {
        let mut guard = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_mut().map(f)
    }
}

fn write_gate(gate: &Gate) -> RwLockReadGuard<'_, ()> {
    // The gate guards no data: a panic elsewhere leaves nothing to repair.
    gate.read().unwrap_or_else(|e| e.into_inner())
}

fn snapshot_gate(gate: &Gate) -> RwLockWriteGuard<'_, ()> {
    gate.write().unwrap_or_else(|e| e.into_inner())
}

fn map_err(e: sled::Error) -> EngineError {
    match e {
        sled::Error::Io(io) => EngineError::Io(io.to_string()),
        sled::Error::Corruption { at, .. } => EngineError::Corrupt(format!("{at:?}")),
        other => EngineError::Other(other.to_string()),
    }
}

fn tx_err(e: UnabortableTransactionError) -> TxError {
    match e {
        UnabortableTransactionError::Conflict => TxError::Conflict,
        UnabortableTransactionError::Storage(e) => TxError::Engine(map_err(e)),
    }
}

fn owned(v: Option<IVec>) -> Option<Vec<u8>> {
    v.map(|v| v.to_vec())
}

pub struct SledEngine {
    db: sled::Db,
    gate: Gate,
    snapshots: Arc<Snapshots>,
}

impl SledEngine {
    /// Opens (creating if needed) the database at `path`; `Locked` when another process has
    /// it open (sled holds an exclusive file lock).
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let db = sled::Config::new()
            .path(path)
            // sled's default page cache is 1 GiB: a backup or restore reading a large store
            // would fill it. A bounded cache keeps the appliance's memory predictable.
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(200))
            .open()
            .map_err(|e| match e {
                sled::Error::Io(ref io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    EngineError::Locked
                }
                other => map_err(other),
            })?;
        Ok(Self {
            db,
            gate: Arc::new(RwLock::new(())),
            snapshots: Arc::default(),
        })
    }

    fn tree(&self, name: &str) -> Result<sled::Tree, EngineError> {
        self.db.open_tree(name).map_err(map_err)
    }
}

struct SledKeyspace {
    name: String,
    tree: sled::Tree,
    gate: Gate,
    snapshots: Arc<Snapshots>,
}

fn bound(b: Bound<&[u8]>) -> Bound<IVec> {
    match b {
        Bound::Included(k) => Bound::Included(IVec::from(k)),
        Bound::Excluded(k) => Bound::Excluded(IVec::from(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Keyspace for SledKeyspace {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.tree.get(key).map(owned).map_err(map_err)
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let _gate = write_gate(&self.gate);
        let old = self.tree.insert(key, value).map(owned).map_err(map_err)?;
        self.snapshots.saw_write(&self.name, key, old.as_deref());
        Ok(old)
    }

    fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let _gate = write_gate(&self.gate);
        let old = self.tree.remove(key).map(owned).map_err(map_err)?;
        self.snapshots.saw_write(&self.name, key, old.as_deref());
        Ok(old)
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Swap, EngineError> {
        let _gate = write_gate(&self.gate);
        let swapped = self
            .tree
            .compare_and_swap(key, expected, new)
            .map_err(map_err)?
            .map_err(|e| owned(e.current));
        if swapped.is_ok() {
            self.snapshots.saw_write(&self.name, key, expected);
        }
        Ok(swapped)
    }

    fn range(&self, lo: Bound<&[u8]>, hi: Bound<&[u8]>, dir: Direction) -> Entries<'_> {
        // sled panics on a range whose start lies after its end; such a range is empty.
        let empty = match (&lo, &hi) {
            (Bound::Included(l), Bound::Included(h)) => l > h,
            (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(h))
            | (Bound::Excluded(l), Bound::Included(h)) => l >= h,
            _ => false,
        };
        if empty {
            return Box::new(std::iter::empty());
        }
        let iter = self.tree.range::<IVec, _>((bound(lo), bound(hi)));
        let entry = |r: sled::Result<(IVec, IVec)>| {
            r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(map_err)
        };
        match dir {
            Direction::Forward => Box::new(iter.map(entry)),
            Direction::Reverse => Box::new(iter.rev().map(entry)),
        }
    }
}

struct SledTxn<'a> {
    names: &'a [&'a str],
    view: &'a [TransactionalTree],
    snapshots: &'a Snapshots,
}

impl SledTxn<'_> {
    fn tree(&self, space: &str) -> Result<&TransactionalTree, TxError> {
        self.names
            .iter()
            .position(|n| *n == space)
            .and_then(|i| self.view.get(i))
            .ok_or_else(|| {
                TxError::Engine(EngineError::Other(format!(
                    "keyspace {space} is not part of the transaction"
                )))
            })
    }
}

impl Txn for SledTxn<'_> {
    fn get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        self.tree(space)?.get(key).map(owned).map_err(tx_err)
    }

    // An attempt that is retried or aborted saves the committed value, which is still the
    // value at the snapshot's start: saving it early is harmless.
    fn insert(&self, space: &str, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        let old = self
            .tree(space)?
            .insert(key, value)
            .map(owned)
            .map_err(tx_err)?;
        self.snapshots.saw_write(space, key, old.as_deref());
        Ok(old)
    }

    fn remove(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        let old = self.tree(space)?.remove(key).map(owned).map_err(tx_err)?;
        self.snapshots.saw_write(space, key, old.as_deref());
        Ok(old)
    }
}

impl Engine for SledEngine {
    fn keyspace(&self, name: &str) -> Result<Arc<dyn Keyspace>, EngineError> {
        Ok(Arc::new(SledKeyspace {
            name: name.to_string(),
            tree: self.tree(name)?,
            gate: self.gate.clone(),
            snapshots: self.snapshots.clone(),
        }))
    }

    fn keyspace_names(&self) -> Result<Vec<String>, EngineError> {
        let mut names: Vec<String> = self
            .db
            .tree_names()
            .into_iter()
            .filter(|n| n.as_ref() != DEFAULT_TREE)
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    fn transaction(&self, spaces: &[&str], body: &TxBody<'_>) -> Result<(), TxError> {
        let trees = spaces
            .iter()
            .map(|n| self.tree(n))
            .collect::<Result<Vec<_>, _>>()?;
        let _gate = write_gate(&self.gate);
        let res = trees
            .as_slice()
            .transaction(|view: &Vec<TransactionalTree>| {
                let txn = SledTxn {
                    names: spaces,
                    view: view.as_slice(),
                    snapshots: &self.snapshots,
                };
                body(&txn).map_err(|e| match e {
                    TxError::Conflict => ConflictableTransactionError::Conflict,
                    other => ConflictableTransactionError::Abort(other),
                })
            });
        match res {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(TxError::Engine(map_err(e))),
        }
    }

    fn generate_id(&self) -> Result<u64, EngineError> {
        self.db.generate_id().map_err(map_err)
    }

    fn flush(&self) -> Result<(), EngineError> {
        self.db.flush().map(|_| ()).map_err(map_err)
    }

    fn snapshot(&self, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        let _one = self
            .snapshots
            .exclusive
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let names = {
            let _start = snapshot_gate(&self.gate);
            *self
                .snapshots
                .progress
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(Progress::default());
            self.snapshots.active.store(true, Ordering::Release);
            self.keyspace_names()
        };
        let res = names.and_then(|names| {
            names
                .iter()
                .try_for_each(|name| self.snapshot_keyspace(name, visit))
        });
        let _end = snapshot_gate(&self.gate);
        self.snapshots.active.store(false, Ordering::Release);
        *self
            .snapshots
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        res
    }
}

impl SledEngine {
    /// Visits one keyspace as it was when the snapshot started, a batch at a time.
    fn snapshot_keyspace(&self, name: &str, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        let tree = self.tree(name)?;
        loop {
            let (batch, finished) = {
                let _batch = snapshot_gate(&self.gate);
                let from = self
                    .snapshots
                    .with(|p| match &p.cursor {
                        Some((s, k)) if s == name => Bound::Excluded(IVec::from(k.as_slice())),
                        _ => Bound::Unbounded,
                    })
                    .unwrap_or(Bound::Unbounded);
                let mut batch = Vec::new();
                let mut bytes = 0;
                let mut last = None;
                for item in tree.range::<IVec, _>((from, Bound::Unbounded)) {
                    let (k, v) = item.map_err(map_err)?;
                    bytes += k.len() + v.len();
                    last = Some(k.to_vec());
                    batch.push((k.to_vec(), Some(v.to_vec())));
                    if batch.len() >= BATCH_ENTRIES || bytes >= BATCH_BYTES {
                        break;
                    }
                }
                let finished = batch.len() < BATCH_ENTRIES && bytes < BATCH_BYTES;
                let batch = self
                    .snapshots
                    .with(|p| {
                        let saved = p.before.entry(name.to_string()).or_default();
                        // What a key held at the start wins over what it holds now.
                        for (k, v) in batch.iter_mut() {
                            if let Some(old) = saved.remove(k.as_slice()) {
                                *v = old;
                            }
                        }
                        if let Some(k) = last {
                            p.cursor = Some((name.to_string(), k));
                        }
                        if finished {
                            // Keys removed since the start, which the scan could not meet.
                            let removed = p.before.remove(name).unwrap_or_default();
                            batch.extend(removed.into_iter().filter(|(_, v)| v.is_some()));
                            p.done.insert(name.to_string());
                            p.cursor = None;
                        }
                        batch
                    })
                    .unwrap_or_default();
                (batch, finished)
            };
            for (k, v) in &batch {
                if let Some(v) = v {
                    visit(name, k, v)?;
                }
            }
            if finished {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::vocab::SystemState;
    use crate::store::sessions::SessionRecord;
    use crate::store::{Store, keyspace};

    /// A data directory written the way releases before the seam wrote it — sled trees by
    /// name, JSON values, raw keys — opens and reads through the typed store unchanged.
    #[test]
    fn a_data_directory_of_the_previous_layout_opens_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            let meta = db.open_tree("meta").unwrap();
            meta.insert("schema_version", &1u32.to_be_bytes()).unwrap();
            meta.insert("seal_seq", &41u64.to_be_bytes()).unwrap();
            db.open_tree("systems")
                .unwrap()
                .insert(
                    "APP1",
                    br#"{"appId":"APP1","name":"n","platName":"p","publicKeys":[],"state":"online","createdMs":5,"history":[]}"#
                        .to_vec(),
                )
                .unwrap();
            db.open_tree("console_sessions")
                .unwrap()
                .insert(
                    crate::crypto::sm::sm3(b"cookie-value"),
                    br#"{"username":"op1","csrf":"c","createdMs":1,"lastSeenMs":2}"#.to_vec(),
                )
                .unwrap();
            let mut nonce = b"APP1\0".to_vec();
            nonce.extend_from_slice(&7u32.to_be_bytes());
            db.open_tree("nonces")
                .unwrap()
                .insert(nonce, &9_000i64.to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let s = crate::store::once_released(|| Store::open(dir.path()));
        let sys = s.get_system("APP1").unwrap().unwrap();
        assert_eq!((sys.state, sys.created_ms), (SystemState::Online, 5));
        assert_eq!(
            s.get_session("cookie-value").unwrap(),
            Some(SessionRecord {
                username: "op1".into(),
                csrf: "c".into(),
                created_ms: 1,
                last_seen_ms: 2,
                pending: None,
            })
        );
        assert!(!s.claim_nonce("APP1", 7, 10_000, 0).unwrap(), "seen nonce");
        assert_eq!(s.next_seal_sequence().unwrap(), 42);
        // Every keyspace of the schema exists, and nothing else.
        let mut names = Vec::new();
        drop(s);
        let db = crate::store::once_released(|| sled::open(dir.path().join("db")));
        for n in db.tree_names() {
            if n.as_ref() != super::DEFAULT_TREE {
                names.push(String::from_utf8_lossy(&n).into_owned());
            }
        }
        names.sort();
        let mut all = keyspace::ALL.map(String::from).to_vec();
        all.sort();
        assert_eq!(names, all);
        // Opened by this binary, the directory says so: older binaries refuse it now.
        let version = db.open_tree("meta").unwrap().get("schema_version").unwrap();
        assert_eq!(
            version.as_deref(),
            Some(&crate::store::SCHEMA_VERSION.to_be_bytes()[..])
        );
    }
}
