//! Export (SPEC §6.1 JSON Lines) and verification. The store's own check builds the full
//! export and verifies it, so `hutong audit verify` with and without `--from-export` run the
//! same code. Verification needs only the lines and the platform certificate.

use super::checkpoint;
use super::merkle::{self, Frontier, Hash, leaf_hash};
use crate::store::audit_log::SignedCheckpoint;
use crate::store::{Store, StoreError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Bounds on an export read for verification (untrusted input).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// One export line.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum Line {
    Entry {
        seq: u64,
        leaf: String,
    },
    Checkpoint {
        text: String,
        signature: String,
    },
    Anchor {
        #[serde(rename = "treeSize")]
        tree_size: u64,
        frontier: Vec<String>,
        checkpoint: SignedCheckpoint,
    },
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Entries read (after the anchor, if any).
    pub entries: u64,
    /// Checkpoints whose signature and root matched (the anchor's included).
    pub checkpoints: u64,
    /// The tree size the export ends at.
    pub tree_size: u64,
    /// Entries after the last checkpoint: recomputed, but no signature covers them yet.
    pub unsigned_tail: u64,
    /// The first line that does not match, in words; `None`: everything matched.
    pub problem: Option<String>,
}

/// Writes the export of entries `seq ∈ [start, end)` where `start` is the largest checkpointed
/// size at or before the first entry at or after `from_ms`, and `end` is just after the last
/// entry at or before `to_ms`.
pub fn export(
    store: &Store,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    out: &mut dyn std::io::Write,
) -> Result<(), StoreError> {
    let size = store.audit_frontier()?.size;
    let cps = store.audit_checkpoints()?;
    let anchor = store.audit_anchor()?;
    // After a prune the log starts at the anchor.
    let base = anchor.as_ref().map_or(0, |a| a.tree_size);
    // The range of seqs by time.
    let mut first = None;
    let mut end = base;
    for r in store.audit_leaves(base, size) {
        let (seq, leaf) = r?;
        let at = super::entry::parse(&leaf).map_or(i64::MIN, |e| e.at);
        if to_ms.is_some_and(|t| at > t) {
            break;
        }
        if first.is_none() && from_ms.is_none_or(|f| at >= f) {
            first = Some(seq);
        }
        end = seq + 1;
    }
    let first = first.unwrap_or(end);
    let start = cps
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| *s >= base && *s <= first)
        .max()
        .unwrap_or(base);
    let io = |e: std::io::Error| StoreError::Corrupt(format!("导出写入失败: {e}"));
    if start > 0 {
        let (mut f, anchor_cp) = match &anchor {
            Some(a) => (
                a.hashes()
                    .ok_or_else(|| StoreError::Corrupt("audit anchor frontier".into()))?,
                Some(a.checkpoint.clone()),
            ),
            None => (Frontier::default(), None),
        };
        for r in store.audit_leaves(base, start) {
            f.push(leaf_hash(&r?.1));
        }
        let cp = match anchor_cp {
            Some(cp) if start == base => cp,
            _ => cps
                .iter()
                .find(|(s, _)| *s == start)
                .map(|(_, c)| c.clone())
                .ok_or_else(|| StoreError::Corrupt("anchor checkpoint".into()))?,
        };
        let line = json!({"type": "anchor", "treeSize": start,
            "frontier": f.hashes.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
            "checkpoint": cp});
        writeln!(out, "{line}").map_err(io)?;
    }
    let mut cp_iter = cps
        .iter()
        .filter(|(s, _)| *s > start && *s <= end)
        .peekable();
    for r in store.audit_leaves(start, end) {
        let (seq, leaf) = r?;
        let line = json!({"type": "entry", "seq": seq, "leaf": B64.encode(&leaf)});
        writeln!(out, "{line}").map_err(io)?;
        while let Some((_, cp)) = cp_iter.next_if(|(s, _)| *s == seq + 1) {
            let line = json!({"type": "checkpoint", "text": cp.text, "signature": cp.signature});
            writeln!(out, "{line}").map_err(io)?;
        }
    }
    Ok(())
}

