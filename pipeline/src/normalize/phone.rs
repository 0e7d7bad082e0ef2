//! Phone numbers to E.164 (`+`, country calling code, national significant
//! number; digits only), so that `(415) 555-0100` typed into a form and
//! `+1 415 555 0100` exported by a CRM become the same identifier.
//!
//! This runs once per phone identifier on the hot path: for the 51 regions of
//! `PLANS` (the fast path) it must never use a regex and never allocate
//! anything but the returned string. It checks the *shape* of a number
//! against the numbering plan (digits, lengths), never whether it is in
//! service or plausible: `+10000000000` is a valid shape, and junk values are
//! the blocklist's job. It must never invent digits: what it cannot read as a
//! number of the plan is `None`, and the caller dead-letters the observation
//! with a reason.
//!
//! A pipeline may also be in any other region libphonenumber knows (some 190
//! more): national numbers of those regions are read by the `phonenumber`
//! crate, Google's metadata in Rust (see `fallback_national`). A number
//! written with `+`, or after a region's international prefix, is read by the
//! fast path whatever the region, so it reads the same in every pipeline; for
//! a country code without a plan only the E.164 bounds are checked there, as
//! before the fallback existed, which keeps the crate off the hot path.
//!
//! Reading order, which decides the ambiguous cases:
//! 1. a leading `+` means the digits start with a country calling code;
//! 2. so does one of the region's international prefixes (`00`, `011` in the
//!    NANP...), when a country code can follow it (codes never start with 0);
//! 3. otherwise the number is national: the region's trunk prefix is removed
//!    when what remains has a valid length, and the region's calling code is
//!    prepended; a national number written with its country code but no `+`
//!    (`44 20 7946 0958` in GB) is read last, only when nothing else fits.
//!
//! Formatting (spaces, dots, dashes, parentheses, slashes) is ignored, and an
//! extension (`ext 12`, `x12`, `#12`) is dropped: it reaches the same line.

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;

/// The numbering facts of one region.
///
/// Sources: calling codes from the ITU-T E.164 list of assigned country codes
/// (ITU Operational Bulletin annex); trunk prefixes, international prefixes
/// and national significant number (NSN) lengths from the national numbering
/// plans notified to the ITU (ITU-T "National numbering plans" pages) and the
/// NANP administrator. Where a plan has numbers of varying length the bounds
/// span all of them, rounded outward: a false rejection dead-letters a whole
/// observation, a loose bound only admits an odd shape.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan {
    /// ISO 3166-1 alpha-2, upper case.
    pub(super) iso: &'static str,
    /// Country calling code, digits without `+`.
    pub(super) calling_code: &'static str,
    /// Dialled before national numbers inside the country, never part of the
    /// E.164 form. Empty where the plan has none (Italy keeps its leading 0:
    /// it belongs to the number, not to a trunk prefix).
    pub(super) trunk_prefix: &'static str,
    /// Dialled before a country code from inside the country, tried in order
    /// (carrier-specific codes before the bare `00`).
    pub(super) international_prefixes: &'static [&'static str],
    /// Length bounds of the national significant number.
    pub(super) min_len: u8,
    pub(super) max_len: u8,
}

const fn plan(
    iso: &'static str,
    calling_code: &'static str,
    trunk_prefix: &'static str,
    international_prefixes: &'static [&'static str],
    min_len: u8,
    max_len: u8,
) -> Plan {
    Plan {
        iso,
        calling_code,
        trunk_prefix,
        international_prefixes,
        min_len,
        max_len,
    }
}

/// `00` is the ITU-recommended international prefix.
const ITU: &[&str] = &["00"];
/// The NANP dials `011`; `00` is accepted too because people abroad write
/// numbers that way and no NANP number starts with 0.
const NANP: &[&str] = &["011", "00"];

