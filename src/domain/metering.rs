//! Metering and quotas (SPEC §6): what every authenticated call, routed call and signature
//! adds to the counters, the quota check of the requester, and the usage report with its CSV.
//!
//! Days are calendar days in the platform time zone. A "user" is the person named in an
//! intention request, counted by a keyed hash of the ID number (or mobile when there is none),
//! so the counters hold no personal data.

use super::DomainError;
use super::audit;
use super::audit_event::{Action, Actor};
use crate::domain::vocab::QuotaKind;
use crate::store::usage::{Quota, QuotaRefusal, UsageCounts};
use crate::store::{Store, StoreError};
use crate::time::Day;
use serde::{Deserialize, Serialize};

/// Interface name under which a home system's routed calls are counted.
pub fn routed(interface: &str) -> String {
    format!("routed:{interface}")
}

/// Adds to a counter; metering never fails the call it counts, so a storage error is logged.
fn add(store: &Store, app_id: &str, interface: &str, delta: UsageCounts, now_ms: i64) {
    if let Err(e) = store.add_usage(app_id, Day::of_ms(now_ms).yyyymmdd(), interface, delta) {
        tracing::warn!(app_id, interface, error = %e, "usage not counted");
    }
}

/// Counts one authenticated call of `app_id` to `interface`.
pub fn record_call(store: &Store, app_id: &str, interface: &str, ok: bool, now_ms: i64) {
    let delta = UsageCounts {
        calls: 1,
        succeeded: ok as u64,
        failed: !ok as u64,
        signatures: 0,
    };
    add(store, app_id, interface, delta, now_ms);
}

/// Counts one signature made for `app_id` through `interface`.
pub fn record_signature(store: &Store, app_id: &str, interface: &str, now_ms: i64) {
    let delta = UsageCounts {
        signatures: 1,
        ..UsageCounts::default()
    };
    add(store, app_id, interface, delta, now_ms);
}

/// The keyed hash that stands for a person in the counters.
pub fn user_hash(
    store: &Store,
    id_card: Option<&str>,
    mobile: &str,
) -> Result<[u8; 16], StoreError> {
    let salt = store.index_salt()?;
    let identity = match id_card {
        Some(id) if !id.is_empty() => format!("id:{}", id.to_ascii_uppercase()),
        _ => format!("mobile:{mobile}"),
    };
    let mut input = salt;
    input.extend_from_slice(b"hutong-usage-user\0");
    input.extend_from_slice(identity.as_bytes());
    let digest = crate::crypto::sm::sm3(&input);
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    Ok(out)
}

/// Counts `user` as a user of `app_id` today.
pub fn record_user(store: &Store, app_id: &str, user: &[u8; 16], now_ms: i64) {
    if let Err(e) = store.add_usage_user(app_id, Day::of_ms(now_ms).yyyymmdd(), user) {
        tracing::warn!(app_id, error = %e, "user not counted");
    }
}

/// Takes one unit of `app_id`'s quota of `kind`, or refuses with `20007`. Returns the token to
/// give the unit back with [`give_back`] if the paid-for action fails.
pub fn take(
    store: &Store,
    app_id: &str,
    kind: QuotaKind,
    user: Option<&[u8; 16]>,
    now_ms: i64,
) -> Result<Option<i64>, DomainError> {
    match store.take_quota(app_id, kind, user.map(|u| &u[..]), now_ms)? {
        Ok(token) => Ok(token),
        Err(why) => Err(DomainError::Quota(refusal_message(why, kind))),
    }
}

pub fn give_back(store: &Store, app_id: &str, token: Option<i64>) {
    if let Some(set_ms) = token
        && let Err(e) = store.return_quota(app_id, set_ms)
    {
        tracing::warn!(app_id, error = %e, "quota unit not returned");
    }
}

fn refusal_message(why: QuotaRefusal, kind: QuotaKind) -> String {
    match why {
        QuotaRefusal::NotYetValid => format!("本系统的{}配额尚未生效", kind.label()),
        QuotaRefusal::Expired => format!("本系统的{}配额已过期，请联系平台管理员", kind.label()),
        QuotaRefusal::Exhausted => format!("本系统的{}配额已用尽，请联系平台管理员", kind.label()),
    }
}

/// Where a quota stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaPhase {
    Pending,
    Active,
    Exhausted,
    Expired,
}

impl QuotaPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaPhase::Pending => "pending",
            QuotaPhase::Active => "active",
            QuotaPhase::Exhausted => "exhausted",
            QuotaPhase::Expired => "expired",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            QuotaPhase::Pending => "未生效",
            QuotaPhase::Expired => "已过期",
            QuotaPhase::Exhausted => "已用尽",
            QuotaPhase::Active => "有效",
        }
    }
}

