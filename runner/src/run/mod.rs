//! The `run` command: restores state, reads a source, applies observations
//! to the engine, and keeps state, checkpoints, change feed and dead letters
//! in step.
//!
//! Threads: one decodes input into batches (`decode`), the engine thread
//! (this one) applies them and marks checkpoints between batches
//! (`engine_loop`), the checkpoint thread makes them durable and copies them
//! to object storage (`crate::checkpoint`), and the admin server answers
//! probes, scrapes, lookups and savepoint requests (`crate::admin`).
//!
//! A bounded input (a file, standard input, or Kafka with `--exit-at-end`)
//! is read to its end; the summary line of docs/design.md §4 is returned for the
//! caller to print.

mod decode;
mod engine_loop;
mod latency;
mod own_output;

pub use decode::decode_line;
pub use latency::LatencyHistogram;

use crate::admin::{AdminServer, AdminState, Health, Metrics};
use crate::checkpoint::{self, CheckpointError, CheckpointStorage, Coordinator, CoordinatorConfig};
use crate::config::{ConfigError, Pipeline};
use crate::engine::Engine;
use crate::kubernetes::lease::Fence;
use crate::observation::MAX_LINE_BYTES;
use crate::output::{ChangeFeed, DeadLetterTopic, DeadLetterTopicError, DeadLetters, OutputError};
use crate::source::kafka::{KafkaSource, KafkaSourceError};
use crate::source::LineReader;
use crate::store::{StateLock, Store, StoreError};
use decode::{Batch, DeadLetterSink, KafkaRun, DECODE_QUEUE_BATCHES};
use kith_api::pipeline::SourceSpec;
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Kafka(#[from] KafkaSourceError),
    #[error(transparent)]
    DeadLetterTopic(DeadLetterTopicError),
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    #[error(transparent)]
    Kubernetes(#[from] crate::kubernetes::AgentError),
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
    #[error("--restore {url}: {message}")]
    Restore { url: String, message: String },
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    #[error("input {input} is {role} of this run ({output}): reading it would feed the run its own output; give another --input, or move that output elsewhere in the pipeline's `outputs`")]
    InputIsOutput {
        input: String,
        role: &'static str,
        output: String,
    },
    #[error("the {thread} thread panicked: {message}")]
    ThreadPanicked {
        thread: &'static str,
        message: String,
    },
    #[error("this runner lost its pipeline's Lease (another runner may be writing now); it stopped without another checkpoint and exits, to wait for the Lease again when restarted")]
    LeaseLost,
}

/// Where input comes from when the command line says so.
#[derive(Debug, Clone)]
pub enum InputArg {
    File(PathBuf),
    Stdin,
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub pipeline: PathBuf,
    pub input: Option<InputArg>,
    pub state: Option<PathBuf>,
    /// Stop a Kafka source at the end offsets seen at start.
    pub exit_at_end: bool,
    /// A checkpoint or savepoint folder to start from (into an empty
    /// `state`), or `latest`: the newest complete checkpoint in
    /// `checkpoints.url`, in place of whatever `state` holds (set aside).
    pub restore: Option<String>,
    /// A savepoint to start from only when there is no state yet: `state`
    /// is empty and `checkpoints.url` holds no complete checkpoint. A restart
    /// that finds a checkpoint continues from it instead.
    pub initial_savepoint: Option<String>,
    /// Where the admin HTTP port listens.
    pub admin: Option<SocketAddr>,
    /// Who may read profiles and take savepoints there.
    pub admin_auth: crate::admin::auth::AuthChoice,
    /// HTTPS for the admin port.
    pub admin_tls: Option<crate::admin::tls::TlsSettings>,
    /// Set from outside (SIGTERM) to stop reading, checkpoint, and return.
    pub stop: Option<Arc<AtomicBool>>,
    /// The pipeline this runner runs for in a cluster: report there and take
    /// its ProfileSnapshots (`crate::kubernetes`).
    pub kubernetes: Option<crate::kubernetes::Identity>,
}

/// The last stdout line of `run` (docs/design.md §4), plus counters.
#[derive(Debug, Clone, Default, Serialize)]
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
    /// Kafka: p99 from the broker's append to applied, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub append_p99_ms: Option<f64>,
    /// Checkpoints completed during the run (the final one included).
    pub checkpoints: u64,
    /// Seconds spent restoring state before the first observation.
    pub restore_seconds: f64,
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
    // Held until this function returns: no other process may use the state
    // directory meanwhile (the lock goes with the process if it dies).
    let _lock = opts.state.as_deref().map(StateLock::acquire).transpose()?;
    if let (Some(dir), Some(model)) = (&opts.state, &pipeline.model_path) {
        // The state keeps its own copy of the model, so that `export`,
        // `lookup` and `explain` rebuild the same links from `--state` alone.
        spec_json = keep_model_in_state(&spec_json, model, dir)?;
    }
    let stop = opts.stop.clone().unwrap_or_default();
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new());
    health.set_not_ready("restoring state");
    let (admin_tx, admin_rx) = crate::admin::request_channel(16);
    // In a cluster, one runner per pipeline writes: the holder of its Lease.
    let fence = opts
        .kubernetes
        .as_ref()
        .map(|identity| crate::kubernetes::lease::fence_for(&identity.pod));
    let kubernetes = opts
        .kubernetes
        .clone()
        .zip(fence.clone())
        .map(|(identity, fence)| {
            crate::kubernetes::Agent::start(crate::kubernetes::Shared {
                identity,
                fence,
                metrics: metrics.clone(),
                health: health.clone(),
                requests: admin_tx.clone(),
                savepoints: savepoint_base(&pipeline, opts.state.as_deref()),
            })
        })
        .transpose()?;
    let admin = opts
        .admin
        .map(|addr| {
            let identity = opts
                .kubernetes
                .as_ref()
                .map(|k| (k.namespace.as_str(), k.pipeline.as_str()));
            let auth = crate::admin::auth::AdminAuth::from_choice(&opts.admin_auth, identity)
                .map_err(crate::admin::AdminError::from)?;
            AdminServer::start(
                addr,
                AdminState {
                    metrics: metrics.clone(),
                    health: health.clone(),
                    requests: admin_tx,
                    auth,
                    tls: opts.admin_tls.clone(),
                },
            )
        })
        .transpose()?;
    if let Some(a) = &admin {
        tracing::info!(address = %a.local_addr(), "admin port open");
    }

    if let Some(fence) = &fence {
        if !wait_for_lease(fence, &health, &stop) {
            // Stopped before it could take over: it never touched the state.
            tracing::info!("stopped while waiting for the pipeline's Lease");
            return Ok(RunSummary::default());
        }
    }

    let restore_started = Instant::now();
    let mut engine = Engine::new(pipeline.clone());
    if let Some(dir) = &opts.state {
        restore_if_needed(opts, dir, &pipeline, &metrics)?;
    }
    let mut sinks = start_sinks(opts, &pipeline, &metrics)?;
    engine.track_identifiers(sinks.is_some());
    let mut positions = crate::source::Positions::default();
    let store = match &opts.state {
        Some(dir) => {
            let opened = Store::open(dir, &pipeline, &spec_json)?;
            let mut restored = 0u64;
            let mut events = Vec::new();
            for batch in opened.versions {
                let batch = batch?;
                // Versions after the last checkpoint: the sinks may not have
                // written what they changed, so it is marked again. What a
                // checkpoint committed, every sink had written.
                let resend = sinks.is_some() && !batch.committed;
                engine.track_identifiers(resend);
                for v in batch.iter() {
                    engine.apply(v);
                    restored += 1;
                    match &mut sinks {
                        Some(sinks) if resend => {
                            engine.take_events(&mut events);
                            sinks.mark(&mut engine, &events);
                        }
                        _ => engine.clear_events(),
                    }
                }
            }
            engine.track_identifiers(sinks.is_some());
            positions = opened.positions;
            tracing::info!(
                versions = restored,
                profiles = engine.profile_count(),
                seconds = restore_started.elapsed().as_secs_f64(),
                "state restored"
            );
            Some(opened.store)
        }
        None if opts.restore.is_some() => {
            return Err(RunError::Restore {
                url: opts.restore.clone().unwrap_or_default(),
                message: "restoring needs a state directory to restore into: add --state DIR"
                    .into(),
            })
        }
        None => None,
    };
    let restore_seconds = restore_started.elapsed().as_secs_f64();
    metrics.set_records(engine.live_records() as u64);
    metrics.set_profiles(engine.profile_count() as u64);

    let state_file = |name: &str| opts.state.as_ref().map(|d| d.join(name));
    let dead_letter_path = pipeline
        .outputs
        .dead_letter
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| state_file("dead-letter.jsonl"))
        .unwrap_or_else(|| PathBuf::from("/dev/stderr"));
    // In a cluster there is no default change-feed file (it would grow
    // without bound on the pod's volume): a `file` or `kafka` sink is the
    // change feed there.
    let feed_path = pipeline
        .outputs
        .change_feed
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| {
            opts.kubernetes
                .is_none()
                .then(|| state_file("changes.jsonl"))
                .flatten()
        })
        .unwrap_or_else(|| PathBuf::from("-"));
    let feed = ChangeFeed::open(&feed_path)?;

    let coordinator = match &store {
        Some(store) => Some(start_coordinator(
            opts,
            &pipeline,
            store,
            &spec_json,
            fence.clone(),
        )?),
        None => None,
    };

    let (batches, receiver) = std::sync::mpsc::sync_channel::<Batch>(DECODE_QUEUE_BATCHES);
    let encode_frames = store.as_ref().is_some_and(Store::accepts_encoded);
    let (commit_tx, commit_rx) = std::sync::mpsc::channel();
    let kafka_spec = match (&opts.input, pipeline.sources.first()) {
        (None, Some(SourceSpec::Kafka(k))) => Some(k.clone()),
        _ => None,
    };
    let (decoder, kafka_status) = match kafka_spec {
        Some(spec) => {
            let waiting = |why: &str| health.set_not_ready(why.to_string());
            let source = KafkaSource::connect(
                &spec,
                &pipeline.name,
                &positions,
                opts.exit_at_end,
                &stop,
                &waiting,
            )?;
            let status = source.status();
            let dead = match &spec.dead_letter_topic {
                Some(topic) => DeadLetterSink::Topic(
                    DeadLetterTopic::new(&spec.bootstrap_servers, &spec.properties, topic)
                        .map_err(RunError::DeadLetterTopic)?,
                ),
                None => DeadLetterSink::File(DeadLetters::open(&dead_letter_path)?),
            };
            let (pipeline, metrics, stop) = (pipeline.clone(), metrics.clone(), stop.clone());
            let exit_at_end = opts.exit_at_end;
            let handle = std::thread::Builder::new()
                .name("kith-decode".into())
                .spawn(move || {
                    let run = KafkaRun {
                        source,
                        dead,
                        exit_at_end,
                        stop: &stop,
                        commits: commit_rx,
                    };
                    decode::decode_kafka(run, &pipeline, batches, encode_frames, &metrics)
                })
                .expect("the decode thread starts");
            (handle, Some(status))
        }
        None => {
            let dead = DeadLetters::open(&dead_letter_path)?;
            let outputs = [
                own_output::Output {
                    role: "the dead-letter file",
                    path: &dead_letter_path,
                },
                own_output::Output {
                    role: "the change feed",
                    path: &feed_path,
                },
            ];
            let (input_name, reader) = open_input(opts, &pipeline, &outputs)?;
            let (pipeline, metrics, stop) = (pipeline.clone(), metrics.clone(), stop.clone());
            let handle = std::thread::Builder::new()
                .name("kith-decode".into())
                .spawn(move || {
                    crate::failpoint::hit("decode");
                    decode::decode_lines(
                        reader,
                        &input_name,
                        &pipeline,
                        dead,
                        batches,
                        encode_frames,
                        &metrics,
                        &stop,
                    )
                })
                .expect("the decode thread starts");
            (handle, None)
        }
    };

    let ingest_started = Instant::now();
    let mut looped = engine_loop::EngineLoop {
        engine: &mut engine,
        store,
        coordinator,
        feed,
        positions,
        metrics: metrics.clone(),
        health: health.clone(),
        kafka_status,
        commits: commit_tx,
        admin: admin_rx,
        interval: pipeline.checkpoints.interval,
        counters: Default::default(),
        sinks,
        fence: fence.clone(),
    };
    let outcome = looped.run(receiver);
    if let Err(RunError::LeaseLost) = outcome {
        // Another runner may own the state now: nothing more is written.
        return Err(RunError::LeaseLost);
    }
    // Ingestion ends with the input; the last checkpoint is not part of it.
    let ingest_seconds = ingest_started.elapsed().as_secs_f64();
    let decoded = decoder.join().map_err(|panic| RunError::ThreadPanicked {
        thread: "decode",
        message: crate::store::panic_message(&*panic),
    })?;
    let counters = looped.finish()?;
    outcome?;
    let mut decoded = decoded?;
    if let Some(kafka) = decoded.kafka.take() {
        kafka.commit_last();
    }
    tracing::info!(
        decode_busy_seconds = decoded.busy.as_secs_f64(),
        "run finished"
    );
    drop(admin);
    drop(kubernetes);
    let observations = counters.observations;
    Ok(RunSummary {
        observations,
        profiles: engine.profile_count() as u64,
        seconds: round3(ingest_seconds),
        observations_per_s: round3(observations as f64 / ingest_seconds.max(1e-9)),
        p99_ms: round3(counters.latency.quantile(0.99).as_secs_f64() * 1e3),
        peak_rss_mb: round3(peak_rss_mb()),
        dead_letters: decoded.dead_letters,
        stale: counters.stale,
        skipped: decoded.skipped,
        values_truncated: engine.value_counters().truncated,
        values_unusable: engine.value_counters().unusable,
        blocks_skipped: engine.resolution_stats().0,
        pairs_scored: engine.resolution_stats().1,
        records: engine.live_records() as u64,
        append_p99_ms: (counters.append_latency.count() > 0)
            .then(|| round3(counters.append_latency.quantile(0.99).as_secs_f64() * 1e3)),
        checkpoints: counters.checkpoints,
        restore_seconds: round3(restore_seconds),
    })
}

