//! Encoding and error-table tests (pure); the writes against the real
//! service are in `runner/tests/sinks.rs`.

use super::encode::*;
use super::service::{classify_code, Class};
use crate::sink::flush::IdentifierOp;
use aws_sdk_dynamodb::types::AttributeValue;

#[test]
fn the_error_table_retries_throttling_and_server_errors_and_stops_on_mistakes() {
    assert_eq!(
        classify_code(Some("ConditionalCheckFailedException"), Some(400)),
        Class::AlreadyApplied
    );
    for code in [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    ] {
        assert_eq!(
            classify_code(Some(code), Some(400)),
            Class::Retry("throttled")
        );
    }
    assert_eq!(
        classify_code(Some("InternalServerError"), Some(500)),
        Class::Retry("unavailable")
    );
    assert_eq!(classify_code(None, Some(503)), Class::Retry("unavailable"));
    assert_eq!(classify_code(None, Some(429)), Class::Retry("unavailable"));
    for code in [
        "ResourceNotFoundException",
        "ValidationException",
        "AccessDeniedException",
        "UnrecognizedClientException",
    ] {
        assert_eq!(classify_code(Some(code), Some(400)), Class::Fatal, "{code}");
    }
    assert_eq!(classify_code(Some("SomethingNew"), Some(400)), Class::Fatal);
}

#[test]
fn identifier_keys_fit_the_partition_key_limit() {
    assert_eq!(identifier_key("email", "a@b.c"), "email#a@b.c");
    let long = "x".repeat(10_000);
    let key = identifier_key("email", &long);
    assert!(key.len() <= MAX_KEY_BYTES);
    assert!(key.starts_with("email#~"));
    assert_ne!(key, identifier_key("email", &"y".repeat(10_000)));
    // Just at the limit stays readable.
    let at_limit = "z".repeat(MAX_KEY_BYTES - "email#".len());
    assert_eq!(identifier_key("email", &at_limit).len(), MAX_KEY_BYTES);
}

#[test]
fn numbers_become_n_only_when_dynamodb_holds_them_exactly() {
    let v: serde_json::Value = serde_json::from_str(r#"[1, -2.5, 1.5e300, 12345678901234567890123456789012345678901, "7", true, null, {"a": [1]}]"#).unwrap();
    let AttributeValue::L(items) = json_to_attribute(&v) else {
        panic!()
    };
    assert_eq!(items[0], AttributeValue::N("1".into()));
    assert_eq!(items[1], AttributeValue::N("-2.5".into()));
    assert!(matches!(&items[2], AttributeValue::S(_)), "{:?}", items[2]);
    assert!(matches!(&items[3], AttributeValue::S(_)));
    assert_eq!(items[4], AttributeValue::S("7".into()));
    assert_eq!(items[5], AttributeValue::Bool(true));
    assert_eq!(items[6], AttributeValue::Null(true));
    assert!(matches!(&items[7], AttributeValue::M(m) if m.contains_key("a")));
}

#[test]
fn batches_hold_at_most_25_items_and_16_mb() {
    let small: Vec<(u32, usize)> = (0..60).map(|i| (i, 100)).collect();
    let b = batches(small);
    assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![25, 25, 10]);
    assert_eq!(b.concat(), (0..60).collect::<Vec<_>>());
    let big: Vec<(u32, usize)> = (0..10).map(|i| (i, 390 * 1024)).collect();
    for batch in batches(big.clone()) {
        let bytes: usize = batch.iter().map(|i| big[*i as usize].1).sum();
        assert!(bytes <= MAX_BATCH_BYTES);
    }
    let huge: Vec<(u32, usize)> = (0..50).map(|i| (i, 400 * 1024)).collect();
    let b = batches(huge);
    assert!(b.iter().all(|x| x.len() * 400 * 1024 <= MAX_BATCH_BYTES));
    assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 50);
}

#[test]
fn an_index_row_over_the_item_limit_lists_some_holders_and_counts_all() {
    let ids: Vec<String> = (0..5000).map(|i| format!("person-{i:024x}")).collect();
    let op = IdentifierOp {
        type_name: "email".into(),
        value: "test@test.com".into(),
        profile_ids: ids,
    };
    let item = identifier_item(&op, 7);
    assert!(item_size(&item) <= MAX_ITEM_BYTES);
    assert_eq!(item["holder_count"], AttributeValue::N("5000".into()));
    assert_eq!(item["holders_truncated"], AttributeValue::Bool(true));
    let AttributeValue::L(listed) = &item["profile_ids"] else {
        panic!()
    };
    assert_eq!(listed.len(), MAX_HOLDERS_LISTED);
    // A value too long for one item is cut, and says so.
    let op = IdentifierOp {
        type_name: "note".into(),
        value: "é".repeat(300_000),
        profile_ids: vec!["person-1".into()],
    };
    let item = identifier_item(&op, 1);
    assert!(item_size(&item) <= MAX_ITEM_BYTES);
    assert_eq!(item["value_truncated"], AttributeValue::Bool(true));
}

#[test]
fn a_profile_over_400_kb_drops_its_largest_attribute_values_and_names_them() {
    use crate::engine::ProfileView;
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "bio".to_string(),
        RawValue::from_string(serde_json::to_string(&"b".repeat(300_000)).unwrap()).unwrap(),
    );
    attributes.insert(
        "notes".to_string(),
        RawValue::from_string(serde_json::to_string(&"n".repeat(200_000)).unwrap()).unwrap(),
    );
    attributes.insert(
        "city".to_string(),
        RawValue::from_string("\"Oslo\"".into()).unwrap(),
    );
    let view = ProfileView {
        profile_id: "person-1".into(),
        kind: "person",
        records: Vec::new(),
        identifiers: Vec::new(),
        attributes,
        provenance: BTreeMap::new(),
        relationships: Vec::new(),
    };
    let (item, shrunk) = profile_item(&view, 3);
    assert!(shrunk);
    assert!(item_size(&item) <= MAX_ITEM_BYTES, "{}", item_size(&item));
    let AttributeValue::M(kept) = &item["attributes"] else {
        panic!()
    };
    assert!(kept.contains_key("city"));
    assert!(kept.contains_key("notes"));
    assert!(!kept.contains_key("bio"));
    assert_eq!(
        item["attributes_omitted"],
        AttributeValue::L(vec![AttributeValue::S("bio".into())])
    );
}
