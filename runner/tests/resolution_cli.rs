//! Entity resolution end to end through the binary: `train` writes a model
//! from unlabelled data, `run` links records that share no identifier, and
//! `explain` prints the comparison waterfall.

use std::path::Path;
use std::process::Command;

fn kith(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kith-runner"))
        .args(args)
        .output()
        .expect("runner starts");
    assert!(
        out.status.success(),
        "kith-runner {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const PIPELINE: &str = r#"
name: people
identifiers:
  - type: customer_id
    exclusiveLimit: 1
resolution:
  model: model.json
  keys:
    - {name: surname, attribute: surname}
    - {name: given3, attribute: given_name, transform: {prefix: 3}}
    - {name: born, attribute: dob, transform: year}
  blocking:
    rules: [[surname], [given3, born]]
    maxBlockSize: 100
  comparisons:
    - attribute: given_name
      method: {jaroWinkler: {thresholds: [0.92, 0.8]}}
    - attribute: surname
      method: {jaroWinkler: {thresholds: [0.92]}}
      termFrequency: true
    - attribute: dob
      method: {date: {maxYearDistances: [1]}}
    - attribute: postcode
      method: {postcode: {prefixLengths: [3]}}
"#;

/// 300 people from combined syllables, each seen by a CRM (with a customer
/// id) and by a partner file (no identifier) where one in three has a typo.
fn workload(dir: &Path) -> std::path::PathBuf {
    let syllables = [
        "ka", "lo", "mi", "ne", "su", "ta", "ri", "vo", "de", "an", "el", "or",
    ];
    let mut state = 11u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut lines = Vec::new();
    for i in 0..300 {
        let given = format!(
            "{}{}{}",
            syllables[next(12)],
            syllables[next(12)],
            syllables[next(12)]
        );
        let surname = format!(
            "{}{}{}",
            syllables[next(12)],
            syllables[next(12)],
            syllables[next(12)]
        );
        let dob = format!(
            "19{:02}-{:02}-{:02}",
            40 + next(50),
            1 + next(12),
            1 + next(28)
        );
        let postcode = format!("{}", 2000 + next(7000));
        lines.push(format!(
            r#"{{"source":"crm","id":"c{i}","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{{"type":"customer_id","value":"C{i}"}}],"attributes":{{"given_name":"{given}","surname":"{surname}","dob":"{dob}","postcode":"{postcode}"}}}}"#
        ));
        let typo = if i % 3 == 0 {
            format!("{}x{}", &given[..2], &given[3..])
        } else {
            given.clone()
        };
        lines.push(format!(
            r#"{{"source":"partner","id":"p{i}","ts":"2026-01-02T00:00:00Z","kind":"person","attributes":{{"given_name":"{typo}","surname":"{surname}","dob":"{}","postcode":"{postcode}"}}}}"#,
            dob.replace('-', "")
        ));
    }
    let path = dir.join("people.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn train_then_run_links_records_without_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("pipeline.yaml");
    std::fs::write(&pipeline, PIPELINE).unwrap();
    let input = workload(dir.path());
    let (p, i) = (pipeline.to_str().unwrap(), input.to_str().unwrap());

    kith(&["train", p, "--input", i]);
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("model.json")).unwrap())
            .unwrap();
    assert_eq!(model["comparisons"].as_array().unwrap().len(), 4);

    let state = dir.path().join("state");
    let s = state.to_str().unwrap();
    kith(&["run", p, "--input", i, "--state", s]);
    let export = kith(&["export", "--state", s]);
    let profiles: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every person is one CRM record and one partner record.
    let pairs = profiles
        .iter()
        .filter(|v| {
            let ids: Vec<&str> = v["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap())
                .collect();
            ids.len() == 2 && ids[0][1..] == ids[1][1..]
        })
        .count();
    assert!(pairs >= 295, "{pairs} of 300 people found whole");
    assert!(profiles
        .iter()
        .all(|v| v["records"].as_array().unwrap().len() <= 2));

    let why = kith(&[
        "explain",
        "--state",
        s,
        "record:crm/c3",
        "record:partner/p3",
    ]);
    assert!(why.starts_with("same profile"), "{why}");
    assert!(
        why.contains("given_name") && why.contains("postcode") && why.contains("total"),
        "{why}"
    );

    // The state carries its model: a restart needs nothing else.
    std::fs::remove_file(dir.path().join("model.json")).unwrap();
    assert_eq!(kith(&["export", "--state", s]), export);
}

#[test]
fn run_without_a_model_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("pipeline.yaml");
    std::fs::write(&pipeline, PIPELINE).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kith-runner"))
        .args(["run", pipeline.to_str().unwrap(), "--input", "/dev/null"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("resolution.model") && err.contains("kith-runner train"),
        "{err}"
    );
}

/// `kith-runner train` with `args`, which must fail: its stderr.
fn train_fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kith-runner"))
        .arg("train")
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "train {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn train_refuses_rules_without_pairs_and_replaces_a_broken_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = workload(dir.path());
    let i = input.to_str().unwrap();
    let model = dir.path().join("model.json");

    // Blocking on an attribute no record holds: an error naming the rule,
    // a non-zero exit and no model file.
    let empty = dir.path().join("empty.yaml");
    let text = PIPELINE
        .replace(
            "    - {name: born, attribute: dob, transform: year}\n",
            "    - {name: born, attribute: dob, transform: year}\n    - {name: nick, attribute: nickname}\n",
        )
        .replace("rules: [[surname], [given3, born]]", "rules: [[nick]]");
    std::fs::write(&empty, text).unwrap();
    let err = train_fails(&[empty.to_str().unwrap(), "--input", i]);
    assert!(
        err.contains("[nick]") && err.contains("candidate pair"),
        "{err}"
    );
    assert!(!model.exists(), "no model may be written");

    // A broken model file where the pipeline names its model: `run` refuses
    // it, `train` does not need it and writes a good one over it.
    std::fs::write(&model, "{\"format\": 2, \"prior\": null}").unwrap();
    let pipeline = dir.path().join("pipeline.yaml");
    std::fs::write(&pipeline, PIPELINE).unwrap();
    let p = pipeline.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kith-runner"))
        .args(["run", p, "--input", i, "--state"])
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resolution.model"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kith-runner"))
        .args(["train", p, "--input", i])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    // The report names each session and each level's weight.
    assert!(report.contains("session 1 [surname]"), "{report}");
    assert!(report.contains("session 2 [given3, born]"), "{report}");
    assert!(report.contains("weight"), "{report}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert!(
        written["prior"]
            .as_f64()
            .is_some_and(|p| p > 0.0 && p < 1.0),
        "{written}"
    );
    assert_eq!(written["sessions"].as_array().map(Vec::len), Some(2));
}
