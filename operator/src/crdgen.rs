//! The CRD manifests of `crds/` and the configuration reference of
//! `docs/reference/`, generated from the types in `kith-api`.

use kith_api::crd::{ProfilePipeline, ProfileSnapshot};
use kith_api::reference;
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

const PIPELINE_INTRO: &str = "\
The pipeline file `kith-runner run` reads, and what a `ProfilePipeline`'s \
`spec.pipeline` holds. `${NAME}` anywhere in the file is replaced by the \
environment variable `NAME` before it is read (`$${NAME}` for a literal). \
Unknown fields are refused, naming the field. Beyond its schema, the runner \
(and the operator, with the same code) checks what a schema cannot say: \
identifier types that exist, regular expressions that compile, durations, \
one source per pipeline; its messages name the field. \
[`pipeline.schema.json`](pipeline.schema.json) is the same schema for an \
editor (for example `# yaml-language-server: $schema=...` at the top of a \
pipeline file).";

/// `(file name, text)` of every page of `docs/reference/`: the pipeline
/// file's reference and JSON schema, and one page per CRD rendered from the
/// `openAPIV3Schema` the API server enforces.
pub fn references() -> Vec<(String, String)> {
    let pipeline = reference::pipeline_schema();
    let mut pages = vec![
        (
            "pipeline.md".to_string(),
            reference::markdown("Pipeline file reference", PIPELINE_INTRO, &pipeline),
        ),
        (
            "pipeline.schema.json".to_string(),
            format!(
                "{}\n",
                serde_json::to_string_pretty(&pipeline).expect("a JSON value serializes")
            ),
        ),
    ];
    for crd in [ProfilePipeline::crd(), ProfileSnapshot::crd()] {
        let kind = crd.spec.names.kind.clone();
        let short_names = crd.spec.names.short_names.clone().unwrap_or_default();
        for version in &crd.spec.versions {
            let Some(schema) = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
            else {
                continue;
            };
            let schema = serde_json::to_value(schema).expect("a CRD schema serializes");
            let intro = format!(
                "`{kind}` (`{}/{}`, {}, short name{} {}): the custom resource as the API \
                 server validates it (`crds/{}.yaml`). Rules in italics are checked by the \
                 API server itself.{}",
                crd.spec.group,
                version.name,
                if crd.spec.scope == "Namespaced" {
                    "namespaced"
                } else {
                    "cluster-wide"
                },
                if short_names.len() > 1 { "s" } else { "" },
                short_names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                crd.metadata.name.clone().unwrap_or_default(),
                if kind == "ProfilePipeline" {
                    " `spec.pipeline` is checked by the operator as the runner would check \
                     the file (see [pipeline.md](pipeline.md))."
                } else {
                    ""
                },
            );
            pages.push((
                format!("{}.md", kind.to_lowercase()),
                reference::markdown(&format!("{kind} reference"), &intro, &schema),
            ));
        }
    }
    pages
}
