//! The `run` command: reads input lines, maps and validates them, applies them
//! to the engine, and keeps state, change feed and dead letters in step.
//!
//! A bounded input (a file, or standard input) is read to its end; the summary
//! line of DESIGN §4 is returned for the caller to print.

mod latency;

pub use latency::LatencyHistogram;

use crate::config::{ConfigError, Pipeline};
use crate::engine::{Applied, Engine};
use crate::observation::{parse_line, Rejection, WireObservation, MAX_LINE_BYTES};
use crate::output::{ChangeFeed, DeadLetters, OutputError};
use crate::source::LineReader;
use crate::store::{Store, StoreError};
use kith_api::pipeline::{InputFormat, SourceSpec};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("cannot read input {path}: {source}")]
    Input {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot keep the model {path} in the state directory: {source}")]
    Model {
        path: String,
        source: std::io::Error,
    },
}

/// Where input comes from when the command line says so.
#[derive(Debug, Clone)]
pub enum InputArg {
    File(PathBuf),
    Stdin,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub pipeline: PathBuf,
    pub input: Option<InputArg>,
    pub state: Option<PathBuf>,
}

/// The last stdout line of `run` (DESIGN §4), plus counters.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub observations: u64,
    pub profiles: u64,
    pub seconds: f64,
    pub observations_per_s: f64,
    pub p99_ms: f64,
    pub peak_rss_mb: f64,
    pub dead_letters: u64,
    pub stale: u64,
    pub skipped: u64,
    pub records: u64,
    /// Entity resolution: attribute values truncated to the length limit,
    /// values it could not use (an ambiguous date...), blocks skipped as
    /// oversized, and pairs scored.
    pub values_truncated: u64,
    pub values_unusable: u64,
    pub blocks_skipped: u64,
    pub pairs_scored: u64,
}

/// Versions in the log beyond this many bytes, and beyond the snapshot's size,
/// are folded into a new snapshot when a run ends.
const MIN_COMPACTION_BYTES: u64 = 64 << 20;

