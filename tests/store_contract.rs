//! The storage contract: what any engine behind `hutong::store::engine` must do for the store
//! to keep its promises (one-time nonces and signIds, acknowledged writes that survive, ordered
//! scans, all-or-nothing transactions, refusal of a newer schema). Every check is written
//! against the traits only; `contract!` runs the whole suite against one engine, so a second
//! engine is tested by adding one line at the bottom.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

use hutong::store::engine::{Direction, Engine, EngineError, TxError};
use hutong::store::seals::{SignIdRecord, SignIdTake};
use hutong::store::{SCHEMA_VERSION, Store, StoreError};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::ops::Bound;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

/// Opens (or reopens) an engine's database kept in `dir`.
type Open = fn(&Path) -> Arc<dyn Engine>;

const THREADS: usize = 8;
const ROUNDS: usize = 100;

fn sled(dir: &Path) -> Arc<dyn Engine> {
    Arc::new(hutong::store::sled_engine::SledEngine::open(&dir.join("db")).unwrap())
}

fn store(open: Open, dir: &Path) -> Store {
    Store::with_engine(open(dir)).unwrap()
}

/// Runs `f(thread, round)` on every thread for every round, all threads released together
/// each round so they really race; returns each round's results.
fn race<T: Send>(f: impl Fn(usize, usize) -> T + Sync) -> Vec<Vec<T>> {
    let barrier = Barrier::new(THREADS);
    let per_thread: Vec<Vec<T>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || {
                    (0..ROUNDS)
                        .map(|r| {
                            barrier.wait();
                            f(t, r)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut rounds: Vec<Vec<T>> = (0..ROUNDS).map(|_| Vec::new()).collect();
    for results in per_thread {
        for (r, v) in results.into_iter().enumerate() {
            rounds[r].push(v);
        }
    }
    rounds
}

fn collect(entries: hutong::store::engine::Entries<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    entries.collect::<Result<_, _>>().unwrap()
}

fn keys(entries: hutong::store::engine::Entries<'_>) -> Vec<Vec<u8>> {
    collect(entries).into_iter().map(|(k, _)| k).collect()
}

// --- linearizable check-and-set ---------------------------------------------------------

fn compare_and_swap_has_one_winner(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path()).keyspace("race").unwrap();
    let rounds = race(|t, r| {
        let key = format!("k{r}");
        ks.compare_and_swap(key.as_bytes(), None, Some(&[t as u8]))
            .unwrap()
            .is_ok()
    });
    for (r, wins) in rounds.iter().enumerate() {
        let winners: Vec<usize> = (0..THREADS).filter(|t| wins[*t]).collect();
        assert_eq!(winners.len(), 1, "round {r}: {winners:?} all won");
        // The stored value is the winner's, and losers were shown it.
        let stored = ks.get(format!("k{r}").as_bytes()).unwrap();
        assert_eq!(stored, Some(vec![winners[0] as u8]), "round {r}");
        assert_eq!(
            ks.compare_and_swap(format!("k{r}").as_bytes(), None, Some(b"x"))
                .unwrap(),
            Err(stored)
        );
    }
}

fn remove_has_one_winner(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path()).keyspace("race").unwrap();
    for r in 0..ROUNDS {
        ks.insert(format!("k{r}").as_bytes(), b"token").unwrap();
    }
    let rounds = race(|_, r| ks.remove(format!("k{r}").as_bytes()).unwrap());
    for (r, got) in rounds.iter().enumerate() {
        let n = got
            .iter()
            .filter(|v| v.as_deref() == Some(b"token"))
            .count();
        assert_eq!(n, 1, "round {r}: {n} removers got the value");
    }
}

fn a_nonce_is_claimed_by_exactly_one_racer(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let s = store(open, dir.path());
    let rounds = race(|t, r| {
        s.claim_nonce("APP", r as u32, 10_000 + t as i64, 0)
            .unwrap()
    });
    for (r, claims) in rounds.iter().enumerate() {
        assert_eq!(claims.iter().filter(|c| **c).count(), 1, "nonce {r}");
    }
}

fn a_sign_id_is_taken_by_exactly_one_racer(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let s = store(open, dir.path());
    let rec = SignIdRecord {
        requester: "REQ".into(),
        seal_code: "S".into(),
        expires_ms: i64::MAX,
    };
    for r in 0..ROUNDS {
        s.put_sign_id(&format!("sid-{r}"), &rec).unwrap();
    }
    let rounds = race(|_, r| {
        // A racer that is not its requester never takes it, nor keeps the rightful one from it.
        let refused = s.take_sign_id_if(&format!("sid-{r}"), |t| t.requester == "OTHER");
        assert!(!matches!(refused, Ok(SignIdTake::Taken(_))));
        match s
            .take_sign_id_if(&format!("sid-{r}"), |t| t.requester == "REQ")
            .unwrap()
        {
            SignIdTake::Taken(t) => Some(t),
            _ => None,
        }
    });
    for (r, takes) in rounds.iter().enumerate() {
        let won: Vec<_> = takes.iter().flatten().collect();
        assert_eq!(won, vec![&rec], "signId {r}");
    }
}

/// Quota takes are transactions over two keyspaces: racing takers never exceed the limit, and
/// a user is counted once however many of their requests race.
fn racing_quota_takes_never_exceed_the_limit(open: Open) {
    use hutong::domain::vocab::QuotaKind;
    use hutong::store::usage::Quota;
    let dir = tempfile::tempdir().unwrap();
    let s = store(open, dir.path());
    let quota = |kind| Quota {
        kind,
        limit: 300,
        valid_from_ms: 0,
        valid_until_ms: i64::MAX,
        used: 0,
        set_by: "op".into(),
        set_ms: 1,
    };
    s.set_quota("APP", Some(&quota(QuotaKind::Signatures)), &quota_entry())
        .unwrap();
    let taken: usize = race(|_, _| {
        s.take_quota("APP", QuotaKind::Signatures, None, 5)
            .unwrap()
            .is_ok_and(|t| t.is_some())
    })
    .iter()
    .map(|round| round.iter().filter(|t| **t).count())
    .sum();
    assert_eq!(taken, 300);
    assert_eq!(s.get_quota("APP").unwrap().unwrap().used, 300);

    s.set_quota("APP", Some(&quota(QuotaKind::Users)), &quota_entry())
        .unwrap();
    // Every thread acts for the same person of the round.
    let rounds = race(|_, r| {
        s.take_quota("APP", QuotaKind::Users, Some(format!("u{r}").as_bytes()), 5)
            .unwrap()
            .is_ok_and(|t| t.is_some())
    });
    for (r, takes) in rounds.iter().enumerate() {
        assert_eq!(takes.iter().filter(|t| **t).count(), 1, "user {r}");
    }
    assert_eq!(s.get_quota("APP").unwrap().unwrap().used, ROUNDS as u64);
}

// --- durability before acknowledgement --------------------------------------------------

fn sign_id(n: usize) -> SignIdRecord {
    SignIdRecord {
        requester: format!("REQ-{n}"),
        seal_code: "S".into(),
        expires_ms: i64::MAX,
    }
}

async fn acknowledged_writes_survive_reopen(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = store(open, dir.path());
        for n in 0..50 {
            s.put_sign_id(&format!("sid-{n}"), &sign_id(n)).unwrap();
        }
        assert!(s.claim_nonce("APP", 7, 1_000, 0).unwrap());
        s.commit().await.unwrap();
    }
    let s = store(open, dir.path());
    for n in 0..50 {
        assert_eq!(
            s.take_sign_id_if(&format!("sid-{n}"), |_| true).unwrap(),
            SignIdTake::Taken(sign_id(n))
        );
    }
    assert!(
        !s.claim_nonce("APP", 7, 2_000, 0).unwrap(),
        "nonce forgotten"
    );
}

