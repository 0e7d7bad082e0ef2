//! The change feed: a `kafka` sink (transactional) and a `file` sink; a
//! `read_committed` consumer folding the topic, and a reader folding the
//! file, both get exactly the export, through updates, merges, splits and
//! retractions over several runs.

mod support;

use std::path::Path;
use support::feed::{fold, from_export};
use support::kafka::{read_committed, unique_topic};
use support::runner::{export, generate, write_lines};
use support::services;

#[test]
fn folding_the_topic_or_the_file_gives_the_export() {
    let services = services::require(&["kafka"]);
    let bootstrap = services.get("KAFKA_BOOTSTRAP").to_string();
    let envs: Vec<(&str, &str)> = services.envs().collect();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique_topic("changes");
    let feed_file = dir.path().join("changes.jsonl");
    let canonical =
        std::fs::read_to_string(support::runner::example("canonical/pipeline.yaml")).unwrap();
    let p = dir.path().join("pipeline.yaml");
    std::fs::write(
        &p,
        format!(
            "{canonical}\nsinks:\n  - type: kafka\n    bootstrapServers: {bootstrap}\n    topic: {topic}\n  - type: file\n    path: {}\n",
            feed_file.display()
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let p = p.display().to_string();
    let run = |input: &Path| support::runner::run_file(&p, input, &state, &envs);
    let check = || {
        let want = from_export(&export(&state));
        let messages = read_committed(&bootstrap, &topic);
        let got = fold(messages.iter().map(|(_, v)| v.as_slice()));
        assert_eq!(got.0.len(), want.0.len(), "profiles folded from the topic");
        assert_eq!(got.0, want.0);
        assert_eq!(got.1, want.1);
        // Every event is keyed by its profile id (or identifier key).
        for (k, v) in &messages {
            let e: serde_json::Value = serde_json::from_slice(v).unwrap();
            if let Some(id) = e["profile_id"].as_str() {
                assert_eq!(k.as_slice(), id.as_bytes());
            }
        }
        let text = std::fs::read_to_string(&feed_file).unwrap();
        let got = fold(text.lines().map(str::as_bytes));
        assert_eq!(got.0, want.0, "profiles folded from the file");
        assert_eq!(got.1, want.1);
    };
    let lines = generate(150, 21);
    let input = dir.path().join("in.jsonl");
    write_lines(&input, &lines[..lines.len() / 2]);
    run(&input);
    check();
    write_lines(&input, &lines);
    run(&input);
    check();
    let retractions = support::runner::retractions(&lines, 40);
    let more = dir.path().join("retract.jsonl");
    write_lines(&more, &retractions);
    run(&more);
    check();
    // Merges and splits were on the feed with their ids.
    let messages = read_committed(&bootstrap, &topic);
    let types: std::collections::BTreeSet<String> = messages
        .iter()
        .map(|(_, v)| {
            serde_json::from_slice::<serde_json::Value>(v).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for t in [
        "profile.created",
        "profile.updated",
        "profile.deleted",
        "identifier.added",
        "identifier.removed",
    ] {
        assert!(types.contains(t), "{t} in {types:?}");
    }
    // The progress topic holds this pipeline's committed transactions.
    let progress = read_committed(&bootstrap, &format!("{topic}-progress"));
    assert!(!progress.is_empty());
    let last: serde_json::Value = serde_json::from_slice(&progress.last().unwrap().1).unwrap();
    assert_eq!(last["transactional_id"], "kith-canonical-kafka");
    assert_eq!(last["barrier"], true);
}
