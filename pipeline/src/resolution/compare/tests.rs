use super::*;
use kith_api::pipeline::{ComparisonMethod, KeyTransform};

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance
}

// ---------------------------------------------------------------- clean

#[test]
fn clean_lowercases_collapses_whitespace_and_trims() {
    assert_eq!(
        clean("  Ann\t\tLEE \n", 200),
        Some(("ann lee".to_string(), false))
    );
    assert_eq!(
        clean("a\u{00A0}\u{2003}b", 200),
        Some(("a b".to_string(), false))
    );
    assert_eq!(clean("a \r\n b", 200), Some(("a b".to_string(), false)));
}

#[test]
fn clean_removes_control_and_invisible_characters_inside_words() {
    assert_eq!(
        clean("a\u{0}b\u{7}c\u{7f}", 200),
        Some(("abc".to_string(), false))
    );
    assert_eq!(
        clean("\u{FEFF}Ann\u{200B}e", 200),
        Some(("anne".to_string(), false))
    );
    assert_eq!(
        clean("co\u{00AD}operate\u{202E}", 200),
        Some(("cooperate".to_string(), false))
    );
}

#[test]
fn clean_returns_none_when_nothing_is_left() {
    assert_eq!(clean("", 200), None);
    assert_eq!(clean(" \t\n ", 200), None);
    assert_eq!(clean("\u{0}\u{1b}\u{200B}", 200), None);
    assert_eq!(clean("abc", 0), None);
}

#[test]
fn clean_truncates_in_characters_and_says_so() {
    assert_eq!(clean("abcdef", 3), Some(("abc".to_string(), true)));
    assert_eq!(clean("abc", 3), Some(("abc".to_string(), false)));
    assert_eq!(clean("ééé", 2), Some(("éé".to_string(), true)));
    // Cut just after a space: the space is not kept.
    assert_eq!(clean("ab cd", 3), Some(("ab".to_string(), true)));
    // Trailing whitespace and controls are not a truncation.
    assert_eq!(clean("ab  \u{0} ", 2), Some(("ab".to_string(), false)));
    let long = "x".repeat(10_000);
    let (cleaned, truncated) = clean(&long, 200).unwrap();
    assert_eq!((cleaned.chars().count(), truncated), (200, true));
}

#[test]
fn clean_handles_non_latin_text() {
    assert_eq!(
        clean("ÉCOLE Straße", 200),
        Some(("école straße".to_string(), false))
    );
    assert_eq!(
        clean("Иван ПЕТРОВ", 200),
        Some(("иван петров".to_string(), false))
    );
    assert_eq!(clean("東京 都", 200), Some(("東京 都".to_string(), false)));
    // Per-character lower case: a capital sigma is always σ.
    assert_eq!(clean("ΟΔΟΣ", 200), Some(("οδοσ".to_string(), false)));
    // `İ` lower-cases to two characters, both counted.
    assert_eq!(clean("İz", 200), Some(("i\u{307}z".to_string(), false)));
    assert_eq!(clean("İz", 2), Some(("i\u{307}".to_string(), true)));
}

// ---------------------------------------------------------------- Jaro-Winkler

#[test]
fn jaro_winkler_known_values() {
    assert!(close(jaro_winkler("MARTHA", "MARHTA"), 0.961, 0.001));
    assert!(close(jaro_winkler("DWAYNE", "DUANE"), 0.840, 0.001));
    assert!(close(jaro_winkler("DIXON", "DICKSONX"), 0.813, 0.001));
    // Jaro 0.944 for MARTHA/MARHTA, exactly 17/18.
    assert!(close(
        jaro_winkler("MARTHA", "MARHTA"),
        17.0 / 18.0 + 3.0 * 0.1 * (1.0 / 18.0),
        1e-12
    ));
    assert_eq!(jaro_winkler("martha", "martha"), 1.0);
    assert_eq!(jaro_winkler("", "martha"), 0.0);
    assert_eq!(jaro_winkler("", ""), 0.0);
    assert_eq!(jaro_winkler("abc", "xyz"), 0.0);
}

#[test]
fn jaro_winkler_prefix_bonus_only_above_0_7() {
    // Jaro 2/3 (one of two characters matches): no bonus for the shared `a`.
    assert!(close(jaro_winkler("ab", "ac"), 2.0 / 3.0, 1e-12));
}

#[test]
fn jaro_winkler_on_characters_not_bytes() {
    // j, o, s match; é and e differ: Jaro 5/6, prefix 3.
    let expected = 5.0 / 6.0 + 3.0 * 0.1 * (1.0 / 6.0);
    assert!(close(jaro_winkler("josé", "jose"), expected, 1e-12));
    assert!(close(
        jaro_winkler("иван", "иванн"),
        jaro_winkler("ivan", "ivann"),
        1e-12
    ));
}

#[test]
fn jaro_winkler_is_symmetric() {
    let pairs = [
        ("DWAYNE", "DUANE"),
        ("abcab", "bacba"),
        ("crate", "trace"),
        ("ab", "ba"),
        ("aab", "aba"),
    ];
    for (a, b) in pairs {
        assert_eq!(jaro_winkler(a, b), jaro_winkler(b, a), "{a} / {b}");
    }
}

