use super::dice::{self, Dice};
use super::emit::json_ts;
use super::ids::IdType;
use super::people::EPOCH;
use super::variants::spell;
use super::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

struct Run {
    out: Vec<u8>,
    truth: Vec<u8>,
    stats: GenerateStats,
}

fn run(people: u64, seed: u64) -> Run {
    let (mut out, mut truth) = (Vec::new(), Vec::new());
    let stats = generate(
        &GenerateOptions { people, seed },
        &mut out,
        Some(&mut truth),
    )
    .expect("generate");
    Run { out, truth, stats }
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_slice(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1)))
        .collect()
}

fn text<'v>(v: &'v Value, field: &str) -> &'v str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string in {v}"))
}

type Key = (String, String);

fn key(v: &Value) -> Key {
    (text(v, "source").to_string(), text(v, "id").to_string())
}

/// What the canonical pipeline would make of a raw value (docs/design.md §2), written
/// independently of the engine's normalizers.
fn normalize(ty: &str, raw: &str) -> String {
    match ty {
        "email" | "device_id" => raw.trim().to_lowercase(),
        "phone" => {
            let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
            match digits.len() {
                10 => format!("+1{digits}"),
                11 if digits.starts_with('1') => format!("+{digits}"),
                _ => panic!("phone `{raw}` is not a North American number"),
            }
        }
        _ => raw.trim().to_string(),
    }
}

const JUNK: [&str; 4] = [
    "test@test.com",
    "noemail@none.com",
    "+10000000000",
    "00000000-0000-0000-0000-000000000000",
];

type Ident = (String, String);

fn identifiers(version: &Value) -> Vec<Ident> {
    version["identifiers"]
        .as_array()
        .expect("identifiers")
        .iter()
        .map(|i| {
            (
                text(i, "type").to_string(),
                normalize(text(i, "type"), text(i, "value")),
            )
        })
        .collect()
}

/// The end state of a record: its latest version unless a later retraction
/// removed it, and where its lines sit in the output.
#[derive(Default)]
struct RecordState {
    /// (ts, output position, line)
    versions: Vec<(String, usize, Value)>,
    retraction: Option<(String, usize)>,
}

impl RecordState {
    fn latest(&self) -> &Value {
        &self
            .versions
            .iter()
            .max_by(|a, b| a.0.cmp(&b.0))
            .expect("a version")
            .2
    }

    fn live(&self) -> bool {
        let last_version = self.versions.iter().map(|v| &v.0).max();
        match (&self.retraction, last_version) {
            (Some((r, _)), Some(v)) => v > r,
            (Some(_), None) => false,
            (None, _) => true,
        }
    }
}

fn states(lines: &[Value]) -> BTreeMap<Key, RecordState> {
    let mut states: BTreeMap<Key, RecordState> = BTreeMap::new();
    for (pos, line) in lines.iter().enumerate() {
        let state = states.entry(key(line)).or_default();
        let ts = text(line, "ts").to_string();
        if line.get("retract").is_some() {
            assert!(
                state.retraction.is_none(),
                "two retractions of {:?}",
                key(line)
            );
            state.retraction = Some((ts, pos));
        } else {
            state.versions.push((ts, pos, line.clone()));
        }
    }
    states
}

fn truth_map(truth: &[Value]) -> BTreeMap<Key, String> {
    let mut map = BTreeMap::new();
    for t in truth {
        let previous = map.insert(key(t), text(t, "entity").to_string());
        assert!(previous.is_none(), "{:?} twice in the truth", key(t));
    }
    map
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = run(1500, 7);
    let b = run(1500, 7);
    assert!(
        a.out == b.out,
        "observations differ between runs of one seed"
    );
    assert!(a.truth == b.truth, "truth differs between runs of one seed");
    assert_eq!(a.stats, b.stats);
    let c = run(1500, 8);
    assert!(a.out != c.out);
    assert!(a.truth != c.truth);
}

