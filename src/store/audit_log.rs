//! The audit log's keyspaces (SPEC §6.1): `audit_leaves` (seq as 8 big-endian bytes → leaf
//! bytes), `audit_state` (`frontier` → tree size as 8 big-endian bytes then the frontier's
//! 32-byte hashes; `indexed` → how many leaves the search index covers; `anchor` → the
//! retention anchor as JSON), `audit_checkpoints` (tree size then UTC ms, each 8 big-endian
//! bytes → the signed checkpoint as JSON `{"text","signature"}`), `audit_index` (the
//! normalised index for search, empty values). An append reads and rewrites only the frontier,
//! so it costs O(log n) hashes and never rescans the leaves. Leaves are never rewritten; the
//! only deletion is retention pruning, which first stores the anchor it prunes up to.
//!
//! Index keys, all ending in the entry's `at` (UTC ms, sign bit flipped, 8 bytes big-endian)
//! then its `seq` (8 bytes), so every scan is newest first in (time, seq) order:
//! `t` for the time index; `f` + a field byte + the value's length (2 bytes) + the value for
//! actor id (`u`, also an API entry's appId), action (`c`), target (`g`), kind (`k`, not for
//! `api`) and result (`r`, not for `ok`) — see [`Field::indexes`]; stores written before that
//! also have appId keys (`a`), which pruning removes. The index is kept off the append path: it is caught up
//! from the `indexed` high-water mark in batches (when the store opens, in the background and
//! before every search), so a search always sees every entry appended before it began.
//!
//! Appends are serialised by the lock of the in-memory frontier (the tip), not by an engine
//! transaction: sled's multi-tree transactions take a global lock that waits for every flush
//! in progress, which would put each API call behind the previous call's fsync. An API call's
//! entry is one plain write of its leaf; an act that writes its entry with its own data uses a
//! transaction, under the same lock. The stored `frontier` lags behind: it is rewritten when
//! the index catches up and before pruning, and opening the store extends it with the leaves
//! written after it, so an open hashes at most the entries of the last half second or so.
//!
//! The old `events` keyspace (untyped list, before the log) is kept and read as history
//! older than the log; its records were never hash-linked, so they are not put into the tree.

use super::engine::{Direction, Txn};
use super::{Store, StoreError, TxAbort, keyspace as ks};
use crate::audit::entry::{self, Draft, Entry};
use crate::audit::merkle::{Frontier, Hash, leaf_hash};
use serde::{Deserialize, Serialize};
use std::ops::Bound;

const FRONTIER: &[u8] = b"frontier";
const INDEXED: &[u8] = b"indexed";
const ANCHOR: &[u8] = b"anchor";

/// At most this many index entries are examined for one page of a search.
pub const MAX_EXAMINED: usize = 10_000;
/// Longest value indexed per field (longer ones are indexed by their first bytes; every hit
/// is checked against the entry itself).
const MAX_INDEXED_VALUE: usize = 512;
/// Leaves indexed or pruned per transaction.
const BATCH: u64 = 500;

/// The retention anchor (SPEC §6.1): entries `[0, tree_size)` are pruned; `frontier` is their
/// compact range (Base64 hashes, left to right) and `checkpoint` signs its root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Anchor {
    pub tree_size: u64,
    pub frontier: Vec<String>,
    pub checkpoint: SignedCheckpoint,
}

impl Anchor {
    /// The frontier as hashes; `None` when it does not match the size.
    pub fn hashes(&self) -> Option<Frontier> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let hashes: Option<Vec<Hash>> = self
            .frontier
            .iter()
            .map(|h| b64.decode(h).ok()?.try_into().ok())
            .collect();
        Frontier::new(self.tree_size, hashes?)
    }
}

/// An indexed field of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The calling system of an API entry (`actor.id` when `actor.type` is `system`).
    AppId,
    Actor,
    Action,
    Target,
    Kind,
    Result,
}

impl Field {
    fn byte(self) -> u8 {
        match self {
            Field::AppId => b'a',
            Field::Actor => b'u',
            Field::Action => b'c',
            Field::Target => b'g',
            Field::Kind => b'k',
            Field::Result => b'r',
        }
    }

