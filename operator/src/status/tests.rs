use super::*;
use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
use k8s_openapi::jiff::Timestamp;
use kith_api::crd::ProfilePipelineSpec;

fn pipeline(generation: i64, state: PipelineState) -> ProfilePipeline {
    let mut spec: ProfilePipelineSpec = serde_json::from_value(serde_json::json!({
        "pipeline": {"name": "p", "identifiers": [{"type": "email"}]},
        "image": "kith-runner:test",
        "stateStorage": {"url": "s3://b/p"},
    }))
    .unwrap();
    spec.state = state;
    let mut p = ProfilePipeline::new("p", spec);
    p.metadata.generation = Some(generation);
    p
}

fn deployment(generation: i64, replicas: i32, status: DeploymentStatus) -> Deployment {
    let mut d = Deployment {
        spec: DeploymentSpec {
            replicas: Some(replicas),
            ..DeploymentSpec::default()
        },
        status: Some(status),
        ..Deployment::default()
    };
    d.metadata.generation = Some(generation);
    d
}

fn rolled_out(generation: i64, replicas: i32) -> DeploymentStatus {
    DeploymentStatus {
        observed_generation: Some(generation),
        replicas: Some(replicas),
        updated_replicas: Some(replicas),
        ready_replicas: Some(replicas),
        available_replicas: Some(replicas),
        ..DeploymentStatus::default()
    }
}

fn applied(d: Deployment) -> Outcome {
    Outcome::Applied {
        deployment: Box::new(d),
        spec_hash: "h1".into(),
        selector: "s".into(),
        lineage: None,
        degraded: None,
    }
}

/// A pipeline whose generation 1 rolled out (one runner, spec "h1", Ready at
/// time 10) and whose spec then changed (generation 2).
fn running_then_changed() -> ProfilePipeline {
    let mut p = pipeline(1, PipelineState::Running);
    p.status = Some(compute(
        &p,
        &applied(deployment(1, 1, rolled_out(1, 1))),
        at(10),
    ));
    p.metadata.generation = Some(2);
    p
}

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(seconds).unwrap())
}

fn get<'a>(s: &'a ProfilePipelineStatus, kind: &str) -> &'a Condition {
    s.conditions.iter().find(|c| c.type_ == kind).unwrap()
}

/// What kstatus (cli-utils' generic rules, which Flux and kpt use) makes of
/// a status: Stalled=True is Failed, Reconciling=True InProgress, a status
/// behind the spec's generation InProgress, anything else Current.
fn kstatus(p: &ProfilePipeline, s: &ProfilePipelineStatus) -> &'static str {
    if s.observed_generation != p.metadata.generation {
        return "InProgress";
    }
    for c in &s.conditions {
        if c.type_ == "Reconciling" && c.status == "True" {
            return "InProgress";
        }
        if c.type_ == "Stalled" && c.status == "True" {
            return "Failed";
        }
    }
    "Current"
}

/// Reconciling and Stalled say what Progressing and Degraded say.
/// `Stalled` mirrors `Degraded`; `Reconciling` mirrors `Progressing`,
/// except that it is False while Degraded (kstatus reads it first).
fn assert_kstatus_mirrors(s: &ProfilePipelineStatus) {
    let (stalled, degraded) = (get(s, STALLED), get(s, DEGRADED));
    assert_eq!(
        (&stalled.status, &stalled.reason, &stalled.message),
        (&degraded.status, &degraded.reason, &degraded.message),
        "Stalled against Degraded"
    );
    let (reconciling, progressing) = (get(s, RECONCILING), get(s, PROGRESSING));
    if degraded.status == "True" && progressing.status == "True" {
        assert_eq!(reconciling.status, "False", "Reconciling while Degraded");
        assert_eq!(reconciling.reason, degraded.reason);
    } else {
        assert_eq!(
            (
                &reconciling.status,
                &reconciling.reason,
                &reconciling.message
            ),
            (
                &progressing.status,
                &progressing.reason,
                &progressing.message
            ),
            "Reconciling against Progressing"
        );
    }
}