#[test]
fn size_is_about_five_observations_per_person() {
    let r = run(5000, 1);
    let lines = json_lines(&r.out);
    assert_eq!(r.stats.people, 5000);
    assert_eq!(r.stats.observations, lines.len() as u64);
    assert_eq!(r.stats.records, states(&lines).len() as u64);
    let per_person = r.stats.observations as f64 / 5000.0;
    assert!(
        (4.5..5.5).contains(&per_person),
        "{per_person} observations per person"
    );
}

#[test]
fn no_people_no_lines() {
    let r = run(0, 3);
    assert!(r.out.is_empty() && r.truth.is_empty());
    assert_eq!(
        r.stats,
        GenerateStats {
            people: 0,
            observations: 0,
            records: 0
        }
    );
}

#[test]
fn too_many_people_is_refused() {
    let opts = GenerateOptions {
        people: MAX_PEOPLE + 1,
        seed: 0,
    };
    let err = generate(&opts, &mut Vec::new(), None).expect_err("refused");
    assert!(matches!(err, GenerateError::TooManyPeople { .. }), "{err}");
    assert!(err.to_string().contains("--people"));
}

#[test]
fn every_line_is_a_canonical_observation() {
    let r = run(3000, 2);
    let types = ["email", "phone", "device_id", "account_id", "cookie"];
    for (i, line) in json_lines(&r.out).iter().enumerate() {
        let at = format!("line {}: {line}", i + 1);
        let object = line.as_object().expect("an object");
        for field in ["source", "id", "ts"] {
            assert!(!text(line, field).is_empty(), "{at}");
        }
        let ts = text(line, "ts");
        assert!(
            ts.len() == 20 && ts.starts_with("2026-") && ts.ends_with('Z') && &ts[10..11] == "T",
            "{at}"
        );
        if object.contains_key("retract") {
            assert_eq!(line["retract"], Value::Bool(true), "{at}");
            assert_eq!(object.len(), 4, "{at}");
            continue;
        }
        assert!(
            matches!(text(line, "kind"), "person" | "organization"),
            "{at}"
        );
        let ids = line["identifiers"].as_array().expect("identifiers");
        assert!(!ids.is_empty(), "{at}");
        for id in ids {
            assert!(types.contains(&text(id, "type")), "{at}");
            normalize(text(id, "type"), text(id, "value"));
        }
        let accounts: BTreeSet<String> = identifiers(line)
            .into_iter()
            .filter(|(t, _)| t == "account_id")
            .map(|(_, v)| v)
            .collect();
        assert!(
            accounts.len() <= 1,
            "more accounts than the exclusive limit: {at}"
        );
        assert!(line["attributes"].is_object(), "{at}");
        for rel in line
            .get("relationships")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            assert!(
                matches!(text(rel, "type"), "uses" | "owns" | "member_of"),
                "{at}"
            );
            assert!(
                matches!(text(rel, "kind"), "device" | "account" | "organization"),
                "{at}"
            );
            assert_eq!(rel["identifiers"].as_array().map(Vec::len), Some(1), "{at}");
        }
        let allowed = [
            "source",
            "id",
            "ts",
            "kind",
            "identifiers",
            "attributes",
            "relationships",
        ];
        assert!(object.keys().all(|k| allowed.contains(&k.as_str())), "{at}");
    }
}

#[test]
fn truth_covers_every_live_record_exactly_once() {
    let r = run(4000, 3);
    let states = states(&json_lines(&r.out));
    let truth = json_lines(&r.truth);
    let truth_keys = truth_map(&truth);
    let live: BTreeSet<&Key> = states
        .iter()
        .filter(|(_, s)| s.live())
        .map(|(k, _)| k)
        .collect();
    assert_eq!(live, truth_keys.keys().collect::<BTreeSet<_>>());
    for t in &truth {
        let state = &states[&key(t)];
        assert_eq!(text(state.latest(), "kind"), text(t, "kind"));
        let prefix = if text(t, "kind") == "person" {
            "person-"
        } else {
            "org-"
        };
        assert!(text(t, "entity").starts_with(prefix), "{t}");
    }
    let people: BTreeSet<&str> = truth
        .iter()
        .map(|t| text(t, "entity"))
        .filter(|e| e.starts_with("person-"))
        .collect();
    assert_eq!(people.len(), 4000, "every person keeps a live record");
}

