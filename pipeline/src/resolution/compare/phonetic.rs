//! Phonetic codes for names: NYSIIS (New York State Identification and
//! Intelligence System, R. L. Taft, "Name Search Techniques", 1970), so that
//! spelling variants such as `Mackenzie` and `McKenzie`, or `Philips` and
//! `Phillips`, can block together and count as close.
//!
//! It runs once per record (the comparator stores the code), never per pair.
//! It must never invent letters from non-Latin scripts: a name with no Latin
//! letters has an empty code, which matches nothing.
//!
//! Decisions where the published descriptions leave room:
//! - The original algorithm, not the "modified NYSIIS" variant, with the code
//!   truncated to 6 characters as in Taft's system (and most tools offering
//!   "NYSIIS"); the truncation comes last, after the end-of-code rules.
//! - Letters are upper-cased, common Latin letters with diacritics are folded
//!   to their base letter (`é` to `E`, `ß` to `SS`, `ø` to `O`, `æ` to `AE`),
//!   and everything else (spaces, hyphens, apostrophes, digits, combining
//!   marks, other scripts) is ignored: `O'Brien` codes as `OBRIEN`, and a
//!   double-barrelled name as one word.
//! - The scan rewrites the name in place (as Taft's flow chart does): rules
//!   that look at the preceding letter (`H`, `W`) see it already translated,
//!   and multi-letter rules (`EV` to `AF`, `SCH` to `SSS`, `PH` to `FF`)
//!   rewrite the following letters, which are then scanned in turn.
//! - The three end rules (drop a final `S`, final `AY` to `Y`, drop a final
//!   `A`) apply one after the other, as listed; none of them ever removes the
//!   first character of the code, which is the first letter of the name.

use smallvec::SmallVec;

/// Upper-case ASCII letters of a name, on the stack for ordinary names.
type Letters = SmallVec<[u8; 32]>;

/// The length of a NYSIIS code in Taft's system.
const CODE_LENGTH: usize = 6;

/// A phonetic code for names: NYSIIS (original algorithm, all steps, code
/// truncated to 6 characters). Non-letters are ignored; empty when the value
/// has no Latin letters.
pub fn phonetic(s: &str) -> String {
    let mut name = Letters::new();
    for c in s.chars() {
        if c.is_ascii() {
            if c.is_ascii_alphabetic() {
                name.push(c.to_ascii_uppercase() as u8);
            }
        } else {
            for lower in c.to_lowercase() {
                fold(lower, &mut name);
            }
        }
    }
    nysiis(&mut name)
}

fn is_vowel(c: u8) -> bool {
    matches!(c, b'A' | b'E' | b'I' | b'O' | b'U')
}

fn nysiis(name: &mut Letters) -> String {
    let Some(&first) = name.first() else {
        return String::new();
    };
    // Step 1: the start of the name.
    if name.starts_with(b"MAC") {
        name[1] = b'C';
    } else if name.starts_with(b"KN") {
        name[0] = b'N';
    } else if first == b'K' {
        name[0] = b'C';
    } else if name.starts_with(b"PH") || name.starts_with(b"PF") {
        name[..2].copy_from_slice(b"FF");
    } else if name.starts_with(b"SCH") {
        name[..3].copy_from_slice(b"SSS");
    }
    // Step 2: the end of the name; both rules shorten it by one letter.
    let replacement = if name.ends_with(b"EE") || name.ends_with(b"IE") {
        Some(b'Y')
    } else if [b"DT", b"RT", b"RD", b"NT", b"ND"]
        .iter()
        .any(|end| name.ends_with(*end))
    {
        Some(b'D')
    } else {
        None
    };
    if let Some(r) = replacement {
        name.pop();
        if let Some(last) = name.last_mut() {
            *last = r;
        }
    }

    // Step 3: the code starts with the (translated) first letter.
    let mut key = Letters::new();
    key.push(name[0]);

    // Steps 4 to 6: scan from the second letter; exactly one rule applies to
    // each position, and the result is added unless it repeats the last
    // letter of the code.
    let mut i = 1;
    while i < name.len() {
        let c = name[i];
        let prev = name[i - 1];
        let next = name.get(i + 1).copied();
        let out = if is_vowel(c) {
            if c == b'E' && next == Some(b'V') {
                name[i + 1] = b'F';
            }
            b'A'
        } else {
            match c {
                b'Q' => b'G',
                b'Z' => b'S',
                b'M' => b'N',
                b'K' => {
                    if next == Some(b'N') {
                        b'N'
                    } else {
                        b'C'
                    }
                }
                b'S' if name[i + 1..].starts_with(b"CH") => {
                    name[i + 1..i + 3].copy_from_slice(b"SS");
                    b'S'
                }
                b'P' if next == Some(b'H') => {
                    name[i + 1] = b'F';
                    b'F'
                }
                b'H' if !is_vowel(prev) || !next.is_some_and(is_vowel) => prev,
                b'W' if is_vowel(prev) => prev,
                _ => c,
            }
        };
        name[i] = out;
        if key.last() != Some(&out) {
            key.push(out);
        }
        i += 1;
    }

    // Steps 7 to 9: the end of the code.
    if key.len() > 1 && key.last() == Some(&b'S') {
        key.pop();
    }
    if key.len() > 2 && key.ends_with(b"AY") {
        key.pop();
        if let Some(last) = key.last_mut() {
            *last = b'Y';
        }
    }
    if key.len() > 1 && key.last() == Some(&b'A') {
        key.pop();
    }
    key.truncate(CODE_LENGTH);
    key.iter().map(|&b| char::from(b)).collect()
}

/// Appends the base letter(s) of a lower-case non-ASCII Latin letter; other
/// characters are not letters for NYSIIS and are skipped. The table covers
/// Latin-1 and the Latin Extended-A letters used in European names.
fn fold(c: char, out: &mut Letters) {
    let base: &[u8] = match c {
        'a'..='z' => {
            // Only reached through a multi-char lower-case expansion
            // (`İ` gives `i` + a combining dot).
            out.push(c.to_ascii_uppercase() as u8);
            return;
        }
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => b"A",
        'æ' => b"AE",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => b"C",
        'ď' | 'đ' | 'ð' => b"D",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => b"E",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => b"G",
        'ĥ' | 'ħ' => b"H",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => b"I",
        'ĳ' => b"IJ",
        'ĵ' => b"J",
        'ķ' | 'ĸ' => b"K",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => b"L",
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' | 'ŋ' => b"N",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => b"O",
        'œ' => b"OE",
        'ŕ' | 'ŗ' | 'ř' => b"R",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' | 'ſ' => b"S",
        'ß' => b"SS",
        'ţ' | 'ť' | 'ŧ' | 'ț' => b"T",
        'þ' => b"TH",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => b"U",
        'ŵ' => b"W",
        'ý' | 'ÿ' | 'ŷ' => b"Y",
        'ź' | 'ż' | 'ž' => b"Z",
        _ => return,
    };
    out.extend_from_slice(base);
}
