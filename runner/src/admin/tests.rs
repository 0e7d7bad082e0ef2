//! Tests of the admin port over real sockets: a server on 127.0.0.1:0, a fake
//! engine thread answering its requests, and a minimal HTTP/1.1 client.

use super::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

// ---------------------------------------------------------------- client

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// One request on a fresh connection (`Connection: close`, so the body ends
/// where the stream does).
fn request(addr: SocketAddr, method: &str, target: &str) -> HttpResponse {
    request_with(addr, method, target, "")
}

/// As [`request`], with extra header lines (each ending in CRLF).
fn request_with(addr: SocketAddr, method: &str, target: &str, headers: &str) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&String::from_utf8(raw).expect("UTF-8 response"))
}

fn parse_response(raw: &str) -> HttpResponse {
    let (head, body) = raw.split_once("\r\n\r\n").expect("end of headers");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    assert!(!chunked, "the test client reads Content-Length bodies only");
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn get(addr: SocketAddr, target: &str) -> HttpResponse {
    request(addr, "GET", target)
}

// ---------------------------------------------------------------- fixture

const ADA: &str = "ada@example.com";

fn ada_profile() -> Value {
    json!({"profile_id": "p-1", "kind": "person", "identifiers": [{"type": "email", "value": ADA}]})
}

/// A fake engine: answers lookups from a fixed table and writes savepoints,
/// until the server side of the channel is gone.
fn fake_engine(requests: Receiver<AdminRequest>) {
    for request in requests {
        match request {
            AdminRequest::Lookup {
                identifier_type,
                value,
                reply,
            } => {
                let _ = reply.send(fake_lookup(&identifier_type, &value));
            }
            AdminRequest::Savepoint { reply } => {
                let _ = reply.send(Ok(SavepointDone {
                    path: "/state/savepoints/sp-000001".to_owned(),
                    records: 3,
                    bytes: 4096,
                }));
            }
        }
    }
}

fn fake_lookup(identifier_type: &str, value: &str) -> LookupReply {
    match identifier_type {
        "email" if value == ADA => Ok(vec![ada_profile()]),
        "email" | "phone" => Ok(vec![]),
        "busy" => Err(LookupFailure::Unavailable("restoring state".to_owned())),
        _ => Err(LookupFailure::UnknownType {
            accepted: vec!["email".to_owned(), "phone".to_owned()],
        }),
    }
}

struct Fixture {
    server: AdminServer,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

impl Fixture {
    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }
}

fn short_timeouts() -> AdminConfig {
    AdminConfig {
        lookup_timeout: Duration::from_millis(200),
        savepoint_timeout: Duration::from_millis(200),
        shutdown_grace: Duration::from_millis(100),
        ..AdminConfig::default()
    }
}

/// A server whose engine side is `engine`, run on a thread of its own.
fn start_with_engine(
    capacity: usize,
    engine: impl FnOnce(Receiver<AdminRequest>) + Send + 'static,
) -> Fixture {
    start_with_config(capacity, short_timeouts(), engine)
}

fn start_with_config(
    capacity: usize,
    config: AdminConfig,
    engine: impl FnOnce(Receiver<AdminRequest>) + Send + 'static,
) -> Fixture {
    start_with_auth(capacity, config, auth::AdminAuth::Open, engine)
}

fn start_with_auth(
    capacity: usize,
    config: AdminConfig,
    auth: auth::AdminAuth,
    engine: impl FnOnce(Receiver<AdminRequest>) + Send + 'static,
) -> Fixture {
    let (requests, receiver) = request_channel(capacity);
    thread::spawn(move || engine(receiver));
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new());
    let state = AdminState {
        metrics: metrics.clone(),
        health: health.clone(),
        requests,
        auth,
        tls: None,
    };
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = AdminServer::start_with_config(addr, state, config).expect("start");
    Fixture {
        server,
        metrics,
        health,
    }
}

fn start() -> Fixture {
    start_with_engine(8, fake_engine)
}

