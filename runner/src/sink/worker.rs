//! The sending side of a sink: one task per sink on the sinks' runtime,
//! taking flushes in order from a channel of one. A flush is written whole
//! (its requests in parallel, up to the in-flight bound) before the next is
//! taken, so at most one write per key is ever in flight and a retried old
//! write can never land after a newer one.

use super::flush::Flush;
use super::metrics::SinkMetricHandles;
use super::retry::{Backoff, Outcome};
use super::{Delivery, SinkError};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A store's side of a sink (the `service.rs` of each sink folder).
pub trait SinkService: Send + 'static {
    /// Checks the store before the first flush (tables exist or are created,
    /// the writer fence is set): a failure here stops the runner at start.
    fn prepare(&mut self, writer_epoch: u32) -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Writes every operation of the flush, retrying through `ctx`.
    fn write(
        &mut self,
        flush: &Flush,
        ctx: &WriteContext,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// What a service needs to send requests: the limits, the metrics and the
/// retry loop.
pub struct WriteContext {
    pub sink: String,
    pub delivery: Delivery,
    pub metrics: SinkMetricHandles,
    pub status: Arc<SinkStatus>,
}

impl WriteContext {
    /// Runs `attempt` until it succeeds, waiting with jittered backoff after
    /// each retryable failure; a fatal one ends it.
    pub async fn retrying<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, SinkError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Outcome>>,
    {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let mut backoff = Backoff::new(
            std::time::Duration::from_millis(20),
            self.delivery.max_backoff,
            seed,
        );
        loop {
            self.metrics.requests.inc();
            match attempt().await {
                Ok(v) => {
                    if backoff.attempts() > 0 {
                        self.status.set_retrying(None);
                    }
                    return Ok(v);
                }
                Err(Outcome::Fatal(message)) => {
                    self.metrics.errors.inc();
                    return Err(SinkError::Fatal {
                        sink: self.sink.clone(),
                        message: format!("{what}: {message}"),
                    });
                }
                Err(Outcome::Retry { reason, message }) => {
                    self.metrics.errors.inc();
                    self.metrics.retry(reason);
                    if reason == "throttled" {
                        self.metrics.throttles.inc();
                    }
                    let wait = backoff.next_wait();
                    if backoff.attempts() == 1 || backoff.attempts().is_multiple_of(20) {
                        tracing::warn!(sink = %self.sink, attempt = backoff.attempts(), reason, error = %message, "{what} failed; retrying");
                    }
                    self.status
                        .set_retrying(Some(format!("{what}: {reason}: {message}")));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// Shared between the worker and the engine thread: what the sink is doing.
#[derive(Default)]
pub struct SinkStatus {
    inner: Mutex<StatusInner>,
}

#[derive(Default)]
struct StatusInner {
    /// Oldest change of each flush handed to the worker and not written
    /// yet (queued in the channel or being written), in the order sent.
    /// A flush waiting in the channel is as unwritten as one in flight: the
    /// age gauge and the readiness check must see it.
    unwritten: std::collections::VecDeque<Instant>,
    retrying: Option<String>,
    failed: Option<String>,
}

impl SinkStatus {
    fn lock(&self) -> std::sync::MutexGuard<'_, StatusInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_retrying(&self, why: Option<String>) {
        self.lock().retrying = why;
    }

    pub fn retrying(&self) -> Option<String> {
        self.lock().retrying.clone()
    }

    pub fn failed(&self) -> Option<String> {
        self.lock().failed.clone()
    }

    /// Called on the engine thread as a flush is sent to the worker.
    pub fn sent(&self, oldest: Option<Instant>) {
        self.lock()
            .unwritten
            .push_back(oldest.unwrap_or_else(Instant::now));
    }

    /// The oldest change handed to the worker and not written yet. Flushes
    /// are sent oldest first and written in order, so it is the front.
    pub fn oldest_unwritten(&self) -> Option<Instant> {
        self.lock().unwritten.front().copied()
    }

    fn written(&self) {
        self.lock().unwritten.pop_front();
    }
}

/// Takes flushes until the channel closes or a write fails for good.
pub async fn run<S: SinkService>(
    mut service: S,
    mut flushes: tokio::sync::mpsc::Receiver<Flush>,
    ctx: WriteContext,
) {
    while let Some(mut flush) = flushes.recv().await {
        // Even an empty flush is handed over: a barrier may have work (the
        // change feed commits its transaction there).
        let result = service.write(&flush, &ctx).await;
        match result {
            Ok(()) => {
                ctx.status.written();
                ctx.metrics.flushes.inc();
                ctx.metrics.operations.inc_by(flush.len() as u64);
                if let Some(ack) = flush.ack.take() {
                    let _ = ack.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(sink = %ctx.sink, error = %e, "sink failed");
                let message = e.to_string();
                ctx.status.lock().failed = Some(message.clone());
                if let Some(ack) = flush.ack.take() {
                    let _ = ack.send(Err(message.clone()));
                }
                // Later flushes (a checkpoint's among them) fail too.
                flushes.close();
                while let Some(mut f) = flushes.recv().await {
                    if let Some(ack) = f.ack.take() {
                        let _ = ack.send(Err(message.clone()));
                    }
                }
                return;
            }
        }
    }
}
