use super::phone::{to_e164, PLANS};
use super::*;
use kith_api::pipeline::RegexReplace;

fn region(iso: &str) -> Region {
    Region::parse(iso).expect("supported region")
}

fn e164(raw: &str, iso: &str) -> Option<String> {
    to_e164(raw, region(iso))
}

// ---------------------------------------------------------------- phones

#[test]
fn us_formatting_variants_all_become_the_same_number() {
    for raw in [
        "+1 (415) 555-0100",
        "415-555-0100",
        "4155550100",
        "1 415 555 0100",
        "001 415 555 0100",
        "011 1 415 555 0100",
        "(415) 555-0100",
        "415.555.0100",
        "415/555 0100",
        "  +1 415 555 0100  ",
        "+1\u{a0}415\u{2011}555\u{2011}0100",
    ] {
        assert_eq!(e164(raw, "US").as_deref(), Some("+14155550100"), "{raw:?}");
    }
}

#[test]
fn a_number_with_its_country_code_reads_the_same_in_every_region() {
    for iso in Region::supported() {
        assert_eq!(
            e164("+1 415 555 0100", iso).as_deref(),
            Some("+14155550100"),
            "{iso}"
        );
        assert_eq!(
            e164("+44 20 7946 0958", iso).as_deref(),
            Some("+442079460958"),
            "{iso}"
        );
    }
}

#[test]
fn national_numbers_lose_their_trunk_prefix_and_gain_the_calling_code() {
    let cases = [
        ("020 7946 0958", "GB", "+442079460958"),
        ("07700 900123", "GB", "+447700900123"),
        ("01 23 45 67 89", "FR", "+33123456789"),
        ("030 1234567", "DE", "+49301234567"),
        ("8 (912) 345-67-89", "RU", "+79123456789"),
        ("8 701 123 4567", "KZ", "+77011234567"),
        ("(02) 9876 5432", "AU", "+61298765432"),
        ("090-1234-5678", "JP", "+819012345678"),
        ("010-1234-5678", "KR", "+821012345678"),
        ("098765 43210", "IN", "+919876543210"),
        ("612 345 678", "ES", "+34612345678"),
        ("9123 4567", "SG", "+6591234567"),
        ("55 1234 5678", "MX", "+525512345678"),
        ("082 123 4567", "ZA", "+27821234567"),
    ];
    for (raw, iso, want) in cases {
        assert_eq!(e164(raw, iso).as_deref(), Some(want), "{raw:?} in {iso}");
    }
}

#[test]
fn italy_keeps_its_leading_zero() {
    assert_eq!(e164("06 1234 5678", "IT").as_deref(), Some("+390612345678"));
    assert_eq!(
        e164("+39 06 1234 5678", "US").as_deref(),
        Some("+390612345678")
    );
    assert_eq!(
        e164("0039 06 1234 5678", "IT").as_deref(),
        Some("+390612345678")
    );
    assert_eq!(e164("347 123 4567", "IT").as_deref(), Some("+393471234567"));
}

#[test]
fn a_trunk_zero_written_after_the_country_code_is_dropped() {
    assert_eq!(
        e164("+44 (0)20 7946 0958", "US").as_deref(),
        Some("+442079460958")
    );
    assert_eq!(
        e164("+44 020 7946 0958", "US").as_deref(),
        Some("+442079460958")
    );
    assert_eq!(
        e164("0044 (0)20 7946 0958", "FR").as_deref(),
        Some("+442079460958")
    );
}

#[test]
fn a_second_zero_after_a_zero_trunk_prefix_is_not_a_number() {
    // Found by the phone fuzz target: read as `0` + `044445800` it gave
    // `+81044445800`, which does not read back as itself.
    assert_eq!(e164("0044445800", "JP"), None);
    for iso in ["US", "GB", "DE", "IN", "BR", "JP"] {
        if let Some(first) = e164("0044445800", iso) {
            assert_eq!(e164(&first, iso), Some(first.clone()), "{iso}");
        }
    }
}

#[test]
fn regional_international_prefixes() {
    assert_eq!(
        e164("0011 44 20 7946 0958", "AU").as_deref(),
        Some("+442079460958")
    );
    assert_eq!(
        e164("010 1 415 555 0100", "JP").as_deref(),
        Some("+14155550100")
    );
    assert_eq!(
        e164("810 44 20 7946 0958", "RU").as_deref(),
        Some("+442079460958")
    );
    assert_eq!(
        e164("001 1 415 555 0100", "KR").as_deref(),
        Some("+14155550100")
    );
}

