//! Retention (SPEC §6.1, STD §8.1): entries older than `audit.retention_days` are deleted up
//! to a tree size `N` that a signed checkpoint covers, keeping the anchor (`N`, the compact
//! range of `[0, N)` and that checkpoint) so that everything after it still verifies and an
//! export after the prune begins with the anchor line. The prune is itself audited
//! (`audit.prune`).

use super::checkpoint;
use super::merkle::{Frontier, leaf_hash};
use crate::domain::DomainError;
use crate::domain::audit_event::{Action, Actor, Outcome};
use crate::keys::Keyring;
use crate::store::Store;
use crate::store::audit_log::Anchor;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

const MS_PER_DAY: i64 = 86_400_000;

/// What a prune did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Leaves deleted.
    pub removed: u64,
    /// The first seq kept: the anchor's tree size.
    pub first_seq: u64,
}

/// Prunes the entries at the start of the log made before `now_ms - retention_days`; `None`
/// when none is that old. The anchor is the largest checkpointed size that covers only such
/// entries; when no checkpoint lies between the current start and the cut-off, one is signed
/// for the cut-off's size.
pub fn prune(
    store: &Store,
    keys: &Keyring,
    region: &str,
    retention_days: u32,
    now_ms: i64,
) -> Result<Option<Pruned>, DomainError> {
    let cutoff = now_ms.saturating_sub(i64::from(retention_days) * MS_PER_DAY);
    let old = store.audit_anchor()?;
    let first = old.as_ref().map_or(0, |a| a.tree_size);
    let size = store.audit_frontier()?.size;
    // The old entries form a prefix of the log: stop at the first one within retention.
    let mut m = first;
    for r in store.audit_leaves(first, size) {
        let (seq, leaf) = r?;
        match super::entry::parse(&leaf) {
            Some(e) if e.at < cutoff => m = seq + 1,
            _ => break,
        }
    }
    if m == first {
        return Ok(None);
    }
    let signed = store
        .audit_checkpoints()?
        .into_iter()
        .filter(|(s, _)| *s > first && *s <= m)
        .max_by_key(|(s, _)| *s);
    let n = signed.as_ref().map_or(m, |(s, _)| *s);
    let mut f = match &old {
        Some(a) => a
            .hashes()
            .ok_or_else(|| crate::store::StoreError::Corrupt("audit anchor frontier".into()))?,
        None => Frontier::default(),
    };
    for r in store.audit_leaves(first, n) {
        f.push(leaf_hash(&r?.1));
    }
    let cp = match signed {
        Some((_, cp)) => cp,
        None => checkpoint::sign(store, keys, region, n, &f.root())?,
    };
    let anchor = Anchor {
        tree_size: n,
        frontier: f.hashes.iter().map(|h| B64.encode(h)).collect(),
        checkpoint: cp,
    };
    let removed = store.prune_audit_to(&anchor)?;
    crate::domain::audit::record(
        store,
        &Actor::system(),
        Action::AuditPrune,
        Outcome::Ok,
        "",
        format!("按保留期限 {retention_days} 天清理 {removed} 条，现存首条 seq {n}"),
    )?;
    Ok(Some(Pruned {
        removed,
        first_seq: n,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::entry::{Actor as EActor, Draft, Kind, Result as R};
    use crate::audit::export;

    const DAY: i64 = MS_PER_DAY;
    const NOW: i64 = 1_800_000_000_000;

    fn draft(at_ms: i64, i: u64) -> Draft {
        Draft {
            at_ms,
            kind: Kind::Cli,
            action: "quota.set".into(),
            actor: EActor {
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

    struct Log {
        store: Store,
        keys: Keyring,
        _dir: tempfile::TempDir,
    }

    fn open() -> Log {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("d")).unwrap();
        let cfg = crate::config::Config {
            data_dir: dir.path().join("d"),
            ..Default::default()
        };
        let keys = Keyring::init(&cfg).unwrap();
        Log {
            store,
            keys,
            _dir: dir,
        }
    }

    fn export_lines(l: &Log) -> Vec<String> {
        let mut out = Vec::new();
        export::export(&l.store, None, None, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    /// A prune after a platform key rotation signs its anchor with the new key over a size
    /// the old key's checkpoints follow: the log still verifies, and a checkpoint made by the
    /// old key after the rotation still does not.
    #[test]
    fn an_anchor_signed_after_a_rotation_does_not_make_the_old_key_look_reused() {
        let l = open();
        let cfg = crate::config::Config {
            data_dir: l._dir.path().join("d"),
            ..Default::default()
        };
        for (i, age) in [300, 250].into_iter().enumerate() {
            l.store
                .append_audit(&draft(NOW - age * DAY, i as u64))
                .unwrap();
        }
        for i in 2..5 {
            l.store.append_audit(&draft(NOW - DAY, i)).unwrap();
        }
        checkpoint::make(&l.store, &l.keys, "340000").unwrap();
        let old = l.keys.platform();
        l.keys.rotate_platform(&cfg).unwrap();
        checkpoint::make(&l.store, &l.keys, "340000").unwrap();
        // The anchor at size 2 is signed now, with the new key.
        prune(&l.store, &l.keys, "340000", 190, NOW)
            .unwrap()
            .unwrap();
        checkpoint::make(&l.store, &l.keys, "340000").unwrap();
        let certs = l.keys.platform_cert_ders();
        let r = export::verify_store(&l.store, &certs).unwrap();
        assert_eq!(r.problem, None, "{r:?}");
        let lines = export_lines(&l);
        assert!(lines[0].contains("\"anchor\""));
        let r = export::verify(lines.iter().cloned(), &certs);
        assert_eq!(r.problem, None, "{r:?}");
        // The retired key signs once more after its successor: refused.
        l.store.append_audit(&draft(NOW, 9)).unwrap();
        let f = l.store.audit_frontier().unwrap();
        let text = checkpoint::text(
            &checkpoint::origin("340000", old.cert_der()),
            f.size,
            &f.root(),
            crate::time::now_ms(),
        );
        let forged = crate::store::audit_log::SignedCheckpoint {
            signature: B64.encode(old.sign(text.as_bytes())),
            text,
        };
        l.store
            .put_audit_checkpoint(f.size, crate::time::now_ms(), &forged)
            .unwrap();
        let r = export::verify_store(&l.store, &certs).unwrap();
        assert!(r.problem.is_some(), "{r:?}");
    }

    #[test]
    fn a_prune_keeps_an_anchor_and_the_rest_still_verifies() {
        let l = open();
        let cert = l.keys.platform_cert_ders();
        // 300, 250 and 200 days old, a checkpoint (its own entry is dated now), then more
        // old entries written with old times, then recent ones.
        for (i, age) in [300, 250, 200].into_iter().enumerate() {
            l.store
                .append_audit(&draft(NOW - age * DAY, i as u64))
                .unwrap();
        }
        // The checkpoint entry is "now" in real time; so the run of old entries ends at 3.
        checkpoint::make(&l.store, &l.keys, "340000").unwrap();
        for i in 4..8 {
            l.store.append_audit(&draft(NOW - DAY, i)).unwrap();
        }
        checkpoint::make(&l.store, &l.keys, "340000").unwrap();
        let before = export::verify_store(&l.store, &cert).unwrap();
        assert_eq!(before.problem, None);

        // Nothing is older than 400 days.
        assert_eq!(prune(&l.store, &l.keys, "340000", 400, NOW).unwrap(), None);
        // 190 days: entries 0..3 go; no checkpoint at 3, so one is signed for it.
        let p = prune(&l.store, &l.keys, "340000", 190, NOW)
            .unwrap()
            .unwrap();
        assert_eq!(
            p,
            Pruned {
                removed: 3,
                first_seq: 3
            }
        );
        assert_eq!(l.store.audit_first_seq().unwrap(), 3);
        assert!(l.store.audit_leaf(0).unwrap().is_none());
        // The prune is audited as a system event.
        let (_, last) = l.store.recent_audit_leaves(1).unwrap().remove(0);
        let e = crate::audit::entry::parse(&last).unwrap();
        assert_eq!((e.action.as_str(), e.kind), ("audit.prune", Kind::System));
        assert!(
            e.detail.contains("清理 3 条") && e.detail.contains("seq 3"),
            "{}",
            e.detail
        );
        // A second prune finds nothing more.
        assert_eq!(prune(&l.store, &l.keys, "340000", 190, NOW).unwrap(), None);

        checkpoint::make(&l.store, &l.keys, "340000").unwrap();
        let r = export::verify_store(&l.store, &cert).unwrap();
        assert_eq!(r.problem, None, "{r:?}");
        assert_eq!(r.tree_size, l.store.audit_frontier().unwrap().size);
        let lines = export_lines(&l);
        assert!(lines[0].contains("\"anchor\"") && lines[0].contains("\"treeSize\":3"));
        assert!(lines[1].contains("\"seq\":3"));
        let r = export::verify(lines.iter().cloned(), &cert);
        assert_eq!((r.problem, r.entries), (None, r.tree_size - 3));

        // Proofs: a pruned entry answers a clear refusal; kept ones still prove.
        let size = l.store.audit_frontier().unwrap().size;
        let refused = export::inclusion(&l.store, 1, size).unwrap().unwrap_err();
        assert!(refused.contains("已按保留期限清理"), "{refused}");
        assert!(export::inclusion(&l.store, 4, size).unwrap().is_ok());
        assert!(export::consistency(&l.store, 3, size).unwrap().is_ok());

        // Tampering after the prune is still caught: a changed leaf, a forged anchor.
        let mut t = lines.clone();
        let at = t.iter().position(|s| s.contains("\"seq\":4")).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&t[at]).unwrap();
        let mut leaf = B64.decode(v["leaf"].as_str().unwrap()).unwrap();
        let pos = leaf.windows(2).position(|w| w == b"HT").unwrap();
        leaf[pos + 2] ^= 1;
        v["leaf"] = B64.encode(&leaf).into();
        t[at] = v.to_string();
        let p = export::verify(t.iter().cloned(), &cert).problem.unwrap();
        assert!(p.contains("根哈希不符"), "{p}");
        let mut t = lines.clone();
        let mut v: serde_json::Value = serde_json::from_str(&t[0]).unwrap();
        v["frontier"][0] = B64.encode([0u8; 32]).into();
        t[0] = v.to_string();
        let p = export::verify(t.iter().cloned(), &cert).problem.unwrap();
        assert!(p.contains("锚点"), "{p}");
    }

    #[test]
    fn a_prune_stops_at_the_last_checkpoint_before_the_cut_off() {
        let l = open();
        for i in 0..3 {
            l.store.append_audit(&draft(NOW - 300 * DAY, i)).unwrap();
        }
        // A checkpoint at size 3 (signed directly, as if made 300 days ago).
        let f = l.store.audit_frontier().unwrap();
        checkpoint::sign(&l.store, &l.keys, "340000", 3, &f.root()).unwrap();
        for i in 3..5 {
            l.store.append_audit(&draft(NOW - 250 * DAY, i)).unwrap();
        }
        for i in 5..7 {
            l.store.append_audit(&draft(NOW, i)).unwrap();
        }
        let p = prune(&l.store, &l.keys, "340000", 190, NOW)
            .unwrap()
            .unwrap();
        assert_eq!((p.removed, p.first_seq), (3, 3));
        // The index no longer finds pruned entries.
        let page = l
            .store
            .search_audit(&crate::store::audit_log::AuditQuery {
                limit: 50,
                ..Default::default()
            })
            .unwrap();
        assert!(page.entries.iter().all(|(s, _)| *s >= 3));
        assert_eq!(page.entries.len(), 5);
        let r = export::verify_store(&l.store, &l.keys.platform_cert_ders()).unwrap();
        assert_eq!(r.problem, None);
    }
}
