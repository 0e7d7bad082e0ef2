//! RFC 3339 timestamps, parsed by hand: this runs once per observation on the
//! hot path, and the subset docs/design.md §2 uses is small.

use std::fmt;

/// Nanoseconds since the Unix epoch, UTC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Parses `2026-01-05T10:00:00Z`, `2026-01-05T10:00:00.123+02:00` and the
    /// like (`T`, `t` or a space between date and time; `Z`, `z` or an offset).
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        Self::parse(s).ok()
    }

    /// As [`Timestamp::parse_rfc3339`], saying why not.
    pub fn parse(s: &str) -> Result<Timestamp, TimestampError> {
        let (seconds, nanos) = seconds_and_nanos(s).ok_or(TimestampError::NotRfc3339)?;
        seconds
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(nanos))
            .map(Timestamp)
            .ok_or(TimestampError::OutOfRange)
    }
}

/// Why a text is not a [`Timestamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    NotRfc3339,
    /// A valid RFC 3339 time outside what nanoseconds in 64 bits hold.
    OutOfRange,
}

/// The earliest and latest times a [`Timestamp`] holds, as said in errors.
pub const EARLIEST: &str = "1677-09-21T00:12:44Z";
pub const LATEST: &str = "2262-04-11T23:47:16Z";

/// Seconds since the epoch (UTC) and the fraction's nanoseconds of an
/// RFC 3339 text; no overflow for any four-digit year.
fn seconds_and_nanos(s: &str) -> Option<(i64, i64)> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
        }
        Some(v)
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + (b[i] - b'0') as i64;
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset_seconds = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some((seconds, nanos))
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with only as many fractional digits as needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000);
        let days = seconds.div_euclid(86_400);
        let rem = seconds.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )?;
        if nanos != 0 {
            let mut frac = format!("{nanos:09}");
            while frac.ends_with('0') {
                frac.pop();
            }
            write!(f, ".{frac}")?;
        }
        f.write_str("Z")
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's civil calendar algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_utc() {
        let t = Timestamp::parse_rfc3339("2026-01-05T10:00:00Z").unwrap();
        assert_eq!(t.0, 1_767_607_200 * 1_000_000_000);
        assert_eq!(t.to_string(), "2026-01-05T10:00:00Z");
    }

    #[test]
    fn offsets_and_fractions_are_applied() {
        let a = Timestamp::parse_rfc3339("2026-01-05T12:00:00.25+02:00").unwrap();
        assert_eq!(a.to_string(), "2026-01-05T10:00:00.25Z");
        let b = Timestamp::parse_rfc3339("1969-12-31T23:59:59.5Z").unwrap();
        assert_eq!(b.0, -500_000_000);
        assert_eq!(b.to_string(), "1969-12-31T23:59:59.5Z");
    }

    #[test]
    fn rejects_impossible_dates_and_shapes() {
        for bad in [
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01",
            "2026-01-01T00:00:00.Z",
            "yesterday at noon!!",
            "2026-01-01T00:00:00+0200",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
        assert!(Timestamp::parse_rfc3339("2024-02-29t00:00:00z").is_some());
    }

    #[test]
    fn the_range_ends_where_the_error_says() {
        for inside in [EARLIEST, LATEST] {
            let t = Timestamp::parse(inside).unwrap();
            assert_eq!(t.to_string(), inside);
        }
        for outside in [
            "1677-09-21T00:12:43Z",
            "2262-04-11T23:47:17Z",
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z",
        ] {
            assert_eq!(
                Timestamp::parse(outside),
                Err(TimestampError::OutOfRange),
                "{outside}"
            );
        }
        assert_eq!(
            Timestamp::parse("2026-13-01T00:00:00Z"),
            Err(TimestampError::NotRfc3339)
        );
    }
}