/// Every supported region. Calling codes shared by several regions (1 for the
/// NANP, 7 for Russia and Kazakhstan) share their bounds, so that a number
/// with `+` reads the same whatever the default region (a test checks it).
pub(super) static PLANS: [Plan; 51] = [
    // North American Numbering Plan: area code + 7 digits, trunk prefix 1.
    plan("US", "1", "1", NANP, 10, 10),
    plan("CA", "1", "1", NANP, 10, 10),
    plan("PR", "1", "1", NANP, 10, 10),
    plan("DO", "1", "1", NANP, 10, 10),
    plan("JM", "1", "1", NANP, 10, 10),
    plan("TT", "1", "1", NANP, 10, 10),
    plan("BS", "1", "1", NANP, 10, 10),
    plan("BB", "1", "1", NANP, 10, 10),
    // Europe.
    plan("GB", "44", "0", ITU, 7, 10),
    plan("IE", "353", "0", ITU, 7, 9),
    plan("FR", "33", "0", ITU, 9, 9),
    plan("DE", "49", "0", ITU, 6, 13),
    plan("ES", "34", "", ITU, 9, 9),
    plan("IT", "39", "", ITU, 6, 11),
    plan("NL", "31", "0", ITU, 9, 9),
    plan("BE", "32", "0", ITU, 8, 9),
    plan("CH", "41", "0", ITU, 9, 9),
    plan("AT", "43", "0", ITU, 6, 13),
    plan("SE", "46", "0", ITU, 7, 10),
    plan("NO", "47", "", ITU, 8, 8),
    plan("DK", "45", "", ITU, 8, 8),
    plan("FI", "358", "0", ITU, 6, 12),
    plan("PL", "48", "", ITU, 9, 9),
    plan("PT", "351", "", ITU, 9, 9),
    plan("CZ", "420", "", ITU, 9, 9),
    plan("GR", "30", "", ITU, 10, 10),
    // Russia and Kazakhstan: trunk prefix 8, international prefix 8~10.
    plan("RU", "7", "8", &["810", "00"], 10, 10),
    plan("KZ", "7", "8", &["810", "00"], 10, 10),
    // Middle East and South Asia.
    plan("TR", "90", "0", ITU, 10, 10),
    plan("IL", "972", "0", ITU, 8, 9),
    plan("AE", "971", "0", ITU, 8, 9),
    plan("SA", "966", "0", ITU, 8, 9),
    plan("IN", "91", "0", ITU, 10, 10),
    plan("PK", "92", "0", ITU, 9, 10),
    // East Asia and Oceania.
    plan("CN", "86", "0", ITU, 9, 11),
    plan("JP", "81", "0", &["010"], 9, 10),
    plan(
        "KR",
        "82",
        "0",
        &["001", "002", "005", "006", "008", "00"],
        8,
        10,
    ),
    plan("SG", "65", "", &["001", "002", "008", "00"], 8, 8),
    plan("HK", "852", "", &["001", "00"], 8, 8),
    plan("TW", "886", "0", &["002", "00"], 8, 9),
    plan("AU", "61", "0", &["0011", "00"], 9, 9),
    plan("NZ", "64", "0", ITU, 8, 10),
    // Latin America. Carrier selection codes dialled after the trunk or
    // international prefix (Brazil, Argentina) are not read.
    plan("BR", "55", "0", ITU, 10, 11),
    plan("MX", "52", "", ITU, 10, 10),
    plan("AR", "54", "0", ITU, 10, 11),
    plan("CO", "57", "", ITU, 10, 10),
    plan("CL", "56", "", ITU, 9, 9),
    // Africa.
    plan("ZA", "27", "0", ITU, 9, 9),
    plan("NG", "234", "0", &["009", "00"], 8, 10),
    plan("KE", "254", "0", &["000", "00"], 8, 9),
    plan("EG", "20", "0", ITU, 8, 10),
];

/// E.164 allows at most 15 digits after the `+`.
const E164_MAX_DIGITS: usize = 15;
/// The shortest numbers in service (small territories) have 7 digits with
/// their country code; fewer is a fragment, not a number.
const E164_MIN_DIGITS: usize = 7;
/// Digits read before giving up: the longest international prefix (4) and a
/// full E.164 number fit; anything longer is not a phone number.
const MAX_INPUT_DIGITS: usize = 20;

/// A default region for national phone numbers: a hand-written plan (the
/// fast path) or a region only libphonenumber's metadata describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(Kind);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An index into `PLANS`.
    Plan(u8),
    /// A region outside `PLANS`. The crate's `Id` lends its name only as a
    /// borrowed `str`, so the code is kept beside it (from the crate's static
    /// metadata), with the calling code the reading compares against.
    Fallback {
        id: Id,
        iso: &'static str,
        calling_code: u16,
    },
}