/// Live records, by entity, with the normalized identifiers of their latest version.
fn live_records(r: &Run) -> (BTreeMap<Key, RecordState>, BTreeMap<Key, String>) {
    let states = states(&json_lines(&r.out));
    let truth = truth_map(&json_lines(&r.truth));
    (states, truth)
}

/// Which entities hold each identifier on a live record.
fn holders(
    states: &BTreeMap<Key, RecordState>,
    truth: &BTreeMap<Key, String>,
) -> BTreeMap<Ident, BTreeSet<String>> {
    let mut holders: BTreeMap<Ident, BTreeSet<String>> = BTreeMap::new();
    for (k, entity) in truth {
        for ident in identifiers(states[k].latest()) {
            holders.entry(ident).or_default().insert(entity.clone());
        }
    }
    holders
}

#[test]
fn only_junk_and_household_tablets_are_shared_between_entities() {
    let r = run(6000, 4);
    let (states, truth) = live_records(&r);
    let holders = holders(&states, &truth);
    // The accounts on the live records holding each device.
    let mut accounts_beside: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for k in truth.keys() {
        let ids = identifiers(states[k].latest());
        for (_, device) in ids.iter().filter(|(t, _)| t == "device_id") {
            let accounts = ids
                .iter()
                .filter(|(t, _)| t == "account_id")
                .map(|(_, v)| v.clone());
            let (device, _) = holders
                .get_key_value(&("device_id".to_string(), device.clone()))
                .expect("held");
            accounts_beside
                .entry(device.1.as_str())
                .or_default()
                .extend(accounts);
        }
    }
    let mut tablets = 0;
    for ((ty, value), entities) in &holders {
        if entities.len() < 2 || JUNK.contains(&value.as_str()) {
            continue;
        }
        assert_eq!(ty, "device_id", "{value} is held by {entities:?}");
        tablets += 1;
        // A household: every member holds their own account beside the tablet.
        assert_eq!(
            accounts_beside[value.as_str()].len(),
            entities.len(),
            "tablet {value}"
        );
    }
    assert!(
        tablets >= 20,
        "only {tablets} household tablets among 6000 people"
    );
    for junk in JUNK {
        let kind = if junk.contains('@') {
            "email"
        } else if junk.starts_with('+') {
            "phone"
        } else {
            "device_id"
        };
        let users = holders
            .get(&(kind.to_string(), junk.to_string()))
            .map_or(0, BTreeSet::len);
        assert!(users >= 5, "junk {junk} is used by {users} people only");
    }
    // Accounts are exclusive: never two per entity, never shared.
    let mut per_entity: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
    for ((ty, value), entities) in &holders {
        if ty == "account_id" {
            assert_eq!(entities.len(), 1, "account {value} shared by {entities:?}");
            per_entity
                .entry(entities.iter().next().expect("one"))
                .or_default()
                .insert(value);
        }
    }
    assert!(per_entity.values().all(|a| a.len() == 1));
}

#[test]
fn each_entity_is_connected_by_its_own_identifiers() {
    let r = run(3000, 5);
    let (states, truth) = live_records(&r);
    let holders = holders(&states, &truth);
    let mut by_entity: BTreeMap<&String, Vec<Vec<Ident>>> = BTreeMap::new();
    for (k, entity) in &truth {
        // Evidence an engine may use: identifiers no other entity holds.
        let own: Vec<Ident> = identifiers(states[k].latest())
            .into_iter()
            .filter(|i| holders[i].len() == 1)
            .collect();
        by_entity.entry(entity).or_default().push(own);
    }
    for (entity, records) in by_entity {
        // Grow a component from the first record until nothing joins.
        let mut reached: BTreeSet<&Ident> = records[0].iter().collect();
        let mut joined = vec![false; records.len()];
        joined[0] = true;
        let mut changed = true;
        while changed {
            changed = false;
            for (r, ids) in records.iter().enumerate() {
                if !joined[r] && ids.iter().any(|i| reached.contains(i)) {
                    joined[r] = true;
                    reached.extend(ids.iter());
                    changed = true;
                }
            }
        }
        assert!(
            joined.iter().all(|&j| j),
            "{entity}: records are not connected"
        );
    }
}

