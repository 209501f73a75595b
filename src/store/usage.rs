//! Metering (SPEC §6): per system, per day, per interface counters; distinct users per system
//! and day; quotas with their consumption.
//!
//! Keys: `usage` `appId\0YYYYMMDD\0interface` → four big-endian u64 (calls, succeeded, failed,
//! signatures); `usage_users` `appId\0YYYYMMDD\0hash` → empty; `quotas` `appId` → [`Quota`];
//! `quota_users` `appId\0hash` → empty (users counted against the current quota).

use super::engine::Direction;
use super::keyspace as ks;
use super::{Store, StoreError, decode, encode};
use crate::domain::vocab::QuotaKind;
use serde::{Deserialize, Serialize};
use std::ops::Bound;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageCounts {
    pub calls: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub signatures: u64,
}

impl UsageCounts {
    fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, v) in [self.calls, self.succeeded, self.failed, self.signatures]
            .into_iter()
            .enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&v.to_be_bytes());
        }
        out
    }

    fn from_bytes(b: &[u8]) -> Result<Self, StoreError> {
        if b.len() != 32 {
            return Err(StoreError::Corrupt("usage counter".into()));
        }
        let at = |i: usize| u64::from_be_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Ok(Self {
            calls: at(0),
            succeeded: at(1),
            failed: at(2),
            signatures: at(3),
        })
    }

    pub fn add(&mut self, o: UsageCounts) {
        self.calls = self.calls.saturating_add(o.calls);
        self.succeeded = self.succeeded.saturating_add(o.succeeded);
        self.failed = self.failed.saturating_add(o.failed);
        self.signatures = self.signatures.saturating_add(o.signatures);
    }
}

/// One counter row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub app_id: String,
    /// `YYYYMMDD` in the platform time zone.
    pub day: u32,
    pub interface: String,
    pub counts: UsageCounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    pub kind: QuotaKind,
    pub limit: u64,
    pub valid_from_ms: i64,
    pub valid_until_ms: i64,
    pub used: u64,
    pub set_by: String,
    pub set_ms: i64,
}

/// Why a quota refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaRefusal {
    NotYetValid,
    Expired,
    Exhausted,
}

fn usage_prefix(app_id: &str) -> Vec<u8> {
    let mut k = app_id.as_bytes().to_vec();
    k.push(0);
    k
}

fn usage_key(app_id: &str, day: u32, tail: &[u8]) -> Vec<u8> {
    let mut k = usage_prefix(app_id);
    k.extend_from_slice(format!("{day:08}").as_bytes());
    k.push(0);
    k.extend_from_slice(tail);
    k
}

/// Splits `appId\0YYYYMMDD\0tail`.
fn split_key(k: &[u8]) -> Option<(&str, u32, &[u8])> {
    let a = k.iter().position(|b| *b == 0)?;
    let app = std::str::from_utf8(&k[..a]).ok()?;
    let rest = k.get(a + 1..)?;
    if rest.len() < 9 || rest[8] != 0 {
        return None;
    }
    let day = std::str::from_utf8(&rest[..8]).ok()?.parse().ok()?;
    Some((app, day, &rest[9..]))
}

impl Store {
    /// Adds `delta` to one counter row atomically.
    pub fn add_usage(
        &self,
        app_id: &str,
        day: u32,
        interface: &str,
        delta: UsageCounts,
    ) -> Result<(), StoreError> {
        let key = usage_key(app_id, day, interface.as_bytes());
        let mut corrupt = false;
        self.usage.update(&key, &mut |old| {
            let mut c = match old.map(UsageCounts::from_bytes) {
                Some(Ok(c)) => c,
                Some(Err(_)) => {
                    corrupt = true;
                    UsageCounts::default()
                }
                None => UsageCounts::default(),
            };
            c.add(delta);
            Some(c.to_bytes().to_vec())
        })?;
        if corrupt {
            tracing::warn!(
                app_id,
                day,
                interface,
                "a corrupt usage counter was restarted"
            );
        }
        Ok(())
    }