/// `hutong audit verify` on the store: the whole remaining log exported (from the anchor
/// after a prune) and verified, so the store and an export are checked by the same code.
pub fn verify_store(store: &Store, certs: &[Vec<u8>]) -> Result<Report, StoreError> {
    let mut out = Vec::new();
    export(store, None, None, &mut out)?;
    let text = String::from_utf8_lossy(&out);
    Ok(verify(text.lines().map(String::from), certs))
}

/// Verifies an export with the platform certificates (DER; the current one and those a
/// rotation replaced): every line in order, every root recomputed, every signature checked
/// with the certificate its checkpoint's origin names; stops at the first line that does
/// not match. The region never changes, and a checkpoint never goes back to a certificate
/// a later checkpoint replaced (a retired key must not sign on).
pub fn verify(lines: impl Iterator<Item = String>, certs: &[Vec<u8>]) -> Report {
    let mut r = Report {
        entries: 0,
        checkpoints: 0,
        tree_size: 0,
        unsigned_tail: 0,
        problem: None,
    };
    let mut keys = Vec::with_capacity(certs.len());
    // Each certificate's notBefore: a later one is a later generation of the platform key.
    let mut born: Vec<(String, i64)> = Vec::with_capacity(certs.len());
    for der in certs {
        let parsed = crate::crypto::sm::sm2_public_key_from_cert_der(der).and_then(|k| {
            crate::crypto::x509::CertInfo::parse(der)
                .map(|c| (k, c.not_before_ms))
                .map_err(|e| crate::crypto::sm::CryptoError::Malformed(e.to_string()))
        });
        match parsed {
            Ok((k, not_before)) => {
                let fp = crate::crypto::sm::sm3_hex(der)[..16].to_string();
                born.push((fp.clone(), not_before));
                keys.push((fp, k));
            }
            Err(e) => {
                r.problem = Some(format!("平台证书无效: {e}"));
                return r;
            }
        }
    }
    let generation = |origin: &str| -> i64 {
        let fp = origin.rsplit('/').next().unwrap_or_default();
        born.iter()
            .find(|(f, _)| f == fp)
            .map_or(i64::MIN, |(_, t)| *t)
    };
    if keys.is_empty() {
        r.problem = Some("没有平台证书".into());
        return r;
    }
    let mut f = Frontier::default();
    // The last signed size: entries beyond it are the unsigned tail.
    let mut signed = 0u64;
    // The origins seen so far, in order; the last is the one in force.
    let mut origins: Vec<String> = Vec::new();
    // The anchor's origin and time: it is left out of the order (see below), but a checkpoint
    // made after the anchor was signed may not come from an older certificate than it.
    let anchor: std::cell::RefCell<Option<(String, i64)>> = std::cell::RefCell::new(None);
    let check_cp = |cp: &SignedCheckpoint,
                    f: &Frontier,
                    since: u64,
                    origins: &mut Vec<String>,
                    ordered: bool|
     -> Result<(), String> {
        let (region, fp) = checkpoint::parse(&cp.text)
            .and_then(|p| {
                let rest = p.origin.strip_prefix("hutong/")?;
                let (region, fp) = rest.split_once('/')?;
                Some((region.to_string(), fp.to_string()))
            })
            .ok_or("签名无效或文本格式不符（伪造或被改动）")?;
        let key = keys
            .iter()
            .find(|(k, _)| *k == fp)
            .map(|(_, key)| key)
            .ok_or_else(|| format!("origin hutong/{region}/{fp} 不属于任何给定的平台证书"))?;
        let p = checkpoint::verify(cp, key).ok_or("签名无效或文本格式不符（伪造或被改动）")?;
        // An anchor is signed at pruning time by the key then in force, over an older size:
        // it says nothing about which key came first.
        // Every checkpoint after the anchor, also one by the same key as the one before it.
        if ordered
            && let Some((first, at)) = anchor.borrow().as_ref()
            && (first.rsplit_once('/').map(|(r, _)| r) != p.origin.rsplit_once('/').map(|(r, _)| r)
                || (p.at_ms > *at && generation(&p.origin) < generation(first)))
        {
            return Err(format!(
                "origin {} 与锚点检查点（{first}）的地区或密钥先后不符",
                p.origin
            ));
        }
        let order = if ordered { origins.last() } else { None };
        match order {
            Some(last) if *last == p.origin => {}
            Some(last) if !last.starts_with(&format!("hutong/{region}/")) => {
                return Err(format!(
                    "origin {} 与前面的检查点（{last}）地区不同",
                    p.origin
                ));
            }
            Some(_) if origins.contains(&p.origin) => {
                return Err(format!(
                    "origin {} 的证书已被轮换替代，之后不应再签检查点",
                    p.origin
                ));
            }
            // A rotation only goes forward: the certificate taking over is newer (later
            // notBefore) than the one in force, so a retired key cannot take over again
            // even where the window shows nothing it signed before.
            Some(last) if generation(&p.origin) < generation(last) => {
                return Err(format!(
                    "origin {} 的证书早于正在使用的 {last}（已被轮换替代的密钥不应再签检查点）",
                    p.origin
                ));
            }
            Some(_) | None if !ordered => {
                *anchor.borrow_mut() = Some((p.origin.clone(), p.at_ms));
            }
            _ => origins.push(p.origin.clone()),
        }
        if p.size != f.size {
            return Err(format!(
                "树大小 {} 与其位置（{} 条之后）不符",
                p.size, f.size
            ));
        }
        if p.root != f.root() {
            return Err(format!(
                "根哈希不符：seq {since} 至 {} 中有条目被改动、插入或删除",
                f.size.saturating_sub(1)
            ));
        }
        Ok(())
    };
    for (i, text) in lines.enumerate() {
        let lineno = i + 1;
        if text.trim().is_empty() {
            continue;
        }
        if text.len() > MAX_LINE_BYTES {
            r.problem = Some(format!("第 {lineno} 行过长"));
            break;
        }
        let line: Line = match serde_json::from_str(&text) {
            Ok(l) => l,
            Err(_) => {
                r.problem = Some(format!("第 {lineno} 行不是导出格式"));
                break;
            }
        };
        match line {
            Line::Anchor {
                tree_size,
                frontier,
                checkpoint,
            } => {
                if lineno != 1 {
                    r.problem = Some(format!("第 {lineno} 行：锚点只能在第一行"));
                    break;
                }
                let hashes: Option<Vec<Hash>> = frontier
                    .iter()
                    .map(|h| B64.decode(h).ok()?.try_into().ok())
                    .collect();
                let Some(anchor) = hashes.and_then(|h| Frontier::new(tree_size, h)) else {
                    r.problem = Some("锚点的 frontier 与 treeSize 不符".into());
                    break;
                };
                f = anchor;
                if let Err(e) = check_cp(&checkpoint, &f, 0, &mut origins, false) {
                    r.problem = Some(format!("锚点检查点（树大小 {tree_size}）：{e}"));
                    break;
                }
                signed = f.size;
                r.checkpoints += 1;
            }
            Line::Entry { seq, leaf } => {
                if seq != f.size {
                    r.problem = Some(format!(
                        "第 {lineno} 行：条目 seq {seq}，应为 {}（条目缺失、插入或顺序被调换）",
                        f.size
                    ));
                    break;
                }
                let Ok(bytes) = B64.decode(&leaf) else {
                    r.problem = Some(format!("条目 seq {seq}：leaf 不是 Base64"));
                    break;
                };
                match super::entry::parse(&bytes) {
                    Some(e) if e.seq == seq => {}
                    _ => {
                        r.problem = Some(format!(
                            "条目 seq {seq}：leaf 不是 seq {seq} 的条目（被改动）"
                        ));
                        break;
                    }
                }
                f.push(leaf_hash(&bytes));
                r.entries += 1;
            }
            Line::Checkpoint { text, signature } => {
                let cp = SignedCheckpoint { text, signature };
                if let Err(e) = check_cp(&cp, &f, signed, &mut origins, true) {
                    r.problem = Some(format!("第 {lineno} 行，检查点（{} 条之后）：{e}", f.size));
                    break;
                }
                signed = f.size;
                r.checkpoints += 1;
            }
        }
    }
    r.tree_size = f.size;
    r.unsigned_tail = f.size - signed;
    r
}