#[test]
fn bridges_join_two_people_and_are_retracted() {
    let r = run(6000, 6);
    let (states, truth) = live_records(&r);
    let holders = holders(&states, &truth);
    let mut bridges = 0;
    let mut deletions = 0;
    for (k, state) in &states {
        if state.live() {
            continue;
        }
        assert!(!truth.contains_key(k), "retracted {k:?} is in the truth");
        let entities: BTreeSet<&String> = identifiers(state.latest())
            .iter()
            .filter(|i| !JUNK.contains(&i.1.as_str()))
            .filter_map(|i| holders.get(i))
            .flatten()
            .collect();
        match entities.len() {
            2 => bridges += 1,
            _ => deletions += 1,
        }
    }
    assert!(
        (30..=100).contains(&bridges),
        "{bridges} bridges among 6000 people"
    );
    assert!(deletions > 20, "{deletions} deleted records");
}

#[test]
fn updates_and_retractions_arrive_out_of_order() {
    let r = run(2000, 9);
    let states = states(&json_lines(&r.out));
    let mut early_retractions = 0;
    let mut stale_after_newer = 0;
    let mut attribute_changes = 0;
    for state in states.values() {
        if let Some((_, pos)) = &state.retraction {
            if state.versions.iter().any(|v| v.1 > *pos) {
                early_retractions += 1;
            }
        }
        for a in &state.versions {
            for b in &state.versions {
                if a.0 < b.0 && a.1 > b.1 {
                    stale_after_newer += 1;
                }
                if a.0 < b.0 && a.2["attributes"] != b.2["attributes"] {
                    attribute_changes += 1;
                }
            }
        }
    }
    assert!(
        early_retractions >= 5,
        "{early_retractions} retractions before their version"
    );
    assert!(
        stale_after_newer >= 100,
        "{stale_after_newer} stale versions after newer ones"
    );
    assert!(
        attribute_changes >= 100,
        "{attribute_changes} attribute changes"
    );
}

#[test]
fn identifiers_come_in_formatting_variants() {
    let r = run(1000, 10);
    let mut raw_by_value: BTreeMap<Ident, BTreeSet<String>> = BTreeMap::new();
    for line in json_lines(&r.out)
        .iter()
        .filter(|l| l.get("identifiers").is_some())
    {
        for id in line["identifiers"].as_array().expect("identifiers") {
            let (ty, raw) = (text(id, "type"), text(id, "value"));
            raw_by_value
                .entry((ty.to_string(), normalize(ty, raw)))
                .or_default()
                .insert(raw.to_string());
        }
    }
    let all_raw: Vec<&String> = raw_by_value.values().flatten().collect();
    assert!(
        all_raw
            .iter()
            .any(|r| r.starts_with("+1 (") && r.contains(") ")),
        "no `+1 (415) 555-0100` phones"
    );
    assert!(
        all_raw
            .iter()
            .any(|r| r.len() == 12 && r.as_bytes()[3] == b'-' && !r.contains('@')),
        "no 415-555-0100"
    );
    assert!(
        all_raw.iter().any(|r| r.starts_with("1 ")),
        "no `1 415 555 0100` phones"
    );
    assert!(all_raw.iter().any(|r| r.starts_with(' ')
        && r.contains('@')
        && r.chars().any(|c| c.is_ascii_uppercase())));
    let varied = raw_by_value
        .iter()
        .filter(|(_, spellings)| spellings.len() > 1)
        .count();
    assert!(
        varied > 200,
        "only {varied} values appear in more than one spelling"
    );
}