    /// Records that `user` (a keyed hash) acted for `app_id` on `day`; true when new that day.
    pub fn add_usage_user(&self, app_id: &str, day: u32, user: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .usage_users
            .insert(&usage_key(app_id, day, user), &[])?
            .is_none())
    }

    /// Counter rows of one system (or every registered one) for days in `from..=to`. Each
    /// system is read as one key range, so a short period stays cheap however long the
    /// retention.
    pub fn usage_rows(
        &self,
        app_id: Option<&str>,
        from: u32,
        to: u32,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let apps = match app_id {
            Some(a) => vec![a.to_string()],
            None => self.list_systems()?.into_iter().map(|s| s.app_id).collect(),
        };
        // Days are eight digits; a larger bound would sort before them.
        let to = to.min(99_991_231);
        let mut out = Vec::new();
        for app in &apps {
            let (lo, hi) = (usage_key(app, from, b""), usage_key(app, to + 1, b""));
            for item in self.usage.range(
                Bound::Included(&lo),
                Bound::Excluded(&hi),
                Direction::Forward,
            ) {
                let (k, v) = item?;
                let Some((app, day, iface)) = split_key(&k) else {
                    continue;
                };
                out.push(UsageRow {
                    app_id: app.to_string(),
                    day,
                    interface: String::from_utf8_lossy(iface).into_owned(),
                    counts: UsageCounts::from_bytes(&v)?,
                });
            }
        }
        Ok(out)
    }

    /// Distinct users of `app_id` on `day`.
    pub fn usage_user_count(&self, app_id: &str, day: u32) -> Result<u64, StoreError> {
        let prefix = usage_key(app_id, day, b"");
        let mut n = 0;
        for item in self.usage_users.scan_prefix(&prefix, Direction::Forward) {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// Removes counters and user marks of days before `day`; returns how many entries.
    pub fn prune_usage(&self, before_day: u32) -> Result<usize, StoreError> {
        let mut n = 0;
        for tree in [&self.usage, &self.usage_users] {
            for item in tree.iter(Direction::Forward) {
                let (k, _) = item?;
                if split_key(&k).is_none_or(|(_, day, _)| day < before_day) {
                    tree.remove(&k)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    pub fn get_quota(&self, app_id: &str) -> Result<Option<Quota>, StoreError> {
        self.quotas
            .get(app_id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Sets (or with `None` removes) the quota of `app_id` with the entry of the act, in one
    /// transaction; consumption starts again at zero.
    pub fn set_quota(
        &self,
        app_id: &str,
        quota: Option<&Quota>,
        entry: &crate::audit::entry::Draft,
    ) -> Result<(), StoreError> {
        let counted = self
            .quota_users
            .scan_prefix(&usage_prefix(app_id), Direction::Forward)
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<Vec<_>, _>>()?;
        let value = quota.map(encode).transpose()?;
        let spaces = super::audit_log::with_audit_spaces(&[ks::QUOTAS, ks::QUOTA_USERS]);
        self.transaction(&spaces, |tx| {
            for k in &counted {
                tx.remove(ks::QUOTA_USERS, k)?;
            }
            match &value {
                Some(v) => tx.insert(ks::QUOTAS, app_id.as_bytes(), v)?,
                None => tx.remove(ks::QUOTAS, app_id.as_bytes())?,
            };
            self.append_audit_tx(tx, entry)?;
            Ok(())
        })
    }

    /// Takes one unit of `app_id`'s quota at `now_ms` when the quota is of `kind`. For a users
    /// quota, `user` is the keyed hash of the person: a person already counted costs nothing.
    /// Returns the quota's `set_ms` when a unit was taken (to give it back), `None` when no
    /// quota of this kind applies or nothing was taken.
    pub fn take_quota(
        &self,
        app_id: &str,
        kind: QuotaKind,
        user: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<Result<Option<i64>, QuotaRefusal>, StoreError> {
        let user_key = user.map(|u| {
            let mut k = usage_prefix(app_id);
            k.extend_from_slice(u);
            k
        });
        self.transaction(&[ks::QUOTAS, ks::QUOTA_USERS], |tx| {
            let Some(raw) = tx.get(ks::QUOTAS, app_id.as_bytes())? else {
                return Ok(Ok(None));
            };
            let mut q: Quota = decode(&raw)?;
            if q.kind != kind {
                return Ok(Ok(None));
            }
            if now_ms < q.valid_from_ms {
                return Ok(Err(QuotaRefusal::NotYetValid));
            }
            if now_ms > q.valid_until_ms {
                return Ok(Err(QuotaRefusal::Expired));
            }
            if let Some(k) = &user_key
                && tx.get(ks::QUOTA_USERS, k)?.is_some()
            {
                return Ok(Ok(None));
            }
            if q.used >= q.limit {
                return Ok(Err(QuotaRefusal::Exhausted));
            }
            q.used += 1;
            tx.insert(ks::QUOTAS, app_id.as_bytes(), &encode(&q)?)?;
            if let Some(k) = &user_key {
                tx.insert(ks::QUOTA_USERS, k, &[])?;
            }
            Ok(Ok(Some(q.set_ms)))
        })
    }

    /// Gives back a unit taken by [`Store::take_quota`] when the action it paid for failed,
    /// unless the quota was replaced meanwhile.
    pub fn return_quota(&self, app_id: &str, set_ms: i64) -> Result<(), StoreError> {
        let mut bad = None;
        self.quotas.update(app_id.as_bytes(), &mut |old| {
            let old = old?;
            match decode::<Quota>(old) {
                Ok(mut q) if q.set_ms == set_ms => {
                    q.used = q.used.saturating_sub(1);
                    match encode(&q) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            bad = Some(e);
                            Some(old.to_vec())
                        }
                    }
                }
                _ => Some(old.to_vec()),
            }
        })?;
        bad.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(kind: QuotaKind, limit: u64) -> Quota {
        Quota {
            kind,
            limit,
            valid_from_ms: 1_000,
            valid_until_ms: 10_000,
            used: 0,
            set_by: "op".into(),
            set_ms: 7,
        }
    }

    fn register(s: &Store, app_id: &str) {
        use crate::domain::vocab::SystemState;
        use crate::store::systems::SystemRecord;
        let rec = SystemRecord {
            app_id: app_id.into(),
            name: app_id.into(),
            plat_name: app_id.into(),
            vendor: None,
            public_keys: vec![],
            callback_url: None,
            callback_ca_pem: None,
            dest_host: None,
            state: SystemState::Online,
            created_ms: 0,
            history: vec![],
        };
        s.insert_system(&rec, &entry()).unwrap();
    }

    fn entry() -> crate::audit::entry::Draft {
        crate::domain::audit::entry(
            &crate::domain::audit_event::Actor::cli(),
            crate::domain::audit_event::Action::QuotaSet,
            "A",
            "",
        )
    }

    #[test]
    fn counters_add_up_per_day_and_interface() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        register(&s, "A");
        register(&s, "AB");
        let one = |ok: bool| UsageCounts {
            calls: 1,
            succeeded: ok as u64,
            failed: !ok as u64,
            signatures: 0,
        };
        s.add_usage("A", 20261122, "seal/query", one(true)).unwrap();
        s.add_usage("A", 20261123, "seal/query", one(true)).unwrap();
        s.add_usage("A", 20261123, "seal/query", one(false))
            .unwrap();
        s.add_usage("AB", 20261123, "seal/query", one(true))
            .unwrap();
        let rows = s.usage_rows(Some("A"), 20261123, 20261123).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].counts,
            UsageCounts {
                calls: 2,
                succeeded: 1,
                failed: 1,
                signatures: 0
            }
        );
        assert_eq!(s.usage_rows(None, 20261101, 20261130).unwrap().len(), 3);
        assert!(s.add_usage_user("A", 20261123, b"u1").unwrap());
        assert!(!s.add_usage_user("A", 20261123, b"u1").unwrap());
        assert_eq!(s.usage_user_count("A", 20261123).unwrap(), 1);
        assert_eq!(s.prune_usage(20261123).unwrap(), 1);
        assert_eq!(s.usage_rows(Some("A"), 0, u32::MAX).unwrap().len(), 1);
    }

    #[test]
    fn quotas_refuse_outside_their_period_and_when_used_up() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let sig = QuotaKind::Signatures;
        assert_eq!(s.take_quota("A", sig, None, 5_000).unwrap(), Ok(None));
        s.set_quota("A", Some(&quota(sig, 2)), &entry()).unwrap();
        assert_eq!(
            s.take_quota("A", sig, None, 500).unwrap(),
            Err(QuotaRefusal::NotYetValid)
        );
        assert_eq!(s.take_quota("A", sig, None, 5_000).unwrap(), Ok(Some(7)));
        assert_eq!(s.take_quota("A", sig, None, 5_000).unwrap(), Ok(Some(7)));
        assert_eq!(
            s.take_quota("A", sig, None, 5_000).unwrap(),
            Err(QuotaRefusal::Exhausted)
        );
        s.return_quota("A", 7).unwrap();
        assert_eq!(s.take_quota("A", sig, None, 5_000).unwrap(), Ok(Some(7)));
        assert_eq!(
            s.take_quota("A", sig, None, 20_000).unwrap(),
            Err(QuotaRefusal::Expired)
        );
        // A users quota is not consumed by signatures, and a known user costs nothing.
        s.set_quota("A", Some(&quota(QuotaKind::Users, 1)), &entry())
            .unwrap();
        assert_eq!(s.take_quota("A", sig, None, 5_000).unwrap(), Ok(None));
        let users = QuotaKind::Users;
        assert_eq!(
            s.take_quota("A", users, Some(b"u1"), 5_000).unwrap(),
            Ok(Some(7))
        );
        assert_eq!(
            s.take_quota("A", users, Some(b"u1"), 5_000).unwrap(),
            Ok(None)
        );
        assert_eq!(
            s.take_quota("A", users, Some(b"u2"), 5_000).unwrap(),
            Err(QuotaRefusal::Exhausted)
        );
        // A new quota starts from zero, including its users.
        s.set_quota("A", Some(&quota(users, 1)), &entry()).unwrap();
        assert_eq!(
            s.take_quota("A", users, Some(b"u2"), 5_000).unwrap(),
            Ok(Some(7))
        );
    }

    #[test]
    fn concurrent_takes_never_exceed_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.set_quota("A", Some(&quota(QuotaKind::Signatures, 50)), &entry())
            .unwrap();
        let taken: usize = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let s = s.clone();
                    sc.spawn(move || {
                        (0..20)
                            .filter(|_| {
                                matches!(
                                    s.take_quota("A", QuotaKind::Signatures, None, 5_000)
                                        .unwrap(),
                                    Ok(Some(_))
                                )
                            })
                            .count()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(taken, 50);
        assert_eq!(s.get_quota("A").unwrap().unwrap().used, 50);
    }
}
