//! `examples/aws/pipeline.yaml` end to end: a generated workload from Kafka
//! into DynamoDB (moto), the graph (Gremlin Server) and the change-feed
//! topic. After SIGKILLs at random moments, and through throttling, partial
//! batches, lost responses and 30-second outages of each store, the tables,
//! the graph and the folded feed (read_committed) equal the export exactly.

mod support;

use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::dynamodb::{actual, expected, Tables};
use support::faults::Proxy;
use support::feed::{fold, from_export};
use support::kafka::{read_committed, unique_topic, KafkaCase};
use support::runner::{export, free_port, generate, http, run_ok, spawn, wait_until};
use support::services;

struct Case {
    kafka: KafkaCase,
    vars: Vec<(String, String)>,
    profiles: String,
    identifiers: String,
    changes: String,
    prefix: String,
    state: PathBuf,
    dynamodb: String,
    neptune: String,
}

impl Case {
    fn new(name: &str, dynamodb: Option<String>, neptune: Option<String>) -> Case {
        let services = services::require(&["kafka", "moto", "gremlin"]);
        let kafka = KafkaCase::new(name, 4);
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let profiles = format!("{name}-profiles-{n}");
        let identifiers = format!("{name}-identifiers-{n}");
        let changes = unique_topic(&format!("{name}-changes"));
        let prefix = format!("{name}{n}:");
        let state = kafka.dir.path().join("state");
        let dynamodb_real = services.get("DYNAMODB_ENDPOINT").to_string();
        let neptune_real = services.get("NEPTUNE_ENDPOINT").to_string();
        let mut vars: Vec<(String, String)> = services
            .envs()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in kafka.envs("2s") {
            vars.push((k.to_string(), v.to_string()));
        }
        let dynamodb = dynamodb.unwrap_or(dynamodb_real.clone());
        let neptune = neptune.unwrap_or(neptune_real.clone());
        vars.retain(|(k, _)| k != "DYNAMODB_ENDPOINT" && k != "NEPTUNE_ENDPOINT");
        vars.extend([
            ("DYNAMODB_ENDPOINT".to_string(), dynamodb),
            ("NEPTUNE_ENDPOINT".to_string(), neptune),
            ("KITH_PROFILES_TABLE".to_string(), profiles.clone()),
            ("KITH_IDENTIFIERS_TABLE".to_string(), identifiers.clone()),
            ("KITH_CHANGES_TOPIC".to_string(), changes.clone()),
            ("KITH_GRAPH_ID_PREFIX".to_string(), prefix.clone()),
        ]);
        Case {
            kafka,
            vars,
            profiles,
            identifiers,
            changes,
            prefix,
            state,
            dynamodb: dynamodb_real,
            neptune: neptune_real,
        }
    }

