//! Per-sink metrics, labelled `sink` (the sink's name), in the runner's registry.

use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Sizes of requests, in items: 1 to 1000.
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0, 200.0, 1000.0];

pub struct SinkMetrics {
    operations: IntCounterVec,
    requests: IntCounterVec,
    batch_size: HistogramVec,
    retries: IntCounterVec,
    throttles: IntCounterVec,
    errors: IntCounterVec,
    oversize: IntCounterVec,
    in_flight: IntGaugeVec,
    oldest: GaugeVec,
    flushes: IntCounterVec,
}

/// The metrics of one sink.
#[derive(Clone)]
pub struct SinkMetricHandles {
    pub operations: prometheus::IntCounter,
    pub requests: prometheus::IntCounter,
    pub batch_size: prometheus::Histogram,
    retries: IntCounterVec,
    name: String,
    pub throttles: prometheus::IntCounter,
    pub errors: prometheus::IntCounter,
    pub oversize: prometheus::IntCounter,
    pub in_flight: prometheus::IntGauge,
    pub oldest: Gauge,
    pub flushes: prometheus::IntCounter,
}

impl SinkMetricHandles {
    pub fn retry(&self, reason: &str) {
        self.retries.with_label_values(&[&self.name, reason]).inc();
    }
}

impl SinkMetrics {
    /// Registers the sink metrics; the definitions are fixed, so failing is
    /// a programming error caught by the tests.
    pub fn register(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let operations = counter(
            "kith_sink_operations_total",
            "Profile and identifier writes (and removals) a sink completed.",
            &["sink"],
        );
        let requests = counter(
            "kith_sink_requests_total",
            "Requests a sink sent to its store, retries included.",
            &["sink"],
        );
        let retries = counter(
            "kith_sink_retries_total",
            "Requests a sink sent again, by reason.",
            &["sink", "reason"],
        );
        let throttles = counter(
            "kith_sink_throttles_total",
            "Requests the store refused for throughput (throttling).",
            &["sink"],
        );
        let errors = counter(
            "kith_sink_errors_total",
            "Failed requests, retried or not.",
            &["sink"],
        );
        let oversize = counter(
            "kith_sink_oversize_items_total",
            "Items over the store's size limit, written without their largest values.",
            &["sink"],
        );
        let flushes = counter(
            "kith_sink_flushes_total",
            "Flushes a sink completed.",
            &["sink"],
        );
        let batch_size = HistogramVec::new(
            HistogramOpts::new("kith_sink_batch_size", "Items per request a sink sent.")
                .buckets(BATCH_BUCKETS.to_vec()),
            &["sink"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(batch_size.clone()))
            .expect("unique metric");
        let in_flight = IntGaugeVec::new(
            Opts::new("kith_sink_in_flight", "Requests a sink has in flight."),
            &["sink"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(in_flight.clone()))
            .expect("unique metric");
        let oldest = GaugeVec::new(
            Opts::new(
                "kith_sink_oldest_unwritten_seconds",
                "Age of the oldest change a sink has not written yet (0 when caught up).",
            ),
            &["sink"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(oldest.clone()))
            .expect("unique metric");
        SinkMetrics {
            operations,
            requests,
            batch_size,
            retries,
            throttles,
            errors,
            oversize,
            in_flight,
            oldest,
            flushes,
        }
    }

    pub fn for_sink(&self, name: &str) -> SinkMetricHandles {
        SinkMetricHandles {
            operations: self.operations.with_label_values(&[name]),
            requests: self.requests.with_label_values(&[name]),
            batch_size: self.batch_size.with_label_values(&[name]),
            retries: self.retries.clone(),
            name: name.to_string(),
            throttles: self.throttles.with_label_values(&[name]),
            errors: self.errors.with_label_values(&[name]),
            oversize: self.oversize.with_label_values(&[name]),
            in_flight: self.in_flight.with_label_values(&[name]),
            oldest: self.oldest.with_label_values(&[name]),
            flushes: self.flushes.with_label_values(&[name]),
        }
    }
}
