use super::*;
use crate::observation::parse_line;
use proptest::prelude::*;

const PIPELINE: &str = r#"
name: test
identifiers:
  - type: email
    normalize: email
    blocklist: ['^test@test\.com$']
  - type: phone
    normalize: phone
  - type: account_id
    exclusiveLimit: 1
  - type: device_id
    normalize: lowercase
  - type: cookie
    link: false
survivorship:
  default: mostRecent
  sourcePriority: [crm, web]
  attributes:
    tier: {policy: sourcePriority}
    city: {policy: mostFrequent}
    first_seen: {policy: firstNonEmpty}
"#;

fn pipeline() -> Arc<Pipeline> {
    Arc::new(Pipeline::from_yaml(PIPELINE, "test", &|_| None).unwrap())
}

fn obs(p: &Pipeline, line: &str) -> Observation {
    parse_line(line.as_bytes(), p).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn engine_with(lines: &[&str]) -> Engine {
    let p = pipeline();
    let mut e = Engine::new(p.clone());
    for l in lines {
        e.apply(&obs(&p, l));
    }
    e
}

/// Profiles as sorted lists of `source/id`, for assertions that ignore ids.
fn partition(e: &Engine) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = e
        .export()
        .into_iter()
        .filter(|v| v.kind == "person")
        .map(|v| {
            v.records
                .iter()
                .filter(|r| r.relationship.is_none())
                .map(|r| format!("{}/{}", r.source, r.id))
                .collect()
        })
        .collect();
    out.sort();
    out
}

pub(super) fn export_json(e: &Engine) -> String {
    e.export()
        .iter()
        .map(|v| serde_json::to_string(v).unwrap() + "\n")
        .collect()
}

/// A permutation of `items` derived from `seed` (Fisher-Yates over xorshift).
pub(super) fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut out = items.to_vec();
    let mut state = seed | 1;
    for i in (1..out.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.swap(i, (state % (i as u64 + 1)) as usize);
    }
    out
}

/// A fresh engine fed the observations in the given order.
pub(super) fn engine_fed(p: &Arc<Pipeline>, observations: &[Observation]) -> Engine {
    let mut e = Engine::new(p.clone());
    for o in observations {
        e.apply(o);
    }
    e
}

/// A fresh engine fed the stored versions in key order: the canonical answer
/// for the same set of records.
pub(super) fn rebuilt(e: &Engine) -> Engine {
    let mut versions: Vec<Observation> = e.versions().collect();
    versions.sort_by(|a, b| (&a.source, &a.id).cmp(&(&b.source, &b.id)));
    engine_fed(&e.pipeline, &versions)
}

const A1: &str = r#"{"source":"crm","id":"1","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":" Ann@Example.com"}],"attributes":{"name":"Ann"}}"#;
const A2: &str = r#"{"source":"web","id":"2","ts":"2026-01-02T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"ann@example.com"},{"type":"phone","value":"(415) 555-0100"}]}"#;
const A3: &str = r#"{"source":"app","id":"3","ts":"2026-01-03T00:00:00Z","kind":"person","identifiers":[{"type":"phone","value":"+1 415 555 0100"}]}"#;

#[test]
fn normalized_identifiers_link_records_transitively() {
    let e = engine_with(&[A1, A3, A2]);
    assert_eq!(partition(&e), vec![vec!["app/3", "crm/1", "web/2"]]);
    assert_eq!(e.profile_count(), 1);
}

#[test]
fn retracting_the_bridge_splits_the_profile_and_reports_it() {
    let p = pipeline();
    let mut e = engine_with(&[A1, A2, A3]);
    e.clear_events();
    e.apply(&obs(
        &p,
        r#"{"source":"web","id":"2","ts":"2026-01-05T00:00:00Z","retract":true}"#,
    ));
    assert_eq!(partition(&e), vec![vec!["app/3"], vec!["crm/1"]]);
    let events: Vec<ChangeEvent> = e.drain_events().collect();
    assert!(
        events
            .iter()
            .any(|ev| ev.kind == ChangeKind::Split && ev.related.len() == 2),
        "{events:?}"
    );
}

