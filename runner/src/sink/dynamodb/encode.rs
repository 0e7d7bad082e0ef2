//! DynamoDB items from operations, pure. DynamoDB's limits are enforced
//! here, before anything is sent, since the local test service does not
//! enforce them: 400 KB per item, 2048 bytes per partition key, 25 items and
//! 16 MB per `BatchWriteItem`.
//!
//! Profiles table item: `profile_id`, `kind`, `version`, `record_count`,
//! `identifiers` (list of `{type, value}`), `attributes` (the golden values,
//! JSON mapped to DynamoDB types), `provenance` (`{attribute: {source, id,
//! ts}}`), `relationships` (list of `{type, kind, profile_id}`), and, when the
//! item had to shrink, `attributes_omitted`. Identifier index item:
//! `identifier` (`type#value`), `type`, `value`, `profile_ids` (sorted),
//! `holder_count`, `version`. In conditional mode a removed key leaves a
//! tombstone: `deleted: true`, `version`, `expires_at` (for DynamoDB's TTL)
//! and, for a profile absorbed by another, `merged_into`.

use crate::engine::ProfileView;
use crate::sink::flush::IdentifierOp;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB's largest item.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB's largest partition key value.
pub const MAX_KEY_BYTES: usize = 2048;
/// Items per `BatchWriteItem`.
pub const MAX_BATCH_ITEMS: usize = 25;
/// Bytes per `BatchWriteItem` request.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Most profile ids an index row lists; a value held by more (a junk value
/// the blocklist missed) lists the first ones and counts them all.
pub const MAX_HOLDERS_LISTED: usize = 1000;

/// The index table's key of an identifier: `type#value`, or, when that is
/// over DynamoDB's 2048-byte key limit, `type#~` and a 128-bit hash of the
/// value in hex (the item still carries the whole value).
pub fn identifier_key(type_name: &str, value: &str) -> String {
    let key = format!("{type_name}#{value}");
    if key.len() <= MAX_KEY_BYTES {
        return key;
    }
    let hash = xxhash_rust::xxh3::xxh3_128(value.as_bytes());
    format!("{type_name}#~{hash:032x}")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A JSON value as a DynamoDB value: strings, booleans, null, lists and
/// maps as such; a number as `N` when DynamoDB can hold it exactly (at most
/// 38 significant digits, no exponent), otherwise as its JSON text in `S`.
pub fn json_to_attribute(value: &serde_json::Value) -> AttributeValue {
    use serde_json::Value;
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(num) => {
            let text = num.to_string();
            if fits_dynamodb_number(&text) {
                AttributeValue::N(text)
            } else {
                AttributeValue::S(text)
            }
        }
        Value::String(t) => AttributeValue::S(t.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(json_to_attribute).collect()),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_attribute(v)))
                .collect(),
        ),
    }
}

fn fits_dynamodb_number(text: &str) -> bool {
    let digits = text.trim_start_matches('-');
    if digits.is_empty() || digits.contains(['e', 'E']) {
        return false;
    }
    let significant = digits
        .chars()
        .filter(char::is_ascii_digit)
        .skip_while(|c| *c == '0')
        .count();
    significant <= 38 && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// DynamoDB's size of a value, as it bills and limits it (names and values
/// in UTF-8 bytes, numbers about one byte per two digits, 3 bytes of
/// overhead per list or map and 1 per element).
pub fn attribute_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(t) => t.len(),
        AttributeValue::N(t) => t.len().div_ceil(2) + 1,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(items) => 3 + items.iter().map(|i| attribute_size(i) + 1).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| k.len() + attribute_size(v) + 1)
                .sum::<usize>()
        }
        AttributeValue::Ss(items) => items.iter().map(String::len).sum(),
        _ => 0,
    }
}

pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + attribute_size(v)).sum()
}

