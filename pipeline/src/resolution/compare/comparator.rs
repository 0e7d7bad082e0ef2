//! Comparators: a validated [`ComparisonMethod`] that prepares values once per
//! record and puts a pair of prepared values on a level, best (exact) first,
//! "different" last.
//!
//! `compare` runs on every candidate pair: it must not parse, allocate or
//! panic, and it must be symmetric. Everything it needs (characters, dates,
//! numbers, phonetic codes) is computed by `prepare`. Level 0 always means the
//! two values are the same (same cleaned text, same date, same number), so
//! that both values of an exact pair have the same [`Comparator::tf_key`].

use super::date::{parse_date_with, Date, DateFormat};
use super::number::{number_key, parse_number, within};
use super::phonetic::phonetic;
use super::similarity::{bounded_edit_distance, jaro_winkler_slices};
use kith_api::pipeline::ComparisonMethod;

/// More levels than this cannot be estimated from data anyway, and the level
/// must fit in a `u8`.
const MAX_PARAMETERS: usize = 16;

/// Slack on similarity thresholds, so that a pair computed at
/// `0.7999999999999999` still reaches a threshold written `0.8`.
const SIMILARITY_SLACK: f64 = 1e-12;

/// A value prepared once per record for one comparison (dates parsed, numbers
/// parsed, phonetic codes computed...), so that comparing pairs does no
/// parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    value: Value,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// `exact`: the cleaned text.
    Text(Box<str>),
    /// Similarities and edit distances: the text, and its characters decoded
    /// once (for `postcode`, the normalized postcode).
    Chars { text: Box<str>, chars: Box<[char]> },
    /// `phonetic`: the text and its code (empty when it has no Latin letter).
    Phonetic { text: Box<str>, code: Box<str> },
    /// `date`: the date, `YYYY-MM-DD` (the key), `YYYYMMDD` (for edits).
    Date {
        date: Date,
        iso: [u8; 10],
        digits: [u8; 8],
    },
    /// `numeric`: the number and its canonical text (the key).
    Number { value: f64, key: Box<str> },
}

/// A compiled comparison method: its levels, how to prepare a value, and how
/// to compare two prepared values.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparator {
    method: Method,
}

#[derive(Debug, Clone, PartialEq)]
enum Method {
    Exact,
    /// Thresholds, strictly decreasing.
    JaroWinkler(Box<[f64]>),
    /// Maximum distances, strictly increasing.
    Edit {
        max_distances: Box<[u32]>,
        transpositions: bool,
    },
    Phonetic,
    /// Maximum year distances, strictly increasing, and the declared formats.
    Date {
        years: Box<[u32]>,
        formats: Box<[DateFormat]>,
    },
    /// Maximum differences, strictly increasing.
    Numeric(Box<[f64]>),
    /// Prefix lengths, strictly decreasing.
    Postcode(Box<[u32]>),
    /// Suffix lengths, strictly decreasing.
    Suffix(Box<[u32]>),
}

