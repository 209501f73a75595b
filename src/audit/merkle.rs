//! RFC 6962 §2.1 / RFC 9162 §2.1 Merkle tree hashing with SM3 (SPEC §6.1): leaf and node
//! hashes, the compact range (frontier) that lets an append cost O(log n) hashes, roots,
//! inclusion and consistency proofs. Pure functions over hashes; storage is `store::audit`.

use crate::crypto::sm::sm3;
use sm3::{Digest, Sm3};

pub type Hash = [u8; 32];

/// `SM3(0x00 ‖ leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sm3::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// `SM3(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sm3::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree, `SM3("")`.
pub fn empty_root() -> Hash {
    sm3(b"")
}

/// The hashes of the perfect subtrees covering `[0, size)`, largest (leftmost) first: one per
/// set bit of `size` (RFC 9162 compact range of `[0, size)`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    pub size: u64,
    pub hashes: Vec<Hash>,
}

impl Frontier {
    /// A frontier as read from an anchor; `None` when the count does not match the size.
    pub fn new(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(Frontier { size, hashes })
    }

    /// Appends one leaf hash: merges equal-sized subtrees, at most log2(n) node hashes.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut size = self.size;
        // Each trailing 1 bit of the old size is a subtree of the new leaf's height to merge.
        while size & 1 == 1 {
            match self.hashes.pop() {
                Some(left) => h = node_hash(&left, &h),
                None => break,
            }
            size >>= 1;
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// The tree head: the subtrees folded right to left.
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        match it.next() {
            None => empty_root(),
            Some(last) => it.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// MTH(D[n]) over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]) of RFC 9162 §2.1.3.1; `None` when `m` is not below `n`.
pub fn inclusion_proof(leaves: &[Hash], m: usize) -> Option<Vec<Hash>> {
    (m < leaves.len()).then(|| path(m, leaves))
}

fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return Vec::new();
    }
    let k = split(d.len());
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(root(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(root(&d[..k]));
        p
    }
}

/// PROOF(m, D[n]) of RFC 9162 §2.1.4.1; `None` unless `0 < m ≤ n`.
pub fn consistency_proof(leaves: &[Hash], m: usize) -> Option<Vec<Hash>> {
    (m > 0 && m <= leaves.len()).then(|| subproof(m, leaves, true))
}

fn subproof(m: usize, d: &[Hash], complete: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if complete { Vec::new() } else { vec![root(d)] };
    }
    let k = split(n);
    if m <= k {
        let mut p = subproof(m, &d[..k], complete);
        p.push(root(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(root(&d[..k]));
        p
    }
}

/// A tree whose leaves `[0, base)` are known only by their compact range (after pruning):
/// subtree roots, inclusion and consistency proofs over `[0, n)` as far as they need no
/// pruned leaf. Every range a proof of a leaf at or after `base` needs is either inside the
/// kept leaves or one of the frontier's subtrees, so those proofs always exist.
pub struct Partial<'a> {
    pub base: u64,
    /// The compact range of `[0, base)`, largest (leftmost) first.
    pub frontier: &'a [Hash],
    /// Leaf hashes from `base` on.
    pub leaves: &'a [Hash],
}

impl Partial<'_> {
    fn frontier_node(&self, lo: u64, hi: u64) -> Option<Hash> {
        let mut pos = 0u64;
        let mut i = 0;
        for bit in (0..64).rev() {
            if (self.base >> bit) & 1 == 1 {
                let end = pos + (1u64 << bit);
                if pos == lo && end == hi {
                    return self.frontier.get(i).copied();
                }
                pos = end;
                i += 1;
            }
        }
        None
    }

    /// MTH of leaves `[lo, hi)`; `None` when it needs a pruned leaf.
    pub fn root(&self, lo: u64, hi: u64) -> Option<Hash> {
        if let Some(h) = self.frontier_node(lo, hi) {
            return Some(h);
        }
        match hi.checked_sub(lo)? {
            0 => Some(empty_root()),
            1 if lo >= self.base => self
                .leaves
                .get(usize::try_from(lo - self.base).ok()?)
                .copied(),
            1 => None,
            n => {
                let k = split(usize::try_from(n).ok()?) as u64;
                Some(node_hash(&self.root(lo, lo + k)?, &self.root(lo + k, hi)?))
            }
        }
    }

    /// PATH(m, D[n]); `None` when `m ≥ n` or a needed subtree was pruned.
    pub fn inclusion(&self, m: u64, n: u64) -> Option<Vec<Hash>> {
        if m >= n {
            return None;
        }
        self.path(m, 0, n)
    }

    fn path(&self, m: u64, lo: u64, hi: u64) -> Option<Vec<Hash>> {
        if hi - lo <= 1 {
            return Some(Vec::new());
        }
        let k = split(usize::try_from(hi - lo).ok()?) as u64;
        if m < lo + k {
            let mut p = self.path(m, lo, lo + k)?;
            p.push(self.root(lo + k, hi)?);
            Some(p)
        } else {
            let mut p = self.path(m, lo + k, hi)?;
            p.push(self.root(lo, lo + k)?);
            Some(p)
        }
    }

    /// PROOF(m, D[n]); `None` unless `0 < m ≤ n` and every needed subtree is kept.
    pub fn consistency(&self, m: u64, n: u64) -> Option<Vec<Hash>> {
        if m == 0 || m > n {
            return None;
        }
        self.subproof(m, 0, n, true)
    }

    fn subproof(&self, m: u64, lo: u64, hi: u64, complete: bool) -> Option<Vec<Hash>> {
        let n = hi - lo;
        if m == n {
            return Some(if complete {
                Vec::new()
            } else {
                vec![self.root(lo, hi)?]
            });
        }
        let k = split(usize::try_from(n).ok()?) as u64;
        if m <= k {
            let mut p = self.subproof(m, lo, lo + k, complete)?;
            p.push(self.root(lo + k, hi)?);
            Some(p)
        } else {
            let mut p = self.subproof(m - k, lo + k, hi, false)?;
            p.push(self.root(lo, lo + k)?);
            Some(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf{i}").as_bytes()))
            .collect()
    }

    #[test]
    fn frontier_root_equals_the_recursive_root_at_every_size() {
        let d = leaves(70);
        let mut f = Frontier::default();
        assert_eq!(f.root(), empty_root());
        for n in 1..=d.len() {
            f.push(d[n - 1]);
            assert_eq!(f.root(), root(&d[..n]), "size {n}");
            assert_eq!(f.hashes.len(), n.count_ones() as usize);
        }
        assert!(Frontier::new(3, vec![[0; 32]]).is_none());
    }

    #[test]
    fn hashing_is_domain_separated_sm3() {
        // Leaf and node hashes differ from a plain SM3 of the same bytes (RFC 6962 §2.1).
        assert_ne!(leaf_hash(b""), empty_root());
        assert_eq!(leaf_hash(b"abc"), sm3(b"\x00abc"));
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut cat = vec![1u8];
        cat.extend_from_slice(&a);
        cat.extend_from_slice(&b);
        assert_eq!(node_hash(&a, &b), sm3(&cat));
        assert_eq!(root(&[a, b]), node_hash(&a, &b));
    }

    #[test]
    fn proofs_from_a_frontier_equal_the_full_trees_proofs_for_kept_leaves() {
        let d = leaves(23);
        for base in [0usize, 1, 3, 4, 7, 8, 13] {
            let mut f = Frontier::default();
            for h in &d[..base] {
                f.push(*h);
            }
            let p = Partial {
                base: base as u64,
                frontier: &f.hashes,
                leaves: &d[base..],
            };
            for n in base.max(1)..=d.len() {
                assert_eq!(p.root(0, n as u64), Some(root(&d[..n])), "root {base} {n}");
                for m in base..n {
                    assert_eq!(
                        p.inclusion(m as u64, n as u64),
                        inclusion_proof(&d[..n], m),
                        "inclusion {base} {m} {n}"
                    );
                }
                for m in base.max(1)..=n {
                    assert_eq!(
                        p.consistency(m as u64, n as u64),
                        consistency_proof(&d[..n], m),
                        "consistency {base} {m} {n}"
                    );
                }
            }
            if base > 1 {
                assert_eq!(p.inclusion(0, d.len() as u64), None);
            }
        }
    }
}
