//! The engine thread: applies batches in arrival order, persists accepted
//! versions, publishes change events, and between two batches marks
//! checkpoints (seal the log segment, note the positions: the only pause
//! processing takes for one) and answers the admin port's lookups and
//! savepoint requests.

use super::decode::Batch;
use super::{LatencyHistogram, RunError, MIN_COMPACTION_BYTES};
use crate::admin::{AdminRequest, Health, LookupFailure, Metrics};
use crate::checkpoint::{Completed, Coordinator, Job};
use crate::engine::{Applied, ChangeKind, Engine, LookupError};
use crate::kubernetes::lease::Fence;
use crate::output::ChangeFeed;
use crate::sink::Sinks;
use crate::source::kafka::KafkaStatus;
use crate::source::Positions;
use crate::store::{Store, StoreError};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long the engine waits for a batch before looking at timers and the
/// admin port again.
const TICK: Duration = Duration::from_millis(20);
/// How often gauges (profiles, records, lag) and readiness are refreshed.
const GAUGE_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Counters {
    pub observations: u64,
    pub stale: u64,
    pub checkpoints: u64,
    /// Processing time per observation: decode plus apply, persist, publish.
    pub latency: LatencyHistogram,
    /// From the source's append (Kafka timestamp) to applied.
    pub append_latency: LatencyHistogram,
}

pub struct EngineLoop<'a> {
    pub engine: &'a mut Engine,
    pub store: Option<Store>,
    pub coordinator: Option<Coordinator>,
    pub feed: ChangeFeed,
    /// Positions of everything applied so far.
    pub positions: Positions,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub kafka_status: Option<Arc<KafkaStatus>>,
    /// Positions of completed checkpoints, for the source to commit.
    pub commits: Sender<Positions>,
    pub admin: Receiver<AdminRequest>,
    pub interval: Duration,
    pub counters: Counters,
    /// The stores kept up to date (none without a `sinks` section).
    pub sinks: Option<Sinks>,
    /// In a cluster: whether this runner still holds its pipeline's Lease.
    pub fence: Option<Arc<Fence>>,
}

/// `at + after`, or far in the future when that would overflow.
fn later(at: Instant, after: Duration) -> Instant {
    at.checked_add(after)
        .unwrap_or_else(|| at + Duration::from_secs(365 * 24 * 3600))
}

/// How often a log stalled on a full file system is tried again.
const STALL_RETRY: Duration = Duration::from_millis(500);

/// A sink whose oldest unwritten change is older than this makes the
/// runner not ready.
const SINK_BEHIND: Duration = Duration::from_secs(10);

