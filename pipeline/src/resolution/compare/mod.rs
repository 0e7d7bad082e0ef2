//! Attribute comparison for entity resolution: cleaning raw values, string,
//! date and number similarities, the comparators that put a pair of values on
//! a level (exact, close, ..., different), and blocking keys.
//!
//! Everything here is pure, total and cheap, because it runs on every
//! candidate pair (tens of thousands of pairs per second per core):
//! - it must never panic, whatever the input string (arbitrary UTF-8, empty,
//!   control characters, very long values);
//! - it must never use a regex, and comparing two prepared values must not
//!   allocate: all parsing (dates, numbers, phonetic codes, char decoding)
//!   happens once per record in [`Comparator::prepare`];
//! - it must never look at anything but the two values: no I/O, no global
//!   state, so that a pair compares the same on every runner and in any order
//!   (`compare(a, b) == compare(b, a)`).
//!
//! Values are expected to go through [`clean`] first; the similarity
//! functions also accept any string. Quadratic similarities (Jaro-Winkler,
//! edit distances) are bounded in practice by the cleaning truncation
//! (`maxValueChars`, 200 by default): they stay correct on longer inputs, only
//! slower.

mod comparator;
mod date;
mod keys;
mod nicknames;
mod number;
mod phonetic;
mod similarity;
mod text;

#[cfg(test)]
mod tests;

pub use comparator::{Comparator, Prepared};
pub use date::{parse_date, parse_date_with, Date, DateFormat};
pub use keys::derive_key;
pub use nicknames::{share_group, Nicknames};
pub use phonetic::phonetic;
pub use similarity::{jaro_winkler, levenshtein_within, osa_within};
pub use text::clean;