    /// This field of an entry; `None` when the entry has none (an empty target, the appId of
    /// an entry that is not an API call).
    fn of(self, e: &Entry) -> Option<&str> {
        let v = match self {
            Field::AppId if e.actor.kind == "system" => e.actor.id.as_str(),
            Field::AppId => return None,
            Field::Actor => e.actor.id.as_str(),
            Field::Action => e.action.as_str(),
            Field::Target => e.target.as_str(),
            Field::Kind => e.kind.as_str(),
            Field::Result => e.result.as_str(),
        };
        (!v.is_empty()).then_some(v)
    }

    /// Whether entries with this value have keys of this field. Nearly every entry is an API
    /// call that succeeded, so keys for kind `api` and result `ok` would more than double the
    /// index writes of each call and select nothing: a search for them reads another field's
    /// keys (or the time index) and checks each entry, and finds a page at once. An API
    /// entry's appId is its actor id, so the actor keys serve both.
    fn indexes(self, value: &str) -> bool {
        match self {
            Field::AppId => false,
            Field::Kind => value != entry::Kind::Api.as_str(),
            Field::Result => value != entry::Result::Ok.as_str(),
            _ => true,
        }
    }

    /// The index keys a search for `value` reads (each hit is checked against the entry);
    /// `None` when this field has no keys for it.
    fn scan_prefix(self, value: &str) -> Option<Vec<u8>> {
        match self {
            Field::AppId => Some(field_prefix(Field::Actor, value)),
            f => f.indexes(value).then(|| field_prefix(f, value)),
        }
    }

    const ALL: [Field; 6] = [
        Field::AppId,
        Field::Actor,
        Field::Action,
        Field::Target,
        Field::Kind,
        Field::Result,
    ];
}

/// A search of the log: every given filter must match; newest first, `limit` per page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Entries at or after this UTC ms.
    pub from_ms: Option<i64>,
    /// Entries at or before this UTC ms.
    pub to_ms: Option<i64>,
    /// (field, exact value) pairs.
    pub fields: Vec<(Field, String)>,
    /// Only entries older (in time, then seq) than the entry with this seq: the next page.
    pub before: Option<u64>,
    pub limit: usize,
}

/// One page of a search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditPage {
    /// (seq, entry), newest first.
    pub entries: Vec<(u64, Entry)>,
    /// The cursor of the next page, when there may be one.
    pub next_before: Option<u64>,
    /// The page stopped after examining [`MAX_EXAMINED`] index entries.
    pub truncated: bool,
}

fn at_key(at_ms: i64) -> [u8; 8] {
    ((at_ms as u64) ^ (1 << 63)).to_be_bytes()
}

fn field_prefix(field: Field, value: &str) -> Vec<u8> {
    let v = value.as_bytes();
    let v = &v[..v.len().min(MAX_INDEXED_VALUE)];
    let mut k = Vec::with_capacity(4 + v.len() + 16);
    k.push(b'f');
    k.push(field.byte());
    k.extend_from_slice(&(v.len() as u16).to_be_bytes());
    k.extend_from_slice(v);
    k
}

/// Every index key of an entry; with `legacy`, also the keys of values no longer indexed
/// ([`Field::indexes`]), which a store written by an older version has (for pruning).
fn index_keys(e: &Entry, legacy: bool) -> Vec<Vec<u8>> {
    let mut suffix = at_key(e.at).to_vec();
    suffix.extend_from_slice(&e.seq.to_be_bytes());
    let mut keys = vec![[&b"t"[..], &suffix].concat()];
    for f in Field::ALL {
        if let Some(v) = f.of(e).filter(|v| legacy || f.indexes(v)) {
            let mut k = field_prefix(f, v);
            k.extend_from_slice(&suffix);
            keys.push(k);
        }
    }
    keys
}

fn seq_of_key(k: &[u8]) -> Result<u64, StoreError> {
    k.len()
        .checked_sub(8)
        .and_then(|i| k.get(i..))
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt("audit index key".into()))
}

fn u64_of(b: &[u8]) -> Result<u64, StoreError> {
    b.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("audit state".into()))
}

/// A panic while holding an audit lock happens before the guarded value is changed (appends
/// write the leaf first), so the value is still right.
pub(super) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// The frontier an audit transaction's attempt builds on (see [`Store::transaction`]).
    static TX_TIP: std::cell::RefCell<Option<Frontier>> = const { std::cell::RefCell::new(None) };
    /// Whether the attempt appended.
    static TX_APPENDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Starts an attempt of a transaction: from `tip` when it appends to the log.