#[test]
fn a_national_number_written_with_its_country_code_but_no_plus() {
    assert_eq!(
        e164("44 20 7946 0958", "GB").as_deref(),
        Some("+442079460958")
    );
    assert_eq!(
        e164("33 1 23 45 67 89", "FR").as_deref(),
        Some("+33123456789")
    );
}

#[test]
fn countries_outside_the_table_are_checked_against_e164_bounds_only() {
    assert_eq!(
        e164("+380 44 123 4567", "US").as_deref(),
        Some("+380441234567")
    );
    assert_eq!(
        e164("00 380 44 123 4567", "DE").as_deref(),
        Some("+380441234567")
    );
    assert_eq!(e164("+290 1234", "US").as_deref(), Some("+2901234"));
    assert_eq!(e164("+290 123", "US"), None, "6 digits");
    assert_eq!(e164("+380 1234 5678 9012 3", "US"), None, "16 digits");
}

#[test]
fn a_zero_after_a_stray_trunk_zero_is_refused() {
    // Read as `+91 0133...`, a number that no longer reads as itself: where
    // 0 is the trunk prefix no national significant number starts with it.
    assert_eq!(e164("+91 00133 793634", "US"), None);
    assert_eq!(e164("0044 00 20 7946 0958", "FR"), None);
    assert_eq!(e164("44 00 20 7946 0958", "GB"), None);
    // Italy has no trunk prefix: its 0 belongs to the number.
    assert_eq!(
        e164("+39 06 1234 5678", "US").as_deref(),
        Some("+390612345678")
    );
}

#[test]
fn extensions_are_dropped() {
    for raw in [
        "415-555-0100 ext 12",
        "415-555-0100 ext. 12",
        "415-555-0100 EXT:12",
        "415-555-0100 extension 12",
        "415-555-0100 x12",
        "415-555-0100 X 12",
        "415-555-0100#12",
        "415-555-0100 # 12",
        "+1-415-555-0100;ext=12",
    ] {
        assert_eq!(e164(raw, "US").as_deref(), Some("+14155550100"), "{raw:?}");
    }
}

#[test]
fn letters_and_stray_symbols_are_refused() {
    for raw in [
        "1-800-FLOWERS",
        "1-800-XRAYS00",
        "415-555-0100 ext",
        "415-555-0100 x12a",
        "415-555-0100 (mobile)",
        "tel:+14155550100",
        "415*555*0100",
        "+1 415 555 +0100",
        "++1 415 555 0100",
        "#12",
        "٤١٥٥٥٥٠١٠٠",
    ] {
        assert_eq!(e164(raw, "US"), None, "{raw:?}");
    }
}

#[test]
fn lengths_are_checked() {
    assert_eq!(e164("555-0100", "US"), None, "no area code");
    assert_eq!(
        e164("415 555 01000", "US"),
        None,
        "11 digits not starting with 1"
    );
    assert_eq!(e164("+1 415 555 010", "US"), None, "short NANP number");
    assert_eq!(e164("020 7946 09581234", "GB"), None);
    assert_eq!(e164("01 23 45 67 8", "FR"), None);
    assert_eq!(
        e164("012345678", "FR"),
        None,
        "a leading trunk 0 with a bad length"
    );
    assert_eq!(e164("+44 20", "US"), None);
    assert_eq!(
        e164("+0 415 555 0100", "US"),
        None,
        "country codes never start with 0"
    );
    assert_eq!(e164(&"9".repeat(40), "US"), None);
    assert_eq!(e164("", "US"), None);
    assert_eq!(e164("   ", "US"), None);
    assert_eq!(e164("+", "US"), None);
    assert_eq!(e164("-- ()", "US"), None);
}

#[test]
fn repeated_digits_are_a_valid_shape_junk_is_the_blocklists_job() {
    assert_eq!(e164("0000000000", "US").as_deref(), Some("+10000000000"));
    assert_eq!(
        e164("(000) 000-0000", "CA").as_deref(),
        Some("+10000000000")
    );
    assert_eq!(e164("1111111111", "DE").as_deref(), Some("+491111111111"));
}

