//! `generate` and `evaluate` through the public API: the truth the generator
//! writes is what the evaluator reads, and exports built from it score as
//! they should.

use kith_runner::evaluate::pairwise;
use kith_runner::generate::{generate, GenerateOptions};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn workload(people: u64) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut truth) = (Vec::new(), Vec::new());
    let stats = generate(
        &GenerateOptions { people, seed: 99 },
        &mut out,
        Some(&mut truth),
    )
    .expect("generate");
    assert_eq!(stats.people, people);
    (out, truth)
}

/// An export with one profile per group of truth records.
fn export_grouped_by(truth: &[u8], group: impl Fn(&Value) -> String) -> Vec<u8> {
    let mut profiles: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in truth.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let record: Value = serde_json::from_slice(line).expect("truth line");
        let reference = json!({"source": record["source"], "id": record["id"], "note": "unknown fields are ignored"});
        profiles.entry(group(&record)).or_default().push(reference);
    }
    let mut export = Vec::new();
    for (id, records) in profiles {
        let line = json!({"profile_id": id, "kind": "person", "records": records, "identifiers": [], "attributes": {}});
        serde_json::to_writer(&mut export, &line).expect("json");
        export.push(b'\n');
    }
    export
}

#[test]
fn the_truth_itself_scores_perfectly() {
    let (_, truth) = workload(800);
    let export = export_grouped_by(&truth, |r| {
        r["entity"].as_str().expect("entity").to_string()
    });
    let scores = pairwise(&mut export.as_slice(), &mut truth.as_slice()).expect("scores");
    assert_eq!(
        (scores.precision, scores.recall, scores.f1),
        (1.0, 1.0, 1.0)
    );
    assert!(scores.records > 2000, "{scores:?}");
    assert!(scores.true_pairs > 2000, "{scores:?}");
}

#[test]
fn merging_by_source_is_scored_as_a_bad_partition() {
    let (_, truth) = workload(800);
    let export = export_grouped_by(&truth, |r| {
        r["source"].as_str().expect("source").to_string()
    });
    let scores = pairwise(&mut export.as_slice(), &mut truth.as_slice()).expect("scores");
    assert!(scores.precision < 0.01, "{scores:?}");
    assert!(scores.recall < 0.5, "{scores:?}");
}
