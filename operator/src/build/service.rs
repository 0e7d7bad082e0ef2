//! The Service of the runners' admin port (metrics, health, profile
//! lookups). Headless: every runner holds its own key groups, so Prometheus
//! and lookups address pods one by one, never a load-balanced virtual IP; and
//! a cluster with thousands of pipelines spends none of its service IPs on them.

use super::{metadata, selector_labels, Names, ADMIN_PORT};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kith_api::crd::ProfilePipeline;

pub fn build(pipeline: &ProfilePipeline, names: &Names) -> Service {
    Service {
        metadata: metadata(pipeline, names, &names.runner),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector_labels(names)),
            ports: Some(vec![ServicePort {
                name: Some("admin".into()),
                port: ADMIN_PORT,
                target_port: Some(IntOrString::String("admin".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