/// Waits, not ready, until this process holds the pipeline's Lease; false
/// when stopped first.
fn wait_for_lease(fence: &Fence, health: &Health, stop: &AtomicBool) -> bool {
    let mut said = None;
    while !fence.held() {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let why = match fence.waiting_for() {
            Some(holder) => format!("waiting for the pipeline's Lease, held by {holder}"),
            None => "taking the pipeline's Lease".to_string(),
        };
        if said.as_ref() != Some(&why) {
            tracing::info!("{why}");
            health.set_not_ready(why.clone());
            said = Some(why);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    health.set_not_ready("restoring state");
    true
}

/// Claims a writer epoch and starts the pipeline's sinks (none without a
/// `sinks` section). A store that is missing, or refuses the runner's
/// credentials, stops the run here.
fn start_sinks(
    opts: &RunOptions,
    pipeline: &Pipeline,
    metrics: &Metrics,
) -> Result<Option<crate::sink::Sinks>, RunError> {
    if pipeline.sinks.is_empty() {
        return Ok(None);
    }
    let storage = pipeline
        .checkpoints
        .url
        .as_deref()
        .map(CheckpointStorage::from_url)
        .transpose()
        .map_err(CheckpointError::from)?;
    let epoch = crate::sink::epoch::claim(opts.state.as_deref(), storage.as_ref())
        .map_err(crate::sink::SinkError::from)?;
    tracing::info!(
        writer_epoch = epoch,
        sinks = pipeline.sinks.len(),
        "starting sinks"
    );
    Ok(Some(crate::sink::Sinks::start(
        &pipeline.sinks,
        &pipeline.name,
        epoch,
        metrics.registry(),
    )?))
}

/// Restores into an empty state directory: from `--restore`, or from the
/// latest complete checkpoint in the pipeline's checkpoint storage.
fn restore_if_needed(
    opts: &RunOptions,
    dir: &Path,
    pipeline: &Pipeline,
    metrics: &Metrics,
) -> Result<(), RunError> {
    let has_state = holds_state(dir);
    let restored = match (&opts.restore, &pipeline.checkpoints.url) {
        (Some(latest), url) if latest == "latest" => {
            let Some(url) = url else {
                return Err(RunError::Restore {
                    url: latest.clone(),
                    message: "`latest` restores the newest checkpoint in `checkpoints.url`, and the pipeline sets none".into(),
                });
            };
            // Only a checkpoint that is there replaces the local state.
            let storage = CheckpointStorage::from_url(url).map_err(CheckpointError::from)?;
            if checkpoint::restore::latest(&storage)?.is_none() {
                return Err(RunError::Restore {
                    url: url.clone(),
                    message:
                        "no complete checkpoint to restore; the state directory is left as it is"
                            .into(),
                });
            }
            if let Some(aside) =
                checkpoint::restore::set_aside(dir, checkpoint::restore::Aside::Damaged)?
            {
                tracing::warn!(moved_to = %aside.display(), "set the state directory's previous state aside, to restore the newest checkpoint in its place");
            }
            match checkpoint::restore::restore_latest(url, dir)? {
                Some(md) => Some(md),
                None => {
                    return Err(RunError::Restore {
                        url: url.clone(),
                        message:
                            "no checkpoint could be restored (each one's error is logged above)"
                                .into(),
                    })
                }
            }
        }
        (Some(url), _) => {
            if has_state {
                return Err(RunError::Restore {
                    url: url.clone(),
                    message: format!(
                        "the state directory {} already holds a state; restore into an empty one",
                        dir.display()
                    ),
                });
            }
            Some(checkpoint::restore::restore(url, dir)?)
        }
        (None, Some(url)) if !has_state => match checkpoint::restore::restore_latest(url, dir)? {
            Some(md) => Some(md),
            None => initial_savepoint(opts, dir)?,
        },
        (None, None) if !has_state => initial_savepoint(opts, dir)?,
        (None, Some(url)) => restore_if_behind(url, dir)?,
        _ => None,
    };
    if let Some(md) = restored {
        tracing::info!(checkpoint = md.id, kind = ?md.kind, "restored from object storage");
        metrics.checkpoint_restored(md.created_unix_ms as f64 / 1e3);
        if md.key_groups != pipeline.key_groups {
            crate::store::repartition(dir, pipeline.key_groups)?;
        }
    }
    Ok(())
}

/// Replaces the local state with the newest checkpoint in storage when
/// another runner went on from an older one (see
/// [`checkpoint::restore::newer_than_local`]). Storage that cannot be read
/// leaves the local state in place: it is consistent on its own, and the
/// checkpoint thread never mixes its files with another runner's.
fn restore_if_behind(
    url: &str,
    dir: &Path,
) -> Result<Option<checkpoint::metadata::Metadata>, RunError> {
    let storage = CheckpointStorage::from_url(url).map_err(CheckpointError::from)?;
    let newer = match checkpoint::restore::newer_than_local(&storage, dir) {
        Ok(Some(newer)) => newer,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::warn!(error = %e, "cannot compare the local state with the checkpoints in storage; going on from the local state");
            return Ok(None);
        }
    };
    let local = crate::store::Manifest::read(dir)
        .ok()
        .flatten()
        .and_then(|m| m.stored_checkpoint);
    if let Some(aside) = checkpoint::restore::set_aside(dir, checkpoint::restore::Aside::Behind)? {
        tracing::warn!(
            checkpoint = newer.id,
            local_checkpoint = ?local,
            moved_to = %aside.display(),
            "storage holds a newer checkpoint than the one the local state goes on from (another runner went on from an older one): set the local state aside to restore the newest checkpoint"
        );
    }
    match checkpoint::restore::restore_latest(url, dir)? {
        Some(md) => Ok(Some(md)),
        None => Err(RunError::Restore {
            url: url.to_string(),
            message: "no checkpoint could be restored (each one's error is logged above)".into(),
        }),
    }
}

/// Whether `dir` holds a state: a MANIFEST, or state files without one (a
/// damaged state, which opening refuses); files of an interrupted restore
/// are not one.
fn holds_state(dir: &Path) -> bool {
    if dir.join("MANIFEST").exists() {
        return true;
    }
    if dir.join(checkpoint::restore::RESTORING).exists() {
        return false;
    }
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(|e| e.ok()).any(|e| {
                e.file_name().to_str().is_some_and(|n| {
                    n.starts_with("snapshot-") || crate::store::parse_segment_name(n).is_some()
                })
            })
        })
        .unwrap_or(false)
}

