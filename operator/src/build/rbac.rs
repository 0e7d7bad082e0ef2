//! The runners' identity: a ServiceAccount and a Role granting exactly what
//! docs/design.md §6 has runners do through the API: read their own pipeline, report
//! into its status, watch and update its snapshots, and hold a Lease.

use super::{metadata, Names};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kith_api::crd::ProfilePipeline;

pub fn service_account(pipeline: &ProfilePipeline, names: &Names) -> ServiceAccount {
    ServiceAccount {
        metadata: metadata(pipeline, names, &names.runner),
        ..ServiceAccount::default()
    }
}

pub fn role(pipeline: &ProfilePipeline, names: &Names) -> Role {
    let own = Some(vec![names.pipeline.clone()]);
    Role {
        metadata: metadata(pipeline, names, &names.runner),
        rules: Some(vec![
            rule(
                "kith.dev",
                "profilepipelines",
                own.clone(),
                &["get", "watch"],
            ),
            rule(
                "kith.dev",
                "profilepipelines/status",
                own,
                &["get", "patch"],
            ),
            // Snapshots name their pipeline in their spec, which RBAC cannot
            // select on: runners see the namespace's snapshots and act on their own.
            // `patch`: removing the savepoint-files finalizer of a pruned
            // snapshot once its files are deleted.
            rule(
                "kith.dev",
                "profilesnapshots",
                None,
                &["get", "list", "watch", "patch"],
            ),
            rule(
                "kith.dev",
                "profilesnapshots/status",
                None,
                &["get", "patch", "update"],
            ),
            // `create` cannot be limited by name; the rest can.
            rule("coordination.k8s.io", "leases", None, &["create"]),
            rule(
                "coordination.k8s.io",
                "leases",
                Some(vec![names.runner.clone()]),
                &["get", "watch", "update", "patch"],
            ),
        ]),
    }
}

pub fn role_binding(pipeline: &ProfilePipeline, names: &Names) -> RoleBinding {
    RoleBinding {
        metadata: metadata(pipeline, names, &names.runner),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: names.runner.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: names.runner.clone(),
            namespace: Some(names.namespace.clone()),
            ..Subject::default()
        }]),
    }
}

fn rule(group: &str, resource: &str, names: Option<Vec<String>>, verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(vec![resource.into()]),
        resource_names: names,
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    }
}
