//! The decode side of a run: reading input (lines of a file or standard
//! input, or Kafka messages), mapping and validating it, and handing batches
//! of observations to the engine thread through a bounded channel: the engine
//! never waits on parsing, and a slow engine blocks the reader instead of
//! growing memory. Bad input goes to the dead letters here.

use super::RunError;
use crate::admin::Metrics;
use crate::config::Pipeline;
use crate::observation::{parse_line, Observation, Rejection, WireObservation, MAX_LINE_BYTES};
use crate::output::{DeadLetterTopic, DeadLetters, Origin};
use crate::source::kafka::{KafkaSource, Received};
use crate::source::{read_in_chunks, Positions};
use kith_api::pipeline::InputFormat;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

/// Observations per batch: large enough to amortize the hand-over, small
/// enough to keep latency in microseconds.
pub const DECODE_BATCH: usize = 64;
/// Batches in flight between the threads.
pub const DECODE_QUEUE_BATCHES: usize = 16;

/// A validated observation and how long decoding it took.
pub struct Decoded {
    pub observation: Observation,
    /// The observation as a write-ahead log frame, when the store takes
    /// frames encoded outside it.
    pub frame: Vec<u8>,
    pub decode_time: Duration,
    /// When the source appended it (Kafka's timestamp), in Unix milliseconds.
    pub appended_ms: Option<i64>,
}

/// What the engine thread receives: observations, and the source positions
/// they bring the state to once all are applied (dead and skipped messages
/// included, so that positions move past them).
#[derive(Default)]
pub struct Batch {
    pub items: Vec<Decoded>,
    pub positions: Positions,
}

/// What the decode thread counted.
pub struct DecodeTotals {
    pub dead_letters: u64,
    pub skipped: u64,
    /// Time spent decoding (not waiting for the engine).
    pub busy: Duration,
    /// A Kafka source handed back when reading ends, so that the positions
    /// of the final checkpoint (taken after it) still reach the consumer
    /// group.
    pub kafka: Option<KafkaCommits>,
}

/// The consumer and the checkpoints' positions for it to commit.
pub struct KafkaCommits {
    source: KafkaSource,
    commits: Receiver<Positions>,
}

impl KafkaCommits {
    /// Commits the newest positions a checkpoint sent, waiting for the
    /// broker's answer (the consumer is dropped right after).
    pub fn commit_last(self) {
        if let Some(last) = self.commits.try_iter().last() {
            self.source.commit_sync(&last);
        }
    }
}

/// Where dead letters go: the dead-letter file, or a Kafka topic.
pub enum DeadLetterSink {
    File(DeadLetters),
    Topic(DeadLetterTopic),
}

impl DeadLetterSink {
    fn write_kafka(
        &mut self,
        m: &Received<'_>,
        raw: &[u8],
        why: &Rejection,
    ) -> Result<(), RunError> {
        match self {
            DeadLetterSink::Topic(t) => t
                .write(
                    &Origin {
                        topic: m.topic,
                        partition: m.partition,
                        offset: m.offset,
                    },
                    raw,
                    why,
                )
                .map_err(RunError::DeadLetterTopic),
            DeadLetterSink::File(f) => {
                let input = format!("kafka:{}/{}", m.topic, m.partition);
                Ok(f.write(&input, m.offset as u64, raw, why)?)
            }
        }
    }

    /// Makes every dead letter written so far durable (delivered, for a topic).
    fn flush(&mut self) -> Result<(), RunError> {
        match self {
            DeadLetterSink::Topic(t) => {
                t.flush();
                Ok(())
            }
            DeadLetterSink::File(f) => Ok(f.flush()?),
        }
    }

    fn total(&self) -> u64 {
        match self {
            DeadLetterSink::Topic(t) => t.total(),
            DeadLetterSink::File(f) => f.total(),
        }
    }
}

/// Turns validated observations into batch items.
struct Encoder {
    encode_frames: bool,
}

impl Encoder {
    fn item(
        &self,
        observation: Observation,
        started: Instant,
        appended_ms: Option<i64>,
    ) -> Decoded {
        let mut frame = Vec::new();
        if self.encode_frames {
            crate::store::encode_version(&observation, &mut frame);
        }
        Decoded {
            observation,
            frame,
            decode_time: started.elapsed(),
            appended_ms,
        }
    }
}

/// How often the decode thread looks at the stop flag while no line comes.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Reads, maps and validates every line of a file or standard input;
/// dead-letters the bad ones. Every chunk of lines the reader hands over
/// (it ends one where the input pauses) goes to the engine as one batch, so
/// a lone line is applied at once. Ends at the end of the input, or soon
/// after `stop` is set even while a silent writer keeps a pipe open.
#[allow(clippy::too_many_arguments)]
pub fn decode_lines(
    reader: Box<dyn BufRead + Send>,
    input_name: &str,
    pipeline: &Pipeline,
    mut dead: DeadLetters,
    batches: SyncSender<Batch>,
    encode_frames: bool,
    metrics: &Metrics,
    stop: &AtomicBool,
) -> Result<DecodeTotals, RunError> {
    let format = pipeline.input_format();
    let encoder = Encoder { encode_frames };
    let input_error = |source| RunError::Input {
        path: input_name.to_string(),
        source,
    };
    let chunks = read_in_chunks(reader, MAX_LINE_BYTES).map_err(input_error)?;
    let mut skipped = 0u64;
    let mut busy = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let chunk = match chunks.recv_timeout(STOP_POLL) {
            Ok(chunk) => chunk.map_err(input_error)?,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut batch = Batch::default();
        batch.items.reserve(chunk.len());
        for line in chunk.lines() {
            let read_at = Instant::now();
            match decode_line(&line, format, pipeline) {
                Ok(Some(observation)) => {
                    batch.items.push(encoder.item(observation, read_at, None));
                    busy += read_at.elapsed();
                }
                Ok(None) => skipped += 1,
                Err(why) => {
                    dead.write(input_name, line.number, line.bytes, &why)?;
                    metrics.add_dead_letters(1);
                }
            }
        }
        if !batch.items.is_empty() && batches.send(batch).is_err() {
            break; // the engine stopped on an error of its own
        }
    }
    dead.flush()?;
    Ok(DecodeTotals {
        dead_letters: dead.total(),
        skipped,
        busy,
        kafka: None,
    })
}