impl Comparator {
    /// Validates the method: thresholds in (0,1] strictly decreasing,
    /// distances strictly increasing, at least one level besides exact...
    /// Error text says what is accepted.
    pub fn compile(method: &ComparisonMethod) -> Result<Comparator, String> {
        let method = match method {
            ComparisonMethod::Exact => Method::Exact,
            ComparisonMethod::Phonetic => Method::Phonetic,
            ComparisonMethod::JaroWinkler { thresholds } => {
                let ok = (1..=MAX_PARAMETERS).contains(&thresholds.len())
                    && thresholds.iter().all(|t| *t > 0.0 && *t <= 1.0)
                    && thresholds.windows(2).all(|w| w[0] > w[1]);
                if !ok {
                    return Err(format!(
                        "`jaroWinkler.thresholds` must list 1 to {MAX_PARAMETERS} similarities in (0, 1], \
                         strictly decreasing (best level first), e.g. [0.92, 0.8]; got {thresholds:?}"
                    ));
                }
                Method::JaroWinkler(thresholds.clone().into())
            }
            ComparisonMethod::Levenshtein { max_distances }
            | ComparisonMethod::DamerauLevenshtein { max_distances } => {
                let transpositions = matches!(method, ComparisonMethod::DamerauLevenshtein { .. });
                let ok = (1..=MAX_PARAMETERS).contains(&max_distances.len())
                    && max_distances.iter().all(|d| *d >= 1)
                    && max_distances.windows(2).all(|w| w[0] < w[1]);
                if !ok {
                    let name = if transpositions {
                        "damerauLevenshtein"
                    } else {
                        "levenshtein"
                    };
                    return Err(format!(
                        "`{name}.maxDistances` must list 1 to {MAX_PARAMETERS} edit distances of at least 1, \
                         strictly increasing (best level first), e.g. [1, 2]; got {max_distances:?}"
                    ));
                }
                Method::Edit {
                    max_distances: max_distances.clone().into(),
                    transpositions,
                }
            }
            ComparisonMethod::Date {
                max_year_distances,
                formats,
            } => {
                let ok = max_year_distances.len() <= MAX_PARAMETERS
                    && max_year_distances.iter().all(|d| *d >= 1)
                    && max_year_distances.windows(2).all(|w| w[0] < w[1]);
                if !ok {
                    return Err(format!(
                        "`date.maxYearDistances` must list 0 to {MAX_PARAMETERS} numbers of years of at least 1, \
                         strictly increasing (best level first), e.g. [1, 10]; got {max_year_distances:?}"
                    ));
                }
                if formats.len() > MAX_PARAMETERS {
                    return Err(format!(
                        "`date.formats` lists at most {MAX_PARAMETERS} formats"
                    ));
                }
                let formats = formats
                    .iter()
                    .map(|f| DateFormat::compile(f).map_err(|e| format!("`date.formats`: {e}")))
                    .collect::<Result<Vec<_>, _>>()?;
                Method::Date {
                    years: max_year_distances.clone().into(),
                    formats: formats.into(),
                }
            }
            ComparisonMethod::Numeric { max_differences } => {
                let ok = (1..=MAX_PARAMETERS).contains(&max_differences.len())
                    && max_differences.iter().all(|d| d.is_finite() && *d > 0.0)
                    && max_differences.windows(2).all(|w| w[0] < w[1]);
                if !ok {
                    return Err(format!(
                        "`numeric.maxDifferences` must list 1 to {MAX_PARAMETERS} finite differences above 0, \
                         strictly increasing (best level first), e.g. [1, 5]; got {max_differences:?}"
                    ));
                }
                Method::Numeric(max_differences.clone().into())
            }
            ComparisonMethod::Postcode { prefix_lengths } => Method::Postcode(decreasing_lengths(
                "postcode.prefixLengths",
                prefix_lengths,
                0,
                "[4, 2]",
            )?),
            ComparisonMethod::Suffix { lengths } => {
                Method::Suffix(decreasing_lengths("suffix.lengths", lengths, 1, "[7, 4]")?)
            }
        };
        Ok(Comparator { method })
    }

    /// Number of levels, best first; the last is always "different".
    pub fn levels(&self) -> usize {
        match &self.method {
            Method::Exact => 2,
            Method::JaroWinkler(t) => 2 + t.len(),
            Method::Edit { max_distances, .. } => 2 + max_distances.len(),
            Method::Phonetic => 3,
            Method::Date { years, .. } => 4 + years.len(),
            Method::Numeric(d) => 2 + d.len(),
            Method::Postcode(p) => 3 + p.len(),
            Method::Suffix(l) => 2 + l.len(),
        }
    }

    /// Human-readable level names for explanations, e.g. ["exact",
    /// "jaro-winkler >= 0.92", "jaro-winkler >= 0.8", "different"]. They are
    /// also written into model files, as a check that a model fits the
    /// pipeline: changing one makes existing models fail to load.
    pub fn level_names(&self) -> Vec<String> {
        let mut names = vec!["exact".to_string()];
        match &self.method {
            Method::Exact => {}
            Method::JaroWinkler(t) => {
                names.extend(t.iter().map(|t| format!("jaro-winkler >= {t}")))
            }
            Method::Edit {
                max_distances,
                transpositions,
            } => {
                let name = if *transpositions {
                    "damerau-levenshtein"
                } else {
                    "levenshtein"
                };
                names.extend(max_distances.iter().map(|d| format!("{name} <= {d}")));
            }
            Method::Phonetic => names.push("same phonetic code".to_string()),
            Method::Date { years: d, .. } => {
                names.push("day and month transposed".to_string());
                names.push("one edit in the digits".to_string());
                names.extend(
                    d.iter()
                        .map(|d| format!("same day and month, years within {d}")),
                );
            }
            Method::Numeric(d) => names.extend(d.iter().map(|d| format!("difference <= {d}"))),
            Method::Postcode(p) => {
                names.push("one edit".to_string());
                names.extend(p.iter().map(|n| format!("same first {n} characters")));
            }
            Method::Suffix(l) => {
                names.extend(l.iter().map(|n| format!("same last {n} characters")));
            }
        }
        names.push("different".to_string());
        names
    }