pub(super) fn begin_tx_append(tip: Option<&Frontier>) {
    TX_TIP.with_borrow_mut(|t| *t = tip.cloned());
    TX_APPENDED.set(false);
}

/// Ends a transaction: the frontier after its last attempt's appends, if it appended.
pub(super) fn end_tx_append() -> Option<Frontier> {
    let f = TX_TIP.with_borrow_mut(Option::take);
    TX_APPENDED.replace(false).then_some(f).flatten()
}

fn matches(e: &Entry, q: &AuditQuery) -> bool {
    q.from_ms.is_none_or(|f| e.at >= f)
        && q.to_ms.is_none_or(|t| e.at <= t)
        && q.fields.iter().all(|(f, v)| f.of(e) == Some(v.as_str()))
}

/// A signed checkpoint as SPEC §6.1's export carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    pub text: String,
    pub signature: String,
}

fn encode_frontier(f: &Frontier) -> Vec<u8> {
    let mut v = f.size.to_be_bytes().to_vec();
    for h in &f.hashes {
        v.extend_from_slice(h);
    }
    v
}

fn decode_frontier(bytes: &[u8]) -> Result<Frontier, StoreError> {
    let bad = || StoreError::Corrupt("audit frontier".into());
    let (size, rest) = bytes.split_at_checked(8).ok_or_else(bad)?;
    let size = u64::from_be_bytes(size.try_into().map_err(|_| bad())?);
    let hashes: Vec<Hash> = rest
        .chunks(32)
        .map(|c| c.try_into().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    Frontier::new(size, hashes).ok_or_else(bad)
}

fn checkpoint_key(size: u64, at_ms: i64) -> Vec<u8> {
    let mut k = size.to_be_bytes().to_vec();
    k.extend_from_slice(&at_ms.to_be_bytes());
    k
}

impl Store {
    /// Appends one entry inside a transaction that names [`AUDIT_SPACES`] (and whatever the
    /// act writes): the entry lands with the act or not at all. Returns its `seq`.
    pub(crate) fn append_audit_tx(&self, tx: &dyn Txn, draft: &Draft) -> Result<u64, TxAbort> {
        let mut f = TX_TIP.with_borrow(|t| t.clone()).ok_or_else(|| {
            StoreError::Corrupt("audit append outside an audit transaction".into())
        })?;
        let seq = f.size;
        let leaf = draft.leaf(seq);
        f.push(leaf_hash(&leaf));
        if tx
            .insert(ks::AUDIT_LEAVES, &seq.to_be_bytes(), &leaf)?
            .is_some()
        {
            return Err(StoreError::Corrupt(format!("audit leaf {seq} exists")).into());
        }
        TX_TIP.with_borrow_mut(|t| *t = Some(f));
        TX_APPENDED.set(true);
        Ok(seq)
    }

    /// Appends one entry on its own (an API call's): durable once a later [`Store::commit`]
    /// returns. Returns its `seq`.
    pub fn append_audit(&self, draft: &Draft) -> Result<u64, StoreError> {
        let mut tip = lock(&self.audit_tip);
        let seq = tip.size;
        let leaf = draft.leaf(seq);
        if self
            .audit_leaves
            .insert(&seq.to_be_bytes(), &leaf)?
            .is_some()
        {
            return Err(StoreError::Corrupt(format!("audit leaf {seq} exists")));
        }
        tip.push(leaf_hash(&leaf));
        Ok(seq)
    }

    /// Sets the tip from the stored frontier extended by the leaves written after it; a gap
    /// in those leaves is corruption.
    pub(super) fn load_audit_tip(&self) -> Result<(), StoreError> {
        let mut f = match self.audit_state.get(FRONTIER)? {
            Some(b) => decode_frontier(&b)?,
            None => Frontier::default(),
        };
        for r in self.audit_leaves(f.size, u64::MAX) {
            let (seq, leaf) = r?;
            if seq != f.size {
                return Err(StoreError::Corrupt(format!(
                    "audit leaf {} missing before leaf {seq}",
                    f.size
                )));
            }
            f.push(leaf_hash(&leaf));
        }
        *lock(&self.audit_tip) = f;
        self.persist_audit_frontier()
    }

    /// Stores the current frontier, so the next open extends it by few leaves.
    fn persist_audit_frontier(&self) -> Result<(), StoreError> {
        let tip = lock(&self.audit_tip);
        self.audit_state.insert(FRONTIER, &encode_frontier(&tip))?;
        Ok(())
    }

    /// Indexes the leaves the index does not cover yet, in batches from the high-water mark;
    /// returns how many were indexed. Index keys are written before the mark moves, so a crash
    /// in between only rewrites the same keys.
    pub fn catch_up_audit_index(&self) -> Result<u64, StoreError> {
        let _indexing = lock(&self.audit_index_lock);
        self.persist_audit_frontier()?;
        let mut total = 0;
        loop {
            let first = self.audit_first_seq()?;
            let size = self.audit_frontier()?.size;
            let marked = self
                .audit_state
                .get(INDEXED)?
                .map(|b| u64_of(&b))
                .transpose()?;
            let from = marked.unwrap_or(0).max(first);
            if from >= size {
                if marked != Some(from) {
                    self.audit_state.insert(INDEXED, &from.to_be_bytes())?;
                }
                return Ok(total);
            }
            let to = size.min(from + BATCH);
            for r in self.audit_leaves(from, to) {
                let (_, leaf) = r?;
                if let Some(e) = entry::parse(&leaf) {
                    for k in index_keys(&e, false) {
                        self.audit_index.insert(&k, &[])?;
                    }
                }
            }
            self.audit_state.insert(INDEXED, &to.to_be_bytes())?;
            total += to - from;
        }
    }

    /// One page of a search (see [`AuditQuery`]). The most selective given field drives the
    /// scan (appId, actor, action, target, kind, result; else the time index); the other
    /// filters are checked on each entry. At most [`MAX_EXAMINED`] index entries are read.
    pub fn search_audit(&self, q: &AuditQuery) -> Result<AuditPage, StoreError> {
        self.catch_up_audit_index()?;
        let mut page = AuditPage::default();
        let (from, to) = (q.from_ms.unwrap_or(i64::MIN), q.to_ms.unwrap_or(i64::MAX));
        if from > to || q.limit == 0 {
            return Ok(page);
        }
        let prefix = Field::ALL
            .iter()
            .find_map(|f| {
                let (_, v) = q.fields.iter().find(|(g, _)| g == f)?;
                f.scan_prefix(v)
            })
            .unwrap_or_else(|| b"t".to_vec());
        let lo = [&prefix[..], &at_key(from)].concat();
        let hi = match q.before {
            Some(seq) => {
                let Some(at) = self.audit_entry(seq)?.map(|e| e.at) else {
                    return Ok(page);
                };
                if at > to {
                    [&prefix[..], &at_key(to), &[0xFF; 8]].concat()
                } else {
                    [&prefix[..], &at_key(at), &seq.to_be_bytes()].concat()
                }
            }
            None => [&prefix[..], &at_key(to), &[0xFF; 8]].concat(),
        };
        let mut last = None;
        for (examined, r) in self
            .audit_index
            .range(
                Bound::Included(&lo[..]),
                Bound::Excluded(&hi[..]),
                Direction::Reverse,
            )
            .enumerate()
        {
            if examined == MAX_EXAMINED {
                page.truncated = true;
                page.next_before = last;
                return Ok(page);
            }
            let (k, _) = r?;
            // A key of a longer value that shares this prefix: not ours.
            if k.len() != prefix.len() + 16 {
                continue;
            }
            let seq = seq_of_key(&k)?;
            last = Some(seq);
            let Some(e) = self.audit_entry(seq)? else {
                continue;
            };
            if matches(&e, q) {
                if page.entries.len() == q.limit {
                    page.next_before = page.entries.last().map(|(s, _)| *s);
                    return Ok(page);
                }
                page.entries.push((seq, e));
            }
        }
        Ok(page)
    }

    /// The entry at `seq`, parsed; `None` when there is none (beyond the log, or pruned).
    pub fn audit_entry(&self, seq: u64) -> Result<Option<Entry>, StoreError> {
        Ok(self
            .audit_leaves
            .get(&seq.to_be_bytes())?
            .as_deref()
            .and_then(entry::parse))
    }

    /// The leaf bytes at `seq`.
    pub fn audit_leaf(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.audit_leaves.get(&seq.to_be_bytes())?)
    }

    /// The retention anchor, when the log has been pruned.
    pub fn audit_anchor(&self) -> Result<Option<Anchor>, StoreError> {
        self.audit_state
            .get(ANCHOR)?
            .map(|b| super::decode(&b))
            .transpose()
    }

    /// The first seq the store holds: the anchor's size, or 0.
    pub fn audit_first_seq(&self) -> Result<u64, StoreError> {
        Ok(self.audit_anchor()?.map_or(0, |a| a.tree_size))
    }

    /// Prunes entries `[0, anchor.tree_size)`: stores the anchor first, then deletes the
    /// leaves below it and their index entries in batches (a prune cut short by a crash is
    /// finished by the next one). Returns how many leaves were deleted.
    pub fn prune_audit_to(&self, anchor: &Anchor) -> Result<u64, StoreError> {
        let current = self.audit_first_seq()?;
        if anchor.tree_size < current || anchor.tree_size > self.audit_frontier()?.size {
            return Err(StoreError::Corrupt(format!(
                "audit anchor {} outside the log",
                anchor.tree_size
            )));
        }
        let _indexing = lock(&self.audit_index_lock);
        // The stored frontier must not lag behind leaves about to go.
        self.persist_audit_frontier()?;
        self.audit_state.insert(ANCHOR, &super::encode(anchor)?)?;
        let mut removed = 0;
        loop {
            let batch: Vec<(u64, Vec<u8>)> = self
                .audit_leaves(0, anchor.tree_size)
                .take(BATCH as usize)
                .collect::<Result<_, _>>()?;
            if batch.is_empty() {
                return Ok(removed);
            }
            self.transaction(&[ks::AUDIT_LEAVES, ks::AUDIT_INDEX], |tx| {
                for (seq, leaf) in &batch {
                    tx.remove(ks::AUDIT_LEAVES, &seq.to_be_bytes())?;
                    if let Some(e) = entry::parse(leaf) {
                        for k in index_keys(&e, true) {
                            tx.remove(ks::AUDIT_INDEX, &k)?;
                        }
                    }
                }
                Ok(())
            })?;
            removed += batch.len() as u64;
        }
    }

    /// The current tree size and frontier.
    pub fn audit_frontier(&self) -> Result<Frontier, StoreError> {
        Ok(lock(&self.audit_tip).clone())
    }

    /// Leaves with `seq` in `[from, to)`, in order.
    pub fn audit_leaves(
        &self,
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = Result<(u64, Vec<u8>), StoreError>> + '_ {
        let (lo, hi) = (from.to_be_bytes(), to.to_be_bytes());
        self.audit_leaves
            .range(
                Bound::Included(&lo[..]),
                Bound::Excluded(&hi[..]),
                Direction::Forward,
            )
            .map(|r| {
                let (k, v) = r?;
                let seq = u64::from_be_bytes(
                    k.as_slice()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("audit leaf key".into()))?,
                );
                Ok((seq, v))
            })
    }

    /// The newest `limit` leaves the frontier covers, newest first.
    pub fn recent_audit_leaves(&self, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let size = self.audit_frontier()?.size;
        let end = size.to_be_bytes();
        let mut out = Vec::with_capacity(limit.min(1024));
        for r in self.audit_leaves.range(
            Bound::Unbounded,
            Bound::Excluded(&end[..]),
            Direction::Reverse,
        ) {
            if out.len() == limit {
                break;
            }
            let (k, v) = r?;
            let seq = u64::from_be_bytes(
                k.as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("audit leaf key".into()))?,
            );
            out.push((seq, v));
        }
        Ok(out)
    }

    pub fn put_audit_checkpoint(
        &self,
        size: u64,
        at_ms: i64,
        cp: &SignedCheckpoint,
    ) -> Result<(), StoreError> {
        self.audit_checkpoints
            .insert(&checkpoint_key(size, at_ms), &super::encode(cp)?)?;
        Ok(())
    }

    /// Every checkpoint, by tree size then time.
    pub fn audit_checkpoints(&self) -> Result<Vec<(u64, SignedCheckpoint)>, StoreError> {
        self.audit_checkpoints
            .iter(Direction::Forward)
            .map(|r| {
                let (k, v) = r?;
                let size = k
                    .get(..8)
                    .and_then(|s| s.try_into().ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| StoreError::Corrupt("audit checkpoint key".into()))?;
                Ok((size, super::decode(&v)?))
            })
            .collect()
    }

    /// The newest checkpoint, if any.
    pub fn last_audit_checkpoint(&self) -> Result<Option<(u64, SignedCheckpoint)>, StoreError> {
        match self.audit_checkpoints.iter(Direction::Reverse).next() {
            None => Ok(None),
            Some(r) => {
                let (k, v) = r?;
                let size = k
                    .get(..8)
                    .and_then(|s| s.try_into().ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| StoreError::Corrupt("audit checkpoint key".into()))?;
                Ok(Some((size, super::decode(&v)?)))
            }
        }
    }
}

