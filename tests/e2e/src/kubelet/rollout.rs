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
/// `minReadySeconds: 0`.
pub fn status(generation: Option<i64>, desired: i32, pods: &[Counted]) -> Value {
    let count = |f: &dyn Fn(&Counted) -> bool| pods.iter().filter(|p| f(p)).count() as i32;
    let replicas = count(&|_| true);
    let updated = count(&|p| p.updated && !p.terminating);
    let ready = count(&|p| p.ready && !p.terminating);
    let available = count(&|p| p.ready && p.updated && !p.terminating);
    json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (desired - available).max(0),
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
    }
}
