use super::*;
use kube::CustomResourceExt;

fn crd_json<T: CustomResourceExt>() -> serde_json::Value {
    serde_json::to_value(T::crd()).unwrap()
}

#[test]
fn pipeline_crd_has_subresources_short_name_and_rules() {
    let crd = crd_json::<ProfilePipeline>();
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "pp");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(
        version["subresources"]["scale"]["specReplicasPath"],
        ".spec.parallelism"
    );
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["Phase", "Parallelism", "Ready", "Last Snapshot", "Age"]
    );
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let text = spec.to_string();
    assert!(text.contains("self == oldSelf"), "{text}");
    assert!(
        text.contains("self.parallelism <= self.maxParallelism"),
        "{text}"
    );
    assert_eq!(
        spec["properties"]["upgradeMode"]["enum"],
        serde_json::json!(["stateless", "savepoint", "last-state"])
    );
    assert_eq!(
        spec["properties"]["pipeline"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
}

#[test]
fn pipeline_spec_defaults_fill_in() {
    let spec: ProfilePipelineSpec = serde_json::from_value(serde_json::json!({
        "pipeline": {"name": "p", "identifiers": []},
        "image": "kith-runner:dev",
        "stateStorage": {"url": "s3://bucket/p"}
    }))
    .unwrap();
    assert_eq!(spec.parallelism, 1);
    assert_eq!(spec.max_parallelism, 128);
    assert_eq!(spec.upgrade_mode, UpgradeMode::Savepoint);
    assert_eq!(spec.state, PipelineState::Running);
    assert_eq!(spec.checkpoint_interval, "10s");
}

#[test]
fn snapshot_spec_is_immutable() {
    let crd = crd_json::<ProfileSnapshot>();
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "psnap");
    let text = crd["spec"]["versions"][0]["schema"].to_string();
    assert!(text.contains("self == oldSelf"), "{text}");
}
