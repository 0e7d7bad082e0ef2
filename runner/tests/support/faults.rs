//! The fault-injecting proxy of `tests/faults/` in front of a test service.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Proxy {
    child: Child,
    pub port: u16,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://host:port`), its log in `dir`.
    pub fn start(upstream: &str, dir: &Path, name: &str) -> Proxy {
        let port_file = dir.join(format!("{name}.port"));
        let child = Command::new("python3")
            .arg(super::services::workspace_root().join("tests/faults/proxy.py"))
            .args(["--listen", "127.0.0.1:0", "--upstream", upstream])
            .arg("--port-file")
            .arg(&port_file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
            .spawn()
            .expect("python3 runs the fault proxy");
        assert!(
            super::runner::wait_until(20, || port_file.exists()),
            "the fault proxy {name} did not start"
        );
        let port = std::fs::read_to_string(&port_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Proxy { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn control(&self, method: &str, body: &str) -> serde_json::Value {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "{method} /__faults HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let (head, payload) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}: {payload}");
        serde_json::from_str(payload).unwrap()
    }

    /// Replaces the fault plan.
    pub fn set(&self, plan: serde_json::Value) -> serde_json::Value {
        self.control("PUT", &plan.to_string())
    }

    /// The plan and the counters.
    pub fn state(&self) -> serde_json::Value {
        self.control("GET", "")
    }

    pub fn clear(&self) {
        self.control("DELETE", "");
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
