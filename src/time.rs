//! The platform clock and platform-time formatting: every stored time is UTC milliseconds;
//! the platform time zone (Asia/Shanghai) is applied only when formatting the standard's
//! `YYYY-MM-DD HH:MM:SS` strings and when cutting calendar days.
//!
//! A leaf: it imports nothing of the crate.

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
}
