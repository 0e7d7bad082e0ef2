//! The change feed into Kafka with a transactional producer.
//!
//! At start the producer's `init_transactions` fences every earlier
//! producer with the same transactional id (a replaced runner can no longer
//! commit) and aborts what it left open; the last progress record is read
//! back from the progress topic and logged. Events of flushes go into the
//! open transaction; it is committed, with a progress record (writer epoch,
//! flush number) in the same transaction, at each checkpoint's barrier
//! flush, and also when it grows past 16 MB or 30 s so that it never
//! reaches the transaction timeout. The events of the open transaction are
//! kept until it commits: an error that aborts the transaction is followed
//! by a new one holding them all again, so nothing is lost or doubled.
//!
//! Exactly once for `read_committed` consumers, with one window: a runner
//! that dies after committing a barrier's transaction but before its
//! checkpoint completes restarts from the previous checkpoint and writes
//! the changes since then again (the same states, so a fold of the topic is
//! unchanged).

use super::config::KafkaSinkConfig;
use crate::sink::events::{self, Event};
use crate::sink::flush::Flush;
use crate::sink::retry::Outcome;
use crate::sink::worker::{SinkService, WriteContext};
use crate::sink::SinkError;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::Message;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Broker-side limit of an open transaction (below the broker's default
/// `transaction.max.timeout.ms` of 15 minutes).
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(120);
/// An open transaction is committed once it is this old or this big.
const COMMIT_AFTER: Duration = Duration::from_secs(30);
const COMMIT_BYTES: usize = 16 << 20;

pub struct KafkaSinkService {
    config: KafkaSinkConfig,
    sink: String,
    transactional_id: String,
    producer: Option<Arc<FutureProducer>>,
    writer_epoch: u32,
    /// Events of the open transaction, for a retry after an abort.
    open: Vec<Event>,
    open_bytes: usize,
    open_since: Option<Instant>,
}

fn client_config(config: &KafkaSinkConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.bootstrap_servers);
    for (k, v) in &config.properties {
        c.set(k, v);
    }
    c
}

/// What a Kafka error means for the feed.
pub fn classify(e: &KafkaError) -> Outcome {
    let message = e.to_string();
    match e {
        KafkaError::Transaction(t) if t.is_fatal() => Outcome::Fatal(message),
        KafkaError::Transaction(t) if t.txn_requires_abort() => Outcome::Retry {
            reason: "aborted",
            message,
        },
        KafkaError::Transaction(_) => Outcome::Retry {
            reason: "unavailable",
            message,
        },
        _ => match e.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::UnknownTopicOrPartition,
            ) => Outcome::Fatal(message),
            _ => Outcome::Retry {
                reason: "unavailable",
                message,
            },
        },
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(KafkaError::Canceled))
}

/// The last progress record `transactional_id` committed to the progress topic.
fn last_progress(config: &KafkaSinkConfig, transactional_id: &str) -> Option<serde_json::Value> {
    let consumer: BaseConsumer = client_config(config)
        .set("group.id", format!("{}-progress-reader", transactional_id))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .ok()?;
    let topic = &config.progress_topic;
    let (low, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .ok()?;
    if high <= low {
        return None;
    }
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Offset((high - 200).max(low)))
        .ok()?;
    consumer.assign(&tpl).ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                if m.key() == Some(transactional_id.as_bytes()) {
                    last = m.payload().and_then(|p| serde_json::from_slice(p).ok());
                }
                if m.offset() + 1 >= high {
                    break;
                }
            }
            Some(Err(_)) => break,
            None => {
                let position = consumer
                    .position()
                    .ok()
                    .and_then(|p| p.find_partition(topic, 0).map(|e| e.offset()));
                if matches!(position, Some(rdkafka::Offset::Offset(o)) if o >= high) {
                    break;
                }
            }
        }
    }
    last
}