#[test]
fn a_retraction_arriving_first_keeps_a_tombstone() {
    let e = engine_with(&[
        r#"{"source":"web","id":"2","ts":"2026-01-05T00:00:00Z","retract":true}"#,
        A1,
        A2,
        A3,
    ]);
    assert_eq!(partition(&e), vec![vec!["app/3"], vec!["crm/1"]]);
}

#[test]
fn on_equal_timestamps_a_retraction_wins_then_the_larger_canonical_json() {
    let v1 = r#"{"source":"crm","id":"9","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"a@x.io"}]}"#;
    let v2 = r#"{"source":"crm","id":"9","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"b@x.io"}]}"#;
    let gone = r#"{"source":"crm","id":"9","ts":"2026-01-01T00:00:00Z","retract":true}"#;
    for order in [[v1, v2], [v2, v1]] {
        let e = engine_with(&order);
        let export = e.export();
        assert_eq!(export.len(), 1);
        assert_eq!(export[0].identifiers[0].value, "b@x.io");
    }
    for order in [[v1, gone], [gone, v1]] {
        assert_eq!(engine_with(&order).profile_count(), 0);
    }
}

#[test]
fn two_accounts_are_never_one_person() {
    // The shared email would link them, but each carries its own account.
    let e = engine_with(&[
        r#"{"source":"crm","id":"1","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"fam@x.io"},{"type":"account_id","value":"A"}]}"#,
        r#"{"source":"crm","id":"2","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"fam@x.io"},{"type":"account_id","value":"B"}]}"#,
        r#"{"source":"web","id":"3","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"account_id","value":"A"},{"type":"phone","value":"4155550100"}]}"#,
    ]);
    assert_eq!(partition(&e), vec![vec!["crm/1", "web/3"], vec!["crm/2"]]);
    let explanation = e.explain(("account_id", "A"), ("account_id", "B")).unwrap();
    assert!(!explanation.same_profile);
    assert!(
        explanation
            .lines
            .iter()
            .any(|l| l.contains("generic") && l.contains("2 distinct account_id")),
        "{explanation:?}"
    );
}

#[test]
fn indirect_conflicts_are_resolved_by_the_canonical_order() {
    // The device is on records without accounts, so it is not generic by
    // itself; linking through it would still join two accounts.
    let lines = [
        r#"{"source":"s","id":"a1","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"a@x.io"},{"type":"account_id","value":"A"}]}"#,
        r#"{"source":"s","id":"a2","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"a@x.io"},{"type":"device_id","value":"tablet"}]}"#,
        r#"{"source":"s","id":"b1","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"b@x.io"},{"type":"account_id","value":"B"}]}"#,
        r#"{"source":"s","id":"b2","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"b@x.io"},{"type":"device_id","value":"TABLET"}]}"#,
    ];
    let expected = vec![vec!["s/a1", "s/a2"], vec!["s/b1", "s/b2"]];
    let mut order = lines.to_vec();
    for _ in 0..4 {
        order.rotate_left(1);
        let e = engine_with(&order);
        assert_eq!(partition(&e), expected, "order {order:?}");
        assert_eq!(export_json(&e), export_json(&rebuilt(&e)));
    }
}

#[test]
fn blocklisted_values_never_link() {
    let e = engine_with(&[
        r#"{"source":"s","id":"1","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"TEST@test.com"}]}"#,
        r#"{"source":"s","id":"2","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"test@test.com "}]}"#,
    ]);
    assert_eq!(e.profile_count(), 2);
    let explanation = e
        .explain(("email", "test@test.com"), ("email", "test@test.com"))
        .unwrap();
    assert!(
        explanation.same_profile || explanation.lines.iter().any(|l| l.contains("blocklisted"))
    );
}

