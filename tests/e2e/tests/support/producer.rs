//! Input arriving while the lifecycle goes on: a workload produced to the
//! scenario's topic at a steady rate from a background thread.

use rdkafka::config::ClientConfig;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Load {
    /// Produces `lines` in order, `per_second` of them each second, spread
    /// over `partitions` as `kafka::produce` spreads them, until all are
    /// sent or [`Load::finish`] is called.
    pub fn start(
        bootstrap: &str,
        topic: &str,
        partitions: i32,
        lines: Vec<Vec<u8>>,
        per_second: usize,
    ) -> Load {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("linger.ms", "5")
            .set("enable.idempotence", "true")
            .create()
            .expect("producer");
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let topic = topic.to_string();
        let thread = {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                for (i, line) in lines.iter().enumerate() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // Steady pace: line i goes out at i / per_second seconds.
                    let due = Duration::from_secs_f64(i as f64 / per_second.max(1) as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    super::kafka::send(&producer, &topic, i, line, partitions);
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                producer
                    .flush(Duration::from_secs(60))
                    .expect("the broker takes every message");
            })
        };
        Load {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// Lines handed to the producer so far.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits until every line is sent and acknowledged; returns how many.
    pub fn join(mut self) -> usize {
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the producer thread");
        }
        self.sent()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