/// How the Kafka decode loop ends.
pub struct KafkaRun<'a> {
    pub source: KafkaSource,
    pub dead: DeadLetterSink,
    pub exit_at_end: bool,
    /// Set on SIGTERM/SIGINT: stop reading, let the engine finish and checkpoint.
    pub stop: &'a AtomicBool,
    /// Positions of completed checkpoints, to commit to the consumer group.
    pub commits: Receiver<Positions>,
}

/// Reads Kafka messages until stopped (or, with `--exit-at-end`, until the
/// end offsets seen at start), decoding them into batches.
pub fn decode_kafka(
    mut run: KafkaRun<'_>,
    pipeline: &Pipeline,
    batches: SyncSender<Batch>,
    encode_frames: bool,
    metrics: &Metrics,
) -> Result<DecodeTotals, RunError> {
    let format = pipeline.input_format();
    let encoder = Encoder { encode_frames };
    let mut batch = Batch::default();
    let mut batch_has_dead = false;
    let (mut skipped, mut busy, mut since_end_check) = (0u64, Duration::ZERO, 0u32);
    let start = Batch {
        items: Vec::new(),
        positions: run.source.start_positions(),
    };
    if batches.send(start).is_err() {
        return Ok(DecodeTotals {
            dead_letters: 0,
            skipped: 0,
            busy,
            kafka: None,
        });
    }
    loop {
        if run.stop.load(Ordering::Relaxed) {
            break;
        }
        while let Ok(p) = run.commits.try_recv() {
            run.source.commit(&p);
        }
        // Wait for messages only when nothing is pending, so that a partial
        // batch goes to the engine as soon as the topic is quiet.
        let timeout = if batch.items.is_empty() && batch.positions.is_empty() {
            Duration::from_millis(50)
        } else {
            Duration::ZERO
        };
        let mut idle = false;
        match run.source.poll(timeout) {
            Some(m) => {
                let read_at = Instant::now();
                let message = Received::of(&m);
                batch
                    .positions
                    .advance(message.topic, message.partition, message.offset + 1);
                match decode_bytes(message.payload, format, pipeline) {
                    Ok(Some(observation)) => {
                        batch
                            .items
                            .push(encoder.item(observation, read_at, message.timestamp_ms));
                    }
                    Ok(None) => skipped += 1,
                    Err(why) => {
                        run.dead.write_kafka(&message, message.payload, &why)?;
                        metrics.add_dead_letters(1);
                        batch_has_dead = true;
                    }
                }
                busy += read_at.elapsed();
                since_end_check += 1;
            }
            None => idle = true,
        }
        let full = batch.items.len() >= DECODE_BATCH;
        if full || (idle && !batch.positions.is_empty()) {
            if batch_has_dead {
                // Positions may pass a dead message only once it is delivered.
                run.dead.flush()?;
                batch_has_dead = false;
            }
            if batches.send(std::mem::take(&mut batch)).is_err() {
                break;
            }
        }
        if run.exit_at_end && (idle || since_end_check >= 4096) {
            since_end_check = 0;
            if run.source.at_end() {
                break;
            }
        }
    }
    if batch_has_dead {
        run.dead.flush()?;
    }
    if !batch.positions.is_empty() {
        let _ = batches.send(batch);
    }
    Ok(DecodeTotals {
        dead_letters: run.dead.total(),
        skipped,
        busy,
        kafka: Some(KafkaCommits {
            source: run.source,
            commits: run.commits,
        }),
    })
}

/// One input line as a validated observation: `Ok(None)` when the template
/// skips it, `Err` (a dead letter) when it cannot be applied.
pub fn decode_line(
    line: &crate::source::Line<'_>,
    format: InputFormat,
    pipeline: &Pipeline,
) -> Result<Option<Observation>, Rejection> {
    if line.too_long {
        return Err(Rejection::TooLong);
    }
    decode_bytes(line.bytes, format, pipeline)
}

fn decode_bytes(
    bytes: &[u8],
    format: InputFormat,
    pipeline: &Pipeline,
) -> Result<Option<Observation>, Rejection> {
    if bytes.len() > MAX_LINE_BYTES {
        return Err(Rejection::TooLong);
    }
    match format {
        InputFormat::Canonical => parse_line(bytes, pipeline).map(Some),
        InputFormat::Template => map_line(bytes, pipeline),
    }
}

/// Maps a raw event with the template, then validates it like a canonical line.
fn map_line(bytes: &[u8], pipeline: &Pipeline) -> Result<Option<Observation>, Rejection> {
    let text = std::str::from_utf8(bytes).map_err(|_| Rejection::InvalidUtf8)?;
    let event: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Rejection::Malformed(e.to_string()))?;
    let template = pipeline
        .template
        .as_ref()
        .expect("validated: template sources have a template");
    let mapped: Option<WireObservation<'static>> = template.map(&event)?;
    mapped.map(|w| w.validate(pipeline)).transpose()
}
