//! The command line of docs/design.md §4, end to end through the real binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn kith(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kith-runner"))
        .args(args)
        .output()
        .expect("runner starts")
}

fn kith_ok(args: &[&str]) -> String {
    let out = kith(args);
    assert!(
        out.status.success(),
        "kith-runner {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn canonical() -> String {
    root()
        .join("examples/canonical/pipeline.yaml")
        .display()
        .to_string()
}

fn summary(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().expect("a summary line"))
        .expect("the summary is JSON")
}

fn export(state: &Path) -> String {
    let mut lines: Vec<String> = kith_ok(&["export", "--state", state.to_str().unwrap()])
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines.join("\n")
}

fn run(input: &Path, state: &Path) -> serde_json::Value {
    summary(&kith_ok(&[
        "run",
        &canonical(),
        "--input",
        input.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--exit-at-end",
    ]))
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    let mut f = std::fs::File::create(path).unwrap();
    for l in lines {
        f.write_all(l).unwrap();
        f.write_all(b"\n").unwrap();
    }
}

#[test]
fn bad_lines_are_dead_lettered_with_line_and_reason_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let good = |id: &str| {
        format!(
            r#"{{"source":"crm","id":"{id}","ts":"2026-01-05T10:00:00Z","kind":"person","identifiers":[{{"type":"email","value":"ann@x.io"}}]}}"#
        )
    };
    let mut lines: Vec<Vec<u8>> = vec![
        good("1").into_bytes(),
        b"{not json".to_vec(),
        br#"{"id":"2","ts":"2026-01-05T10:00:00Z","kind":"person"}"#.to_vec(),
        br#"{"source":"crm","ts":"2026-01-05T10:00:00Z","kind":"person"}"#.to_vec(),
        br#"{"source":"crm","id":"4","kind":"person"}"#.to_vec(),
        br#"{"source":"crm","id":"5","ts":"last tuesday","kind":"person"}"#.to_vec(),
        br#"{"source":"crm","id":"6","ts":"2026-01-05T10:00:00Z","kind":"alien"}"#.to_vec(),
        br#"{"source":"crm","id":"7","ts":"2026-01-05T10:00:00Z","kind":"person","identifiers":[{"type":"email","value":"   "}]}"#.to_vec(),
        format!(r#"{{"source":"crm","id":"8","ts":"2026-01-05T10:00:00Z","kind":"person","attributes":{{"blob":"{}"}}}}"#, "x".repeat(1 << 20)).into_bytes(),
        b"{\"source\":\"crm\",\"id\":\"\xff\xfe\",\"ts\":\"2026-01-05T10:00:00Z\",\"kind\":\"person\"}".to_vec(),
        br#"{"source":"crm","id":"10","ts":"2026-01-05T10:00:00Z","kind":"person","identifiers":[{"type":"fax","value":"1"}]}"#.to_vec(),
        good("11").into_bytes(),
    ];
    lines.push(br#"{"source":"crm","id":"12","ts":"2026-01-05T10:00:00Z","kind":"person","identifers":[]}"#.to_vec());
    let input = dir.path().join("in.jsonl");
    write_lines(&input, &lines);
    let state = dir.path().join("state");
    let s = run(&input, &state);
    assert_eq!(s["observations"], 2, "{s}");
    assert_eq!(s["profiles"], 1, "{s}");
    for key in ["seconds", "observations_per_s", "p99_ms", "peak_rss_mb"] {
        assert!(s[key].is_number(), "summary lacks {key}: {s}");
    }
    let dead: Vec<serde_json::Value> = std::fs::read_to_string(state.join("dead-letter.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_line: Vec<(u64, String, String)> = dead
        .iter()
        .map(|d| {
            (
                d["line"].as_u64().unwrap(),
                d["category"].as_str().unwrap().to_string(),
                d["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = [
        (2, "malformed", ""),
        (3, "missing_field", "`source`"),
        (4, "missing_field", "`id`"),
        (5, "missing_field", "`ts`"),
        (6, "bad_timestamp", "RFC 3339"),
        (7, "unknown_kind", "person, organization, device, account"),
        (8, "bad_identifier", "identifiers[0].value"),
        (9, "too_long", "1048576"),
        (10, "invalid_utf8", ""),
        (
            11,
            "unknown_identifier_type",
            "email, phone, account_id, device_id, cookie",
        ),
        (13, "malformed", "identifers"),
    ];
    assert_eq!(by_line.len(), expect.len(), "{by_line:#?}");
    for ((line, cat, reason), (el, ec, er)) in by_line.iter().zip(expect) {
        assert_eq!((*line, cat.as_str()), (el, ec), "{reason}");
        assert!(reason.contains(er), "line {line}: {reason}");
    }
    // Every dead letter keeps the line itself, so nothing is lost.
    assert!(dead[8]["raw_hex"].as_str().unwrap().contains("fffe"));
    assert!(dead[0]["raw"].as_str().unwrap() == "{not json");
}

#[test]
fn a_bad_pipeline_fails_at_start_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.yaml");
    std::fs::write(
        &p,
        "name: x\nidentifiers:\n  - type: email\n    normalize: e-mail\n",
    )
    .unwrap();
    let out = kith(&["run", p.to_str().unwrap(), "--input", "/dev/null"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("identifiers[0].normalize") && err.contains("phone"),
        "{err}"
    );
}

fn generated(dir: &Path, people: &str, seed: &str) -> (PathBuf, PathBuf) {
    let input = dir.join("obs.jsonl");
    let truth = dir.join("truth.jsonl");
    let out = kith(&[
        "generate",
        "--people",
        people,
        "--seed",
        seed,
        "--truth",
        truth.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&input, out.stdout).unwrap();
    (input, truth)
}

#[test]
fn restarts_and_arrival_order_do_not_change_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = generated(dir.path(), "400", "11");
    let text = std::fs::read_to_string(&input).unwrap();
    let lines: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();

    let one = dir.path().join("one");
    run(&input, &one);
    let whole = export(&one);
    assert!(whole.lines().count() > 100);

    // Two runs with a restart in between, cut at an odd place.
    let cut = lines.len() * 3 / 7;
    let (first, second) = (
        dir.path().join("first.jsonl"),
        dir.path().join("second.jsonl"),
    );
    write_lines(&first, &lines[..cut]);
    write_lines(&second, &lines[cut..]);
    let two = dir.path().join("two");
    run(&first, &two);
    run(&second, &two);
    assert_eq!(export(&two), whole);

    // Reversed arrival order.
    let mut reversed = lines.clone();
    reversed.reverse();
    let rev_input = dir.path().join("rev.jsonl");
    write_lines(&rev_input, &reversed);
    let rev = dir.path().join("rev");
    run(&rev_input, &rev);
    assert_eq!(export(&rev), whole);

    // Running the same input again changes nothing.
    let again = run(&input, &one);
    assert_eq!(again["stale"], again["observations"], "{again}");
    assert_eq!(export(&one), whole);
}

#[test]
fn the_canonical_pipeline_reproduces_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let (input, truth) = generated(dir.path(), "3000", "5");
    let state = dir.path().join("state");
    run(&input, &state);
    let export_path = dir.path().join("export.jsonl");
    std::fs::write(&export_path, export(&state)).unwrap();
    let scores: serde_json::Value = serde_json::from_str(&kith_ok(&[
        "evaluate",
        "--export",
        export_path.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
    ]))
    .unwrap();
    assert!(scores["f1"].as_f64().unwrap() >= 0.99, "{scores}");
    assert_eq!(scores["profiles_with_multiple_accounts"], 0, "{scores}");
}

#[test]
fn lookup_and_explain_answer_from_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"source":"crm","id":"c-17","ts":"2026-01-05T10:00:00Z","kind":"person","identifiers":[{"type":"email","value":" Ann.Lee@Example.org"},{"type":"phone","value":"+1 (415) 555-0100"}],"attributes":{"given_name":"Ann"}}"#,
            "\n",
            r#"{"source":"web","id":"w-1","ts":"2026-01-06T10:00:00Z","kind":"person","identifiers":[{"type":"phone","value":"415-555-0100"},{"type":"cookie","value":"ck-1"}],"attributes":{"given_name":"Annie"}}"#,
            "\n",
            r#"{"source":"web","id":"w-2","ts":"2026-01-06T10:00:00Z","kind":"person","identifiers":[{"type":"email","value":"test@test.com"},{"type":"cookie","value":"ck-2"}]}"#,
            "\n",
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    run(&input, &state);
    let s = state.to_str().unwrap();
    let found: serde_json::Value = serde_json::from_str(
        kith_ok(&["lookup", "--state", s, "email:ANN.LEE@example.org "]).trim(),
    )
    .unwrap();
    assert_eq!(found["records"].as_array().unwrap().len(), 2);
    assert_eq!(found["attributes"]["given_name"], "Annie");
    assert_eq!(found["provenance"]["given_name"]["id"], "w-1");

    let why = kith_ok(&[
        "explain",
        "--state",
        s,
        "email:ann.lee@example.org",
        "cookie:ck-1",
    ]);
    assert!(why.starts_with("same profile person-"), "{why}");
    assert!(
        why.contains("crm/c-17 and web/w-1 share phone:+14155550100"),
        "{why}"
    );

    let not = kith_ok(&["explain", "--state", s, "cookie:ck-1", "cookie:ck-2"]);
    assert!(not.starts_with("different profiles"), "{not}");

    let missing = kith(&["lookup", "--state", s, "email:nobody@x.io"]);
    assert!(!missing.status.success());
    let bad_type = kith(&["lookup", "--state", s, "fax:1"]);
    assert!(String::from_utf8_lossy(&bad_type.stderr).contains("email, phone"));
}

#[test]
fn stdin_is_an_input_too() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kith-runner"))
        .args([
            "run",
            &canonical(),
            "--input",
            "-",
            "--state",
            state.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"source":"crm","id":"1","ts":"2026-01-05T10:00:00Z","kind":"person","identifiers":[{"type":"email","value":"a@x.io"}]}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        summary(&String::from_utf8(out.stdout).unwrap())["profiles"],
        1
    );
}

mod batches {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

        /// The same observations cut into any number of runs (restarts in
        /// between), in any order, give the export of one run.
        #[test]
        fn any_split_into_runs_gives_the_same_export(cuts in prop::collection::vec(0.0f64..1.0, 0..4), seed in any::<u64>()) {
            let dir = tempfile::tempdir().unwrap();
            let (input, _) = generated(dir.path(), "150", "3");
            let mut lines: Vec<Vec<u8>> = std::fs::read_to_string(&input).unwrap().lines().map(|l| l.as_bytes().to_vec()).collect();
            let one = dir.path().join("one");
            run(&input, &one);
            let whole = export(&one);

            let mut state = seed | 1;
            for i in (1..lines.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                lines.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut bounds: Vec<usize> = cuts.iter().map(|c| (c * lines.len() as f64) as usize).collect();
            bounds.push(0);
            bounds.push(lines.len());
            bounds.sort();
            let split = dir.path().join("split");
            for (n, w) in bounds.windows(2).enumerate() {
                let part = dir.path().join(format!("part-{n}.jsonl"));
                write_lines(&part, &lines[w[0]..w[1]]);
                run(&part, &split);
            }
            prop_assert_eq!(export(&split), whole);
        }
    }
}
