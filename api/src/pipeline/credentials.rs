//! Credentials in a pipeline file: only by reference to the environment.
//!
//! A pipeline file is committed to Git, applied as a custom resource and
//! shown by `kubectl get -o yaml`; a password written into it is readable by
//! everyone who can read those. The client settings that carry a credential
//! must therefore be a `${NAME}` reference, which the runner fills from its
//! environment (on Kubernetes from a Secret, through `spec.env`). TLS
//! material that is not secret (a CA) or that lives in a mounted file
//! (`ssl.key.location`) is not affected.

use serde_json::Value;

/// librdkafka settings that hold a secret value (those librdkafka itself
/// treats as sensitive and never prints).
pub const CREDENTIAL_PROPERTIES: &[&str] = &[
    "sasl.password",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.config",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.keystore.password",
];

/// Whether `key` of a Kafka source's or sink's `properties` holds a secret.
pub fn is_credential_property(key: &str) -> bool {
    CREDENTIAL_PROPERTIES.contains(&key)
}

/// The path (`sources[0].properties.sasl.password`) of the first credential
/// written out in `document` rather than given as a reference;
/// `is_reference` says whether a string value is one. `document` is the
/// pipeline as written, before references are filled in.
pub fn inline_credential(document: &Value, is_reference: &dyn Fn(&str) -> bool) -> Option<String> {
    for list in ["sources", "sinks"] {
        let Some(Value::Array(items)) = document.get(list) else {
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let Some(Value::Object(properties)) = item.get("properties") else {
                continue;
            };
            for (key, value) in properties {
                let by_reference = value.as_str().is_some_and(is_reference);
                if is_credential_property(key) && !by_reference {
                    return Some(format!("{list}[{i}].properties.{key}"));
                }
            }
        }
    }
    None
}

/// Whether `value` is exactly one `${NAME}` (or `${NAME:-default}`)
/// reference, as it reads in a document that has not been expanded (a
/// custom resource's `spec.pipeline`).
pub fn is_environment_reference(value: &str) -> bool {
    value
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .is_some_and(|name| !name.is_empty() && !name.contains(['$', '{', '}']))
}

/// What a user is told when [`inline_credential`] finds one.
pub fn inline_credential_message() -> &'static str {
    "a credential may not be written into the pipeline file: write `${NAME}` and set NAME in \
     the runner's environment (on Kubernetes from a Secret, through spec.env)"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_password_written_out_is_found_by_its_path() {
        let doc = json!({
            "sources": [{"type": "kafka", "properties": {"sasl.username": "kith", "sasl.password": "hunter2"}}],
        });
        assert_eq!(
            inline_credential(&doc, &is_environment_reference).as_deref(),
            Some("sources[0].properties.sasl.password")
        );
    }

    #[test]
    fn references_and_settings_that_are_not_secret_pass() {
        let doc = json!({
            "sources": [{"type": "kafka", "properties": {
                "sasl.username": "kith",
                "sasl.password": "${KAFKA_PASSWORD}",
                "ssl.ca.location": "/etc/kafka/ca.crt",
            }}],
            "sinks": [{"type": "kafka", "properties": {"ssl.key.password": "${KEY_PASSWORD:-}"}}],
        });
        assert_eq!(inline_credential(&doc, &is_environment_reference), None);
    }

    #[test]
    fn a_sink_credential_or_a_number_is_found_too() {
        let doc = json!({"sinks": [{}, {"type": "kafka", "properties": {"ssl.keystore.password": 12345678}}]});
        assert_eq!(
            inline_credential(&doc, &is_environment_reference).as_deref(),
            Some("sinks[1].properties.ssl.keystore.password")
        );
    }

    #[test]
    fn only_a_whole_reference_counts() {
        assert!(is_environment_reference("${A}"));
        assert!(is_environment_reference("${A:-x}"));
        assert!(!is_environment_reference("pre${A}"));
        assert!(!is_environment_reference("${A}${B}"));
        assert!(!is_environment_reference("${}"));
        assert!(!is_environment_reference("hunter2"));
    }
}