#[test]
fn regions_parse_case_insensitively() {
    assert_eq!(Region::parse("us"), Region::parse("US"));
    assert_eq!(Region::parse(" gb "), Region::parse("GB"));
    assert_eq!(Region::parse("UK"), Region::parse("GB"));
    assert_eq!(region("it").iso(), "IT");
    assert_ne!(Region::parse("US"), Region::parse("CA"));
    for bad in ["", "U", "USA", "XX", "ÜS", "1"] {
        assert_eq!(Region::parse(bad), None, "{bad:?}");
    }
    let supported = Region::supported();
    assert!(supported.len() >= 40, "{supported:?}");
    for iso in &supported {
        assert_eq!(region(iso).iso(), *iso);
    }
}

#[test]
fn the_numbering_table_is_consistent() {
    for (i, p) in PLANS.iter().enumerate() {
        let ok_iso = p.iso.len() == 2 && p.iso.bytes().all(|b| b.is_ascii_uppercase());
        assert!(ok_iso, "{p:?}");
        assert!(
            PLANS[..i].iter().all(|q| q.iso != p.iso),
            "{} listed twice",
            p.iso
        );
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        assert!(
            !p.calling_code.is_empty() && digits(p.calling_code),
            "{p:?}"
        );
        assert!(!p.calling_code.starts_with('0'), "{p:?}");
        assert!(digits(p.trunk_prefix), "{p:?}");
        assert!(!p.international_prefixes.is_empty(), "{p:?}");
        for prefix in p.international_prefixes {
            assert!(!prefix.is_empty() && digits(prefix), "{p:?}");
        }
        assert!(p.min_len <= p.max_len, "{p:?}");
        let cc = p.calling_code.len();
        assert!(cc + usize::from(p.max_len) <= 15, "{p:?} exceeds E.164");
        assert!(
            cc + usize::from(p.min_len) >= 7,
            "{p:?} below the E.164 minimum"
        );
        for q in &PLANS[..i] {
            if q.calling_code == p.calling_code {
                // The international reading takes the first plan of a code.
                assert_eq!(
                    (q.min_len, q.max_len, q.trunk_prefix),
                    (p.min_len, p.max_len, p.trunk_prefix)
                );
            } else {
                // ITU calling codes are prefix-free; the lookup relies on it.
                assert!(!q.calling_code.starts_with(p.calling_code), "{q:?} / {p:?}");
                assert!(!p.calling_code.starts_with(q.calling_code), "{q:?} / {p:?}");
            }
        }
    }
}

// ---------------------------------------------------------------- normalizer

fn normalizer(preset: NormalizePreset, rules: &[NormalizeRule]) -> Normalizer {
    Normalizer::compile(preset, rules).expect("valid rules")
}

fn us() -> Region {
    region("US")
}

#[test]
fn email_is_trimmed_and_lower_cased() {
    let n = normalizer(NormalizePreset::Email, &[]);
    assert_eq!(
        n.apply(" Ann.Lee@Example.com", us()).unwrap(),
        "ann.lee@example.com"
    );
    assert_eq!(
        n.apply("ANN.LEE@EXAMPLE.COM\t\n", us()).unwrap(),
        "ann.lee@example.com"
    );
    assert_eq!(n.apply("Ünal@Example.de", us()).unwrap(), "ünal@example.de");
}

#[test]
fn email_needs_one_at_sign_with_text_on_both_sides() {
    let n = normalizer(NormalizePreset::Email, &[]);
    assert_eq!(n.apply("   ", us()), Err(NormalizeError::Empty));
    for bad in ["ann.lee", "@example.com", "ann@", "a@b@c"] {
        assert_eq!(
            n.apply(bad, us()),
            Err(NormalizeError::NotAnEmail),
            "{bad:?}"
        );
    }
}

#[test]
fn phone_preset_uses_the_region() {
    let n = normalizer(NormalizePreset::Phone, &[]);
    assert_eq!(n.apply("(415) 555-0100", us()).unwrap(), "+14155550100");
    assert_eq!(
        n.apply("020 7946 0958", region("GB")).unwrap(),
        "+442079460958"
    );
    assert_eq!(n.apply("call me", us()), Err(NormalizeError::NotAPhone));
}

