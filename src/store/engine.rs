//! The storage seam: what an engine must offer the store, and nothing the store's families
//! need beyond it. The embedded default is [`super::sled_engine`]; a PostgreSQL-protocol
//! engine or a replicated one implements the same two traits and passes the contract suite
//! (`tests/store_contract.rs`).
//!
//! An engine is a set of named keyspaces, each an ordered map from byte keys to byte values
//! (ordered by unsigned bytes, as `memcmp`). It owns no record types, no key layouts and no
//! rules: those belong to the family modules of `store`, which are written against these
//! traits only.
//!
//! What every implementation promises:
//! - single-key operations, [`Keyspace::compare_and_swap`] included, are linearizable;
//! - [`Engine::transaction`] is serializable across the keyspaces it names, all or nothing,
//!   and retries its body on conflict (so the body may run more than once and must have no
//!   effect outside the transaction);
//! - a write is durable once a later [`Engine::flush`] returns;
//! - [`Engine::snapshot`] visits every keyspace as it was at one point in time, whatever is
//!   written meanwhile, and holds writers back for short moments at most. An engine with MVCC
//!   reads from one snapshot (`REPEATABLE READ` in PostgreSQL); the sled engine keeps the
//!   before-images of keys written while it reads. Backup builds on it.

use std::ops::Bound;
use std::sync::Arc;

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Entries in key order (or reverse key order); an engine error ends the iteration.
pub type Entries<'a> = Box<dyn Iterator<Item = Result<Entry, EngineError>> + Send + 'a>;

/// The result of a compare-and-swap: `Err` carries the value found instead of the expected one.
pub type Swap = Result<(), Option<Vec<u8>>>;

/// What a snapshot visitor sees: keyspace name, key, value.
pub type Visitor<'a> = dyn FnMut(&str, &[u8], &[u8]) -> Result<(), EngineError> + 'a;

/// How [`Keyspace::update`] computes a new value from the old one (`None`: absent).
pub type Updater<'a> = dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>> + 'a;

/// The body of a transaction.
pub type TxBody<'a> = dyn Fn(&dyn Txn) -> Result<(), TxError> + 'a;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Another process holds the database.
    #[error("数据库正被另一个进程使用")]
    Locked,
    #[error("存储读写失败: {0}")]
    Io(String),
    #[error("存储文件损坏: {0}")]
    Corrupt(String),
    /// A misuse of the engine (a keyspace not named in the transaction, …): a bug.
    #[error("存储引擎错误: {0}")]
    Other(String),
}

/// Why a transaction body stopped.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    /// The engine saw a concurrent change; the body is run again. Bodies pass it on with `?`
    /// and never create it themselves.
    #[error("事务冲突")]
    Conflict,
    /// The body gave up: nothing it wrote is applied. The caller keeps the reason.
    #[error("事务已放弃")]
    Abort,
    #[error(transparent)]
    Engine(#[from] EngineError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

/// One named, ordered keyspace.
pub trait Keyspace: Send + Sync {
    fn name(&self) -> &str;

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// Sets `key`; returns the previous value.
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// Deletes `key`; returns the value it had. Of concurrent removers exactly one gets it.
    fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// Sets `key` to `new` (`None`: deletes it) if and only if its value is `expected`
    /// (`None`: absent), atomically.
    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Swap, EngineError>;

    /// Entries with keys between the bounds. The iterator owns what it needs.
    fn range(&self, lo: Bound<&[u8]>, hi: Bound<&[u8]>, dir: Direction) -> Entries<'_>;

    /// Entries whose key starts with `prefix`.
    fn scan_prefix(&self, prefix: &[u8], dir: Direction) -> Entries<'_> {
        let end = prefix_end(prefix);
        let hi = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        self.range(Bound::Included(prefix), hi, dir)
    }

    fn iter(&self, dir: Direction) -> Entries<'_> {
        self.range(Bound::Unbounded, Bound::Unbounded, dir)
    }

    fn is_empty(&self) -> Result<bool, EngineError> {
        Ok(self.iter(Direction::Forward).next().transpose()?.is_none())
    }

    /// Replaces the value by `f(old)` (`None`: deletes) atomically, calling `f` again when a
    /// concurrent writer got in between; returns the new value.
    fn update(&self, key: &[u8], f: &mut Updater<'_>) -> Result<Option<Vec<u8>>, EngineError> {
        let mut current = self.get(key)?;
        loop {
            let new = f(current.as_deref());
            match self.compare_and_swap(key, current.as_deref(), new.as_deref())? {
                Ok(()) => return Ok(new),
                Err(found) => current = found,
            }
        }
    }
}

/// The view of the keyspaces inside a transaction; keyspaces are named as in
/// [`Engine::transaction`]. Reads see the transaction's own writes.
pub trait Txn {
    fn get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, TxError>;
    fn insert(&self, space: &str, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, TxError>;
    fn remove(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, TxError>;
}

/// A database: keyspaces, transactions across them, ids, durability, snapshots.
pub trait Engine: Send + Sync {
    /// Opens the keyspace `name`, creating it empty if needed.
    fn keyspace(&self, name: &str) -> Result<Arc<dyn Keyspace>, EngineError>;

    /// Every keyspace that exists, in name order.
    fn keyspace_names(&self) -> Result<Vec<String>, EngineError>;

    /// Runs `body` as one serializable transaction over `spaces`, retrying it on conflict.
    /// `Err(TxError::Abort)` when the body gave up; `Conflict` never escapes.
    fn transaction(&self, spaces: &[&str], body: &TxBody<'_>) -> Result<(), TxError>;

    /// A number never returned before by this database, increasing, also across restarts.
    fn generate_id(&self) -> Result<u64, EngineError>;

    /// Makes every write that returned before this call durable.
    fn flush(&self) -> Result<(), EngineError>;

    /// Visits every entry of every keyspace, keyspaces in name order and each keyspace's
    /// entries together, all as at one point in time (see the module comment); the visitor
    /// may write. Stops at the visitor's first error.
    fn snapshot(&self, visit: &mut Visitor<'_>) -> Result<(), EngineError>;
}

/// The smallest key greater than every key starting with `prefix`; `None` when there is none
/// (the prefix is empty or all `0xFF`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_carries_over_ff_bytes() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[0x61, 0xFF, 0xFF]), Some(vec![0x62]));
        assert_eq!(prefix_end(&[0xFF]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