const CRASH_DIR: &str = "HUTONG_CONTRACT_CRASH_DIR";

/// The child of [`acknowledged_writes_survive_a_crash`]: writes, commits and acknowledges on
/// stdout until it is killed.
async fn crash_child(open: Open) {
    let Some(dir) = std::env::var_os(CRASH_DIR) else {
        return;
    };
    let s = store(open, Path::new(&dir));
    for n in 0.. {
        s.put_sign_id(&format!("sid-{n}"), &sign_id(n)).unwrap();
        s.commit().await.unwrap();
        println!("ACK {n}");
    }
}

/// The process holding the database is killed (SIGKILL: no destructor, no flush on drop) at
/// an arbitrary moment while it writes; every write it acknowledged is there on reopening.
/// This covers a crash of the process, not a power cut (the kernel's cache survives it).
fn acknowledged_writes_survive_a_crash(open: Open, child_test: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([child_test, "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CRASH_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ack = |line: std::io::Result<String>| {
        line.unwrap()
            .strip_prefix("ACK ")
            .map(|n| n.parse::<usize>().unwrap())
    };
    let mut acked = BTreeSet::new();
    while acked.len() < 40 {
        match lines.next() {
            Some(line) => acked.extend(ack(line)),
            None => panic!("the writer ended before it was killed"),
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Acknowledgements printed before the kill but not read yet count too.
    acked.extend(lines.filter_map(ack));
    let s = store(open, dir.path());
    for n in &acked {
        assert_eq!(
            s.take_sign_id_if(&format!("sid-{n}"), |_| true).unwrap(),
            SignIdTake::Taken(sign_id(*n)),
            "acknowledged write {n} lost in the crash"
        );
    }
}

// --- ordered iteration ------------------------------------------------------------------

/// Keys that sort differently as signed and unsigned bytes, and prefixes that end in 0xFF.
fn awkward_keys() -> Vec<Vec<u8>> {
    vec![
        vec![],
        vec![0x00],
        vec![0x00, 0x00],
        vec![0x61],
        vec![0x61, 0x00],
        vec![0x61, 0x7F],
        vec![0x61, 0x80],
        vec![0x61, 0xFF],
        vec![0x61, 0xFF, 0x00],
        vec![0x61, 0xFF, 0xFF],
        vec![0x62],
        vec![0x7F],
        vec![0x80],
        vec![0xC3, 0xA9],
        vec![0xFF],
        vec![0xFF, 0xFF, 0x01],
    ]
}

fn iteration_is_in_unsigned_byte_order(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path()).keyspace("order").unwrap();
    let mut sorted = awkward_keys();
    for k in sorted.iter().rev() {
        ks.insert(k, k).unwrap();
    }
    sorted.sort();
    assert_eq!(keys(ks.iter(Direction::Forward)), sorted);
    let mut reversed = sorted.clone();
    reversed.reverse();
    assert_eq!(keys(ks.iter(Direction::Reverse)), reversed);
    // Values come with their keys.
    assert!(
        collect(ks.iter(Direction::Forward))
            .iter()
            .all(|(k, v)| k == v)
    );

    let range = |lo, hi, dir| keys(ks.range(lo, hi, dir));
    let (a, b) = (&[0x61u8, 0x7F][..], &[0x80u8][..]);
    let inner = vec![
        vec![0x61, 0x7F],
        vec![0x61, 0x80],
        vec![0x61, 0xFF],
        vec![0x61, 0xFF, 0x00],
        vec![0x61, 0xFF, 0xFF],
        vec![0x62],
        vec![0x7F],
    ];
    assert_eq!(
        range(Bound::Included(a), Bound::Excluded(b), Direction::Forward),
        inner
    );
    let mut with_end = inner.clone();
    with_end.push(vec![0x80]);
    assert_eq!(
        range(Bound::Included(a), Bound::Included(b), Direction::Forward),
        with_end
    );
    assert_eq!(
        range(Bound::Excluded(a), Bound::Excluded(b), Direction::Forward),
        inner[1..].to_vec()
    );
    let mut back = inner.clone();
    back.reverse();
    assert_eq!(
        range(Bound::Included(a), Bound::Excluded(b), Direction::Reverse),
        back
    );
    assert_eq!(
        range(Bound::Included(b), Bound::Unbounded, Direction::Forward),
        vec![
            vec![0x80],
            vec![0xC3, 0xA9],
            vec![0xFF],
            vec![0xFF, 0xFF, 0x01]
        ]
    );
    // A range whose start lies after its end is empty, not an error.
    assert!(range(Bound::Included(b), Bound::Excluded(a), Direction::Forward).is_empty());
    assert!(range(Bound::Excluded(b), Bound::Included(b), Direction::Reverse).is_empty());

    let prefix = |p: &[u8], dir| keys(ks.scan_prefix(p, dir));
    assert_eq!(
        prefix(&[0x61, 0xFF], Direction::Forward),
        vec![
            vec![0x61, 0xFF],
            vec![0x61, 0xFF, 0x00],
            vec![0x61, 0xFF, 0xFF]
        ]
    );
    assert_eq!(
        prefix(&[0x61, 0xFF], Direction::Reverse),
        vec![
            vec![0x61, 0xFF, 0xFF],
            vec![0x61, 0xFF, 0x00],
            vec![0x61, 0xFF]
        ]
    );
    assert_eq!(
        prefix(&[0xFF], Direction::Forward),
        vec![vec![0xFF], vec![0xFF, 0xFF, 0x01]]
    );
    assert_eq!(prefix(&[], Direction::Forward), sorted);
    assert!(prefix(&[0x63], Direction::Forward).is_empty());
}

/// Random writes, then every kind of scan, compared with an in-memory ordered map.
fn scans_agree_with_an_ordered_map(open: Open) {
    let config = ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    };
    let key = || {
        proptest::collection::vec(
            prop_oneof![Just(0u8), Just(0x7F), Just(0x80), Just(0xFF), any::<u8>()],
            0..4,
        )
    };
    proptest!(config, |(
        ops in proptest::collection::vec((key(), any::<bool>()), 1..60),
        lo in key(),
        hi in key(),
        p in key(),
    )| {
        let dir = tempfile::tempdir().unwrap();
        let ks = open(dir.path()).keyspace("model").unwrap();
        let mut model = BTreeMap::new();
        for (i, (k, insert)) in ops.iter().enumerate() {
            if *insert {
                let v = i.to_be_bytes().to_vec();
                prop_assert_eq!(ks.insert(k, &v).unwrap(), model.insert(k.clone(), v));
            } else {
                prop_assert_eq!(ks.remove(k).unwrap(), model.remove(k));
            }
        }
        let all: Vec<_> = model.clone().into_iter().collect();
        prop_assert_eq!(collect(ks.iter(Direction::Forward)), all.clone());
        let in_range: Vec<_> = all
            .iter()
            .filter(|(k, _)| *k >= lo && *k < hi)
            .cloned()
            .collect();
        let got = collect(ks.range(Bound::Included(&lo), Bound::Excluded(&hi), Direction::Forward));
        prop_assert_eq!(&got, &in_range);
        let mut rev = in_range.clone();
        rev.reverse();
        let got = collect(ks.range(Bound::Included(&lo), Bound::Excluded(&hi), Direction::Reverse));
        prop_assert_eq!(got, rev);
        let with_prefix: Vec<_> = all.iter().filter(|(k, _)| k.starts_with(&p)).cloned().collect();
        prop_assert_eq!(collect(ks.scan_prefix(&p, Direction::Forward)), with_prefix);
        prop_assert_eq!(ks.is_empty().unwrap(), model.is_empty());
    });
}

// --- transactions -----------------------------------------------------------------------

fn a_transaction_is_all_or_nothing(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (a, b) = (engine.keyspace("a").unwrap(), engine.keyspace("b").unwrap());
    a.insert(b"x", b"old").unwrap();
    let res = engine.transaction(&["a", "b"], &|tx| {
        tx.insert("a", b"x", b"new")?;
        tx.insert("b", b"y", b"new")?;
        // The transaction reads its own writes.
        assert_eq!(tx.get("a", b"x")?, Some(b"new".to_vec()));
        assert_eq!(tx.remove("b", b"y")?, Some(b"new".to_vec()));
        tx.insert("b", b"y", b"again")?;
        Err(TxError::Abort)
    });
    assert!(matches!(res, Err(TxError::Abort)), "{res:?}");
    assert_eq!(a.get(b"x").unwrap(), Some(b"old".to_vec()));
    assert_eq!(b.get(b"y").unwrap(), None);

    engine
        .transaction(&["a", "b"], &|tx| {
            tx.insert("a", b"x", b"new")?;
            tx.insert("b", b"y", b"new")?;
            Ok(())
        })
        .unwrap();
    assert_eq!(a.get(b"x").unwrap(), Some(b"new".to_vec()));
    assert_eq!(b.get(b"y").unwrap(), Some(b"new".to_vec()));
}

fn count(v: Option<Vec<u8>>) -> u64 {
    v.map(|b| u64::from_be_bytes(b.as_slice().try_into().unwrap()))
        .unwrap_or(0)
}

/// Racing read-modify-write transactions are retried, never lost: a counter in one keyspace
/// and one row per increment in the other end up equal.
fn conflicting_transactions_are_retried(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    race(|t, r| {
        engine
            .transaction(&["counter", "rows"], &|tx| {
                let n = count(tx.get("counter", b"n")?);
                tx.insert("counter", b"n", &(n + 1).to_be_bytes())?;
                tx.insert("rows", format!("{t}-{r}").as_bytes(), &n.to_be_bytes())?;
                Ok(())
            })
            .unwrap()
    });
    let total = (THREADS * ROUNDS) as u64;
    let counter = engine.keyspace("counter").unwrap();
    assert_eq!(count(counter.get(b"n").unwrap()), total);
    let rows = collect(engine.keyspace("rows").unwrap().iter(Direction::Forward));
    assert_eq!(rows.len() as u64, total);
    // Each increment saw a different count: no two transactions read the same state.
    let seen: BTreeSet<u64> = rows.into_iter().map(|(_, v)| count(Some(v))).collect();
    assert_eq!(seen, (0..total).collect());
}

/// A snapshot never sees half a transaction: transfers between two keyspaces keep the sum,
/// and every snapshot taken meanwhile sees that sum.
fn a_snapshot_sees_one_point_in_time(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let start = 1_000_000u64;
    let left = engine.keyspace("left").unwrap();
    left.insert(b"v", &start.to_be_bytes()).unwrap();
    // Entries read between the two counters, so a transfer has time to land in between.
    for n in 0..2_000u32 {
        left.insert(format!("w{n:05}").as_bytes(), b"filler")
            .unwrap();
    }
    engine
        .keyspace("right")
        .unwrap()
        .insert(b"v", &0u64.to_be_bytes())
        .unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    engine
                        .transaction(&["left", "right"], &|tx| {
                            let l = count(tx.get("left", b"v")?);
                            let r = count(tx.get("right", b"v")?);
                            tx.insert("left", b"v", &l.saturating_sub(1).to_be_bytes())?;
                            tx.insert("right", b"v", &(r + 1).to_be_bytes())?;
                            Ok(())
                        })
                        .unwrap();
                }
            });
        }
        // Snapshots are recorded, and judged once the movers are stopped.
        let snapshots: Result<Vec<_>, EngineError> = (0..30)
            .map(|_| {
                let (mut sum, mut entries) = (0, 0);
                let mut order: Vec<String> = Vec::new();
                engine.snapshot(&mut |space, k, v| {
                    entries += 1;
                    if order.last().is_none_or(|l| l != space) {
                        order.push(space.to_string());
                    }
                    if k == b"v" {
                        sum += count(Some(v.to_vec()));
                    }
                    Ok(())
                })?;
                Ok((sum, order, entries))
            })
            .collect();
        stop.store(true, Ordering::Relaxed);
        for (sum, order, entries) in snapshots.unwrap() {
            assert_eq!(sum, start, "a snapshot saw half a transfer");
            assert_eq!(order, ["left", "right"]);
            assert_eq!(entries, 2_002);
        }
    });
    let moved = count(engine.keyspace("right").unwrap().get(b"v").unwrap());
    assert!(moved > 0, "no transfer ran while the snapshots were taken");
    // A visitor's error stops the snapshot and is returned.
    let res = engine.snapshot(&mut |_, _, _| Err(EngineError::Other("stop".into())));
    assert!(matches!(res, Err(EngineError::Other(m)) if m == "stop"));
}

