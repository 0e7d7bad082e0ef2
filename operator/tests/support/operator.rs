//! `kith-operator` processes as the tests run them: one namespace watched,
//! the leader Lease in that namespace, killed when dropped.

use super::cluster::Cluster;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

pub struct Operator {
    child: Child,
    pub identity: String,
    pub admin: String,
}

impl Operator {
    /// Starts an operator named `identity` watching the cluster's namespace.
    pub fn start(cluster: &Cluster, identity: &str) -> Operator {
        Self::start_with(cluster, identity, &cluster.kubeconfig)
    }

    /// Same, watching the comma-separated `namespaces` (as
    /// `KITH_WATCH_NAMESPACES`), with its Lease in the cluster's namespace.
    pub fn start_watching(cluster: &Cluster, identity: &str, namespaces: &str) -> Operator {
        Self::spawn(
            cluster,
            identity,
            &cluster.kubeconfig,
            None,
            Some(namespaces),
        )
    }

    /// Same, with another kubeconfig (another identity and its RBAC).
    pub fn start_with(cluster: &Cluster, identity: &str, kubeconfig: &str) -> Operator {
        Self::spawn(
            cluster,
            identity,
            kubeconfig,
            Some(&cluster.namespace),
            None,
        )
    }

    /// As `kith-operator run` is started from a workstation: no Lease
    /// namespace given, so the kubeconfig's context decides it.
    pub fn start_without_lease_namespace(
        cluster: &Cluster,
        identity: &str,
        kubeconfig: &str,
    ) -> Operator {
        Self::spawn_with(
            cluster,
            identity,
            kubeconfig,
            Some(&cluster.namespace),
            None,
            false,
        )
    }

    fn spawn(
        cluster: &Cluster,
        identity: &str,
        kubeconfig: &str,
        namespace_flag: Option<&str>,
        namespaces_env: Option<&str>,
    ) -> Operator {
        Self::spawn_with(
            cluster,
            identity,
            kubeconfig,
            namespace_flag,
            namespaces_env,
            true,
        )
    }

    fn spawn_with(
        cluster: &Cluster,
        identity: &str,
        kubeconfig: &str,
        namespace_flag: Option<&str>,
        namespaces_env: Option<&str>,
        lease_namespace_flag: bool,
    ) -> Operator {
        let admin = free_address();
        let log = std::fs::File::create(
            std::env::temp_dir().join(format!("{}-{identity}.log", cluster.namespace)),
        )
        .unwrap();
        let mut command = Command::new(binary());
        command.arg("run");
        if let Some(namespace) = namespace_flag {
            command.args(["--namespace", namespace]);
        }
        command.env_remove("KITH_WATCH_NAMESPACES");
        if let Some(namespaces) = namespaces_env {
            command.env("KITH_WATCH_NAMESPACES", namespaces);
        }
        if lease_namespace_flag {
            command.args(["--lease-namespace", &cluster.namespace]);
        }
        let child = command
            .args(["--identity", identity, "--admin", &admin])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,kith_operator=debug")
            .env_remove("POD_NAMESPACE")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("kith-operator starts");
        Operator {
            child,
            identity: identity.to_string(),
            admin,
        }
    }

    /// SIGKILL: no Lease release, no goodbye, as when a node dies.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// GET `path` on the admin port: (status code, body).
    pub fn http_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(&self.admin)?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.admin
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let code = response
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((code, body))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The operator binary: this package's own in the operator's tests, else
/// the one built beside the test executable.
pub fn binary() -> String {
    match option_env!("CARGO_BIN_EXE_kith-operator") {
        Some(own) => own.to_string(),
        None => super::services::built_binary("kith-operator"),
    }
}

fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}