/// The value of the sample line starting with `series ` in `text`.
fn sample(text: &str, series: &str) -> f64 {
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .parse()
        .expect("numeric sample")
}

// ---------------------------------------------------------------- metrics

#[test]
fn metrics_endpoint_serves_every_metric_in_text_format() {
    let fx = start();
    fx.metrics.add_observations(3);
    fx.metrics.add_observations(4);
    fx.metrics.add_dead_letters(1);
    fx.metrics.set_lag("observations", 7, 42);
    fx.metrics.observe_latency(Duration::from_millis(3));

    let response = get(fx.addr(), "/metrics");

    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4")
    );
    for name in [
        "kith_observations_total",
        "kith_dead_letters_total",
        "kith_consumer_lag",
        "kith_processing_latency_seconds",
        "kith_checkpoint_duration_seconds",
        "kith_checkpoint_size_bytes",
        "kith_checkpoint_last_success_timestamp_seconds",
        "kith_checkpoint_age_seconds",
        "kith_checkpoints_total",
        "kith_profiles",
        "kith_records",
        "kith_merges_total",
        "kith_splits_total",
    ] {
        assert!(
            response.body.contains(&format!("# HELP {name} ")),
            "{name} missing from:\n{}",
            response.body
        );
    }
    assert_eq!(sample(&response.body, "kith_observations_total"), 7.0);
    assert_eq!(sample(&response.body, "kith_dead_letters_total"), 1.0);
    assert_eq!(
        sample(
            &response.body,
            r#"kith_consumer_lag{partition="7",topic="observations"}"#
        ),
        42.0
    );
    // 3 ms falls in the 5 ms bucket but not the 2.5 ms one.
    let bucket = |le: &str| {
        sample(
            &response.body,
            &format!(r#"kith_processing_latency_seconds_bucket{{le="{le}"}}"#),
        )
    };
    assert_eq!(bucket("0.0025"), 0.0);
    assert_eq!(bucket("0.005"), 1.0);
}