#[test]
fn other_presets() {
    let lower = normalizer(NormalizePreset::Lowercase, &[]);
    assert_eq!(lower.apply("  D-9F2A ", us()).unwrap(), "d-9f2a");
    assert_eq!(lower.apply("ÄBC", us()).unwrap(), "äbc");
    let trim = normalizer(NormalizePreset::Trim, &[]);
    assert_eq!(trim.apply("  C-50017 ", us()).unwrap(), "C-50017");
    let none = normalizer(NormalizePreset::None, &[]);
    assert_eq!(none.apply("  C-50017 ", us()).unwrap(), "  C-50017 ");
    assert_eq!(trim.apply(" \t ", us()), Err(NormalizeError::Empty));
    assert_eq!(none.apply("", us()), Err(NormalizeError::Empty));
}

#[test]
fn rules_apply_in_order_after_the_preset() {
    let rules = [
        NormalizeRule::StripPrefix("L-".into()),
        NormalizeRule::RegexReplace(RegexReplace {
            pattern: r"\s+".into(),
            replacement: String::new(),
        }),
        NormalizeRule::DigitsOnly,
    ];
    let n = normalizer(NormalizePreset::Trim, &rules);
    assert_eq!(n.apply("  L-12 34a5 ", us()).unwrap(), "12345");
    // Trim ran first, so the prefix is at the start; without it nothing is stripped.
    assert_eq!(n.apply("X-12", us()).unwrap(), "12");

    // The same rules in another order give another result: order is the contract.
    let reordered = [
        NormalizeRule::DigitsOnly,
        NormalizeRule::StripPrefix("1".into()),
    ];
    let n = normalizer(NormalizePreset::None, &reordered);
    assert_eq!(n.apply("L-12", us()).unwrap(), "2");
}

#[test]
fn regex_replace_refers_to_groups_and_case_rules_apply() {
    let rules = [
        NormalizeRule::RegexReplace(RegexReplace {
            pattern: r"^(\w+)\+[^@]*@".into(),
            replacement: "$1@".into(),
        }),
        NormalizeRule::Uppercase,
        NormalizeRule::Lowercase,
        NormalizeRule::Trim,
    ];
    let n = normalizer(NormalizePreset::Email, &rules);
    assert_eq!(
        n.apply(" Ann+Shop@Example.com", us()).unwrap(),
        "ann@example.com"
    );
    let up = normalizer(NormalizePreset::None, &[NormalizeRule::Uppercase]);
    assert_eq!(up.apply("ab-1", us()).unwrap(), "AB-1");
}

#[test]
fn an_empty_result_after_rules_is_an_error() {
    let n = normalizer(NormalizePreset::Trim, &[NormalizeRule::DigitsOnly]);
    assert_eq!(n.apply("abc", us()), Err(NormalizeError::Empty));
    let n = normalizer(
        NormalizePreset::Trim,
        &[NormalizeRule::StripPrefix("L-".into())],
    );
    assert_eq!(n.apply("L-", us()), Err(NormalizeError::Empty));
}

#[test]
fn a_bad_regex_is_a_compile_error_naming_the_pattern() {
    let rules = [NormalizeRule::RegexReplace(RegexReplace {
        pattern: "(".into(),
        replacement: String::new(),
    })];
    let err = Normalizer::compile(NormalizePreset::Trim, &rules).unwrap_err();
    assert_eq!(err, NormalizeError::BadRegex("(".into()));
    assert!(err.to_string().contains("regexReplace"), "{err}");
}

#[test]
fn error_messages_never_quote_the_value() {
    let phone = normalizer(NormalizePreset::Phone, &[]);
    let email = normalizer(NormalizePreset::Email, &[]);
    let errors = [
        phone.apply("1-800-SECRET", us()).unwrap_err(),
        email.apply("secret", us()).unwrap_err(),
    ];
    for e in errors {
        assert!(!e.to_string().to_lowercase().contains("secret"), "{e}");
    }
}

// ---------------------------------------------------------------- libphonenumber

/// One of libphonenumber's example numbers, in the forms people write it.
struct Example {
    iso: &'static str,
    kind: &'static str,
    /// `+`, calling code, example national significant number: what the
    /// metadata says the number is.
    e164: String,
    /// Formatted by the crate from its own reading of `e164`, when that
    /// reading is right (see `crate_misreads_its_own_examples`).
    national: Option<String>,
    international: String,
}

