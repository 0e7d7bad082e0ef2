//! Request building (pure) and the error table; the graph itself is checked
//! against a Gremlin Server in `runner/tests/sinks_neptune.rs`.

use super::encode::{fence_id, requests, Ids, MAX_STEPS};
use super::service::classify_code;
use crate::engine::{IdentifierView, ProfileView, RelationshipView};
use crate::sink::flush::{Flush, IdentifierOp, ProfileOp};
use crate::sink::retry::Outcome;
use std::collections::BTreeMap;

fn view(id: &str, identifiers: &[(&str, &str)], uses: &[&str]) -> ProfileView {
    ProfileView {
        profile_id: id.into(),
        kind: "person",
        records: Vec::new(),
        identifiers: identifiers
            .iter()
            .map(|(t, v)| IdentifierView {
                type_name: t.to_string(),
                value: v.to_string(),
            })
            .collect(),
        attributes: BTreeMap::new(),
        provenance: BTreeMap::new(),
        relationships: uses
            .iter()
            .map(|d| RelationshipView {
                rel_type: "uses".into(),
                kind: "device",
                profile_id: d.to_string(),
            })
            .collect(),
    }
}

fn flush(profiles: Vec<ProfileOp>, identifiers: Vec<IdentifierOp>) -> Flush {
    Flush {
        seq: 1,
        version: (3u64 << 32) | 1,
        profiles,
        identifiers,
        hints: Default::default(),
        oldest: None,
        ack: None,
    }
}

#[test]
fn every_request_starts_at_the_fence_and_counts() {
    let ids = Ids {
        prefix: "t1:".into(),
    };
    let fence = fence_id(&ids, "crm");
    let f = flush(
        vec![ProfileOp::Upsert(Box::new(view(
            "person-a",
            &[("email", "a@x.y")],
            &["device-d"],
        )))],
        Vec::new(),
    );
    let (vertices, edges) = requests(&f, &ids, &fence, 3, 200);
    assert_eq!(vertices.len(), 1);
    assert_eq!(edges.len(), 1);
    for r in vertices.iter().chain(&edges) {
        assert!(
            r.script
                .starts_with("g.V('t1:kith-writer:crm').has('epoch',3L)"),
            "{}",
            r.script
        );
        assert!(r.script.ends_with(".count()"));
    }
    // The profile, its identifier and the related device: three vertices.
    assert_eq!(vertices[0].operations, 3);
    assert!(vertices[0].script.contains("'profile_id':'person-a'"));
    assert!(vertices[0]
        .script
        .contains("Cardinality.single(12884901889L)"));
    assert!(edges[0].script.contains("'has_identifier'"));
    assert!(edges[0].script.contains("(T.label):'uses'"));
    assert!(
        edges[0].script.contains("P.within("),
        "stale edges are dropped"
    );
}

#[test]
fn hostile_values_only_ever_appear_escaped() {
    let ids = Ids {
        prefix: String::new(),
    };
    let evil = "'); g.V().drop(); //\n\\";
    let f = flush(
        vec![ProfileOp::Upsert(Box::new(view(
            "person-a",
            &[("email", evil)],
            &[],
        )))],
        vec![IdentifierOp {
            type_name: "email".into(),
            value: evil.into(),
            profile_ids: vec!["person-a".into()],
        }],
    );
    let (vertices, _) = requests(&f, &ids, &fence_id(&ids, "p"), 1, 200);
    let script = &vertices[0].script;
    assert!(script.contains(r"'\'); g.V().drop(); //\n\\'"), "{script}");
    // Every quote of the value is escaped.
    assert_eq!(
        script.matches("'); g.V().drop()").count(),
        script.matches(r"\'); g.V().drop()").count()
    );
    assert!(!script.contains('\n'));
}

#[test]
fn requests_stay_within_the_batch_size_and_the_step_budget() {
    let ids = Ids {
        prefix: String::new(),
    };
    let profiles: Vec<ProfileOp> = (0..1000)
        .map(|i| {
            ProfileOp::Upsert(Box::new(view(
                &format!("person-{i:04}"),
                &[
                    ("email", &format!("p{i}@x.y")),
                    ("phone", &format!("+1555{i:07}")),
                ],
                &[],
            )))
        })
        .collect();
    let (vertices, edges) = requests(&flush(profiles, Vec::new()), &ids, "f", 1, 200);
    assert_eq!(vertices.iter().map(|r| r.operations).sum::<usize>(), 3000);
    assert_eq!(edges.iter().map(|r| r.operations).sum::<usize>(), 1000);
    for r in vertices.iter().chain(&edges) {
        assert!(r.operations <= 200);
        // About four steps per operation.
        assert!(
            r.operations * 4 <= MAX_STEPS + 8,
            "{} operations",
            r.operations
        );
    }
    // Each identifier vertex is written once per flush, even when shared.
    let shared: Vec<ProfileOp> = (0..3)
        .map(|i| {
            ProfileOp::Upsert(Box::new(view(
                &format!("person-{i}"),
                &[("device_id", "tablet")],
                &[],
            )))
        })
        .collect();
    let (vertices, _) = requests(&flush(shared, Vec::new()), &ids, "f", 1, 200);
    assert_eq!(vertices[0].operations, 4);
}

#[test]
fn removals_drop_vertices() {
    let ids = Ids {
        prefix: String::new(),
    };
    let f = flush(
        vec![ProfileOp::Delete {
            profile_id: "person-gone".into(),
            redirect: None,
        }],
        vec![IdentifierOp {
            type_name: "email".into(),
            value: "old@x.y".into(),
            profile_ids: Vec::new(),
        }],
    );
    let (vertices, edges) = requests(&f, &ids, "f", 1, 200);
    assert!(edges.is_empty());
    assert!(vertices[0].script.contains("__.V('person-gone').drop()"));
    assert!(vertices[0].script.contains(&format!(
        "__.V('{}').drop()",
        ids.identifier("email", "old@x.y")
    )));
}

#[test]
fn the_error_table() {
    let retry = |o: Outcome| match o {
        Outcome::Retry { reason, .. } => reason,
        Outcome::Fatal(m) => panic!("fatal: {m}"),
    };
    assert_eq!(
        retry(classify_code(Some("ThrottlingException"), 429, "")),
        "throttled"
    );
    assert_eq!(
        retry(classify_code(
            Some("ConcurrentModificationException"),
            500,
            ""
        )),
        "conflict"
    );
    assert_eq!(
        retry(classify_code(
            None,
            500,
            "Conflict: element modified in another transaction"
        )),
        "conflict"
    );
    assert_eq!(retry(classify_code(None, 503, "")), "unavailable");
    assert!(matches!(
        classify_code(Some("MalformedQueryException"), 400, "bad"),
        Outcome::Fatal(_)
    ));
    assert!(matches!(
        classify_code(None, 500, "No signature of method: mergeX"),
        Outcome::Fatal(_)
    ));
}