#[test]
fn checkpoint_metrics_track_the_last_success_and_its_age() {
    let metrics = Metrics::new();
    metrics.checkpoint_completed(Duration::from_millis(1500), 2048, 1_000.0);
    metrics.checkpoint_failed();
    metrics.checkpoint_failed();

    metrics.update_checkpoint_age(1_100.0);
    let text = metrics.encode();

    assert_eq!(sample(&text, "kith_checkpoint_duration_seconds"), 1.5);
    assert_eq!(sample(&text, "kith_checkpoint_size_bytes"), 2048.0);
    assert_eq!(
        sample(&text, "kith_checkpoint_last_success_timestamp_seconds"),
        1_000.0
    );
    assert_eq!(sample(&text, "kith_checkpoint_age_seconds"), 100.0);
    assert_eq!(
        sample(&text, r#"kith_checkpoints_total{result="completed"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"kith_checkpoints_total{result="failed"}"#),
        2.0
    );
}

#[test]
fn render_computes_the_checkpoint_age_from_the_clock() {
    let metrics = Metrics::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    metrics.checkpoint_completed(Duration::from_secs(1), 1, now - 300.0);

    let age = sample(&metrics.render(), "kith_checkpoint_age_seconds");

    assert!((300.0..360.0).contains(&age), "age {age}");
}

#[test]
fn checkpoint_age_counts_from_start_until_a_checkpoint_exists() {
    let metrics = Metrics::new();
    let far_future = 4_000_000_000.0;

    metrics.update_checkpoint_age(far_future);
    let before = sample(&metrics.encode(), "kith_checkpoint_age_seconds");
    metrics.checkpoint_restored(far_future - 10.0);
    metrics.update_checkpoint_age(far_future);
    let after = sample(&metrics.encode(), "kith_checkpoint_age_seconds");

    // Counted from start (about now), not from 1970 or reported as 0.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((before - (far_future - now)).abs() < 60.0, "age {before}");
    assert_eq!(after, 10.0);
}

#[test]
fn gauges_and_counters_report_what_the_engine_set() {
    let metrics = Metrics::new();
    metrics.set_profiles(12);
    metrics.set_records(30);
    metrics.add_merges(2);
    metrics.add_splits(1);
    metrics.set_lag("t", -1, 5);
    metrics.set_lag("t", i32::MIN, 6);
    metrics.set_lag("t", 3, 9);
    metrics.remove_lag("t", 3);
    metrics.remove_lag("t", 99); // never set: a no-op

    let text = metrics.render();

    assert_eq!(sample(&text, "kith_profiles"), 12.0);
    assert_eq!(sample(&text, "kith_records"), 30.0);
    assert_eq!(sample(&text, "kith_merges_total"), 2.0);
    assert_eq!(sample(&text, "kith_splits_total"), 1.0);
    assert_eq!(
        sample(&text, r#"kith_consumer_lag{partition="-1",topic="t"}"#),
        5.0
    );
    assert_eq!(
        sample(
            &text,
            r#"kith_consumer_lag{partition="-2147483648",topic="t"}"#
        ),
        6.0
    );
    assert!(!text.contains(r#"partition="3""#), "{text}");
}

// ---------------------------------------------------------------- health

#[test]
fn healthz_answers_ok_even_when_not_ready() {
    let fx = start();
    assert!(!fx.health.ready());

    let response = get(fx.addr(), "/healthz");

    assert_eq!(response.status, 200);
    assert_eq!(response.body, "ok");
}

#[test]
fn readyz_follows_health_with_the_reason() {
    let fx = start();
    fx.health.set_not_ready("restoring state");

    let not_ready = get(fx.addr(), "/readyz");
    fx.health.set_ready(true);
    let ready = get(fx.addr(), "/readyz");
    fx.health.set_ready(false);
    let again = get(fx.addr(), "/readyz");

    assert_eq!(not_ready.status, 503);
    assert_eq!(not_ready.body, "restoring state");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body, "ready");
    assert_eq!(again.status, 503);
    assert_eq!(again.body, "restoring state");
}

// ---------------------------------------------------------------- profiles

#[test]
fn lookup_returns_the_engines_profiles() {
    let fx = start();

    let response = get(fx.addr(), "/v1/profiles?identifier=email:ada%40example.com");

    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json")));
    assert_eq!(response.json(), json!({"profiles": [ada_profile()]}));
}

#[test]
fn lookup_splits_at_the_first_colon_only() {
    // The value keeps its colons; the fake knows nobody by this one, so a
    // wrong split (type "email:x" → UnknownType, 400) would show.
    let fx = start();

    let response = get(fx.addr(), "/v1/profiles?identifier=email:x:y");

    assert_eq!(response.status, 404, "{}", response.body);
}

#[test]
fn lookup_without_a_match_is_404() {
    let fx = start();

    let response = get(
        fx.addr(),
        "/v1/profiles?identifier=email:nobody%40example.com",
    );

    assert_eq!(response.status, 404);
    let error = response.json()["error"].as_str().unwrap().to_owned();
    assert!(error.contains("email"), "{error}");
    assert!(
        !error.contains("nobody"),
        "the value must not be echoed: {error}"
    );
}

#[test]
fn lookup_rejects_a_missing_or_malformed_identifier() {
    let fx = start();
    for target in [
        "/v1/profiles",
        "/v1/profiles?id=email:a",
        "/v1/profiles?identifier=",
        "/v1/profiles?identifier=email",
        "/v1/profiles?identifier=:ada",
        "/v1/profiles?identifier=email:",
    ] {
        let response = get(fx.addr(), target);

        assert_eq!(response.status, 400, "{target}: {}", response.body);
        let error = response.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains("`identifier`"), "{target}: {error}");
        assert!(error.contains("TYPE:VALUE"), "{target}: {error}");
    }
}

#[test]
fn lookup_of_an_unknown_type_lists_the_accepted_types() {
    let fx = start();

    let response = get(fx.addr(), "/v1/profiles?identifier=fax:12345");

    assert_eq!(response.status, 400);
    let body = response.json();
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("`fax`"), "{error}");
    assert!(error.contains("email, phone"), "{error}");
    assert_eq!(body["accepted"], json!(["email", "phone"]));
}

#[test]
fn lookup_unavailable_in_the_engine_is_503() {
    let fx = start();

    let response = get(fx.addr(), "/v1/profiles?identifier=busy:1");

    assert_eq!(response.status, 503);
    assert!(response.json()["error"]
        .as_str()
        .unwrap()
        .contains("restoring state"));
}

// ---------------------------------------------------------------- savepoints

#[test]
fn savepoint_is_201_with_where_it_went() {
    let fx = start();

    let response = request(fx.addr(), "POST", "/v1/savepoints");

    assert_eq!(response.status, 201, "{}", response.body);
    assert_eq!(
        response.json(),
        json!({"path": "/state/savepoints/sp-000001", "records": 3, "bytes": 4096})
    );
}

#[test]
fn savepoint_failure_is_500_with_the_reason() {
    let fx = start_with_engine(8, |requests| {
        for request in requests {
            if let AdminRequest::Savepoint { reply } = request {
                let _ = reply.send(Err("disk full".to_owned()));
            }
        }
    });

    let response = request(fx.addr(), "POST", "/v1/savepoints");

    assert_eq!(response.status, 500);
    assert!(response.json()["error"]
        .as_str()
        .unwrap()
        .contains("disk full"));
}

// ---------------------------------------------------------------- engine unavailable

/// An engine that takes requests and never answers (keeping the reply
/// senders alive, so the server must time out rather than see them dropped).
fn silent_engine(requests: Receiver<AdminRequest>) {
    let held: Vec<AdminRequest> = requests.iter().collect();
    drop(held);
}

#[test]
fn no_answer_within_the_timeout_is_503() {
    let fx = start_with_engine(8, silent_engine);

    let lookup = get(fx.addr(), "/v1/profiles?identifier=email:a");
    let savepoint = request(fx.addr(), "POST", "/v1/savepoints");

    for response in [lookup, savepoint] {
        assert_eq!(response.status, 503, "{}", response.body);
        assert!(response.json()["error"]
            .as_str()
            .unwrap()
            .contains("did not answer"));
        assert_eq!(response.header("retry-after"), Some("1"));
    }
}

#[test]
fn a_full_request_channel_is_503_without_waiting() {
    // Capacity 1 and an engine that never takes a request: the first request
    // fills the channel (and times out); the second finds it full.
    let (tx, rx) = std::sync::mpsc::channel::<Receiver<AdminRequest>>();
    let fx = start_with_engine(1, move |requests| {
        let _ = tx.send(requests); // keep the receiver alive, untouched
    });
    let _receiver = rx.recv().unwrap();

    let first = get(fx.addr(), "/v1/profiles?identifier=email:a");
    let second = get(fx.addr(), "/v1/profiles?identifier=email:a");

    assert_eq!(first.status, 503);
    assert!(first.body.contains("did not answer"), "{}", first.body);
    assert_eq!(second.status, 503);
    assert!(second.body.contains("busy"), "{}", second.body);
}

#[test]
fn a_closed_request_channel_is_503() {
    let (dropped, wait) = std::sync::mpsc::channel();
    let fx = start_with_engine(8, move |requests| {
        drop(requests);
        let _ = dropped.send(());
    });
    wait.recv().unwrap();

    let response = get(fx.addr(), "/v1/profiles?identifier=email:a");

    assert_eq!(response.status, 503);
    assert!(response.body.contains("stopping"), "{}", response.body);
}

#[test]
fn a_dropped_reply_is_503() {
    let fx = start_with_engine(8, |requests| for _ in requests {});

    let response = request(fx.addr(), "POST", "/v1/savepoints");

    assert_eq!(response.status, 503);
    assert!(response.body.contains("dropped"), "{}", response.body);
}

// ---------------------------------------------------------------- routing and lifecycle

#[test]
fn anything_else_is_404() {
    let fx = start();
    for (method, target) in [
        ("GET", "/"),
        ("GET", "/v1/profile"),
        ("GET", "/v1/savepoints"),
        ("POST", "/metrics"),
    ] {
        let response = request(fx.addr(), method, target);

        assert_eq!(response.status, 404, "{method} {target}");
        assert!(response.json()["error"]
            .as_str()
            .unwrap()
            .contains("/v1/profiles"));
    }
}

#[test]
fn binding_a_taken_port_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (requests, _receiver) = request_channel(1);
    let state = AdminState {
        metrics: Arc::new(Metrics::new()),
        health: Arc::new(Health::new()),
        requests,
        auth: auth::AdminAuth::Open,
        tls: None,
    };

    let err = AdminServer::start(addr, state)
        .err()
        .expect("bind must fail");

    assert!(matches!(err, AdminError::Bind { addr: a, .. } if a == addr));
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn shutdown_stops_serving_even_with_a_request_in_flight() {
    // A savepoint the engine never answers, under the default 10-minute
    // timeout: shutdown must not wait for it.
    let config = AdminConfig {
        shutdown_grace: Duration::from_millis(100),
        ..AdminConfig::default()
    };
    let fx = start_with_config(8, config, silent_engine);
    let addr = fx.addr();
    let pending = thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        // An error here means the server closed the connection: what we check.
        let _ = stream
            .write_all(b"POST /v1/savepoints HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        raw
    });
    thread::sleep(Duration::from_millis(200));

    let started = std::time::Instant::now();
    fx.server.shutdown().expect("clean shutdown");

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting on {addr}"
    );
    // The abandoned request's connection is closed, not left hanging.
    let raw = pending.join().unwrap();
    assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
}