#[test]
fn a_deployment_not_yet_observed_is_progressing() {
    let p = pipeline(1, PipelineState::Running);
    let s = compute(&p, &applied(deployment(2, 1, rolled_out(1, 1))), at(10));
    assert_eq!(s.phase.as_deref(), Some(phase::DEPLOYING));
    assert_eq!(get(&s, READY).status, "False");
    assert_eq!(get(&s, PROGRESSING).status, "True");
    assert_eq!(get(&s, DEGRADED).status, "False");
    assert_eq!(s.observed_generation, Some(1));
    assert!(s
        .conditions
        .iter()
        .all(|c| c.observed_generation == Some(1)));
}

#[test]
fn a_complete_rollout_is_ready_and_keeps_transition_times() {
    let mut p = pipeline(1, PipelineState::Running);
    let s = compute(&p, &applied(deployment(1, 2, rolled_out(1, 2))), at(10));
    assert_eq!(s.phase.as_deref(), Some(phase::RUNNING));
    assert_eq!(get(&s, READY).status, "True");
    assert_eq!(get(&s, READY).last_transition_time, at(10));
    assert_eq!(s.ready_replicas, Some(2));
    p.status = Some(s);
    let again = compute(&p, &applied(deployment(1, 2, rolled_out(1, 2))), at(20));
    assert_eq!(
        get(&again, READY).last_transition_time,
        at(10),
        "no flip, no new time"
    );
}

#[test]
fn old_runners_still_stopping_keep_a_recreate_rollout_going() {
    let p = pipeline(1, PipelineState::Running);
    let mut status = rolled_out(1, 2);
    status.replicas = Some(3);
    let s = compute(&p, &applied(deployment(1, 2, status)), at(10));
    assert_eq!(get(&s, PROGRESSING).status, "True");
    assert!(
        get(&s, READY).message.contains("1 still to stop"),
        "{}",
        get(&s, READY).message
    );
}

#[test]
fn a_stuck_rollout_is_degraded() {
    let p = pipeline(1, PipelineState::Running);
    let mut status = rolled_out(1, 1);
    status.available_replicas = Some(0);
    status.conditions = Some(vec![DeploymentCondition {
        type_: Some("Progressing".into()),
        status: Some("False".into()),
        reason: Some("ProgressDeadlineExceeded".into()),
        message: Some("ReplicaSet has timed out progressing".into()),
        ..DeploymentCondition::default()
    }]);
    let s = compute(&p, &applied(deployment(1, 1, status)), at(10));
    assert_eq!(s.phase.as_deref(), Some(phase::FAILED));
    assert_eq!(get(&s, DEGRADED).status, "True");
    assert_eq!(get(&s, DEGRADED).reason, "ProgressDeadlineExceeded");
}

#[test]
fn an_invalid_spec_is_degraded_and_keeps_the_last_known_runners() {
    let p = running_then_changed();
    let s = compute(
        &p,
        &Outcome::Invalid {
            message: "spec.pipeline: bad".into(),
        },
        at(20),
    );
    assert_eq!(s.phase.as_deref(), Some(phase::FAILED));
    assert_eq!(get(&s, DEGRADED).reason, "InvalidSpec");
    assert_eq!(get(&s, DEGRADED).message, "spec.pipeline: bad");
    assert_eq!(get(&s, READY).status, "False");
    assert_eq!(get(&s, READY).last_transition_time, at(20));
    assert_eq!(s.observed_generation, Some(2));
    // What runs is still what the last good spec deployed.
    assert_eq!(s.spec_hash.as_deref(), Some("h1"));
    assert_eq!(s.ready_replicas, Some(1));
}

#[test]
fn suspended_with_no_runners_left_is_ready() {
    let p = pipeline(3, PipelineState::Suspended);
    let s = compute(&p, &applied(deployment(4, 0, rolled_out(4, 0))), at(10));
    assert_eq!(s.phase.as_deref(), Some(phase::SUSPENDED));
    assert_eq!(get(&s, READY).status, "True");
    assert_eq!(get(&s, READY).reason, "Suspended");
}