/// libphonenumber's example numbers of every type for a region.
fn examples(iso: &'static str) -> Vec<Example> {
    use phonenumber::{country::Id, metadata::DATABASE, Mode};
    let id: Id = iso.parse().expect("an id of the crate");
    let meta = DATABASE.by_id(iso).expect("metadata for the region");
    let d = meta.descriptors();
    let types = [
        ("fixed line", d.fixed_line()),
        ("mobile", d.mobile()),
        ("toll free", d.toll_free()),
        ("premium rate", d.premium_rate()),
        ("shared cost", d.shared_cost()),
        ("personal", d.personal_number()),
        ("voip", d.voip()),
        ("pager", d.pager()),
        ("uan", d.uan()),
        ("voicemail", d.voicemail()),
    ];
    let mut out = Vec::new();
    for (kind, desc) in types {
        let Some(nsn) = desc.and_then(|d| d.example()) else {
            continue;
        };
        let code = meta.country_code();
        let e164 = format!("+{code}{nsn}");
        let read = phonenumber::parse(Some(id), &e164).expect("the crate reads its own example");
        let (national, international) = if read.format().mode(Mode::E164).to_string() == e164 {
            (
                Some(read.format().mode(Mode::National).to_string()),
                read.format().mode(Mode::International).to_string(),
            )
        } else {
            (None, format!("+{code} {nsn}"))
        };
        out.push(Example {
            iso,
            kind,
            e164,
            national,
            international,
        });
    }
    out
}

fn is_subscriber(kind: &str) -> bool {
    matches!(kind, "fixed line" | "mobile")
}

#[test]
fn crate_misreads_its_own_examples() {
    // The crate strips a trunk prefix that the national significant number
    // starts with (its open issue #76): `+7 800 123 4567` becomes
    // `+7 001234567`. The fast path reads these right (checked below), and
    // the fallback never hands the crate a number written with `+`.
    let misread: Vec<String> = PLANS
        .iter()
        .flat_map(|p| examples(p.iso))
        .filter(|e| e.national.is_none())
        .map(|e| format!("{} {}", e.iso, e.kind))
        .collect();
    let want = [
        "RU toll free",
        "RU premium rate",
        "RU personal",
        "KZ toll free",
        "KZ premium rate",
        "KZ personal",
    ];
    assert_eq!(misread, want);
}

/// The example numbers the fast path refuses in both forms, national and
/// international: service numbers (toll free, premium rate, shared cost, UAN,
/// voicemail, pager, VoIP) whose national significant number is shorter or
/// longer than the plan's bounds, which were written for subscribers' numbers
/// (`0800 1234` in NL has 7 digits where the plan has 9; `1800 123 456` in
/// AU, 10 where it has 9). The test checks that reason for each, and that
/// the fast path never gives another number. Widening a plan for them is a
/// decision of its own: wider bounds admit mistyped subscriber numbers too.
const SERVICE_NUMBERS_OUTSIDE_THE_PLANS: &[(&str, &str)] = &[
    ("CA", "uan"),
    ("IE", "toll free"),
    ("IE", "premium rate"),
    ("IE", "shared cost"),
    ("IE", "voicemail"),
    ("NL", "toll free"),
    ("NL", "premium rate"),
    ("NL", "uan"),
    ("CH", "voicemail"),
    ("SE", "voicemail"),
    ("NO", "uan"),
    ("CZ", "voicemail"),
    ("TR", "uan"),
    ("IL", "toll free"),
    ("IL", "premium rate"),
    ("IL", "shared cost"),
    ("IL", "uan"),
    ("IL", "voicemail"),
    ("SA", "toll free"),
    ("IN", "premium rate"),
    ("IN", "shared cost"),
    ("PK", "toll free"),
    ("PK", "premium rate"),
    ("PK", "uan"),
    ("CN", "premium rate"),
    ("SG", "toll free"),
    ("SG", "premium rate"),
    ("SG", "uan"),
    ("HK", "toll free"),
    ("HK", "premium rate"),
    ("TW", "voip"),
    ("AU", "toll free"),
    ("AU", "premium rate"),
    ("AU", "shared cost"),
    ("AU", "pager"),
    ("BR", "toll free"),
    ("BR", "premium rate"),
    ("BR", "shared cost"),
    ("CO", "toll free"),
    ("CO", "premium rate"),
    ("CL", "shared cost"),
    ("NG", "toll free"),
];