/// What a quota looks like to its system, in the console and to the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaStatus {
    pub kind: QuotaKind,
    pub limit: u64,
    pub used: u64,
    pub remaining: u64,
    pub valid_from: String,
    pub valid_until: String,
    pub status: QuotaPhase,
    /// Who set the quota: for the console only, never in an answer to a member system.
    #[serde(skip)]
    pub set_by: String,
}

impl QuotaStatus {
    pub fn of(q: &Quota, now_ms: i64) -> Self {
        let status = if now_ms < q.valid_from_ms {
            QuotaPhase::Pending
        } else if now_ms > q.valid_until_ms {
            QuotaPhase::Expired
        } else if q.used >= q.limit {
            QuotaPhase::Exhausted
        } else {
            QuotaPhase::Active
        };
        Self {
            kind: q.kind,
            limit: q.limit,
            used: q.used,
            remaining: q.limit.saturating_sub(q.used),
            valid_from: crate::time::format_time_ms(q.valid_from_ms),
            valid_until: crate::time::format_time_ms(q.valid_until_ms),
            status,
            set_by: q.set_by.clone(),
        }
    }

    pub fn is_active(&self) -> bool {
        self.status == QuotaPhase::Active
    }

    pub fn status_label(&self) -> &'static str {
        self.status.label()
    }

    pub fn kind_label(&self) -> &'static str {
        self.kind.label()
    }
}

pub fn quota_status(
    store: &Store,
    app_id: &str,
    now_ms: i64,
) -> Result<Option<QuotaStatus>, StoreError> {
    Ok(store
        .get_quota(app_id)?
        .map(|q| QuotaStatus::of(&q, now_ms)))
}

/// Sets the quota of `app_id` valid from the start of `from` to the end of `until` (days);
/// recorded as `quota.set`.
pub fn set_quota(
    store: &Store,
    app_id: &str,
    kind: QuotaKind,
    limit: u64,
    from: Day,
    until: Day,
    actor: &Actor,
) -> Result<Quota, DomainError> {
    put_quota(store, app_id, kind, limit, from, until, actor)
        .map_err(|e| audit::failed(store, actor, Action::QuotaSet, app_id, e))
}

fn put_quota(
    store: &Store,
    app_id: &str,
    kind: QuotaKind,
    limit: u64,
    from: Day,
    until: Day,
    actor: &Actor,
) -> Result<Quota, DomainError> {
    if store.get_system(app_id)?.is_none() {
        return Err(DomainError::NotFound(format!("系统 {app_id} 不存在")));
    }
    if limit == 0 || limit > 1_000_000_000_000 {
        return Err(DomainError::Invalid(
            "配额数量应为 1 到 10^12 之间的整数".into(),
        ));
    }
    if until < from {
        return Err(DomainError::Invalid("配额截止日期不能早于起始日期".into()));
    }
    let q = Quota {
        kind,
        limit,
        valid_from_ms: from.start_ms(),
        valid_until_ms: until.add_days(1).start_ms() - 1,
        used: 0,
        set_by: actor.id.clone(),
        set_ms: crate::time::now_ms(),
    };
    let detail = format!(
        "类型={}; 数量={}; 有效期={}..{}",
        kind.as_str(),
        limit,
        from,
        until
    );
    let entry = audit::entry(actor, Action::QuotaSet, app_id, detail);
    store.set_quota(app_id, Some(&q), &entry)?;
    Ok(q)
}

/// Removes the quota of `app_id` and returns it; a system without one is an error (the
/// same answer on every surface). Recorded as `quota.clear` with what was removed.
pub fn clear_quota(store: &Store, app_id: &str, actor: &Actor) -> Result<Quota, DomainError> {
    let clear = || -> Result<Quota, DomainError> {
        let q = store
            .get_quota(app_id)?
            .ok_or_else(|| DomainError::NotFound(format!("系统 {app_id} 没有配额")))?;
        let detail = format!(
            "原配额: 类型={}; 数量={}; 已用={}",
            q.kind.as_str(),
            q.limit,
            q.used
        );
        let entry = audit::entry(actor, Action::QuotaClear, app_id, detail);
        store.set_quota(app_id, None, &entry)?;
        Ok(q)
    };
    clear().map_err(|e| audit::failed(store, actor, Action::QuotaClear, app_id, e))
}

/// The period of a report when only its last day is given: 30 days, that day included.
pub const DEFAULT_REPORT_DAYS: i64 = 30;

/// The first day of a default report ending on `to`.
pub fn default_report_start(to: Day) -> Day {
    to.add_days(1 - DEFAULT_REPORT_DAYS)
}

