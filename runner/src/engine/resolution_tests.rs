//! Entity resolution inside the engine: links from attributes, with the same
//! guarantees as identifiers.

use super::*;
use crate::observation::parse_line;
use proptest::prelude::*;

const PIPELINE: &str = r#"
name: er
identifiers:
  - type: account_id
    exclusiveLimit: 1
resolution:
  prior: 0.01
  matchThreshold: 0.99
  possibleThreshold: 0.5
  keys:
    - {name: sur, attribute: surname}
    - {name: dob_year, attribute: dob, transform: year}
  blocking:
    rules: [[sur], [dob_year]]
    maxBlockSize: 6
  comparisons:
    - attribute: given_name
      method: {jaroWinkler: {thresholds: [0.9]}}
      m: [0.8, 0.15, 0.05]
      u: [0.01, 0.04, 0.95]
    - attribute: surname
      method: exact
      m: [0.95, 0.05]
      u: [0.02, 0.98]
    - attribute: dob
      method: {date: {maxYearDistances: [1]}}
      m: [0.9, 0.03, 0.03, 0.02, 0.02]
      u: [0.001, 0.001, 0.01, 0.01, 0.978]
"#;

fn pipeline() -> Arc<Pipeline> {
    Arc::new(Pipeline::from_yaml(PIPELINE, "test", &|_| None).unwrap())
}