#[test]
fn the_fast_path_agrees_with_libphonenumber_on_its_example_numbers() {
    let mut refused = Vec::new();
    for p in PLANS.iter() {
        for ex in examples(p.iso) {
            let forms = [
                ("national", ex.national.as_deref()),
                ("international", Some(ex.international.as_str())),
            ];
            for (form, written) in forms {
                let Some(written) = written else { continue };
                match e164(written, p.iso) {
                    Some(got) => {
                        assert_eq!(
                            got, ex.e164,
                            "{} {} {form} {written:?}: another number",
                            ex.iso, ex.kind
                        );
                        assert_eq!(e164(&got, "VN").as_deref(), Some(got.as_str()));
                    }
                    None => refused.push((ex.iso, ex.kind, form, ex.e164.clone())),
                }
            }
        }
    }

    // Argentina's mobile numbers in national form, `011 15-2345-6789`: the
    // `15` dialled before a mobile number inside the country becomes a `9`
    // after the country code (`+54 9 11 2345-6789`, which the fast path reads
    // right). Rewriting digits is what the fast path never does.
    let argentina = ("AR", "mobile", "national");
    let mut listed = vec![argentina];
    for &(iso, kind) in SERVICE_NUMBERS_OUTSIDE_THE_PLANS {
        listed.extend([(iso, kind, "national"), (iso, kind, "international")]);
    }
    let mut now: Vec<_> = refused.iter().map(|r| (r.0, r.1, r.2)).collect();
    now.sort_unstable();
    listed.sort_unstable();
    assert_eq!(now, listed, "the fast path's refusals changed");

    for (iso, kind, form, e164) in &refused {
        if (*iso, *kind, *form) == argentina {
            continue;
        }
        assert!(!is_subscriber(kind), "{iso} {kind}");
        let plan = PLANS.iter().find(|p| p.iso == *iso).expect("a plan");
        let nsn = e164.len() - 1 - plan.calling_code.len();
        let bounds = usize::from(plan.min_len)..=usize::from(plan.max_len);
        assert!(!bounds.contains(&nsn), "{iso} {kind} {e164}: {nsn} digits");
    }
}

/// The example numbers of regions outside the fast path that are refused,
/// (region, type, form), each for a reason:
/// - Cocos and Christmas Islands share +61 with Australia, Svalbard +47 with
///   Norway: their numbers pass the plan's bounds too (so that they read back
///   as themselves in every region), and these service numbers are outside
///   them, as in Australia and Norway;
/// - Iran's 4-digit UAN `9601` is 6 digits with its country code, below the
///   E.164 minimum of 7 (a fragment, not a number, to this module);
/// - Rwanda's fixed-line `250 123 456` starts with Rwanda's calling code 250:
///   the crate strips it as if the number were written with its code, and the
///   validity check refuses what remains (see `fallback_national`).
const FALLBACK_REFUSES: &[(&str, &str, &str)] = &[
    ("CC", "toll free", "national"),
    ("CC", "toll free", "international"),
    ("CC", "premium rate", "national"),
    ("CC", "premium rate", "international"),
    ("CC", "shared cost", "national"),
    ("CC", "shared cost", "international"),
    ("CX", "toll free", "national"),
    ("CX", "toll free", "international"),
    ("CX", "premium rate", "national"),
    ("CX", "premium rate", "international"),
    ("CX", "shared cost", "national"),
    ("CX", "shared cost", "international"),
    ("IR", "uan", "national"),
    ("IR", "uan", "international"),
    ("RW", "fixed line", "national"),
    ("SJ", "uan", "national"),
    ("SJ", "uan", "international"),
];

fn fallback_regions() -> Vec<&'static str> {
    Region::supported()
        .into_iter()
        .filter(|iso| !region(iso).is_fast_path())
        .collect()
}

