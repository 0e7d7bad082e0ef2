//! Sinks: the stores applications read, kept up to date with the engine.
//!
//! Each sink is a materialized view of the engine's state, written by keys:
//! a profile's item, vertex or change event, an identifier's index row.
//! The engine thread marks the keys a change touches ([`pending`]); at each
//! flush it reads their current state into operations ([`flush`]), stamped
//! with a version that orders every write of the lineage ([`epoch`]); the
//! sink's worker ([`worker`]) writes them to the store with the store's own
//! encoding and error table (one folder per store: `dynamodb/`, `neptune/`).
//!
//! Delivery is tied to checkpoints: a checkpoint hands every sink a flush of
//! the state at its barrier and completes only once all of them are
//! durably written ([`Barrier`]). After a restart the changes the state
//! holds beyond its last checkpoint are marked again and re-sent; writes
//! are idempotent and versioned, so whatever an earlier run wrote, the
//! stores converge to the state.
//!
//! Memory is bounded: one flush in flight and one waiting per sink, and at
//! most `maxPending` keys marked; past that the engine stops reading input
//! until the store catches up.

pub mod dynamodb;
pub mod epoch;
pub mod events;
pub mod file;
pub mod flush;
pub mod kafka;
pub mod metrics;
pub mod neptune;
pub mod pending;
pub mod retry;
pub mod worker;

use crate::engine::{ChangeEvent, Engine, IdentId};
use flush::Flush;
pub use kith_pipeline::sinks::{Delivery, SinkConfig, StoreConfig};
use metrics::SinkMetrics;
use pending::Pending;
use std::sync::Arc;
use std::time::{Duration, Instant};
use worker::{SinkService, SinkStatus, WriteContext};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("sink `{sink}`: {message}")]
    Fatal { sink: String, message: String },
    #[error("sink `{sink}` cannot start: {message}")]
    Start { sink: String, message: String },
    #[error(transparent)]
    Epoch(#[from] epoch::EpochError),
}

struct Handle {
    name: String,
    delivery: Delivery,
    pending: Pending,
    flushes: tokio::sync::mpsc::Sender<Flush>,
    next_seq: u64,
    /// When the previous flush was taken: flushes are at least the flush
    /// interval apart.
    last_flush: Option<Instant>,
    status: Arc<SinkStatus>,
    metrics: metrics::SinkMetricHandles,
}

impl Handle {
    /// Whether this sink's pending changes should be sent now. The flush
    /// interval spaces flushes rather than delaying changes: one that
    /// follows a quiet spell is sent at once (a trickle is written within
    /// milliseconds), and under load a key changed many times within one
    /// interval is still written once per flush. No change waits longer
    /// than the interval.
    fn due(&self, now: Instant) -> bool {
        spaced_flush_due(
            self.pending.oldest.is_some(),
            self.last_flush,
            self.delivery.flush_interval,
            now,
        )
    }
}

/// [`Handle::due`]'s rule: something is pending, and the previous flush (if
/// any) was at least `interval` ago.
fn spaced_flush_due(
    pending: bool,
    last_flush: Option<Instant>,
    interval: Duration,
    now: Instant,
) -> bool {
    pending && last_flush.is_none_or(|t| now.duration_since(t) >= interval)
}

/// Every sink of a run, driven by the engine thread.
pub struct Sinks {
    runtime: tokio::runtime::Runtime,
    handles: Vec<Handle>,
    writer_epoch: u32,
    flush_counter: u32,
    touched: Vec<IdentId>,
}

/// The acknowledgements a checkpoint waits for.
pub struct Barrier {
    acks: Vec<(String, std::sync::mpsc::Receiver<Result<(), String>>)>,
}

impl Barrier {
    /// Blocks until every sink has written its barrier flush.
    pub fn wait(self) -> Result<(), String> {
        for (name, ack) in self.acks {
            match ack.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(format!("sink `{name}` stopped")),
            }
        }
        Ok(())
    }
}