    /// The date formats this comparator declares (empty unless `date`), so
    /// that blocking keys on the same attribute read dates the same way.
    pub fn date_formats(&self) -> &[DateFormat] {
        match &self.method {
            Method::Date { formats, .. } => formats,
            _ => &[],
        }
    }

    /// None when the cleaned value cannot be used by this method (a date in
    /// an odd format, a non-number for `numeric`, an empty value): the caller
    /// treats it as missing and counts it.
    ///
    /// A name with no Latin letter is still usable by `phonetic` (it can
    /// match exactly; its empty code matches nothing). A postcode keeps only
    /// its letters and digits, so `SW1A 1AA` and `sw1a-1aa` are the same.
    pub fn prepare(&self, cleaned: &str) -> Option<Prepared> {
        if cleaned.is_empty() {
            return None;
        }
        let value = match &self.method {
            Method::Exact => Value::Text(cleaned.into()),
            Method::JaroWinkler(_) | Method::Edit { .. } | Method::Suffix(_) => Value::Chars {
                text: cleaned.into(),
                chars: cleaned.chars().collect(),
            },
            Method::Phonetic => Value::Phonetic {
                text: cleaned.into(),
                code: phonetic(cleaned).into(),
            },
            Method::Date { formats, .. } => {
                let date = parse_date_with(cleaned, formats)?;
                Value::Date {
                    date,
                    iso: date.iso(),
                    digits: date.digits(),
                }
            }
            Method::Numeric(_) => {
                let value = parse_number(cleaned)?;
                Value::Number {
                    value,
                    key: number_key(value).into(),
                }
            }
            Method::Postcode(_) => {
                let text: String = cleaned.chars().filter(|c| c.is_alphanumeric()).collect();
                if text.is_empty() {
                    return None;
                }
                let chars = text.chars().collect();
                Value::Chars {
                    text: text.into(),
                    chars,
                }
            }
        };
        Some(Prepared { value })
    }

    /// The level of a pair, 0 = best (exact). Both values must come from
    /// this comparator's `prepare`; a value of another method's kind (a date
    /// given to `exact`) compares as different rather than panicking.
    pub fn compare(&self, a: &Prepared, b: &Prepared) -> u8 {
        let level = self.level(&a.value, &b.value).unwrap_or(self.levels() - 1);
        // Levels are at most 4 + MAX_PARAMETERS: always fits.
        u8::try_from(level).unwrap_or(u8::MAX)
    }

