//! The test services of docs/design.md §5 (`tests/services/`), from Rust tests.
//!
//! [`require`] makes sure the named services run and returns the environment
//! they wrote to `target/services.env`. It may be called from any test, in
//! any order, and from test binaries running in parallel: starting happens
//! under an exclusive lock on `target/services.lock` (util-linux `flock`
//! around `tests/services/up.sh`), so two tests never start two brokers.
//! When the environment file already names every needed variable and each
//! service accepts TCP connections, `require` returns without running
//! `up.sh` at all (which, even for running services, spends a second or two
//! asking Kafka for its topics). Services are left running; `make
//! services-down` stops them.

use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long to wait for another test binary holding the lock: Kafka and
/// moto start cold in about 25 s, but the first build of the Kubernetes
/// control plane takes about 4 minutes on an idle 2-core machine and over 10
/// on a busy one.
const LOCK_WAIT_SECS: u32 = 1800;

/// The environment written by `tests/services/up.sh`.
#[derive(Debug, Clone)]
pub struct Services {
    vars: HashMap<String, String>,
}

impl Services {
    /// The value of `key`; panics naming the key when `up.sh` did not set it.
    pub fn get(&self, key: &str) -> &str {
        match self.vars.get(key) {
            Some(value) => value,
            None => panic!(
                "{key} is not set in {}: does the service that writes it run? (have: {:?})",
                services_env().display(),
                self.sorted_keys()
            ),
        }
    }

    /// Every variable, for `Command::envs`.
    pub fn envs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every variable, for APIs taking a map.
    pub fn vars(&self) -> &HashMap<String, String> {
        &self.vars
    }

    fn sorted_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }
}

/// Starts `services` (names as `tests/services/up.sh` takes them: `kafka`,
/// `moto`, `kube`) unless they already run, and returns the environment.
/// Panics with `up.sh`'s output when they cannot be started.
pub fn require(services: &[&str]) -> Services {
    if let Some(ready) = already_running(services) {
        return ready;
    }
    let root = workspace_root();
    std::fs::create_dir_all(root.join("target")).expect("create target/");
    // `-o`: the services up.sh spawns must not inherit the lock's descriptor,
    // or the lock would be held for as long as they run.
    let output = Command::new("flock")
        .args([
            "-o",
            "-w",
            &LOCK_WAIT_SECS.to_string(),
            "target/services.lock",
        ])
        .args(["bash", "tests/services/up.sh"])
        .args(services)
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "could not run `flock` (util-linux) to start the test services {services:?}: {e}"
            )
        });
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        panic!(
            "starting the test services {services:?} failed ({}; flock exits 1 after waiting {LOCK_WAIT_SECS} s for the lock):\n{log}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let env = read_services_env().unwrap_or_else(|| {
        panic!(
            "tests/services/up.sh succeeded but wrote no {}:\n{log}",
            services_env().display()
        )
    });
    for service in services {
        for key in required_keys(service) {
            assert!(
                env.vars.contains_key(*key),
                "tests/services/up.sh started {service} but {} lacks {key}:\n{log}",
                services_env().display()
            );
        }
    }
    env
}

/// The environment when every one of `services` is known here, has its
/// variables in `target/services.env` and accepts connections; else `None`.
fn already_running(services: &[&str]) -> Option<Services> {
    let env = read_services_env()?;
    for service in services {
        let probe = probe_key(service)?;
        if required_keys(service)
            .iter()
            .any(|k| !env.vars.contains_key(*k))
        {
            return None;
        }
        if !accepts_connections(&env.vars[probe]) {
            return None;
        }
    }
    Some(env)
}

/// The variables `up.sh` writes for `service`.
fn required_keys(service: &str) -> &'static [&'static str] {
    match service {
        "kafka" => &[
            "KAFKA_BOOTSTRAP",
            "KAFKA_SECURE_BOOTSTRAP",
            "KAFKA_CA_FILE",
            "KAFKA_SCRAM_USER",
            "KAFKA_SCRAM_PASSWORD",
        ],
        "moto" => &[
            "DYNAMODB_ENDPOINT",
            "S3_ENDPOINT",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "MOTO_PYTHON",
        ],
        "kube" => &["KUBECONFIG", "KUBECTL", "KUBE_APISERVER", "KUBE_ETCD"],
        "gremlin" => &["NEPTUNE_ENDPOINT"],
        _ => &[],
    }
}

/// The variable holding the address to probe for `service`; `None` for a
/// service this file does not know, which then always goes through `up.sh`.
fn probe_key(service: &str) -> Option<&'static str> {
    match service {
        "kafka" => Some("KAFKA_BOOTSTRAP"),
        "moto" => Some("S3_ENDPOINT"),
        "kube" => Some("KUBE_APISERVER"),
        "gremlin" => Some("NEPTUNE_ENDPOINT"),
        _ => None,
    }
}

/// True when something accepts a TCP connection at `endpoint`, either
/// `host:port` or `http(s)://host:port[/...]`.
fn accepts_connections(endpoint: &str) -> bool {
    let authority = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let Ok(addrs) = authority.to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok())
}

fn read_services_env() -> Option<Services> {
    let text = std::fs::read_to_string(services_env()).ok()?;
    Some(Services {
        vars: parse_env(&text),
    })
}

/// `KEY=value` lines; blank lines and `#` comments are skipped.
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The workspace root: the nearest folder above this package holding
/// `Cargo.lock` (this file is shared by packages at different depths).
pub fn workspace_root() -> PathBuf {
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    package
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or_else(|| panic!("no Cargo.lock above {}", package.display()))
        .to_path_buf()
}

/// A workspace binary `name` built beside the running test executable
/// (`target/<profile>/deps/TEST` → `target/<profile>/NAME`), for tests of a
/// package that does not own it; panics saying how to build it.
pub fn built_binary(name: &str) -> String {
    let exe = std::env::current_exe().expect("the test executable's path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join(name))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not built beside {}: build it first (cargo build --bins -p {name}, or make e2e)",
                exe.display()
            )
        });
    path.display().to_string()
}

fn services_env() -> PathBuf {
    workspace_root().join("target/services.env")
}
