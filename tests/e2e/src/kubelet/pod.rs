//! One pod on the stand-in node: its container process, its probes, its
//! restarts with backoff, and its graceful stop.
//!
//! As a kubelet does it: a container that exits is started again in the
//! same pod (its `emptyDir` volumes kept) after a backoff that doubles per
//! crash and resets once a run lasted long enough; probes start with the
//! startup probe, then readiness decides whether the pod counts as ready
//! and liveness whether the container is restarted; a pod being deleted
//! gets SIGTERM, then SIGKILL when its grace period ends.

use super::probe;
use super::template::{HttpProbe, Launch};
use super::Timing;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the container is not running.
#[derive(Debug, Clone, PartialEq)]
pub enum Waiting {
    /// Its configuration cannot be built yet (a missing Secret or ConfigMap).
    CreateContainerConfigError(String),
    /// No executable is known for its image.
    ImagePullBackOff(String),
    /// It exited and waits for its restart.
    CrashLoopBackOff(String),
}

/// What a stop is for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    /// The pod is deleted.
    Delete,
    /// The liveness or startup probe failed: the container is restarted.
    Restart,
}

pub struct Pod {
    pub name: String,
    pub deployment: String,
    /// Hash of the pod template it was made from.
    pub template: String,
    pub root: PathBuf,
    pub launch: Option<Launch>,
    pub executable: Option<PathBuf>,
    pub waiting: Option<Waiting>,
    pub restarts: u32,
    /// `restartPolicy: OnFailure` (a Job's pod): a container that exits 0
    /// has succeeded and is not started again. Otherwise `Always`.
    pub on_failure_only: bool,
    /// It exited 0 under `OnFailure`.
    pub succeeded: bool,
    child: Option<Child>,
    started: Option<Instant>,
    next_start: Instant,
    backoff: Duration,
    stopping: Option<(Stop, Instant)>,
    probes: Probes,
}

#[derive(Default)]
struct Probes {
    started: bool,
    ready: bool,
    startup_failures: u32,
    readiness_failures: u32,
    liveness_failures: u32,
    next: Option<Instant>,
}

/// What a tick left of the pod.
#[derive(Debug, PartialEq)]
pub enum After {
    Present,
    /// Deleted and its container gone: forget it.
    Gone,
}

impl Pod {
    pub fn new(name: String, deployment: String, template: String, root: PathBuf) -> Pod {
        Pod {
            name,
            deployment,
            template,
            root,
            launch: None,
            executable: None,
            waiting: None,
            restarts: 0,
            on_failure_only: false,
            succeeded: false,
            child: None,
            started: None,
            next_start: Instant::now(),
            backoff: Duration::ZERO,
            stopping: None,
            probes: Probes::default(),
        }
    }

    /// Its container's configuration is built; without an executable for
    /// its image, it waits in `ImagePullBackOff`.
    pub fn configured(&mut self, launch: Launch, executable: Option<PathBuf>) {
        self.waiting = executable.is_none().then(|| {
            Waiting::ImagePullBackOff(format!("image {} is not known to this node", launch.image))
        });
        self.executable = executable;
        self.launch = Some(launch);
    }

    pub fn ready(&self) -> bool {
        self.child.is_some() && self.probes.ready && self.stopping.is_none()
    }

    pub fn terminating(&self) -> bool {
        matches!(self.stopping, Some((Stop::Delete, _)))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.join("container.log")
    }

    /// Starts deleting the pod: SIGTERM now, SIGKILL after the grace period.
    pub fn delete(&mut self, timing: &Timing) {
        if self.terminating() {
            return;
        }
        let grace = self
            .launch
            .as_ref()
            .map_or(Duration::ZERO, |l| l.grace)
            .min(timing.grace_cap);
        self.stopping = Some((Stop::Delete, Instant::now() + grace));
        self.signal(libc::SIGTERM);
    }

    /// Sends `signal` to the container's process, if it runs.
    pub fn signal(&self, signal: i32) -> bool {
        let Some(pid) = self.pid().and_then(|p| i32::try_from(p).ok()) else {
            return false;
        };
        // SAFETY: kill(2) on a pid this pod spawned and has not yet reaped,
        // so it cannot name another process.
        unsafe { libc::kill(pid, signal) == 0 }
    }

