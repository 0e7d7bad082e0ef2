//! A pod template as a local process: what a kubelet would run for the pod's
//! container, translated to this machine. Pure: the ConfigMaps and Secrets
//! it reads are given, and the caller chooses the folders and ports.
//!
//! The translation is the kubelet's where it matters to a runner:
//! - the image's entrypoint is the executable `Config::images` maps the image
//!   to, and `args` are its arguments;
//! - `env` is resolved as the kubelet resolves it: literal values with
//!   `$(NAME)` references to earlier variables, `fieldRef` (pod name,
//!   namespace, IP, service account), and `secretKeyRef`/`configMapKeyRef`
//!   (optional ones may be missing, others hold the container back);
//! - `configMap`, `secret` and `emptyDir` volumes become folders of the pod
//!   at their mount paths under its `fs/` (standing for the container's
//!   `/`), with one file per key as a kubelet projects them; an argument
//!   naming a path under a mount path names the same path under `fs/`, and a
//!   relative path from one mount to another works as in the container (an
//!   absolute path written inside a file is not rewritten);
//! - every container port gets a loopback port of its own, and an argument
//!   binding `0.0.0.0:PORT` (or `[::]:PORT`) binds that port instead, so
//!   several pods of one node do not collide;
//! - the process sees only this environment, as a container would (no
//!   variable of the test leaks in), plus `KUBECONFIG` naming the pod's
//!   ServiceAccount token, where a real pod has the token mounted.
//!
//! What the stand-in does not do is refused here rather than ignored:
//! `command`, `envFrom`, `resourceFieldRef`, other volume types, more than
//! one container. Security contexts and resource limits are not enforced.

use k8s_openapi::api::core::v1::{
    Container, EnvVar, HTTPGetAction, KeyToPath, PodSpec, PodTemplateSpec, Probe, Volume,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a pod template cannot be run (yet).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("the pod template has no spec or no container")]
    NoContainer,
    #[error("the kubelet stand-in does not support {0}")]
    Unsupported(String),
    /// A referenced object is missing: the kubelet keeps the container in
    /// `CreateContainerConfigError` and tries again.
    #[error("{kind} {name} not found (referenced by {by})")]
    MissingObject {
        kind: &'static str,
        name: String,
        by: String,
    },
    #[error("{kind} {name} has no key {key} (referenced by {by})")]
    MissingKey {
        kind: &'static str,
        name: String,
        key: String,
        by: String,
    },
}

/// The ConfigMaps (data and binaryData) and Secrets of the pod's namespace,
/// by name, each as its keys' bytes.
#[derive(Debug, Default, Clone)]
pub struct Objects {
    pub config_maps: HashMap<String, BTreeMap<String, Vec<u8>>>,
    pub secrets: HashMap<String, BTreeMap<String, Vec<u8>>>,
}

/// Where and as whom the pod runs.
pub struct PodContext<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    /// The pod's folder: volumes go under `volumes/`.
    pub root: &'a Path,
    /// Credentials of the pod's ServiceAccount, as a kubeconfig file.
    pub kubeconfig: &'a Path,
}

/// An HTTP probe, against a loopback port.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpProbe {
    pub path: String,
    pub port: u16,
    pub period: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
}

/// What to run for the pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub image: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Files of the projected volumes, with their content.
    pub files: Vec<(PathBuf, Vec<u8>)>,
    /// Folders of the volumes (each `emptyDir` and each projection).
    pub dirs: Vec<PathBuf>,
    /// Container port (by number) → the loopback port standing in for it.
    pub ports: BTreeMap<i32, u16>,
    /// Container port names → numbers.
    pub port_names: BTreeMap<String, i32>,
    pub startup: Option<HttpProbe>,
    pub readiness: Option<HttpProbe>,
    pub liveness: Option<HttpProbe>,
    /// `terminationGracePeriodSeconds` (default 30 s).
    pub grace: Duration,
}

impl Launch {
    /// `127.0.0.1:PORT` of the container port named `name`.
    pub fn address_of(&self, name: &str) -> Option<String> {
        let number = self.port_names.get(name)?;
        self.ports
            .get(number)
            .map(|local| format!("127.0.0.1:{local}"))
    }

