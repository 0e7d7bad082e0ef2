//! The operator's Prometheus metrics (`kith_operator_*`).

use kith_api::crd::{condition, ProfilePipelineStatus};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use std::collections::HashMap;
use std::sync::Mutex;

pub struct Metrics {
    pub registry: Registry,
    pub reconciles: IntCounterVec,
    pub reconcile_seconds: Histogram,
    pub errors: IntCounterVec,
    pub pipelines: IntGaugeVec,
    /// Pipelines whose `Degraded` condition is True, by its reason: the
    /// only sign of a pipeline that stays Ready but cannot do everything
    /// its spec asks (a failed savepoint, a blocked upgrade).
    pub degraded: IntGaugeVec,
    pub leader: IntGauge,
    /// What `pipelines` and `degraded` count, for every pipeline seen.
    seen: Mutex<HashMap<String, Seen>>,
}

/// One pipeline's phase and, when its `Degraded` condition is True, the
/// condition's reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    pub phase: Option<String>,
    pub degraded: Option<String>,
}

impl Seen {
    pub fn of(status: &ProfilePipelineStatus) -> Seen {
        Seen {
            phase: status.phase.clone(),
            degraded: status
                .conditions
                .iter()
                .find(|c| c.type_ == condition::DEGRADED && c.status == "True")
                .map(|c| c.reason.clone()),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "kith_operator_reconciles_total",
                "Reconciles of ProfilePipelines, by result",
            ),
            &["result"],
        )
        .expect("valid metric");
        let reconcile_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "kith_operator_reconcile_duration_seconds",
                "Time to reconcile one ProfilePipeline",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new(
                "kith_operator_reconcile_errors_total",
                "Failed reconciles, by reason (API call and status reason)",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let pipelines = IntGaugeVec::new(
            Opts::new("kith_operator_pipelines", "ProfilePipelines by phase"),
            &["phase"],
        )
        .expect("valid metric");
        let degraded = IntGaugeVec::new(
            Opts::new(
                "kith_operator_pipelines_degraded",
                "ProfilePipelines whose Degraded condition is True, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let leader = IntGauge::new(
            "kith_operator_leader",
            "1 while this replica holds the leader Lease and reconciles",
        )
        .expect("valid metric");
        for m in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(reconcile_seconds.clone()),
            Box::new(errors.clone()),
            Box::new(pipelines.clone()),
            Box::new(degraded.clone()),
            Box::new(leader.clone()),
        ] {
            registry.register(m).expect("metric names are unique");
        }
        Metrics {
            registry,
            reconciles,
            reconcile_seconds,
            errors,
            pipelines,
            degraded,
            leader,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records what `key`'s status says (`None`: the pipeline is gone) and
    /// recounts both gauges, so a pipeline moves between label values
    /// instead of being counted twice.
    pub fn set_status(&self, key: &str, seen: Option<Seen>) {
        let mut all = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match seen {
            Some(s) => all.insert(key.to_string(), s),
            None => all.remove(key),
        };
        set_counts(
            &self.pipelines,
            all.values().filter_map(|s| s.phase.as_deref()),
        );
        set_counts(
            &self.degraded,
            all.values().filter_map(|s| s.degraded.as_deref()),
        );
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut out)
            .expect("text encoding of gathered metrics");
        out
    }
}

/// `gauge` holding how often each label value occurs in `values`, and
/// nothing for the values that no longer do.
fn set_counts<'a>(gauge: &IntGaugeVec, values: impl Iterator<Item = &'a str>) {
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    gauge.reset();
    for (v, n) in counts {
        gauge.with_label_values(&[v]).set(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(phase: &str, degraded: Option<&str>) -> Option<Seen> {
        Some(Seen {
            phase: Some(phase.to_string()),
            degraded: degraded.map(str::to_string),
        })
    }

    fn sample(out: &str, series: &str) -> Option<String> {
        out.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')
                .map(str::to_string)
        })
    }

    #[test]
    fn a_pipeline_is_counted_once_and_moves_between_label_values() {
        let m = Metrics::new();
        m.set_status("ns/a", seen("Running", Some("SavepointFailed")));
        m.set_status("ns/b", seen("Running", None));
        let out = m.render();
        assert_eq!(
            sample(&out, "kith_operator_pipelines{phase=\"Running\"}").as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(
                &out,
                "kith_operator_pipelines_degraded{reason=\"SavepointFailed\"}"
            )
            .as_deref(),
            Some("1")
        );

        // a recovers, b fails: nothing lingers under the old values
        m.set_status("ns/a", seen("Running", None));
        m.set_status("ns/b", seen("Failed", Some("InvalidSpec")));
        let out = m.render();
        assert_eq!(
            sample(&out, "kith_operator_pipelines{phase=\"Running\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&out, "kith_operator_pipelines{phase=\"Failed\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(
                &out,
                "kith_operator_pipelines_degraded{reason=\"SavepointFailed\"}"
            ),
            None
        );
        assert_eq!(
            sample(
                &out,
                "kith_operator_pipelines_degraded{reason=\"InvalidSpec\"}"
            )
            .as_deref(),
            Some("1")
        );

        m.set_status("ns/b", None);
        let out = m.render();
        assert_eq!(
            sample(&out, "kith_operator_pipelines{phase=\"Failed\"}"),
            None
        );
        assert_eq!(
            sample(
                &out,
                "kith_operator_pipelines_degraded{reason=\"InvalidSpec\"}"
            ),
            None
        );
    }
}
