//! The `kith-runner` binary as tests drive it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The runner binary: this package's own when the tests are the runner's,
/// else the one beside the test executable (`target/<profile>/`), built
/// before the tests run (`make e2e` does).
pub fn binary() -> &'static str {
    static BINARY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| match option_env!("CARGO_BIN_EXE_kith-runner") {
        Some(own) => own.to_string(),
        None => super::services::built_binary("kith-runner"),
    })
}

pub fn example(path: &str) -> String {
    super::services::workspace_root()
        .join("examples")
        .join(path)
        .display()
        .to_string()
}

/// Runs the runner to completion; panics with its stderr on failure.
pub fn run_ok(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = output(args, envs);
    assert!(
        out.status.success(),
        "kith-runner {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn output(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(binary())
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("the runner starts")
}

/// A runner in the background, killed when dropped (so that a failing test
/// leaves no process behind).
pub struct Running(pub Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts the runner in the background, its output to files in `logs`.
pub fn spawn(args: &[&str], envs: &[(&str, &str)], logs: &Path, name: &str) -> Running {
    let child = Command::new(binary())
        .args(args)
        .envs(envs.iter().copied())
        .stdout(std::fs::File::create(logs.join(format!("{name}.out"))).unwrap())
        .stderr(std::fs::File::create(logs.join(format!("{name}.err"))).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .expect("the runner starts");
    Running(child)
}

/// The summary line (the last line of stdout) as JSON.
pub fn summary(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().expect("a summary line"))
        .expect("the summary is JSON")
}

/// `export --state`, lines sorted.
pub fn export(state: &Path) -> Vec<String> {
    let mut lines: Vec<String> = run_ok(&["export", "--state", state.to_str().unwrap()], &[])
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

/// The state of a file run over `input` with the canonical example pipeline.
pub fn reference_export(input: &Path, dir: &Path) -> Vec<String> {
    let state: PathBuf = dir.join("reference-state");
    run_ok(
        &[
            "run",
            &example("canonical/pipeline.yaml"),
            "--input",
            input.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
        &[],
    );
    export(&state)
}

/// `generate` output as lines.
pub fn generate(people: u64, seed: u64) -> Vec<Vec<u8>> {
    run_ok(
        &[
            "generate",
            "--people",
            &people.to_string(),
            "--seed",
            &seed.to_string(),
        ],
        &[],
    )
    .lines()
    .map(|l| l.as_bytes().to_vec())
    .collect()
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.1 request; `(status, body)`, or `None` when nothing listens.
pub fn http(addr: &str, method: &str, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// `kith_observations_total` on a runner's admin port, or `None` when it
/// does not answer.
pub fn observations_applied(admin: &str) -> Option<u64> {
    let (_, body) = http(admin, "GET", "/metrics")?;
    body.lines()
        .find_map(|l| l.strip_prefix("kith_observations_total "))
        .and_then(|v| v.trim().parse().ok())
}

/// Polls `check` every 50 ms for up to `seconds`.
pub fn wait_until(seconds: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// `TYPE:VALUE` of the first email in a workload, URL-safe enough for a query.
pub fn reference_probe(lines: &[Vec<u8>]) -> String {
    for l in lines {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(l) else {
            continue;
        };
        if let Some(ids) = v["identifiers"].as_array() {
            for i in ids {
                if i["type"] == "email" {
                    let value = i["value"].as_str().unwrap().trim().to_lowercase();
                    if value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".@-_".contains(c))
                    {
                        return format!("email:{value}");
                    }
                }
            }
        }
    }
    panic!("no plain email in the workload")
}

/// Writes lines of JSON (or anything) to a file, one per line.
pub fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    std::fs::write(path, lines.join(&b'\n')).unwrap();
}

/// Retractions, far in the future, of the records of the first `n` lines.
pub fn retractions(lines: &[Vec<u8>], n: usize) -> Vec<Vec<u8>> {
    lines
        .iter()
        .take(n)
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).ok()?;
            Some(
                serde_json::json!({"source": v["source"], "id": v["id"],
                    "ts": "2100-01-01T00:00:00Z", "retract": true})
                .to_string()
                .into_bytes(),
            )
        })
        .collect()
}

/// `run PIPELINE --input INPUT --state STATE` to completion.
pub fn run_file(pipeline: &str, input: &Path, state: &Path, envs: &[(&str, &str)]) -> String {
    run_ok(
        &[
            "run",
            pipeline,
            "--input",
            input.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
        envs,
    )
}

/// Values no query language should ever read as code, and a long one, as
/// the sink tests feed them to every store.
pub fn hostile_values() -> Vec<String> {
    vec![
        "it's a \"quote\" and a \\backslash".to_string(),
        "'); g.V().drop(); //".to_string(),
        "line\nbreak\ttab\r\u{1}".to_string(),
        "emoji 🦀 and ünïcödé ${x}".to_string(),
        "x".repeat(10_000),
    ]
}

/// One person per value, holding it as a `cookie` identifier and a `note`.
pub fn hostile_observations(values: &[String]) -> Vec<Vec<u8>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::json!({"source": "crm", "id": format!("h-{i}"), "ts": "2026-01-01T00:00:00Z",
                "kind": "person", "identifiers": [{"type": "cookie", "value": v}],
                "attributes": {"note": v}})
            .to_string()
            .into_bytes()
        })
        .collect()
}

/// The seed of a test's random choices: `KITH_TEST_SEED`, else the clock;
/// printed so that a failure can be repeated.
pub fn test_seed() -> u64 {
    let seed = std::env::var("KITH_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(1)
        });
    eprintln!("seed {seed} (KITH_TEST_SEED={seed} repeats it)");
    seed
}
