use super::*;
use serde_json::json;

fn template() -> PodTemplateSpec {
    serde_json::from_value(json!({
        "metadata": {"annotations": {"kith.dev/spec-hash": "abc"}},
        "spec": {
            "serviceAccountName": "p-runner",
            "terminationGracePeriodSeconds": 120,
            "containers": [{
                "name": "runner",
                "image": "kith-runner:e2e",
                "args": ["run", "/etc/kith/pipeline.yaml", "--state", "/var/lib/kith/state",
                         "--admin", "0.0.0.0:9249", "--log=/var/lib/kith/x.log", "$(GREETING)"],
                "env": [
                    {"name": "GREETING", "value": "hi $(POD)"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "GREETING2", "value": "$(POD)-$$(POD)"},
                    {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                    {"name": "MAYBE", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": true}}}
                ],
                "ports": [{"name": "admin", "containerPort": 9249}],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "admin"}, "periodSeconds": 5, "failureThreshold": 2},
                "volumeMounts": [
                    {"name": "pipeline", "mountPath": "/etc/kith", "readOnly": true},
                    {"name": "state", "mountPath": "/var/lib/kith"}
                ]
            }],
            "volumes": [
                {"name": "pipeline", "configMap": {"name": "p-pipeline"}},
                {"name": "state", "emptyDir": {}}
            ]
        }
    }))
    .unwrap()
}

fn objects() -> Objects {
    let mut o = Objects::default();
    o.config_maps.insert(
        "p-pipeline".into(),
        BTreeMap::from([("pipeline.yaml".to_string(), b"name: p".to_vec())]),
    );
    o.secrets.insert(
        "creds".into(),
        BTreeMap::from([("token".to_string(), b"s3cr3t".to_vec())]),
    );
    o
}

fn context<'a>(root: &'a Path, kubeconfig: &'a Path) -> PodContext<'a> {
    PodContext {
        name: "p-runner-abc-00001",
        namespace: "ns",
        root,
        kubeconfig,
    }
}

#[test]
fn a_runner_template_becomes_a_local_process() {
    let root = Path::new("/pods/p");
    let kubeconfig = Path::new("/pods/p/kubeconfig");
    let launch = translate(&template(), &context(root, kubeconfig), &objects(), || {
        40000
    })
    .unwrap();
    assert_eq!(launch.image, "kith-runner:e2e");
    assert_eq!(
        launch.args,
        [
            "run",
            "/pods/p/fs/etc/kith/pipeline.yaml",
            "--state",
            "/pods/p/fs/var/lib/kith/state",
            "--admin",
            "127.0.0.1:40000",
            "--log=/pods/p/fs/var/lib/kith/x.log",
            // Defined before POD was: left as written, as the kubelet does.
            "hi $(POD)",
        ]
    );
    let env: HashMap<_, _> = launch.env.iter().cloned().collect();
    assert_eq!(env["POD"], "p-runner-abc-00001");
    assert_eq!(env["GREETING2"], "p-runner-abc-00001-$(POD)");
    assert_eq!(env["SECRET"], "s3cr3t");
    assert_eq!(env["KUBECONFIG"], "/pods/p/kubeconfig");
    assert!(
        !env.contains_key("MAYBE"),
        "an optional missing key stays unset"
    );
    assert_eq!(
        launch.files,
        [(
            PathBuf::from("/pods/p/fs/etc/kith/pipeline.yaml"),
            b"name: p".to_vec()
        )]
    );
    assert_eq!(
        launch.address_of("admin").as_deref(),
        Some("127.0.0.1:40000")
    );
    let readiness = launch.readiness.unwrap();
    assert_eq!(
        (readiness.path.as_str(), readiness.port),
        ("/readyz", 40000)
    );
    assert_eq!(readiness.failure_threshold, 2);
    assert_eq!(launch.grace, Duration::from_secs(120));
}

#[test]
fn a_missing_secret_holds_the_container_and_unsupported_fields_are_refused() {
    let root = Path::new("/pods/p");
    let mut objects = objects();
    objects.secrets.clear();
    let err = translate(&template(), &context(root, root), &objects, || 1).unwrap_err();
    assert_eq!(
        err,
        TemplateError::MissingObject {
            kind: "Secret",
            name: "creds".into(),
            by: "env SECRET".into()
        }
    );
    let mut with_command = template();
    with_command.spec.as_mut().unwrap().containers[0].command = Some(vec!["sh".into()]);
    assert!(matches!(
        translate(&with_command, &context(root, root), &self::objects(), || 1),
        Err(TemplateError::Unsupported(_))
    ));
}

#[test]
fn expansion_follows_the_kubelet() {
    let defined = HashMap::from([("A", "1")]);
    assert_eq!(
        expand("$(A)/$(B)/$$(A)/$x/$(", &defined),
        "1/$(B)/$(A)/$x/$("
    );
}