/// A plain Jaro-Winkler with boolean vectors, scanning `a`, to check the
/// bit-flag versions (one word, and many words past 64 chars) against.
fn reference_jaro_winkler(a: &[char], b: &[char]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let (mut used_a, mut used_b) = (vec![false; a.len()], vec![false; b.len()]);
    for i in 0..a.len() {
        let hi = (i + window + 1).min(b.len());
        for j in i.saturating_sub(window)..hi {
            if !used_b[j] && a[i] == b[j] {
                used_a[i] = true;
                used_b[j] = true;
                break;
            }
        }
    }
    let ma: Vec<char> = a
        .iter()
        .zip(&used_a)
        .filter(|(_, u)| **u)
        .map(|(c, _)| *c)
        .collect();
    let mb: Vec<char> = b
        .iter()
        .zip(&used_b)
        .filter(|(_, u)| **u)
        .map(|(c, _)| *c)
        .collect();
    if ma.is_empty() {
        return 0.0;
    }
    let m = ma.len() as f64;
    let t = (ma.iter().zip(&mb).filter(|(x, y)| x != y).count() / 2) as f64;
    let j = (m / a.len() as f64 + m / b.len() as f64 + (m - t) / m) / 3.0;
    if j <= 0.7 {
        return j;
    }
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count();
    j + prefix as f64 * 0.1 * (1.0 - j)
}

#[test]
fn jaro_winkler_matches_a_plain_implementation_short_and_long() {
    let mut rng = XorShift(0x0123_4567_89AB_CDEF);
    for round in 0..3_000 {
        let max_len = if round % 3 == 0 { 150 } else { 12 };
        let a: Vec<char> = rng
            .string_from(&['a', 'b', 'c', 'd', 'é'], max_len)
            .chars()
            .collect();
        let b: Vec<char> = rng
            .string_from(&['a', 'b', 'c', 'd', 'é'], max_len)
            .chars()
            .collect();
        // The implementation scans the shorter (then smaller) value.
        let (x, y) = if (a.len(), &a) <= (b.len(), &b) {
            (&a, &b)
        } else {
            (&b, &a)
        };
        let expected = if a == b && !a.is_empty() {
            1.0
        } else {
            reference_jaro_winkler(x, y)
        };
        let (sa, sb): (String, String) = (a.iter().collect(), b.iter().collect());
        let actual = jaro_winkler(&sa, &sb);
        assert!(
            close(actual, expected, 1e-12),
            "{sa:?} / {sb:?}: {actual} != {expected}"
        );
    }
}

// ---------------------------------------------------------------- edit distances

/// Full-matrix references, to check the banded versions against.
fn reference_distance(a: &str, b: &str, transpositions: bool) -> u32 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i as u32;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j as u32;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = u32::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if transpositions && i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[test]
fn edit_distances_known_values() {
    assert_eq!(levenshtein_within("kitten", "sitting", 3), Some(3));
    assert_eq!(levenshtein_within("kitten", "sitting", 2), None);
    assert_eq!(osa_within("kitten", "sitting", 5), Some(3));
    assert_eq!(levenshtein_within("ca", "ac", 5), Some(2));
    assert_eq!(osa_within("ca", "ac", 5), Some(1));
    // OSA never edits a substring twice: `ca` to `abc` is 3 (true
    // Damerau-Levenshtein would say 2).
    assert_eq!(osa_within("ca", "abc", 5), Some(3));
    assert_eq!(levenshtein_within("flaw", "lawn", 2), Some(2));
    assert_eq!(levenshtein_within("", "abc", 3), Some(3));
    assert_eq!(levenshtein_within("", "abc", 2), None);
    assert_eq!(levenshtein_within("", "", 0), Some(0));
    assert_eq!(levenshtein_within("same", "same", 0), Some(0));
    assert_eq!(levenshtein_within("café", "cafe", 1), Some(1));
    assert_eq!(osa_within("東京", "京東", 1), Some(1));
    assert_eq!(levenshtein_within("abc", "xyz", u32::MAX), Some(3));
}

#[test]
fn banded_distances_match_the_full_matrix() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..4_000 {
        let a = rng.string_from(&['a', 'b', 'c', 'é'], 9);
        let b = rng.string_from(&['a', 'b', 'c', 'é'], 9);
        for transpositions in [false, true] {
            let full = reference_distance(&a, &b, transpositions);
            for max in 0..7 {
                let banded = if transpositions {
                    osa_within(&a, &b, max)
                } else {
                    levenshtein_within(&a, &b, max)
                };
                let expected = (full <= max).then_some(full);
                assert_eq!(
                    banded, expected,
                    "{a:?} {b:?} max {max} transpositions {transpositions}"
                );
            }
        }
    }
}

