//! RFC 3339 timestamps as Go and BuildKit write them, in UTC. One place
//! for the formatting the image configs, history entries and build events
//! share.

use time::{OffsetDateTime, UtcOffset};

/// `2024-05-01T12:00:00` (no fraction, no zone).
fn date_time(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Go's `time.RFC3339Nano` in UTC: `2024-05-01T12:00:00.5Z` (trailing zeros
/// of the fraction dropped, no fraction when it is zero).
pub fn rfc3339_nano(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let mut s = date_time(t);
    let ns = t.nanosecond();
    if ns != 0 {
        let frac = format!("{ns:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// RFC 3339 with all nine fraction digits (`2024-05-01T10:00:00.123456789Z`),
/// the fixed-width form of build timestamps and events.
pub fn rfc3339_fixed_nanos(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!("{}.{:09}Z", date_time(t), t.nanosecond())
}

/// A Unix time in whole seconds (`SOURCE_DATE_EPOCH`) as BuildKit writes
/// it: `2023-11-14T22:13:20Z`; the epoch itself when out of range.
pub fn rfc3339_unix(secs: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!("{}Z", date_time(t)),
        Err(_) => "1970-01-01T00:00:00Z".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_nano_like_go() {
        let t = time::macros::datetime!(2024-05-01 12:00:00.5 UTC);
        assert_eq!(rfc3339_nano(t), "2024-05-01T12:00:00.5Z");
        let t = time::macros::datetime!(2024-05-01 12:00:00 UTC);
        assert_eq!(rfc3339_nano(t), "2024-05-01T12:00:00Z");
    }

    #[test]
    fn fixed_nanos_keep_nine_digits() {
        let t = time::macros::datetime!(2024-05-01 12:00:00.5 +02:00);
        assert_eq!(rfc3339_fixed_nanos(t), "2024-05-01T10:00:00.500000000Z");
    }

    #[test]
    fn unix_seconds() {
        assert_eq!(rfc3339_unix(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_unix(i64::MAX), "1970-01-01T00:00:00Z");
    }
}