impl Region {
    /// What `parse` accepts, in words, for error messages: the list itself
    /// (`supported`) has some 245 codes, too many to read in one message.
    pub const ACCEPTED: &'static str =
        "an ISO 3166-1 alpha-2 region libphonenumber knows, such as US, GB, DE, IN, BR, VN";

    /// A supported region from its ISO 3166-1 alpha-2 code, in any case: one
    /// of the hand-written plans, else any region libphonenumber knows.
    /// `UK` is read as `GB`: it is reserved by ISO for that purpose and people write it.
    pub fn parse(iso: &str) -> Option<Region> {
        let iso = iso.trim();
        let iso = if iso.eq_ignore_ascii_case("UK") {
            "GB"
        } else {
            iso
        };
        match PLANS.iter().position(|p| p.iso.eq_ignore_ascii_case(iso)) {
            Some(index) => u8::try_from(index).ok().map(|i| Region(Kind::Plan(i))),
            None => Self::fallback(iso),
        }
    }

    /// A region of libphonenumber's metadata. Two letters only: its `001`
    /// (non-geographic codes such as +800) is no region a pipeline can be in.
    fn fallback(iso: &str) -> Option<Region> {
        let &[a, b] = iso.as_bytes() else {
            return None;
        };
        if !(a.is_ascii_alphabetic() && b.is_ascii_alphabetic()) {
            return None;
        }
        let upper = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
        let meta = DATABASE.by_id(std::str::from_utf8(&upper).ok()?)?;
        let id = meta.id().parse::<Id>().ok()?;
        Some(Region(Kind::Fallback {
            id,
            iso: meta.id(),
            calling_code: meta.country_code(),
        }))
    }

    /// The ISO codes of all supported regions, sorted: the hand-written plans
    /// and every other region libphonenumber knows.
    pub fn supported() -> Vec<&'static str> {
        let fallback = DATABASE
            .iter()
            .map(|m| m.id())
            .filter(|iso| matches!(Self::fallback(iso), Some(r) if r.iso() == *iso));
        let mut all: Vec<&'static str> = PLANS.iter().map(|p| p.iso).chain(fallback).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The region's ISO 3166-1 alpha-2 code.
    pub fn iso(self) -> &'static str {
        match self.0 {
            Kind::Plan(_) => self.plan().map_or("", |p| p.iso),
            Kind::Fallback { iso, .. } => iso,
        }
    }

    /// Whether national numbers of this region are read by a hand-written plan.
    pub fn is_fast_path(self) -> bool {
        matches!(self.0, Kind::Plan(_))
    }

    fn plan(self) -> Option<&'static Plan> {
        match self.0 {
            // A Plan is only built by `parse` from a position in PLANS.
            Kind::Plan(index) => PLANS.get(usize::from(index)),
            Kind::Fallback { .. } => None,
        }
    }
}

/// The E.164 form of `raw`, national numbers read in `region`; `None` when
/// `raw` is not a phone number of a valid shape.
pub fn to_e164(raw: &str, region: Region) -> Option<String> {
    let mut buf = [0u8; MAX_INPUT_DIGITS];
    let (len, plus) = scan(raw.trim(), &mut buf)?;
    let digits = &buf[..len];
    if plus {
        return international(digits);
    }
    let plan = match region.0 {
        Kind::Plan(_) => region.plan()?,
        Kind::Fallback {
            id, calling_code, ..
        } => return fallback_national(digits, id, calling_code),
    };
    for prefix in plan.international_prefixes {
        if let Some(rest) = digits.strip_prefix(prefix.as_bytes()) {
            // Country codes never start with 0: `0000000000` in the US is a
            // national number of zeros, not `00` and a code.
            if rest.first().is_some_and(|&d| d != b'0') {
                return international(rest);
            }
        }
    }
    national(digits, plan)
}