#[test]
fn bounded_distance_gives_up_early_on_far_pairs() {
    let a = "a".repeat(20_000);
    let b = "b".repeat(20_000);
    let start = std::time::Instant::now();
    assert_eq!(levenshtein_within(&a, &b, 3), None);
    assert_eq!(osa_within(&a, &b, 3), None);
    // Too different in length: no work at all.
    assert_eq!(levenshtein_within(&a, "a", 3), None);
    // The full matrix would be 4e8 cells; the band stops after a few rows.
    assert!(
        start.elapsed() < std::time::Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
    // A common prefix costs nothing either.
    let c = format!("{a}x");
    let d = format!("{a}y");
    assert_eq!(levenshtein_within(&c, &d, 1), Some(1));
}

// ---------------------------------------------------------------- NYSIIS

#[test]
fn nysiis_codes_verified_by_hand() {
    // Names from the usual NYSIIS example lists, each traced by hand through
    // Taft's rules (see phonetic.rs for the reading of the rules), then
    // truncated to 6 characters.
    let cases = [
        ("Bishop", "BASAP"),
        ("Carlson", "CARLSA"), // CARLSAN
        ("Carr", "CAR"),
        ("Chapman", "CAPNAN"),  // H after a consonant takes its value
        ("Franklin", "FRANCL"), // FRANCLAN
        ("Greene", "GRAN"),     // GRANA, final A dropped
        ("Harper", "HARPAR"),
        ("Jacobs", "JACAB"), // final S dropped
        ("Larson", "LARSAN"),
        ("Lawrence", "LARANC"), // W after a vowel; LARANCA
        ("Lawson", "LASAN"),
        ("Lynch", "LYNC"),
        ("Mackenzie", "MCANSY"), // MAC -> MCC, IE -> Y
        ("Matthews", "MAT"),     // MATAS: final S, then final A
        ("McDonald", "MCDANA"),  // MCDANALD
        ("Morrison", "MARASA"),  // MARASAN
        ("O'Brien", "OBRAN"),
        ("Richards", "RACARD"),
        ("Silva", "SALV"),
        ("Watkins", "WATCAN"),
        ("Wheeler", "WALAR"),
        ("Willis", "WAL"),     // WALAS: final S, then final A
        ("Knight", "NAGT"),    // KN -> NN
        ("Schmidt", "SNAD"),   // SCH -> SSS, DT -> D
        ("Phillips", "FALAP"), // PH -> FF
        ("Macintosh", "MCANT"),
        ("Evans", "EVAN"),   // the first letter keeps its vowel
        ("Devito", "DAFAT"), // EV -> AF
        ("Casey", "CASY"),   // final AY -> Y
        ("Schwartz", "SWART"),
        ("Hugh", "HAG"),
        ("Lee", "LY"), // EE -> Y
    ];
    for (name, code) in cases {
        assert_eq!(phonetic(name), code, "{name}");
        assert_eq!(phonetic(&name.to_lowercase()), code, "{name} lower-case");
    }
}

#[test]
fn nysiis_groups_spelling_variants() {
    for (a, b) in [
        ("Mackenzie", "McKenzie"),
        ("Philips", "Phillips"),
        ("Knight", "Night"),
        ("Carr", "Kar"),
    ] {
        assert_eq!(phonetic(a), phonetic(b), "{a} / {b}");
    }
}

#[test]
fn nysiis_ignores_non_letters_and_folds_latin_diacritics() {
    assert_eq!(phonetic("Müller"), "MALAR");
    assert_eq!(phonetic("Müller"), phonetic("Muller"));
    assert_eq!(phonetic("Mu\u{308}ller"), "MALAR"); // decomposed: the mark is skipped
    assert_eq!(phonetic("Ødegård"), "ODAGAD");
    assert_eq!(phonetic("van der Berg"), phonetic("VanDerBerg"));
    assert_eq!(phonetic("123"), "");
    assert_eq!(phonetic(""), "");
    assert_eq!(phonetic("Иван"), "");
    // The end rules never remove the first letter.
    assert_eq!(phonetic("S"), "S");
    assert_eq!(phonetic("A"), "A");
    assert_eq!(phonetic("Ay"), "AY");
}

// ---------------------------------------------------------------- dates

fn date(year: i32, month: u32, day: u32) -> Option<Date> {
    Some(Date { year, month, day })
}

#[test]
fn parse_date_accepts_unambiguous_formats() {
    assert_eq!(parse_date("19900315"), date(1990, 3, 15));
    assert_eq!(parse_date("1990-03-15"), date(1990, 3, 15));
    assert_eq!(parse_date("1990/03/15"), date(1990, 3, 15));
    assert_eq!(parse_date("1990.03.15"), date(1990, 3, 15));
    assert_eq!(parse_date("1990-3-5"), date(1990, 3, 5));
    assert_eq!(parse_date(" 1990-03-15 "), date(1990, 3, 15));
    assert_eq!(parse_date("15/03/1990"), date(1990, 3, 15));
    assert_eq!(parse_date("03/15/1990"), date(1990, 3, 15));
    assert_eq!(parse_date("3/15/1990"), date(1990, 3, 15));
    assert_eq!(parse_date("05/05/1990"), date(1990, 5, 5));
    assert_eq!(parse_date("1990-03-15T10:20:30Z"), date(1990, 3, 15));
    assert_eq!(parse_date("1990-03-15t10:20:30z"), date(1990, 3, 15));
    assert_eq!(
        parse_date("1990-03-15 23:59:60.123456+05:30"),
        date(1990, 3, 15)
    );
    assert_eq!(parse_date("1990-03-15T00:00:00-08:00"), date(1990, 3, 15));
}

#[test]
fn parse_date_rejects_ambiguous_and_odd_formats() {
    for s in [
        "",
        "1990",
        "03/04/1990", // 3 April or 4 March
        "13/13/1990",
        "15.03.1990",
        "15-03-1990",
        "90-03-15",
        "15/03/90",
        "1990-03-15x",
        "1990-03/15",
        "1990-003-15",
        "199003150",
        "1990315",
        "1990-03-15T10:20:30", // no offset
        "1990-03-15T25:00:00Z",
        "1990-03-15T10:20Z",
        "1990-03-15T10:20:30.Z",
        "1990-3-15T10:20:30Z", // RFC 3339 needs two-digit fields
        "1990-03-15T10:20:30+0530",
        "١٩٩٠-٠٣-١٥",
        "march 15, 1990",
    ] {
        assert_eq!(parse_date(s), None, "{s:?}");
    }
}

#[test]
fn parse_date_validates_the_calendar() {
    assert_eq!(parse_date("2000-02-29"), date(2000, 2, 29));
    assert_eq!(parse_date("20240229"), date(2024, 2, 29));
    assert_eq!(parse_date("29/02/2024"), date(2024, 2, 29));
    assert_eq!(parse_date("1900-02-29"), None);
    assert_eq!(parse_date("2023-02-29"), None);
    assert_eq!(parse_date("1990-04-31"), None);
    assert_eq!(parse_date("1990-13-01"), None);
    assert_eq!(parse_date("1990-00-10"), None);
    assert_eq!(parse_date("1990-01-00"), None);
    assert_eq!(parse_date("00000000"), None);
    assert_eq!(parse_date("0000-01-01"), None);
    assert_eq!(parse_date("9999-12-31"), date(9999, 12, 31));
}

// ---------------------------------------------------------------- comparators

fn comparator(method: ComparisonMethod) -> Comparator {
    Comparator::compile(&method).unwrap()
}

fn level(c: &Comparator, a: &str, b: &str) -> u8 {
    let pa = c.prepare(a).unwrap_or_else(|| panic!("{a:?} unusable"));
    let pb = c.prepare(b).unwrap_or_else(|| panic!("{b:?} unusable"));
    let l = c.compare(&pa, &pb);
    assert_eq!(l, c.compare(&pb, &pa), "{a:?} / {b:?} not symmetric");
    l
}

#[test]
fn exact_levels() {
    let c = comparator(ComparisonMethod::Exact);
    assert_eq!(c.level_names(), ["exact", "different"]);
    assert_eq!(level(&c, "ann", "ann"), 0);
    assert_eq!(level(&c, "ann", "anne"), 1);
    assert_eq!(c.tf_key(&c.prepare("ann").unwrap()), "ann");
}

#[test]
fn jaro_winkler_levels() {
    let c = comparator(ComparisonMethod::JaroWinkler {
        thresholds: vec![0.92, 0.8],
    });
    assert_eq!(
        c.level_names(),
        [
            "exact",
            "jaro-winkler >= 0.92",
            "jaro-winkler >= 0.8",
            "different"
        ]
    );
    assert_eq!(level(&c, "martha", "martha"), 0);
    assert_eq!(level(&c, "martha", "marhta"), 1); // 0.961
    assert_eq!(level(&c, "dwayne", "duane"), 2); // 0.84
    assert_eq!(level(&c, "dixon", "dicksonx"), 2); // 0.813
    assert_eq!(level(&c, "martha", "jones"), 3);
    // Exactly 0.8 in real numbers (Jaro 3/4, two-character prefix), a hair
    // below in binary: still at least 0.8.
    let c = comparator(ComparisonMethod::JaroWinkler {
        thresholds: vec![0.8],
    });
    assert!(close(jaro_winkler("abdc", "abcdxxxx"), 0.8, 1e-12));
    assert_eq!(level(&c, "abdc", "abcdxxxx"), 1);
}

#[test]
fn edit_distance_levels() {
    let c = comparator(ComparisonMethod::Levenshtein {
        max_distances: vec![1, 2],
    });
    assert_eq!(
        c.level_names(),
        ["exact", "levenshtein <= 1", "levenshtein <= 2", "different"]
    );
    assert_eq!(level(&c, "smith", "smith"), 0);
    assert_eq!(level(&c, "smith", "smyth"), 1);
    assert_eq!(level(&c, "smith", "smithee"), 2);
    assert_eq!(level(&c, "ca", "ac"), 2);
    assert_eq!(level(&c, "smith", "jones"), 3);
    let c = comparator(ComparisonMethod::DamerauLevenshtein {
        max_distances: vec![1, 2],
    });
    assert_eq!(
        c.level_names(),
        [
            "exact",
            "damerau-levenshtein <= 1",
            "damerau-levenshtein <= 2",
            "different"
        ]
    );
    assert_eq!(level(&c, "ca", "ac"), 1);
    assert_eq!(level(&c, "smtih", "smith"), 1);
    assert_eq!(level(&c, "smith", "jones"), 3);
}

#[test]
fn phonetic_levels() {
    let c = comparator(ComparisonMethod::Phonetic);
    assert_eq!(
        c.level_names(),
        ["exact", "same phonetic code", "different"]
    );
    assert_eq!(level(&c, "mackenzie", "mackenzie"), 0);
    assert_eq!(level(&c, "mackenzie", "mckenzie"), 1);
    assert_eq!(level(&c, "ann", "bob"), 2);
    // No Latin letters: usable, exact matches count, empty codes never do.
    assert_eq!(level(&c, "иван", "иван"), 0);
    assert_eq!(level(&c, "иван", "петр"), 2);
    assert_eq!(c.tf_key(&c.prepare("mckenzie").unwrap()), "mckenzie");
}

#[test]
fn date_levels() {
    let c = comparator(ComparisonMethod::Date {
        max_year_distances: vec![1, 5],
        formats: vec![],
    });
    assert_eq!(
        c.level_names(),
        [
            "exact",
            "day and month transposed",
            "one edit in the digits",
            "same day and month, years within 1",
            "same day and month, years within 5",
            "different"
        ]
    );
    assert_eq!(level(&c, "1990-03-15", "19900315"), 0);
    assert_eq!(level(&c, "1990-03-15", "15/03/1990"), 0);
    assert_eq!(level(&c, "1990-03-04", "1990-04-03"), 1);
    assert_eq!(level(&c, "1990-03-15", "1990-03-16"), 2); // one substitution
    assert_eq!(level(&c, "1990-12-13", "1990-12-31"), 2); // one transposition
    assert_eq!(level(&c, "1990-03-15", "1991-03-15"), 2); // also one digit
    assert_eq!(level(&c, "1990-03-15", "1989-03-15"), 3); // 3 digits, 1 year
    assert_eq!(level(&c, "1990-03-15", "1985-03-15"), 4);
    assert_eq!(level(&c, "1990-03-15", "2000-03-15"), 5); // 10 years
    assert_eq!(level(&c, "1990-03-15", "1990-07-20"), 5);
    assert_eq!(c.prepare("03/04/1990"), None);
    assert_eq!(c.prepare("yesterday"), None);
    assert_eq!(c.tf_key(&c.prepare("15/03/1990").unwrap()), "1990-03-15");

    let c = comparator(ComparisonMethod::Date {
        max_year_distances: vec![],
        formats: vec![],
    });
    assert_eq!(c.levels(), 4);
    assert_eq!(level(&c, "1990-03-15", "1985-03-15"), 3);
}

#[test]
fn declared_us_dates_are_read_and_their_day_month_swaps_found() {
    let c = comparator(ComparisonMethod::Date {
        max_year_distances: vec![1],
        formats: vec!["%m/%d/%Y".into()],
    });
    // Ambiguous without the declaration, read month first with it.
    assert_eq!(c.tf_key(&c.prepare("03/04/1990").unwrap()), "1990-03-04");
    assert_eq!(c.tf_key(&c.prepare("3/4/1990").unwrap()), "1990-03-04");
    // Unambiguous formats still read, declared first or not.
    assert_eq!(c.tf_key(&c.prepare("1990-03-04").unwrap()), "1990-03-04");
    assert_eq!(level(&c, "03/04/1990", "1990-03-04"), 0);
    // A clerk who swapped day and month lands on the transposed level,
    // whichever format each side was written in.
    assert_eq!(level(&c, "03/04/1990", "1990-04-03"), 1);
    assert_eq!(level(&c, "12/05/1971", "05/12/1971"), 1);
    assert_eq!(level(&c, "12/05/1971", "12/05/1972"), 2); // one digit
    assert_eq!(level(&c, "12/05/1971", "12/05/1969"), 4);
    // A value the format describes but the calendar does not is unusable.
    assert_eq!(c.prepare("02/30/1990"), None);
    // Not a US date, but only one reading is possible: the unambiguous
    // rules still apply after the declared formats.
    assert_eq!(c.tf_key(&c.prepare("13/01/1990").unwrap()), "1990-01-13");
    assert_eq!(c.prepare("03/04/90"), None);

    let formats = [
        DateFormat::compile("%d.%m.%Y").unwrap(),
        DateFormat::compile("%m/%d/%Y").unwrap(),
    ];
    assert_eq!(
        parse_date_with("04.03.1990", &formats),
        Date::new(1990, 3, 4)
    );
    assert_eq!(
        parse_date_with("04/03/1990", &formats),
        Date::new(1990, 4, 3)
    );
    assert_eq!(
        parse_date_with("1990-03-04", &formats),
        Date::new(1990, 3, 4)
    );
    assert_eq!(parse_date_with("04/03/1990", &[]), None);
    assert_eq!(
        DateFormat::compile("%Y%m%d").unwrap().parse(" 19900304 "),
        Date::new(1990, 3, 4)
    );
}

#[test]
fn date_formats_reject_what_would_be_a_guess() {
    for bad in [
        "%m/%d/%y",
        "%m/%d",
        "%Y-%m-%m",
        "%Y-%m-%d %H",
        "%Y-%m-%d%",
        "%Y—%m—%d",
        "1%Y%m%d",
    ] {
        let err = DateFormat::compile(bad).unwrap_err();
        assert!(err.contains("%m/%d/%Y"), "{bad}: {err}");
    }
    let err = Comparator::compile(&ComparisonMethod::Date {
        max_year_distances: vec![],
        formats: vec!["%d/%m/%y".into()],
    })
    .unwrap_err();
    assert!(err.starts_with("`date.formats`"), "{err}");
}

#[test]
fn suffix_levels() {
    let c = comparator(ComparisonMethod::Suffix {
        lengths: vec![7, 4],
    });
    assert_eq!(
        c.level_names(),
        [
            "exact",
            "same last 7 characters",
            "same last 4 characters",
            "different"
        ]
    );
    assert_eq!(level(&c, "+14155550100", "+14155550100"), 0);
    assert_eq!(level(&c, "+14155550100", "+16505550100"), 1);
    assert_eq!(level(&c, "+14155550100", "+14155560100"), 2);
    assert_eq!(level(&c, "+14155550100", "+14155550101"), 3);
    assert_eq!(level(&c, "0100", "+14155550100"), 2); // shorter side
    for bad in [vec![], vec![4, 7], vec![0], vec![4, 4]] {
        let err = Comparator::compile(&ComparisonMethod::Suffix { lengths: bad }).unwrap_err();
        assert!(err.contains("suffix.lengths"), "{err}");
    }
}

#[test]
fn nicknames_share_a_group_but_are_not_transitive() {
    let spec = |builtin: bool, groups: Vec<Vec<&str>>| kith_api::pipeline::NicknameSpec {
        builtin,
        groups: groups
            .into_iter()
            .map(|g| g.into_iter().map(String::from).collect())
            .collect(),
    };
    let table = Nicknames::compile(&spec(true, vec![])).unwrap();
    assert!(
        table.len() > 1000,
        "builtin table holds {} names",
        table.len()
    );
    let same = |a: &str, b: &str| share_group(&table.groups(a), &table.groups(b));
    assert!(same("robert", "bob"));
    assert!(same("bob", "robert"));
    assert!(same("margaret", "peggy"));
    assert!(same("william", "bill"));
    assert!(same("elizabeth", "liz"));
    // Chris is short for both, but they are different names.
    assert!(same("christopher", "chris"));
    assert!(same("christine", "chris"));
    assert!(!same("christopher", "christine"));
    assert!(!same("robert", "margaret"));
    assert!(!same("zzyzx", "zzyzx"), "a name in no group shares none");

    // A pipeline extends the table; names are compared cleaned.
    let table = Nicknames::compile(&spec(false, vec![vec!["Giuseppe", "Beppe", "PINO"]])).unwrap();
    assert_eq!(table.len(), 3);
    assert!(share_group(
        &table.groups("giuseppe"),
        &table.groups("pino")
    ));
    assert!(table.groups("robert").is_empty());
    for bad in [vec![vec!["solo"]], vec![vec!["ann", " "]]] {
        let err = Nicknames::compile(&spec(false, bad)).unwrap_err();
        assert!(err.contains("groups[0]"), "{err}");
    }
}

#[test]
fn numeric_levels() {
    let c = comparator(ComparisonMethod::Numeric {
        max_differences: vec![0.1, 5.0],
    });
    assert_eq!(
        c.level_names(),
        ["exact", "difference <= 0.1", "difference <= 5", "different"]
    );
    assert_eq!(level(&c, "42", "42.0"), 0);
    assert_eq!(level(&c, "-0", "0"), 0);
    assert_eq!(level(&c, "1.1", "1.0"), 1); // 0.10000000000000009
    assert_eq!(level(&c, "10", "14"), 2);
    assert_eq!(level(&c, "10", "15"), 2);
    assert_eq!(level(&c, "10", "15.5"), 3);
    assert_eq!(level(&c, "1e308", "-1e308"), 3);
    for bad in [
        "abc",
        "inf",
        "-infinity",
        "nan",
        "1,5",
        "1 000",
        "0x10",
        "12abc",
    ] {
        assert_eq!(c.prepare(bad), None, "{bad}");
    }
    let key = |s: &str| c.tf_key(&c.prepare(s).unwrap()).to_string();
    assert_eq!(key("42.0"), "42");
    assert_eq!(key("+1.50"), "1.5");
    assert_eq!(key("-0"), "0");
    assert_eq!(key("1e20"), "1e20");
    assert_eq!(key("0.0000001"), "1e-7");
}

#[test]
fn postcode_levels() {
    let c = comparator(ComparisonMethod::Postcode {
        prefix_lengths: vec![4, 2],
    });
    assert_eq!(
        c.level_names(),
        [
            "exact",
            "one edit",
            "same first 4 characters",
            "same first 2 characters",
            "different"
        ]
    );
    assert_eq!(level(&c, "sw1a 1aa", "sw1a1aa"), 0);
    assert_eq!(level(&c, "sw1a-1aa", "sw1a 1aa"), 0);
    assert_eq!(level(&c, "sw1a1aa", "sw1a1ab"), 1);
    assert_eq!(level(&c, "94105", "94150"), 1); // transposition
    assert_eq!(level(&c, "sw1a1aa", "sw1a2bb"), 2);
    assert_eq!(level(&c, "sw1a1aa", "sw9z9zz"), 3);
    assert_eq!(level(&c, "sw1a1aa", "ec1a1bb"), 4);
    assert_eq!(level(&c, "sw", "sw1a1aa"), 3);
    assert_eq!(level(&c, "s", "sw1a1aa"), 4); // too short for any prefix
    assert_eq!(c.prepare(" - "), None);
    assert_eq!(c.tf_key(&c.prepare("sw1a 1aa").unwrap()), "sw1a1aa");
}

#[test]
fn compile_rejects_bad_levels_and_says_what_is_accepted() {
    let bad = [
        ComparisonMethod::JaroWinkler { thresholds: vec![] },
        ComparisonMethod::JaroWinkler {
            thresholds: vec![0.8, 0.9],
        },
        ComparisonMethod::JaroWinkler {
            thresholds: vec![0.9, 0.9],
        },
        ComparisonMethod::JaroWinkler {
            thresholds: vec![1.5],
        },
        ComparisonMethod::JaroWinkler {
            thresholds: vec![0.0],
        },
        ComparisonMethod::JaroWinkler {
            thresholds: vec![f64::NAN],
        },
        ComparisonMethod::JaroWinkler {
            thresholds: (1..=17).map(|i| 1.0 - f64::from(i) / 100.0).collect(),
        },
        ComparisonMethod::Levenshtein {
            max_distances: vec![],
        },
        ComparisonMethod::Levenshtein {
            max_distances: vec![0, 1],
        },
        ComparisonMethod::DamerauLevenshtein {
            max_distances: vec![2, 1],
        },
        ComparisonMethod::Date {
            max_year_distances: vec![0],
            formats: vec![],
        },
        ComparisonMethod::Date {
            max_year_distances: vec![5, 1],
            formats: vec![],
        },
        ComparisonMethod::Numeric {
            max_differences: vec![],
        },
        ComparisonMethod::Numeric {
            max_differences: vec![-1.0],
        },
        ComparisonMethod::Numeric {
            max_differences: vec![f64::INFINITY],
        },
        ComparisonMethod::Numeric {
            max_differences: vec![5.0, 1.0],
        },
        ComparisonMethod::Postcode {
            prefix_lengths: vec![2, 4],
        },
        ComparisonMethod::Postcode {
            prefix_lengths: vec![0],
        },
    ];
    for method in bad {
        let err = Comparator::compile(&method).unwrap_err();
        assert!(err.contains("must list") && err.contains("e.g."), "{err}");
    }
    assert!(Comparator::compile(&ComparisonMethod::JaroWinkler {
        thresholds: vec![1.0, 0.5]
    })
    .is_ok());
    assert!(Comparator::compile(&ComparisonMethod::Postcode {
        prefix_lengths: vec![]
    })
    .is_ok());
    let err = Comparator::compile(&ComparisonMethod::JaroWinkler {
        thresholds: vec![0.8, 0.9],
    })
    .unwrap_err();
    assert!(
        err.contains("jaroWinkler.thresholds") && err.contains("[0.8, 0.9]"),
        "{err}"
    );
}

#[test]
fn values_prepared_by_another_method_compare_as_different() {
    let exact = comparator(ComparisonMethod::Exact);
    let dates = comparator(ComparisonMethod::Date {
        max_year_distances: vec![1],
        formats: vec![],
    });
    let d = dates.prepare("1990-03-15").unwrap();
    let e = exact.prepare("1990-03-15").unwrap();
    assert_eq!(exact.compare(&e, &d), 1);
    assert_eq!(dates.compare(&d, &e), 4);
}

#[test]
fn empty_values_are_unusable() {
    for method in all_methods() {
        assert_eq!(comparator(method).prepare(""), None);
    }
}

// ---------------------------------------------------------------- keys

#[test]
fn derive_key_for_each_transform() {
    let key = |t: KeyTransform, v: &str| derive_key(&t, v, &[]);
    assert_eq!(key(KeyTransform::Exact, "ann lee"), Some("ann lee".into()));
    assert_eq!(key(KeyTransform::Prefix(3), "smith"), Some("smi".into()));
    assert_eq!(key(KeyTransform::Prefix(10), "smith"), Some("smith".into()));
    assert_eq!(key(KeyTransform::Prefix(2), "été"), Some("ét".into()));
    assert_eq!(key(KeyTransform::Suffix(3), "smith"), Some("ith".into()));
    assert_eq!(key(KeyTransform::Suffix(10), "smith"), Some("smith".into()));
    assert_eq!(key(KeyTransform::Suffix(2), "josé"), Some("sé".into()));
    assert_eq!(key(KeyTransform::Suffix(0), "josé"), None);
    assert_eq!(key(KeyTransform::Prefix(0), "josé"), None);
    assert_eq!(
        key(KeyTransform::Phonetic, "mackenzie"),
        Some("MCANSY".into())
    );
    assert_eq!(key(KeyTransform::Phonetic, "иван"), None);
    assert_eq!(key(KeyTransform::Year, "1990-03-15"), Some("1990".into()));
    assert_eq!(key(KeyTransform::Year, "0950-03-15"), Some("0950".into()));
    assert_eq!(key(KeyTransform::Year, "hello"), None);
    assert_eq!(
        key(KeyTransform::MonthDay, "15/03/1990"),
        Some("0315".into())
    );
    assert_eq!(key(KeyTransform::MonthDay, "03/04/1990"), None);
    assert_eq!(
        key(KeyTransform::Digits, "+1 (415) 555-0100"),
        Some("14155550100".into())
    );
    assert_eq!(key(KeyTransform::Digits, "０３-１２"), Some("0312".into()));
    assert_eq!(key(KeyTransform::Digits, "٠٥٥"), Some("055".into()));
    assert_eq!(key(KeyTransform::Digits, "abc"), None);
    for t in all_transforms() {
        assert_eq!(derive_key(&t, "", &[]), None);
    }
}

// ---------------------------------------------------------------- no panics

/// A fixed-seed xorshift generator: reproducible random inputs without a
/// dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn string_from(&mut self, pool: &[char], max_len: usize) -> String {
        let len = self.below(max_len + 1);
        (0..len).map(|_| pool[self.below(pool.len())]).collect()
    }

    /// Any character, biased towards the ones that break parsers: ASCII
    /// letters, digits and separators, control and invisible characters,
    /// multi-byte letters, combining marks, emoji, any code point.
    fn char(&mut self) -> char {
        const TRICKY: &[char] = &[
            '\0', '\t', '\n', '\r', '\u{7f}', '\u{85}', '\u{a0}', '\u{ad}', '\u{200b}', '\u{202e}',
            '\u{feff}', '\u{301}', '\u{308}', 'é', 'ß', 'İ', 'Σ', 'ſ', 'ĳ', 'ø', 'Ж', '東', '٣',
            '０', '😀', ' ', '-', '/', '.', ':', '+', 'T', 't', 'Z', 'z', ',', 'e', 'E',
        ];
        match self.below(6) {
            0 | 1 => char::from(b'0' + self.below(10) as u8),
            2 => char::from(b'a' + self.below(26) as u8).to_ascii_uppercase(),
            3 => TRICKY[self.below(TRICKY.len())],
            4 => char::from(b'a' + self.below(26) as u8),
            _ => char::from_u32(self.next() as u32 % 0x11_0000).unwrap_or('\u{fffd}'),
        }
    }

    fn string(&mut self) -> String {
        let len = match self.below(50) {
            0 => 10_000,
            1 => 0,
            n => n % 24,
        };
        (0..len).map(|_| self.char()).collect()
    }
}