#[test]
fn fallback_regions_read_libphonenumbers_example_numbers() {
    let regions = fallback_regions();
    assert!(regions.len() > 180, "{}", regions.len());
    let mut refused = Vec::new();
    let mut misread = Vec::new();
    for iso in regions {
        for ex in examples(iso) {
            if ex.national.is_none() {
                misread.push((ex.iso, ex.kind));
            }
            let forms = [
                ("national", ex.national.as_deref()),
                ("international", Some(ex.international.as_str())),
            ];
            for (form, written) in forms {
                let Some(written) = written else { continue };
                let Some(got) = e164(written, iso) else {
                    refused.push((ex.iso, ex.kind, form));
                    continue;
                };
                assert_eq!(got, ex.e164, "{iso} {} {form} {written:?}", ex.kind);
                // The result reads back as itself, whatever the region.
                for other in [iso, "US", "DE"] {
                    assert_eq!(e164(&got, other).as_deref(), Some(got.as_str()), "{other}");
                }
            }
        }
    }
    assert_eq!(refused, FALLBACK_REFUSES);
    // The crate's issue #76 again (see `crate_misreads_its_own_examples`):
    // these are tested in international form only, which the fast path reads.
    let want = [
        ("BY", "toll free"),
        ("LT", "toll free"),
        ("LT", "shared cost"),
        ("LT", "voip"),
    ];
    assert_eq!(misread, want);
}

#[test]
fn fallback_regions_read_national_numbers() {
    let cases = [
        ("0912 345 678", "VN", "+84912345678"),
        ("024 3825 3214", "VN", "+842438253214"),
        ("912 345 678", "PE", "+51912345678"),
        ("(01) 234 5678", "PE", "+5112345678"),
        ("044 123 4567", "UA", "+380441234567"),
        ("050-123-45-67", "UA", "+380501234567"),
        ("01712-345678", "BD", "+8801712345678"),
        ("0612-345678", "MA", "+212612345678"),
        ("0522-123456", "MA", "+212522123456"),
        ("071 234 5678", "LK", "+94712345678"),
        ("0917 123 4567", "PH", "+639171234567"),
        ("0812-3456-7890", "ID", "+6281234567890"),
        ("081 234 5678", "TH", "+66812345678"),
        ("024 123 4567", "GH", "+233241234567"),
        ("8 029 491-19-11", "BY", "+375294911911"),
        // The country code written without `+`.
        ("380 44 123 4567", "UA", "+380441234567"),
        // Regions sharing a calling code with a hand-written plan.
        ("01534 456789", "JE", "+441534456789"),
        ("(268) 464-1234", "AG", "+12684641234"),
        ("1 268 464 1234", "AG", "+12684641234"),
        // Formatting and extensions as on the fast path.
        ("0912.345.678 ext 12", "VN", "+84912345678"),
        ("\u{a0}044\u{2011}123\u{2011}4567 ", "UA", "+380441234567"),
    ];
    for (raw, iso, want) in cases {
        assert_eq!(e164(raw, iso).as_deref(), Some(want), "{raw:?} in {iso}");
    }
}

#[test]
fn fallback_regions_read_international_prefixes_like_plus() {
    let cases = [
        ("00 44 20 7946 0958", "UA", "+442079460958"),
        ("00 1 415 555 0100", "VN", "+14155550100"),
        ("011 44 20 7946 0958", "AG", "+442079460958"),
        // Thailand's carrier prefixes 001-009, a regex of the metadata.
        ("001 44 20 7946 0958", "TH", "+442079460958"),
        ("009 44 20 7946 0958", "TH", "+442079460958"),
        // The crate would strip Russia's trunk 8 twice here (its issue #76);
        // the fast path reads the rest as it reads `+7 800 555 35 35`.
        ("00 7 800 555 35 35", "UA", "+78005553535"),
        ("00 380 44 123 4567", "VN", "+380441234567"),
    ];
    for (raw, iso, want) in cases {
        assert_eq!(e164(raw, iso).as_deref(), Some(want), "{raw:?} in {iso}");
        assert_eq!(e164(want, iso).as_deref(), Some(want), "{want} in {iso}");
    }
}

#[test]
fn fallback_regions_refuse_what_they_cannot_read() {
    for (raw, iso) in [
        ("", "VN"),
        ("+", "VN"),
        ("12", "UA"),
        ("0", "UA"),
        ("0000000000", "UA"),
        ("0912 345 678 999 9", "VN"),
        ("0912-FLOWERS", "VN"),
        ("0912 345 678 (mobile)", "VN"),
        ("tel:0912345678", "VN"),
        ("١٢٣٤٥٦٧٨٩٠", "EG"),
        ("٠٩١٢٣٤٥٦٧٨", "VN"),
        // Digits of no range of the plan: libphonenumber's validity decides.
        ("0112 345 678", "VN"),
        ("044 123 456", "UA"),
        // A local number: libphonenumber would add Antigua's only area code
        // (268), but digits nobody wrote are never added.
        ("464 1234", "AG"),
        // The crate strips Belarus's trunk 8 twice (issue #76) and reads
        // +375 011234567, not +375 801 123 4567: refused, not misread.
        ("8 801 123 4567", "BY"),
    ] {
        assert_eq!(e164(raw, iso), None, "{raw:?} in {iso}");
    }
}