/// Collects the digits of the number part into `buf`, and whether it started
/// with `+`. Refuses letters (vanity numbers), stray symbols and a `+` after
/// the first digit; stops at an extension marker.
fn scan(s: &str, buf: &mut [u8; MAX_INPUT_DIGITS]) -> Option<(usize, bool)> {
    let mut len = 0;
    let mut plus = false;
    for (i, c) in s.char_indices() {
        match c {
            '0'..='9' => {
                *buf.get_mut(len)? = c as u8;
                len += 1;
            }
            '+' if len == 0 && !plus => plus = true,
            ' ' | '.' | '-' | '(' | ')' | '/' => {}
            // Non-breaking spaces and typographic dashes come with copy-paste.
            c if c.is_whitespace() || matches!(c, '\u{2010}'..='\u{2015}' | '\u{2212}') => {}
            _ => {
                // `i` comes from char_indices, so the slice is on a boundary.
                return (len > 0 && is_extension(&s[i..])).then_some((len, plus));
            }
        }
    }
    Some((len, plus))
}

/// Whether `rest` is an extension: a marker (`extension`, `ext`, `x`, `#`,
/// or `;ext` as in RFC 3966; any case; optionally followed by `.`, `:` or
/// `=`), then digits only.
fn is_extension(rest: &str) -> bool {
    let b = rest.as_bytes();
    let markers: [&[u8]; 5] = [b"extension", b"ext", b";ext", b"x", b"#"];
    let Some(marker) = markers
        .into_iter()
        .find(|m| b.len() >= m.len() && b[..m.len()].eq_ignore_ascii_case(m))
    else {
        return false;
    };
    let mut tail = &b[marker.len()..];
    if let [b'.' | b':' | b'=', after @ ..] = tail {
        tail = after;
    }
    let tail = tail.trim_ascii_start();
    !tail.is_empty() && tail.iter().all(u8::is_ascii_digit)
}

/// Digits that start with a country calling code.
fn international(digits: &[u8]) -> Option<String> {
    match PLANS
        .iter()
        .find(|p| digits.starts_with(p.calling_code.as_bytes()))
    {
        Some(plan) => {
            let nsn = without_stray_trunk(&digits[plan.calling_code.len()..], plan)?;
            fits(nsn, plan).then(|| e164(plan.calling_code, nsn))
        }
        // A country outside the table: only the E.164 bounds can be checked.
        // Calling codes are prefix-free, so no table entry can shadow it.
        None => {
            let valid = digits.first().is_some_and(|&d| d != b'0')
                && (E164_MIN_DIGITS..=E164_MAX_DIGITS).contains(&digits.len());
            valid.then(|| e164("", digits))
        }
    }
}

/// A national number of `plan`'s region, in the reading order of the module doc.
fn national(digits: &[u8], plan: &Plan) -> Option<String> {
    let trunk = plan.trunk_prefix.as_bytes();
    if !trunk.is_empty() {
        if let Some(nsn) = digits.strip_prefix(trunk) {
            // `0044...` in Japan is not `0` and `044...`: where 0 is the
            // trunk prefix no national significant number starts with it,
            // and `+81044...` would not read back as itself.
            let zero_after_zero_trunk = trunk == b"0" && nsn.first() == Some(&b'0');
            if fits(nsn, plan) && !zero_after_zero_trunk {
                return Some(e164(plan.calling_code, nsn));
            }
        }
    }
    // Where 0 is the trunk prefix no national significant number starts with
    // it, so a leading 0 that could not be removed above means a bad length.
    let starts_with_zero_trunk = trunk == b"0" && digits.first() == Some(&b'0');
    if fits(digits, plan) && !starts_with_zero_trunk {
        return Some(e164(plan.calling_code, digits));
    }
    let rest = digits.strip_prefix(plan.calling_code.as_bytes())?;
    let nsn = without_stray_trunk(rest, plan)?;
    fits(nsn, plan).then(|| e164(plan.calling_code, nsn))
}

/// `+44 (0)20 7946 0958` and `+44 020...`: the trunk 0 written after the
/// country code is not dialled and not part of the number (except in plans
/// without a trunk prefix, such as Italy's, where the 0 belongs to the number).
/// `None` when a 0 still leads after that: where 0 is the trunk prefix no
/// national significant number starts with it (as in `national`), and
/// `+91 00...` read as `+91 0...` would not read back as itself.
fn without_stray_trunk<'d>(nsn: &'d [u8], plan: &Plan) -> Option<&'d [u8]> {
    match nsn {
        [b'0', rest @ ..] if plan.trunk_prefix == "0" => {
            (rest.first() != Some(&b'0')).then_some(rest)
        }
        _ => Some(nsn),
    }
}