#[test]
fn lookup_request_debug_redacts_the_value() {
    let (reply, _answer) = tokio::sync::oneshot::channel();
    let request = AdminRequest::Lookup {
        identifier_type: "email".to_owned(),
        value: ADA.to_owned(),
        reply,
    };

    let shown = format!("{request:?}");

    assert!(shown.contains("email"), "{shown}");
    assert!(!shown.contains(ADA), "{shown}");
}

#[test]
fn request_channel_never_has_zero_capacity() {
    let (requests, _receiver) = request_channel(0);
    let (reply, _answer) = tokio::sync::oneshot::channel();

    assert!(requests.try_send(AdminRequest::Savepoint { reply }).is_ok());
}

// ---------------------------------------------------------------- security

fn token_auth(token: &str) -> auth::AdminAuth {
    auth::AdminAuth::Token(Arc::new(token.as_bytes().to_vec()))
}

#[test]
fn profiles_and_savepoints_need_the_token_probes_and_metrics_do_not() {
    let fx = start_with_auth(8, short_timeouts(), token_auth("s3cret"), fake_engine);
    let lookup = format!("/v1/profiles?identifier=email:{ADA}");
    for (method, target) in [("GET", lookup.as_str()), ("POST", "/v1/savepoints")] {
        let none = request(fx.addr(), method, target);
        assert_eq!(none.status, 401, "{method} {target}: {}", none.body);
        assert_eq!(none.header("www-authenticate"), Some("Bearer"));
        assert!(!none.body.contains(ADA), "{}", none.body);
        let wrong = request_with(fx.addr(), method, target, "Authorization: Bearer guess\r\n");
        assert_eq!(wrong.status, 401, "{method} {target}: {}", wrong.body);
        assert!(!wrong.body.contains("s3cret"), "{}", wrong.body);
        let right = request_with(
            fx.addr(),
            method,
            target,
            "Authorization: Bearer s3cret\r\n",
        );
        assert!(
            matches!(right.status, 200 | 201),
            "{method} {target}: {}",
            right.body
        );
    }
    for open in ["/metrics", "/healthz"] {
        assert_eq!(get(fx.addr(), open).status, 200, "{open}");
    }
    let metrics = get(fx.addr(), "/metrics").body;
    assert_eq!(
        sample(&metrics, "kith_admin_requests_denied_total{code=\"401\"}"),
        4.0
    );
}

