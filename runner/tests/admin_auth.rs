//! The admin port of a runner in a cluster (`--admin-auth kubernetes`), on
//! the real kube-apiserver of tests/services: profiles and savepoints answer
//! only to a bearer token whose user RBAC allows them, probes and metrics to
//! anyone.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::cluster::{example, Cluster};
use support::runner::{binary, example as pipeline_file, wait_until};

/// Service accounts for each case, with just the access their name says.
const CALLERS: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: nobody}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: profile-reader}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: snapshot-taker}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-quickstart-profiles}
rules:
  - apiGroups: [kith.dev]
    resources: [profilepipelines/profiles]
    resourceNames: [quickstart]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: profile-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-quickstart-profiles}
subjects: [{kind: ServiceAccount, name: profile-reader}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: take-snapshots}
rules:
  - apiGroups: [kith.dev]
    resources: [profilesnapshots]
    verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: snapshot-taker}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: take-snapshots}
subjects: [{kind: ServiceAccount, name: snapshot-taker}]
"#;

/// Status and body of one request with an optional bearer token.
fn call(addr: &str, method: &str, target: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: x\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

#[test]
fn profiles_and_savepoints_answer_to_rbac_probes_and_metrics_to_anyone() {
    let cluster = Cluster::start("adminauth");
    cluster.apply(&example("quickstart.yaml")).unwrap();
    cluster.apply(CALLERS).unwrap();
    let token = |account: &str| cluster.ok(&["create", "token", account]).trim().to_string();
    let (nobody, reader, taker) = (
        token("nobody"),
        token("profile-reader"),
        token("snapshot-taker"),
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let mut runner = Command::new(binary())
        .args(["run", &pipeline_file("canonical/pipeline.yaml"), "--state"])
        .arg(dir.path().join("state"))
        .args(["--admin", &admin, "--admin-auth", "kubernetes"])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("KITH_NAMESPACE", &cluster.namespace)
        .env("KITH_PIPELINE", "quickstart")
        .env("KITH_POD_NAME", "quickstart-runner-0")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("runner.err")).unwrap())
        .spawn()
        .unwrap();
    let mut input = runner.stdin.take().unwrap();
    input
        .write_all(
            br#"{"source":"crm","id":"c-1","ts":"2026-01-05T10:00:00Z","kind":"person","identifiers":[{"type":"email","value":"ann@example.com"}]}
"#,
        )
        .unwrap();
    input.flush().unwrap();
    let log = || std::fs::read_to_string(dir.path().join("runner.err")).unwrap_or_default();
    assert!(
        wait_until(60, || std::net::TcpStream::connect(&admin).is_ok()
            && call(&admin, "GET", "/readyz", None).0 == 200),
        "the runner never became ready:\n{}",
        log()
    );
    let lookup = "/v1/profiles?identifier=email:ann@example.com";
    assert!(
        wait_until(30, || call(&admin, "GET", lookup, Some(&reader)).0 == 200),
        "the profile reader never read the profile:\n{}",
        log()
    );

    // Probes and metrics need nothing.
    for open in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(call(&admin, "GET", open, None).0, 200, "{open}");
    }
    // Lookups: no token, a bad one, one without the permission, one with it.
    let (status, body) = call(&admin, "GET", lookup, None);
    assert_eq!(status, 401, "{body}");
    let (status, body) = call(&admin, "GET", lookup, Some("not-a-token"));
    assert_eq!(status, 401, "{body}");
    for denied in [&nobody, &taker] {
        let (status, body) = call(&admin, "GET", lookup, Some(denied));
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("profilepipelines/profiles"), "{body}");
        assert!(!body.contains("ann@example.com"), "{body}");
    }
    let (status, body) = call(&admin, "GET", lookup, Some(&reader));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ann@example.com"), "{body}");
    // Savepoints: the same four cases.
    assert_eq!(call(&admin, "POST", "/v1/savepoints", None).0, 401);
    assert_eq!(
        call(&admin, "POST", "/v1/savepoints", Some("not-a-token")).0,
        401
    );
    for denied in [&nobody, &reader] {
        let (status, body) = call(&admin, "POST", "/v1/savepoints", Some(denied));
        assert_eq!(status, 403, "{body}");
    }
    let (status, body) = call(&admin, "POST", "/v1/savepoints", Some(&taker));
    assert_eq!(status, 201, "{body}");
    let written: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(written["records"], 1, "{body}");
    // Refusals are counted by status; no token appears in the log.
    let (_, metrics) = call(&admin, "GET", "/metrics", None);
    let denied = |code: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "kith_admin_requests_denied_total{{code=\"{code}\"}} "
                ))
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(denied("401"), 4.0, "{metrics}");
    assert_eq!(denied("403"), 4.0, "{metrics}");
    drop(input);
    let _ = runner.kill();
    let _ = runner.wait();
    let log = log();
    for secret in [&nobody, &reader, &taker] {
        assert!(!log.contains(secret.as_str()), "a token is in the log");
    }
}