/// The longest usage report, in days, on every surface.
pub const MAX_REPORT_DAYS: i64 = 366;

/// A report period `from..=to` is forwards and at most [`MAX_REPORT_DAYS`] long.
pub fn check_report_range(from: Day, to: Day) -> Result<(), DomainError> {
    if from > to {
        return Err(DomainError::Invalid("起始日期不能晚于截止日期".into()));
    }
    let span = from.days_until(to) + 1;
    if span > MAX_REPORT_DAYS {
        return Err(DomainError::Invalid(format!(
            "查询范围为 {span} 天，最多 {MAX_REPORT_DAYS} 天，请缩小日期范围"
        )));
    }
    Ok(())
}

/// One line of the usage report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    pub date: Day,
    pub app_id: String,
    pub system_name: String,
    pub interface: String,
    #[serde(flatten)]
    pub counts: UsageCounts,
    /// Distinct users of the system that day (the same on each interface row of the day).
    pub distinct_users: u64,
}

/// Usage of one system (or all) for days `from..=to`, most recent day first; the period is
/// checked by [`check_report_range`].
pub fn report(
    store: &Store,
    app_id: Option<&str>,
    from: Day,
    to: Day,
) -> Result<Vec<ReportRow>, DomainError> {
    check_report_range(from, to)?;
    let mut names = std::collections::HashMap::new();
    let mut users = std::collections::HashMap::new();
    let mut out = Vec::new();
    for row in store.usage_rows(app_id, from.yyyymmdd(), to.yyyymmdd())? {
        let name = match names.get(&row.app_id) {
            Some(n) => n,
            None => {
                let n = store
                    .get_system(&row.app_id)?
                    .map(|s| s.name)
                    .unwrap_or_default();
                names.entry(row.app_id.clone()).or_insert(n)
            }
        }
        .clone();
        let key = (row.app_id.clone(), row.day);
        let distinct = match users.get(&key) {
            Some(n) => *n,
            None => {
                let n = store.usage_user_count(&row.app_id, row.day)?;
                users.insert(key, n);
                n
            }
        };
        out.push(ReportRow {
            date: Day::from_yyyymmdd(row.day).ok_or_else(|| {
                StoreError::Corrupt(format!("usage day {} of {}", row.day, row.app_id))
            })?,
            app_id: row.app_id,
            system_name: name,
            interface: row.interface,
            counts: row.counts,
            distinct_users: distinct,
        });
    }
    out.sort_by(|a, b| {
        b.date
            .cmp(&a.date)
            .then_with(|| a.app_id.cmp(&b.app_id))
            .then_with(|| a.interface.cmp(&b.interface))
    });
    Ok(out)
}

/// Totals of a report per system.
pub fn totals(rows: &[ReportRow]) -> UsageCounts {
    let mut t = UsageCounts::default();
    for r in rows {
        t.add(r.counts);
    }
    t
}

/// A spreadsheet-safe CSV field: quoted when needed, and a leading formula character defused.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The report as CSV (UTF-8 with BOM so spreadsheet programs read the Chinese names).
pub fn to_csv(rows: &[ReportRow]) -> String {
    let mut out = String::from(
        "\u{feff}date,appId,systemName,interface,calls,succeeded,failed,signatures,distinctUsers\r\n",
    );
    for r in rows {
        let c = r.counts;
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\r\n",
            r.date,
            csv_field(&r.app_id),
            csv_field(&r.system_name),
            csv_field(&r.interface),
            c.calls,
            c.succeeded,
            c.failed,
            c.signatures,
            r.distinct_users
        ));
    }
    out
}

/// Forgets counters older than `retention_days` (SPEC §6 keeps at least three years).
pub fn prune(store: &Store, retention_days: u32, now_ms: i64) -> Result<usize, StoreError> {
    let before = Day::of_ms(now_ms).add_days(-i64::from(retention_days));
    store.prune_usage(before.yyyymmdd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("-1+1,x"), "\"'-1+1,x\"");
    }

    #[test]
    fn the_user_hash_is_keyed_and_prefers_the_id_number() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let a = user_hash(&s, Some("11010519491231002x"), "13800000000").unwrap();
        assert_eq!(
            a,
            user_hash(&s, Some("11010519491231002X"), "13900000000").unwrap()
        );
        assert_ne!(a, user_hash(&s, None, "13800000000").unwrap());
        let other = tempfile::tempdir().unwrap();
        let s2 = Store::open(other.path()).unwrap();
        assert_ne!(
            a,
            user_hash(&s2, Some("11010519491231002X"), "13800000000").unwrap()
        );
    }
}
