//! The CRD manifests of `crds/`, generated from the types in `kith-api`.

use kith_api::crd::{ProfilePipeline, ProfileSnapshot};
use kube::CustomResourceExt;

const HEADER: &str =
    "# Generated from api/src/crd by `make crds` (kith-operator crdgen). Do not edit.\n";

/// `(file name, YAML)` of every CRD.
pub fn manifests() -> Vec<(String, String)> {
    [ProfilePipeline::crd(), ProfileSnapshot::crd()]
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().expect("a derived CRD has a name");
            let yaml = serde_yaml::to_string(&crd).expect("a CRD serializes to YAML");
            (format!("{name}.yaml"), format!("{HEADER}{yaml}"))
        })
        .collect()
}
