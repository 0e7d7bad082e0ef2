//! moto (S3) from tests: fresh buckets, and raw requests to look at what
//! the runner stored.

use super::services::Services;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A bucket name no other test, run or binary uses, created on moto.
pub fn fresh_bucket(services: &Services) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let bucket = format!(
        "kith-test-{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    );
    let (status, _, body) = http(services.get("S3_ENDPOINT"), "PUT", &format!("/{bucket}"));
    assert_eq!(status, 200, "CreateBucket {bucket} on moto: {body}");
    bucket
}

/// One plain HTTP/1.1 request to moto, returning the status, the headers
/// (names lowercased) and the body. moto checks no signature, but refuses
/// reads of signed uploads to requests without one (anonymous access), so
/// send a SigV4-shaped header, as `tests/services/moto/service.sh` does.
const FAKE_SIGV4: &str = "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0000";

pub fn http(endpoint: &str, method: &str, path: &str) -> (u16, Vec<(String, String)>, String) {
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream =
        TcpStream::connect(authority).unwrap_or_else(|e| panic!("connect {authority}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: {FAKE_SIGV4}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// The keys under `prefix` in `bucket` (ListObjectsV2, following
/// continuation tokens).
pub fn list_keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("/{bucket}?list-type=2&prefix={}", query_escape(prefix));
        if let Some(t) = &token {
            path.push_str(&format!("&continuation-token={}", query_escape(t)));
        }
        let (status, _, body) = http(endpoint, "GET", &path);
        assert_eq!(status, 200, "ListObjectsV2 {bucket}/{prefix}: {body}");
        keys.extend(tag_values(&body, "Key"));
        token = tag_values(&body, "NextContinuationToken")
            .into_iter()
            .next();
        if token.is_none() {
            return keys;
        }
    }
}

/// The text of every `<tag>…</tag>` in an XML answer.
fn tag_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(v, _)| v.to_string()))
        .collect()
}

fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
