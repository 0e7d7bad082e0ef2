//! Numbers read from attribute values, for `numeric` comparisons.
//!
//! It must never guess a locale: `1,500` is fifteen hundred in one country and
//! one and a half in another, so only plain decimal numbers are read (digits,
//! an optional sign, point and exponent, as JSON and most exports write them);
//! anything else is None, which the caller counts as missing. Parsing happens
//! once per record; comparing two parsed numbers allocates nothing.

/// A finite number, or None. `-0` reads as `0`, so that equal numbers have
/// one key.
pub(super) fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    // The standard parser also reads `inf`, `nan` and `infinity`: words, not
    // measurements. Requiring a digit rules them out.
    if !s.bytes().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    if !v.is_finite() {
        return None;
    }
    Some(if v == 0.0 { 0.0 } else { v })
}

/// The canonical text of a number, for term-frequency tables: the shortest
/// text that reads back as the same number (`1.50` and `1.5` both give
/// `1.5`, `42.0` gives `42`), in exponent form when very large or small.
/// Distinct numbers always have distinct keys.
pub(super) fn number_key(v: f64) -> String {
    let magnitude = v.abs();
    if magnitude != 0.0 && !(1e-6..1e16).contains(&magnitude) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// `|a - b| <= max`, allowing for the rounding of decimal fractions in binary
/// (`1.1 - 1.0` is `0.10000000000000009`, which a user writing a maximum
/// difference of `0.1` means to accept).
pub(super) fn within(a: f64, b: f64, max: f64) -> bool {
    let slack = 4.0 * f64::EPSILON * a.abs().max(b.abs()).max(max);
    (a - b).abs() <= max + slack
}
