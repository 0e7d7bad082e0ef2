//! HTTP probes, as the kubelet runs them: a GET with a timeout, success
//! for a status from 200 to 399.

use super::template::HttpProbe;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// The outcome of one probe: the status code, or why there was none.
pub fn check(probe: &HttpProbe) -> Result<u16, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], probe.port));
    let mut stream =
        TcpStream::connect_timeout(&addr, probe.timeout).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(probe.timeout))
        .and_then(|()| stream.set_write_timeout(Some(probe.timeout)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: kube-probe/kith-e2e\r\nConnection: close\r\n\r\n",
        probe.path, probe.port
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| format!("read: {e}"))?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {line:?}"))
}

/// True for the codes the kubelet counts as success.
pub fn passed(outcome: &Result<u16, String>) -> bool {
    matches!(outcome, Ok(code) if (200..400).contains(code))
}