    fn envs(&self) -> Vec<(&str, &str)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn pipeline(&self, write_mode: &str) -> String {
        let text = std::fs::read_to_string(support::runner::example("aws/pipeline.yaml")).unwrap();
        let text = text.replace(
            "writeMode: conditional",
            &format!("writeMode: {write_mode}"),
        );
        // One transactional id per pipeline: tests running side by side
        // must not fence each other's change feed.
        let text = text.replace(
            "    topic: ${KITH_CHANGES_TOPIC}\n",
            &format!(
                "    topic: ${{KITH_CHANGES_TOPIC}}\n    transactionalId: kith-{}\n",
                self.changes
            ),
        );
        assert!(
            text.contains("transactionalId"),
            "the example's change-feed sink"
        );
        let path = self
            .kafka
            .dir
            .path()
            .join(format!("pipeline-{write_mode}.yaml"));
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn args(&self, pipeline: &str, extra: &[&str]) -> Vec<String> {
        let mut a = vec![
            "run".to_string(),
            pipeline.to_string(),
            "--state".into(),
            self.state.display().to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    /// Every store against the export, and the export against a file run.
    fn assert_stores_equal_export(&self, lines: &[Vec<u8>]) {
        let exported = export(&self.state);
        assert_eq!(
            exported,
            self.kafka.reference(lines, "reference"),
            "the export is a file run's"
        );
        let tables = Tables::new(&self.dynamodb);
        let (want_p, want_i) = expected(&exported);
        let (got_p, got_i) = actual(&tables, &self.profiles, &self.identifiers);
        assert_eq!(got_p.len(), want_p.len(), "profile items");
        assert!(
            got_p == want_p,
            "the profiles table differs from the export"
        );
        assert!(
            got_i == want_i,
            "the identifier index differs from the export"
        );

        let ids = kith_runner::sink::neptune::encode::Ids {
            prefix: self.prefix.clone(),
        };
        let mut want_v = std::collections::BTreeSet::new();
        let mut want_e = std::collections::BTreeSet::new();
        for line in &exported {
            let p: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = p["profile_id"].as_str().unwrap();
            want_v.insert((
                ids.profile(id),
                p["kind"].as_str().unwrap().to_string(),
                id.to_string(),
            ));
            for i in p["identifiers"].as_array().unwrap() {
                let (t, v) = (i["type"].as_str().unwrap(), i["value"].as_str().unwrap());
                want_v.insert((
                    ids.identifier(t, v),
                    "identifier".into(),
                    format!("{t}:{v}"),
                ));
                want_e.insert((
                    "has_identifier".to_string(),
                    ids.profile(id),
                    ids.identifier(t, v),
                ));
            }
            for r in p["relationships"].as_array().unwrap() {
                want_e.insert((
                    r["type"].as_str().unwrap().to_string(),
                    ids.profile(id),
                    ids.profile(r["profile_id"].as_str().unwrap()),
                ));
            }
        }
        let (got_v, got_e) = support::gremlin::graph(&self.neptune, &self.prefix);
        assert_eq!(got_v.len(), want_v.len(), "vertices");
        assert!(
            got_v == want_v,
            "the graph's vertices differ from the export"
        );
        assert!(got_e == want_e, "the graph's edges differ from the export");

        let messages = read_committed(&self.kafka.bootstrap, &self.changes);
        let (folded_p, folded_i) = fold(messages.iter().map(|(_, v)| v.as_slice()));
        let (want_fp, want_fi) = from_export(&exported);
        assert_eq!(
            folded_p.len(),
            want_fp.len(),
            "profiles folded from the feed"
        );
        assert!(
            folded_p == want_fp,
            "the folded feed differs from the export"
        );
        assert!(
            folded_i == want_fi,
            "the feed's identifiers differ from the export"
        );
    }
}

#[test]
fn sigkill_at_random_moments_leaves_every_store_equal_to_the_export() {
    let case = Case::new("e2ekill", None, None);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(support::runner::test_seed());
    let lines = generate(400, 17);
    let pipeline = case.pipeline("conditional");
    let chunks: Vec<&[Vec<u8>]> = lines.chunks(lines.len() / 5 + 1).collect();
    let logs = case.kafka.dir.path();
    for (round, chunk) in chunks.iter().enumerate() {
        case.kafka.produce(chunk);
        let args = case.args(&pipeline, &[]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut runner = spawn(&args, &case.envs(), logs, &format!("round-{round}"));
        let wait = rng.gen_range(1500..4500);
        std::thread::sleep(Duration::from_millis(wait));
        assert!(
            runner.try_wait().unwrap().is_none(),
            "round {round}: the runner died on its own; see {}",
            logs.display()
        );
        runner.kill().unwrap();
        runner.wait().unwrap();
    }
    let args = case.args(&pipeline, &["--exit-at-end"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&args, &case.envs());
    case.assert_stores_equal_export(&lines);
}

/// The last lines of a runner's log, for failure messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn ready(admin: &str) -> Option<(u16, String)> {
    http(admin, "GET", "/readyz")
}

/// Ready, at least `applied` observations applied (the lag gauge is
/// refreshed once a second and reads 0 before new input reaches the
/// consumer), no consumer lag and nothing unwritten in any sink.
fn caught_up(admin: &str, applied: usize) -> bool {
    matches!(ready(admin), Some((200, _)))
        && http(admin, "GET", "/metrics").is_some_and(|(_, m)| {
            m.lines()
                .find_map(|l| l.strip_prefix("kith_observations_total "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .is_some_and(|n| n >= applied as f64)
                && m.lines()
                    .filter(|l| l.starts_with("kith_sink_oldest_unwritten_seconds"))
                    .all(|l| l.ends_with(" 0"))
                && m.lines()
                    .filter(|l| l.starts_with("kith_consumer_lag{"))
                    .all(|l| l.ends_with(" 0"))
        })
}

#[test]
fn throttling_partial_batches_lost_responses_and_outages_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let services = services::require(&["moto", "gremlin"]);
    let dynamodb = Proxy::start(services.get("DYNAMODB_ENDPOINT"), dir.path(), "dynamodb");
    let neptune = Proxy::start(services.get("NEPTUNE_ENDPOINT"), dir.path(), "neptune");
    let case = Case::new(
        "e2efault",
        Some(dynamodb.endpoint()),
        Some(neptune.endpoint()),
    );
    let lines = generate(300, 23);
    let pipeline = case.pipeline("batch");
    let admin = format!("127.0.0.1:{}", free_port());
    let args = case.args(&pipeline, &["--admin", &admin]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let logs = case.kafka.dir.path();
    let mut runner = spawn(&args, &case.envs(), logs, "faults");
    assert!(
        wait_until(60, || ready(&admin).is_some_and(|(s, _)| s == 200)),
        "the runner gets ready"
    );

    dynamodb.set(serde_json::json!({"seed": 3, "faults": [
        {"kind": "throttle", "rate": 0.2},
        {"kind": "unprocessed", "rate": 0.4, "match": "BatchWriteItem"},
        {"kind": "lose_response", "rate": 0.05}
    ]}));
    neptune.set(serde_json::json!({"seed": 4, "faults": [
        {"kind": "concurrent_modification", "rate": 0.2},
        {"kind": "throttle", "rate": 0.1},
        {"kind": "lose_response", "rate": 0.05}
    ]}));
    let (first, rest) = lines.split_at(lines.len() / 3);
    case.kafka.produce(first);
    assert!(
        wait_until(120, || caught_up(&admin, first.len())),
        "caught up under throttling and partial batches"
    );
    let injected = |p: &Proxy| p.state()["counters"]["injected"].clone();
    let d = injected(&dynamodb);
    assert!(
        d["throttle"].as_u64().unwrap() > 0
            && d["unprocessed"].as_u64().unwrap() > 0
            && d["lose_response"].as_u64().unwrap() > 0,
        "{d}"
    );
    let n = injected(&neptune);
    assert!(
        n["concurrent_modification"].as_u64().unwrap() > 0
            && n["lose_response"].as_u64().unwrap() > 0,
        "{n}"
    );

    // Each store goes away for 30 s while input keeps coming.
    let (second, third) = rest.split_at(rest.len() / 2);
    let mut produced = first.len();
    for (proxy, name, chunk) in [
        (&dynamodb, "dynamodb", second),
        (&neptune, "neptune", third),
    ] {
        proxy.set(
            serde_json::json!({"faults": [{"kind": "outage", "seconds": 30, "mode": "reset"}]}),
        );
        case.kafka.produce(chunk);
        produced += chunk.len();
        assert!(
            wait_until(25, || ready(&admin)
                .is_some_and(|(s, body)| s == 503 && body.contains(name))),
            "/readyz names the {name} sink during its outage: {:?}\n{}",
            ready(&admin),
            tail(&logs.join("faults.err"))
        );
        assert!(
            runner.try_wait().unwrap().is_none(),
            "the runner stays up during the {name} outage"
        );
        assert!(
            wait_until(120, || caught_up(&admin, produced)),
            "caught up after the {name} outage"
        );
    }
    // SIGTERM: a final checkpoint, exit 0.
    let pid = runner.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(wait_until(60, || runner.try_wait().unwrap().is_some()));
    assert!(runner.wait().unwrap().success(), "see {}", logs.display());
    dynamodb.clear();
    neptune.clear();
    case.assert_stores_equal_export(&lines);
    let _ = Path::new(&case.prefix);
}
