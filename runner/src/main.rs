//! `kith-runner`: the command line of docs/design.md §4.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use kith_runner::admin::auth::AuthChoice;
use kith_runner::admin::tls::TlsSettings;
use kith_runner::config::Pipeline;
use kith_runner::engine::Engine;
use kith_runner::run::{run, InputArg, RunOptions};
use kith_runner::store::Store;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

// The engine allocates and frees many small objects per observation; mimalloc
// handles that pattern markedly better than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "kith-runner",
    version,
    about = "Kith runner: unified, connected profiles from event streams"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline over its input, keeping state in --state.
    Run {
        /// The pipeline file (YAML; `${VAR}` expanded from the environment).
        pipeline: PathBuf,
        /// Input file of JSON lines, or `-` for standard input (default: the
        /// pipeline's first source).
        #[arg(long)]
        input: Option<PathBuf>,
        /// State directory (persistent); without it, state lives in memory only.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Stop at the end of a bounded input (files and stdin always end; Kafka
        /// sources stop at the end offsets seen at start).
        #[arg(long)]
        exit_at_end: bool,
        /// Start from this checkpoint or savepoint folder (`file:///...`, a
        /// path, or `s3://bucket/prefix/...`) instead of --state's contents;
        /// --state must be empty. `latest` restores the newest complete
        /// checkpoint in `checkpoints.url` in place of a damaged state (moved
        /// into --state's `damaged-<time>` folder, never deleted). Without
        /// it, an empty --state is restored from the latest complete
        /// checkpoint in `checkpoints.url`.
        #[arg(long)]
        restore: Option<String>,
        /// Start from this savepoint (or checkpoint) folder when there is no
        /// state yet: --state is empty and `checkpoints.url` holds no
        /// complete checkpoint. Unlike --restore, a restart that finds a
        /// checkpoint continues from it (how the operator starts a rollback).
        #[arg(long, conflicts_with = "restore")]
        initial_savepoint: Option<String>,
        /// Serve the admin port (metrics, health, lookups, savepoints) here,
        /// for example 0.0.0.0:9249.
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        /// `kubernetes`: profiles and savepoints on the admin port need a
        /// Kubernetes bearer token allowed `get` on `profilepipelines/profiles`
        /// (lookups) or `create` on `profilesnapshots` (savepoints), checked
        /// with TokenReview and SubjectAccessReview. The operator sets it.
        #[arg(long, value_parser = ["kubernetes"], conflicts_with = "admin_token_file")]
        admin_auth: Option<String>,
        /// Profiles and savepoints on the admin port need `Authorization:
        /// Bearer TOKEN` with the token this file holds. Without this or
        /// --admin-auth, the admin port may only listen on loopback.
        #[arg(long)]
        admin_token_file: Option<PathBuf>,
        /// Serve the admin port over HTTPS with this certificate chain (PEM).
        #[arg(long, requires = "admin_tls_key")]
        admin_tls_cert: Option<PathBuf>,
        /// The private key (PEM) of --admin-tls-cert.
        #[arg(long, requires = "admin_tls_cert")]
        admin_tls_key: Option<PathBuf>,
    },
    /// Delete the files of the pipeline's pruned ProfileSnapshots and release
    /// them (what a runner does as it runs; the operator starts this as a Job
    /// while the pipeline is suspended). Needs the pipeline's Lease; exits
    /// non-zero while a pruned snapshot is left.
    ReleaseSnapshots {
        /// The pipeline file, for where its savepoints are kept.
        pipeline: PathBuf,
        /// The runners' state directory (savepoints default to a folder in
        /// it when the pipeline has no checkpoint URL).
        #[arg(long)]
        state: Option<PathBuf>,
        /// How long to wait for the pipeline's Lease, in seconds.
        #[arg(long, default_value_t = 120)]
        wait: u64,
    },
    /// Ask a running runner, through its admin port, for a savepoint; prints
    /// where it was written.
    Savepoint {
        /// The runner's admin address, HOST:PORT.
        #[arg(long)]
        admin: String,
        /// A file holding the bearer token the runner asks for (its
        /// --admin-token-file, or a Kubernetes token allowed to create
        /// profilesnapshots).
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// Print every profile, one JSON object per line, sorted by profile id.
    Export {
        #[arg(long)]
        state: PathBuf,
    },
    /// Print the profile(s) holding an identifier, given as TYPE:VALUE.
    Lookup {
        #[arg(long)]
        state: PathBuf,
        identifier: String,
        /// Indent the JSON for reading.
        #[arg(long)]
        pretty: bool,
    },
    /// Explain why two identifiers are, or are not, in one profile.
    Explain {
        #[arg(long)]
        state: PathBuf,
        first: String,
        second: String,
    },
    /// Write a synthetic adversarial workload of canonical observations to stdout.
    Generate {
        #[arg(long)]
        people: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to write the truth: which person each record belongs to.
        #[arg(long)]
        truth: Option<PathBuf>,
    },
    /// Estimate an entity-resolution model (m, u, prior, term frequencies)
    /// from an input, without labels, and write it as JSON.
    Train {
        pipeline: PathBuf,
        #[arg(long)]
        input: PathBuf,
        /// Where to write the model (default: the pipeline's `resolution.model`).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Seed of the random pairs that estimate `u`.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Score an export against a generated truth (pairwise precision, recall, F1).
    Evaluate {
        #[arg(long)]
        export: PathBuf,
        #[arg(long)]
        truth: PathBuf,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KITH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: a pod's log (a file, a
        // collector) gets plain text, not escape codes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    exit_on_any_panic();
    if let Err(e) = dispatch(Cli::parse()) {
        // `kith-runner lookup ... | head -1`: the reader has what it wanted.
        if reader_went_away(&e) {
            std::process::exit(0);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Whether writing to standard output failed because its reader closed it.
fn reader_went_away(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// One line on standard output; an error, not a panic, when nobody reads it.
fn say(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// A panic in any thread (restore, decode, checkpoint, sinks, admin) ends
/// the process at once with the reason and exit code 70, before the thread
/// unwinds: no other thread carries on with what the panicking one left
/// half done (an engine missing part of its state must never be
/// checkpointed or compacted). The state on disk is what a crash at that
/// instant leaves, which a restart recovers exactly.
fn exit_on_any_panic() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        eprintln!("error: the {name} thread panicked: {info}");
        tracing::error!(thread = name, "panicked: {info}");
        std::process::exit(70);
    }));
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            pipeline,
            input,
            state,
            exit_at_end,
            restore,
            initial_savepoint,
            admin,
            admin_auth,
            admin_token_file,
            admin_tls_cert,
            admin_tls_key,
        } => {
            let input = input.map(|p| {
                if p.as_os_str() == "-" {
                    InputArg::Stdin
                } else {
                    InputArg::File(p)
                }
            });
            // SIGTERM (Kubernetes) and SIGINT stop reading; the run then
            // takes a final checkpoint and exits cleanly.
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(signal, stop.clone())
                    .context("cannot install the signal handler")?;
            }
            let summary = run(&RunOptions {
                pipeline,
                input,
                state,
                exit_at_end,
                restore,
                initial_savepoint,
                admin,
                admin_auth: match (admin_auth, admin_token_file) {
                    (Some(_), _) => AuthChoice::Kubernetes,
                    (None, Some(file)) => AuthChoice::TokenFile(file),
                    (None, None) => AuthChoice::None,
                },
                admin_tls: admin_tls_cert
                    .zip(admin_tls_key)
                    .map(|(certificate, key)| TlsSettings { certificate, key }),
                stop: Some(stop),
                kubernetes: kith_runner::kubernetes::Identity::from_env(),
            })?;
            say(&serde_json::to_string(&summary)?)?;
        }
        Command::ReleaseSnapshots {
            pipeline,
            state,
            wait,
        } => {
            let loaded = Pipeline::load(&pipeline)?;
            let savepoints = kith_runner::run::savepoint_base(&loaded, state.as_deref());
            let outcome = kith_runner::kubernetes::release::release_snapshots(
                kith_runner::kubernetes::Identity::from_env(),
                &savepoints,
                std::time::Duration::from_secs(wait),
            )?;
            say(
                &serde_json::json!({"released": outcome.released, "left": outcome.left})
                    .to_string(),
            )?;
            if outcome.left > 0 {
                bail!(
                    "{} pruned snapshot(s) are still held; the runner's log says why",
                    outcome.left
                );
            }
        }
        Command::Savepoint { admin, token_file } => {
            let token = token_file
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .map(|t| t.trim().to_string())
                        .with_context(|| format!("cannot read the token file {}", path.display()))
                })
                .transpose()?;
            let body = post(&admin, "/v1/savepoints", token.as_deref())?;
            say(&body)?;
        }
        Command::Export { state } => {
            let engine = load(&state)?;
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            for view in engine.export() {
                serde_json::to_writer(&mut out, &view)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        Command::Lookup {
            state,
            identifier,
            pretty,
        } => {
            let engine = load(&state)?;
            let (t, v) = split_identifier(&identifier)?;
            let views = engine.lookup(t, v)?;
            if views.is_empty() {
                bail!("no profile holds {t}:{v}");
            }
            for view in views {
                let text = if pretty {
                    serde_json::to_string_pretty(&view)?
                } else {
                    serde_json::to_string(&view)?
                };
                say(&text)?;
            }
        }
        Command::Explain {
            state,
            first,
            second,
        } => {
            let engine = load(&state)?;
            let explanation =
                engine.explain(split_identifier(&first)?, split_identifier(&second)?)?;
            for line in explanation.lines {
                say(&line)?;
            }
        }
        Command::Generate {
            people,
            seed,
            truth,
        } => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
            let mut truth_file = match &truth {
                Some(p) => Some(BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot create truth file {}", p.display()))?,
                )),
                None => None,
            };
            let opts = kith_runner::generate::GenerateOptions { people, seed };
            kith_runner::generate::generate(
                &opts,
                &mut out,
                truth_file.as_mut().map(|t| t as &mut dyn Write),
            )?;
            out.flush()?;
            if let Some(mut t) = truth_file {
                t.flush()?;
            }
        }
        Command::Train {
            pipeline,
            input,
            output,
            seed,
        } => {
            // Training never reads the model it is about to replace: a
            // broken model file must not stand in the way of a new one.
            let p = Pipeline::load_for_training(&pipeline)?;
            let output = output
                .or_else(|| p.model_path.clone())
                .context("say where to write the model: --output FILE, or `resolution.model` in the pipeline")?;
            let (versions, bad) = kith_runner::run::current_versions(&p, &input)?;
            let opts = kith_runner::resolution::train::TrainOptions {
                seed,
                ..Default::default()
            };
            let model = kith_runner::resolution::train::train(&p, &versions, &opts)?;
            for line in kith_runner::resolution::train::report(&model) {
                eprintln!("{line}");
            }
            std::fs::write(&output, serde_json::to_string_pretty(&model)? + "\n")
                .with_context(|| format!("cannot write model {}", output.display()))?;
            eprintln!(
                "model written to {} ({} records, {} candidate pairs, prior {:.3e}; {bad} input lines skipped as invalid)",
                output.display(),
                model.training.get("records").copied().unwrap_or(0.0),
                model.training.get("candidatePairs").copied().unwrap_or(0.0),
                model.prior
            );
        }
        Command::Evaluate { export, truth } => {
            let open = |p: &Path| -> Result<std::io::BufReader<std::fs::File>> {
                Ok(std::io::BufReader::new(
                    std::fs::File::open(p)
                        .with_context(|| format!("cannot open {}", p.display()))?,
                ))
            };
            let scores = kith_runner::evaluate::pairwise(&mut open(&export)?, &mut open(&truth)?)?;
            say(&serde_json::to_string(&scores)?)?;
        }
    }
    Ok(())
}

