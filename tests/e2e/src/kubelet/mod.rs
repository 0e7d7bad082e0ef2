//! A kubelet and Deployment controller stand-in for one namespace of the
//! test API server.
//!
//! Every 200 ms it lists the Deployments its configuration selects (those
//! the operator made, `app.kubernetes.io/managed-by=kith-operator`, and the
//! operator's own when a scenario installs it from its chart) and makes the
//! node match them, as the Deployment controller and a kubelet together
//! would:
//! - each replica is a pod, named `DEPLOYMENT-HASH-NNNNN` after the hash of
//!   its pod template, whose container is a local process ([`template`]
//!   says how a template becomes one, [`pod`] how it is run);
//! - a changed template is rolled out the `Recreate` way: every old pod is
//!   stopped (SIGTERM, SIGKILL after its grace period) before a new one
//!   starts; a lower replica count stops the newest pods first;
//! - each pod runs with a token of its ServiceAccount (a TokenRequest), so
//!   the runners reach the API server with the operator-made RBAC, not the
//!   test's;
//! - the Deployment's status (replicas, updated, ready, available, observed
//!   generation) is written from the pods, which is what the operator reads;
//! - each Job the operator made runs once, as [`job`] says.
//!
//! When the API server cannot be reached, pods keep running as they are, as
//! on a real node cut off from its control plane.
//!
//! Timings are shortened so that scenarios take seconds: probe periods are
//! capped at 1 s and the restart backoff runs from 1 s doubling to 16 s
//! (reset after 30 s of running), where a kubelet uses 10 s to 5 minutes;
//! the order of events is the kubelet's.

pub mod job;
pub mod pod;
pub mod probe;
pub mod rollout;
pub mod template;

use job::{JobRun, Progress};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec, Secret, ServiceAccount};
use k8s_openapi::ByteString;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, ResourceExt};
use pod::{After, Pod, Waiting};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use template::{Launch, Objects, PodContext, TemplateError};

const MANAGED_BY: &str = "app.kubernetes.io/managed-by=kith-operator";

/// The Deployments the operator makes (its runners).
pub const RUNNERS: &str = MANAGED_BY;

#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("cannot read kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    #[error("cannot start the stand-in's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("no pod {0} on this node")]
    NoPod(String),
    #[error("pod {pod}: {source}")]
    Template {
        pod: String,
        #[source]
        source: TemplateError,
    },
    #[error("pod {pod} has no executable (its image is not known)")]
    NoImage { pod: String },
    #[error("cannot start a copy of pod {pod}: {source}")]
    Spawn {
        pod: String,
        #[source]
        source: std::io::Error,
    },
}

/// The stand-in's clock.
#[derive(Debug, Clone)]
pub struct Timing {
    pub tick: Duration,
    pub probe_period_cap: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub backoff_reset: Duration,
    /// The longest grace period honoured (the runner's template asks 120 s).
    pub grace_cap: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            tick: Duration::from_millis(200),
            probe_period_cap: Duration::from_secs(1),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(16),
            backoff_reset: Duration::from_secs(30),
            grace_cap: Duration::from_secs(120),
        }
    }
}

pub struct Config {
    /// The stand-in's own credentials (it reads Secrets and writes
    /// Deployment status, as the kubelet and controllers do).
    pub kubeconfig: PathBuf,
    pub namespace: String,
    /// Image → the executable that is its entrypoint. A pod whose image is
    /// not here stays in `ImagePullBackOff`.
    pub images: BTreeMap<String, PathBuf>,
    /// The Deployments it runs, as a label selector: [`RUNNERS`] for the
    /// operator's, more to run the operator itself from its Helm chart.
    pub deployments: String,
    /// Where pods keep their folders and logs.
    pub work_dir: PathBuf,
    pub timing: Timing,
}

