//! `kith-operator`: the controller binary, and the CRD generator.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use futures::FutureExt;
use kith_operator::admin::{self, AdminState};
use kith_operator::leader::Elector;
use kith_operator::metrics::Metrics;
use kith_operator::{controller, crdgen};
use kube::runtime::events::Reporter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "kith-operator",
    version,
    about = "Reconciles Kith ProfilePipelines into runner workloads"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (with leader election) against the cluster of
    /// KUBECONFIG or of the pod's service account.
    Run {
        /// Namespaces to watch (repeat, or comma-separate); all when none.
        #[arg(
            long = "namespace",
            env = "KITH_WATCH_NAMESPACES",
            value_delimiter = ','
        )]
        namespaces: Vec<String>,
        /// Address of /metrics, /healthz and /readyz.
        #[arg(long, default_value = "0.0.0.0:8080")]
        admin: std::net::SocketAddr,
        /// Namespace of the leader Lease: the operator's own in a cluster
        /// (POD_NAMESPACE, or the service account's), the kubeconfig
        /// context's namespace outside one.
        #[arg(long, env = "POD_NAMESPACE")]
        lease_namespace: Option<String>,
        /// Name of the leader Lease.
        #[arg(long, default_value = "kith-operator")]
        lease_name: String,
        /// This replica's name in the Lease and in Events (the pod name).
        #[arg(long, env = "POD_NAME")]
        identity: Option<String>,
    },
    /// Write the CRD manifests into DIR (one file per CRD) and, with
    /// `--reference`, the configuration reference generated from the same
    /// schemas (the pipeline file's and both CRDs').
    Crdgen {
        #[arg(long, default_value = "crds")]
        out: PathBuf,
        #[arg(long)]
        reference: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube_runtime=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: a pod's log (a file, a
        // collector) gets plain text, not escape codes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match Cli::parse().command {
        Command::Crdgen { out, reference } => {
            let mut files = vec![(out, crdgen::manifests())];
            if let Some(dir) = reference {
                files.push((dir, crdgen::references()));
            }
            for (dir, contents) in files {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                for (file, text) in contents {
                    let path = dir.join(file);
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("{}", path.display());
                }
            }
            Ok(())
        }
        Command::Run {
            namespaces,
            admin,
            lease_namespace,
            lease_name,
            identity,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let identity = identity.unwrap_or_else(default_identity);
            let namespaces: Vec<String> =
                namespaces.into_iter().filter(|n| !n.is_empty()).collect();
            runtime.block_on(run(
                namespaces,
                admin,
                lease_namespace,
                lease_name,
                identity,
            ))
        }
    }
}

async fn run(
    namespaces: Vec<String>,
    admin_address: std::net::SocketAddr,
    lease_namespace: Option<String>,
    lease_name: String,
    identity: String,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(admin_address)
        .await
        .with_context(|| format!("binding the admin port {admin_address}"))?;
    let router = admin::router(AdminState {
        metrics: metrics.clone(),
        ready: ready.clone(),
    });
    tokio::spawn(async move { axum::serve(listener, router).await });

    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes client configuration (KUBECONFIG or in-cluster service account)")?;
    client
        .apiserver_version()
        .await
        .context("the Kubernetes API server does not answer")?;
    ready.store(true, Ordering::Relaxed);
    // Never a fixed namespace that may not exist: run from a workstation,
    // the kubeconfig's context says where the operator stands.
    let lease_namespace = lease_namespace
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| client.default_namespace().to_string());
    tracing::info!(identity = %identity, namespaces = ?namespaces, lease = %format!("{lease_namespace}/{lease_name}"), "kith-operator started; waiting for the leader Lease");

    let elector = Elector::new(
        client.clone(),
        &lease_namespace,
        lease_name,
        identity.clone(),
    );
    // Holding runs for the whole life of the process: it first waits for
    // the Lease, then renews it.
    let holding = elector.hold();
    tokio::pin!(holding);
    tokio::select! {
        lost = &mut holding => {
            tracing::error!(error = %lost, "lost the leader Lease before leading; exiting");
            std::process::exit(1);
        }
        _ = elector.until_leader() => {}
        _ = stop_signal() => return Ok(()),
    }
    tracing::info!(identity = %identity, "became the leader");
    metrics.leader.set(1);

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        let _ = stop_rx.changed().await;
    }
    .shared();
    let reporter = Reporter {
        controller: "kith-operator".into(),
        instance: Some(identity),
    };
    let controllers = controller::run(client, &namespaces, reporter, metrics.clone(), shutdown);
    tokio::pin!(controllers);
    tokio::select! {
        lost = &mut holding => {
            // Another replica may already reconcile: stop at once, and let
            // the restarted process compete again.
            tracing::error!(error = %lost, "lost leadership; exiting");
            std::process::exit(1);
        }
        _ = stop_signal() => {
            tracing::info!("stopping: finishing in-flight reconciles");
            let _ = stop_tx.send(true);
            (&mut controllers).await;
            elector.release().await;
        }
        _ = &mut controllers => {}
    }
    Ok(())
}

async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "kith-operator".into());
    format!("{host}-{}", std::process::id())
}