impl EngineLoop<'_> {
    /// Applies batches until the decode thread hangs up.
    pub fn run(&mut self, batches: Receiver<Batch>) -> Result<(), RunError> {
        let mut events = Vec::new();
        let mut next_checkpoint = later(Instant::now(), self.interval);
        let mut next_gauges = Instant::now();
        let mut next_retry = Instant::now();
        loop {
            if self.fence.as_ref().is_some_and(|f| f.lost()) {
                return Err(RunError::LeaseLost);
            }
            if let Some(sinks) = &mut self.sinks {
                if let Some(e) = sinks.failure() {
                    return Err(e.into());
                }
            }
            // A sink holding as many keys as it may holds the engine back:
            // no input is taken (the bounded queues behind it fill and the
            // source waits) until its store catches up, but probes, lookups
            // and gauges go on.
            //
            // A log that cannot be written (its file system is full) holds
            // the engine back the same way, until space is freed: what it
            // gathered stays in memory and is written then.
            let stalled = match &mut self.store {
                Some(store) if store.stalled().is_some() => {
                    if Instant::now() >= next_retry {
                        next_retry = Instant::now() + STALL_RETRY;
                        !store.retry()?
                    } else {
                        true
                    }
                }
                _ => false,
            };
            if stalled {
                self.refresh_gauges();
                std::thread::sleep(TICK);
            } else if self.sinks.as_ref().is_some_and(Sinks::full) {
                let logged = match &mut self.store {
                    Some(store) => store.write_through()?,
                    None => true,
                };
                if let (Some(sinks), true) = (&mut self.sinks, logged) {
                    sinks.relieve(self.engine);
                }
                std::thread::sleep(TICK);
            } else {
                match batches.recv_timeout(TICK) {
                    Ok(batch) => self.apply(batch, &mut events)?,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        if self.store.as_ref().is_none_or(|s| s.stalled().is_none()) {
                            break;
                        }
                    }
                }
            }
            if let Some(sinks) = &mut self.sinks {
                // No store may hold the effect of a version the log lacks:
                // after a crash, the log's versions are what is re-sent.
                let logged = match &mut self.store {
                    Some(store) if sinks.flush_due() => store.write_through()?,
                    _ => true,
                };
                if logged {
                    sinks.tick(self.engine);
                }
            }
            while let Ok(request) = self.admin.try_recv() {
                self.answer(request)?;
            }
            self.collect_completed();
            let now = Instant::now();
            if now >= next_checkpoint {
                let sinks_ready = self.sinks.as_ref().is_none_or(Sinks::ready_for_barrier);
                if sinks_ready
                    && self
                        .coordinator
                        .as_ref()
                        .is_some_and(|c| c.in_flight() == 0)
                {
                    self.checkpoint()?;
                }
                next_checkpoint = later(now, self.interval);
            }
            if now >= next_gauges {
                self.refresh_gauges();
                next_gauges = now + GAUGE_EVERY;
            }
        }
        Ok(())
    }

    fn apply(
        &mut self,
        batch: Batch,
        events: &mut Vec<crate::engine::ChangeEvent>,
    ) -> Result<(), RunError> {
        let applied_n = batch.items.len() as u64;
        for d in batch.items {
            let applying = Instant::now();
            self.counters.observations += 1;
            match self.engine.apply(&d.observation) {
                Applied::Accepted => {
                    if let Some(store) = &mut self.store {
                        if store.accepts_encoded() {
                            store.append_encoded(&d.frame)?;
                        } else {
                            store.append(&d.observation)?;
                        }
                    }
                }
                Applied::Stale => self.counters.stale += 1,
            }
            self.engine.take_events(events);
            if let Some(sinks) = &mut self.sinks {
                sinks.mark(self.engine, events);
            }
            for e in events.iter() {
                match e.kind {
                    ChangeKind::Merged => self.metrics.add_merges(1),
                    ChangeKind::Split => self.metrics.add_splits(1),
                    _ => {}
                }
            }
            if self.feed.enabled() {
                for e in events.iter() {
                    self.feed.write(self.engine, e)?;
                }
            }
            // Processing time of this observation: decoding plus applying,
            // persisting and publishing it. Time spent queued behind earlier
            // observations of a backlog is not the observation's own cost.
            let processing = d.decode_time + applying.elapsed();
            self.counters.latency.record(processing);
            match d.appended_ms {
                Some(ms) => {
                    let since = (unix_ms() - ms).max(0) as u64;
                    let d = Duration::from_millis(since);
                    self.counters.append_latency.record(d);
                    self.metrics.observe_latency(d);
                }
                None => self.metrics.observe_latency(processing),
            }
        }
        if let Some(sinks) = &self.sinks {
            sinks.refresh_gauges(Instant::now());
        }
        self.metrics.add_observations(applied_n);
        for (topic, partition, next) in batch.positions.iter() {
            self.positions.advance(topic, partition, next);
        }
        Ok(())
    }

    /// Seals the log segment and hands it, with the positions of this same
    /// instant, to the checkpoint thread.
    fn checkpoint(&mut self) -> Result<(), RunError> {
        let (Some(store), Some(coordinator)) = (&mut self.store, &mut self.coordinator) else {
            return Ok(());
        };
        let mark = Instant::now();
        // No checkpoint while the log cannot be written: its positions
        // would cover versions no segment holds.
        let segments = match store.seal() {
            Ok(segments) => segments,
            Err(StoreError::Full { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let sinks = self
            .sinks
            .as_mut()
            .map(|s| s.barrier(self.engine))
            .transpose()?;
        coordinator.submit(Job::Checkpoint {
            segments,
            positions: self.positions.clone(),
            compact: true,
            sinks,
        });
        self.metrics.checkpoint_marked(mark.elapsed());
        Ok(())
    }

    fn collect_completed(&mut self) {
        while let Some(done) = self
            .coordinator
            .as_mut()
            .and_then(Coordinator::try_completed)
        {
            self.completed(done);
        }
    }

    fn completed(&mut self, done: Completed) {
        match &done.error {
            None => {
                self.counters.checkpoints += 1;
                self.metrics.checkpoint_completed(
                    done.duration,
                    done.bytes,
                    unix_ms() as f64 / 1e3,
                );
                let _ = self.commits.send(done.positions);
                tracing::debug!(
                    checkpoint = done.id,
                    ms = done.duration.as_millis() as u64,
                    bytes = done.bytes,
                    "checkpoint completed"
                );
            }
            Some(_) => self.metrics.checkpoint_failed(),
        }
    }

    fn answer(&mut self, request: AdminRequest) -> Result<(), RunError> {
        match request {
            AdminRequest::Lookup {
                identifier_type,
                value,
                reply,
            } => {
                let answer = match self.engine.lookup(&identifier_type, &value) {
                    Ok(views) => Ok(views
                        .iter()
                        .map(|v| serde_json::to_value(v).expect("profile views serialize"))
                        .collect()),
                    // The pipeline's names, not the error message's list
                    // parsed back.
                    Err(LookupError::UnknownType { .. }) => Err(LookupFailure::UnknownType {
                        accepted: (self.engine.pipeline().identifiers.iter())
                            .map(|(_, t)| t.name.clone())
                            .collect(),
                    }),
                    // A value that does not normalize is held by no profile.
                    Err(_) => Ok(Vec::new()),
                };
                let _ = reply.send(answer);
            }
            AdminRequest::Savepoint { reply } => {
                let (Some(store), Some(coordinator)) = (&mut self.store, &mut self.coordinator)
                else {
                    let _ = reply.send(Err(
                        "savepoints need a state directory: run with --state DIR".into(),
                    ));
                    return Ok(());
                };
                let segments = match store.seal() {
                    Ok(segments) => segments,
                    Err(e @ StoreError::Full { .. }) => {
                        let _ = reply.send(Err(format!("no savepoint now: {e}")));
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                };
                let sinks = self
                    .sinks
                    .as_mut()
                    .map(|s| s.barrier(self.engine))
                    .transpose()?;
                coordinator.submit(Job::Savepoint {
                    segments,
                    positions: self.positions.clone(),
                    records: self.engine.live_records() as u64,
                    sinks,
                    reply: Box::new(move |r| {
                        let _ = reply.send(r);
                    }),
                });
            }
        }
        Ok(())
    }

    fn refresh_gauges(&mut self) {
        self.metrics
            .set_profiles(self.engine.profile_count() as u64);
        self.metrics.set_records(self.engine.live_records() as u64);
        let stalled = self.store.as_ref().and_then(Store::stalled);
        self.metrics.set_state_stalled(stalled.is_some());
        if let Some(why) = stalled {
            self.health.set_not_ready(why);
            return;
        }
        if let Some(status) = &self.kafka_status {
            for (topic, partition, lag) in status.lag(&self.positions) {
                self.metrics.set_lag(&topic, partition, lag);
            }
            if !status.connected() {
                self.health.set_not_ready(status.not_ready_reason());
                return;
            }
        }
        match self.sinks.as_ref().and_then(|s| s.lagging(SINK_BEHIND)) {
            Some(why) => self.health.set_not_ready(why),
            None => self.health.set_ready(true),
        }
    }

    /// After the input ends: a final checkpoint (so the last positions are
    /// durable and committed), then compaction of a long log into a snapshot.
    pub fn finish(&mut self) -> Result<Counters, RunError> {
        self.feed.flush()?;
        let mut coordinator = self.coordinator.take();
        while let Some(done) = coordinator.as_mut().and_then(Coordinator::wait_completed) {
            self.completed(done);
        }
        // A long log is folded into a snapshot from memory first (no
        // checkpoint is in flight now), so that the last checkpoint carries
        // the snapshot and a restore reads each record once.
        if let Some(store) = &mut self.store {
            store.sync()?;
            if store.log_bytes() >= MIN_COMPACTION_BYTES {
                store.snapshot(self.engine.versions(), &self.positions)?;
            }
        }
        if let (Some(mut coordinator), Some(store)) = (coordinator, self.store.as_mut()) {
            let sinks = self
                .sinks
                .as_mut()
                .map(|s| s.barrier(self.engine))
                .transpose()?;
            coordinator.submit(Job::Checkpoint {
                segments: store.seal()?,
                positions: self.positions.clone(),
                compact: false,
                sinks,
            });
            while let Some(done) = coordinator.wait_completed() {
                self.completed(done);
            }
            // Answer savepoint requests that raced with the end.
            while let Ok(request) = self.admin.try_recv() {
                if let AdminRequest::Savepoint { reply } = request {
                    let _ = reply.send(Err("the run ended".into()));
                }
            }
            coordinator.finish();
        }
        if let Some(sinks) = self.sinks.take() {
            sinks.finish(self.engine)?;
        }
        Ok(std::mem::take(&mut self.counters))
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