impl KafkaSinkService {
    pub fn new(config: &KafkaSinkConfig, sink: &str, pipeline: &str) -> Self {
        KafkaSinkService {
            transactional_id: config
                .transactional_id
                .clone()
                .unwrap_or_else(|| format!("kith-{pipeline}-{sink}")),
            config: config.clone(),
            sink: sink.to_string(),
            producer: None,
            writer_epoch: 0,
            open: Vec::new(),
            open_bytes: 0,
            open_since: None,
        }
    }

    fn start_error(&self, message: String) -> SinkError {
        SinkError::Start {
            sink: self.sink.clone(),
            message,
        }
    }

    fn producer(&self) -> Result<Arc<FutureProducer>, SinkError> {
        self.producer.clone().ok_or_else(|| SinkError::Fatal {
            sink: self.sink.clone(),
            message: "the producer is not started".into(),
        })
    }

    async fn ensure_topics(&self) -> Result<(), SinkError> {
        let admin: AdminClient<DefaultClientContext> = client_config(&self.config)
            .create()
            .map_err(|e| self.start_error(format!("cannot create a Kafka admin client: {e}")))?;
        let progress = NewTopic::new(&self.config.progress_topic, 1, TopicReplication::Fixed(-1))
            .set("cleanup.policy", "compact");
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        match admin.create_topics([&progress], &options).await {
            Ok(results) => {
                for r in results {
                    if let Err((topic, code)) = r {
                        if code != RDKafkaErrorCode::TopicAlreadyExists {
                            return Err(self.start_error(format!(
                                "cannot create the progress topic `{topic}`: {code}"
                            )));
                        }
                    }
                }
            }
            Err(e) => {
                return Err(self.start_error(format!(
                    "cannot reach Kafka at {} to create the progress topic: {e}",
                    self.config.bootstrap_servers
                )))
            }
        }
        Ok(())
    }

    /// Produces events into the open transaction (opening one if needed).
    async fn produce(&mut self, batch: &[Event], ctx: &WriteContext) -> Result<(), KafkaError> {
        let producer = self.producer().map_err(|_| KafkaError::Canceled)?;
        if self.open_since.is_none() {
            let p = producer.clone();
            blocking(move || p.begin_transaction()).await?;
            self.open_since = Some(Instant::now());
        }
        let mut pending = Vec::with_capacity(batch.len());
        for e in batch {
            let record = FutureRecord::to(&self.config.topic)
                .key(e.key.as_bytes())
                .payload(e.payload.as_slice());
            pending.push(producer.send(record, Duration::from_secs(60)));
            if pending.len() >= 10_000 {
                for d in futures::future::join_all(pending.drain(..)).await {
                    d.map_err(|(e, _)| e)?;
                }
            }
        }
        ctx.metrics.batch_size.observe(batch.len() as f64);
        for d in futures::future::join_all(pending).await {
            d.map_err(|(e, _)| e)?;
        }
        Ok(())
    }

    /// Commits the open transaction with a progress record.
    async fn commit(&mut self, flush: &Flush, barrier: bool) -> Result<(), KafkaError> {
        let producer = self.producer().map_err(|_| KafkaError::Canceled)?;
        let progress = serde_json::json!({
            "transactional_id": self.transactional_id,
            "writer_epoch": self.writer_epoch,
            "flush": flush.seq,
            "version": flush.version,
            "barrier": barrier,
        })
        .to_string();
        let record = FutureRecord::to(&self.config.progress_topic)
            .key(self.transactional_id.as_bytes())
            .payload(progress.as_bytes());
        producer
            .send(record, Duration::from_secs(60))
            .await
            .map_err(|(e, _)| e)?;
        let p = producer.clone();
        blocking(move || p.commit_transaction(Duration::from_secs(60))).await?;
        self.open.clear();
        self.open_bytes = 0;
        self.open_since = None;
        Ok(())
    }

