//! Validation of a `ProfilePipeline` beyond what its schema and CEL rules say:
//! the embedded pipeline must be one the runner accepts. It is compiled with
//! the code the runner compiles it with at start (kith-pipeline), so the
//! operator never deploys a spec the runner would refuse, and never refuses
//! one the runner would run.
//!
//! The resource-level settings (maximum parallelism, state storage, checkpoint
//! interval) are written into the pipeline document here: the runner reads a
//! single file, and a value set in both places is refused rather than guessed.

use kith_api::crd::ProfilePipelineSpec;
use kith_api::pipeline::{credentials, PipelineSpec, SourceSpec};
use serde_json::{json, Map, Value};

/// A mistake in a pipeline's spec, phrased for its owner: the field and what
/// would be accepted. Reported as the Degraded condition with reason InvalidSpec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSpec(pub String);

/// A pipeline ready to be written into the runner's ConfigMap.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidPipeline {
    /// The pipeline file the runners read (the document with the
    /// resource-level settings written in).
    pub document: Value,
    /// Hash of everything that makes a runner behave differently (pipeline,
    /// image, environment, resources, storage), but not of the parallelism:
    /// a changed hash is an upgrade, a changed parallelism is a rescale.
    pub spec_hash: String,
    /// The savepoint the runners start from while their lineage holds no
    /// checkpoint yet (`--initial-savepoint`; set for a rollback).
    pub initial_savepoint: Option<String>,
}

impl ValidPipeline {
    /// The same pipeline checkpointing into `lineage`, a sub-path of its
    /// state storage URL (none: the URL itself). The hash does not change:
    /// which lineage the state is in is not part of what the runners run.
    pub fn with_lineage(mut self, lineage: Option<&str>) -> ValidPipeline {
        if let Some(lineage) = lineage {
            let url = &mut self.document["checkpoints"]["url"];
            if let Some(base) = url.as_str() {
                *url = json!(format!("{}/{lineage}", base.trim_end_matches('/')));
            }
        }
        self
    }

    /// The same pipeline starting from `savepoint` while its lineage holds
    /// no checkpoint.
    pub fn starting_from(mut self, savepoint: Option<String>) -> ValidPipeline {
        self.initial_savepoint = savepoint;
        self
    }
}

/// Checks `spec` and returns the runners' pipeline file, with no model
/// content at hand (see [`validate_with_model`]).
pub fn validate(spec: &ProfilePipelineSpec) -> Result<ValidPipeline, InvalidSpec> {
    validate_with_model(spec, None)
}

/// Checks `spec` and returns the runners' pipeline file. `model` is the
/// content of the model `spec.resolutionModel` names when the caller could
/// read it (a ConfigMap; the operator may not read Secrets): it is checked
/// as the runner checks it at start.
pub fn validate_with_model(
    spec: &ProfilePipelineSpec,
    model: Option<&str>,
) -> Result<ValidPipeline, InvalidSpec> {
    let Value::Object(mut document) = spec.pipeline.0.clone() else {
        return Err(InvalidSpec("spec.pipeline must be a mapping".into()));
    };
    set_once(
        &mut document,
        "keyGroups",
        "keyGroups",
        json!(spec.max_parallelism),
        "spec.maxParallelism",
    )?;
    let checkpoints = document
        .entry("checkpoints")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(checkpoints) = checkpoints else {
        return Err(InvalidSpec(
            "spec.pipeline.checkpoints must be a mapping".into(),
        ));
    };
    for (field, value, instead) in [
        (
            "url",
            Some(spec.state_storage.url.clone()),
            "spec.stateStorage.url",
        ),
        (
            "savepointUrl",
            spec.state_storage.savepoint_url.clone(),
            "spec.stateStorage.savepointUrl",
        ),
        (
            "interval",
            Some(spec.checkpoint_interval.clone()),
            "spec.checkpointInterval",
        ),
    ] {
        if let Some(value) = value {
            let shown = format!("checkpoints.{field}");
            set_once(checkpoints, field, &shown, json!(value), instead)?;
        }
    }
    place_model(spec, &mut document)?;
    let document = Value::Object(document);
    if let Some(path) =
        credentials::inline_credential(&document, &credentials::is_environment_reference)
    {
        return Err(InvalidSpec(format!(
            "spec.pipeline.{path}: {}",
            credentials::inline_credential_message()
        )));
    }
    let typed = PipelineSpec::from_value(document.clone())
        .map_err(|e| InvalidSpec(format!("spec.pipeline.{}: {}", e.path, e.message)))?;
    // A runner pod has no standard input and no files but its own: it reads
    // from Kafka. (`kith-runner run` on a workstation takes the others.)
    if !typed
        .sources
        .iter()
        .any(|s| matches!(s, SourceSpec::Kafka(_)))
    {
        return Err(InvalidSpec(
            "spec.pipeline.sources: a pipeline on Kubernetes reads from Kafka; add a source with `type: kafka` (file and stdin sources are for `kith-runner run` outside a cluster)".into(),
        ));
    }
    let compiled = kith_pipeline::config::Pipeline::from_spec_with_model(&typed, model)
        .map_err(|e| InvalidSpec(format!("spec.pipeline: {e}")))?;
    let unscored = compiled
        .resolution
        .as_ref()
        .is_some_and(|r| r.weights.is_none());
    if unscored && spec.resolution_model.is_none() {
        return Err(InvalidSpec(
            "spec.pipeline.resolution has no model: give spec.resolutionModel (a ConfigMap or Secret key holding what `kith-runner train` wrote), or prior and every comparison's m and u".into(),
        ));
    }
    let spec_hash = spec_hash(spec, &document, model);
    Ok(ValidPipeline {
        document,
        spec_hash,
        initial_savepoint: None,
    })
}

