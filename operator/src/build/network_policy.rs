//! The NetworkPolicy of a pipeline's runners: ingress only to the admin
//! port (metrics, probes, and the authenticated profile and savepoint
//! endpoints); runners listen on nothing else, and with this policy a
//! port opened by mistake is not reachable either. Egress stays open:
//! runners reach Kafka, object storage, the stores and the API server,
//! whose addresses the operator does not know.

use super::{metadata, selector_labels, Names, ADMIN_PORT};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kith_api::crd::ProfilePipeline;

pub fn build(pipeline: &ProfilePipeline, names: &Names) -> NetworkPolicy {
    NetworkPolicy {
        metadata: metadata(pipeline, names, &names.runner),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(names)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                // From anywhere (Prometheus, a kubectl port-forward, an
                // application reading profiles): who may read is RBAC's
                // decision on the port itself.
                from: None,
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(ADMIN_PORT)),
                    protocol: Some("TCP".into()),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
            egress: None,
        }),
    }
}
