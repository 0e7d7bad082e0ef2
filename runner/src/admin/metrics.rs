//! The runner's Prometheus metrics, in one registry of its own.
//!
//! A private registry (not the crate-global default) keeps tests independent
//! and makes `/metrics` show exactly what the runner declares. The engine
//! thread updates the metrics through the methods below; they are atomic
//! operations on prometheus' lock-free counters, cheap enough to call per
//! observation. Only `render` (once per scrape) allocates.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Upper bounds of the latency histogram, in seconds: 10 µs to 10 s in a
/// 1–2.5–5 series (steps of ×2 and ×2.5). Round bounds read better on a
/// dashboard than an exact geometric series (0.00015625, …) and still cover
/// the range from an in-memory apply to a stalled source.
const LATENCY_BUCKETS: [f64; 19] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every metric the runner exports. Share it as `Arc<Metrics>` between the
/// engine thread (writer) and the admin server (reader).
pub struct Metrics {
    registry: Registry,
    /// Unix seconds when these metrics were created: the reference for the
    /// checkpoint age until a checkpoint succeeds or is restored.
    started_at: f64,
    observations: IntCounter,
    dead_letters: IntCounter,
    consumer_lag: IntGaugeVec,
    latency: Histogram,
    checkpoint_duration: Gauge,
    checkpoint_pause: Histogram,
    checkpoint_size: Gauge,
    checkpoint_last_success: Gauge,
    checkpoint_age: Gauge,
    checkpoints_completed: IntCounter,
    checkpoints_failed: IntCounter,
    profiles: IntGauge,
    records: IntGauge,
    state_stalled: IntGauge,
    merges: IntCounter,
    splits: IntCounter,
    admin_denied: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every metric. The definitions are fixed, so a
    /// registration failure is a programming error (a duplicate or invalid
    /// name), caught by the unit tests; hence no `Result`.
    pub fn new() -> Self {
        let registry = Registry::new();
        let checkpoints = IntCounterVec::new(
            Opts::new(
                "kith_checkpoints_total",
                "Checkpoints attempted, by result (completed or failed).",
            ),
            &["result"],
        )
        .expect("valid metric definition");
        // Both series exist from the start, so `rate()` and absence alerts see
        // a zero rather than no data before the first checkpoint.
        let checkpoints_completed = checkpoints.with_label_values(&["completed"]);
        let checkpoints_failed = checkpoints.with_label_values(&["failed"]);
        register(&registry, checkpoints);

        Metrics {
            started_at: unix_now(),
            observations: counter(
                &registry,
                "kith_observations_total",
                "Observations applied to the engine.",
            ),
            dead_letters: counter(
                &registry,
                "kith_dead_letters_total",
                "Observations sent to the dead-letter output instead of being applied.",
            ),
            consumer_lag: gauge_vec(
                &registry,
                "kith_consumer_lag",
                "Messages between the applied position and the partition's high watermark.",
                &["topic", "partition"],
            ),
            latency: histogram(
                &registry,
                "kith_processing_latency_seconds",
                "Seconds from an observation's source append (Kafka message timestamp) or read \
                 to its application.",
            ),
            checkpoint_duration: gauge(
                &registry,
                "kith_checkpoint_duration_seconds",
                "Seconds the last successful checkpoint took.",
            ),
            checkpoint_pause: histogram(
                &registry,
                "kith_checkpoint_pause_seconds",
                "Seconds processing stopped to mark a checkpoint (seal the log, copy the \
                 positions).",
            ),
            checkpoint_size: gauge(
                &registry,
                "kith_checkpoint_size_bytes",
                "Bytes written by the last successful checkpoint.",
            ),
            checkpoint_last_success: gauge(
                &registry,
                "kith_checkpoint_last_success_timestamp_seconds",
                "Unix time of the last successful checkpoint (0 before the first).",
            ),
            checkpoint_age: gauge(
                &registry,
                "kith_checkpoint_age_seconds",
                "Seconds since the last successful checkpoint, computed at scrape time \
                 (since process start when there has been none).",
            ),
            checkpoints_completed,
            checkpoints_failed,
            profiles: int_gauge(&registry, "kith_profiles", "Live profiles."),
            records: int_gauge(&registry, "kith_records", "Live source records."),
            state_stalled: int_gauge(
                &registry,
                "kith_state_stalled",
                "1 while the state directory cannot be written (its file system is full) and applying is paused; else 0.",
            ),
            merges: counter(&registry, "kith_merges_total", "Profile merges."),
            splits: counter(&registry, "kith_splits_total", "Profile splits."),
            admin_denied: {
                let denied = IntCounterVec::new(
                    Opts::new(
                        "kith_admin_requests_denied_total",
                        "Admin requests for profiles or savepoints refused, by HTTP status \
                         (401 no or bad token, 403 not allowed, 503 the API server could not say).",
                    ),
                    &["code"],
                )
                .expect("valid metric definition");
                register(&registry, denied.clone());
                denied
            },
            registry,
        }
    }

    /// The registry, for callers that export metrics of their own (for
    /// example a Kafka client's statistics) on the same `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Observations applied so far.
    pub fn observations(&self) -> u64 {
        self.observations.get()
    }

    /// Live records now.
    pub fn records(&self) -> i64 {
        self.records.get()
    }

    /// Profiles now.
    pub fn profiles(&self) -> i64 {
        self.profiles.get()
    }

    /// Checkpoints this process completed.
    pub fn checkpoints_completed(&self) -> u64 {
        self.checkpoints_completed.get()
    }