/// The anchor's size, its frontier, and the leaf hashes after it.
type Kept = (u64, Vec<Hash>, Vec<Hash>);

/// The kept part of the tree of `size` for proofs: the anchor's size and frontier and the
/// leaf hashes `[base, size)`; the text of the refusal when `size` is beyond the log.
fn kept(store: &Store, size: u64) -> Result<Result<Kept, String>, StoreError> {
    let current = store.audit_frontier()?.size;
    if size > current {
        return Ok(Err(format!("树大小 {size} 超过当前日志大小 {current}")));
    }
    let (base, frontier) = match store.audit_anchor()? {
        Some(a) => (
            a.tree_size,
            a.hashes()
                .ok_or_else(|| StoreError::Corrupt("audit anchor frontier".into()))?
                .hashes,
        ),
        None => (0, Vec::new()),
    };
    let leaves = store
        .audit_leaves(base, size.max(base))
        .map(|r| r.map(|(_, l)| leaf_hash(&l)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Ok((base, frontier, leaves)))
}

/// An inclusion proof: the leaf's hash, the root it proves against, the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub leaf_hash: Hash,
    pub root: Hash,
    pub path: Vec<Hash>,
}

/// RFC 9162 §2.1.3 inclusion proof of `seq` in the tree of `size`; the refusal's text when
/// there is none (out of range, or the entry was pruned).
pub fn inclusion_proof(
    store: &Store,
    seq: u64,
    size: u64,
) -> Result<Result<Proof, String>, StoreError> {
    if seq >= size {
        return Ok(Err(format!("需要 seq < size（seq {seq}，size {size}）")));
    }
    let (base, frontier, leaves) = match kept(store, size)? {
        Ok(k) => k,
        Err(e) => return Ok(Err(e)),
    };
    if seq < base {
        return Ok(Err(format!(
            "seq {seq} 已按保留期限清理（现存最早的条目为 seq {base}），无法给出包含证明"
        )));
    }
    let p = merkle::Partial {
        base,
        frontier: &frontier,
        leaves: &leaves,
    };
    let (Some(path), Some(root)) = (p.inclusion(seq, size), p.root(0, size)) else {
        return Ok(Err(format!("seq {seq} 的包含证明需要已清理的条目")));
    };
    Ok(Ok(Proof {
        leaf_hash: leaves[(seq - base) as usize],
        root,
        path,
    }))
}

