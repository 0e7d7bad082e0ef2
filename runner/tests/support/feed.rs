//! Folding a change feed into the profiles it describes, as a consumer
//! would, to compare with the runner's export.

use std::collections::BTreeMap;

/// Profiles by id and identifier holders by `type#value`, from events in order.
pub fn fold<'a>(
    events: impl IntoIterator<Item = &'a [u8]>,
) -> (
    BTreeMap<String, serde_json::Value>,
    BTreeMap<String, Vec<String>>,
) {
    let mut profiles = BTreeMap::new();
    let mut index = BTreeMap::new();
    for payload in events {
        let e: serde_json::Value = serde_json::from_slice(payload).expect("an event is JSON");
        let id = e["profile_id"].as_str().unwrap_or_default().to_string();
        match e["type"].as_str().expect("an event type") {
            "profile.created" | "profile.updated" => {
                profiles.insert(id, e["profile"].clone());
            }
            // The absorbed profiles have deletions of their own (on their
            // own keys, so maybe on other partitions): only those remove.
            "profile.merged" => {
                assert!(e["absorbed_ids"].as_array().is_some_and(|a| !a.is_empty()));
                profiles.insert(id, e["profile"].clone());
            }
            "profile.deleted" | "profile.split" => {
                profiles.remove(&id);
            }
            "identifier.added" => {
                let ids = e["profile_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect();
                index.insert(identifier_key(&e), ids);
            }
            "identifier.removed" => {
                index.remove(&identifier_key(&e));
            }
            other => panic!("unknown event type {other}"),
        }
    }
    (profiles, index)
}

/// `type#value` of an identifier event.
fn identifier_key(e: &serde_json::Value) -> String {
    format!(
        "{}#{}",
        e["identifier"]["type"].as_str().unwrap(),
        e["identifier"]["value"].as_str().unwrap()
    )
}

/// The profiles and identifier holders an export describes.
pub fn from_export(
    export: &[String],
) -> (
    BTreeMap<String, serde_json::Value>,
    BTreeMap<String, Vec<String>>,
) {
    let mut profiles = BTreeMap::new();
    let mut index: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in export {
        let p: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = p["profile_id"].as_str().unwrap().to_string();
        for i in p["identifiers"].as_array().unwrap() {
            let key = format!(
                "{}#{}",
                i["type"].as_str().unwrap(),
                i["value"].as_str().unwrap()
            );
            index.entry(key).or_default().push(id.clone());
        }
        profiles.insert(id, p);
    }
    for ids in index.values_mut() {
        ids.sort();
        ids.dedup();
    }
    (profiles, index)
}