#[test]
fn the_runners_runtime_report_is_not_part_of_the_operators_status() {
    let mut p = pipeline(1, PipelineState::Running);
    p.status = Some(ProfilePipelineStatus {
        runtime: Some(serde_json::json!({"lag": 3})),
        last_snapshot: Some(kith_api::crd::SnapshotReference {
            name: "s".into(),
            path: None,
        }),
        ..ProfilePipelineStatus::default()
    });
    let s = compute(&p, &applied(deployment(1, 1, rolled_out(1, 1))), at(10));
    assert_eq!(s.runtime, None);
    assert_eq!(s.last_snapshot, None);
}

#[test]
fn an_upgrade_waiting_for_its_savepoint_is_progressing_and_a_failed_one_degraded() {
    let p = running_then_changed();
    let held = |failed| Outcome::Held {
        deployment: Some(Box::new(deployment(1, 1, rolled_out(1, 1)))),
        reason: if failed {
            "UpgradeBlocked"
        } else {
            "TakingSavepoint"
        },
        message: "m".into(),
        failed,
    };
    let s = compute(&p, &held(false), at(20));
    assert_eq!(s.phase.as_deref(), Some(phase::UPGRADING));
    assert_eq!(get(&s, PROGRESSING).status, "True");
    assert_eq!(get(&s, READY).status, "False");
    assert_eq!(get(&s, DEGRADED).status, "False");
    assert_eq!(
        s.spec_hash.as_deref(),
        Some("h1"),
        "the runners still run the old spec"
    );
    assert_eq!(s.ready_replicas, Some(1));
    let s = compute(&p, &held(true), at(20));
    assert_eq!(s.phase.as_deref(), Some(phase::FAILED));
    assert_eq!(get(&s, DEGRADED).status, "True");
    assert_eq!(get(&s, DEGRADED).reason, "UpgradeBlocked");
}

#[test]
fn refused_parallelism_degrades_a_running_pipeline_and_reports_the_real_count() {
    let p = pipeline(1, PipelineState::Running);
    let outcome = Outcome::Applied {
        deployment: Box::new(deployment(1, 1, rolled_out(1, 1))),
        spec_hash: "h1".into(),
        selector: "s".into(),
        lineage: None,
        degraded: Some((
            "ParallelismUnsupported",
            "spec.parallelism to 3, but ...".into(),
        )),
    };
    let s = compute(&p, &outcome, at(10));
    let c = |kind: &str| {
        s.conditions
            .iter()
            .find(|c| c.type_ == kind)
            .unwrap()
            .clone()
    };
    assert_eq!(c("Degraded").status, "True");
    assert_eq!(c("Degraded").reason, "ParallelismUnsupported");
    assert!(c("Degraded").message.contains("spec.parallelism to 3"));
    assert_eq!(c("Ready").status, "True", "the one runner runs");
    assert_eq!(s.replicas, Some(1), "the scale subresource shows what runs");
}

#[test]
fn a_rolled_back_pipeline_runs_but_is_degraded_and_says_so() {
    let p = pipeline(1, PipelineState::Running);
    let outcome = Outcome::Applied {
        deployment: Box::new(deployment(1, 1, rolled_out(1, 1))),
        spec_hash: "stable".into(),
        selector: "s".into(),
        lineage: Some("rollback-bad".into()),
        degraded: Some(("RolledBack", "spec bad did not become stable".into())),
    };
    let s = compute(&p, &outcome, at(10));
    assert_eq!(s.phase.as_deref(), Some(phase::ROLLED_BACK));
    assert_eq!(get(&s, READY).status, "True");
    assert_eq!(get(&s, DEGRADED).status, "True");
    assert_eq!(get(&s, DEGRADED).reason, "RolledBack");
    assert_eq!(s.spec_hash.as_deref(), Some("stable"));
    assert_eq!(s.state_lineage.as_deref(), Some("rollback-bad"));
}

