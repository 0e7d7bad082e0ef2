//! The operator's Prometheus metrics (`kith_operator_*`).

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use std::collections::HashMap;
use std::sync::Mutex;

pub struct Metrics {
    pub registry: Registry,
    pub reconciles: IntCounterVec,
    pub reconcile_seconds: Histogram,
    pub errors: IntCounterVec,
    pub pipelines: IntGaugeVec,
    pub leader: IntGauge,
    /// Phase of every pipeline seen, for `pipelines`.
    phases: Mutex<HashMap<String, String>>,
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
            leader,
            phases: Mutex::new(HashMap::new()),
        }
    }

    /// Records `key`'s phase (`None`: the pipeline is gone).
    pub fn set_phase(&self, key: &str, phase: Option<&str>) {
        let mut phases = self.phases.lock().expect("phases lock");
        match phase {
            Some(p) => phases.insert(key.to_string(), p.to_string()),
            None => phases.remove(key),
        };
        let mut counts: HashMap<&str, i64> = HashMap::new();
        for p in phases.values() {
            *counts.entry(p.as_str()).or_default() += 1;
        }
        self.pipelines.reset();
        for (p, n) in counts {
            self.pipelines.with_label_values(&[p]).set(n);
        }
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
