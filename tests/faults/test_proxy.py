"""Tests of the fault proxy against a small upstream of their own (no moto, no Gremlin Server).

    python3 -m pytest -q tests/faults
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest

PROXY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proxy.py")
DDB = "DynamoDB_20120810."


class Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self):
        super().__init__(("127.0.0.1", 0), UpstreamHandler)
        self.seen = []
        self.lock = threading.Lock()

    @property
    def port(self):
        return self.server_address[1]

    def requests(self):
        with self.lock:
            return list(self.seen)


class UpstreamHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        with self.server.lock:
            self.server.seen.append(record)
        target = self.headers.get("X-Amz-Target", "")
        if target == DDB + "BatchWriteItem":
            payload = json.dumps({"UnprocessedItems": {}, "ConsumedCapacity": []}).encode()
            return self._answer(
                200,
                payload,
                [("Content-Type", "application/x-amz-json-1.0"), ("x-amz-crc32", str(zlib.crc32(payload)))],
            )
        if self.path.startswith("/big/"):
            n = int(self.path.split("/")[2])
            return self._answer(200, (b"0123456789abcdef" * (n // 16 + 1))[:n])
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path == "/idle-close":  # keeps nothing alive, without saying so
            self.close_connection = True
            return self._answer(200, b"closing quietly")
        if self.path == "/close":
            self.close_connection = True
            return self._answer(200, b"bye", [("Connection", "close")])
        info = {
            "method": self.command,
            "path": self.path,
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
        self._answer(200, json.dumps(info).encode(), [("Content-Type", "application/json"), ("X-Upstream", "yes")])

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


@pytest.fixture
def upstream():
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class ProxyProcess:
    def __init__(self, upstream_url, tmp_path):
        self.port_file = tmp_path / "proxy.port"
        self.stderr_path = tmp_path / "proxy.stderr"
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, PROXY, "--listen", "127.0.0.1:0", "--upstream", upstream_url, "--port-file", str(self.port_file)],
            stderr=self.stderr,
        )
        deadline = time.monotonic() + 10
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("proxy did not start: " + self.log())
            time.sleep(0.01)
        self.port = int(self.port_file.read_text().strip())

    def log(self):
        self.stderr.flush()
        return self.stderr_path.read_text()

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        own = conn is None
        conn = conn or self.conn()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            if own:
                conn.close()

    def plan(self, plan):
        status, _, body = self.request("PUT", "/__faults", json.dumps(plan))
        assert status == 200, body
        return json.loads(body)

    def state(self):
        status, _, body = self.request("GET", "/__faults")
        assert status == 200
        return json.loads(body)

    def ddb(self, operation, payload, conn=None):
        headers = {
            "X-Amz-Target": DDB + operation,
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/dynamodb/aws4_request",
        }
        return self.request("POST", "/", json.dumps(payload), headers, conn)

    def gremlin(self, query, conn=None):
        return self.request("POST", "/gremlin", json.dumps({"gremlin": query}), {"Content-Type": "application/json"}, conn)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.stderr.close()


@pytest.fixture
def proxy(upstream, tmp_path):
    p = ProxyProcess(f"http://127.0.0.1:{upstream.port}", tmp_path)
    yield p
    p.stop()


def batch(tables):
    """A BatchWriteItem body: {table: n} puts with pk t-i."""
    return {
        "RequestItems": {
            table: [{"PutRequest": {"Item": {"pk": {"S": f"{table}-{i}"}, "v": {"N": str(i)}}}} for i in range(n)]
            for table, n in tables.items()
        },
        "ReturnConsumedCapacity": "TOTAL",
    }


# ---- forwarding ----------------------------------------------------------------------------


def test_forwards_requests_and_keeps_the_client_connection_alive(proxy, upstream):
    conn = proxy.conn()
    socks = set()
    for i in range(3):
        body = f"payload-{i}".encode()
        status, headers, data = proxy.request("PUT", f"/things/{i}?x=1", body, {"X-Custom": f"v{i}"}, conn)
        socks.add(id(conn.sock))
        assert status == 200 and headers["x-upstream"] == "yes"
        info = json.loads(data)
        assert info == {
            "method": "PUT",
            "path": f"/things/{i}?x=1",
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
    conn.close()
    assert len(socks) == 1, "the proxy closed a keep-alive client connection"
    seen = upstream.requests()
    assert [r["headers"]["x-custom"] for r in seen] == ["v0", "v1", "v2"]
    assert seen[0]["headers"]["host"] == f"127.0.0.1:{proxy.port}"
    assert proxy.state()["counters"]["forwarded"] == 3


def test_chunked_request_body_is_forwarded_with_a_length(proxy, upstream):
    conn = proxy.conn()
    conn.putrequest("POST", "/chunky")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for part in (b"abc", b"defgh", b"i" * 5000):
        conn.send(b"%x\r\n%s\r\n" % (len(part), part))
    conn.send(b"0\r\n\r\n")
    resp = conn.getresponse()
    info = json.loads(resp.read())
    conn.close()
    expected = b"abcdefgh" + b"i" * 5000
    assert info["body_len"] == len(expected) and info["body_sha256"] == hashlib.sha256(expected).hexdigest()
    headers = upstream.requests()[0]["headers"]
    assert headers["content-length"] == str(len(expected)) and "transfer-encoding" not in headers


def test_large_bodies_both_ways(proxy):
    body = os.urandom(6 * 1024 * 1024)
    status, _, data = proxy.request("POST", "/upload", body)
    assert status == 200 and json.loads(data)["body_sha256"] == hashlib.sha256(body).hexdigest()
    n = 5 * 1024 * 1024 + 3
    status, _, data = proxy.request("GET", f"/big/{n}")
    assert status == 200 and len(data) == n and data[:16] == b"0123456789abcdef"


def test_upstream_chunked_close_and_head_responses(proxy):
    conn = proxy.conn()
    status, headers, data = proxy.request("GET", "/chunked", conn=conn)
    assert (status, data) == (200, b"hello chunked world")
    status, headers, data = proxy.request("GET", "/close", conn=conn)
    assert (status, data) == (200, b"bye") and headers.get("connection") != "close"
    sock = id(conn.sock)
    status, headers, data = proxy.request("HEAD", "/anything", conn=conn)
    assert status == 200 and data == b"" and int(headers["content-length"]) > 0
    status, _, _ = proxy.request("GET", "/after", conn=conn)
    assert status == 200 and id(conn.sock) == sock
    conn.close()


def test_an_upstream_connection_closed_while_idle_is_replaced(proxy, upstream):
    conn = proxy.conn()
    assert proxy.request("GET", "/idle-close", conn=conn)[2] == b"closing quietly"
    time.sleep(0.1)
    status, _, data = proxy.request("POST", "/next", b"once", conn=conn)
    assert status == 200 and json.loads(data)["path"] == "/next"
    conn.close()
    assert [r["path"] for r in upstream.requests()] == ["/idle-close", "/next"]


def test_a_malformed_request_gets_400_and_the_proxy_carries_on(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(b"NONSENSE\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400 ")
    assert proxy.request("GET", "/fine")[0] == 200


def test_many_concurrent_connections(proxy, upstream):
    def worker(n):
        conn = proxy.conn()
        for i in range(15):
            body = f"{n}-{i}".encode() * 50
            status, _, data = proxy.request("POST", f"/c/{n}/{i}", body, conn=conn)
            assert status == 200 and json.loads(data)["body_sha256"] == hashlib.sha256(body).hexdigest()
        conn.close()

    with ThreadPoolExecutor(48) as pool:
        list(pool.map(worker, range(48)))
    assert len(upstream.requests()) == 48 * 15


def test_upstream_down_gives_502(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = ProxyProcess(f"http://127.0.0.1:{port}", tmp_path)
    try:
        status, _, body = p.request("GET", "/")
        assert status == 502 and b"upstream" in body
        assert p.state()["counters"]["upstream_errors"] == 1
    finally:
        p.stop()


# ---- control API ---------------------------------------------------------------------------


def test_control_api(proxy, upstream):
    state = proxy.state()
    assert state["plan"] is None and state["counters"]["forwarded"] == 0
    status, _, body = proxy.request("PUT", "/__faults", json.dumps({"faults": [{"kind": "nope"}]}))
    assert status == 400 and "kind" in json.loads(body)["error"]
    status, _, body = proxy.request("PUT", "/__faults", json.dumps({"faults": [{"kind": "throttle", "rates": 1}]}))
    assert status == 400 and "rates" in json.loads(body)["error"]
    status, _, body = proxy.request("PUT", "/__faults", json.dumps({"faults": [{"kind": "delay", "ms": 1, "rate": 2}]}))
    assert status == 400
    status, _, _ = proxy.request("PUT", "/__faults", b"{not json")
    assert status == 400
    state = proxy.plan({"seed": 3, "faults": [{"kind": "throttle", "match": "PutItem", "count": 2}]})
    assert state["plan"]["seed"] == 3
    assert state["plan"]["faults"] == [
        {"kind": "throttle", "rate": 1.0, "count": 2, "match": "PutItem", "injected": 0, "exhausted": False}
    ]
    status, _, _ = proxy.request("GET", "/__faults/nothing")
    assert status == 404
    status, _, _ = proxy.request("POST", "/__faults")
    assert status == 405
    status, _, body = proxy.request("DELETE", "/__faults")
    assert status == 200 and json.loads(body)["plan"] is None
    assert upstream.requests() == [], "control requests must never be forwarded"


# ---- faults --------------------------------------------------------------------------------


def test_throttle_dynamodb(proxy, upstream):
    proxy.plan({"faults": [{"kind": "throttle"}]})
    status, headers, body = proxy.ddb("PutItem", {"TableName": "t", "Item": {"pk": {"S": "a"}}})
    assert status == 400
    assert headers["content-type"] == "application/x-amz-json-1.0"
    assert headers["x-amz-crc32"] == str(zlib.crc32(body)) and len(headers["x-amzn-requestid"]) == 52
    payload = json.loads(body)
    assert payload["__type"] == "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    assert payload["message"].startswith("The level of configured provisioned throughput for the table was exceeded.")
    proxy.plan({"faults": [{"kind": "throttle", "error": "ThrottlingException"}]})
    status, _, body = proxy.ddb("DescribeTable", {"TableName": "t"})
    assert status == 400 and json.loads(body)["__type"] == "com.amazon.coral.availability#ThrottlingException"
    assert upstream.requests() == []
    assert proxy.state()["counters"]["injected"]["throttle"] == 2


def test_throttle_and_concurrent_modification_gremlin(proxy, upstream):
    proxy.plan({"faults": [{"kind": "throttle", "count": 1}, {"kind": "concurrent_modification", "count": 1}]})
    status, headers, body = proxy.gremlin("g.V().count()")
    payload = json.loads(body)
    assert status == 500 and headers["content-type"] == "application/json"
    assert payload["code"] == "ThrottlingException" and payload["detailedMessage"] and payload["requestId"]
    assert payload["message"] == payload["detailedMessage"]
    assert headers["x-amzn-requestid"] == payload["requestId"]
    status, _, body = proxy.gremlin("g.mergeV([(T.id): 'p1'])")
    payload = json.loads(body)
    assert status == 500 and payload["code"] == "ConcurrentModificationException"
    assert payload["detailedMessage"].startswith("Failed to complete operation due to conflicting concurrent operations.")
    status, _, _ = proxy.gremlin("g.V().count()")
    assert status == 200 and len(upstream.requests()) == 1
    proxy.plan({"faults": [{"kind": "throttle", "error": "TooManyRequestsException"}]})
    status, _, body = proxy.gremlin("g.V()")
    assert status == 429 and json.loads(body)["code"] == "TooManyRequestsException"


def test_concurrent_modification_never_hits_dynamodb(proxy, upstream):
    proxy.plan({"faults": [{"kind": "concurrent_modification"}]})
    status, _, _ = proxy.ddb("PutItem", {"TableName": "t"})
    assert status == 200 and len(upstream.requests()) == 1


def test_match_on_target_and_on_body(proxy, upstream):
    proxy.plan({"faults": [{"kind": "throttle", "match": "BatchWriteItem"}, {"kind": "throttle", "match": "mergeV"}]})
    assert proxy.ddb("PutItem", {"TableName": "t"})[0] == 200
    assert proxy.ddb("BatchWriteItem", batch({"t": 2}))[0] == 400
    assert proxy.gremlin("g.V('x')")[0] == 200
    assert proxy.gremlin("g.mergeV([(T.id): 'x'])")[0] == 500
    assert [f["injected"] for f in proxy.state()["plan"]["faults"]] == [1, 1]


def test_match_on_path_and_method(proxy, upstream):
    proxy.plan({"faults": [{"kind": "throttle", "path": "_metadata", "method": "PUT"}]})
    assert proxy.gremlin("g.V('x')")[0] == 200, "another path passes"
    assert proxy.request("GET", "/bucket/chk-1/_metadata")[0] == 200, "another method passes"
    assert proxy.request("PUT", "/bucket/chk-1/_metadata", b"{}")[0] == 500
    proxy.plan({"faults": [{"kind": "error", "status": 403, "path": "wal-", "count": 1}]})
    status, _, body = proxy.request("GET", "/bucket/shared/s/wal-0000000001.bin")
    assert status == 403 and b"injected error 403" in body
    assert proxy.request("GET", "/bucket/shared/s/wal-0000000001.bin")[0] == 200, "count reached"
    assert len([r for r in upstream.requests() if "wal-" in r["path"]]) == 1
    assert proxy.state()["plan"]["faults"][0]["injected"] == 1
    with pytest.raises(AssertionError):
        proxy.plan({"faults": [{"kind": "throttle", "method": "PATCH"}]})


def test_count_and_first_fault_that_fires_applies(proxy):
    proxy.plan(
        {
            "faults": [
                {"kind": "throttle", "rate": 0},
                {"kind": "throttle", "count": 2, "error": "ThrottlingException"},
                {"kind": "outage", "seconds": 60, "mode": "503", "count": 1},
            ]
        }
    )
    results = [proxy.ddb("GetItem", {"TableName": "t"}) for _ in range(4)]
    assert [r[0] for r in results] == [400, 400, 503, 200]
    assert json.loads(results[2][2]) == {}
    state = proxy.state()
    assert [f["injected"] for f in state["plan"]["faults"]] == [0, 2, 1]
    assert state["counters"]["injected"]["throttle"] == 2 and state["counters"]["injected"]["outage"] == 1


def test_seeded_rate_is_reproducible(proxy):
    def pattern(seed):
        proxy.plan({"seed": seed, "faults": [{"kind": "throttle", "rate": 0.5}]})
        return [proxy.ddb("GetItem", {"TableName": "t"})[0] for _ in range(40)]

    first, again, other = pattern(7), pattern(7), pattern(8)
    assert first == again and first != other
    assert 8 <= first.count(400) <= 32


def test_unprocessed_forwards_a_subset_and_reports_the_rest(proxy, upstream):
    proxy.plan({"seed": 1, "faults": [{"kind": "unprocessed", "match": "BatchWriteItem"}]})
    request = batch({"profiles": 15, "identifiers": 10})
    status, headers, body = proxy.ddb("BatchWriteItem", request)
    assert status == 200 and headers["x-amz-crc32"] == str(zlib.crc32(body))
    unprocessed = json.loads(body)["UnprocessedItems"]
    forwarded = json.loads(upstream.requests()[0]["body"])
    assert forwarded["ReturnConsumedCapacity"] == "TOTAL"
    sent = forwarded["RequestItems"]
    n_sent = sum(len(v) for v in sent.values())
    n_held = sum(len(v) for v in unprocessed.values())
    assert n_sent >= 1 and n_held >= 1 and n_sent + n_held == 25
    for table, writes in request["RequestItems"].items():
        together = sent.get(table, []) + unprocessed.get(table, [])
        assert sorted(json.dumps(w, sort_keys=True) for w in together) == sorted(
            json.dumps(w, sort_keys=True) for w in writes
        )
        assert all("PutRequest" in w for w in unprocessed.get(table, []))
    # other operations and a plan without the fault pass untouched
    assert proxy.ddb("PutItem", {"TableName": "t"})[0] == 200
    assert json.loads(upstream.requests()[1]["body"]) == {"TableName": "t"}


def test_unprocessed_single_item_batch_is_held_back_whole(proxy, upstream):
    proxy.plan({"faults": [{"kind": "unprocessed"}]})
    request = batch({"t": 1})
    status, _, body = proxy.ddb("BatchWriteItem", request)
    assert status == 200 and json.loads(body) == {"UnprocessedItems": request["RequestItems"]}
    assert upstream.requests() == []


@pytest.mark.parametrize("mode", ["close", "reset", "partial"])
def test_lose_response_forwards_then_drops_the_answer(proxy, upstream, mode):
    proxy.plan({"faults": [{"kind": "lose_response", "count": 1, "mode": mode}]})
    conn = proxy.conn()
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        proxy.request("POST", "/write", b"x" * 1000, conn=conn)
    conn.close()
    assert [r["path"] for r in upstream.requests()] == ["/write"], "the write must have reached the upstream"
    assert proxy.request("POST", "/write", b"again")[0] == 200
    assert proxy.state()["counters"]["injected"]["lose_response"] == 1


def test_outage_reset_then_recovers(proxy, upstream):
    proxy.plan({"faults": [{"kind": "outage", "seconds": 0.6, "mode": "reset"}]})
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        proxy.request("GET", "/during")
    assert proxy.state()["plan"]["faults"][0]["remaining_seconds"] > 0
    time.sleep(0.7)
    assert proxy.request("GET", "/after")[0] == 200
    assert [r["path"] for r in upstream.requests()] == ["/after"]


def test_outage_503(proxy, upstream):
    proxy.plan({"faults": [{"kind": "outage", "seconds": 30, "mode": "503"}]})
    status, headers, body = proxy.ddb("GetItem", {"TableName": "t"})
    assert (status, body, headers["content-type"]) == (503, b"{}", "application/x-amz-json-1.0")
    assert upstream.requests() == []


def test_delay(proxy, upstream):
    proxy.plan({"faults": [{"kind": "delay", "ms": 300}]})
    start = time.monotonic()
    assert proxy.request("GET", "/slow")[0] == 200
    assert time.monotonic() - start >= 0.3
    assert len(upstream.requests()) == 1


def test_log_has_one_line_per_fault_and_no_bodies(proxy):
    proxy.plan({"faults": [{"kind": "throttle", "count": 2}]})
    secret = "alice.secret@example.com"
    for _ in range(3):
        proxy.ddb("PutItem", {"TableName": "t", "Item": {"email": {"S": secret}}})
    lines = [line for line in proxy.log().splitlines() if "throttle (fault 0)" in line]
    assert len(lines) == 2 and "PutItem" in lines[0]
    assert secret not in proxy.log()


# ---- process -------------------------------------------------------------------------------


def test_refuses_a_non_loopback_listen_address(tmp_path):
    for address in ("0.0.0.0:0", "192.0.2.1:8080", "example.com:80"):
        result = subprocess.run(
            [sys.executable, PROXY, "--listen", address, "--upstream", "http://127.0.0.1:1"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert result.returncode != 0 and "loopback" in result.stderr


def test_exits_cleanly_on_sigterm(proxy):
    idle = socket.create_connection(("127.0.0.1", proxy.port))
    assert proxy.request("GET", "/")[0] == 200
    proxy.proc.send_signal(signal.SIGTERM)
    assert proxy.proc.wait(timeout=5) == 0
    idle.close()