/// Writes the path of the mounted model into `resolution.model` when the
/// resource names one; refuses a model path the pods would not have.
fn place_model(
    spec: &ProfilePipelineSpec,
    document: &mut Map<String, Value>,
) -> Result<(), InvalidSpec> {
    let resolution = document.get_mut("resolution");
    let declared = resolution.as_ref().and_then(|r| r.get("model")).cloned();
    match (&spec.resolution_model, declared, resolution) {
        (None, Some(path), _) => Err(InvalidSpec(format!(
            "spec.pipeline.resolution.model ({path}) names a file no runner pod has: give the model as spec.resolutionModel (a ConfigMap or Secret key) and leave resolution.model out"
        ))),
        (Some(_), Some(path), _) => Err(InvalidSpec(format!(
            "spec.pipeline.resolution.model ({path}) conflicts with spec.resolutionModel: set only spec.resolutionModel"
        ))),
        (Some(_), None, Some(Value::Object(resolution))) => {
            resolution.insert("model".into(), json!(crate::build::MODEL_FILE));
            Ok(())
        }
        (Some(_), None, _) => Err(InvalidSpec(
            "spec.resolutionModel is set but spec.pipeline has no resolution section to use it".into(),
        )),
        (None, None, _) => Ok(()),
    }
}

/// Sets `key` to `value` unless the document already holds another value;
/// `shown` is the key's path under `spec.pipeline` for the message.
fn set_once(
    document: &mut Map<String, Value>,
    key: &str,
    shown: &str,
    value: Value,
    instead: &str,
) -> Result<(), InvalidSpec> {
    match document.get(key) {
        Some(existing) if *existing != value => Err(InvalidSpec(format!(
            "spec.pipeline.{shown} ({existing}) conflicts with {instead} ({value}): set only {instead}"
        ))),
        _ => {
            document.insert(key.to_string(), value);
            Ok(())
        }
    }
}

