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
    Input { path: String, source: std::io::Error },
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
}

/// Versions in the log beyond this many bytes, and beyond the snapshot's size,
/// are folded into a new snapshot when a run ends.
const MIN_COMPACTION_BYTES: u64 = 64 << 20;

pub fn run(opts: &RunOptions) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let pipeline = Arc::new(Pipeline::load(&opts.pipeline)?);
    let spec_json = pipeline_json(&opts.pipeline)?;
    let mut engine = Engine::new(pipeline.clone());

    let mut store = match &opts.state {
        Some(dir) => {
            let (store, versions) = Store::open(dir, &pipeline, &spec_json)?;
            for v in &versions {
                engine.apply(v);
            }
            engine.clear_events();
            tracing::info!(versions = versions.len(), profiles = engine.profile_count(), "state restored");
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
    let mut dead = DeadLetters::open(&dead_letter_path)?;
    let mut feed = ChangeFeed::open(&feed_path)?;

    let (input_name, reader, format) = open_input(opts, &pipeline)?;
    let mut lines = LineReader::new(reader, MAX_LINE_BYTES);
    let mut latency = LatencyHistogram::default();
    let mut summary_counts = (0u64, 0u64, 0u64); // observations, stale, skipped
    let ingest_started = Instant::now();
    loop {
        let line = lines.next_line().map_err(|source| RunError::Input { path: input_name.clone(), source })?;
        let Some(line) = line else { break };
        let t0 = Instant::now();
        let parsed = if line.too_long {
            Err(Rejection::TooLong)
        } else {
            match format {
                InputFormat::Canonical => parse_line(line.bytes, &pipeline).map(Some),
                InputFormat::Template => map_line(line.bytes, &pipeline),
            }
        };
        match parsed {
            Ok(Some(obs)) => {
                summary_counts.0 += 1;
                match engine.apply(&obs) {
                    Applied::Accepted => {
                        if let Some(store) = &mut store {
                            store.append(&obs)?;
                        }
                    }
                    Applied::Stale => summary_counts.1 += 1,
                }
                if feed.enabled() {
                    let events: Vec<_> = engine.drain_events().collect();
                    for e in &events {
                        feed.write(&engine, e)?;
                    }
                } else {
                    engine.clear_events();
                }
            }
            Ok(None) => summary_counts.2 += 1,
            Err(why) => dead.write(&input_name, line.number, line.bytes, &why)?,
        }
        latency.record(t0.elapsed());
    }
    let ingest_seconds = ingest_started.elapsed().as_secs_f64();
    dead.flush()?;
    feed.flush()?;
    if let Some(store) = &mut store {
        store.sync()?;
        if store.log_bytes() >= MIN_COMPACTION_BYTES {
            store.snapshot(engine.versions())?;
        }
    }
    let _ = started;
    let observations = summary_counts.0;
    Ok(RunSummary {
        observations,
        profiles: engine.profile_count() as u64,
        seconds: round3(ingest_seconds),
        observations_per_s: round3(observations as f64 / ingest_seconds.max(1e-9)),
        p99_ms: round3(latency.quantile(0.99).as_secs_f64() * 1e3),
        peak_rss_mb: round3(peak_rss_mb()),
        dead_letters: dead.total(),
        stale: summary_counts.1,
        skipped: summary_counts.2,
        records: engine.live_records() as u64,
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The pipeline as JSON, saved into the state for `export`, `lookup`, `explain`.
fn pipeline_json(path: &Path) -> Result<String, RunError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
    let expanded = crate::config::expand_env(&text)?;
    let value: serde_json::Value = serde_yaml::from_str(&expanded)
        .map_err(|source| ConfigError::Yaml { path: path.display().to_string(), source })?;
    Ok(serde_json::to_string_pretty(&value).expect("JSON values serialize"))
}

fn open_input(opts: &RunOptions, pipeline: &Pipeline) -> Result<(String, Box<dyn BufRead>, InputFormat), RunError> {
    let format = pipeline.input_format();
    let arg = opts.input.clone().or_else(|| match pipeline.sources.first() {
        Some(SourceSpec::File { path, .. }) => Some(InputArg::File(PathBuf::from(path))),
        Some(SourceSpec::Stdin { .. }) | None => Some(InputArg::Stdin),
    });
    match arg {
        Some(InputArg::File(path)) if path.as_os_str() != "-" => {
            let shown = path.display().to_string();
            let file = std::fs::File::open(&path).map_err(|source| RunError::Input { path: shown.clone(), source })?;
            Ok((shown, Box::new(BufReader::with_capacity(1 << 20, file)), format))
        }
        _ => Ok(("stdin".to_string(), Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())), format)),
    }
}

/// Maps a raw event with the template, then validates it like a canonical line.
fn map_line(bytes: &[u8], pipeline: &Pipeline) -> Result<Option<crate::observation::Observation>, Rejection> {
    let text = std::str::from_utf8(bytes).map_err(|_| Rejection::InvalidUtf8)?;
    let event: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Rejection::Malformed(e.to_string()))?;
    let template = pipeline.template.as_ref().expect("validated: template sources have a template");
    let mapped: Option<WireObservation<'static>> = template.map(&event)?;
    mapped.map(|w| w.validate(pipeline)).transpose()
}

/// Peak resident memory of this process (VmHWM), in MiB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}