impl Sinks {
    /// Starts every sink: a client each, the store checked (and tables
    /// created when asked), a worker task each.
    pub fn start(
        configs: &[SinkConfig],
        pipeline_name: &str,
        writer_epoch: u32,
        registry: &prometheus::Registry,
    ) -> Result<Sinks, SinkError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kith-sink")
            .enable_all()
            .build()
            .map_err(|e| SinkError::Start {
                sink: "(all)".into(),
                message: format!("cannot start the sinks' runtime: {e}"),
            })?;
        let all_metrics = SinkMetrics::register(registry);
        let mut handles = Vec::with_capacity(configs.len());
        for config in configs {
            let (tx, rx) = tokio::sync::mpsc::channel::<Flush>(1);
            let status = Arc::new(SinkStatus::default());
            let metrics = all_metrics.for_sink(&config.name);
            let ctx = WriteContext {
                sink: config.name.clone(),
                delivery: config.delivery.clone(),
                metrics: metrics.clone(),
                status: status.clone(),
            };
            let (name, epoch) = (config.name.as_str(), writer_epoch);
            match &config.store {
                StoreConfig::Dynamodb(c) => {
                    let service = runtime.block_on(dynamodb::service::DynamoDbService::connect(
                        c,
                        name,
                        pipeline_name,
                    ))?;
                    launch(&runtime, service, epoch, rx, ctx)?;
                }
                StoreConfig::Neptune(c) => {
                    let service = runtime.block_on(neptune::service::NeptuneService::connect(
                        c,
                        name,
                        pipeline_name,
                    ))?;
                    launch(&runtime, service, epoch, rx, ctx)?;
                }
                StoreConfig::Kafka(c) => {
                    let service = kafka::service::KafkaSinkService::new(c, name, pipeline_name);
                    launch(&runtime, service, epoch, rx, ctx)?;
                }
                StoreConfig::File(c) => {
                    launch(&runtime, file::FileService::new(c, name), epoch, rx, ctx)?;
                }
            }
            handles.push(Handle {
                name: config.name.clone(),
                delivery: config.delivery.clone(),
                pending: Pending::default(),
                flushes: tx,
                next_seq: 1,
                last_flush: None,
                status,
                metrics,
            });
        }
        Ok(Sinks {
            runtime,
            handles,
            writer_epoch,
            flush_counter: 0,
            touched: Vec::new(),
        })
    }

    /// Marks what the last applied observation changed (its events, and the
    /// identifiers the engine noted as touched).
    pub fn mark(&mut self, engine: &mut Engine, events: &[ChangeEvent]) {
        engine.take_touched_identifiers(&mut self.touched);
        if self.handles.is_empty() {
            return;
        }
        let now = Instant::now();
        for h in &mut self.handles {
            h.pending.mark(events, &self.touched, now);
        }
    }

    /// Turns sink `i`'s pending keys into its next flush, counted as
    /// unwritten from here until its worker has written it.
    fn take_flush(&mut self, i: usize, engine: &Engine) -> Flush {
        let version = self.next_version();
        let h = &mut self.handles[i];
        let f = flush::build(std::mem::take(&mut h.pending), engine, h.next_seq, version);
        h.next_seq += 1;
        h.last_flush = Some(Instant::now());
        h.status.sent(f.oldest);
        f
    }

    fn next_version(&mut self) -> u64 {
        self.flush_counter = self.flush_counter.saturating_add(1);
        flush::version(self.writer_epoch, self.flush_counter)
    }

    /// Whether [`Sinks::tick`] would send a flush now.
    pub fn flush_due(&self) -> bool {
        let now = Instant::now();
        self.handles
            .iter()
            .any(|h| h.flushes.capacity() > 0 && h.due(now))
    }

    /// Sends a flush to each sink that is [due](Handle::due), when its
    /// worker has room. The caller has written the state
    /// directory's log through first (see `Store::write_through`).
    pub fn tick(&mut self, engine: &Engine) {
        let now = Instant::now();
        for i in 0..self.handles.len() {
            let h = &self.handles[i];
            if h.due(now) && h.flushes.capacity() > 0 {
                let f = self.take_flush(i, engine);
                // Room was checked: the only sender is this thread.
                let _ = self.handles[i].flushes.try_send(f);
            }
        }
        self.refresh_gauges(now);
    }

    /// Whether some sink holds as many keys as it may: the engine waits
    /// (see [`Sinks::relieve`]) before applying more.
    pub fn full(&self) -> bool {
        self.handles
            .iter()
            .any(|h| h.pending.len() >= h.delivery.max_pending)
    }

    /// Hands a full sink's keys to its worker when the worker has room;
    /// never waits (the engine keeps answering probes and lookups while a
    /// store is slow, and takes no input meanwhile).
    pub fn relieve(&mut self, engine: &Engine) {
        for i in 0..self.handles.len() {
            let h = &self.handles[i];
            if h.pending.len() >= h.delivery.max_pending && h.flushes.capacity() > 0 {
                let f = self.take_flush(i, engine);
                let _ = self.handles[i].flushes.try_send(f);
            }
        }
        self.refresh_gauges(Instant::now());
    }

    /// Whether every sink can take a barrier flush now without waiting (a
    /// checkpoint is put off while a store is down).
    pub fn ready_for_barrier(&self) -> bool {
        self.handles.iter().all(|h| h.flushes.capacity() > 0)
    }

    fn send_now(
        &mut self,
        i: usize,
        engine: &Engine,
        ack: Option<std::sync::mpsc::Sender<Result<(), String>>>,
    ) -> Result<(), SinkError> {
        let mut f = self.take_flush(i, engine);
        f.ack = ack;
        let h = &self.handles[i];
        h.flushes.blocking_send(f).map_err(|_| SinkError::Fatal {
            sink: h.name.clone(),
            message: h
                .status
                .failed()
                .unwrap_or_else(|| "the sink stopped".into()),
        })
    }

    /// A flush of everything marked so far to every sink, with the
    /// acknowledgements a checkpoint of this instant waits for.
    pub fn barrier(&mut self, engine: &Engine) -> Result<Barrier, SinkError> {
        let mut acks = Vec::with_capacity(self.handles.len());
        for i in 0..self.handles.len() {
            let (tx, rx) = std::sync::mpsc::channel();
            self.send_now(i, engine, Some(tx))?;
            acks.push((self.handles[i].name.clone(), rx));
        }
        Ok(Barrier { acks })
    }

    /// A sink that failed for good, with its error.
    pub fn failure(&self) -> Option<SinkError> {
        self.handles.iter().find_map(|h| {
            h.status.failed().map(|message| SinkError::Fatal {
                sink: h.name.clone(),
                message,
            })
        })
    }

    /// Why the runner should not count as ready: a sink retrying, or one
    /// whose oldest unwritten change is older than `behind`.
    pub fn lagging(&self, behind: Duration) -> Option<String> {
        let now = Instant::now();
        self.handles.iter().find_map(|h| {
            if let Some(why) = h.status.retrying() {
                return Some(format!("sink `{}` is retrying: {why}", h.name));
            }
            let age = oldest_age(h, now);
            (age > behind).then(|| {
                format!(
                    "sink `{}` is behind: its oldest unwritten change is {:.1} s old",
                    h.name,
                    age.as_secs_f64()
                )
            })
        })
    }

    /// Sets the age gauges to what is unwritten now. Called after each
    /// applied batch too, before the batch is counted, so that a scrape never
    /// sees observations counted whose changes the gauge does not show yet.
    pub fn refresh_gauges(&self, now: Instant) {
        for h in &self.handles {
            h.metrics.oldest.set(oldest_age(h, now).as_secs_f64());
        }
    }

    /// Writes everything marked and waits for it (the end of a run).
    pub fn finish(mut self, engine: &Engine) -> Result<(), SinkError> {
        let barrier = self.barrier(engine)?;
        barrier.wait().map_err(|message| SinkError::Fatal {
            sink: "(all)".into(),
            message,
        })?;
        drop(self.handles);
        self.runtime.shutdown_timeout(Duration::from_secs(5));
        Ok(())
    }
}

