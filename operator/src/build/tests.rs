use super::*;
use crate::validate::validate;
use kith_api::crd::{PipelineState, ProfilePipelineSpec};

fn pipeline() -> ProfilePipeline {
    let spec: ProfilePipelineSpec = serde_json::from_value(serde_json::json!({
        "pipeline": {
            "name": "people",
            "sources": [{"type": "kafka", "bootstrapServers": "kafka:9092", "topics": ["people"]}],
            "identifiers": [{"type": "email", "normalize": "email"}]
        },
        "image": "kith-runner:test",
        "stateStorage": {"url": "s3://bucket/people"},
        "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    }))
    .unwrap();
    let mut p = ProfilePipeline::new("people", spec);
    p.metadata.namespace = Some("team".into());
    p.metadata.uid = Some("uid-1".into());
    p
}

fn build(p: &ProfilePipeline, replicas: i32) -> Desired {
    desired(p, &validate(&p.spec).unwrap(), replicas)
}

#[test]
fn every_object_is_owned_labelled_and_in_the_pipelines_namespace() {
    let d = build(&pipeline(), 1);
    let metas = [
        &d.config_map.metadata,
        &d.service_account.metadata,
        &d.role.metadata,
        &d.role_binding.metadata,
        &d.service.metadata,
        &d.deployment.metadata,
        &d.disruption_budget.metadata,
        &d.network_policy.metadata,
    ];
    for m in metas {
        assert_eq!(m.namespace.as_deref(), Some("team"));
        let owner = &m.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.uid.as_str(), owner.controller),
            ("uid-1", Some(true))
        );
        let labels = m.labels.as_ref().unwrap();
        assert_eq!(labels["app.kubernetes.io/managed-by"], MANAGED_BY);
        assert_eq!(labels[PIPELINE_LABEL], "people");
    }
    assert_eq!(
        d.config_map.metadata.name.as_deref(),
        Some("people-pipeline")
    );
    assert_eq!(d.deployment.metadata.name.as_deref(), Some("people-runner"));
}

#[test]
fn the_runner_pod_is_restricted_and_probed() {
    let d = build(&pipeline(), 2).deployment;
    assert_eq!(d.spec.replicas, Some(2));
    let pod = d.spec.template.spec.unwrap();
    let pod_security = pod.security_context.unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_ne!(pod_security.run_as_user, Some(0));
    let c = &pod.containers[0];
    let security = c.security_context.as_ref().unwrap();
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_string()])
    );
    let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .clone()
            .unwrap()
    };
    assert_eq!(path(&c.liveness_probe), "/healthz");
    assert_eq!(path(&c.readiness_probe), "/readyz");
    // Every path the runner writes is a volume, since the root is read-only.
    let mounts: Vec<&str> = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(mounts, ["/etc/kith", "/var/lib/kith", "/tmp"]);
    let env = c.env.as_ref().unwrap();
    let token = env.iter().find(|e| e.name == "TOKEN").unwrap();
    assert!(token.value.is_none() && token.value_from.is_some());
}

#[test]
fn the_admin_port_is_the_only_ingress_and_answers_to_rbac() {
    let d = build(&pipeline(), 1);
    let args = d.deployment.spec.template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    let auth = args.iter().position(|a| a == "--admin-auth").unwrap();
    assert_eq!(args[auth + 1], "kubernetes");
    let policy = d.network_policy.spec.unwrap();
    assert_eq!(policy.policy_types, Some(vec!["Ingress".to_string()]));
    assert_eq!(
        policy.pod_selector.unwrap().match_labels,
        Some(super::selector_labels(&super::Names::of(&pipeline())))
    );
    let ingress = policy.ingress.unwrap();
    assert_eq!(ingress.len(), 1);
    let ports = ingress[0].ports.as_ref().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(
        ports[0].port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(ADMIN_PORT))
    );
}

#[test]
fn a_changed_pipeline_changes_the_pod_template_but_a_rescale_does_not() {
    let p = pipeline();
    let annotation = |d: &Desired| {
        d.deployment
            .spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()[CONFIG_HASH_ANNOTATION]
            .clone()
    };
    let base = annotation(&build(&p, 1));
    assert_eq!(annotation(&build(&p, 5)), base);
    let mut changed = p.clone();
    changed.spec.pipeline.0["defaultRegion"] = serde_json::json!("GB");
    assert_ne!(annotation(&build(&changed, 1)), base);
}

#[test]
fn the_runner_role_grants_only_its_own_pipeline() {
    let role = build(&pipeline(), 1).role;
    let rules = role.rules.unwrap();
    let on = |resource: &str| {
        rules
            .iter()
            .filter(|r| r.resources.as_ref().unwrap().iter().any(|x| x == resource))
            .collect::<Vec<_>>()
    };
    for r in on("profilepipelines")
        .into_iter()
        .chain(on("profilepipelines/status"))
    {
        assert_eq!(r.resource_names, Some(vec!["people".to_string()]));
        assert!(!r
            .verbs
            .iter()
            .any(|v| v == "delete" || v == "update" || v == "*"));
    }
    assert!(rules.iter().all(|r| !r.verbs.iter().any(|v| v == "*")));
}