fn all_methods() -> Vec<ComparisonMethod> {
    vec![
        ComparisonMethod::Exact,
        ComparisonMethod::JaroWinkler {
            thresholds: vec![0.92, 0.8],
        },
        ComparisonMethod::Levenshtein {
            max_distances: vec![1, 2],
        },
        ComparisonMethod::DamerauLevenshtein {
            max_distances: vec![1, 3],
        },
        ComparisonMethod::Phonetic,
        ComparisonMethod::Date {
            max_year_distances: vec![1, 5],
            formats: vec![],
        },
        ComparisonMethod::Numeric {
            max_differences: vec![1.0, 10.0],
        },
        ComparisonMethod::Postcode {
            prefix_lengths: vec![4, 2],
        },
        ComparisonMethod::Suffix {
            lengths: vec![7, 4],
        },
        ComparisonMethod::Date {
            max_year_distances: vec![],
            formats: vec!["%m/%d/%Y".into(), "%d.%m.%Y".into()],
        },
    ]
}

fn all_transforms() -> Vec<KeyTransform> {
    vec![
        KeyTransform::Exact,
        KeyTransform::Prefix(3),
        KeyTransform::Suffix(2),
        KeyTransform::Phonetic,
        KeyTransform::Year,
        KeyTransform::MonthDay,
        KeyTransform::Digits,
    ]
}

