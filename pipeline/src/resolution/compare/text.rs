//! Cleaning of raw attribute values, so that two systems writing the same
//! value with different case, spacing or invisible characters compare equal.
//!
//! It runs once per attribute value of a record (not per pair). It must never
//! change what a value says: no transliteration, no stripping of accents or
//! punctuation (that is each comparator's business), and no Unicode
//! normalization form either (there are no tables for it here), so a
//! precomposed `é` and `e` + combining accent stay different texts.

/// Cleans a raw attribute value before any comparison or key: Unicode
/// lower-case, control characters removed, runs of whitespace collapsed to
/// one space, trimmed, and truncated to `max_chars` characters. Returns None
/// when nothing is left; the bool says whether it was truncated.
///
/// Whitespace control characters (tab, line feed...) count as whitespace, so
/// `ann\tlee` becomes `ann lee` rather than `annlee`; other control
/// characters and invisible format characters (zero-width spaces, byte-order
/// marks, soft hyphens, bidirectional marks) are removed without breaking the
/// word they sit in. Lower-casing is per character (`Σ` is always `σ`, never
/// the final `ς`), so the same letters always clean the same way wherever
/// they stand. A value is truncated only when a character is actually cut
/// off, and never ends with the space before the cut.
pub fn clean(raw: &str, max_chars: usize) -> Option<(String, bool)> {
    // Never reserve more than the output can hold: a 10 MB value truncated to
    // 200 characters needs at most 200 * 4 bytes.
    let mut out = String::with_capacity(raw.len().min(max_chars.saturating_mul(4)));
    let mut count = 0usize;
    let mut pending_space = false;
    let mut truncated = false;
    'chars: for c in raw.chars() {
        if c.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        if c.is_control() || is_invisible(c) {
            continue;
        }
        for lower in c.to_lowercase() {
            // The space before a character is only written with it: a space
            // that would be the last character kept is trimmed anyway.
            let needed = if pending_space { 2 } else { 1 };
            if count + needed > max_chars {
                truncated = true;
                break 'chars;
            }
            if pending_space {
                out.push(' ');
                pending_space = false;
                count += 1;
            }
            out.push(lower);
            count += 1;
        }
    }
    if out.is_empty() {
        None
    } else {
        Some((out, truncated))
    }
}

/// Format characters that render as nothing and only ever get into attribute
/// values by copy and paste or encoding accidents.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' // soft hyphen
            | '\u{180E}' // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space, joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidirectional isolates
            | '\u{FEFF}' // byte-order mark, zero-width no-break space
    )
}