#[test]
fn non_linking_types_are_kept_but_do_not_link() {
    let e = engine_with(&[
        r#"{"source":"s","id":"1","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"cookie","value":"c1"}]}"#,
        r#"{"source":"s","id":"2","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"cookie","value":"c1"}]}"#,
    ]);
    assert_eq!(e.profile_count(), 2);
    assert_eq!(e.lookup("cookie", "c1").unwrap().len(), 2);
}

#[test]
fn survivorship_policies_choose_with_provenance() {
    let e = engine_with(&[
        r#"{"source":"web","id":"1","ts":"2026-01-03T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"a@x.io"}],"attributes":{"name":"Annie","tier":"gold","city":"Oslo","first_seen":"2026"}}"#,
        r#"{"source":"crm","id":"2","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"a@x.io"}],"attributes":{"name":"Ann","tier":"silver","city":"Bergen","first_seen":"2025"}}"#,
        r#"{"source":"app","id":"3","ts":"2026-01-02T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"a@x.io"}],"attributes":{"city":"Bergen","name":""}}"#,
    ]);
    let view = &e.export()[0];
    let attr = |k: &str| view.attributes[k].get().to_string();
    assert_eq!(attr("name"), "\"Annie\""); // most recent non-empty
    assert_eq!(attr("tier"), "\"silver\""); // crm outranks web
    assert_eq!(attr("city"), "\"Bergen\""); // two records against one
    assert_eq!(attr("first_seen"), "\"2025\""); // earliest
    assert_eq!(view.provenance["tier"].source, "crm");
    assert_eq!(view.provenance["name"].id, "1");
}

#[test]
fn relationships_connect_profiles_of_other_kinds() {
    let e = engine_with(&[
        r#"{"source":"crm","id":"1","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"a@x.io"}],"relationships":[{"type":"uses","kind":"device","identifiers":[{"type":"device_id","value":"D-9"}]}]}"#,
        r#"{"source":"web","id":"2","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"email","value":"b@x.io"}],"relationships":[{"type":"uses","kind":"device","identifiers":[{"type":"device_id","value":"d-9 "}]}]}"#,
    ]);
    let export = e.export();
    let devices: Vec<_> = export.iter().filter(|v| v.kind == "device").collect();
    assert_eq!(devices.len(), 1, "both relationships name one device");
    let people: Vec<_> = export.iter().filter(|v| v.kind == "person").collect();
    assert_eq!(
        people.len(),
        2,
        "a shared device in a relationship does not merge people"
    );
    for p in people {
        assert_eq!(p.relationships.len(), 1);
        assert_eq!(p.relationships[0].profile_id, devices[0].profile_id);
    }
}

#[test]
fn profile_ids_depend_only_on_members() {
    let a = engine_with(&[A1, A2, A3]);
    let b = engine_with(&[A3, A1, A2]);
    assert_eq!(export_json(&a), export_json(&b));
    let id = &a.export()[0].profile_id;
    assert!(
        id.starts_with("person-") && id.len() == "person-".len() + 24,
        "{id}"
    );
}

#[test]
fn merges_report_the_previous_ids() {
    let p = pipeline();
    let mut e = engine_with(&[A1, A3]);
    let before: Vec<String> = e.export().iter().map(|v| v.profile_id.clone()).collect();
    e.clear_events();
    e.apply(&obs(&p, A2));
    let events: Vec<ChangeEvent> = e.drain_events().collect();
    let merged = events
        .iter()
        .find(|ev| ev.kind == ChangeKind::Merged)
        .expect("a merge event");
    let mut previous: Vec<String> = merged.related.iter().map(|i| i.to_string()).collect();
    previous.sort();
    let mut before = before;
    before.sort();
    assert_eq!(previous, before);
}

// ---- Sequence neutrality, by property ------------------------------------