/// A profile's item. Returns whether attribute values had to be left out
/// to fit the item limit (largest first; their names are listed in
/// `attributes_omitted`, so a reader knows to look elsewhere).
pub fn profile_item(view: &ProfileView, version: u64) -> (Item, bool) {
    let mut item = Item::new();
    item.insert("profile_id".into(), s(&view.profile_id));
    item.insert("kind".into(), s(view.kind));
    item.insert("version".into(), n(version));
    item.insert("record_count".into(), n(view.records.len()));
    item.insert(
        "identifiers".into(),
        AttributeValue::L(
            view.identifiers
                .iter()
                .map(|i| {
                    AttributeValue::M(HashMap::from([
                        ("type".to_string(), s(&i.type_name)),
                        ("value".to_string(), s(&i.value)),
                    ]))
                })
                .collect(),
        ),
    );
    let mut attributes: Vec<(String, AttributeValue)> = view
        .attributes
        .iter()
        .map(|(k, raw)| {
            let value: serde_json::Value =
                serde_json::from_str(raw.get()).unwrap_or(serde_json::Value::Null);
            (k.clone(), json_to_attribute(&value))
        })
        .collect();
    let provenance: HashMap<String, AttributeValue> = view
        .provenance
        .iter()
        .map(|(k, p)| {
            (
                k.clone(),
                AttributeValue::M(HashMap::from([
                    ("source".to_string(), s(&p.source)),
                    ("id".to_string(), s(&p.id)),
                    ("ts".to_string(), s(&p.ts)),
                ])),
            )
        })
        .collect();
    item.insert("provenance".into(), AttributeValue::M(provenance));
    item.insert(
        "relationships".into(),
        AttributeValue::L(
            view.relationships
                .iter()
                .map(|r| {
                    AttributeValue::M(HashMap::from([
                        ("type".to_string(), s(&r.rel_type)),
                        ("kind".to_string(), s(r.kind)),
                        ("profile_id".to_string(), s(&r.profile_id)),
                    ]))
                })
                .collect(),
        ),
    );
    // Without its attributes the item is small; add them, dropping the
    // largest values while the item is over the limit.
    let base = item_size(&item) + "attributes".len() + 3;
    let mut total: usize = base
        + attributes
            .iter()
            .map(|(k, v)| k.len() + attribute_size(v) + 1)
            .sum::<usize>();
    let mut omitted: Vec<String> = Vec::new();
    if total > MAX_ITEM_BYTES {
        attributes.sort_by_key(|(k, v)| std::cmp::Reverse((attribute_size(v), k.clone())));
        while total > MAX_ITEM_BYTES.saturating_sub(omitted_overhead(&omitted))
            && !attributes.is_empty()
        {
            let (k, v) = attributes.remove(0);
            total -= k.len() + attribute_size(&v) + 1;
            omitted.push(k);
        }
        omitted.sort();
    }
    item.insert(
        "attributes".into(),
        AttributeValue::M(attributes.into_iter().collect()),
    );
    let shrunk = !omitted.is_empty();
    if shrunk {
        item.insert(
            "attributes_omitted".into(),
            AttributeValue::L(omitted.into_iter().map(s).collect()),
        );
    }
    (item, shrunk)
}

fn omitted_overhead(names: &[String]) -> usize {
    "attributes_omitted".len() + 3 + names.iter().map(|n| n.len() + 1).sum::<usize>() + 64
}

/// The tombstone of a removed profile (conditional mode).
pub fn profile_tombstone(
    profile_id: &str,
    redirect: Option<&str>,
    version: u64,
    expires_at: u64,
) -> Item {
    let mut item = Item::from([
        ("profile_id".to_string(), s(profile_id)),
        ("version".to_string(), n(version)),
        ("deleted".to_string(), AttributeValue::Bool(true)),
        ("expires_at".to_string(), n(expires_at)),
    ]);
    if let Some(r) = redirect {
        item.insert("merged_into".into(), s(r));
    }
    item
}

/// An identifier's index row. A value too long for the item limit is cut
/// (with `value_truncated`); the key, a hash then, still tells values apart.
pub fn identifier_item(op: &IdentifierOp, version: u64) -> Item {
    let key = identifier_key(&op.type_name, &op.value);
    let listed = op.profile_ids.len().min(MAX_HOLDERS_LISTED);
    let mut item = Item::from([
        ("identifier".to_string(), s(&key)),
        ("type".to_string(), s(&op.type_name)),
        ("version".to_string(), n(version)),
        ("holder_count".to_string(), n(op.profile_ids.len())),
        (
            "profile_ids".to_string(),
            AttributeValue::L(op.profile_ids[..listed].iter().map(s).collect()),
        ),
    ]);
    let room = MAX_ITEM_BYTES.saturating_sub(item_size(&item) + 64);
    if op.value.len() > room {
        let mut cut = room;
        while !op.value.is_char_boundary(cut) {
            cut -= 1;
        }
        item.insert("value".into(), s(&op.value[..cut]));
        item.insert("value_truncated".into(), AttributeValue::Bool(true));
    } else {
        item.insert("value".into(), s(&op.value));
    }
    if listed < op.profile_ids.len() {
        item.insert("holders_truncated".into(), AttributeValue::Bool(true));
    }
    item
}

/// The tombstone of an identifier no profile holds any more.
pub fn identifier_tombstone(type_name: &str, value: &str, version: u64, expires_at: u64) -> Item {
    Item::from([
        (
            "identifier".to_string(),
            s(identifier_key(type_name, value)),
        ),
        ("version".to_string(), n(version)),
        ("deleted".to_string(), AttributeValue::Bool(true)),
        ("expires_at".to_string(), n(expires_at)),
    ])
}

/// Groups items (with their sizes) into batches of at most 25 items and
/// 16 MB, keeping their order.
pub fn batches<T>(items: Vec<(T, usize)>) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut current: Vec<T> = Vec::new();
    let mut bytes = 0usize;
    for (item, size) in items {
        if !current.is_empty()
            && (current.len() == MAX_BATCH_ITEMS || bytes + size > MAX_BATCH_BYTES)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