    /// `127.0.0.1:PORT` of every named container port, by name.
    pub fn addresses(&self) -> BTreeMap<String, String> {
        self.port_names
            .keys()
            .filter_map(|name| Some((name.clone(), self.address_of(name)?)))
            .collect()
    }
}

/// Translates `template` for pod `pod`; `local_port` picks a free loopback
/// port for a container port.
pub fn translate(
    template: &PodTemplateSpec,
    pod: &PodContext<'_>,
    objects: &Objects,
    mut local_port: impl FnMut() -> u16,
) -> Result<Launch, TemplateError> {
    let spec = template.spec.as_ref().ok_or(TemplateError::NoContainer)?;
    let container = match spec.containers.as_slice() {
        [one] => one,
        [] => return Err(TemplateError::NoContainer),
        _ => return Err(TemplateError::Unsupported("more than one container".into())),
    };
    if spec.init_containers.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(TemplateError::Unsupported("init containers".into()));
    }
    if container.command.is_some() {
        return Err(TemplateError::Unsupported(
            "`command` (the image's entrypoint is the executable)".into(),
        ));
    }
    if container.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(TemplateError::Unsupported("envFrom".into()));
    }
    let image = container
        .image
        .clone()
        .ok_or_else(|| TemplateError::Unsupported("a container without an image".into()))?;

    let (mounts, dirs, files) = volumes(spec, container, pod, objects)?;
    let mut ports = BTreeMap::new();
    let mut port_names = BTreeMap::new();
    for port in container.ports.iter().flatten() {
        ports.insert(port.container_port, local_port());
        if let Some(name) = &port.name {
            port_names.insert(name.clone(), port.container_port);
        }
    }
    let env = environment(spec, container, pod, objects)?;
    let defined: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args = container
        .args
        .iter()
        .flatten()
        .map(|arg| expand(arg, &defined))
        .map(|arg| rewrite_paths(&arg, &mounts))
        .map(|arg| rewrite_bind(&arg, &ports))
        .collect();
    let probe = |p: &Option<Probe>| -> Result<Option<HttpProbe>, TemplateError> {
        p.as_ref()
            .map(|p| http_probe(p, &ports, &port_names))
            .transpose()
    };
    Ok(Launch {
        image,
        args,
        env,
        files,
        dirs,
        startup: probe(&container.startup_probe)?,
        readiness: probe(&container.readiness_probe)?,
        liveness: probe(&container.liveness_probe)?,
        grace: Duration::from_secs(
            spec.termination_grace_period_seconds
                .unwrap_or(30)
                .max(0)
                .unsigned_abs(),
        ),
        ports,
        port_names,
    })
}

/// Mount path → folder, longest first (so that a nested mount wins), the
/// folders to create and the files to write.
type Volumes = (
    Vec<(String, PathBuf)>,
    Vec<PathBuf>,
    Vec<(PathBuf, Vec<u8>)>,
);

fn volumes(
    spec: &PodSpec,
    container: &Container,
    pod: &PodContext<'_>,
    objects: &Objects,
) -> Result<Volumes, TemplateError> {
    // Each volume's folder is where the container sees it, under the pod's
    // own root (`fs/`), so that a path relative to one mount reaches
    // another as it does in the container (`../kith-model/model.json` from
    // `/etc/kith/pipeline.yaml`).
    let mut mounted: HashMap<&str, PathBuf> = HashMap::new();
    let mut mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        if mount.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(TemplateError::Unsupported(format!(
                "subPath (mount of volume {})",
                mount.name
            )));
        }
        let path = mount.mount_path.trim_end_matches('/').to_string();
        let folder = fs_root(pod.root).join(path.trim_start_matches('/'));
        if mounted
            .insert(mount.name.as_str(), folder.clone())
            .is_some()
        {
            return Err(TemplateError::Unsupported(format!(
                "volume {} mounted twice",
                mount.name
            )));
        }
        mounts.push((path, folder));
    }
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for volume in spec.volumes.iter().flatten() {
        let Some(folder) = mounted.get(volume.name.as_str()) else {
            continue; // declared, not mounted: nothing to see
        };
        dirs.push(folder.clone());
        files.extend(projected(volume, folder, objects)?);
    }
    for mount in container.volume_mounts.iter().flatten() {
        if !spec.volumes.iter().flatten().any(|v| v.name == mount.name) {
            return Err(TemplateError::Unsupported(format!(
                "a mount of undeclared volume {}",
                mount.name
            )));
        }
    }
    mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    Ok((mounts, dirs, files))
}