/// [`inclusion_proof`] as SPEC §6.1's JSON (Base64 hashes).
pub fn inclusion(
    store: &Store,
    seq: u64,
    size: u64,
) -> Result<Result<serde_json::Value, String>, StoreError> {
    Ok(inclusion_proof(store, seq, size)?.map(|p| {
        json!({"leafIndex": seq, "treeSize": size,
        "leafHash": B64.encode(p.leaf_hash), "rootHash": B64.encode(p.root),
        "inclusionPath": p.path.iter().map(|h| B64.encode(h)).collect::<Vec<_>>()})
    }))
}

/// RFC 9162 §2.1.4 consistency proof from size `a` to size `b`, as JSON; the refusal's text
/// when there is none.
pub fn consistency(
    store: &Store,
    a: u64,
    b: u64,
) -> Result<Result<serde_json::Value, String>, StoreError> {
    if a == 0 || a > b {
        return Ok(Err(format!("需要 0 < A ≤ B（A {a}，B {b}）")));
    }
    let (base, frontier, leaves) = match kept(store, b)? {
        Ok(k) => k,
        Err(e) => return Ok(Err(e)),
    };
    let p = merkle::Partial {
        base,
        frontier: &frontier,
        leaves: &leaves,
    };
    let (Some(path), Some(r1), Some(r2)) = (p.consistency(a, b), p.root(0, a), p.root(0, b)) else {
        return Ok(Err(format!(
            "树大小 {a} 早于保留锚点（seq {base} 之前的条目已清理），无法给出一致性证明"
        )));
    };
    Ok(Ok(json!({"treeSize1": a, "treeSize2": b,
        "rootHash1": B64.encode(r1), "rootHash2": B64.encode(r2),
        "consistencyPath": path.iter().map(|h| B64.encode(h)).collect::<Vec<_>>()})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::entry::{Actor, Draft, Kind, Result as R};
    use crate::keys::Keyring;

    struct Log {
        store: Store,
        keys: Keyring,
        _dir: tempfile::TempDir,
    }

    /// Later than the checkpoint entries' real time, so time ranges select by `i`.
    const BASE: i64 = 4_000_000_000_000;

    fn draft(i: u64) -> Draft {
        Draft {
            at_ms: BASE + i as i64,
            kind: Kind::Cli,
            action: "quota.set".into(),
            actor: Actor {
                kind: "platform".into(),
                id: "cli".into(),
                role: None,
            },
            target: format!("HT{i}"),
            result: R::Ok,
            code: None,
            request_id: None,
            client: None,
            latency_ms: None,
            params_digest: None,
            detail: format!("第 {i} 条"),
        }
    }

    /// A log of 3 entries, a checkpoint, 4 more, a checkpoint, 2 unsigned (the checkpoint
    /// entries themselves count: 3+1, +4+1, +2 = 11 entries).
    fn log() -> Log {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("d")).unwrap();
        let cfg = crate::config::Config {
            data_dir: dir.path().join("d"),
            ..Default::default()
        };
        let keys = Keyring::init(&cfg).unwrap();
        for i in 0..3 {
            store.append_audit(&draft(i)).unwrap();
        }
        checkpoint::make(&store, &keys, "340000").unwrap();
        for i in 3..7 {
            store.append_audit(&draft(i)).unwrap();
        }
        checkpoint::make(&store, &keys, "340000").unwrap();
        for i in 7..9 {
            store.append_audit(&draft(i)).unwrap();
        }
        Log {
            store,
            keys,
            _dir: dir,
        }
    }

    fn lines(l: &Log, from: Option<i64>) -> Vec<String> {
        let mut out = Vec::new();
        export(&l.store, from, None, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn check(l: &Log, lines: &[String]) -> Report {
        verify(lines.iter().cloned(), &l.keys.platform_cert_ders())
    }

    #[test]
    fn an_untouched_export_verifies_whole_and_from_an_anchor() {
        let l = log();
        let all = lines(&l, None);
        assert_eq!(all.len(), 11 + 2);
        let r = check(&l, &all);
        assert_eq!(r.problem, None);
        assert_eq!(
            (r.entries, r.checkpoints, r.tree_size, r.unsigned_tail),
            (11, 2, 11, 2)
        );
        // From the time of entry 5: the anchor is the checkpoint at size 4.
        let part = lines(&l, Some(BASE + 5));
        assert!(part[0].contains("\"anchor\"") && part[0].contains("\"treeSize\":4"));
        let r = check(&l, &part);
        assert_eq!(r.problem, None);
        assert_eq!((r.entries, r.checkpoints, r.tree_size), (7, 2, 11));
    }

    #[test]
    fn tampering_is_caught_and_named() {
        let l = log();
        let all = lines(&l, None);
        let problem = |ls: &[String]| check(&l, ls).problem.unwrap_or_default();

        // One byte of a leaf (its detail), re-encoded: the next checkpoint's root fails.
        let mut v: serde_json::Value = serde_json::from_str(&all[5]).unwrap();
        let mut leaf = B64.decode(v["leaf"].as_str().unwrap()).unwrap();
        let pos = leaf.windows(2).position(|w| w == b"HT").unwrap();
        leaf[pos + 2] ^= 1;
        v["leaf"] = B64.encode(&leaf).into();
        let mut t = all.clone();
        t[5] = v.to_string();
        let p = problem(&t);
        assert!(
            p.contains("检查点") && p.contains("根哈希不符") && p.contains("seq 4 至 8"),
            "{p}"
        );

        // A dropped line.
        let mut t = all.clone();
        t.remove(6);
        let p = problem(&t);
        assert!(p.contains("seq 6，应为 5"), "{p}");

        // Two lines swapped.
        let mut t = all.clone();
        t.swap(1, 2);
        let p = problem(&t);
        assert!(p.contains("seq 2，应为 1"), "{p}");

        // A forged checkpoint: same signature, another size; and another root.
        let cp_line = all
            .iter()
            .position(|s| s.contains("\"checkpoint\""))
            .unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&all[cp_line]).unwrap();
        let text = v["text"].as_str().unwrap().replace("\n4\n", "\n5\n");
        v["text"] = text.into();
        let mut t = all.clone();
        t[cp_line] = v.to_string();
        let p = problem(&t);
        assert!(
            p.contains(&format!("第 {} 行", cp_line + 1)) && p.contains("签名无效"),
            "{p}"
        );

        // An export checked with another platform's certificate.
        let other = tempfile::tempdir().unwrap();
        let cfg = crate::config::Config {
            data_dir: other.path().to_path_buf(),
            ..Default::default()
        };
        let stranger = Keyring::init(&cfg).unwrap();
        let r = verify(all.iter().cloned(), &stranger.platform_cert_ders());
        assert!(r.problem.unwrap().contains("不属于任何给定的平台证书"));
    }

    /// RFC 9162 §2.1.3.2, written from the RFC: verifies an inclusion proof.
    fn rfc9162_verify_inclusion(
        leaf_index: u64,
        tree_size: u64,
        leaf_hash: &[u8; 32],
        path: &[[u8; 32]],
        root: &[u8; 32],
    ) -> bool {
        use sm3::{Digest, Sm3};
        let node = |l: &[u8; 32], r: &[u8; 32]| -> [u8; 32] {
            let mut h = Sm3::new();
            h.update([1u8]);
            h.update(l);
            h.update(r);
            h.finalize().into()
        };
        if leaf_index >= tree_size {
            return false;
        }
        let (mut fn_, mut sn) = (leaf_index, tree_size - 1);
        let mut r = *leaf_hash;
        for p in path {
            if sn == 0 {
                return false;
            }
            if fn_ & 1 == 1 || fn_ == sn {
                r = node(p, &r);
                if fn_ & 1 == 0 {
                    while fn_ & 1 == 0 && fn_ != 0 {
                        fn_ >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = node(&r, p);
            }
            fn_ >>= 1;
            sn >>= 1;
        }
        sn == 0 && r == *root
    }

    #[test]
    fn inclusion_proofs_verify_with_an_rfc9162_verifier_against_the_signed_root() {
        let l = log();
        let (size, cp) = l.store.audit_checkpoints().unwrap().pop().unwrap();
        let signed = checkpoint::verify(&cp, &l.keys.platform_public_key()).unwrap();
        let dec = |v: &serde_json::Value| -> [u8; 32] {
            B64.decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
        };
        for seq in 0..size {
            let p = inclusion(&l.store, seq, size).unwrap().unwrap();
            let path: Vec<[u8; 32]> = p["inclusionPath"]
                .as_array()
                .unwrap()
                .iter()
                .map(dec)
                .collect();
            let leaf = dec(&p["leafHash"]);
            assert!(
                rfc9162_verify_inclusion(seq, size, &leaf, &path, &signed.root),
                "seq {seq}"
            );
            assert!(!rfc9162_verify_inclusion(
                seq,
                size,
                &[0; 32],
                &path,
                &signed.root
            ));
        }
        assert!(inclusion(&l.store, size, size).unwrap().is_err());
        assert!(inclusion(&l.store, 0, 1000).unwrap().is_err());
        let c = consistency(&l.store, 4, size).unwrap().unwrap();
        assert_eq!(c["treeSize1"], 4);
        assert!(!c["consistencyPath"].as_array().unwrap().is_empty());
    }
}
