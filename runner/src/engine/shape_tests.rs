//! Pathological shapes at a small size: a long chain retracted from its
//! tail, one identifier on thousands of records, and a shared value that
//! bridges exclusive identifiers indirectly. Each must give exactly the
//! result of the same records fed in another order (and of a rebuild from
//! the stored versions); `make bench` measures their cost at full size.

use super::tests::{engine_fed, export_json, rebuilt, shuffled};
use super::*;
use crate::observation::parse_line;

const PIPELINE: &str = r#"
name: shapes
identifiers:
  - type: email
    normalize: email
  - type: phone
    normalize: phone
  - type: account_id
    exclusiveLimit: 1
  - type: device_id
    normalize: lowercase
"#;

fn pipeline() -> Arc<Pipeline> {
    Arc::new(Pipeline::from_yaml(PIPELINE, "test", &|_| None).unwrap())
}

fn parsed(p: &Pipeline, lines: &[String]) -> Vec<Observation> {
    lines
        .iter()
        .map(|l| parse_line(l.as_bytes(), p).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn person(id: &str, day: u32, identifiers: &[(&str, String)]) -> String {
    let idents: Vec<String> = identifiers
        .iter()
        .map(|(t, v)| format!(r#"{{"type":"{t}","value":"{v}"}}"#))
        .collect();
    format!(
        r#"{{"source":"s","id":"{id}","ts":"2026-01-{day:02}T00:00:00Z","kind":"person","identifiers":[{}],"attributes":{{"note":"{id}-{day}"}}}}"#,
        idents.join(",")
    )
}

fn retraction(id: &str, day: u32) -> String {
    format!(r#"{{"source":"s","id":"{id}","ts":"2026-01-{day:02}T00:00:00Z","retract":true}}"#)
}

/// Sizes of the person profiles, largest first.
fn sizes(e: &Engine) -> Vec<usize> {
    let mut out: Vec<usize> = e
        .export()
        .iter()
        .filter(|v| v.kind == "person")
        .map(|v| v.records.len())
        .collect();
    out.sort_unstable_by(|a, b| b.cmp(a));
    out
}

#[test]
fn a_long_chain_retracted_from_its_tail_stays_one_exact_profile() {
    const LENGTH: usize = 1_200;
    const RETRACTED: usize = 150;
    let p = pipeline();
    // Record i holds the emails i and i + 1: one chain of LENGTH records.
    let chain: Vec<String> = (0..LENGTH)
        .map(|i| {
            person(
                &format!("r{i}"),
                1,
                &[
                    ("email", format!("e{i}@x.io")),
                    ("email", format!("e{}@x.io", i + 1)),
                ],
            )
        })
        .collect();
    let mut e = engine_fed(&p, &parsed(&p, &chain));
    assert_eq!(sizes(&e), [LENGTH]);
    let rebuilds = e.stats().canonical_rebuilds;
    for k in 1..=RETRACTED {
        let tail = format!("r{}", LENGTH - k);
        e.apply(&parsed(&p, &[retraction(&tail, 2)])[0]);
        if k % 50 == 0 {
            assert_eq!(sizes(&e), [LENGTH - k], "after {k} retractions");
        }
    }
    assert_eq!(
        e.stats().canonical_rebuilds,
        rebuilds,
        "a record at the tail leaves the rest as it is: no rebuild of the chain"
    );
    // The same survivors fed in another order, with the retractions first
    // (tombstones), give the same bytes.
    let mut other: Vec<String> = (0..RETRACTED)
        .map(|k| retraction(&format!("r{}", LENGTH - 1 - k), 2))
        .collect();
    other.extend(shuffled(&chain, 7));
    let reordered = engine_fed(&p, &parsed(&p, &other));
    assert_eq!(export_json(&e), export_json(&reordered));
    assert_eq!(export_json(&e), export_json(&rebuilt(&e)));
}

#[test]
fn one_email_on_thousands_of_records_is_one_exact_profile_through_every_update() {
    const RECORDS: usize = 3_000;
    let p = pipeline();
    let first: Vec<String> = (0..RECORDS)
        .map(|i| {
            person(
                &format!("r{i}"),
                1,
                &[
                    ("email", "Ann@Example.com".into()),
                    ("phone", format!("+1415555{:04}", i)),
                ],
            )
        })
        .collect();
    // Every record observed again with a new attribute and a new phone.
    let updates: Vec<String> = (0..RECORDS)
        .map(|i| {
            person(
                &format!("r{i}"),
                2,
                &[
                    ("email", "ann@example.com".into()),
                    ("phone", format!("+1212555{:04}", i)),
                ],
            )
        })
        .collect();
    let mut lines = first.clone();
    lines.extend(updates.iter().cloned());
    let e = engine_fed(&p, &parsed(&p, &lines));
    assert_eq!(sizes(&e), [RECORDS]);
    let mut other = shuffled(&updates, 3);
    other.extend(shuffled(&first, 5));
    let reordered = engine_fed(&p, &parsed(&p, &other));
    assert_eq!(export_json(&e), export_json(&reordered));
    assert_eq!(export_json(&e), export_json(&rebuilt(&e)));
}

#[test]
fn a_shared_device_bridging_many_accounts_indirectly_keeps_every_account_apart() {
    const PAIRS: usize = 400;
    let p = pipeline();
    // Pair i: a record with account i and email i, and a record with email i
    // and the one device every pair shares. The device is not generic (its
    // holders carry no account), but linking through it would join every
    // account: the canonical order keeps each account in a profile of its own.
    let mut lines = Vec::new();
    for i in 0..PAIRS {
        lines.push(person(
            &format!("a{i}"),
            1,
            &[
                ("account_id", format!("acct-{i}")),
                ("email", format!("p{i}@x.io")),
            ],
        ));
        lines.push(person(
            &format!("d{i}"),
            1,
            &[
                ("email", format!("p{i}@x.io")),
                ("device_id", "TABLET-1".into()),
            ],
        ));
    }
    let e = engine_fed(&p, &parsed(&p, &lines));
    let accounts_per_profile: Vec<usize> = e
        .export()
        .iter()
        .map(|v| {
            v.identifiers
                .iter()
                .filter(|i| i.type_name == "account_id")
                .count()
        })
        .collect();
    assert!(
        accounts_per_profile.iter().all(|n| *n <= 1),
        "no profile holds two accounts"
    );
    assert_eq!(
        accounts_per_profile.iter().filter(|n| **n == 1).count(),
        PAIRS,
        "every account has its profile"
    );
    for seed in [11, 12] {
        let reordered = engine_fed(&p, &parsed(&p, &shuffled(&lines, seed)));
        assert_eq!(export_json(&e), export_json(&reordered), "seed {seed}");
    }
    assert_eq!(export_json(&e), export_json(&rebuilt(&e)));
}
