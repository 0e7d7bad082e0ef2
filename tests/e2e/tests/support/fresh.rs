//! An empty Kubernetes API server of its own for one scenario: a second
//! kube-apiserver of `tests/services/kube` (the same binary, certificates
//! and etcd) under another etcd key prefix, so it holds no CRD, namespace or
//! release of the other tests. What a new user's cluster looks like, for
//! commands that must work as the README writes them.

use super::services::require;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct FreshCluster {
    child: Child,
    /// An admin kubeconfig for this server.
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    pub log: PathBuf,
}

impl FreshCluster {
    /// Starts the server and waits until it is ready and has created its
    /// own namespaces; files go into `dir`.
    pub fn start(name: &str, dir: &Path) -> FreshCluster {
        let services = require(&["kube"]);
        let kubectl = PathBuf::from(services.get("KUBECTL"));
        let apiserver = kubectl.with_file_name("kube-apiserver");
        let shared = PathBuf::from(services.get("KUBECONFIG"));
        let pki = shared.with_file_name("pki");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let url = format!("https://127.0.0.1:{port}");
        // The same admin credentials, another server.
        let config = std::fs::read_to_string(&shared)
            .expect("the shared kubeconfig")
            .replace(services.get("KUBE_APISERVER"), &url);
        std::fs::create_dir_all(dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, config).unwrap();
        let log = dir.join("apiserver.log");
        let pki_file = |f: &str| pki.join(f).display().to_string();
        // The flags of tests/services/kube/service.sh, with this server's
        // port, issuer and etcd prefix.
        let child = Command::new(&apiserver)
            .args(["--etcd-servers", services.get("KUBE_ETCD")])
            .arg(format!("--etcd-prefix=/kith-{name}-{}", std::process::id()))
            .args(["--secure-port", &port.to_string()])
            .args([
                "--bind-address",
                "127.0.0.1",
                "--advertise-address",
                "127.0.0.1",
            ])
            .args(["--endpoint-reconciler-type", "none"])
            .args(["--cert-dir", &pki.display().to_string()])
            .args(["--tls-cert-file", &pki_file("apiserver.crt")])
            .args(["--tls-private-key-file", &pki_file("apiserver.key")])
            .args(["--client-ca-file", &pki_file("ca.crt")])
            .args(["--service-account-issuer", &url])
            .args(["--service-account-key-file", &pki_file("sa.pub")])
            .args(["--service-account-signing-key-file", &pki_file("sa.key")])
            .args(["--authorization-mode", "RBAC"])
            .args(["--disable-admission-plugins", "ServiceAccount"])
            .args(["--service-cluster-ip-range", "10.0.0.0/24"])
            .arg("--allow-privileged=true")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", apiserver.display()));
        let mut cluster = FreshCluster {
            child,
            kubeconfig,
            kubectl,
            log,
        };
        cluster.wait_ready();
        cluster
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("kube-apiserver exited ({exit}); see {}", self.log.display());
            }
            let ready = self
                .kubectl(&["get", "--raw", "/readyz"])
                .is_ok_and(|o| o == "ok");
            // The bootstrap controller creates `default` just after /readyz.
            if ready && self.kubectl(&["get", "namespace", "default"]).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the fresh API server is not ready after 120 s; see {}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// `kubectl ARGS` against this server: Ok(stdout) or Err(stderr).
    pub fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.kubectl)
            .args(["--kubeconfig", &self.kubeconfig.display().to_string()])
            .args(["--request-timeout=5s"])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for FreshCluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