#[test]
fn every_variant_normalizes_to_the_canonical_value() {
    let mut rng = dice::stream(1, 1);
    let mut out = String::new();
    let cases = [
        (IdType::Email, "ann.lee.17@mail.example"),
        (IdType::Phone, "4155550100"),
        (IdType::DeviceId, "0a1b2c3d-0000-4abc-8def-0123456789ab"),
        (IdType::AccountId, "acct-00ff00ff00ff00ff"),
        (IdType::Cookie, "ck-00aa"),
    ];
    for (ty, canonical) in cases {
        let expected = if ty == IdType::Phone {
            "+14155550100".to_string()
        } else {
            canonical.to_string()
        };
        let mut seen = BTreeSet::new();
        for _ in 0..400 {
            spell(ty, canonical, &mut rng, &mut out);
            assert_eq!(normalize(ty.name(), &out), expected, "{out:?}");
            seen.insert(out.clone());
        }
        assert!(seen.len() >= 3, "{ty:?}: only {seen:?}");
    }
}

#[test]
fn phones_and_email_numbers_never_repeat() {
    let salts = super::ids::Salts::new(12);
    let mut phones = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for person in (0..60_000).chain(MAX_PEOPLE - 1000..MAX_PEOPLE) {
        for i in 0..2 {
            let phone = salts.phone(person, i);
            assert!(
                phone.len() == 10 && phone.bytes().all(|b| b.is_ascii_digit()),
                "{phone}"
            );
            assert_ne!(&phone[3..6], "000", "exchanges start at 200");
            assert!(phones.insert(phone), "phone of {person} repeats");
        }
        assert!(
            numbers.insert(salts.email_number(person)),
            "email number of {person} repeats"
        );
    }
}

#[test]
fn timestamps_are_rfc3339_utc() {
    let cases = [
        (EPOCH, "2026-01-01T00:00:00Z"),
        (EPOCH + 4 * 86_400 + 10 * 3600 + 61, "2026-01-05T10:01:01Z"),
        (EPOCH + 59 * 86_400 - 1, "2026-02-28T23:59:59Z"),
        (EPOCH + 59 * 86_400, "2026-03-01T00:00:00Z"),
        (EPOCH + 365 * 86_400, "2027-01-01T00:00:00Z"),
        (
            EPOCH + (365 + 365 + 31 + 28) * 86_400,
            "2028-02-29T00:00:00Z",
        ),
    ];
    for (unix, expected) in cases {
        let mut buf = Vec::new();
        json_ts(&mut buf, unix);
        assert_eq!(
            String::from_utf8(buf).expect("utf-8"),
            format!("\"{expected}\"")
        );
    }
}

#[test]
fn bounded_draws_stay_in_range_and_cover_it() {
    let mut rng = dice::stream(42, 0);
    let mut counts = [0u32; 7];
    for _ in 0..7000 {
        counts[rng.below(7) as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| (800..1200).contains(&c)),
        "{counts:?}"
    );
    assert_eq!(rng.below(1), 0);
    assert_eq!(rng.weighted(&[("never", 0), ("always", 3)]), "always");
}

#[test]
fn truth_is_optional_and_does_not_change_the_observations() {
    let with = run(500, 11);
    let mut out = Vec::new();
    let stats = generate(
        &GenerateOptions {
            people: 500,
            seed: 11,
        },
        &mut out,
        None,
    )
    .expect("generate");
    assert!(out == with.out);
    assert_eq!(stats, with.stats);
}

/// Measures `--people 300000`; run with
/// `cargo test --release -p kith-runner --lib generate::tests::time_300k -- --ignored --nocapture`.
#[test]
#[ignore]
fn time_300k() {
    let start = std::time::Instant::now();
    let mut out = std::io::BufWriter::new(std::io::sink());
    let mut truth = std::io::BufWriter::new(std::io::sink());
    let stats = generate(
        &GenerateOptions {
            people: 300_000,
            seed: 1,
        },
        &mut out,
        Some(&mut truth),
    )
    .expect("generate");
    println!("{stats:?} in {:.2?}", start.elapsed());
}
