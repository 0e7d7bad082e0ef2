//! The Kafka source: every partition of the pipeline's topics, assigned to
//! this runner directly (no group rebalancing), read from the positions of
//! the checkpoint the state was restored from.
//!
//! Offsets are never auto-committed: positions live in checkpoints, beside
//! the state they produced, and are committed to the consumer group only
//! after a checkpoint completes, so that lag tools see progress. A broker
//! that is down at start or goes away during the run is waited for with
//! backoff; librdkafka reconnects on its own, and the source reports whether
//! any broker is reachable for the runner's readiness.

use super::Positions;
use kith_api::pipeline::{KafkaSourceSpec, StartFrom};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    #[error("kafka source: the client cannot be created with these settings: {0} (check `bootstrapServers` and `properties`)")]
    Config(KafkaError),
    #[error("kafka source: {0}")]
    Client(KafkaError),
    #[error("kafka source: stopped before the brokers answered")]
    Stopped,
}

/// What the client threads of librdkafka report, read by the runner.
#[derive(Debug, Default)]
pub struct KafkaStatus {
    /// Whether a broker is reachable (readiness).
    connected: AtomicBool,
    /// Why the brokers turned this runner away (credentials, TLS), until a
    /// broker is up again: retrying cannot help, a person must act.
    refused: Mutex<Option<&'static str>>,
    /// The last high watermark seen per partition (consumer lag).
    high_watermarks: Mutex<HashMap<(String, i32), i64>>,
}

impl KafkaStatus {
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Why the runner is not ready while no broker is reachable.
    pub fn not_ready_reason(&self) -> &'static str {
        self.refused
            .lock()
            .expect("refusal lock")
            .unwrap_or("no Kafka broker reachable")
    }

    fn set_refused(&self, why: Option<&'static str>) {
        *self.refused.lock().expect("refusal lock") = why;
    }

    /// `(topic, partition, lag)` of each partition against `applied`.
    pub fn lag(&self, applied: &Positions) -> Vec<(String, i32, i64)> {
        let hw = self.high_watermarks.lock().expect("watermark lock");
        let mut lag: Vec<_> = hw
            .iter()
            .map(|((t, p), high)| {
                let at = applied.get(t, *p).unwrap_or(0);
                (t.clone(), *p, (high - at).max(0))
            })
            .collect();
        lag.sort();
        lag
    }
}

/// The brokers' reason for turning the client away, when it is one that
/// retrying will not fix: librdkafka keeps retrying on its own, so without
/// this a wrong password would look like a broker that is merely down.
pub fn refusal(code: Option<RDKafkaErrorCode>) -> Option<&'static str> {
    match code? {
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => Some(
            "the Kafka brokers refused the credentials (SASL authentication failed): \
             check sasl.mechanism, sasl.username and sasl.password in the source's properties",
        ),
        RDKafkaErrorCode::SSL => Some(
            "the TLS connection to the Kafka brokers failed: check security.protocol and \
             ssl.ca.location (or ssl.ca.pem) in the source's properties",
        ),
        _ => None,
    }
}

struct Context {
    status: Arc<KafkaStatus>,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility, "{message}")
            }
            _ => tracing::debug!(target: "librdkafka", facility, "{message}"),
        }
    }

    fn stats(&self, stats: Statistics) {
        let up = stats.brokers.values().any(|b| b.state == "UP");
        self.status.connected.store(up, Ordering::Relaxed);
        if up {
            self.status.set_refused(None);
        }
        let mut hw = self.status.high_watermarks.lock().expect("watermark lock");
        for (name, topic) in &stats.topics {
            for (p, part) in &topic.partitions {
                if *p >= 0 && part.hi_offset >= 0 {
                    hw.insert((name.clone(), *p), part.hi_offset);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        if matches!(code, Some(RDKafkaErrorCode::AllBrokersDown)) {
            self.status.connected.store(false, Ordering::Relaxed);
        }
        if let Some(why) = refusal(code) {
            self.status.connected.store(false, Ordering::Relaxed);
            self.status.set_refused(Some(why));
            tracing::error!(%error, "{why}");
            return;
        }
        tracing::warn!(%error, reason, "kafka client error");
    }
}

impl ConsumerContext for Context {}

pub use rdkafka::message::BorrowedMessage;
use rdkafka::message::Message as _;

/// The parts of a message the runner uses.
pub struct Received<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub payload: &'a [u8],
    /// When the broker (or producer) stamped it, in Unix milliseconds.
    pub timestamp_ms: Option<i64>,
}

impl<'a> Received<'a> {
    pub fn of(m: &'a BorrowedMessage<'_>) -> Received<'a> {
        Received {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            payload: m.payload().unwrap_or(&[]),
            timestamp_ms: m.timestamp().to_millis(),
        }
    }
}