    pub fn tick(&mut self, timing: &Timing) -> After {
        let now = Instant::now();
        if let Some(child) = &mut self.child {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                self.probes = Probes::default();
                self.note(&format!("container exited: {status}"));
                if let Some((Stop::Delete, _)) = self.stopping {
                    return self.gone();
                }
                self.stopping = None;
                if status.success() && self.on_failure_only {
                    self.succeeded = true;
                    return After::Present;
                }
                self.crashed(&format!("exited with {status}"), timing, now);
                return After::Present;
            }
        }
        if let Some((stop, deadline)) = self.stopping {
            if self.child.is_none() {
                if stop == Stop::Delete {
                    return self.gone();
                }
            } else if now >= deadline {
                self.signal(libc::SIGKILL);
            }
            return After::Present;
        }
        if self.child.is_some() {
            self.probe(timing, now);
        } else if now >= self.next_start && !self.succeeded {
            self.start(timing, now);
        }
        After::Present
    }

    fn gone(&mut self) -> After {
        // A kubelet removes a deleted pod's volumes; the log stays
        // for the test to read.
        let _ = std::fs::remove_dir_all(super::template::fs_root(&self.root));
        After::Gone
    }

    fn crashed(&mut self, why: &str, timing: &Timing, now: Instant) {
        self.restarts += 1;
        let ran_long = self
            .started
            .is_some_and(|s| now.duration_since(s) >= timing.backoff_reset);
        self.backoff = if ran_long || self.backoff.is_zero() {
            timing.backoff_initial
        } else {
            (self.backoff * 2).min(timing.backoff_max)
        };
        self.next_start = now + self.backoff;
        self.waiting = Some(Waiting::CrashLoopBackOff(format!(
            "{why}; restarting in {:?}",
            self.backoff
        )));
    }

    fn start(&mut self, timing: &Timing, now: Instant) {
        let (Some(launch), Some(executable)) = (&self.launch, &self.executable) else {
            // Still waiting for configuration or an image: the kubelet
            // stand-in sets those, then the next tick starts the container.
            return;
        };
        match run_container(executable, launch, &self.root, &self.log_path()) {
            Ok(child) => {
                self.child = Some(child);
                self.started = Some(now);
                self.waiting = None;
                self.probes = Probes::default();
                self.note(&format!(
                    "container started (restart {}): {} {}",
                    self.restarts,
                    executable.display(),
                    launch.args.join(" ")
                ));
            }
            Err(e) => self.crashed(&format!("could not start: {e}"), timing, now),
        }
    }

    fn probe(&mut self, timing: &Timing, now: Instant) {
        let Some(launch) = &self.launch else { return };
        if self.probes.next.is_some_and(|next| now < next) {
            return;
        }
        let period = |p: &Option<HttpProbe>| {
            p.as_ref().map_or(timing.probe_period_cap, |p| {
                p.period.min(timing.probe_period_cap)
            })
        };
        let mut restart = None;
        if !self.probes.started {
            match &launch.startup {
                None => self.probes.started = true,
                Some(p) if probe::passed(&probe::check(p)) => self.probes.started = true,
                Some(p) => {
                    self.probes.startup_failures += 1;
                    if self.probes.startup_failures >= p.failure_threshold {
                        restart = Some("startup probe failed");
                    }
                }
            }
            self.probes.next = Some(now + period(&launch.startup));
        }
        if self.probes.started {
            match &launch.readiness {
                None => self.probes.ready = true,
                Some(p) if probe::passed(&probe::check(p)) => {
                    self.probes.ready = true;
                    self.probes.readiness_failures = 0;
                }
                Some(p) => {
                    self.probes.readiness_failures += 1;
                    if self.probes.readiness_failures >= p.failure_threshold {
                        self.probes.ready = false;
                    }
                }
            }
            if let Some(p) = &launch.liveness {
                if probe::passed(&probe::check(p)) {
                    self.probes.liveness_failures = 0;
                } else {
                    self.probes.liveness_failures += 1;
                    if self.probes.liveness_failures >= p.failure_threshold {
                        restart = Some("liveness probe failed");
                    }
                }
            }
            self.probes.next = Some(now + period(&launch.readiness).min(period(&launch.liveness)));
        }
        if let Some(why) = restart {
            self.note(&format!("{why}: stopping the container to restart it"));
            let grace = launch.grace.min(timing.grace_cap);
            self.stopping = Some((Stop::Restart, now + grace));
            self.signal(libc::SIGTERM);
        }
    }

    /// A line of the stand-in's own in the container log.
    fn note(&self, what: &str) {
        if let Ok(mut log) = log_file(&self.log_path()) {
            let _ = writeln!(log, "--- kubelet: pod {}: {what}", self.name);
        }
    }
}

/// The pod's volumes: folders, and the projected files (rewritten before
/// every start, as a kubelet keeps them current).
pub fn prepare(root: &Path, launch: &Launch) -> std::io::Result<()> {
    for dir in &launch.dirs {
        std::fs::create_dir_all(dir)?;
    }
    for (path, content) in &launch.files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Atomically, as the kubelet swaps its `..data` link.
        let partial = path.with_extension("kubelet-partial");
        std::fs::write(&partial, content)?;
        std::fs::rename(&partial, path)?;
    }
    std::fs::create_dir_all(root)
}

/// Prepares the volumes of the pod at `root` and starts its container's
/// process there, with only the container's environment, its output
/// appended to `log`.
pub fn run_container(
    executable: &Path,
    launch: &Launch,
    root: &Path,
    log: &Path,
) -> std::io::Result<Child> {
    prepare(root, launch)?;
    let out = log_file(log)?;
    let err = out.try_clone()?;
    Command::new(executable)
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
}

fn log_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Drop for Pod {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