/// Every outcome, with the phase it gives and what kstatus makes of it:
/// Current when Ready and nothing is wrong, InProgress while rolling out or
/// waiting for a savepoint, Failed when the pipeline cannot get where its
/// spec says (even while the runners that run are Ready).
#[test]
fn each_phase_reads_in_kstatus_as_a_gitops_tool_expects() {
    let mut stuck = rolled_out(1, 1);
    stuck.available_replicas = Some(0);
    stuck.conditions = Some(vec![DeploymentCondition {
        type_: Some("Progressing".into()),
        status: Some("False".into()),
        reason: Some("ProgressDeadlineExceeded".into()),
        ..DeploymentCondition::default()
    }]);
    let degraded = |reason: &'static str| Outcome::Applied {
        deployment: Box::new(deployment(1, 1, rolled_out(1, 1))),
        spec_hash: "h1".into(),
        selector: "s".into(),
        lineage: None,
        degraded: Some((reason, "m".into())),
    };
    let held = |failed| Outcome::Held {
        deployment: Some(Box::new(deployment(1, 1, rolled_out(1, 1)))),
        reason: "TakingSavepoint",
        message: "m".into(),
        failed,
    };
    let running = pipeline(1, PipelineState::Running);
    let cases: Vec<(&str, ProfilePipeline, Outcome, &str, &str)> = vec![
        (
            "rolled out",
            running.clone(),
            applied(deployment(1, 1, rolled_out(1, 1))),
            phase::RUNNING,
            "Current",
        ),
        (
            "rolling out",
            running.clone(),
            applied(deployment(2, 1, rolled_out(1, 1))),
            phase::DEPLOYING,
            "InProgress",
        ),
        (
            "stuck",
            running.clone(),
            applied(deployment(1, 1, stuck)),
            phase::FAILED,
            "Failed",
        ),
        (
            "invalid spec",
            running_then_changed(),
            Outcome::Invalid {
                message: "spec.pipeline: bad".into(),
            },
            phase::FAILED,
            "Failed",
        ),
        (
            "waiting for a savepoint",
            running_then_changed(),
            held(false),
            phase::UPGRADING,
            "InProgress",
        ),
        (
            "upgrade blocked",
            running_then_changed(),
            held(true),
            phase::FAILED,
            "Failed",
        ),
        (
            "rolled back",
            running.clone(),
            degraded("RolledBack"),
            phase::ROLLED_BACK,
            "Failed",
        ),
        (
            // Rolling out the last stable spec after a rollback: rolling
            // out, but the applied spec failed.
            "rolling back",
            running.clone(),
            Outcome::Applied {
                deployment: Box::new(deployment(2, 1, rolled_out(1, 1))),
                spec_hash: "h1".into(),
                selector: "s".into(),
                lineage: None,
                degraded: Some(("RolledBack", "m".into())),
            },
            phase::DEPLOYING,
            "Failed",
        ),
        (
            "parallelism refused",
            running.clone(),
            degraded("ParallelismUnsupported"),
            phase::RUNNING,
            "Failed",
        ),
        (
            "suspended",
            pipeline(3, PipelineState::Suspended),
            applied(deployment(4, 0, rolled_out(4, 0))),
            phase::SUSPENDED,
            "Current",
        ),
    ];
    let mut objects = Vec::new();
    for (name, mut p, outcome, want_phase, want) in cases {
        let s = compute(&p, &outcome, at(10));
        assert_eq!(s.phase.as_deref(), Some(want_phase), "{name}");
        assert_kstatus_mirrors(&s);
        assert_eq!(kstatus(&p, &s), want, "{name}");
        p.status = Some(s);
        objects.push(serde_json::json!({"name": name, "want": want, "object": p}));
    }
    // The same objects, for kstatus itself (tests/kstatus, run by `make
    // test`): this file must be what the operator computes today.
    let cases = serde_json::to_string_pretty(&objects).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/kstatus/cases.json");
    if std::env::var_os("KITH_REGENERATE").is_some() {
        std::fs::write(&path, &cases).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == cases,
        "tests/kstatus/cases.json is stale: run `KITH_REGENERATE=1 cargo test -p kith-operator --lib kstatus` and commit it"
    );
}
