//! The operator validates pipelines with kith-pipeline and must not link
//! the runner: no engine, no librdkafka, no AWS SDK in its binary (a smaller
//! image, a faster build, and no data-path code in the control plane).

use std::collections::BTreeSet;
use std::process::Command;

/// Every package kith-operator's build links (normal dependencies,
/// transitively, for this host), from `cargo tree`.
fn linked_by_operator() -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--package",
            "kith-operator",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--locked",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_operator_links_the_pipeline_compiler_and_not_the_runner() {
    let linked = linked_by_operator();
    assert!(linked.contains("kith-pipeline"), "{linked:?}");
    assert!(linked.contains("kube"), "{linked:?}");
    let heavy: Vec<&String> = linked
        .iter()
        .filter(|n| {
            *n == "kith-runner"
                || n.starts_with("rdkafka")
                || n.starts_with("aws-sdk-")
                || *n == "aws-config"
                || *n == "object_store"
        })
        .collect();
    assert!(heavy.is_empty(), "the operator links {heavy:?}");
}