/// Small universes make collisions, conflicts, ties and retractions frequent.
fn arb_line() -> impl Strategy<Value = String> {
    let ident = prop_oneof![
        (0..4u8).prop_map(|i| format!(r#"{{"type":"email","value":"E{i}@x.io "}}"#)),
        (0..3u8).prop_map(|i| format!(r#"{{"type":"phone","value":"415555010{i}"}}"#)),
        (0..4u8).prop_map(|i| format!(r#"{{"type":"account_id","value":"acct{i}"}}"#)),
        (0..2u8).prop_map(|i| format!(r#"{{"type":"device_id","value":"Dev{i}"}}"#)),
        Just(r#"{"type":"email","value":"test@test.com"}"#.to_string()),
    ];
    (
        0..2u8,
        0..6u8,
        0..4u8,
        prop::collection::vec(ident, 0..4),
        0..10u8,
        0..3u8,
        prop::option::of((0..2u8, 0..3u8)),
        0..8u8,
    )
        .prop_map(|(src, id, day, idents, roll, city, related, kind_roll)| {
            let ts = format!("2026-01-0{}T00:00:00Z", day + 1);
            if roll == 0 {
                return format!(r#"{{"source":"s{src}","id":"{id}","ts":"{ts}","retract":true}}"#);
            }
            // At most one account per record: keep the first.
            let mut seen_account = false;
            let idents: Vec<String> = idents
                .into_iter()
                .filter(|i| !i.contains("account_id") || !std::mem::replace(&mut seen_account, true))
                .collect();
            // Relationships name devices, and sometimes other people (by an
            // email that top-level person records also hold).
            let rel = related
                .map(|(d, which)| match which {
                    0 => format!(r#","relationships":[{{"type":"knows","kind":"person","identifiers":[{{"type":"email","value":"e{d}@x.io"}}]}}]"#),
                    _ => format!(r#","relationships":[{{"type":"uses","kind":"device","identifiers":[{{"type":"device_id","value":"dev{d}"}}]}}]"#),
                })
                .unwrap_or_default();
            // A record occasionally changes kind between versions.
            let kind = if kind_roll == 0 { "organization" } else { "person" };
            format!(
                r#"{{"source":"s{src}","id":"{id}","ts":"{ts}","kind":"{kind}","identifiers":[{}],"attributes":{{"city":"c{city}","n":{roll}}}{rel}}}"#,
                idents.join(",")
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_order_gives_the_canonical_profiles(lines in prop::collection::vec(arb_line(), 1..40), seed in any::<u64>()) {
        let p = pipeline();
        let observations: Vec<Observation> = lines.iter().map(|l| obs(&p, l)).collect();
        let mut forward = Engine::new(p.clone());
        for o in &observations {
            forward.apply(o);
        }
        let other = engine_fed(&p, &shuffled(&observations, seed));
        let expected = export_json(&rebuilt(&forward));
        prop_assert_eq!(&export_json(&forward), &expected);
        prop_assert_eq!(&export_json(&other), &expected);
        for view in forward.export() {
            let accounts = view.identifiers.iter().filter(|i| i.type_name == "account_id").count();
            prop_assert!(accounts <= 1, "profile {} holds {} accounts", view.profile_id, accounts);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// A restart rebuilds the engine from the stored versions alone (in
    /// whatever order the store yields them), then goes on with the rest.
    #[test]
    fn a_restart_anywhere_gives_the_same_profiles(lines in prop::collection::vec(arb_line(), 1..40), cut in 0..40usize) {
        let p = pipeline();
        let observations: Vec<Observation> = lines.iter().map(|l| obs(&p, l)).collect();
        let cut = cut.min(observations.len());
        let mut uninterrupted = Engine::new(p.clone());
        for o in &observations {
            uninterrupted.apply(o);
        }
        let mut before = Engine::new(p.clone());
        for o in &observations[..cut] {
            before.apply(o);
        }
        let mut stored: Vec<Observation> = before.versions().collect();
        stored.reverse();
        let mut after = Engine::new(p.clone());
        for v in &stored {
            after.apply(v);
        }
        for o in &observations[cut..] {
            after.apply(o);
        }
        prop_assert_eq!(export_json(&after), export_json(&uninterrupted));
    }
}
