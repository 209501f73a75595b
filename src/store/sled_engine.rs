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
const FLUSH_MS: u64 = 200;
/// 20 ms apart: five flush periods.
const LOCK_WAIT_TRIES: u32 = 50;

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

    /// Keeps the first value saved for a key the snapshot has not read yet.
    fn save(&mut self, space: &str, key: &[u8], old: Option<&[u8]>) {
        if !self.passed(space, key) {
            self.before
                .entry(space.to_string())
                .or_default()
                .entry(key.to_vec())
                .or_insert_with(|| old.map(<[u8]>::to_vec));
        }
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
    /// Runs a single-key write (under the shared gate) that returns the value it replaced,
    /// saving that value for a running snapshot. While one runs, the write and the saving
    /// happen under the progress lock, so two writers of one key cannot save out of order
    /// (the first saved value must be the one the key had at the start).
    fn write<T>(
        &self,
        space: &str,
        key: &[u8],
        op: impl FnOnce() -> Result<(T, Option<Option<Vec<u8>>>), EngineError>,
    ) -> Result<T, EngineError> {
        if !self.active.load(Ordering::Acquire) {
            return op().map(|(v, _)| v);
        }
        let mut guard = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let (v, old) = op()?;
        if let (Some(p), Some(old)) = (guard.as_mut(), old) {
            p.save(space, key, old.as_deref());
        }
        Ok(v)
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
    /// Opens (creating if needed) the database at `path`; `Locked` when another handle has
    /// it open (sled holds an exclusive file lock).
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        // A handle dropped a moment ago still holds the lock until sled's flusher thread
        // ends (up to one flush period), so a reopen in the same process waits that long
        // before calling the database locked.
        let mut tries = 0;
        loop {
            match Self::open_once(path) {
                Err(EngineError::Locked) if tries < LOCK_WAIT_TRIES => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    fn open_once(path: &Path) -> Result<Self, EngineError> {
        let db = sled::Config::new()
            .path(path)
            // sled's default page cache is 1 GiB: a backup or restore reading a large store
            // would fill it. A bounded cache keeps the appliance's memory predictable.
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(FLUSH_MS))
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
        self.snapshots.write(&self.name, key, || {
            let old = self.tree.insert(key, value).map(owned).map_err(map_err)?;
            Ok((old.clone(), Some(old)))
        })
    }

    fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let _gate = write_gate(&self.gate);
        self.snapshots.write(&self.name, key, || {
            let old = self.tree.remove(key).map(owned).map_err(map_err)?;
            Ok((old.clone(), Some(old)))
        })
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Swap, EngineError> {
        let _gate = write_gate(&self.gate);
        self.snapshots.write(&self.name, key, || {
            let swapped = self
                .tree
                .compare_and_swap(key, expected, new)
                .map_err(map_err)?
                .map_err(|e| owned(e.current));
            // Only a swap that happened changed the key, from `expected`.
            let old = swapped.is_ok().then(|| expected.map(<[u8]>::to_vec));
            Ok((swapped, old))
        })
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

/// Values a transaction's attempt replaced: (keyspace, key, old value), in write order.
type Replaced = std::cell::RefCell<Vec<(String, Vec<u8>, Option<Vec<u8>>)>>;

struct SledTxn<'a> {
    names: &'a [&'a str],
    view: &'a [TransactionalTree],
    /// `Some` while a snapshot runs: what to save for it once the transaction committed.
    replaced: Option<&'a Replaced>,
}

impl SledTxn<'_> {
    fn replaced(&self, space: &str, key: &[u8], old: &Option<Vec<u8>>) {
        if let Some(r) = self.replaced {
            r.borrow_mut()
                .push((space.to_string(), key.to_vec(), old.clone()));
        }
    }
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

    fn insert(&self, space: &str, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        let old = self
            .tree(space)?
            .insert(key, value)
            .map(owned)
            .map_err(tx_err)?;
        self.replaced(space, key, &old);
        Ok(old)
    }

    fn remove(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        let old = self.tree(space)?.remove(key).map(owned).map_err(tx_err)?;
        self.replaced(space, key, &old);
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
        // While a snapshot runs, the transaction holds the progress lock from before sled's
        // own transaction lock until its replaced values are saved: the same order as a
        // single-key write (progress, then sled), and no other write of its keys in between.
        let mut progress = self.snapshots.active.load(Ordering::Acquire).then(|| {
            self.snapshots
                .progress
                .lock()
                .unwrap_or_else(|e| e.into_inner())
        });
        let replaced = Replaced::default();
        let res = trees
            .as_slice()
            .transaction(|view: &Vec<TransactionalTree>| {
                // A retried attempt starts over; only the committed attempt's values count.
                replaced.borrow_mut().clear();
                let txn = SledTxn {
                    names: spaces,
                    view: view.as_slice(),
                    replaced: progress.is_some().then_some(&replaced),
                };
                body(&txn).map_err(|e| match e {
                    TxError::Conflict => ConflictableTransactionError::Conflict,
                    other => ConflictableTransactionError::Abort(other),
                })
            });
        if let (Ok(()), Some(Some(p))) = (&res, progress.as_deref_mut()) {
            for (space, key, old) in replaced.into_inner() {
                p.save(&space, &key, old.as_deref());
            }
        }
        drop(progress);
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
        // Ends the snapshot however the visit ends, a visitor's panic included.
        let _end = EndSnapshot(self);
        names.and_then(|names| {
            names
                .iter()
                .try_for_each(|name| self.snapshot_keyspace(name, visit))
        })
    }
}

struct EndSnapshot<'a>(&'a SledEngine);

impl Drop for EndSnapshot<'_> {
    fn drop(&mut self) {
        let _end = snapshot_gate(&self.0.gate);
        self.0.snapshots.active.store(false, Ordering::Release);
        *self
            .0
            .snapshots
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
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
        let s = Store::open(dir.path()).unwrap();
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
        let db = super::SledEngine::open(&dir.path().join("db")).unwrap().db;
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