pub struct KafkaSource {
    consumer: BaseConsumer<Context>,
    status: Arc<KafkaStatus>,
    /// End offsets seen at start, for `--exit-at-end`.
    end: Option<HashMap<(String, i32), i64>>,
    /// The next offset to read per partition.
    read: Positions,
    last_error_log: Option<std::time::Instant>,
}

/// Backoff between connection attempts: doubles from 100 ms to 5 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(6)).min(5_000))
}

impl KafkaSource {
    /// Creates the consumer, waits until the topics' partitions are known,
    /// and assigns all of them from `positions` (or `startFrom`). Retries
    /// until `stop` is set, telling `waiting` why it cannot go on yet.
    pub fn connect(
        spec: &KafkaSourceSpec,
        pipeline_name: &str,
        positions: &Positions,
        exit_at_end: bool,
        stop: &AtomicBool,
        waiting: &dyn Fn(&str),
    ) -> Result<KafkaSource, KafkaSourceError> {
        let status = Arc::new(KafkaStatus::default());
        let consumer = client_config(spec, pipeline_name)
            .create_with_context::<_, BaseConsumer<Context>>(Context {
                status: status.clone(),
            })
            .map_err(KafkaSourceError::Config)?;
        let mut attempt = 0;
        let partitions = loop {
            match discover_partitions(&consumer, &spec.topics) {
                Ok(p) => break p,
                Err(why) => {
                    status.connected.store(false, Ordering::Relaxed);
                    tracing::warn!(%why, retry_in_ms = backoff(attempt).as_millis() as u64, "kafka source not ready");
                }
            }
            serve_events(&consumer, backoff(attempt), stop)?;
            waiting(status.not_ready_reason());
            attempt += 1;
        };
        status.connected.store(true, Ordering::Relaxed);
        let mut read = Positions::default();
        let mut assignment = TopicPartitionList::new();
        let mut end = HashMap::new();
        for (topic, partition) in &partitions {
            let (low, high) = loop {
                match consumer.fetch_watermarks(topic, *partition, Duration::from_secs(5)) {
                    Ok(w) => break w,
                    Err(e) => {
                        tracing::warn!(error = %e, topic, partition, "cannot read the partition's offsets yet")
                    }
                }
                wait(backoff(attempt), stop)?;
                attempt += 1;
            };
            let start = match (positions.get(topic, *partition), spec.start_from) {
                (Some(p), _) => p,
                (None, StartFrom::Earliest) => low,
                (None, StartFrom::Latest) => high,
            };
            assignment
                .add_partition_offset(topic, *partition, Offset::Offset(start))
                .map_err(KafkaSourceError::Client)?;
            read.advance(topic, *partition, start);
            end.insert((topic.clone(), *partition), high);
        }
        consumer
            .assign(&assignment)
            .map_err(KafkaSourceError::Client)?;
        tracing::info!(partitions = partitions.len(), "kafka source assigned");
        Ok(KafkaSource {
            consumer,
            status,
            end: exit_at_end.then_some(end),
            read,
            last_error_log: None,
        })
    }

    /// The position every partition was assigned at. The first checkpoint
    /// must hold them even for partitions nothing has been read from yet:
    /// with `startFrom: latest`, a restart would otherwise skip what was
    /// appended in between.
    pub fn start_positions(&self) -> Positions {
        self.read.clone()
    }

    pub fn status(&self) -> Arc<KafkaStatus> {
        self.status.clone()
    }

