//! Blocking keys: short values derived from one cleaned attribute, so that
//! records likely to match share a block and only pairs within a block are
//! compared.
//!
//! It runs once per record and key. It must never return an empty key: an
//! empty key would put every record without the attribute into one giant
//! block. A transform that does not apply gives None, and the record is simply
//! not in that rule's blocks.

use super::date::{parse_date_with, DateFormat};
use super::phonetic::phonetic;
use kith_api::pipeline::KeyTransform;

/// A blocking key from a cleaned value (None if the transform does not apply,
/// e.g. `year` of a non-date or `digits` of a value without digits).
///
/// `prefix(n)` and `suffix(n)` count characters and give the whole value when
/// it is shorter; `phonetic` is the NYSIIS code; `year` is `YYYY` and
/// `monthDay` is `MMDD` of a date read by [`parse_date`]; `digits` keeps the
/// decimal digits (ASCII, and the full-width, Arabic-Indic and Devanagari
/// ones, written as ASCII) in order.
///
/// `date_formats` are the formats the pipeline declares for the attribute
/// (tried before the unambiguous ones).
pub fn derive_key(
    transform: &KeyTransform,
    cleaned: &str,
    date_formats: &[DateFormat],
) -> Option<String> {
    if cleaned.is_empty() {
        return None;
    }
    let key = match transform {
        KeyTransform::Exact => cleaned.to_string(),
        KeyTransform::Prefix(n) => cleaned.chars().take(*n as usize).collect(),
        KeyTransform::Suffix(n) => {
            let n = *n as usize;
            if n == 0 {
                return None;
            }
            // The byte index of the n-th character from the end, or the whole
            // value when it is shorter.
            let start = cleaned
                .char_indices()
                .rev()
                .nth(n - 1)
                .map_or(0, |(i, _)| i);
            cleaned[start..].to_string()
        }
        KeyTransform::Phonetic => phonetic(cleaned),
        KeyTransform::Year => format!("{:04}", parse_date_with(cleaned, date_formats)?.year),
        KeyTransform::MonthDay => {
            let date = parse_date_with(cleaned, date_formats)?;
            format!("{:02}{:02}", date.month, date.day)
        }
        KeyTransform::Digits => cleaned.chars().filter_map(decimal_digit).collect(),
    };
    (!key.is_empty()).then_some(key)
}

/// The ASCII digit of a decimal digit in the scripts identifiers are most
/// often typed in (phone numbers from East Asian and Arabic-script forms).
fn decimal_digit(c: char) -> Option<char> {
    const ZEROS: [u32; 5] = [0x30, 0x660, 0x6F0, 0x966, 0xFF10];
    let code = u32::from(c);
    ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&code))
        .and_then(|&zero| char::from_digit(code - zero, 10))
}
