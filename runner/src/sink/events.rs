//! The change-feed events of a flush: what the Kafka and file sinks write,
//! one JSON object per change, keyed by profile id (an identifier's events
//! by `type#value`).
//!
//! | `type` | fields besides `event_id`, `type`, `version` |
//! |---|---|
//! | `profile.created`, `profile.updated` | `profile_id`, `kind`, `profile` (as `export` prints it) |
//! | `profile.merged` | `profile_id`, `kind`, `absorbed_ids`, `profile` |
//! | `profile.split` | `profile_id`, `kind`, `new_ids` |
//! | `profile.deleted` | `profile_id`, `kind`, `merged_into` (when absorbed or renamed) |
//! | `identifier.added` | `identifier` (`{type, value}`), `profile_ids`: every profile holding it now |
//! | `identifier.removed` | `identifier`: no profile holds it any more |
//!
//! Folding the events of a topic (set the profile on created, updated and
//! merged; remove it on deleted and split) gives the current profiles. A
//! merge's `absorbed_ids` are the profiles it took in that no longer exist;
//! each also has a `profile.deleted` (with `merged_into`) on its own key,
//! which is what removes it, whatever order partitions are read in. Changes between two flushes are coalesced:
//! a profile changed many times appears once, with its state at the flush.
//! `event_id` is a hash of the type, the key and the version: the same
//! change written twice has the same id, two changes never do.

use super::flush::{Flush, ProfileOp};
use serde_json::json;

/// One event: its message key and its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub key: String,
    pub payload: Vec<u8>,
}

fn event_id(kind: &str, key: &str, version: u64) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(kind.as_bytes());
    h.update(&[0]);
    h.update(key.as_bytes());
    h.update(&[0]);
    h.update(&version.to_be_bytes());
    format!("{:032x}", h.digest128())
}

/// A profile id's kind: the part before its first `-`.
fn kind_of(profile_id: &str) -> &str {
    profile_id.split('-').next().unwrap_or_default()
}

/// Every event of a flush, profiles (by id) then identifiers (by key).
pub fn events(flush: &Flush) -> Vec<Event> {
    let mut out = Vec::with_capacity(flush.len());
    let version = flush.version;
    for op in &flush.profiles {
        let id = op.profile_id();
        let hint = flush.hints.get(id);
        let value = match op {
            ProfileOp::Upsert(view) => {
                let absorbed = hint.map(|h| h.absorbed.as_slice()).unwrap_or_default();
                let kind = if !absorbed.is_empty() {
                    "profile.merged"
                } else if hint.is_some_and(|h| h.created) {
                    "profile.created"
                } else {
                    "profile.updated"
                };
                let mut v = json!({
                    "event_id": event_id(kind, id, version),
                    "type": kind,
                    "profile_id": id,
                    "kind": view.kind,
                    "version": version,
                    "profile": view,
                });
                if !absorbed.is_empty() {
                    v["absorbed_ids"] = json!(absorbed);
                }
                v
            }
            ProfileOp::Delete {
                profile_id,
                redirect,
            } => {
                let split = hint.map(|h| h.split_into.as_slice()).unwrap_or_default();
                let kind = if split.is_empty() {
                    "profile.deleted"
                } else {
                    "profile.split"
                };
                let mut v = json!({
                    "event_id": event_id(kind, profile_id, version),
                    "type": kind,
                    "profile_id": profile_id,
                    "kind": kind_of(profile_id),
                    "version": version,
                });
                if !split.is_empty() {
                    v["new_ids"] = json!(split);
                } else if let Some(r) = redirect {
                    v["merged_into"] = json!(r);
                }
                v
            }
        };
        out.push(Event {
            key: id.to_string(),
            payload: serde_json::to_vec(&value).expect("events serialize"),
        });
    }
    for op in &flush.identifiers {
        let key = format!("{}#{}", op.type_name, op.value);
        let kind = if op.profile_ids.is_empty() {
            "identifier.removed"
        } else {
            "identifier.added"
        };
        let mut v = json!({
            "event_id": event_id(kind, &key, version),
            "type": kind,
            "identifier": {"type": op.type_name, "value": op.value},
            "version": version,
        });
        if !op.profile_ids.is_empty() {
            v["profile_ids"] = json!(op.profile_ids);
        }
        out.push(Event {
            key,
            payload: serde_json::to_vec(&v).expect("events serialize"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ProfileView;
    use crate::sink::flush::{Hint, IdentifierOp};
    use std::collections::{BTreeMap, HashMap};

    fn view(id: &str) -> Box<ProfileView> {
        Box::new(ProfileView {
            profile_id: id.into(),
            kind: "person",
            records: Vec::new(),
            identifiers: Vec::new(),
            attributes: BTreeMap::new(),
            provenance: BTreeMap::new(),
            relationships: Vec::new(),
        })
    }

    #[test]
    fn each_change_becomes_one_event_of_its_type() {
        let mut hints = HashMap::new();
        hints.insert(
            "person-a".to_string(),
            Hint {
                created: true,
                ..Hint::default()
            },
        );
        hints.insert(
            "person-m".to_string(),
            Hint {
                absorbed: vec!["person-x".into()],
                ..Hint::default()
            },
        );
        hints.insert(
            "person-s".to_string(),
            Hint {
                split_into: vec!["person-s1".into(), "person-s2".into()],
                ..Hint::default()
            },
        );
        let flush = Flush {
            seq: 4,
            version: 77,
            profiles: vec![
                ProfileOp::Upsert(view("person-a")),
                ProfileOp::Upsert(view("person-m")),
                ProfileOp::Upsert(view("person-u")),
                ProfileOp::Delete {
                    profile_id: "person-s".into(),
                    redirect: None,
                },
                ProfileOp::Delete {
                    profile_id: "person-x".into(),
                    redirect: Some("person-m".into()),
                },
            ],
            identifiers: vec![
                IdentifierOp {
                    type_name: "email".into(),
                    value: "a@x.y".into(),
                    profile_ids: vec!["person-a".into()],
                },
                IdentifierOp {
                    type_name: "email".into(),
                    value: "old@x.y".into(),
                    profile_ids: vec![],
                },
            ],
            hints,
            oldest: None,
            ack: None,
        };
        let events = events(&flush);
        let parsed: Vec<serde_json::Value> = events
            .iter()
            .map(|e| serde_json::from_slice(&e.payload).unwrap())
            .collect();
        let types: Vec<&str> = parsed.iter().map(|v| v["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "profile.created",
                "profile.merged",
                "profile.updated",
                "profile.split",
                "profile.deleted",
                "identifier.added",
                "identifier.removed"
            ]
        );
        assert_eq!(parsed[1]["absorbed_ids"], json!(["person-x"]));
        assert_eq!(parsed[1]["profile"]["profile_id"], "person-m");
        assert_eq!(parsed[3]["new_ids"], json!(["person-s1", "person-s2"]));
        assert_eq!(parsed[4]["merged_into"], "person-m");
        assert_eq!(parsed[4]["kind"], "person");
        assert_eq!(parsed[5]["profile_ids"], json!(["person-a"]));
        assert_eq!(events[5].key, "email#a@x.y");
        assert!(parsed.iter().all(|v| v["version"] == 77));
        // Ids are deterministic and distinct.
        let again = super::events(&flush);
        assert_eq!(events, again);
        let mut ids: Vec<&str> = parsed
            .iter()
            .map(|v| v["event_id"].as_str().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), parsed.len());
    }
}
