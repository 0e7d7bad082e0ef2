use super::*;

/// Truth of five person records of two people and one organization record:
/// person-1 has c-1, c-2, w-1; person-2 has c-3, w-2.
const TRUTH: &str = r#"{"source":"crm","id":"c-1","kind":"person","entity":"person-1"}
{"source":"crm","id":"c-2","kind":"person","entity":"person-1"}
{"source":"web","id":"w-1","kind":"person","entity":"person-1"}
{"source":"crm","id":"c-3","kind":"person","entity":"person-2"}
{"source":"web","id":"w-2","kind":"person","entity":"person-2"}
{"source":"crm","id":"o-1","kind":"organization","entity":"org-1"}
"#;

fn score(export: &str, truth: &str) -> Result<PairwiseScores, EvaluateError> {
    pairwise(&mut export.as_bytes(), &mut truth.as_bytes())
}

fn profile(records: &[(&str, &str)], accounts: &[&str]) -> String {
    let records: Vec<String> = records
        .iter()
        .map(|(s, i)| format!(r#"{{"source":"{s}","id":"{i}"}}"#))
        .collect();
    let ids: Vec<String> = accounts
        .iter()
        .map(|a| format!(r#"{{"type":"account_id","value":"{a}"}}"#))
        .collect();
    format!(
        r#"{{"profile_id":"p","kind":"person","records":[{}],"identifiers":[{}],"attributes":{{}},"relationships":[]}}"#,
        records.join(","),
        ids.join(",")
    ) + "\n"
}

#[test]
fn perfect_partition_scores_one() {
    let export = profile(&[("crm", "c-1"), ("crm", "c-2"), ("web", "w-1")], &["a1"])
        + &profile(&[("crm", "c-3"), ("web", "w-2")], &["a2"])
        + &profile(&[("crm", "o-1")], &[]);
    let s = score(&export, TRUTH).expect("scores");
    assert_eq!(
        (s.true_pairs, s.predicted_pairs, s.correct_pairs, s.records),
        (4, 4, 4, 5)
    );
    assert_eq!((s.precision, s.recall, s.f1), (1.0, 1.0, 1.0));
    assert_eq!(s.profiles_with_multiple_accounts, 0);
}

#[test]
fn over_merge_costs_precision() {
    // Everything in one profile: 10 predicted pairs, 4 of them right.
    let export = profile(
        &[
            ("crm", "c-1"),
            ("crm", "c-2"),
            ("web", "w-1"),
            ("crm", "c-3"),
            ("web", "w-2"),
        ],
        &["a1", "a2"],
    );
    let s = score(&export, TRUTH).expect("scores");
    assert_eq!(
        (s.true_pairs, s.predicted_pairs, s.correct_pairs),
        (4, 10, 4)
    );
    assert_eq!((s.precision, s.recall), (0.4, 1.0));
    assert!((s.f1 - 2.0 * 0.4 / 1.4).abs() < 1e-12);
    assert_eq!(s.profiles_with_multiple_accounts, 1);
}

#[test]
fn under_merge_costs_recall() {
    // person-1 split in two: of its 3 pairs only (c-1, c-2) is found.
    let export = profile(&[("crm", "c-1"), ("crm", "c-2")], &["a1"])
        + &profile(&[("web", "w-1")], &[])
        + &profile(&[("crm", "c-3"), ("web", "w-2")], &["a2", "a2"]);
    let s = score(&export, TRUTH).expect("scores");
    assert_eq!(
        (s.true_pairs, s.predicted_pairs, s.correct_pairs),
        (4, 2, 2)
    );
    assert_eq!((s.precision, s.recall), (1.0, 0.5));
    assert!((s.f1 - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(
        s.profiles_with_multiple_accounts, 0,
        "one account listed twice is one account"
    );
}

#[test]
fn records_missing_on_either_side_are_not_scored() {
    // w-2 is not exported; x-9 is not in the truth; o-1 is no person.
    let export = profile(
        &[
            ("crm", "c-1"),
            ("crm", "c-2"),
            ("web", "w-1"),
            ("crm", "x-9"),
        ],
        &[],
    ) + &profile(&[("crm", "c-3"), ("crm", "o-1")], &[]);
    let s = score(&export, TRUTH).expect("scores");
    assert_eq!(
        (s.true_pairs, s.predicted_pairs, s.correct_pairs, s.records),
        (3, 3, 3, 4)
    );
    assert_eq!(s.f1, 1.0);
}

#[test]
fn an_empty_truth_or_an_export_of_other_records_is_refused() {
    // Scores over nothing would read as perfect.
    let err = score("", "").unwrap_err();
    assert!(matches!(err, EvaluateError::EmptyTruth), "{err}");
    let err = score("", TRUTH).unwrap_err();
    assert!(matches!(err, EvaluateError::NothingScored { .. }), "{err}");
    let strangers = profile(&[("crm", "x-8"), ("crm", "x-9")], &[]);
    let err = score(&strangers, TRUTH).unwrap_err().to_string();
    assert!(err.contains("no record of the export"), "{err}");
}

#[test]
fn singletons_score_no_pair_wrong() {
    let singletons = profile(&[("crm", "c-1")], &[]) + &profile(&[("crm", "c-3")], &[]);
    let s = score(&singletons, TRUTH).expect("scores");
    assert_eq!(
        (s.true_pairs, s.predicted_pairs, s.precision, s.recall),
        (0, 0, 1.0, 1.0)
    );
}

#[test]
fn unknown_fields_blank_lines_and_retracted_truth_are_tolerated() {
    let export = "\n".to_string()
        + r#"{"profile_id":"p1","kind":"person","version":3,"records":[{"source":"crm","id":"c-1","ts":"x","note":"extra"},{"source":"crm","id":"c-2"}],"identifiers":[{"type":"email","value":"a@b.c","extra":1}]}"#
        + "\n   \n";
    let truth = TRUTH.to_string()
        + r#"{"source":"crm","id":"b-1","kind":"person","entity":"person-1","retracted":true}"#
        + "\n";
    let s = score(&export, &truth).expect("scores");
    assert_eq!((s.predicted_pairs, s.correct_pairs, s.records), (1, 1, 2));
}

#[test]
fn a_bad_line_is_named_by_number() {
    let export =
        profile(&[("crm", "c-1")], &[]) + "\n" + r#"{"profile_id":"p2","kind":"person"}"# + "\n";
    let err = score(&export, TRUTH).expect_err("missing records");
    assert!(
        matches!(
            err,
            EvaluateError::BadLine {
                input: Input::Export,
                line: 3,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("export line 3: missing field `records`"),
        "{message}"
    );
    assert!(
        message.contains(r#""records": [{"source": "crm""#),
        "{message}"
    );

    let truth = TRUTH.to_string() + "{not json\n";
    let err = score("", &truth).expect_err("bad truth");
    assert!(
        matches!(
            err,
            EvaluateError::BadLine {
                input: Input::Truth,
                line: 7,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains("at line 1"), "{err}");
}

#[test]
fn duplicates_are_refused() {
    let truth = TRUTH.to_string()
        + r#"{"source":"crm","id":"c-2","kind":"person","entity":"person-2"}"#
        + "\n";
    let err = score("", &truth).expect_err("duplicate truth");
    assert!(
        matches!(
            err,
            EvaluateError::DuplicateTruthRecord {
                line: 7,
                first: 2,
                ..
            }
        ),
        "{err:?}"
    );

    let export = profile(&[("crm", "c-1"), ("crm", "c-2")], &[]) + &profile(&[("crm", "c-2")], &[]);
    let err = score(&export, TRUTH).expect_err("record in two profiles");
    assert!(
        matches!(
            err,
            EvaluateError::DuplicateExportRecord {
                line: 2,
                first: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("(crm, c-2)"), "{err}");
}

#[test]
fn pairs_come_from_cells_not_enumeration() {
    // A profile of 100 000 records: C(n, 2) must not be computed by looping.
    let n = 100_000u64;
    let mut truth = String::new();
    let mut records = Vec::with_capacity(n as usize);
    for i in 0..n {
        truth.push_str(&format!(
            r#"{{"source":"s","id":"{i}","kind":"person","entity":"e{}"}}"#,
            i % 2
        ));
        truth.push('\n');
        records.push(format!(r#"{{"source":"s","id":"{i}"}}"#));
    }
    let export = format!(r#"{{"records":[{}]}}"#, records.join(","));
    let s = score(&export, &truth).expect("scores");
    let half = n / 2;
    assert_eq!(s.predicted_pairs, n * (n - 1) / 2);
    assert_eq!(s.true_pairs, 2 * (half * (half - 1) / 2));
    assert_eq!(s.correct_pairs, s.true_pairs);
    assert_eq!(s.recall, 1.0);
}

#[test]
fn entities_named_by_relationships_are_not_the_records_themselves() {
    // The device profile lists c-1 through its `uses` relationship: that is
    // not a second placement of the person record c-1.
    let device = r#"{"profile_id":"d","kind":"device","records":[{"source":"crm","id":"c-1","relationship":"uses","index":0},{"source":"crm","id":"c-3","relationship":"uses","index":0}],"identifiers":[],"attributes":{},"relationships":[]}"#.to_string() + "\n";
    let export = profile(&[("crm", "c-1"), ("crm", "c-2"), ("web", "w-1")], &["a1"])
        + &profile(&[("crm", "c-3"), ("web", "w-2")], &["a2"])
        + &device;
    let s = score(&export, TRUTH).expect("scores");
    assert_eq!((s.precision, s.recall), (1.0, 1.0));
    assert_eq!(s.records, 5);
}