fn person(
    id: &str,
    ts_day: u8,
    given: &str,
    surname: &str,
    dob: &str,
    account: Option<&str>,
) -> String {
    let ids = account
        .map(|a| format!(r#"{{"type":"account_id","value":"{a}"}}"#))
        .unwrap_or_default();
    format!(
        r#"{{"source":"s","id":"{id}","ts":"2026-01-{ts_day:02}T00:00:00Z","kind":"person","identifiers":[{ids}],"attributes":{{"given_name":"{given}","surname":"{surname}","dob":"{dob}"}}}}"#
    )
}

fn apply(e: &mut Engine, line: &str) {
    let p = e.pipeline.clone();
    e.apply(&parse_line(line.as_bytes(), &p).unwrap_or_else(|err| panic!("{line}: {err}")));
}

fn engine(lines: &[String]) -> Engine {
    let mut e = Engine::new(pipeline());
    for l in lines {
        apply(&mut e, l);
    }
    e
}

fn partition(e: &Engine) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = e
        .export()
        .into_iter()
        .map(|v| v.records.iter().map(|r| r.id.clone()).collect())
        .collect();
    out.sort();
    out
}

#[test]
fn records_without_shared_identifiers_link_by_their_attributes() {
    let e = engine(&[
        person("a", 1, "Jonathan", "Smith", "1980-04-09", None),
        person("b", 1, "JONATHAN ", "smith", "19800409", None),
        person("c", 1, "Maria", "Garcia", "1975-01-02", None),
    ]);
    assert_eq!(partition(&e), vec![vec!["a", "b"], vec!["c"]]);
    let why = e.explain(("record", "s/a"), ("record", "s/b")).unwrap();
    assert!(why.same_profile);
    let text = why.lines.join("\n");
    assert!(text.contains("match by their attributes"), "{text}");
    assert!(
        text.contains("given_name") && text.contains("dob") && text.contains("match: linked"),
        "{text}"
    );
}

#[test]
fn a_day_month_transposition_still_links_and_a_bad_date_is_no_evidence() {
    let e = engine(&[
        person("a", 1, "Jonathan", "Smith", "1980-04-09", None),
        person("b", 1, "Jonathan", "Smith", "1980-09-04", None),
        person("c", 1, "Jonathan", "Smith", "09/04/80", None),
    ]);
    // a and b: same names, day and month transposed. c: the date is
    // ambiguous, so only the names speak: a possible match, not a link.
    assert_eq!(partition(&e), vec![vec!["a", "b"], vec!["c"]]);
    assert!(e.value_counters().unusable >= 1);
}

#[test]
fn changing_or_retracting_a_record_splits_again() {
    let mut e = engine(&[
        person("a", 1, "Jonathan", "Smith", "1980-04-09", None),
        person("b", 1, "Jonathan", "Smith", "1980-04-09", None),
    ]);
    assert_eq!(partition(&e), vec![vec!["a", "b"]]);
    apply(
        &mut e,
        &person("b", 2, "Priya", "Smith", "1990-12-30", None),
    );
    assert_eq!(partition(&e), vec![vec!["a"], vec!["b"]]);
    apply(
        &mut e,
        &person("b", 3, "Jonathan", "Smith", "1980-04-09", None),
    );
    assert_eq!(partition(&e), vec![vec!["a", "b"]]);
    apply(
        &mut e,
        r#"{"source":"s","id":"b","ts":"2026-01-04T00:00:00Z","retract":true}"#,
    );
    assert_eq!(partition(&e), vec![vec!["a"]]);
}

#[test]
fn possible_matches_are_reported_not_linked() {
    let mut e = engine(&[person("a", 1, "Jonathan", "Smith", "1980-04-09", None)]);
    e.clear_events();
    // Same names, no date of birth: evidence, but not enough.
    apply(
        &mut e,
        r#"{"source":"s","id":"b","ts":"2026-01-01T00:00:00Z","kind":"person","attributes":{"given_name":"Jonathan","surname":"Smith"}}"#,
    );
    assert_eq!(partition(&e), vec![vec!["a"], vec!["b"]]);
    let events: Vec<ChangeEvent> = e.drain_events().collect();
    let possible = events
        .iter()
        .find(|ev| ev.kind == ChangeKind::PossibleMatch)
        .expect("a possible match");
    let p = possible.probability.unwrap();
    assert!((0.5..0.99).contains(&p), "{p}");
}

#[test]
fn matches_never_join_two_accounts() {
    let e = engine(&[
        person("a", 1, "Jonathan", "Smith", "1980-04-09", Some("A1")),
        person("b", 1, "Jonathan", "Smith", "1980-04-09", Some("A2")),
        person("c", 1, "Jonathan", "Smith", "1980-04-09", None),
    ]);
    for v in e.export() {
        assert!(v.identifiers.len() <= 1, "{:?}", v.records);
    }
    let why = e.explain(("record", "s/a"), ("record", "s/b")).unwrap();
    assert!(!why.same_profile);
}

#[test]
fn oversized_blocks_are_skipped_and_links_follow_their_size() {
    // Seven records share the surname block (limit 6): it is skipped, and
    // only the year-of-birth block can still bring pairs together.
    // Birth dates that differ in several digits: no two of them are close.
    let dobs = [
        "1931-02-03",
        "1942-03-14",
        "1953-04-25",
        "1964-05-06",
        "1975-06-17",
        "1986-07-28",
    ];
    let mut lines: Vec<String> = dobs
        .iter()
        .enumerate()
        .map(|(i, d)| person(&format!("x{i}"), 1, "Ann", "Lee", d, None))
        .collect();
    lines.push(person("y", 1, "Ann", "Lee", "1931-02-03", None));
    let e = engine(&lines);
    // y and x0 share the 1931 block too: still linked.
    assert!(
        partition(&e).contains(&vec!["x0".to_string(), "y".to_string()]),
        "{:?}",
        partition(&e)
    );
    assert!(e.resolver.oversized_skips > 0);
    // Without y the surname block is usable again; x0 still has no partner
    // with a close enough birth date.
    let mut e = e;
    apply(
        &mut e,
        r#"{"source":"s","id":"y","ts":"2026-01-02T00:00:00Z","retract":true}"#,
    );
    assert_eq!(partition(&e).len(), 6);
}

fn arb_person() -> impl Strategy<Value = String> {
    (
        0..8u8,
        1..4u8,
        0..3usize,
        0..3usize,
        0..3usize,
        prop::option::of(0..2u8),
        0..8u8,
    )
        .prop_map(|(id, day, g, s, d, account, roll)| {
            if roll == 0 {
                return format!(
                    r#"{{"source":"s","id":"{id}","ts":"2026-01-0{day}T00:00:00Z","retract":true}}"#
                );
            }
            let given = ["Jonathan", "Jonathon", "Maria"][g];
            let surname = ["Smith", "Smyth", "Smith"][s];
            let dob = ["1980-04-09", "1980-09-04", "1981-04-09"][d];
            person(
                &id.to_string(),
                day,
                given,
                surname,
                dob,
                account.map(|a| if a == 0 { "A1" } else { "A2" }),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn resolution_is_sequence_neutral(lines in prop::collection::vec(arb_person(), 1..30), seed in any::<u64>()) {
        let p = pipeline();
        let observations: Vec<Observation> = lines.iter().map(|l| parse_line(l.as_bytes(), &p).unwrap()).collect();
        let mut forward = Engine::new(p.clone());
        for o in &observations {
            forward.apply(o);
        }
        let other = super::tests::engine_fed(&p, &super::tests::shuffled(&observations, seed));
        let expected = super::tests::export_json(&super::tests::rebuilt(&forward));
        prop_assert_eq!(&super::tests::export_json(&forward), &expected);
        prop_assert_eq!(&super::tests::export_json(&other), &expected);
        for v in forward.export() {
            prop_assert!(v.identifiers.len() <= 1);
        }
    }
}

#[test]
fn odd_values_are_cleaned_truncated_or_counted_never_fatal() {
    let long = "x".repeat(5000);
    let e = engine(&[
        person("a", 1, "Jon\\u0000athan\\t", "Smith", "1980-04-09", None),
        person("b", 1, "Jonathan", "SMITH", "1980-04-09", None),
        person("c", 1, &long, &long, "31/31/1999", None),
        r#"{"source":"s","id":"d","ts":"2026-01-01T00:00:00Z","kind":"person","attributes":{"given_name":["not","text"],"surname":{"x":1},"dob":17}}"#.to_string(),
    ]);
    // The control character and the tab are cleaned away: a and b match.
    assert!(
        partition(&e).contains(&vec!["a".to_string(), "b".to_string()]),
        "{:?}",
        partition(&e)
    );
    let counters = e.value_counters();
    assert!(counters.truncated >= 2, "{counters:?}");
    assert!(counters.unusable >= 3, "{counters:?}");
    assert_eq!(e.profile_count(), 3);
}