/// Writes made while a snapshot runs — overwrites, removals, new keys, in keyspaces the
/// snapshot has read, is reading and has not reached, some from the visitor itself — never
/// show in it, and the writers are not held until it ends.
fn a_snapshot_ignores_writes_made_while_it_runs(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let mut start = BTreeMap::new();
    for space in ["a", "b", "c"] {
        let ks = engine.keyspace(space).unwrap();
        for n in 0..3_000u32 {
            let k = format!("k{n:05}");
            ks.insert(k.as_bytes(), format!("{space}{n}").as_bytes())
                .unwrap();
            start.insert(
                (space.to_string(), k.into_bytes()),
                format!("{space}{n}").into_bytes(),
            );
        }
    }
    let seen = std::sync::Mutex::new(BTreeMap::new());
    let visits = std::sync::atomic::AtomicUsize::new(0);
    let written_during = std::sync::atomic::AtomicUsize::new(0);
    // The writers start at the snapshot's first visit, so every write is made while it runs.
    let started = AtomicBool::new(false);
    let running = AtomicBool::new(true);
    std::thread::scope(|s| {
        for writer in 0..2u32 {
            let (engine, started, running, written_during) =
                (&engine, &started, &running, &written_during);
            s.spawn(move || {
                while !started.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                let mut round = 0u32;
                while running.load(Ordering::SeqCst) {
                    round += 1;
                    for space in ["a", "b", "c"] {
                        let ks = engine.keyspace(space).unwrap();
                        // Both writers work the same keys, so their writes of one key race.
                        let n = (round * 7919) % 3_000;
                        let k = format!("k{n:05}");
                        match (round + writer) % 3 {
                            0 => drop(ks.remove(k.as_bytes()).unwrap()),
                            1 => drop(ks.insert(k.as_bytes(), b"changed").unwrap()),
                            _ => drop(
                                ks.insert(format!("new{writer}-{round}").as_bytes(), b"new")
                                    .unwrap(),
                            ),
                        }
                        let next = format!("k{:05}", (n + 1) % 3_000);
                        let current = ks.get(next.as_bytes()).unwrap();
                        let _ =
                            ks.compare_and_swap(next.as_bytes(), current.as_deref(), Some(b"cas"));
                    }
                    engine
                        .transaction(&["a", "c"], &|tx| {
                            tx.insert("a", b"k00001", b"tx")?;
                            tx.remove("c", b"k02999")?;
                            Ok(())
                        })
                        .unwrap();
                    if running.load(Ordering::SeqCst) {
                        written_during.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
        engine
            .snapshot(&mut |space, k, v| {
                started.store(true, Ordering::SeqCst);
                let n = visits.fetch_add(1, Ordering::SeqCst);
                if n.is_multiple_of(500) {
                    // A slow visitor, which also writes (it must not wait for itself).
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    engine
                        .keyspace("c")
                        .unwrap()
                        .insert(b"from-visitor", b"x")
                        .map(|_| ())?;
                }
                let dup = seen
                    .lock()
                    .unwrap()
                    .insert((space.to_string(), k.to_vec()), v.to_vec());
                assert!(
                    dup.is_none(),
                    "{space} {:?} visited twice",
                    String::from_utf8_lossy(k)
                );
                Ok(())
            })
            .unwrap();
        running.store(false, Ordering::SeqCst);
        started.store(true, Ordering::SeqCst);
    });
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), start.len());
    assert!(seen == start, "the snapshot is not the state at its start");
    assert!(
        written_during.load(Ordering::SeqCst) > 0,
        "no write completed while the snapshot ran: writers were held for its whole length"
    );
}

// --- ids, schema ------------------------------------------------------------------------

fn ids_increase_across_reopening(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let mut last = None;
    for _ in 0..2 {
        let engine = open(dir.path());
        for _ in 0..100 {
            let id = engine.generate_id().unwrap();
            assert!(last.is_none_or(|l| id > l), "{id} after {last:?}");
            last = Some(id);
        }
        engine.flush().unwrap();
    }
}

fn a_newer_schema_is_refused(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    {
        // A new database is stamped with this version and opens again.
        let s = store(open, dir.path());
        s.flush_blocking().unwrap();
    }
    let engine = open(dir.path());
    let meta = engine.keyspace("meta").unwrap();
    assert_eq!(
        meta.get(b"schema_version").unwrap(),
        Some(SCHEMA_VERSION.to_be_bytes().to_vec())
    );
    let s = Store::with_engine(engine.clone()).unwrap();
    assert!(s.is_ready());
    drop(s);
    meta.insert(b"schema_version", &(SCHEMA_VERSION + 1).to_be_bytes())
        .unwrap();
    match Store::with_engine(engine) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        Err(e) => panic!("expected SchemaTooNew, got {e}"),
        Ok(_) => panic!("a newer database was opened"),
    }
}

/// Instantiates the contract for one engine: `contract!(module_name, open_fn);`.
macro_rules! contract {
    ($engine:ident, $open:expr) => {
        mod $engine {
            use super::*;

            #[test]
            fn compare_and_swap_has_one_winner() {
                super::compare_and_swap_has_one_winner($open);
            }
            #[test]
            fn remove_has_one_winner() {
                super::remove_has_one_winner($open);
            }
            #[test]
            fn a_nonce_is_claimed_by_exactly_one_racer() {
                super::a_nonce_is_claimed_by_exactly_one_racer($open);
            }
            #[test]
            fn a_sign_id_is_taken_by_exactly_one_racer() {
                super::a_sign_id_is_taken_by_exactly_one_racer($open);
            }
            #[test]
            fn racing_quota_takes_never_exceed_the_limit() {
                super::racing_quota_takes_never_exceed_the_limit($open);
            }
            #[tokio::test]
            async fn acknowledged_writes_survive_reopen() {
                super::acknowledged_writes_survive_reopen($open).await;
            }
            #[test]
            fn acknowledged_writes_survive_a_crash() {
                let child = concat!(stringify!($engine), "::crash_child");
                super::acknowledged_writes_survive_a_crash($open, child);
            }
            #[tokio::test]
            #[ignore = "the writer process of acknowledged_writes_survive_a_crash"]
            async fn crash_child() {
                super::crash_child($open).await;
            }
            #[test]
            fn iteration_is_in_unsigned_byte_order() {
                super::iteration_is_in_unsigned_byte_order($open);
            }
            #[test]
            fn scans_agree_with_an_ordered_map() {
                super::scans_agree_with_an_ordered_map($open);
            }
            #[test]
            fn a_transaction_is_all_or_nothing() {
                super::a_transaction_is_all_or_nothing($open);
            }
            #[test]
            fn conflicting_transactions_are_retried() {
                super::conflicting_transactions_are_retried($open);
            }
            #[test]
            fn a_snapshot_sees_one_point_in_time() {
                super::a_snapshot_sees_one_point_in_time($open);
            }
            #[test]
            fn a_snapshot_ignores_writes_made_while_it_runs() {
                super::a_snapshot_ignores_writes_made_while_it_runs($open);
            }
            #[test]
            fn ids_increase_across_reopening() {
                super::ids_increase_across_reopening($open);
            }
            #[test]
            fn a_newer_schema_is_refused() {
                super::a_newer_schema_is_refused($open);
            }
        }
    };
}

contract!(sled_engine, sled);

/// The audit entry a quota change is written with.
fn quota_entry() -> hutong::audit::entry::Draft {
    hutong::audit::draft_of(&hutong::domain::audit_event::AuditEvent {
        at_ms: 1,
        action: hutong::domain::audit_event::Action::QuotaSet,
        actor: hutong::domain::audit_event::Actor::cli(),
        target: "APP".into(),
        outcome: hutong::domain::audit_event::Outcome::Ok,
        detail: hutong::domain::audit_event::Detail::new(""),
    })
}