    /// The level of a pair, or None when a value is not of this method's kind.
    fn level(&self, a: &Value, b: &Value) -> Option<usize> {
        let level = match &self.method {
            Method::Exact => {
                let (Value::Text(x), Value::Text(y)) = (a, b) else {
                    return None;
                };
                usize::from(x != y)
            }
            Method::JaroWinkler(thresholds) => {
                let ((ta, ca), (tb, cb)) = (a.chars()?, b.chars()?);
                if ta == tb {
                    0
                } else {
                    let s = jaro_winkler_slices(ca, cb) + SIMILARITY_SLACK;
                    1 + first_or_len(thresholds.iter().position(|t| s >= *t), thresholds.len())
                }
            }
            Method::Edit {
                max_distances,
                transpositions,
            } => {
                let ((ta, ca), (tb, cb)) = (a.chars()?, b.chars()?);
                if ta == tb {
                    0
                } else {
                    // One bounded computation with the largest bound, then
                    // the tightest level it fits.
                    let largest = max_distances.last().copied().unwrap_or(0);
                    let d = bounded_edit_distance(ca, cb, largest, *transpositions);
                    let fits = d.and_then(|d| max_distances.iter().position(|m| d <= *m));
                    1 + first_or_len(fits, max_distances.len())
                }
            }
            Method::Phonetic => {
                let (
                    Value::Phonetic { text: ta, code: ca },
                    Value::Phonetic { text: tb, code: cb },
                ) = (a, b)
                else {
                    return None;
                };
                if ta == tb {
                    0
                } else if !ca.is_empty() && ca == cb {
                    1
                } else {
                    2
                }
            }
            Method::Date { years, .. } => {
                let (
                    Value::Date {
                        date: da,
                        digits: ga,
                        ..
                    },
                    Value::Date {
                        date: db,
                        digits: gb,
                        ..
                    },
                ) = (a, b)
                else {
                    return None;
                };
                if da == db {
                    0
                } else if da.year == db.year && da.month == db.day && da.day == db.month {
                    1
                } else if bounded_edit_distance(ga, gb, 1, true).is_some() {
                    2
                } else {
                    let same_day = da.month == db.month && da.day == db.day;
                    let gap = da.year.abs_diff(db.year);
                    let fits = years.iter().position(|y| same_day && gap <= *y);
                    3 + first_or_len(fits, years.len())
                }
            }
            Method::Numeric(maxima) => {
                let (Value::Number { value: va, .. }, Value::Number { value: vb, .. }) = (a, b)
                else {
                    return None;
                };
                if va == vb {
                    0
                } else {
                    let fits = maxima.iter().position(|m| within(*va, *vb, *m));
                    1 + first_or_len(fits, maxima.len())
                }
            }
            Method::Postcode(prefixes) => {
                let ((ta, ca), (tb, cb)) = (a.chars()?, b.chars()?);
                if ta == tb {
                    0
                } else if bounded_edit_distance(ca, cb, 1, true).is_some() {
                    1
                } else {
                    let shared = ca.iter().zip(cb.iter()).take_while(|(x, y)| x == y).count();
                    let fits = prefixes.iter().position(|n| shared >= *n as usize);
                    2 + first_or_len(fits, prefixes.len())
                }
            }
            Method::Suffix(lengths) => {
                let ((ta, ca), (tb, cb)) = (a.chars()?, b.chars()?);
                if ta == tb {
                    0
                } else {
                    let shared = ca
                        .iter()
                        .rev()
                        .zip(cb.iter().rev())
                        .take_while(|(x, y)| x == y)
                        .count();
                    let fits = lengths.iter().position(|n| shared >= *n as usize);
                    1 + first_or_len(fits, lengths.len())
                }
            }
        };
        Some(level)
    }

    /// The exact-match key of a prepared value, for term-frequency tables
    /// (the cleaned text; the normalized postcode; `YYYY-MM-DD` for dates;
    /// the canonical number for `numeric`). Two values on level 0 have the
    /// same key.
    pub fn tf_key<'a>(&self, p: &'a Prepared) -> &'a str {
        match &p.value {
            Value::Text(text) | Value::Chars { text, .. } | Value::Phonetic { text, .. } => text,
            Value::Date { iso, .. } => std::str::from_utf8(iso).unwrap_or(""),
            Value::Number { key, .. } => key,
        }
    }
}

impl Value {
    /// The text and characters of a similarity or postcode value.
    fn chars(&self) -> Option<(&str, &[char])> {
        match self {
            Value::Chars { text, chars } => Some((text, chars)),
            _ => None,
        }
    }
}

/// The index found, or `len` (the next level) when none matched.
fn first_or_len(found: Option<usize>, len: usize) -> usize {
    found.unwrap_or(len)
}

/// A list of `min..=MAX_PARAMETERS` character counts, each at least 1 and
/// strictly decreasing (the longest, best level first).
fn decreasing_lengths(
    field: &str,
    lengths: &[u32],
    min: usize,
    example: &str,
) -> Result<Box<[u32]>, String> {
    let ok = (min..=MAX_PARAMETERS).contains(&lengths.len())
        && lengths.iter().all(|n| *n >= 1)
        && lengths.windows(2).all(|w| w[0] > w[1]);
    if ok {
        Ok(lengths.into())
    } else {
        Err(format!(
            "`{field}` must list {min} to {MAX_PARAMETERS} lengths of at least 1, \
             strictly decreasing (longest first, best level first), e.g. {example}; got {lengths:?}"
        ))
    }
}
