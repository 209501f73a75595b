//! The embedded default engine: sled 0.34, one database per data directory, one sled tree per
//! keyspace. The only file of the crate that names `sled`; it maps sled's types and errors to
//! the seam's and adds nothing the seam does not promise.
//!
//! Snapshots: sled has no point-in-time view across trees, so every write takes a shared
//! `gate` and [`Engine::snapshot`] takes it exclusively: writers wait while a snapshot reads,
//! readers never do. A write never takes the gate twice (transaction bodies write through the
//! transaction view, which does not take it), so the gate cannot deadlock.

use super::engine::{
    Direction, Engine, EngineError, Entries, Keyspace, Swap, TxBody, TxError, Txn, Visitor,
};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::{IVec, Transactional};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// sled's own tree, which the store never uses.
const DEFAULT_TREE: &[u8] = b"__sled__default";

type Gate = Arc<RwLock<()>>;

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
}

impl SledEngine {
    /// Opens (creating if needed) the database at `path`; `Locked` when another process has
    /// it open (sled holds an exclusive file lock).
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let db = sled::Config::new()
            .path(path)
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
        self.tree.insert(key, value).map(owned).map_err(map_err)
    }

    fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let _gate = write_gate(&self.gate);
        self.tree.remove(key).map(owned).map_err(map_err)
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Swap, EngineError> {
        let _gate = write_gate(&self.gate);
        Ok(self
            .tree
            .compare_and_swap(key, expected, new)
            .map_err(map_err)?
            .map_err(|e| owned(e.current)))
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
        self.tree(space)?
            .insert(key, value)
            .map(owned)
            .map_err(tx_err)
    }

    fn remove(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        self.tree(space)?.remove(key).map(owned).map_err(tx_err)
    }
}

impl Engine for SledEngine {
    fn keyspace(&self, name: &str) -> Result<Arc<dyn Keyspace>, EngineError> {
        Ok(Arc::new(SledKeyspace {
            name: name.to_string(),
            tree: self.tree(name)?,
            gate: self.gate.clone(),
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
        let _quiet = snapshot_gate(&self.gate);
        for name in self.keyspace_names()? {
            for item in self.tree(&name)?.iter() {
                let (k, v) = item.map_err(map_err)?;
                visit(&name, &k, &v)?;
            }
        }
        Ok(())
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