/// The folder standing for the container's `/`: only its mounts are there.
pub fn fs_root(pod_root: &Path) -> PathBuf {
    pod_root.join("fs")
}

/// The files of a `configMap` or `secret` volume; none for an `emptyDir`.
fn projected(
    volume: &Volume,
    folder: &Path,
    objects: &Objects,
) -> Result<Vec<(PathBuf, Vec<u8>)>, TemplateError> {
    let by = format!("volume {}", volume.name);
    let (kind, name, items, optional, found) = if let Some(cm) = &volume.config_map {
        (
            "ConfigMap",
            cm.name.clone(),
            &cm.items,
            cm.optional,
            objects.config_maps.get(&cm.name),
        )
    } else if let Some(secret) = &volume.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        let found = objects.secrets.get(&name);
        ("Secret", name, &secret.items, secret.optional, found)
    } else if volume.empty_dir.is_some() {
        return Ok(Vec::new());
    } else {
        return Err(TemplateError::Unsupported(format!(
            "volume {} (only configMap, secret and emptyDir)",
            volume.name
        )));
    };
    let Some(data) = found else {
        if optional == Some(true) {
            return Ok(Vec::new());
        }
        return Err(TemplateError::MissingObject { kind, name, by });
    };
    let keys: Vec<KeyToPath> = match items {
        Some(items) => items.clone(),
        None => data
            .keys()
            .map(|k| KeyToPath {
                key: k.clone(),
                path: k.clone(),
                ..KeyToPath::default()
            })
            .collect(),
    };
    keys.into_iter()
        .map(|item| match data.get(&item.key) {
            Some(bytes) => Ok((folder.join(&item.path), bytes.clone())),
            None => Err(TemplateError::MissingKey {
                kind,
                name: name.clone(),
                key: item.key,
                by: by.clone(),
            }),
        })
        .collect()
}

fn environment(
    spec: &PodSpec,
    container: &Container,
    pod: &PodContext<'_>,
    objects: &Objects,
) -> Result<Vec<(String, String)>, TemplateError> {
    let mut env: Vec<(String, String)> = vec![
        ("HOSTNAME".into(), pod.name.to_string()),
        ("KUBECONFIG".into(), pod.kubeconfig.display().to_string()),
    ];
    for var in container.env.iter().flatten() {
        let value = {
            let defined: HashMap<&str, &str> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            value_of(var, spec, pod, objects, &defined)?
        };
        let Some(value) = value else { continue };
        env.retain(|(k, _)| k != &var.name);
        env.push((var.name.clone(), value));
    }
    Ok(env)
}