    /// After an error that aborted the transaction: a new one with every
    /// event of the aborted one.
    async fn reopen(&mut self, ctx: &WriteContext) -> Result<(), KafkaError> {
        let producer = self.producer().map_err(|_| KafkaError::Canceled)?;
        if self.open_since.take().is_some() {
            let p = producer.clone();
            let _ = blocking(move || p.abort_transaction(Duration::from_secs(60))).await;
        }
        let events = std::mem::take(&mut self.open);
        let r = self.produce(&events, ctx).await;
        self.open = events;
        r
    }
}

impl SinkService for KafkaSinkService {
    async fn prepare(&mut self, writer_epoch: u32) -> Result<(), SinkError> {
        self.writer_epoch = writer_epoch;
        self.ensure_topics().await?;
        let producer: FutureProducer = client_config(&self.config)
            .set("transactional.id", &self.transactional_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "transaction.timeout.ms",
                TRANSACTION_TIMEOUT.as_millis().to_string(),
            )
            .set("linger.ms", "5")
            .create()
            .map_err(|e| self.start_error(format!("cannot create the producer: {e}")))?;
        let producer = Arc::new(producer);
        let p = producer.clone();
        // Fences the producers that held this id before and aborts what
        // they left open.
        blocking(move || p.init_transactions(Duration::from_secs(60)))
            .await
            .map_err(|e| self.start_error(format!("cannot start transactions: {e}")))?;
        self.producer = Some(producer);
        let sink = self.sink.clone();
        let (config, id) = (self.config.clone(), self.transactional_id.clone());
        let last = tokio::task::spawn_blocking(move || last_progress(&config, &id))
            .await
            .ok()
            .flatten();
        match last {
            Some(p) => {
                tracing::info!(sink = %sink, progress = %p, "change feed resumes after its last committed transaction")
            }
            None => {
                tracing::info!(sink = %sink, "change feed starts: no committed transaction yet")
            }
        }
        Ok(())
    }

    async fn write(&mut self, flush: &Flush, ctx: &WriteContext) -> Result<(), SinkError> {
        let batch = events::events(flush);
        let barrier = flush.ack.is_some();
        // Produce this flush, then commit when due; any failure reopens the
        // transaction with all its events and tries again.
        self.open_bytes += batch.iter().map(|e| e.payload.len()).sum::<usize>();
        let mut attempt = 0u32;
        let mut backoff = crate::sink::retry::Backoff::new(
            Duration::from_millis(50),
            ctx.delivery.max_backoff,
            u64::from(self.writer_epoch) ^ flush.seq,
        );
        loop {
            ctx.metrics.requests.inc();
            let result = if attempt == 0 {
                let r = self.produce(&batch, ctx).await;
                self.open.extend(batch.iter().cloned());
                r
            } else {
                self.reopen(ctx).await
            };
            let due = barrier
                || self.open_bytes >= COMMIT_BYTES
                || self.open_since.is_some_and(|t| t.elapsed() >= COMMIT_AFTER);
            let result = match result {
                Ok(()) if due => self.commit(flush, barrier).await,
                other => other,
            };
            match result {
                Ok(()) => {
                    if attempt > 0 {
                        ctx.status.set_retrying(None);
                    }
                    return Ok(());
                }
                Err(e) => match classify(&e) {
                    Outcome::Fatal(message) => {
                        ctx.metrics.errors.inc();
                        return Err(SinkError::Fatal {
                            sink: self.sink.clone(),
                            message,
                        });
                    }
                    Outcome::Retry { reason, message } => {
                        ctx.metrics.errors.inc();
                        ctx.metrics.retry(reason);
                        ctx.status
                            .set_retrying(Some(format!("transaction: {message}")));
                        if attempt == 0 || attempt.is_multiple_of(20) {
                            tracing::warn!(sink = %self.sink, error = %message, "change feed transaction failed; retrying in a new one");
                        }
                        attempt += 1;
                        tokio::time::sleep(backoff.next_wait()).await;
                    }
                },
            }
        }
    }
}