#[test]
fn the_config_map_holds_the_validated_pipeline_file() {
    let mut p = pipeline();
    p.spec.state = PipelineState::Suspended;
    let cm = build(&p, 0).config_map;
    let file: serde_json::Value =
        serde_yaml::from_str(&cm.data.unwrap()[config_map::PIPELINE_FILE]).unwrap();
    assert_eq!(file["keyGroups"], 128);
    assert_eq!(file["checkpoints"]["url"], "s3://bucket/people");
}

#[test]
fn the_release_job_runs_the_runner_pod_once_outside_the_runners_selector() {
    let p = pipeline();
    let names = Names::of(&p);
    let valid = validate(&p.spec).unwrap();
    let name = release_job_name(&names, &["b".into(), "a".into()]);
    assert_eq!(name, release_job_name(&names, &["a".into(), "b".into()]));
    assert_ne!(name, release_job_name(&names, &["a".into()]));
    assert!(
        name.starts_with("people-release-") && name.len() <= 63,
        "{name}"
    );
    let long = Names {
        pipeline: "p".repeat(200),
        ..names.clone()
    };
    assert!(release_job_name(&long, &["a".into()]).len() <= 63);

    let job = release_job(&p, &names, &valid, &name);
    let runner = build(&p, 1).deployment.spec.template.spec.unwrap();
    let spec = job.spec.unwrap();
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("OnFailure"));
    assert_eq!(pod.service_account_name, runner.service_account_name);
    assert_eq!(pod.security_context, runner.security_context);
    assert_eq!(pod.volumes, runner.volumes);
    let (c, r) = (&pod.containers[0], &runner.containers[0]);
    assert_eq!(
        (&c.image, &c.env, &c.volume_mounts),
        (&r.image, &r.env, &r.volume_mounts)
    );
    assert_eq!(c.security_context, r.security_context);
    assert_eq!(
        c.args.as_deref().unwrap()[..2],
        [
            "release-snapshots".to_string(),
            "/etc/kith/pipeline.yaml".to_string()
        ]
    );
    assert!(c.ports.is_none() && c.readiness_probe.is_none());
    assert!(spec.backoff_limit.is_some() && spec.ttl_seconds_after_finished.is_some());
    let labels = job.metadata.labels.unwrap();
    assert_eq!(labels["app.kubernetes.io/component"], RELEASE_COMPONENT);
    let selector = selector_labels(&names);
    let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
    assert!(
        !selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
        "the runner Deployment's selector must not match the release pod"
    );
    assert_eq!(job.metadata.owner_references.unwrap()[0].uid, "uid-1");
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// The CRD-to-objects path on any spec the API server could hand over
    /// (the example's, with one field at any depth replaced by any JSON):
    /// refused with a reason, or objects that run the runner restricted,
    /// with the admin port as the only ingress. Never a panic.
    #[test]
    fn any_spec_is_refused_or_built_into_restricted_objects(
        path in proptest::collection::vec(proptest::prelude::prop_oneof!["pipeline", "identifiers", "sources", "0", "type", "name", "normalize", "keyGroups", "stateStorage", "url", "image", "env", "replicas", "resolution", "checkpoints", "interval"], 1..4),
        value in any_json(),
    ) {
        let mut spec = serde_json::to_value(&pipeline().spec).unwrap();
        // The field's parent, when the example has one at that path.
        let parent = path[..path.len() - 1]
            .iter()
            .fold(String::new(), |pointer, key| format!("{pointer}/{key}"));
        if let Some(serde_json::Value::Object(map)) = spec.pointer_mut(&parent) {
            map.insert(path[path.len() - 1].clone(), value);
        }
        let Ok(spec) = serde_json::from_value::<ProfilePipelineSpec>(spec) else {
            return Ok(());
        };
        let mut p = ProfilePipeline::new("people", spec);
        p.metadata.namespace = Some("team".into());
        p.metadata.uid = Some("uid-1".into());
        match validate(&p.spec) {
            Err(invalid) => proptest::prop_assert!(!invalid.to_string().is_empty()),
            Ok(valid) => {
                let d = desired(&p, &valid, 1);
                let pod = d.deployment.spec.template.spec.as_ref().unwrap();
                proptest::prop_assert_eq!(
                    pod.security_context.as_ref().unwrap().run_as_non_root,
                    Some(true)
                );
                proptest::prop_assert_eq!(
                    d.network_policy.spec.as_ref().unwrap().ingress.as_ref().unwrap().len(),
                    1
                );
            }
        }
    }
}
