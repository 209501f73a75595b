//! The platform clock and platform-time formatting: every stored time is UTC milliseconds;
//! the platform time zone (Asia/Shanghai) is applied only when formatting the standard's
//! `YYYY-MM-DD HH:MM:SS` strings and when cutting calendar days.
//!
//! A leaf: it imports nothing of the crate.

use serde::{Deserialize, Serialize};

/// The platform time zone offset (Asia/Shanghai has no daylight saving).
pub const PLATFORM_UTC_OFFSET_SECS: i32 = 8 * 3600;

/// Milliseconds since the Unix epoch, UTC.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The platform time zone as a `time` offset.
pub fn platform_offset() -> ::time::UtcOffset {
    ::time::UtcOffset::from_whole_seconds(PLATFORM_UTC_OFFSET_SECS)
        .unwrap_or(::time::UtcOffset::UTC)
}

/// Formats UTC milliseconds as the standard's `YYYY-MM-DD HH:MM:SS` in the platform time zone.
pub fn format_time_ms(ms: i64) -> String {
    let fmt = ::time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    ::time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|t| t.to_offset(platform_offset()))
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_default()
}

/// The first moment strictly after `now_ms` that is `secs_of_day` seconds past a platform
/// midnight (a daily schedule's next run).
pub fn next_daily_ms(now_ms: i64, secs_of_day: u32) -> i64 {
    let today = Day::of_ms(now_ms);
    let at = today.start_ms() + i64::from(secs_of_day) * 1000;
    if at > now_ms {
        at
    } else {
        today.add_days(1).start_ms() + i64::from(secs_of_day) * 1000
    }
}

/// A calendar day in the platform time zone: what usage is counted by and quotas and reports
/// are bounded by. Text is `YYYY-MM-DD` (`YYYYMMDD` is accepted too); storage keys keep the
/// `YYYYMMDD` number ([`Day::yyyymmdd`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(::time::Date);

/// A text that is not a calendar day.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("日期 {0} 应为 YYYY-MM-DD 格式")]
pub struct DayError(pub String);

const MS_PER_DAY: i64 = 86_400_000;

impl Day {
    /// The day `ms` (UTC milliseconds) falls on; times beyond year ±9999 clamp to its ends.
    pub fn of_ms(ms: i64) -> Day {
        let secs = ms.div_euclid(1000);
        let date = match ::time::OffsetDateTime::from_unix_timestamp(secs) {
            Ok(t) => t.to_offset(platform_offset()).date(),
            Err(_) if secs < 0 => ::time::Date::MIN,
            Err(_) => ::time::Date::MAX,
        };
        Day(date)
    }

    pub fn today() -> Day {
        Day::of_ms(now_ms())
    }

    /// Parses `YYYY-MM-DD` or `YYYYMMDD`.
    pub fn parse(s: &str) -> Result<Day, DayError> {
        let bad = || DayError(s.to_string());
        let b = s.as_bytes();
        let digits: Vec<u8> = match b.len() {
            8 => b.to_vec(),
            10 if b[4] == b'-' && b[7] == b'-' => [&b[..4], &b[5..7], &b[8..]].concat(),
            _ => return Err(bad()),
        };
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let n = digits
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        Day::from_yyyymmdd(n).ok_or_else(bad)
    }

    /// The day of a `YYYYMMDD` number, if it is one.
    pub fn from_yyyymmdd(n: u32) -> Option<Day> {
        let year = i32::try_from(n / 10_000).ok()?;
        let month = ::time::Month::try_from(u8::try_from(n / 100 % 100).ok()?).ok()?;
        let day = u8::try_from(n % 100).ok()?;
        ::time::Date::from_calendar_date(year, month, day)
            .ok()
            .map(Day)
    }

    /// The `YYYYMMDD` number (the usage counters' key encoding).
    pub fn yyyymmdd(self) -> u32 {
        let d = self.0;
        u32::try_from(d.year()).unwrap_or(0) * 10_000
            + u32::from(u8::from(d.month())) * 100
            + u32::from(d.day())
    }

    /// UTC milliseconds at 00:00:00 of this day in the platform time zone.
    pub fn start_ms(self) -> i64 {
        self.0
            .midnight()
            .assume_offset(platform_offset())
            .unix_timestamp()
            * 1000
    }