fn spec_hash(spec: &ProfilePipelineSpec, document: &Value, model: Option<&str>) -> String {
    // A new model in the same ConfigMap is an upgrade too (a Secret's
    // content is not known here: name a new key or Secret to roll one out).
    let model = model.map(|m| format!("{:016x}", xxhash_rust::xxh3::xxh3_64(m.as_bytes())));
    let mut upgrade_relevant = json!({
        "pipeline": document,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "env": spec.env,
        "resources": spec.resources,
    });
    // Only when set, so that the hash of a pipeline without a model stays
    // what it was.
    if let Some(source) = &spec.resolution_model {
        upgrade_relevant["resolutionModel"] = json!(source);
        upgrade_relevant["model"] = json!(model);
    }
    let bytes = serde_json::to_vec(&upgrade_relevant).expect("JSON values serialize");
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pipeline: Value) -> ProfilePipelineSpec {
        serde_json::from_value(json!({
            "pipeline": pipeline,
            "image": "kith-runner:test",
            "stateStorage": {"url": "s3://bucket/people"},
            "maxParallelism": 64
        }))
        .unwrap()
    }

    fn people() -> Value {
        json!({
            "name": "people",
            "sources": [{"type": "kafka", "bootstrapServers": "kafka:9092", "topics": ["people"]}],
            "identifiers": [{"type": "email", "normalize": "email"}]
        })
    }

    #[test]
    fn resource_settings_are_written_into_the_pipeline() {
        let valid = validate(&spec(people())).unwrap();
        assert_eq!(valid.document["keyGroups"], 64);
        assert_eq!(valid.document["checkpoints"]["url"], "s3://bucket/people");
        assert_eq!(valid.document["checkpoints"]["interval"], "10s");
    }

    #[test]
    fn a_lineage_is_a_sub_path_of_the_checkpoint_url_and_keeps_the_hash() {
        let valid = validate(&spec(people())).unwrap();
        let hash = valid.spec_hash.clone();
        let moved = valid.with_lineage(Some("stateless-abc"));
        assert_eq!(
            moved.document["checkpoints"]["url"],
            "s3://bucket/people/stateless-abc"
        );
        assert_eq!(moved.spec_hash, hash);
        let same = validate(&spec(people())).unwrap().with_lineage(None);
        assert_eq!(same.document["checkpoints"]["url"], "s3://bucket/people");
    }

    #[test]
    fn a_kafka_password_must_come_from_the_environment() {
        let mut p = people();
        p["sources"][0]["properties"] =
            json!({"sasl.username": "kith", "sasl.password": "hunter2"});
        let e = validate(&spec(p.clone())).unwrap_err();
        assert!(
            e.0.contains("spec.pipeline.sources[0].properties.sasl.password")
                && !e.0.contains("hunter2"),
            "{e}"
        );
        p["sources"][0]["properties"]["sasl.password"] = json!("${KAFKA_PASSWORD}");
        let valid = validate(&spec(p)).unwrap();
        assert_eq!(
            valid.document["sources"][0]["properties"]["sasl.password"], "${KAFKA_PASSWORD}",
            "the runner fills it from its environment"
        );
    }

    #[test]
    fn a_setting_given_twice_with_different_values_is_refused() {
        let mut p = people();
        p["keyGroups"] = json!(128);
        let e = validate(&spec(p)).unwrap_err();
        assert!(
            e.0.contains("spec.pipeline.keyGroups") && e.0.contains("spec.maxParallelism"),
            "{e}"
        );
        let mut p = people();
        p["checkpoints"] = json!({"url": "s3://elsewhere"});
        let e = validate(&spec(p)).unwrap_err();
        assert!(
            e.0.contains("spec.pipeline.checkpoints.url") && e.0.contains("spec.stateStorage.url"),
            "{e}"
        );
    }

    #[test]
    fn a_mapping_naming_an_unknown_identifier_type_is_invalid() {
        let mut p = people();
        p["template"] = json!({"eventType": "$.type", "events": {"signed_up": {
            "source": "web",
            "id": "$.id",
            "ts": "$.at",
            "kind": "person",
            "identifiers": [{"type": "phone", "value": "$.phone"}]
        }}});
        let e = validate(&spec(p)).unwrap_err();
        assert!(e.0.contains("phone"), "{e}");
    }

    fn with_resolution() -> Value {
        let mut p = people();
        p["resolution"] = json!({
            "keys": [{"name": "surname", "attribute": "surname"}],
            "blocking": {"rules": [["surname"]]},
            "comparisons": [{"attribute": "given_name", "method": {"jaroWinkler": {"thresholds": [0.9]}}}]
        });
        p
    }

    #[test]
    fn a_model_must_come_from_something_the_pods_mount() {
        // A path no pod has.
        let mut p = with_resolution();
        p["resolution"]["model"] = json!("models/people.json");
        let e = validate(&spec(p)).unwrap_err();
        assert!(
            e.0.contains("spec.resolutionModel") && e.0.contains("models/people.json"),
            "{e}"
        );
        // No model at all, and no weights given: the runner would refuse to start.
        let e = validate(&spec(with_resolution())).unwrap_err();
        assert!(e.0.contains("no model"), "{e}");
        // A Secret's model: mounted, its path written in; the content is the kubelet's.
        let mut s = spec(with_resolution());
        s.resolution_model = Some(kith_api::crd::ModelSource {
            config_map_key_ref: None,
            secret_key_ref: Some(kith_api::crd::KeyRef {
                name: "models".into(),
                key: "people.json".into(),
            }),
        });
        let valid = validate(&s).unwrap();
        assert_eq!(
            valid.document["resolution"]["model"],
            crate::build::MODEL_FILE
        );
        // A ConfigMap's model is read, and checked as the runner checks it.
        let mut c = s.clone();
        c.resolution_model = Some(kith_api::crd::ModelSource {
            config_map_key_ref: Some(kith_api::crd::KeyRef {
                name: "models".into(),
                key: "people.json".into(),
            }),
            secret_key_ref: None,
        });
        let e = validate_with_model(&c, Some("{\"not\": \"a model\"}")).unwrap_err();
        assert!(e.0.contains("resolution.model"), "{e}");
        // Given both ways: refused.
        let mut both = with_resolution();
        both["resolution"]["model"] = json!("m.json");
        let mut both = spec(both);
        both.resolution_model = s.resolution_model.clone();
        assert!(validate(&both).unwrap_err().0.contains("conflicts"));
    }

    #[test]
    fn a_pipeline_without_a_kafka_source_is_invalid() {
        let mut p = people();
        p["sources"] = json!([{"type": "stdin"}]);
        let e = validate(&spec(p)).unwrap_err();
        assert!(e.0.contains("spec.pipeline.sources"), "{e}");
    }

    #[test]
    fn an_unknown_field_is_named() {
        let mut p = people();
        p["identifers"] = json!([]);
        let e = validate(&spec(p)).unwrap_err();
        assert!(e.0.contains("identifers"), "{e}");
    }

    #[test]
    fn the_hash_follows_the_pipeline_and_image_but_not_the_parallelism() {
        let base = spec(people());
        let hash = validate(&base).unwrap().spec_hash;
        let mut scaled = base.clone();
        scaled.parallelism = 7;
        assert_eq!(validate(&scaled).unwrap().spec_hash, hash);
        let mut upgraded = base.clone();
        upgraded.image = "kith-runner:next".into();
        assert_ne!(validate(&upgraded).unwrap().spec_hash, hash);
        let mut changed = base;
        changed.pipeline.0["defaultRegion"] = json!("GB");
        assert_ne!(validate(&changed).unwrap().spec_hash, hash);
    }
}