/// A pod as tests see it.
#[derive(Debug, Clone)]
pub struct PodView {
    pub name: String,
    pub deployment: String,
    pub template: String,
    pub pid: Option<u32>,
    pub ready: bool,
    pub terminating: bool,
    pub restarts: u32,
    pub waiting: Option<Waiting>,
    /// `127.0.0.1:PORT` of its `admin` port.
    pub admin: Option<String>,
    /// `127.0.0.1:PORT` of each of its named ports.
    pub ports: BTreeMap<String, String>,
    pub root: PathBuf,
    pub log: PathBuf,
}

/// What the loop and the tests share.
struct Node {
    pods: Vec<Pod>,
    /// The pods of Jobs, apart: no Deployment owns them.
    jobs: Vec<JobRun>,
    serial: u64,
    /// Every pod template seen, by Deployment and hash (for copies).
    templates: HashMap<String, PodTemplateSpec>,
}

/// The running stand-in; dropping it kills every pod.
pub struct Kubelet {
    node: Arc<Mutex<Node>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    config: Arc<Config>,
}

impl Kubelet {
    pub fn start(config: Config) -> Result<Kubelet, KubeletError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(KubeletError::Runtime)?;
        let client = runtime.block_on(client(&config.kubeconfig))?;
        let node = Arc::new(Mutex::new(Node {
            pods: Vec::new(),
            jobs: Vec::new(),
            serial: 0,
            templates: HashMap::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let config = Arc::new(config);
        let thread = {
            let (node, stop, config) = (node.clone(), stop.clone(), config.clone());
            std::thread::Builder::new()
                .name("kubelet".into())
                .spawn(move || {
                    let mut sync = Sync {
                        client,
                        config,
                        node,
                        written: HashMap::new(),
                        jobs_written: HashSet::new(),
                        refused: HashSet::new(),
                        tokens: HashMap::new(),
                    };
                    while !stop.load(Ordering::Relaxed) {
                        runtime.block_on(sync.once());
                        std::thread::sleep(sync.config.timing.tick);
                    }
                })
                .map_err(KubeletError::Runtime)?
        };
        Ok(Kubelet {
            node,
            stop,
            thread: Some(thread),
            config,
        })
    }

    /// Every pod on the node, in creation order.
    pub fn pods(&self) -> Vec<PodView> {
        lock(&self.node).pods.iter().map(view).collect()
    }

    /// The pods of Jobs running or waiting on the node (`deployment` is the
    /// Job's name).
    pub fn job_pods(&self) -> Vec<PodView> {
        lock(&self.node).jobs.iter().map(|r| view(&r.pod)).collect()
    }

    /// The pods of `deployment` that are not being deleted.
    pub fn pods_of(&self, deployment: &str) -> Vec<PodView> {
        self.pods()
            .into_iter()
            .filter(|p| p.deployment == deployment && !p.terminating)
            .collect()
    }

    /// Sends `signal` to the container of `pod` (SIGKILL: a crash the
    /// stand-in then restarts, as a kubelet would after an OOM kill).
    pub fn signal(&self, pod: &str, signal: i32) -> Result<(), KubeletError> {
        let node = lock(&self.node);
        let found = node.pods.iter().find(|p| p.name == pod);
        match found {
            Some(p) if p.signal(signal) => Ok(()),
            _ => Err(KubeletError::NoPod(pod.to_string())),
        }
    }

    /// The node running `pod` dies: its container is SIGKILLed and the pod
    /// is gone with its volumes, so the Deployment gets a new pod that
    /// starts with empty folders (as when a node fails and the controller
    /// replaces its pods elsewhere).
    pub fn lose(&self, pod: &str) -> Result<(), KubeletError> {
        let mut node = lock(&self.node);
        let at = node
            .pods
            .iter()
            .position(|p| p.name == pod)
            .ok_or_else(|| KubeletError::NoPod(pod.to_string()))?;
        let lost = node.pods.remove(at);
        lost.signal(libc::SIGKILL);
        let _ = std::fs::remove_dir_all(template::fs_root(&lost.root));
        Ok(())
    }

    /// Starts, outside the stand-in's control, a process of pod `pod`'s
    /// template as another node would run it under the name `name` (a pod
    /// left running on a partitioned node, a replacement started beside it):
    /// its own folders and ports, the same ServiceAccount.
    pub fn start_copy(&self, pod: &str, name: &str) -> Result<Stray, KubeletError> {
        let (template, executable, kubeconfig) = {
            let node = lock(&self.node);
            let original = node
                .pods
                .iter()
                .find(|p| p.name == pod)
                .ok_or_else(|| KubeletError::NoPod(pod.to_string()))?;
            let template = node
                .templates
                .get(&original.template)
                .cloned()
                .ok_or_else(|| KubeletError::NoPod(pod.to_string()))?;
            let executable = original.executable.clone().ok_or(KubeletError::NoImage {
                pod: pod.to_string(),
            })?;
            (template, executable, original.root.join("kubeconfig"))
        };
        let root = self.config.work_dir.join("strays").join(name);
        let objects = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(KubeletError::Runtime)
            .and_then(|rt| {
                rt.block_on(async {
                    let client = client(&self.config.kubeconfig).await?;
                    Ok(objects(&client, &self.config.namespace).await)
                })
            })?;
        let launch = template::translate(
            &template,
            &PodContext {
                name,
                namespace: &self.config.namespace,
                root: &root,
                kubeconfig: &kubeconfig,
            },
            &objects,
            free_port,
        )
        .map_err(|source| KubeletError::Template {
            pod: name.to_string(),
            source,
        })?;
        let log = root.join("container.log");
        let child = pod::run_container(&executable, &launch, &root, &log).map_err(|source| {
            KubeletError::Spawn {
                pod: name.to_string(),
                source,
            }
        })?;
        Ok(Stray {
            child,
            admin: launch.address_of("admin"),
            log,
            root,
        })
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let mut node = lock(&self.node);
        node.pods.clear();
        node.jobs.clear();
    }
}

/// A runner process started by [`Kubelet::start_copy`]; killed when dropped.
pub struct Stray {
    pub child: Child,
    pub admin: Option<String>,
    pub root: PathBuf,
    pub log: PathBuf,
}

impl Drop for Stray {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn view(p: &Pod) -> PodView {
    let ports = p.launch.as_ref().map(Launch::addresses).unwrap_or_default();
    PodView {
        name: p.name.clone(),
        deployment: p.deployment.clone(),
        template: p.template.clone(),
        pid: p.pid(),
        ready: p.ready(),
        terminating: p.terminating(),
        restarts: p.restarts,
        waiting: p.waiting.clone(),
        admin: ports.get("admin").cloned(),
        ports,
        root: p.root.clone(),
        log: p.log_path(),
    }
}

fn lock(node: &Mutex<Node>) -> MutexGuard<'_, Node> {
    // A panic while holding the lock leaves the pods as they were, which is
    // still the truth about them.
    node.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn client(kubeconfig: &Path) -> Result<Client, KubeletError> {
    let error = |message: String| KubeletError::Kubeconfig {
        path: kubeconfig.to_path_buf(),
        message,
    };
    let file = Kubeconfig::read_from(kubeconfig).map_err(|e| error(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .map_err(|e| error(e.to_string()))?;
    Client::try_from(config).map_err(|e| error(e.to_string()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The ConfigMaps and Secrets of the namespace (empty on an API error: the
/// pods that need one wait, and the next tick asks again).
async fn objects(client: &Client, namespace: &str) -> Objects {
    let mut objects = Objects::default();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    if let Ok(list) = config_maps.list(&ListParams::default()).await {
        for cm in list {
            let data = keys(cm.data.clone(), cm.binary_data.clone());
            objects.config_maps.insert(cm.name_any(), data);
        }
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    if let Ok(list) = secrets.list(&ListParams::default()).await {
        for secret in list {
            let data = keys(secret.string_data.clone(), secret.data.clone());
            objects.secrets.insert(secret.name_any(), data);
        }
    }
    objects
}

/// The keys of a ConfigMap (`data`, `binaryData`) or Secret (`stringData`,
/// `data`) as bytes. Only a Secret can name a key in both, and then its
/// `stringData` wins, as the API server merges them.
fn keys(
    text: Option<BTreeMap<String, String>>,
    bytes: Option<BTreeMap<String, ByteString>>,
) -> BTreeMap<String, Vec<u8>> {
    let mut keys: BTreeMap<String, Vec<u8>> = bytes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    keys.extend(
        text.unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes())),
    );
    keys
}

/// The loop's state.
struct Sync {
    client: Client,
    config: Arc<Config>,
    node: Arc<Mutex<Node>>,
    /// The status last written per Deployment (written again only on change).
    written: HashMap<String, serde_json::Value>,
    /// `UID/progress` of each Job status written (each once).
    jobs_written: HashSet<String>,
    /// UIDs of Jobs the stand-in cannot run (said once).
    refused: HashSet<String>,
    /// A kubeconfig with a token per ServiceAccount.
    tokens: HashMap<String, PathBuf>,
}

impl Sync {
    async fn once(&mut self) {
        let ns = self.config.namespace.clone();
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
        let deployments = match api
            .list(&ListParams::default().labels(&self.config.deployments))
            .await
        {
            Ok(list) => Some(list.items),
            Err(e) => {
                eprintln!("[kubelet {ns}] cannot list Deployments (pods keep running): {e}");
                None
            }
        };
        if let Some(deployments) = &deployments {
            self.converge(deployments).await;
        }
        let timing = self.config.timing.clone();
        lock(&self.node)
            .pods
            .retain_mut(|p| p.tick(&timing) == After::Present);
        if let Some(deployments) = &deployments {
            self.report(&api, deployments).await;
        }
        self.run_jobs().await;
    }

    /// Starts a pod for each new Job, runs them, writes their status, and
    /// forgets the ones that are finished or deleted.
    async fn run_jobs(&mut self) {
        let ns = self.config.namespace.clone();
        let api: Api<Job> = Api::namespaced(self.client.clone(), &ns);
        let jobs = match api.list(&ListParams::default().labels(MANAGED_BY)).await {
            Ok(list) => list.items,
            Err(e) => {
                eprintln!("[kubelet {ns}] cannot list Jobs (their pods keep running): {e}");
                return;
            }
        };
        let live = |uid: &str| {
            jobs.iter()
                .any(|j| j.uid().as_deref() == Some(uid) && !job::finished(j))
        };
        // Dropping a run kills its container (a deleted Job).
        lock(&self.node).jobs.retain(|r| live(&r.uid));
        let mut new = Vec::new();
        for j in &jobs {
            let uid = j.uid().unwrap_or_default();
            let known = lock(&self.node).jobs.iter().any(|r| r.uid == uid);
            if known || job::finished(j) || self.refused.contains(&uid) {
                continue;
            }
            if let Some(why) = job::unsupported(j) {
                eprintln!("[kubelet {ns}] {why}");
                self.refused.insert(uid);
                continue;
            }
            new.push(j.clone());
        }
        if !new.is_empty() {
            let objects = objects(&self.client, &ns).await;
            for j in new {
                let Some(spec) = j.spec.clone() else { continue };
                let name = {
                    let mut node = lock(&self.node);
                    node.serial += 1;
                    format!("{}-{:05}", j.name_any(), node.serial)
                };
                let root = self.config.work_dir.join("pods").join(&name);
                // A Job waiting for a Secret is configured again next tick.
                let Ok((launch, executable)) =
                    self.configure(&spec.template, &name, &root, &objects).await
                else {
                    continue;
                };
                let mut pod = Pod::new(name, j.name_any(), "job".into(), root);
                pod.on_failure_only = true;
                pod.configured(launch, executable);
                lock(&self.node).jobs.push(JobRun {
                    job: j.name_any(),
                    uid: j.uid().unwrap_or_default(),
                    pod,
                    backoff_limit: spec.backoff_limit.unwrap_or(6).max(0) as u32,
                    started: None,
                });
            }
        }
        let timing = self.config.timing.clone();
        let mut patches = Vec::new();
        for run in lock(&self.node).jobs.iter_mut() {
            let progress = run.progress();
            if matches!(progress, Progress::Failed { .. }) {
                run.pod.signal(libc::SIGKILL);
            } else {
                run.pod.tick(&timing);
            }
            let progress = run.progress();
            if let Some(status) = run.status(&progress) {
                let key = format!("{}/{progress:?}", run.uid);
                patches.push((run.job.clone(), key, status));
            }
        }
        for (name, key, status) in patches {
            if self.jobs_written.contains(&key) {
                continue;
            }
            if write_status(&api, "Job", &name, status).await {
                self.jobs_written.insert(key);
            }
        }
    }

    /// Creates and deletes pods so that the node matches `deployments`.
    async fn converge(&mut self, deployments: &[Deployment]) {
        let timing = self.config.timing.clone();
        let mut to_create = Vec::new();
        {
            let mut node = lock(&self.node);
            let wanted: HashMap<String, (&Deployment, String)> = deployments
                .iter()
                .map(|d| (d.name_any(), (d, template_hash(d))))
                .collect();
            for (name, (d, hash)) in &wanted {
                node.templates.insert(hash.clone(), d.spec.template.clone());
                let replicas = d.spec.replicas.unwrap_or(1).max(0) as usize;
                let mine: Vec<usize> = (0..node.pods.len())
                    .filter(|&i| &node.pods[i].deployment == name && !node.pods[i].terminating())
                    .collect();
                let old: Vec<usize> = mine
                    .iter()
                    .copied()
                    .filter(|&i| &node.pods[i].template != hash)
                    .collect();
                if !old.is_empty() {
                    // Recreate: all old pods go before any new one starts.
                    for i in old {
                        node.pods[i].delete(&timing);
                    }
                    continue;
                }
                let stopping = node
                    .pods
                    .iter()
                    .any(|p| &p.deployment == name && p.terminating());
                if mine.len() > replicas {
                    for &i in mine.iter().skip(replicas) {
                        node.pods[i].delete(&timing);
                    }
                } else if !stopping {
                    for _ in mine.len()..replicas {
                        node.serial += 1;
                        let pod_name = format!("{name}-{}-{:05}", &hash[..8], node.serial);
                        to_create.push((name.clone(), hash.clone(), pod_name));
                    }
                }
            }
            for pod in node.pods.iter_mut() {
                if !wanted.contains_key(&pod.deployment) {
                    pod.delete(&timing);
                }
            }
        }
        let needs_config = !to_create.is_empty()
            || lock(&self.node)
                .pods
                .iter()
                .any(|p| p.launch.is_none() && !p.terminating());
        if !needs_config {
            return;
        }
        let objects = objects(&self.client, &self.config.namespace).await;
        for (deployment, hash, name) in to_create {
            let root = self.config.work_dir.join("pods").join(&name);
            lock(&self.node)
                .pods
                .push(Pod::new(name, deployment, hash, root));
        }
        // Configure every pod still without a launch (new ones, and ones
        // that waited for a Secret or a token).
        let pending: Vec<(String, String)> = lock(&self.node)
            .pods
            .iter()
            .filter(|p| p.launch.is_none() && !p.terminating())
            .map(|p| (p.name.clone(), p.template.clone()))
            .collect();
        for (name, hash) in pending {
            let template = lock(&self.node).templates.get(&hash).cloned();
            let Some(template) = template else { continue };
            let root = self.config.work_dir.join("pods").join(&name);
            let configured = self.configure(&template, &name, &root, &objects).await;
            let mut node = lock(&self.node);
            let Some(pod) = node.pods.iter_mut().find(|p| p.name == name) else {
                continue;
            };
            match configured {
                Ok((launch, executable)) => pod.configured(launch, executable),
                Err(why) => pod.waiting = Some(Waiting::CreateContainerConfigError(why)),
            }
        }
    }

    async fn configure(
        &mut self,
        template: &PodTemplateSpec,
        name: &str,
        root: &Path,
        objects: &Objects,
    ) -> Result<(Launch, Option<PathBuf>), String> {
        let account = template
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let kubeconfig = self.token_kubeconfig(&account).await?;
        let pod_kubeconfig = root.join("kubeconfig");
        std::fs::create_dir_all(root)
            .and_then(|()| std::fs::copy(&kubeconfig, &pod_kubeconfig))
            .map_err(|e| format!("cannot write the pod's kubeconfig: {e}"))?;
        let launch = template::translate(
            template,
            &PodContext {
                name,
                namespace: &self.config.namespace,
                root,
                kubeconfig: &pod_kubeconfig,
            },
            objects,
            free_port,
        )
        .map_err(|e| e.to_string())?;
        let executable = self.config.images.get(&launch.image).cloned();
        Ok((launch, executable))
    }

    /// A kubeconfig for ServiceAccount `account`: the stand-in's cluster
    /// and a token from the TokenRequest API, as a pod's projected token.
    async fn token_kubeconfig(&mut self, account: &str) -> Result<PathBuf, String> {
        if let Some(path) = self.tokens.get(account) {
            return Ok(path.clone());
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &self.config.namespace);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(Vec::new()),
                expiration_seconds: Some(6 * 3600),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let answer = api
            .create_token_request(account, &PostParams::default(), &request)
            .await
            .map_err(|e| format!("no token for ServiceAccount {account}: {e}"))?;
        let token = answer
            .status
            .and_then(|s| s.token)
            .ok_or_else(|| format!("the TokenRequest for {account} came back without a token"))?;
        let text = std::fs::read_to_string(&self.config.kubeconfig)
            .map_err(|e| format!("cannot read the kubeconfig: {e}"))?;
        let mut kubeconfig: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| format!("cannot parse the kubeconfig: {e}"))?;
        if let Some(users) = kubeconfig
            .get_mut("users")
            .and_then(serde_yaml::Value::as_sequence_mut)
        {
            for user in users {
                if let Some(map) = user.as_mapping_mut() {
                    let mut credentials = serde_yaml::Mapping::new();
                    credentials.insert("token".into(), token.clone().into());
                    map.insert("user".into(), serde_yaml::Value::Mapping(credentials));
                }
            }
        }
        let path = self
            .config
            .work_dir
            .join("tokens")
            .join(format!("{account}.kubeconfig"));
        let rendered =
            serde_yaml::to_string(&kubeconfig).map_err(|e| format!("cannot write YAML: {e}"))?;
        std::fs::create_dir_all(self.config.work_dir.join("tokens"))
            .and_then(|()| std::fs::write(&path, rendered))
            .map_err(|e| format!("cannot write the token kubeconfig: {e}"))?;
        self.tokens.insert(account.to_string(), path.clone());
        Ok(path)
    }

    /// Writes each Deployment's status from its pods, when it changed.
    async fn report(&mut self, api: &Api<Deployment>, deployments: &[Deployment]) {
        for d in deployments {
            let name = d.name_any();
            let hash = template_hash(d);
            let desired = d.spec.replicas.unwrap_or(1);
            let status = {
                let node = lock(&self.node);
                let counted: Vec<rollout::Counted> = node
                    .pods
                    .iter()
                    .filter(|p| p.deployment == name)
                    .map(|p| rollout::Counted {
                        updated: p.template == hash,
                        ready: p.ready(),
                        terminating: p.terminating(),
                    })
                    .collect();
                rollout::status(d.metadata.generation, desired, &counted)
            };
            if self.written.get(&name) == Some(&status) {
                continue;
            }
            if write_status(api, "Deployment", &name, status.clone()).await {
                self.written.insert(name, status);
            }
        }
    }
}

/// Merge-patches the status of `kind` `name`, as the controller owning it
/// would; false (and said on stderr) when the API server refused it.
async fn write_status<K>(api: &Api<K>, kind: &str, name: &str, status: serde_json::Value) -> bool
where
    K: kube::Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({ "status": status });
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => true,
        Err(e) => {
            eprintln!("[kubelet] cannot write the status of {kind} {name}: {e}");
            false
        }
    }
}

/// The pod template's hash (what `pod-template-hash` is to a ReplicaSet).
fn template_hash(deployment: &Deployment) -> String {
    let bytes = serde_json::to_vec(&deployment.spec.template).unwrap_or_default();
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes))
}