/// Checks a sink's store, then starts its worker.
fn launch<S: SinkService>(
    runtime: &tokio::runtime::Runtime,
    mut service: S,
    writer_epoch: u32,
    flushes: tokio::sync::mpsc::Receiver<Flush>,
    ctx: WriteContext,
) -> Result<(), SinkError> {
    runtime.block_on(service.prepare(writer_epoch))?;
    runtime.spawn(worker::run(service, flushes, ctx));
    Ok(())
}

fn oldest_age(h: &Handle, now: Instant) -> Duration {
    [h.status.oldest_unwritten(), h.pending.oldest]
        .into_iter()
        .flatten()
        .map(|t| now.saturating_duration_since(t))
        .max()
        .unwrap_or_default()
}

#[cfg(test)]
mod due_tests {
    use super::spaced_flush_due;
    use std::time::{Duration, Instant};

    #[test]
    fn a_change_after_a_quiet_spell_goes_at_once_and_later_ones_wait_for_the_interval() {
        let interval = Duration::from_millis(250);
        let t0 = Instant::now();
        assert!(
            !spaced_flush_due(false, None, interval, t0),
            "nothing to send"
        );
        assert!(
            spaced_flush_due(true, None, interval, t0),
            "the first change goes at once"
        );
        let flushed = t0;
        let soon = t0 + Duration::from_millis(10);
        assert!(
            !spaced_flush_due(true, Some(flushed), interval, soon),
            "a change right after a flush waits, so a burst is coalesced"
        );
        assert!(spaced_flush_due(
            true,
            Some(flushed),
            interval,
            t0 + interval
        ));
        let quiet = t0 + Duration::from_secs(5);
        assert!(
            spaced_flush_due(true, Some(flushed), interval, quiet),
            "after a quiet spell, at once"
        );
    }
}
