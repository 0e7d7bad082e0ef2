//! Writing JSON lines by hand: the workload has millions of them and a fixed
//! shape, so building `serde_json::Value`s would cost more than the rest of the
//! generator together.

use super::people::EPOCH;
use super::GenerateError;
use std::io::{BufWriter, Write};

pub(super) use crate::json::write_string as json_str;

/// Appends a decimal number.
pub(super) fn json_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// Appends `"2026-01-05T10:00:00Z"` for a Unix time in seconds, which must not
/// be before the workload's epoch (2026-01-01): counting forward from a known
/// new year is all the calendar this needs.
pub(super) fn json_ts(buf: &mut Vec<u8>, unix: i64) {
    debug_assert!(unix >= EPOCH);
    let since = (unix - EPOCH).max(0);
    let (mut days, secs_of_day) = (since / 86_400, since % 86_400);
    let mut year = 2026;
    loop {
        let len = if is_leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let mut month = 1;
    loop {
        let len = days_in_month(year, month);
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    let day = days + 1;
    let (h, m, s) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
    buf.push(b'"');
    json_u64(buf, year as u64);
    for (sep, v) in [(b'-', month), (b'-', day), (b'T', h), (b':', m), (b':', s)] {
        buf.push(sep);
        buf.push(b'0' + (v / 10) as u8);
        buf.push(b'0' + (v % 10) as u8);
    }
    buf.extend_from_slice(b"Z\"");
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Writes truth lines, buffered: the caller may hand an unbuffered file.
pub(super) struct TruthWriter<'w> {
    out: BufWriter<&'w mut dyn Write>,
    line: Vec<u8>,
}

impl<'w> TruthWriter<'w> {
    pub(super) fn new(out: &'w mut dyn Write) -> TruthWriter<'w> {
        TruthWriter {
            out: BufWriter::with_capacity(1 << 16, out),
            line: Vec::with_capacity(128),
        }
    }

    /// `{"source":…,"id":…,"kind":…,"entity":…}`; the id is `prefix` and `number`.
    pub(super) fn record(
        &mut self,
        source: &str,
        prefix: &str,
        number: u64,
        kind: &str,
        entity_prefix: &str,
        entity: u64,
    ) -> Result<(), GenerateError> {
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"source\":");
        json_str(line, source);
        line.extend_from_slice(b",\"id\":\"");
        line.extend_from_slice(prefix.as_bytes());
        json_u64(line, number);
        line.extend_from_slice(b"\",\"kind\":");
        json_str(line, kind);
        line.extend_from_slice(b",\"entity\":\"");
        line.extend_from_slice(entity_prefix.as_bytes());
        json_u64(line, entity);
        line.extend_from_slice(b"\"}\n");
        self.out.write_all(line).map_err(GenerateError::Truth)
    }

    pub(super) fn finish(mut self) -> Result<(), GenerateError> {
        self.out.flush().map_err(GenerateError::Truth)
    }
}