fn fits(nsn: &[u8], plan: &Plan) -> bool {
    let total = plan.calling_code.len() + nsn.len();
    (usize::from(plan.min_len)..=usize::from(plan.max_len)).contains(&nsn.len())
        && (E164_MIN_DIGITS..=E164_MAX_DIGITS).contains(&total)
}

fn e164(calling_code: &str, nsn: &[u8]) -> String {
    let mut out = String::with_capacity(1 + calling_code.len() + nsn.len());
    out.push('+');
    out.push_str(calling_code);
    out.extend(nsn.iter().map(|&d| char::from(d)));
    out
}

/// A number without `+` in a region outside `PLANS`, read with
/// libphonenumber's metadata for that region.
///
/// The crate is given the digits `scan` kept, nothing else: letters (which it
/// would turn into digits, vanity style), extensions and stray symbols were
/// already refused or dropped exactly as on the fast path.
///
/// 1. The region's international prefix (a regex of the metadata: `00`,
///    `810`, carrier codes...) followed by a digit other than 0 means a
///    country code follows: the rest is read by `international`, as if
///    written with `+`, so that it reads the same in every region.
/// 2. Otherwise the number is national, and `phonenumber::parse` reads it
///    (trunk prefix, carrier selection codes, the country code written
///    without `+`).
///
/// The check is libphonenumber's validity (the number falls in a range of the
/// region's plan), not only its "possible length", although the fast path
/// checks shape alone: the crate decides how to read a number without the
/// length checks Google's parser makes (it takes the lengths from a general
/// description its metadata leaves empty), so it can misread one. It strips
/// a trunk prefix twice (`8 801 123 4567` in Belarus becomes
/// `+375 011234567`, its open issue #76) and strips the country code from any
/// national number that starts with it (`250 123 456` in Rwanda becomes
/// `+250 123456`); such misreadings mostly have a possible length, and only
/// the validity check catches them. A
/// number refused here is dead-lettered with a reason and can be replayed; a
/// misread one would silently link the wrong people. The cost: a number in a
/// range allocated after the crate's metadata (9.0.33) is refused until the
/// crate is updated.
///
/// The crate's reading is refused too when its national significant number
/// is not the tail of the digits written: libphonenumber completes some local
/// numbers with their area code (`464 1234` in Antigua becomes
/// `+1 268 464 1234`), and this module never invents digits.
fn fallback_national(digits: &[u8], id: Id, region_code: u16) -> Option<String> {
    let written = std::str::from_utf8(digits).ok()?;
    let meta = DATABASE.by_id(id.as_ref())?;
    if let Some(idd) = meta.international_prefix().and_then(|re| re.find(written)) {
        let rest = digits.get(idd.end()..).unwrap_or_default();
        // As on the fast path: country codes never start with 0.
        if idd.start() == 0 && rest.first().is_some_and(|&d| d != b'0') {
            return international(rest);
        }
    }
    // The crate has panicked on odd input before (its issues #32, #43), and a
    // panic here is fatal whatever this code does: the runner's panic hook
    // exits at once, and the replay after the restart would meet the same
    // value. So the crate only ever sees ASCII digits, on which the unwraps of
    // its parser and validity check cannot fail (0.3.10, read for this: slices
    // at regex match bounds, a country code read from at least three digits,
    // look-ups of ids its own metadata lists, transform rules whose groups
    // match together), and `fallback_results_are_e164_on_arbitrary_digits`
    // drives it over random digit strings in every region. Rerun it, and read
    // the parser again, when the crate is upgraded.
    let number = phonenumber::parse(Some(id), written).ok()?;
    let valid = phonenumber::is_valid(&number);
    let code = number.code().value();
    let nsn = number.national().to_string();
    if code != region_code || !valid || !written.ends_with(nsn.as_str()) {
        return None;
    }
    let mut e164_digits = code.to_string();
    e164_digits.push_str(&nsn);
    // A region sharing its calling code with a hand-written plan (Jersey and
    // +44, Antigua and +1): the plan's bounds apply too, so that the result
    // reads back as itself in every region.
    international(e164_digits.as_bytes())
}