/// The value of one variable; `None` for an optional reference to a
/// missing object or key (the kubelet leaves the variable unset).
fn value_of(
    var: &EnvVar,
    spec: &PodSpec,
    pod: &PodContext<'_>,
    objects: &Objects,
    defined: &HashMap<&str, &str>,
) -> Result<Option<String>, TemplateError> {
    let by = format!("env {}", var.name);
    let Some(from) = &var.value_from else {
        return Ok(Some(expand(var.value.as_deref().unwrap_or(""), defined)));
    };
    if let Some(field) = &from.field_ref {
        let value = match field.field_path.as_str() {
            "metadata.name" => pod.name.to_string(),
            "metadata.namespace" => pod.namespace.to_string(),
            "status.podIP" | "status.hostIP" => "127.0.0.1".into(),
            "spec.nodeName" => "kith-e2e-node".into(),
            "spec.serviceAccountName" => spec.service_account_name.clone().unwrap_or_default(),
            other => return Err(TemplateError::Unsupported(format!("fieldRef {other}"))),
        };
        return Ok(Some(value));
    }
    let lookup = |kind: &'static str,
                  found: Option<&BTreeMap<String, Vec<u8>>>,
                  name: &str,
                  key: &str,
                  optional: Option<bool>| {
        let optional = optional == Some(true);
        match found.map(|data| data.get(key)) {
            Some(Some(bytes)) => Ok(Some(String::from_utf8_lossy(bytes).into_owned())),
            Some(None) if optional => Ok(None),
            None if optional => Ok(None),
            Some(None) => Err(TemplateError::MissingKey {
                kind,
                name: name.to_string(),
                key: key.to_string(),
                by: by.clone(),
            }),
            None => Err(TemplateError::MissingObject {
                kind,
                name: name.to_string(),
                by: by.clone(),
            }),
        }
    };
    if let Some(secret) = &from.secret_key_ref {
        let found = objects.secrets.get(&secret.name);
        return lookup("Secret", found, &secret.name, &secret.key, secret.optional);
    }
    if let Some(cm) = &from.config_map_key_ref {
        let found = objects.config_maps.get(&cm.name);
        return lookup("ConfigMap", found, &cm.name, &cm.key, cm.optional);
    }
    Err(TemplateError::Unsupported(format!(
        "the valueFrom of env {} (only fieldRef, secretKeyRef and configMapKeyRef)",
        var.name
    )))
}

/// The kubelet's `$(NAME)` expansion: a defined variable is replaced, an
/// undefined reference stays as written, `$$` is a literal `$`.
pub fn expand(text: &str, defined: &HashMap<&str, &str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match defined.get(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `arg` (or the value of `--flag=arg`) naming a path under a mount path,
/// moved under that mount's folder.
fn rewrite_paths(arg: &str, mounts: &[(String, PathBuf)]) -> String {
    let (prefix, value) = match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with('-') => (format!("{flag}="), value),
        _ => (String::new(), arg),
    };
    for (mount, folder) in mounts {
        let rest = if value == mount {
            Some("")
        } else {
            value
                .strip_prefix(mount.as_str())
                .filter(|r| r.starts_with('/'))
        };
        if let Some(rest) = rest {
            let moved = folder.join(rest.trim_start_matches('/'));
            return format!("{prefix}{}", moved.display());
        }
    }
    arg.to_string()
}

/// `0.0.0.0:PORT` or `[::]:PORT` of a container port → its loopback port.
fn rewrite_bind(arg: &str, ports: &BTreeMap<i32, u16>) -> String {
    for host in ["0.0.0.0:", "[::]:", ":"] {
        if let Some(port) = arg.strip_prefix(host).and_then(|p| p.parse::<i32>().ok()) {
            if let Some(local) = ports.get(&port) {
                return format!("127.0.0.1:{local}");
            }
        }
    }
    arg.to_string()
}

fn http_probe(
    probe: &Probe,
    ports: &BTreeMap<i32, u16>,
    names: &BTreeMap<String, i32>,
) -> Result<HttpProbe, TemplateError> {
    let Some(HTTPGetAction { path, port, .. }) = &probe.http_get else {
        return Err(TemplateError::Unsupported(
            "probes other than httpGet".into(),
        ));
    };
    let number = match port {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => names.get(name).copied(),
    };
    let port = number.and_then(|n| ports.get(&n).copied()).ok_or_else(|| {
        TemplateError::Unsupported(format!("a probe on undeclared port {port:?}"))
    })?;
    let seconds = |v: Option<i32>, default: u64| {
        v.and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .unwrap_or(default)
    };
    Ok(HttpProbe {
        path: path.clone().unwrap_or_else(|| "/".into()),
        port,
        period: Duration::from_secs(seconds(probe.period_seconds, 10)),
        timeout: Duration::from_secs(seconds(probe.timeout_seconds, 1)),
        failure_threshold: seconds(probe.failure_threshold, 3) as u32,
    })
}

#[cfg(test)]
mod tests;