#[test]
fn level_names_match_level_counts() {
    for method in all_methods() {
        let c = comparator(method);
        assert_eq!(c.levels(), c.level_names().len());
        assert_eq!(
            c.level_names().last().map(String::as_str),
            Some("different")
        );
    }
}

#[test]
fn nothing_panics_on_random_strings() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let comparators: Vec<Comparator> = all_methods().into_iter().map(comparator).collect();
    let transforms = all_transforms();
    for round in 0..3_000 {
        let (a, b) = (rng.string(), rng.string());
        // Raw functions on raw strings.
        let jw = jaro_winkler(&a, &b);
        assert!((0.0..=1.0).contains(&jw), "{jw}");
        let max = rng.below(5) as u32;
        let lev = levenshtein_within(&a, &b, max);
        let osa = osa_within(&a, &b, max);
        assert!(lev.is_none_or(|d| d <= max) && osa.is_none_or(|d| d <= max));
        if let (Some(l), Some(o)) = (lev, osa) {
            assert!(o <= l);
        }
        let _ = phonetic(&a);
        let _ = parse_date(&a);
        for t in &transforms {
            assert_ne!(derive_key(t, &a, &[]).as_deref(), Some(""));
        }
        // The pipeline's path: clean, prepare, compare.
        let max_chars = if round % 2 == 0 { 200 } else { rng.below(40) };
        let (Some((ca, _)), Some((cb, _))) = (clean(&a, max_chars), clean(&b, max_chars)) else {
            continue;
        };
        assert!(ca.chars().count() <= max_chars && ca.trim() == ca && !ca.contains("  "));
        for c in &comparators {
            let (Some(pa), Some(pb)) = (c.prepare(&ca), c.prepare(&cb)) else {
                continue;
            };
            let level = c.compare(&pa, &pb);
            assert!((level as usize) < c.levels());
            assert_eq!(level, c.compare(&pb, &pa), "{ca:?} / {cb:?}");
            assert_eq!(c.compare(&pa, &pa), 0);
            if level == 0 {
                assert_eq!(c.tf_key(&pa), c.tf_key(&pb));
            }
        }
    }
}

#[test]
fn nothing_panics_on_date_and_number_like_strings() {
    let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
    let pool = [
        '0', '1', '2', '3', '9', '-', '/', '.', ':', '+', 't', 'z', ' ', 'e',
    ];
    let dates = comparator(ComparisonMethod::Date {
        max_year_distances: vec![1, 5],
        formats: vec![],
    });
    let numbers = comparator(ComparisonMethod::Numeric {
        max_differences: vec![1.0],
    });
    let mut parsed = 0;
    for _ in 0..20_000 {
        let s = rng.string_from(&pool, 26);
        if let Some(d) = parse_date(&s) {
            parsed += 1;
            assert!(
                Date::new(d.year, d.month, d.day).is_some(),
                "{s:?} gave {d:?}"
            );
        }
        let _ = dates.prepare(&s);
        let _ = numbers.prepare(&s);
        let _ = derive_key(&KeyTransform::MonthDay, &s, &[]);
    }
    // Mostly garbage, but the generator does reach the parsers' inner paths.
    let _ = parsed;
}
