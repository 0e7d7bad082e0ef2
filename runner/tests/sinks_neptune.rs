//! The Neptune sink against a TinkerPop Gremlin Server: the graph equals
//! the export (vertices and edges) after runs that update, merge, split and
//! retract; hostile values read back intact through both query languages;
//! a runner fenced out by a newer writer epoch changes nothing.

mod support;

use kith_runner::sink::neptune::encode::Ids;
use std::collections::BTreeSet;
use std::path::Path;
use support::gremlin::{graph, query};
use support::runner::{export, generate, output, write_lines};
use support::services::{self, Services};

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}x{n}:", std::process::id())
}

fn pipeline(dir: &Path, services: &Services, prefix: &str) -> String {
    let canonical =
        std::fs::read_to_string(support::runner::example("canonical/pipeline.yaml")).unwrap();
    let text = format!(
        "{canonical}\nsinks:\n  - type: neptune\n    endpoint: {}\n    idPrefix: '{prefix}'\n    batchSize: 50\n",
        services.get("NEPTUNE_ENDPOINT"),
    );
    let path = dir.join("pipeline.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

type Graph = (
    BTreeSet<(String, String, String)>,
    BTreeSet<(String, String, String)>,
);

/// The graph an export describes.
fn expected(export: &[String], prefix: &str) -> Graph {
    let ids = Ids {
        prefix: prefix.to_string(),
    };
    let mut vertices = BTreeSet::new();
    let mut edges = BTreeSet::new();
    for line in export {
        let p: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = p["profile_id"].as_str().unwrap();
        let kind = p["kind"].as_str().unwrap();
        vertices.insert((ids.profile(id), kind.to_string(), id.to_string()));
        for i in p["identifiers"].as_array().unwrap() {
            let (t, v) = (i["type"].as_str().unwrap(), i["value"].as_str().unwrap());
            let vid = ids.identifier(t, v);
            vertices.insert((vid.clone(), "identifier".into(), format!("{t}:{v}")));
            edges.insert(("has_identifier".into(), ids.profile(id), vid));
        }
        for r in p["relationships"].as_array().unwrap() {
            edges.insert((
                r["type"].as_str().unwrap().to_string(),
                ids.profile(id),
                ids.profile(r["profile_id"].as_str().unwrap()),
            ));
        }
    }
    (vertices, edges)
}

fn assert_graph_equals_export(endpoint: &str, prefix: &str, state: &Path) {
    let want = expected(&export(state), prefix);
    let got = graph(endpoint, prefix);
    let missing: Vec<_> = want.0.difference(&got.0).take(5).collect();
    let extra: Vec<_> = got.0.difference(&want.0).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "vertices: missing {missing:?}, extra {extra:?}"
    );
    let missing: Vec<_> = want.1.difference(&got.1).take(5).collect();
    let extra: Vec<_> = got.1.difference(&want.1).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "edges: missing {missing:?}, extra {extra:?}"
    );
    assert!(!want.0.is_empty());
}

#[test]
fn the_graph_equals_the_export_through_updates_merges_and_retractions() {
    let services = services::require(&["gremlin"]);
    let endpoint = services.get("NEPTUNE_ENDPOINT").to_string();
    let envs: Vec<(&str, &str)> = services.envs().collect();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("g");
    let p = pipeline(dir.path(), &services, &prefix);
    let state = dir.path().join("state");
    let lines = generate(120, 5);
    let input = dir.path().join("in.jsonl");
    let run = |input: &Path| support::runner::run_file(&p, input, &state, &envs);
    write_lines(&input, &lines[..lines.len() / 2]);
    run(&input);
    assert_graph_equals_export(&endpoint, &prefix, &state);
    write_lines(&input, &lines);
    run(&input);
    assert_graph_equals_export(&endpoint, &prefix, &state);
    let retractions = support::runner::retractions(&lines, 40);
    let more = dir.path().join("retract.jsonl");
    write_lines(&more, &retractions);
    run(&more);
    assert_graph_equals_export(&endpoint, &prefix, &state);
}

#[test]
fn hostile_values_read_back_intact_in_both_query_languages() {
    let services = services::require(&["gremlin"]);
    let endpoint = services.get("NEPTUNE_ENDPOINT").to_string();
    let envs: Vec<(&str, &str)> = services.envs().collect();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("h");
    let p = pipeline(dir.path(), &services, &prefix);
    let values = support::runner::hostile_values();
    let lines = support::runner::hostile_observations(&values);
    let input = dir.path().join("in.jsonl");
    write_lines(&input, &lines);
    let state = dir.path().join("state");
    support::runner::run_file(&p, &input, &state, &envs);
    assert_graph_equals_export(&endpoint, &prefix, &state);
    let ids = Ids {
        prefix: prefix.clone(),
    };
    for v in &values {
        let want = v.trim().to_lowercase();
        let id = ids.identifier("cookie", &want);
        for language in [None, Some("gremlin-lang")] {
            let got = query(&endpoint, &format!("g.V('{id}').values('value')"), language);
            assert_eq!(got, serde_json::json!([want]), "{language:?}");
        }
    }
    // Nothing else of the graph was touched: other prefixes' vertices remain.
    let total = query(&endpoint, "g.V().count()", None);
    assert!(total.as_array().unwrap()[0].as_i64().unwrap() >= 6);
}

#[test]
fn a_runner_fenced_out_by_a_newer_writer_changes_nothing() {
    let services = services::require(&["gremlin"]);
    let endpoint = services.get("NEPTUNE_ENDPOINT").to_string();
    let envs: Vec<(&str, &str)> = services.envs().collect();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("f");
    let p = pipeline(dir.path(), &services, &prefix);
    let input = dir.path().join("in.jsonl");
    write_lines(&input, &generate(10, 2));
    let state = dir.path().join("state");
    support::runner::run_file(&p, &input, &state, &envs);
    let before = graph(&endpoint, &prefix);
    // A newer runner took the graph over (its epoch is far ahead).
    let fence = format!("{prefix}kith-writer:canonical");
    query(
        &endpoint,
        &format!("g.V('{fence}').property(single,'epoch',1000000L)"),
        None,
    );
    write_lines(&input, &generate(20, 3));
    let out = output(
        &[
            "run",
            &p,
            "--input",
            input.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
        &envs,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("newer runner"), "{stderr}");
    assert_eq!(graph(&endpoint, &prefix), before);
}
