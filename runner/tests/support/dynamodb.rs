//! Reading DynamoDB (moto) the way an application would, to compare the
//! sink's tables with the runner's export.

use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, HashMap};

pub struct Tables {
    pub client: aws_sdk_dynamodb::Client,
    pub runtime: tokio::runtime::Runtime,
}

impl Tables {
    pub fn new(endpoint: &str) -> Tables {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = runtime.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .endpoint_url(endpoint)
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                    "test", "test", None, None, "tests",
                ))
                .load(),
        );
        Tables {
            client: aws_sdk_dynamodb::Client::new(&config),
            runtime,
        }
    }

    /// Every item of a table.
    pub fn scan(&self, table: &str) -> Vec<HashMap<String, AttributeValue>> {
        self.runtime.block_on(async {
            let mut items = Vec::new();
            let mut start = None;
            loop {
                let out = self
                    .client
                    .scan()
                    .table_name(table)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("scan {table}: {e:?}"));
                items.extend(out.items.unwrap_or_default());
                start = out.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
            items
        })
    }

    pub fn exists(&self, table: &str) -> bool {
        self.runtime
            .block_on(self.client.describe_table().table_name(table).send())
            .is_ok()
    }
}

/// A DynamoDB value as JSON (numbers compared as JSON numbers).
pub fn to_json(v: &AttributeValue) -> serde_json::Value {
    use serde_json::Value;
    match v {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => serde_json::from_str(n).unwrap_or(Value::String(n.clone())),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(items) => Value::Array(items.iter().map(to_json).collect()),
        AttributeValue::M(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        other => panic!("unexpected attribute value {other:?}"),
    }
}

/// What the tables should hold for an export: per profile id, the item's
/// comparable fields; per identifier key, the sorted holders.
pub fn expected(
    export: &[String],
) -> (
    BTreeMap<String, serde_json::Value>,
    BTreeMap<String, Vec<String>>,
) {
    let (views, index) = super::feed::from_export(export);
    let profiles = views
        .into_iter()
        .map(|(id, p)| {
            let item = serde_json::json!({
                "kind": p["kind"],
                "record_count": p["records"].as_array().unwrap().len(),
                "identifiers": p["identifiers"],
                "attributes": p["attributes"],
                "provenance": p["provenance"],
                "relationships": p["relationships"],
            });
            (id, item)
        })
        .collect();
    (profiles, index)
}

/// What the tables hold, tombstones left out.
pub fn actual(
    tables: &Tables,
    profiles_table: &str,
    index_table: &str,
) -> (
    BTreeMap<String, serde_json::Value>,
    BTreeMap<String, Vec<String>>,
) {
    let mut profiles = BTreeMap::new();
    for item in tables.scan(profiles_table) {
        if item.get("deleted") == Some(&AttributeValue::Bool(true)) {
            continue;
        }
        let j = |k: &str| item.get(k).map(to_json).unwrap_or(serde_json::Value::Null);
        profiles.insert(
            j("profile_id").as_str().unwrap().to_string(),
            serde_json::json!({
                "kind": j("kind"),
                "record_count": j("record_count"),
                "identifiers": j("identifiers"),
                "attributes": j("attributes"),
                "provenance": j("provenance"),
                "relationships": j("relationships"),
            }),
        );
    }
    let mut index = BTreeMap::new();
    for item in tables.scan(index_table) {
        if item.get("deleted") == Some(&AttributeValue::Bool(true)) {
            continue;
        }
        let key = format!(
            "{}#{}",
            to_json(&item["type"]).as_str().unwrap(),
            to_json(&item["value"]).as_str().unwrap()
        );
        let ids: Vec<String> = to_json(&item["profile_ids"])
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        index.insert(key, ids);
    }
    (profiles, index)
}

/// Every item of `table` as boto3 reads it (`boto3_scan.py`, run by the
/// Python of moto's virtualenv), one JSON object per item.
pub fn boto3_scan(services: &super::services::Services, table: &str) -> Vec<serde_json::Value> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/boto3_scan.py");
    let out = std::process::Command::new(services.get("MOTO_PYTHON"))
        .arg(&script)
        .args([services.get("DYNAMODB_ENDPOINT"), table])
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "boto3 scan of {table} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("boto3_scan.py prints UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("boto3_scan.py prints JSON lines"))
        .collect()
}