/// Where savepoints go: `checkpoints.savepointUrl`, else `savepoints/` under
/// the checkpoint URL, else under the state directory.
pub fn savepoint_base(pipeline: &Pipeline, state: Option<&Path>) -> String {
    let cp = &pipeline.checkpoints;
    cp.savepoint_url
        .clone()
        .unwrap_or_else(|| match (&cp.url, state) {
            (Some(url), _) => format!("{}/savepoints", url.trim_end_matches('/')),
            (None, Some(state)) => state.join("savepoints").display().to_string(),
            (None, None) => "savepoints".to_string(),
        })
}

/// `--initial-savepoint`, restored into the empty `dir`, if given.
fn initial_savepoint(
    opts: &RunOptions,
    dir: &Path,
) -> Result<Option<checkpoint::metadata::Metadata>, RunError> {
    let Some(url) = &opts.initial_savepoint else {
        return Ok(None);
    };
    tracing::info!(savepoint = %url, "no state and no checkpoint yet: starting from the initial savepoint");
    Ok(Some(checkpoint::restore::restore(url, dir)?))
}

fn start_coordinator(
    opts: &RunOptions,
    pipeline: &Arc<Pipeline>,
    store: &Store,
    spec_json: &str,
    fence: Option<Arc<Fence>>,
) -> Result<Coordinator, RunError> {
    let cp = &pipeline.checkpoints;
    let storage = cp
        .url
        .as_deref()
        .map(CheckpointStorage::from_url)
        .transpose()
        .map_err(CheckpointError::from)?
        .map(Arc::new);
    let savepoints = savepoint_base(pipeline, opts.state.as_deref());
    Ok(Coordinator::start(
        store.committer(),
        CoordinatorConfig {
            storage,
            savepoints,
            retain: cp.retain,
            pipeline_name: pipeline.name.clone(),
            pipeline: serde_json::from_str(spec_json).expect("saved pipelines are JSON"),
            compiled: pipeline.clone(),
            fence,
        },
    ))
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
    let mut value =
        crate::config::parse_with_variables(&text, &path.display().to_string(), &|name| {
            std::env::var(name).ok()
        })?;
    // Client properties of sources and sinks may carry credentials expanded
    // from `${VAR}`: they never reach the state directory or checkpoints.
    for list in ["sources", "sinks"] {
        if let Some(items) = value.get_mut(list).and_then(|s| s.as_array_mut()) {
            for item in items {
                if let Some(obj) = item.as_object_mut() {
                    obj.remove("properties");
                }
            }
        }
    }
    Ok(serde_json::to_string_pretty(&value).expect("JSON values serialize"))
}