#[test]
fn an_open_admin_port_refuses_to_listen_beyond_loopback() {
    let (requests, _receiver) = request_channel(1);
    let state = AdminState {
        metrics: Arc::new(Metrics::new()),
        health: Arc::new(Health::new()),
        requests,
        auth: auth::AdminAuth::Open,
        tls: None,
    };
    let err = AdminServer::start("0.0.0.0:0".parse().unwrap(), state)
        .err()
        .expect("an open port on every address is refused");
    assert!(err.to_string().contains("--admin-token-file"), "{err}");
}

#[test]
fn one_savepoint_at_a_time_later_ones_are_told_to_wait() {
    // The engine holds the first savepoint until told to answer.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let engine = move |requests: Receiver<AdminRequest>| {
        for request in requests {
            if let AdminRequest::Savepoint { reply } = request {
                let _ = wait.recv();
                let _ = reply.send(Ok(SavepointDone {
                    path: "/sp".to_owned(),
                    records: 1,
                    bytes: 1,
                }));
            }
        }
    };
    let config = AdminConfig {
        savepoint_timeout: Duration::from_secs(20),
        ..short_timeouts()
    };
    let fx = start_with_config(8, config, engine);
    let addr = fx.addr();
    let first = thread::spawn(move || request(addr, "POST", "/v1/savepoints"));
    thread::sleep(Duration::from_millis(300));
    let second = request(addr, "POST", "/v1/savepoints");
    assert_eq!(second.status, 429, "{}", second.body);
    assert!(second.header("retry-after").is_some());
    go.send(()).unwrap();
    assert_eq!(first.join().unwrap().status, 201);
    // The turn is free again.
    go.send(()).unwrap();
    assert_eq!(request(addr, "POST", "/v1/savepoints").status, 201);
}

