//! `crds/` holds exactly what the types in `kith-api` generate: a change to
//! the types without `make crds` fails here, with the command to run.

use std::path::Path;

/// `dir` (from the workspace root) holds exactly the `generated` files
/// among those `counted`, each as generated.
fn assert_checked_in(dir: &str, counted: fn(&str) -> bool, generated: Vec<(String, String)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let mut expected: Vec<String> = generated.iter().map(|(f, _)| f.clone()).collect();
    expected.sort();
    let mut present: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{dir}/: {e}; run `make crds`"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| counted(f))
        .collect();
    present.sort();
    assert_eq!(
        present, expected,
        "{dir}/ holds other files than the generated ones; run `make crds`"
    );
    for (file, text) in generated {
        let checked_in = std::fs::read_to_string(root.join(&file)).unwrap();
        assert!(
            checked_in == text,
            "{dir}/{file} is stale: run `make crds` and commit the result"
        );
    }
}

#[test]
fn checked_in_crds_match_the_types() {
    assert_checked_in(
        "crds",
        |f| f.ends_with(".yaml"),
        kith_operator::crdgen::manifests(),
    );
}

/// `docs/reference/` is what the schemas render to: a field added to the
/// pipeline types or the CRDs without `make crds` fails here.
#[test]
fn checked_in_reference_matches_the_schemas() {
    assert_checked_in(
        "docs/reference",
        |_| true,
        kith_operator::crdgen::references(),
    );
}

/// The reference reaches what users write most: a field of each section of
/// the pipeline and of the CRD's spec, so a renderer that stopped at the
/// top level would not pass.
#[test]
fn the_reference_reaches_nested_fields() {
    let pages: std::collections::BTreeMap<String, String> =
        kith_operator::crdgen::references().into_iter().collect();
    let pipeline = &pages["pipeline.md"];
    for field in [
        "bootstrapServers",
        "normalize",
        "matchThreshold",
        "profilesTable",
        "interval",
    ] {
        assert!(
            pipeline.contains(&format!("| `{field}` |")),
            "pipeline.md lacks `{field}`"
        );
    }
    let crd = &pages["profilepipeline.md"];
    for field in [
        "maxParallelism",
        "stateStorage",
        "upgradeMode",
        "savepointNonce",
        "conditions",
    ] {
        assert!(
            crd.contains(&format!("| `{field}` |")),
            "profilepipeline.md lacks `{field}`"
        );
    }
    assert!(
        crd.contains("spec.maxParallelism is immutable"),
        "the API server's rules are on the page"
    );
    assert!(pages.contains_key("profilesnapshot.md"));
}