#[test]
fn fallback_results_are_e164_on_arbitrary_digits() {
    // A fixed pseudo-random walk (xorshift) over digit strings of 0 to 20
    // digits, leading digits biased to trunk and international prefixes,
    // in every region outside the fast path: the crate must not panic on
    // digits (see `fallback_national`), and what comes out is E.164 that
    // reads back as itself.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for iso in fallback_regions() {
        for _ in 0..150 {
            let len = usize::try_from(next() % 21).expect("small");
            let digits: String = (0..len)
                .map(|i| {
                    let r = next();
                    let d = if i < 3 && r % 2 == 0 {
                        [0, 0, 1, 8, 9][usize::try_from((r >> 8) % 5).expect("small")]
                    } else {
                        (r >> 8) % 10
                    };
                    char::from(b'0' + u8::try_from(d).expect("a digit"))
                })
                .collect();
            let Some(got) = e164(&digits, iso) else {
                continue;
            };
            let body = got.strip_prefix('+').expect("a +");
            assert!(body.bytes().all(|b| b.is_ascii_digit()), "{got}");
            assert!((7..=15).contains(&body.len()), "{digits} in {iso}: {got}");
            assert_eq!(
                e164(&got, "US").as_deref(),
                Some(got.as_str()),
                "{digits} in {iso}"
            );
        }
    }
}

#[test]
fn regions_outside_the_fast_path_parse() {
    for iso in [
        "VN", "pe", " UA ", "bd", "MA", "LK", "PH", "ID", "TH", "GH", "JE", "AG",
    ] {
        let r = Region::parse(iso).unwrap_or_else(|| panic!("{iso:?}"));
        assert!(!r.is_fast_path(), "{iso}");
        assert_eq!(r.iso(), iso.trim().to_ascii_uppercase());
    }
    // The brief's KE, NG, PK and EG have hand-written plans.
    for iso in ["KE", "NG", "PK", "EG", "US", "GB"] {
        assert!(region(iso).is_fast_path(), "{iso}");
    }
    // 001 is libphonenumber's id for non-geographic codes (+800), not a region.
    for bad in ["XX", "ZZ", "001", "00", "V1", "VNM", " ", "U K"] {
        assert_eq!(Region::parse(bad), None, "{bad:?}");
    }
    let supported = Region::supported();
    assert!(supported.len() > 230, "{}", supported.len());
    assert!(
        supported.windows(2).all(|w| w[0] < w[1]),
        "sorted, once each"
    );
    for iso in ["US", "GB", "VN", "PE", "UA", "BD", "MA", "LK"] {
        assert!(supported.contains(&iso), "{iso}");
    }
    assert!(!supported.contains(&"001"));
    for iso in ["US", "GB", "DE"] {
        assert!(Region::ACCEPTED.contains(iso), "{}", Region::ACCEPTED);
    }
}

#[test]
fn an_unknown_default_region_is_refused_naming_what_is_accepted() {
    let spec = kith_api::pipeline::PipelineSpec::from_value(serde_json::json!({
        "name": "x",
        "defaultRegion": "XX",
        "identifiers": [{"type": "phone", "normalize": "phone"}],
    }))
    .expect("a spec");
    let err = crate::config::Pipeline::from_spec_with_model(&spec, None)
        .expect_err("XX is no region")
        .to_string();
    assert!(err.contains("defaultRegion"), "{err}");
    assert!(err.contains("XX"), "{err}");
    for accepted in ["US", "GB", "DE"] {
        assert!(err.contains(accepted), "{err}");
    }
    for iso in ["VN", "UA", "ke"] {
        let mut spec = spec.clone();
        spec.default_region = iso.to_string();
        let pipeline = crate::config::Pipeline::from_spec_with_model(&spec, None);
        assert!(pipeline.is_ok(), "{iso}: {:?}", pipeline.err());
    }
}