/// The keyspaces an append writes; a transaction that appends names them all (and so runs
/// under the audit lock, see [`Store::transaction`]).
pub const AUDIT_SPACES: [&str; 2] = [ks::AUDIT_LEAVES, ks::AUDIT_STATE];

/// The keyspaces of an act's transaction that also appends its audit entry.
pub(crate) fn with_audit_spaces(act: &[&'static str]) -> Vec<&'static str> {
    act.iter().copied().chain(AUDIT_SPACES).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::entry::{Actor, Kind, Result as R};
    use crate::audit::merkle::root;

    fn draft(i: i64) -> Draft {
        Draft {
            at_ms: i,
            kind: Kind::System,
            action: "system.start".into(),
            actor: Actor {
                kind: "platform".into(),
                id: "system".into(),
                role: None,
            },
            target: String::new(),
            result: R::Ok,
            code: None,
            request_id: None,
            client: None,
            latency_ms: None,
            params_digest: None,
            detail: format!("n{i}"),
        }
    }

    #[test]
    fn appends_are_gap_free_survive_reopening_and_match_the_recomputed_root() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            for i in 0..5 {
                assert_eq!(store.append_audit(&draft(i)).unwrap(), i as u64);
            }
            store.flush_blocking().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.append_audit(&draft(5)).unwrap(), 5);
        let leaves: Vec<_> = store
            .audit_leaves(0, u64::MAX)
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            leaves.iter().map(|l| l.0).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5]
        );
        let hashes: Vec<_> = leaves.iter().map(|l| leaf_hash(&l.1)).collect();
        let f = store.audit_frontier().unwrap();
        assert_eq!((f.size, f.root()), (6, root(&hashes)));
        assert_eq!(store.recent_audit_leaves(2).unwrap()[0].0, 5);
    }

    fn api(at_ms: i64, app: &str, result: R, code: i64) -> Draft {
        Draft {
            at_ms,
            kind: Kind::Api,
            action: "seal.filing".into(),
            actor: Actor {
                kind: "system".into(),
                id: app.into(),
                role: None,
            },
            target: String::new(),
            result,
            code: Some(code),
            request_id: Some(format!("r{at_ms}")),
            client: Some("127.0.0.1".into()),
            latency_ms: Some(1),
            params_digest: None,
            detail: String::new(),
        }
    }

    fn q(fields: &[(Field, &str)]) -> AuditQuery {
        AuditQuery {
            fields: fields.iter().map(|(f, v)| (*f, v.to_string())).collect(),
            limit: 50,
            ..Default::default()
        }
    }

    fn seqs(p: &AuditPage) -> Vec<u64> {
        p.entries.iter().map(|(s, _)| *s).collect()
    }

    #[test]
    fn search_combines_filters_newest_first_and_pages_by_seq() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // 0..120: API calls of A1 (ok) and A2 (every third denied); at = 1000 + i.
        for i in 0..120i64 {
            let (app, result, code) = if i % 2 == 0 {
                ("A1", R::Ok, 0)
            } else if i % 3 == 0 {
                ("A2", R::Denied, 20003)
            } else {
                ("A2", R::Ok, 0)
            };
            store
                .append_audit(&api(1000 + i, app, result, code))
                .unwrap();
        }
        store.append_audit(&draft(5000)).unwrap(); // seq 120, a system event

        let all = store.search_audit(&q(&[])).unwrap();
        assert_eq!(all.entries.len(), 50);
        assert_eq!(all.entries[0].0, 120);
        assert_eq!(all.entries[1].0, 119);
        // Paging: three pages cover everything once, in order.
        let mut seen = seqs(&all);
        let mut cursor = all.next_before;
        while let Some(b) = cursor {
            let p = store
                .search_audit(&AuditQuery {
                    before: Some(b),
                    ..q(&[])
                })
                .unwrap();
            seen.extend(seqs(&p));
            cursor = p.next_before;
        }
        assert_eq!(seen, (0..=120).rev().collect::<Vec<_>>());

        // appId, result and time range combined.
        let denied = store
            .search_audit(&AuditQuery {
                from_ms: Some(1000 + 30),
                to_ms: Some(1000 + 60),
                ..q(&[(Field::AppId, "A2"), (Field::Result, "denied")])
            })
            .unwrap();
        assert_eq!(seqs(&denied), [57, 51, 45, 39, 33]);
        assert!(denied.next_before.is_none() && !denied.truncated);
        assert!(denied.entries.iter().all(|(_, e)| e.code == Some(20003)));
        // Actor and action; a system event has no appId.
        assert_eq!(
            seqs(
                &store
                    .search_audit(&q(&[(Field::Action, "system.start")]))
                    .unwrap()
            ),
            [120]
        );
        assert!(
            store
                .search_audit(&q(&[(Field::AppId, "system")]))
                .unwrap()
                .entries
                .is_empty()
        );
        assert_eq!(
            store
                .search_audit(&q(&[(Field::Actor, "A1")]))
                .unwrap()
                .entries
                .len(),
            50
        );
        // A value that is a prefix of another is not a match.
        assert!(
            store
                .search_audit(&q(&[(Field::AppId, "A")]))
                .unwrap()
                .entries
                .is_empty()
        );
        assert!(
            store
                .search_audit(&AuditQuery {
                    from_ms: Some(10),
                    to_ms: Some(5),
                    ..q(&[])
                })
                .unwrap()
                .entries
                .is_empty()
        );
    }

    #[test]
    fn a_page_examines_a_bounded_number_of_index_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.append_audit(&api(1, "RARE", R::Ok, 0)).unwrap();
        for i in 0..(MAX_EXAMINED as i64 + 10) {
            store.append_audit(&api(2 + i, "A1", R::Ok, 0)).unwrap();
        }
        // Ok entries of RARE: driven by appId, found at once.
        let p = store.search_audit(&q(&[(Field::AppId, "RARE")])).unwrap();
        assert_eq!(seqs(&p), [0]);
        // Denied entries (none): the result index has none to read either.
        assert!(
            store
                .search_audit(&q(&[(Field::Result, "denied")]))
                .unwrap()
                .entries
                .is_empty()
        );
        // The time index, bounded by the range even with a cursor far above it.
        let p = store
            .search_audit(&AuditQuery {
                to_ms: Some(1),
                before: Some(MAX_EXAMINED as u64 + 10),
                ..q(&[])
            })
            .unwrap();
        assert_eq!(seqs(&p), [0]);
        let p = store.search_audit(&q(&[(Field::Kind, "system")])).unwrap();
        assert!(p.entries.is_empty() && !p.truncated);
        let p = store
            .search_audit(&q(&[(Field::Result, "ok"), (Field::Actor, "nobody")]))
            .unwrap();
        assert!(p.entries.is_empty() && !p.truncated);
        let p = store
            .search_audit(&AuditQuery {
                fields: vec![(Field::Result, "ok".into())],
                from_ms: Some(0),
                limit: 50,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(p.entries.len(), 50);
        // The driving index (appId A1) has many candidates the other filter rejects: the page
        // stops at the cap and offers to continue.
        let p = store
            .search_audit(&q(&[(Field::AppId, "A1"), (Field::Result, "denied")]))
            .unwrap();
        assert!(p.truncated && p.entries.is_empty());
        assert!(p.next_before.is_some());
    }

    #[test]
    fn the_common_kind_and_result_have_no_keys_and_are_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.append_audit(&api(10, "A1", R::Ok, 0)).unwrap();
        store
            .append_audit(&api(11, "A1", R::Denied, 20003))
            .unwrap();
        store.append_audit(&draft(12)).unwrap();
        store.catch_up_audit_index().unwrap();
        let keys: Vec<Vec<u8>> = store
            .audit_index
            .iter(Direction::Forward)
            .map(|r| r.unwrap().0)
            .collect();
        let with = |f: Field, v: &str| keys.iter().any(|k| k.starts_with(&field_prefix(f, v)));
        assert!(!with(Field::Kind, "api") && !with(Field::Result, "ok"));
        assert!(!with(Field::AppId, "A1") && with(Field::Actor, "A1"));
        assert!(with(Field::Kind, "system") && with(Field::Result, "denied"));
        let found = |fields: &[(Field, &str)]| seqs(&store.search_audit(&q(fields)).unwrap());
        assert_eq!(found(&[(Field::Kind, "api")]), [1, 0]);
        assert_eq!(found(&[(Field::Result, "ok")]), [2, 0]);
        assert_eq!(found(&[(Field::Kind, "api"), (Field::Result, "ok")]), [0]);
        assert_eq!(found(&[(Field::Result, "denied")]), [1]);
        assert_eq!(found(&[(Field::Kind, "system")]), [2]);
        // The appId of API entries, through the actor keys: the platform's own entry (actor
        // id "system", not a system actor) is no appId match.
        assert_eq!(found(&[(Field::AppId, "A1")]), [1, 0]);
        assert!(found(&[(Field::AppId, "system")]).is_empty());
        assert_eq!(found(&[(Field::Actor, "system")]), [2]);

        // A store indexed by an older version has those keys too; pruning removes them.
        let e = store.audit_entry(0).unwrap().unwrap();
        for k in index_keys(&e, true) {
            store.audit_index.insert(&k, &[]).unwrap();
        }
        store.append_audit(&draft(13)).unwrap();
        store.catch_up_audit_index().unwrap();
        let anchor = Anchor {
            tree_size: 3,
            frontier: Vec::new(),
            checkpoint: SignedCheckpoint {
                text: String::new(),
                signature: String::new(),
            },
        };
        store.prune_audit_to(&anchor).unwrap();
        let left: Vec<u64> = store
            .audit_index
            .iter(Direction::Forward)
            .map(|r| seq_of_key(&r.unwrap().0).unwrap())
            .collect();
        assert!(!left.is_empty() && left.iter().all(|s| *s == 3), "{left:?}");
    }

    #[test]
    fn the_index_catches_up_when_the_store_opens_and_before_a_search() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            for i in 0..7 {
                store.append_audit(&api(100 + i, "A1", R::Ok, 0)).unwrap();
            }
            // Appends never write the index themselves.
            assert_eq!(store.audit_index.iter(Direction::Forward).count(), 0);
            store.flush_blocking().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert!(store.audit_index.iter(Direction::Forward).count() > 0);
        assert_eq!(store.catch_up_audit_index().unwrap(), 0);
        store.append_audit(&api(200, "A1", R::Ok, 0)).unwrap();
        assert_eq!(
            seqs(&store.search_audit(&q(&[(Field::AppId, "A1")])).unwrap()),
            [7, 6, 5, 4, 3, 2, 1, 0]
        );
        // As an older version left it: leaves and frontier, no index.
        let keys: Vec<_> = store
            .audit_index
            .iter(Direction::Forward)
            .map(|r| r.unwrap().0)
            .collect();
        for k in keys {
            store.audit_index.remove(&k).unwrap();
        }
        store.audit_state.remove(INDEXED).unwrap();
        assert_eq!(store.search_audit(&q(&[])).unwrap().entries.len(), 8);
    }

    #[test]
    fn leaves_written_after_the_stored_frontier_extend_it_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let store = Store::open(dir.path()).unwrap();
            store.append_audit(&api(100, "A1", R::Ok, 0)).unwrap();
            store.catch_up_audit_index().unwrap(); // stores the frontier at size 1
            for i in 1..5 {
                store.append_audit(&api(100 + i, "A1", R::Ok, 0)).unwrap();
            }
            store.flush_blocking().unwrap();
            store.audit_frontier().unwrap().root()
        };
        let stored = |s: &Store| decode_frontier(&s.audit_state.get(FRONTIER).unwrap().unwrap());
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.audit_frontier().unwrap().size, 5);
        assert_eq!(store.audit_frontier().unwrap().root(), before);
        assert_eq!(stored(&store).unwrap().size, 5);
        assert_eq!(store.append_audit(&api(105, "A1", R::Ok, 0)).unwrap(), 5);
        let hashes: Vec<_> = store
            .audit_leaves(0, u64::MAX)
            .map(|r| leaf_hash(&r.unwrap().1))
            .collect();
        assert_eq!(root(&hashes), store.audit_frontier().unwrap().root());
        // A hole in the leaves after the stored frontier is not papered over.
        store.audit_leaves.remove(&3u64.to_be_bytes()).unwrap();
        store
            .audit_state
            .insert(FRONTIER, &encode_frontier(&Frontier::default()))
            .unwrap();
        store.flush_blocking().unwrap();
        drop(store);
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Corrupt(_))
        ));
    }
}