/// A minimal HTTP/1.1 POST over loopback or the pod network: the admin API
/// is plain HTTP and the command needs nothing more.
fn post(address: &str, path: &str, token: Option<&str>) -> Result<String> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(address)
        .with_context(|| format!("cannot reach the runner's admin port at {address}"))?;
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if !status.starts_with('2') {
        bail!("the runner answered {status}: {}", body.trim());
    }
    Ok(body.trim().to_string())
}

/// Splits `TYPE:VALUE` at the first colon (values may contain colons).
fn split_identifier(s: &str) -> Result<(&str, &str)> {
    match s.split_once(':') {
        Some((t, v)) if !t.is_empty() && !v.is_empty() => Ok((t, v)),
        _ => bail!("identifier `{s}` is not TYPE:VALUE, for example email:ann@example.com"),
    }
}

/// Rebuilds the engine from a state directory, with the pipeline it was run with.
fn load(state: &Path) -> Result<Engine> {
    let spec = Store::saved_pipeline(state)?;
    let pipeline = Arc::new(
        Pipeline::from_saved_json(&spec, state)
            .context("the pipeline saved in the state directory is no longer valid")?,
    );
    let versions = Store::read(state, &pipeline)?;
    let mut engine = Engine::new(pipeline);
    for v in &versions {
        engine.apply(v);
    }
    engine.clear_events();
    Ok(engine)
}