    /// The next message, or `None` after `timeout`. Errors of the client
    /// (a broker going away) are logged, at most once a second, and read as
    /// idle: librdkafka retries by itself.
    pub fn poll(&mut self, timeout: Duration) -> Option<BorrowedMessage<'_>> {
        match self.consumer.poll(timeout) {
            None => None,
            Some(Ok(m)) => {
                self.read.advance(m.topic(), m.partition(), m.offset() + 1);
                Some(m)
            }
            Some(Err(e)) => {
                let now = std::time::Instant::now();
                if self
                    .last_error_log
                    .is_none_or(|t| now.duration_since(t) > Duration::from_secs(1))
                {
                    tracing::warn!(error = %e, "kafka source: consume error (retrying)");
                    self.last_error_log = Some(now);
                }
                None
            }
        }
    }

    /// With `--exit-at-end`: whether every partition has been read up to the
    /// end offset seen at start. The consumer's fetch position counts too, so
    /// that transaction markers at the end of a partition do not stall it.
    pub fn at_end(&self) -> bool {
        let Some(end) = &self.end else {
            return false;
        };
        let fetched = self.consumer.position().ok();
        end.iter().all(|((topic, partition), high)| {
            let read = self.read.get(topic, *partition).unwrap_or(0);
            let fetch = fetched
                .as_ref()
                .and_then(|tpl| tpl.find_partition(topic, *partition))
                .and_then(|e| e.offset().to_raw())
                .unwrap_or(-1);
            read.max(fetch) >= *high
        })
    }

    /// Commits checkpointed positions to the consumer group (for lag
    /// monitoring only; the runner never reads them back).
    pub fn commit(&self, positions: &Positions) {
        self.commit_in(positions, CommitMode::Async);
    }

    /// [`commit`](Self::commit), waiting for the broker: for the last
    /// positions before the consumer closes.
    pub fn commit_sync(&self, positions: &Positions) {
        self.commit_in(positions, CommitMode::Sync);
    }

    fn commit_in(&self, positions: &Positions, mode: CommitMode) {
        if positions.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, offset) in positions.iter() {
            let _ = tpl.add_partition_offset(topic, partition, Offset::Offset(offset));
        }
        if let Err(e) = self.consumer.commit(&tpl, mode) {
            tracing::warn!(error = %e, "committing offsets to the consumer group failed");
        }
    }
}

fn client_config(spec: &KafkaSourceSpec, pipeline_name: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    // Keep the prefetch queue fed: with librdkafka's defaults the fetcher
    // backs off for a second whenever the queue is full, which capped a
    // backlog replay at about 97,000 observations/s on the benchmark
    // machine (runner/benches/kafka.sh); these lift it past 160,000.
    // `properties` may override them.
    config
        .set("fetch.queue.backoff.ms", "10")
        .set("queued.min.messages", "1000000");
    for (k, v) in &spec.properties {
        config.set(k, v);
    }
    let group = spec
        .group_id
        .clone()
        .unwrap_or_else(|| format!("kith-{pipeline_name}"));
    config
        .set("bootstrap.servers", &spec.bootstrap_servers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("statistics.interval.ms", "1000");
    config
}

/// Every partition of `topics`; an error while a topic does not exist yet
/// or no broker answers.
fn discover_partitions(
    consumer: &BaseConsumer<Context>,
    topics: &[String],
) -> Result<Vec<(String, i32)>, String> {
    let mut all = Vec::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .map_err(|e| {
                if let Some(why) = refusal(e.rdkafka_error_code()) {
                    consumer.context().status.set_refused(Some(why));
                }
                format!("metadata of topic `{topic}`: {e}")
            })?;
        let t = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(|| format!("topic `{topic}` not in the metadata"))?;
        if let Some(e) = t.error() {
            return Err(format!("topic `{topic}`: {e:?}"));
        }
        if t.partitions().is_empty() {
            return Err(format!("topic `{topic}` has no partitions yet"));
        }
        let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        ids.sort_unstable();
        all.extend(ids.into_iter().map(|p| (topic.clone(), p)));
    }
    Ok(all)
}

/// Waits for `d` while serving the client's queued events (errors, logs,
/// statistics), so that an authentication or TLS failure is known while the
/// source waits for its first metadata. Nothing is assigned yet, so no
/// message can arrive. Returns early with an error when `stop` is set.
fn serve_events(
    consumer: &BaseConsumer<Context>,
    d: Duration,
    stop: &AtomicBool,
) -> Result<(), KafkaSourceError> {
    let deadline = std::time::Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(KafkaSourceError::Stopped);
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        // A poll returns after one event or its timeout.
        let _ = consumer.poll(left.min(Duration::from_millis(20)));
    }
}

/// Sleeps in small steps, returning early with an error when `stop` is set.
fn wait(d: Duration, stop: &AtomicBool) -> Result<(), KafkaSourceError> {
    let deadline = std::time::Instant::now() + d;
    while std::time::Instant::now() < deadline {
        if stop.load(Ordering::Relaxed) {
            return Err(KafkaSourceError::Stopped);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
