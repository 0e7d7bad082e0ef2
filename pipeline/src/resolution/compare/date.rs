//! Calendar dates read from attribute values (dates of birth, mostly).
//!
//! It must never guess: `03/04/1990` is the 3rd of April in London and the
//! 4th of March in New York, and reading it either way would invent evidence.
//! Only formats whose reading is certain are accepted, and everything else is
//! None, which the caller counts as a missing value. It parses once per
//! record, never per pair, and never uses a regex.

/// A calendar date (proleptic Gregorian), validated: month 1-12, day within
/// the month, year 1-9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// A valid date, or None.
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        valid.then_some(Date { year, month, day })
    }

    /// `YYYY-MM-DD`.
    pub(super) fn iso(&self) -> [u8; 10] {
        let d = self.digits();
        [d[0], d[1], d[2], d[3], b'-', d[4], d[5], b'-', d[6], d[7]]
    }

    /// `YYYYMMDD`, the digits compared by "one edit in the digits".
    pub(super) fn digits(&self) -> [u8; 8] {
        let mut out = [b'0'; 8];
        let mut put = |at: usize, width: usize, mut v: u32| {
            for k in (at..at + width).rev() {
                out[k] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        // Fields are validated, so the year fits in 4 digits.
        put(0, 4, self.year.unsigned_abs());
        put(4, 2, self.month);
        put(6, 2, self.day);
        out
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Parses a date where the format is unambiguous: `YYYYMMDD` (8 digits, as in
/// FEBRL), `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYY.MM.DD`, `DD/MM/YYYY` or
/// `MM/DD/YYYY` only when one of the two first fields is > 12 (else
/// ambiguous → None), RFC 3339 with time (date part). Validates the calendar
/// (leap years). Anything else → None (the caller counts it as missing).
///
/// Details: month and day may have one digit in the year-first and slash
/// forms (`1990-3-7`); the year always has four. `DD/MM/YYYY` and
/// `MM/DD/YYYY` are also accepted when both first fields are equal
/// (`05/05/1990` reads the same both ways). The RFC 3339 form needs two-digit
/// fields, a `T` (or `t`, or a space, as cleaned values are lower-cased) and a
/// valid time and offset; the date is the one written, not converted to UTC.
/// Surrounding whitespace is ignored; year 0 is rejected (`0000` is a common
/// placeholder for "unknown").
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.trim().as_bytes();
    if b.len() == 8 && b.iter().all(u8::is_ascii_digit) {
        let value = |digits: &[u8]| {
            digits
                .iter()
                .fold(0u32, |v, c| v * 10 + u32::from(c - b'0'))
        };
        let year = i32::try_from(value(&b[..4])).ok()?;
        return Date::new(year, value(&b[4..6]), value(&b[6..8]));
    }
    year_first(b).or_else(|| year_last(b))
}

/// `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYY.MM.DD`, and RFC 3339 date-times.
fn year_first(b: &[u8]) -> Option<Date> {
    let mut p = Cursor { b, pos: 0 };
    let year = p.number(4, 4, false)?;
    let sep = p.byte()?;
    if !matches!(sep, b'-' | b'/' | b'.') {
        return None;
    }
    let start = p.pos;
    let month = p.number(1, 2, false)?;
    let two_digit_month = p.pos - start == 2;
    p.expect(sep)?;
    let start = p.pos;
    let day = p.number(1, 2, false)?;
    let two_digit_day = p.pos - start == 2;
    if !p.at_end() {
        if !(sep == b'-' && two_digit_month && two_digit_day) {
            return None;
        }
        rfc3339_time(&mut p)?;
    }
    Date::new(i32::try_from(year).ok()?, month, day)
}

/// The time part of an RFC 3339 date-time, after the date:
/// `T HH:MM:SS [.fraction] (Z | +HH:MM | -HH:MM)`.
fn rfc3339_time(p: &mut Cursor) -> Option<()> {
    if !matches!(p.byte()?, b'T' | b't' | b' ') {
        return None;
    }
    let hour = p.number(2, 2, false)?;
    p.expect(b':')?;
    let minute = p.number(2, 2, false)?;
    p.expect(b':')?;
    // 60 is a leap second.
    let second = p.number(2, 2, false)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if p.peek() == Some(b'.') {
        p.pos += 1;
        let start = p.pos;
        while p.peek().is_some_and(|c| c.is_ascii_digit()) {
            p.pos += 1;
        }
        if p.pos == start {
            return None;
        }
    }
    match p.byte()? {
        b'Z' | b'z' => {}
        b'+' | b'-' => {
            let hours = p.number(2, 2, false)?;
            p.expect(b':')?;
            let minutes = p.number(2, 2, false)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
        }
        _ => return None,
    }
    p.at_end().then_some(())
}

/// `DD/MM/YYYY` or `MM/DD/YYYY`, read only when the reading is certain.
fn year_last(b: &[u8]) -> Option<Date> {
    let mut p = Cursor { b, pos: 0 };
    let first = p.number(1, 2, false)?;
    p.expect(b'/')?;
    let second = p.number(1, 2, false)?;
    p.expect(b'/')?;
    let year = i32::try_from(p.number(4, 4, false)?).ok()?;
    if !p.at_end() {
        return None;
    }
    let (day, month) = if first == second || (first > 12 && second <= 12) {
        (first, second)
    } else if second > 12 && first <= 12 {
        (second, first)
    } else {
        return None;
    };
    Date::new(year, month, day)
}

/// A date format a pipeline declares for one attribute (`%m/%d/%Y`): the
/// way out of ambiguity is for the data's owner to say how it is written,
/// never for the parser to guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFormat {
    parts: Box<[Part]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Four digits.
    Year,
    /// One or two digits.
    Month,
    Day,
    /// An ASCII byte written as is (compared lower-cased, as values are).
    Literal(u8),
}

impl DateFormat {
    /// `%Y` (four-digit year), `%m` (month) and `%d` (day) exactly once each,
    /// `%%` for a percent sign, any other ASCII character literal. Two-digit
    /// years are not accepted: their century is a guess.
    pub fn compile(format: &str) -> Result<DateFormat, String> {
        let accepted = "`%Y` (four-digit year), `%m` (month) and `%d` (day) once each, other ASCII characters as written, e.g. \"%m/%d/%Y\"";
        let mut parts = Vec::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            let part = match c {
                '%' => {
                    match chars.next() {
                        Some('Y') => Part::Year,
                        Some('m') => Part::Month,
                        Some('d') => Part::Day,
                        Some('%') => Part::Literal(b'%'),
                        other => {
                            let shown = other
                                .map(|o| format!("%{o}"))
                                .unwrap_or_else(|| "a lone %".into());
                            return Err(format!("date format {format:?}: {shown} is not accepted; accepted: {accepted}"));
                        }
                    }
                }
                c if c.is_ascii() && !c.is_ascii_digit() => {
                    Part::Literal(c.to_ascii_lowercase() as u8)
                }
                c => {
                    return Err(format!(
                        "date format {format:?}: {c:?} is not accepted; accepted: {accepted}"
                    ))
                }
            };
            parts.push(part);
        }
        for field in [Part::Year, Part::Month, Part::Day] {
            if parts.iter().filter(|p| **p == field).count() != 1 {
                return Err(format!("date format {format:?}: accepted: {accepted}"));
            }
        }
        Ok(DateFormat {
            parts: parts.into(),
        })
    }

    /// The date written in this format, validated, or None.
    pub fn parse(&self, s: &str) -> Option<Date> {
        let mut p = Cursor {
            b: s.trim().as_bytes(),
            pos: 0,
        };
        let (mut year, mut month, mut day) = (0, 0, 0);
        for (i, part) in self.parts.iter().enumerate() {
            // A field followed at once by another (`%Y%m%d`) has no
            // separator to end it: it takes exactly its widest width.
            let fixed = matches!(
                self.parts.get(i + 1),
                Some(Part::Year | Part::Month | Part::Day)
            );
            let width = |min: usize, max: usize| if fixed { (max, max) } else { (min, max) };
            match part {
                Part::Year => year = p.number(4, 4, fixed)?,
                Part::Month => {
                    let (min, max) = width(1, 2);
                    month = p.number(min, max, fixed)?
                }
                Part::Day => {
                    let (min, max) = width(1, 2);
                    day = p.number(min, max, fixed)?
                }
                Part::Literal(c) => p.expect(*c)?,
            }
        }
        if !p.at_end() {
            return None;
        }
        Date::new(i32::try_from(year).ok()?, month, day)
    }
}

/// A date read with the declared formats first, in order, then the
/// unambiguous ones of [`parse_date`].
pub fn parse_date_with(s: &str, formats: &[DateFormat]) -> Option<Date> {
    formats
        .iter()
        .find_map(|f| f.parse(s))
        .or_else(|| parse_date(s))
}

/// A read position in ASCII bytes.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn byte(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        // Literals are kept lower case: `T` in a format matches `t` too.
        (self.byte()?.to_ascii_lowercase() == c).then_some(())
    }

    fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    /// Between `min` and `max` ASCII digits (at most 4, so no overflow); a
    /// further digit right after `max` is an error, not the next field,
    /// unless the next field follows without a separator (`adjacent`).
    fn number(&mut self, min: usize, max: usize, adjacent: bool) -> Option<u32> {
        let start = self.pos;
        let mut v = 0u32;
        while self.pos - start < max {
            match self.peek() {
                Some(c) if c.is_ascii_digit() => {
                    v = v * 10 + u32::from(c - b'0');
                    self.pos += 1;
                }
                _ => break,
            }
        }
        let n = self.pos - start;
        let more = self.peek().is_some_and(|c| c.is_ascii_digit());
        (n >= min && (adjacent || !more)).then_some(v)
    }
}
