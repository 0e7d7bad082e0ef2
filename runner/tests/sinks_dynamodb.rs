//! The DynamoDB sink against moto: a run's tables equal its export, in both
//! write modes; a restart re-sends nothing wrong; values no query language
//! should see as code come back intact; a missing table is named at start.

mod support;

use std::path::Path;
use support::dynamodb::{actual, expected, Tables};
use support::runner::{export, generate, output, write_lines};
use support::services::{self, Services};

/// The canonical example pipeline with a DynamoDB sink appended.
fn pipeline(dir: &Path, services: &Services, tables: (&str, &str), extra: &str) -> String {
    let canonical =
        std::fs::read_to_string(support::runner::example("canonical/pipeline.yaml")).unwrap();
    let text = format!(
        "{canonical}\nsinks:\n  - type: dynamodb\n    profilesTable: {}\n    identifiersTable: {}\n    endpoint: {}\n    region: us-east-1\n{extra}",
        tables.0,
        tables.1,
        services.get("DYNAMODB_ENDPOINT"),
    );
    let path = dir.join("pipeline.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{n}", std::process::id())
}

fn assert_tables_equal_export(tables: &Tables, names: (&str, &str), state: &Path) {
    let exported = export(state);
    let (want_profiles, want_index) = expected(&exported);
    let (got_profiles, got_index) = actual(tables, names.0, names.1);
    for (id, want) in &want_profiles {
        if got_profiles.get(id) != Some(want) {
            let all = tables.scan(names.0);
            let stored = all.iter().find(|i| {
                support::dynamodb::to_json(&i["profile_id"]).as_str() == Some(id.as_str())
            });
            eprintln!("profile {id}: want {want}\nstored {stored:?}");
        }
    }
    assert_eq!(
        got_profiles.len(),
        want_profiles.len(),
        "live profile items"
    );
    for (id, want) in &want_profiles {
        assert_eq!(got_profiles.get(id), Some(want), "profile {id}");
    }
    assert_eq!(got_index.len(), want_index.len(), "live index rows");
    assert_eq!(got_index, want_index);
}

fn env(services: &Services) -> Vec<(&str, &str)> {
    services.envs().collect()
}

#[test]
fn tables_equal_the_export_in_both_write_modes_and_after_a_restart() {
    let services = services::require(&["moto"]);
    let tables = Tables::new(services.get("DYNAMODB_ENDPOINT"));
    let lines = generate(150, 11);
    for mode in ["conditional", "batch"] {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        // The first half, then the whole input: the second run updates,
        // merges and splits what the first wrote.
        write_lines(&input, &lines[..lines.len() / 2]);
        let names = (unique("profiles"), unique("identifiers"));
        let names = (names.0.as_str(), names.1.as_str());
        let p = pipeline(
            dir.path(),
            &services,
            names,
            &format!("    createTables: true\n    writeMode: {mode}\n"),
        );
        let state = dir.path().join("state");
        let envs = env(&services);
        let run = |input: &Path| support::runner::run_file(&p, input, &state, &envs);
        run(&input);
        assert_tables_equal_export(&tables, names, &state);

        write_lines(&input, &lines);
        run(&input);
        assert_tables_equal_export(&tables, names, &state);

        // Retractions remove profiles and index rows.
        let retractions = support::runner::retractions(&lines, 40);
        let more = dir.path().join("retract.jsonl");
        write_lines(&more, &retractions);
        run(&more);
        assert_tables_equal_export(&tables, names, &state);
        if mode == "conditional" {
            let tombstones = tables
                .scan(names.0)
                .into_iter()
                .filter(|i| i.contains_key("deleted"))
                .count();
            assert!(tombstones > 0, "removed profiles leave tombstones");
        }
    }
}

#[test]
fn hostile_and_huge_values_reach_dynamodb_intact() {
    let services = services::require(&["moto"]);
    let tables = Tables::new(services.get("DYNAMODB_ENDPOINT"));
    let dir = tempfile::tempdir().unwrap();
    let names = (unique("profiles"), unique("identifiers"));
    let names = (names.0.as_str(), names.1.as_str());
    let p = pipeline(dir.path(), &services, names, "    createTables: true\n");
    let values = support::runner::hostile_values();
    let lines = support::runner::hostile_observations(&values);
    let input = dir.path().join("in.jsonl");
    write_lines(&input, &lines);
    let state = dir.path().join("state");
    support::runner::run_file(&p, &input, &state, &env(&services));
    assert_tables_equal_export(&tables, names, &state);
    let items = tables.scan(names.1);
    for v in &values {
        // `cookie` lower-cases values.
        let want = v.trim().to_lowercase();
        let found = items
            .iter()
            .any(|i| support::dynamodb::to_json(&i["value"]).as_str() == Some(want.as_str()));
        assert!(
            found,
            "identifier value {:?} read back",
            &want[..want.len().min(40)]
        );
    }
    // The same values through boto3, a second client that shares nothing
    // with the sink's AWS SDK for Rust: the index rows' `value` and the
    // profiles' `note` and `identifiers`.
    let index = support::dynamodb::boto3_scan(&services, names.1);
    let profiles = support::dynamodb::boto3_scan(&services, names.0);
    for v in &values {
        let want = v.trim().to_lowercase();
        assert!(
            index
                .iter()
                .any(|row| row["value"].as_str() == Some(want.as_str())),
            "boto3 reads the index row of {:?}",
            &want[..want.len().min(40)]
        );
        let holder = profiles
            .iter()
            .find(|p| p["attributes"]["note"].as_str() == Some(v.as_str()))
            .unwrap_or_else(|| panic!("boto3 reads the note {:?}", &v[..v.len().min(40)]));
        assert!(
            holder["identifiers"].as_array().is_some_and(|ids| ids
                .iter()
                .any(|i| i["value"].as_str() == Some(want.as_str()))),
            "the profile holding note {:?} lists its cookie",
            &v[..v.len().min(40)]
        );
    }
    let long_key = items
        .iter()
        .find(|i| {
            support::dynamodb::to_json(&i["value"])
                .as_str()
                .is_some_and(|s| s.len() == 10_000)
        })
        .expect("the 10,000-character identifier");
    let key = support::dynamodb::to_json(&long_key["identifier"]);
    assert!(
        key.as_str().unwrap().len() <= 2048,
        "hashed key for a long value"
    );
}

#[test]
fn a_missing_table_is_named_at_start_when_it_may_not_be_created() {
    let services = services::require(&["moto"]);
    let dir = tempfile::tempdir().unwrap();
    let names = (unique("absent-profiles"), unique("absent-identifiers"));
    let p = pipeline(dir.path(), &services, (&names.0, &names.1), "");
    let input = dir.path().join("in.jsonl");
    write_lines(&input, &generate(5, 1));
    let out = output(
        &[
            "run",
            &p,
            "--input",
            input.to_str().unwrap(),
            "--state",
            dir.path().join("s").to_str().unwrap(),
        ],
        &env(&services),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&names.0), "{stderr}");
    assert!(stderr.contains("createTables"), "{stderr}");
    let tables = Tables::new(services.get("DYNAMODB_ENDPOINT"));
    assert!(!tables.exists(&names.0));
}