pub fn run(opts: &RunOptions) -> Result<RunSummary, RunError> {
    let pipeline = Arc::new(Pipeline::load(&opts.pipeline)?);
    if pipeline
        .resolution
        .as_ref()
        .is_some_and(|r| r.weights.is_none())
    {
        let where_ = pipeline
            .model_path
            .as_ref()
            .map(|p| format!(" (expected at {})", p.display()))
            .unwrap_or_default();
        return Err(ConfigError::invalid(
            "resolution.model",
            format!("no model file{where_}: write one with `kith-runner train`, or give `prior` and every comparison's `m` and `u`"),
        )
        .into());
    }
    let mut spec_json = pipeline_json(&opts.pipeline)?;
    if let (Some(dir), Some(model)) = (&opts.state, &pipeline.model_path) {
        // The state keeps its own copy of the model, so that `export`,
        // `lookup` and `explain` rebuild the same links from `--state` alone.
        spec_json = keep_model_in_state(&spec_json, model, dir)?;
    }
    let mut engine = Engine::new(pipeline.clone());

    let mut store = match &opts.state {
        Some(dir) => {
            let (store, versions) = Store::open(dir, &pipeline, &spec_json)?;
            for v in &versions {
                engine.apply(v);
            }
            engine.clear_events();
            tracing::info!(
                versions = versions.len(),
                profiles = engine.profile_count(),
                "state restored"
            );
            Some(store)
        }
        None => None,
    };
    let state_file = |name: &str| opts.state.as_ref().map(|d| d.join(name));
    let dead_letter_path = pipeline
        .outputs
        .dead_letter
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| state_file("dead-letter.jsonl"))
        .unwrap_or_else(|| PathBuf::from("/dev/stderr"));
    let feed_path = pipeline
        .outputs
        .change_feed
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| state_file("changes.jsonl"))
        .unwrap_or_else(|| PathBuf::from("-"));
    let dead = DeadLetters::open(&dead_letter_path)?;
    let mut feed = ChangeFeed::open(&feed_path)?;

    let (input_name, reader) = open_input(opts, &pipeline)?;
    let mut latency = LatencyHistogram::default();
    let (mut observations, mut stale) = (0u64, 0u64);
    let ingest_started = Instant::now();

    // Decoding (JSON, template, validation, normalization) runs on its own
    // thread and hands batches to the engine thread through a bounded
    // channel: the engine never waits on parsing, and a slow engine blocks
    // the reader instead of growing memory.
    let (batches, receiver) = std::sync::mpsc::sync_channel::<Vec<Decoded>>(DECODE_QUEUE_BATCHES);
    let encode_frames = store.as_ref().is_some_and(Store::accepts_encoded);
    let decoder = {
        let pipeline = pipeline.clone();
        let input_name = input_name.clone();
        std::thread::Builder::new()
            .name("kith-decode".into())
            .spawn(move || decode(reader, &input_name, &pipeline, dead, batches, encode_frames))
            .expect("the decode thread starts")
    };
    let mut engine_busy = std::time::Duration::ZERO;
    let mut events = Vec::new();
    for batch in receiver {
        let batch_started = Instant::now();
        for d in batch {
            let applying = Instant::now();
            observations += 1;
            match engine.apply(&d.observation) {
                Applied::Accepted => {
                    if let Some(store) = &mut store {
                        if encode_frames {
                            store.append_encoded(&d.frame)?;
                        } else {
                            store.append(&d.observation)?;
                        }
                    }
                }
                Applied::Stale => stale += 1,
            }
            if feed.enabled() {
                engine.take_events(&mut events);
                for e in &events {
                    feed.write(&engine, e)?;
                }
            } else {
                engine.clear_events();
            }
            // Processing time of this observation: decoding plus applying,
            // persisting and publishing it. Time spent queued behind earlier
            // observations of a backlog is not the observation's own cost.
            latency.record(d.decode_time + applying.elapsed());
        }
        engine_busy += batch_started.elapsed();
    }
    let decoded = decoder.join().expect("the decode thread does not panic")?;
    tracing::info!(
        engine_busy_seconds = engine_busy.as_secs_f64(),
        decode_busy_seconds = decoded.busy.as_secs_f64(),
        "run finished"
    );
    let ingest_seconds = ingest_started.elapsed().as_secs_f64();
    feed.flush()?;
    if let Some(store) = &mut store {
        store.sync()?;
        if store.log_bytes() >= MIN_COMPACTION_BYTES {
            store.snapshot(engine.versions())?;
        }
    }
    Ok(RunSummary {
        observations,
        profiles: engine.profile_count() as u64,
        seconds: round3(ingest_seconds),
        observations_per_s: round3(observations as f64 / ingest_seconds.max(1e-9)),
        p99_ms: round3(latency.quantile(0.99).as_secs_f64() * 1e3),
        peak_rss_mb: round3(peak_rss_mb()),
        dead_letters: decoded.dead_letters,
        stale,
        skipped: decoded.skipped,
        values_truncated: engine.value_counters().truncated,
        values_unusable: engine.value_counters().unusable,
        blocks_skipped: engine.resolution_stats().0,
        pairs_scored: engine.resolution_stats().1,
        records: engine.live_records() as u64,
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Copies the model file into the state directory and points the saved
/// pipeline at that copy.
fn keep_model_in_state(spec_json: &str, model: &Path, state: &Path) -> Result<String, RunError> {
    std::fs::create_dir_all(state).map_err(|source| RunError::Model {
        path: model.display().to_string(),
        source,
    })?;
    let target = state.join("model.json");
    std::fs::copy(model, &target).map_err(|source| RunError::Model {
        path: model.display().to_string(),
        source,
    })?;
    let mut value: serde_json::Value =
        serde_json::from_str(spec_json).expect("saved pipelines are JSON");
    value["resolution"]["model"] = serde_json::Value::String("model.json".to_string());
    Ok(serde_json::to_string_pretty(&value).expect("JSON values serialize"))
}

/// The current version of every record key of a bounded input, with the
/// number of lines that were dead (not written anywhere: for tools such as
/// `train` that read an input without running a pipeline).
pub fn current_versions(
    pipeline: &Pipeline,
    input: &Path,
) -> Result<(Vec<crate::observation::Observation>, u64), RunError> {
    let shown = input.display().to_string();
    let file = std::fs::File::open(input).map_err(|source| RunError::Input {
        path: shown.clone(),
        source,
    })?;
    let mut lines = LineReader::new(BufReader::with_capacity(1 << 20, file), MAX_LINE_BYTES);
    let mut current: std::collections::HashMap<(String, String), crate::observation::Observation> =
        Default::default();
    let mut bad = 0;
    while let Some(line) = lines.next_line().map_err(|source| RunError::Input {
        path: shown.clone(),
        source,
    })? {
        let parsed = decode_line(&line, pipeline.input_format(), pipeline);
        match parsed {
            Ok(Some(obs)) => {
                let key = (obs.source.clone(), obs.id.clone());
                match current.get(&key) {
                    Some(stored) if !crate::engine::supersedes(stored, &obs, pipeline) => {}
                    _ => {
                        current.insert(key, obs);
                    }
                }
            }
            Ok(None) => {}
            Err(_) => bad += 1,
        }
    }
    let mut versions: Vec<_> = current.into_values().collect();
    versions.sort_by(|a, b| (&a.source, &a.id).cmp(&(&b.source, &b.id)));
    Ok((versions, bad))
}

/// The pipeline as JSON, saved into the state for `export`, `lookup`, `explain`.
fn pipeline_json(path: &Path) -> Result<String, RunError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let expanded = crate::config::expand_env(&text)?;
    let value: serde_json::Value =
        serde_yaml::from_str(&expanded).map_err(|source| ConfigError::Yaml {
            path: path.display().to_string(),
            source,
        })?;
    Ok(serde_json::to_string_pretty(&value).expect("JSON values serialize"))
}

/// Lines per batch handed from the decode thread to the engine: large enough
/// to amortize the hand-over, small enough to keep latency in microseconds.
const DECODE_BATCH: usize = 64;
/// Batches in flight between the threads.
const DECODE_QUEUE_BATCHES: usize = 16;

/// A validated observation and how long decoding it took.
struct Decoded {
    observation: crate::observation::Observation,
    /// The observation as a write-ahead log frame, when the store takes
    /// frames encoded outside it.
    frame: Vec<u8>,
    decode_time: std::time::Duration,
}

/// What the decode thread counted.
struct DecodeTotals {
    dead_letters: u64,
    skipped: u64,
    /// Time spent decoding (not waiting for the engine).
    busy: std::time::Duration,
}

/// Reads, maps and validates every line; dead-letters the bad ones.
fn decode(
    reader: Box<dyn BufRead + Send>,
    input_name: &str,
    pipeline: &Pipeline,
    mut dead: DeadLetters,
    batches: std::sync::mpsc::SyncSender<Vec<Decoded>>,
    encode_frames: bool,
) -> Result<DecodeTotals, RunError> {
    let format = pipeline.input_format();
    let mut lines = LineReader::new(reader, MAX_LINE_BYTES);
    let mut batch = Vec::with_capacity(DECODE_BATCH);
    let mut skipped = 0u64;
    let mut busy = std::time::Duration::ZERO;
    loop {
        let line = lines.next_line().map_err(|source| RunError::Input {
            path: input_name.to_string(),
            source,
        })?;
        let Some(line) = line else { break };
        let read_at = Instant::now();
        let parsed = decode_line(&line, format, pipeline);
        match parsed {
            Ok(Some(observation)) => {
                let mut frame = Vec::new();
                if encode_frames {
                    crate::store::encode_version(&observation, &mut frame);
                }
                batch.push(Decoded {
                    observation,
                    frame,
                    decode_time: read_at.elapsed(),
                });
                busy += read_at.elapsed();
                if batch.len() == DECODE_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(DECODE_BATCH));
                    if batches.send(full).is_err() {
                        break; // the engine stopped on an error of its own
                    }
                }
            }
            Ok(None) => skipped += 1,
            Err(why) => dead.write(input_name, line.number, line.bytes, &why)?,
        }
    }
    if !batch.is_empty() {
        let _ = batches.send(batch);
    }
    dead.flush()?;
    Ok(DecodeTotals {
        dead_letters: dead.total(),
        skipped,
        busy,
    })
}