    /// This day moved by `delta` days (clamped to year ±9999).
    pub fn add_days(self, delta: i64) -> Day {
        let moved = ::time::Duration::days(delta);
        Day(self.0.checked_add(moved).unwrap_or(if delta < 0 {
            ::time::Date::MIN
        } else {
            ::time::Date::MAX
        }))
    }

    /// Days from this day to `later` (negative when `later` is earlier).
    pub fn days_until(self, later: Day) -> i64 {
        (later.start_ms() - self.start_ms()).div_euclid(MS_PER_DAY)
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        )
    }
}

impl std::str::FromStr for Day {
    type Err = DayError;

    fn from_str(s: &str) -> Result<Day, DayError> {
        Day::parse(s)
    }
}

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Day::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_time_is_utc_plus_eight() {
        assert_eq!(format_time_ms(0), "1970-01-01 08:00:00");
        assert_eq!(format_time_ms(1_767_196_800_000), "2026-01-01 00:00:00");
    }

    #[test]
    fn the_clock_is_past_2025() {
        assert!(now_ms() > 1_735_689_600_000);
    }

    fn day(n: u32) -> Day {
        Day::from_yyyymmdd(n).unwrap()
    }

    #[test]
    fn days_are_in_the_platform_time_zone() {
        // 2026-11-22 16:30 UTC is 2026-11-23 00:30 in Beijing.
        let ms = 1_795_365_000_000;
        assert_eq!(Day::of_ms(ms), day(20261123));
        assert_eq!(Day::of_ms(day(20261123).start_ms()), day(20261123));
        assert_eq!(Day::of_ms(day(20261123).start_ms() - 1), day(20261122));
        assert_eq!(day(20261231).add_days(1), day(20270101));
        assert_eq!(day(20240301).add_days(-1), day(20240229));
        assert_eq!(Day::parse("2026-02-28").unwrap(), day(20260228));
        assert_eq!(Day::parse("20260228").unwrap(), day(20260228));
        assert!(Day::parse("2026-02-30").is_err());
        assert!(Day::parse("20261").is_err());
        assert!(Day::parse("2026/02/28").is_err());
        assert_eq!(day(20260105).to_string(), "2026-01-05");
        assert_eq!(day(20260105).yyyymmdd(), 20260105);
        assert_eq!(day(20251231).days_until(day(20260102)), 2);
        let e = Day::parse("明天").unwrap_err().to_string();
        assert_eq!(e, "日期 明天 应为 YYYY-MM-DD 格式");
    }

    #[test]
    fn days_serialise_as_their_text() {
        let d = day(20260301);
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2026-03-01\"");
        assert_eq!(serde_json::from_str::<Day>("\"2026-03-01\"").unwrap(), d);
        assert!(serde_json::from_str::<Day>("\"2026-13-01\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_date_text_parses_or_is_refused_without_panic(s in "\\PC{0,12}|[0-9-]{8,10}") {
            if let Ok(d) = Day::parse(&s) {
                proptest::prop_assert_eq!(Day::parse(&d.to_string()).ok(), Some(d));
                proptest::prop_assert_eq!(Day::from_yyyymmdd(d.yyyymmdd()), Some(d));
                proptest::prop_assert_eq!(Day::of_ms(d.start_ms()), d);
            }
        }

        #[test]
        fn formatting_round_trips(n in 0u32..99_999_999) {
            if let Some(d) = Day::from_yyyymmdd(n) {
                proptest::prop_assert_eq!(d.yyyymmdd(), n);
                proptest::prop_assert_eq!(Day::parse(&d.to_string()), Ok(d));
                proptest::prop_assert_eq!(Day::parse(&format!("{n:08}")), Ok(d));
            }
        }

        #[test]
        fn days_move_by_whole_days(ms in 0i64..4_102_444_800_000, delta in -4000i64..4000) {
            let d = Day::of_ms(ms);
            let moved = d.add_days(delta);
            proptest::prop_assert_eq!(d.days_until(moved), delta);
            proptest::prop_assert_eq!(moved.add_days(-delta), d);
        }
    }
}