fn open_input(
    opts: &RunOptions,
    pipeline: &Pipeline,
    outputs: &[own_output::Output],
) -> Result<(String, Box<dyn BufRead + Send>), RunError> {
    let refuse = |input: String, metadata: Option<std::fs::Metadata>| match metadata
        .and_then(|m| own_output::find(&m, outputs))
    {
        Some(o) => Err(RunError::InputIsOutput {
            input,
            role: o.role,
            output: o.path.display().to_string(),
        }),
        None => Ok(()),
    };
    let arg = opts
        .input
        .clone()
        .or_else(|| match pipeline.sources.first() {
            Some(SourceSpec::File { path, .. }) => Some(InputArg::File(PathBuf::from(path))),
            // A Kafka source is read by its own loop; only `--input` gets here.
            Some(SourceSpec::Stdin { .. }) | Some(SourceSpec::Kafka(_)) | None => {
                Some(InputArg::Stdin)
            }
        });
    match arg {
        Some(InputArg::File(path)) if path.as_os_str() != "-" => {
            let shown = path.display().to_string();
            let file = std::fs::File::open(&path).map_err(|source| RunError::Input {
                path: shown.clone(),
                source,
            })?;
            refuse(shown.clone(), file.metadata().ok())?;
            Ok((shown, Box::new(BufReader::with_capacity(1 << 20, file))))
        }
        _ => {
            refuse("stdin".to_string(), own_output::stdin_metadata())?;
            Ok((
                "stdin".to_string(),
                Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
            ))
        }
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_of_sources_and_sinks_never_reach_the_saved_spec() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(
            &path,
            "name: p\nsources:\n  - type: kafka\n    properties: {sasl.password: \"${KITH_TEST_SECRET_A}\"}\n\
             sinks:\n  - type: kafka\n    properties: {sasl.password: \"${KITH_TEST_SECRET_B}\"}\n",
        )
        .unwrap();
        // Variables unique to this test: nothing else reads them.
        std::env::set_var("KITH_TEST_SECRET_A", "sentinel-source-secret");
        std::env::set_var("KITH_TEST_SECRET_B", "sentinel-sink-secret");
        let saved = super::pipeline_json(&path).unwrap();
        assert!(!saved.contains("sentinel-"), "{saved}");
        assert!(saved.contains("\"sinks\""), "the rest is kept: {saved}");
    }
}