fn open_input(
    opts: &RunOptions,
    pipeline: &Pipeline,
) -> Result<(String, Box<dyn BufRead + Send>), RunError> {
    let arg = opts
        .input
        .clone()
        .or_else(|| match pipeline.sources.first() {
            Some(SourceSpec::File { path, .. }) => Some(InputArg::File(PathBuf::from(path))),
            Some(SourceSpec::Stdin { .. }) | None => Some(InputArg::Stdin),
        });
    match arg {
        Some(InputArg::File(path)) if path.as_os_str() != "-" => {
            let shown = path.display().to_string();
            let file = std::fs::File::open(&path).map_err(|source| RunError::Input {
                path: shown.clone(),
                source,
            })?;
            Ok((shown, Box::new(BufReader::with_capacity(1 << 20, file))))
        }
        _ => Ok((
            "stdin".to_string(),
            Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
        )),
    }
}

/// One input line as a validated observation: `Ok(None)` when the template
/// skips it, `Err` (a dead letter) when it cannot be applied.
fn decode_line(
    line: &crate::source::Line<'_>,
    format: InputFormat,
    pipeline: &Pipeline,
) -> Result<Option<crate::observation::Observation>, Rejection> {
    if line.too_long {
        return Err(Rejection::TooLong);
    }
    match format {
        InputFormat::Canonical => parse_line(line.bytes, pipeline).map(Some),
        InputFormat::Template => map_line(line.bytes, pipeline),
    }
}

/// Maps a raw event with the template, then validates it like a canonical line.
fn map_line(
    bytes: &[u8],
    pipeline: &Pipeline,
) -> Result<Option<crate::observation::Observation>, Rejection> {
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

/// Peak resident memory of this process (VmHWM), in MiB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}
