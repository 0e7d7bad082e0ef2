//! How an identifier is spelled on one record version: the canonical value
//! most of the time, otherwise a variant that normalizes back to it (docs/design.md
//! §2). An engine that compares raw values splits people here.

use super::dice::Dice;
use super::ids::IdType;
use rand::RngCore;

/// Share of occurrences written in a non-canonical form.
pub(super) const VARIANT_RATE: f64 = 0.45;

/// Writes the spelling of `canonical` (a normalized value of type `ty`; for
/// phones, the 10-digit national number) into `out`, replacing its content.
pub(super) fn spell<R: RngCore>(ty: IdType, canonical: &str, rng: &mut R, out: &mut String) {
    out.clear();
    let variant = rng.chance(VARIANT_RATE);
    match ty {
        IdType::Phone => phone(canonical, if variant { 1 + rng.below(7) } else { 0 }, out),
        _ if !variant => out.push_str(canonical),
        IdType::Email => email(canonical, rng.below(4), out),
        IdType::DeviceId => device(canonical, rng.below(3), out),
        IdType::AccountId | IdType::Cookie => padded(canonical, rng.below(3), out),
    }
}

fn email(canonical: &str, style: u64, out: &mut String) {
    match style {
        // " Ann.Lee.17@Example.COM ": words capitalized, top-level domain shouted.
        0 => {
            out.push(' ');
            let tld_start = canonical
                .rfind('.')
                .filter(|&dot| dot > canonical.find('@').unwrap_or(0));
            let mut word_start = true;
            for (i, c) in canonical.char_indices() {
                if tld_start.is_some_and(|t| i > t) || word_start {
                    out.push(c.to_ascii_uppercase());
                } else {
                    out.push(c);
                }
                word_start = matches!(c, '.' | '@');
            }
            out.push(' ');
        }
        1 => out.extend(canonical.chars().map(|c| c.to_ascii_uppercase())),
        2 => {
            out.push_str(canonical);
            out.push(' ');
        }
        _ => {
            let mut chars = canonical.chars();
            out.extend(chars.next().map(|c| c.to_ascii_uppercase()));
            out.push_str(chars.as_str());
        }
    }
}

/// `national` is 10 digits: area code, exchange, line.
fn phone(national: &str, style: u64, out: &mut String) {
    let (area, exchange, line) = (&national[0..3], &national[3..6], &national[6..10]);
    let parts: [&str; 7] = match style {
        0 => ["+1", area, exchange, line, "", "", ""],
        1 => ["+1 (", area, ") ", exchange, "-", line, ""],
        2 => [area, "-", exchange, "-", line, "", ""],
        3 => [area, exchange, line, "", "", "", ""],
        4 => ["1 ", area, " ", exchange, " ", line, ""],
        5 => ["(", area, ") ", exchange, "-", line, ""],
        6 => [area, ".", exchange, ".", line, "", ""],
        _ => [" +1-", area, "-", exchange, "-", line, " "],
    };
    for part in parts {
        out.push_str(part);
    }
}

fn device(canonical: &str, style: u64, out: &mut String) {
    match style {
        0 => out.extend(canonical.chars().map(|c| c.to_ascii_uppercase())),
        1 => {
            out.push(' ');
            out.extend(canonical.chars().map(|c| c.to_ascii_uppercase()));
            out.push(' ');
        }
        _ => {
            out.push_str("  ");
            out.push_str(canonical);
        }
    }
}

/// Account ids and cookies are only trimmed by the pipeline: their case is
/// significant, so the only variants are surrounding spaces.
fn padded(canonical: &str, style: u64, out: &mut String) {
    if style != 1 {
        out.push(' ');
    }
    out.push_str(canonical);
    if style != 0 {
        out.push(' ');
    }
}
