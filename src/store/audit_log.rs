//! The audit log's keyspaces (SPEC §6.1): `audit_leaves` (seq as 8 big-endian bytes → leaf
//! bytes), `audit_state` (`frontier` → tree size as 8 big-endian bytes then the frontier's
//! 32-byte hashes), `audit_checkpoints` (tree size then UTC ms, each 8 big-endian bytes →
//! the signed checkpoint as JSON `{"text","signature"}`). An append reads and rewrites only
//! the frontier, so it costs O(log n) hashes and never rescans the leaves. Leaves are never
//! rewritten. The format and tree rules are `crate::audit`'s; this module only stores them.
//!
//! The old `events` keyspace (untyped list, before the log) is kept and read as history
//! older than the log; its records were never hash-linked, so they are not put into the tree.

use super::engine::{Direction, Txn};
use super::{Store, StoreError, TxAbort, keyspace as ks};
use crate::audit::entry::Draft;
use crate::audit::merkle::{Frontier, Hash, leaf_hash};
use serde::{Deserialize, Serialize};
use std::ops::Bound;

const FRONTIER: &[u8] = b"frontier";

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
        let mut f = match tx.get(ks::AUDIT_STATE, FRONTIER)? {
            Some(b) => decode_frontier(&b)?,
            None => Frontier::default(),
        };
        let seq = f.size;
        let leaf = draft.leaf(seq);
        f.push(leaf_hash(&leaf));
        if tx
            .insert(ks::AUDIT_LEAVES, &seq.to_be_bytes(), &leaf)?
            .is_some()
        {
            // A leaf beyond the frontier's size: the state was rolled back under us.
            return Err(StoreError::Corrupt(format!("audit leaf {seq} exists")).into());
        }
        tx.insert(ks::AUDIT_STATE, FRONTIER, &encode_frontier(&f))?;
        Ok(seq)
    }

    /// Appends one entry on its own. Durable once a later [`Store::commit`] returns.
    pub fn append_audit(&self, draft: &Draft) -> Result<u64, StoreError> {
        self.transaction(&AUDIT_SPACES, |tx| self.append_audit_tx(tx, draft))
    }

    /// The current tree size and frontier.
    pub fn audit_frontier(&self) -> Result<Frontier, StoreError> {
        match self.audit_state.get(FRONTIER)? {
            Some(b) => decode_frontier(&b),
            None => Ok(Frontier::default()),
        }
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

    /// The newest `limit` leaves, newest first.
    pub fn recent_audit_leaves(&self, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        for r in self.audit_leaves.iter(Direction::Reverse) {
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

/// The keyspaces an append writes; a transaction that appends names them all.
pub const AUDIT_SPACES: [&str; 2] = [ks::AUDIT_LEAVES, ks::AUDIT_STATE];

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
}
