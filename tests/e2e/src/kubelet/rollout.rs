//! The Deployment controller's part: a Deployment's status from its pods.

use serde_json::{json, Value};

/// One pod as the status counts it.
pub struct Counted {
    /// It runs the Deployment's current template.
    pub updated: bool,
    pub ready: bool,
    /// It is being stopped.
    pub terminating: bool,
}

/// The `status` of a Deployment at `generation` with `desired` replicas and
/// these pods (terminating ones are counted in `replicas`, as a Recreate
/// rollout has them until they are gone). Available means ready, as with
/// `minReadySeconds: 0`. With the `Available` and `Progressing` conditions
/// the Deployment controller writes, which kstatus (and so `helm --wait`
/// and Flux) reads: a Deployment is Current only once its new ReplicaSet is
/// available. No timestamps, so an unchanged status is an unchanged patch.
pub fn status(generation: Option<i64>, desired: i32, pods: &[Counted]) -> Value {
    let count = |f: &dyn Fn(&Counted) -> bool| pods.iter().filter(|p| f(p)).count() as i32;
    let replicas = count(&|_| true);
    let updated = count(&|p| p.updated && !p.terminating);
    let ready = count(&|p| p.ready && !p.terminating);
    let available = count(&|p| p.ready && p.updated && !p.terminating);
    let (available_status, available_reason) = if available >= desired {
        ("True", "MinimumReplicasAvailable")
    } else {
        ("False", "MinimumReplicasUnavailable")
    };
    let complete = replicas == desired && updated == desired && available == desired;
    let progressing_reason = if complete {
        "NewReplicaSetAvailable"
    } else {
        "ReplicaSetUpdated"
    };
    json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (desired - available).max(0),
        "conditions": [
            {"type": "Available", "status": available_status, "reason": available_reason},
            {"type": "Progressing", "status": "True", "reason": progressing_reason},
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_pods_being_stopped_count_as_replicas_but_not_as_ready() {
        let pods = [
            Counted {
                updated: false,
                ready: true,
                terminating: true,
            },
            Counted {
                updated: true,
                ready: false,
                terminating: false,
            },
        ];
        let s = status(Some(4), 1, &pods);
        assert_eq!(s["replicas"], 2);
        assert_eq!(s["updatedReplicas"], 1);
        assert_eq!(s["readyReplicas"], 0);
        assert_eq!(s["availableReplicas"], 0);
        assert_eq!(s["unavailableReplicas"], 1);
        assert_eq!(s["observedGeneration"], 4);
        assert_eq!(s["conditions"][0]["status"], "False");
        assert_eq!(s["conditions"][1]["reason"], "ReplicaSetUpdated");
    }

    #[test]
    fn a_complete_rollout_reads_as_the_controller_writes_it() {
        let pods = [Counted {
            updated: true,
            ready: true,
            terminating: false,
        }];
        let s = status(Some(2), 1, &pods);
        assert_eq!(s["conditions"][0]["reason"], "MinimumReplicasAvailable");
        assert_eq!(s["conditions"][1]["reason"], "NewReplicaSetAvailable");
    }
}
