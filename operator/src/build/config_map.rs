//! The ConfigMap holding the pipeline file the runners read.

use super::{metadata, Names};
use crate::validate::ValidPipeline;
use k8s_openapi::api::core::v1::ConfigMap;
use kith_api::crd::ProfilePipeline;
use std::collections::BTreeMap;

/// Key of the pipeline file in the ConfigMap (and its file name in the pod).
pub const PIPELINE_FILE: &str = "pipeline.yaml";

pub fn build(pipeline: &ProfilePipeline, names: &Names, valid: &ValidPipeline) -> ConfigMap {
    ConfigMap {
        metadata: metadata(pipeline, names, &names.config),
        data: Some(BTreeMap::from([(
            PIPELINE_FILE.to_string(),
            pipeline_file(valid),
        )])),
        ..ConfigMap::default()
    }
}

/// The document as YAML (JSON is YAML too, but `kubectl get cm -o yaml` reads
/// better this way).
fn pipeline_file(valid: &ValidPipeline) -> String {
    serde_yaml::to_string(&valid.document).expect("a JSON value always serializes to YAML")
}