    /// Unix seconds of the newest durable state: the last checkpoint this
    /// process completed, or the one it restored; `None` before either.
    pub fn last_checkpoint_unix(&self) -> Option<f64> {
        let at = self.checkpoint_last_success.get();
        (at > 0.0).then_some(at)
    }

    /// Counts one admin request refused with HTTP `status`.
    pub fn add_admin_denied(&self, status: u16) {
        self.admin_denied
            .with_label_values(&[status.to_string().as_str()])
            .inc();
    }

    /// Counts `n` observations applied.
    pub fn add_observations(&self, n: u64) {
        self.observations.inc_by(n);
    }

    /// Counts `n` observations dead-lettered.
    pub fn add_dead_letters(&self, n: u64) {
        self.dead_letters.inc_by(n);
    }

    /// Counts `n` profile merges.
    pub fn add_merges(&self, n: u64) {
        self.merges.inc_by(n);
    }

    /// Counts `n` profile splits.
    pub fn add_splits(&self, n: u64) {
        self.splits.inc_by(n);
    }

    /// Sets the number of live profiles.
    pub fn set_profiles(&self, n: u64) {
        self.profiles.set(saturate(n));
    }

    /// Sets the number of live source records.
    pub fn set_records(&self, n: u64) {
        self.records.set(saturate(n));
    }

    /// Whether applying is paused because the state cannot be written.
    pub fn set_state_stalled(&self, stalled: bool) {
        self.state_stalled.set(i64::from(stalled));
    }

    /// Records one observation's time from source append (or read) to applied.
    pub fn observe_latency(&self, latency: Duration) {
        self.latency.observe(latency.as_secs_f64());
    }

    /// Sets a partition's lag. The partition number is formatted on the stack
    /// and the series looked up under a read lock: no allocation once the
    /// series exists. Call it per batch, not per observation.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        let mut buf = [0u8; 12];
        self.consumer_lag
            .with_label_values(&[topic, partition_label(partition, &mut buf)])
            .set(lag);
    }

    /// Drops a partition's lag series, for a partition no longer assigned to
    /// this runner; otherwise its last value would be exported forever.
    pub fn remove_lag(&self, topic: &str, partition: i32) {
        let mut buf = [0u8; 12];
        // An error only means the series never existed: nothing to remove.
        let _ = self
            .consumer_lag
            .remove_label_values(&[topic, partition_label(partition, &mut buf)]);
    }

    /// Records a successful checkpoint that took `duration`, wrote
    /// `size_bytes` and finished at `at_unix_seconds`.
    pub fn checkpoint_completed(&self, duration: Duration, size_bytes: u64, at_unix_seconds: f64) {
        self.checkpoint_duration.set(duration.as_secs_f64());
        // Exact up to 2^53 bytes (8 PiB): more than a checkpoint will be.
        self.checkpoint_size.set(size_bytes as f64);
        self.checkpoint_last_success.set(at_unix_seconds);
        self.checkpoints_completed.inc();
    }

    /// Records how long processing paused to mark a checkpoint.
    pub fn checkpoint_marked(&self, pause: Duration) {
        self.checkpoint_pause.observe(pause.as_secs_f64());
    }

    /// Records a failed checkpoint; the last-success gauges keep their values
    /// so the age keeps growing.
    pub fn checkpoint_failed(&self) {
        self.checkpoints_failed.inc();
    }

    /// Records that state was restored from a checkpoint taken at
    /// `at_unix_seconds`, without counting a checkpoint: after a restart the
    /// age then reflects how old the durable state really is.
    pub fn checkpoint_restored(&self, at_unix_seconds: f64) {
        self.checkpoint_last_success.set(at_unix_seconds);
    }

    /// The text exposition format of every metric, with the checkpoint age
    /// brought up to date first.
    pub fn render(&self) -> String {
        self.update_checkpoint_age(unix_now());
        self.encode()
    }

    /// The text exposition format as the metrics stand.
    pub(super) fn encode(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            // Only malformed metric families fail to encode; serve what was
            // written rather than nothing.
            tracing::error!(error = %err, "cannot encode metrics");
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Sets the age gauge as of `now` (unix seconds); separate from `render`
    /// so tests can pin the clock.
    pub(super) fn update_checkpoint_age(&self, now: f64) {
        let last = self.checkpoint_last_success.get();
        // Before any checkpoint, count from start: a runner that never manages
        // one should trip an age alert rather than look freshly checkpointed.
        let since = if last > 0.0 { last } else { self.started_at };
        self.checkpoint_age.set((now - since).max(0.0));
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `partition` in decimal into `buf` and returns it as text.
fn partition_label(partition: i32, buf: &mut [u8; 12]) -> &str {
    let mut cursor = &mut buf[..];
    // An i32 is at most 11 characters ("-2147483648"), so this cannot fail.
    let _ = write!(cursor, "{partition}");
    let len = 12 - cursor.len();
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

fn saturate(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn register<C: prometheus::core::Collector + 'static>(registry: &Registry, collector: C) {
    registry
        .register(Box::new(collector))
        .expect("metric names are unique and valid");
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric definition");
    register(registry, c.clone());
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    let g = Gauge::new(name, help).expect("valid metric definition");
    register(registry, g.clone());
    g
}

fn int_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric definition");
    register(registry, g.clone());
    g
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    register(registry, g.clone());
    g
}

fn histogram(registry: &Registry, name: &str, help: &str) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    let h = Histogram::with_opts(opts).expect("valid metric definition");
    register(registry, h.clone());
    h
}
