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
