//! The PodDisruptionBudget: node drains take runners down one at a time, so a
//! drain never stops a whole pipeline at once (and never blocks forever, as
//! `minAvailable: 100%` would with one replica).

use super::{metadata, selector_labels, Names};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kith_api::crd::ProfilePipeline;

pub fn build(pipeline: &ProfilePipeline, names: &Names) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: metadata(pipeline, names, &names.runner),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(names)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