#[test]
fn a_client_slow_with_its_headers_is_disconnected() {
    let config = AdminConfig {
        header_read_timeout: Duration::from_millis(300),
        ..short_timeouts()
    };
    let fx = start_with_config(8, config, fake_engine);
    // Half a request, then nothing: the server gives up on the headers.
    assert_closed_soon(fx.addr(), b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
    // An idle connection is closed the same way.
    assert_closed_soon(fx.addr(), b"");
}

/// Connects, writes `sent`, and checks the server closes the connection
/// within 5 s (the timeouts under test are 300 ms).
fn assert_closed_soon(addr: SocketAddr, sent: &[u8]) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(sent).unwrap();
    let started = std::time::Instant::now();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn connections_beyond_the_limit_are_closed_and_the_port_keeps_serving() {
    let config = AdminConfig {
        max_connections: 4,
        header_read_timeout: Duration::from_secs(30),
        ..short_timeouts()
    };
    let fx = start_with_config(8, config, fake_engine);
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(fx.addr()).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(fx.addr()).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut raw = Vec::new();
    let closed = matches!(extra.read_to_end(&mut raw), Ok(0)) || raw.is_empty();
    assert!(closed, "{}", String::from_utf8_lossy(&raw));
    drop(held);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(get(fx.addr(), "/healthz").status, 200);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Any request target the HTTP parser accepts gives an identifier or a
    /// 400 message naming the parameter; never a panic.
    #[test]
    fn any_query_string_gives_an_identifier_or_a_message(query in "\\PC{0,40}", raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
        for target in [format!("/v1/profiles?{query}"), format!("/v1/profiles?identifier={query}")] {
            if let Ok(uri) = target.parse::<axum::http::Uri>() {
                match identifier_of(&uri) {
                    Ok((kind, value)) => proptest::prop_assert!(!kind.is_empty() && !value.is_empty()),
                    Err(message) => proptest::prop_assert!(message.contains("identifier"), "{}", message),
                }
            }
        }
        if let Ok(uri) = axum::http::Uri::try_from(raw.as_slice()) {
            if let Err(message) = identifier_of(&uri) {
                proptest::prop_assert!(message.contains("identifier"), "{}", message);
            }
        }
    }
}
