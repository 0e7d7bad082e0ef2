#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 proxy for the integration tests.

It sits between a client (the runner, boto3, curl) and one upstream HTTP
service (moto for DynamoDB, Gremlin Server for Neptune), forwards every
request and relays every response, and on demand injects the faults neither
service can produce by itself: throttling, partial BatchWriteItem results,
lost responses, outages and delays. The plan of faults is set at run time
through a small JSON control API under ``/__faults`` on the same port.

Standard library only (asyncio streams). See README.md next to this file for
the plan format, the error bodies and how tests use it.

    python3 tests/faults/proxy.py --listen 127.0.0.1:0 \
        --upstream http://127.0.0.1:15000 --port-file target/faults.port
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import signal
import socket
import string
import struct
import sys
import time
import uuid
import zlib
from urllib.parse import urlsplit

CONTROL_PREFIX = "/__faults"
MAX_HEAD = 1 << 20  # request or response head (request line + headers)
DYNAMODB_TARGET_PREFIX = "DynamoDB_20120810."

# Never copied from one side to the other: they describe this connection's
# framing, which the proxy re-creates (bodies are always re-sent with a
# Content-Length). `Expect` is answered by the proxy itself.
HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",
    )
)

KINDS = ("throttle", "concurrent_modification", "unprocessed", "lose_response", "outage", "delay", "error")
KIND_KEYS = {
    "throttle": {"error"},
    "concurrent_modification": set(),
    "unprocessed": set(),
    "lose_response": {"mode"},
    "outage": {"seconds", "mode"},
    "delay": {"ms"},
    "error": {"status"},
}
COMMON_KEYS = {"kind", "rate", "count", "match", "path", "query", "method"}
LOSE_MODES = ("close", "reset", "partial")
OUTAGE_MODES = ("reset", "503")

DYNAMODB_ERRORS = {
    "ProvisionedThroughputExceededException": (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    ),
    "ThrottlingException": (
        "com.amazon.coral.availability#ThrottlingException",
        "Rate of requests exceeds the allowed throughput.",
    ),
    "RequestLimitExceeded": (
        "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
        "Throughput exceeds the current throughput limit for your account. "
        "Please contact AWS Support at https://aws.amazon.com/support request a limit increase",
    ),
}
DYNAMODB_DEFAULT_ERROR = "ProvisionedThroughputExceededException"

NEPTUNE_ERRORS = {
    # code: (HTTP status, detailedMessage)
    "ThrottlingException": (500, "Rate of requests exceeds the maximum throughput."),
    "TooManyRequestsException": (429, "Too many requests."),
    "ConcurrentModificationException": (
        500,
        "Failed to complete operation due to conflicting concurrent operations. Please retry.",
    ),
}
NEPTUNE_DEFAULT_THROTTLE = "ThrottlingException"
NEPTUNE_THROTTLES = ("ThrottlingException", "TooManyRequestsException")
THROTTLE_ERRORS = sorted(set(DYNAMODB_ERRORS) | {"TooManyRequestsException"})

REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    sys.stderr.write(f"{stamp} fault-proxy: {message}\n")
    sys.stderr.flush()


class HttpError(Exception):
    """A request the proxy cannot read: answered with `status`, then the connection is closed."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class UpstreamError(Exception):
    pass


class NothingReceived(UpstreamError):
    """The upstream closed the connection before sending a single byte of a response."""


class Request:
    __slots__ = ("method", "target", "version", "headers", "body", "keep_alive", "had_length", "_json")

    def __init__(self, method, target, version, headers, body, keep_alive, had_length):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value), order and case kept
        self.body = body
        self.keep_alive = keep_alive
        self.had_length = had_length
        self._json = None

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    @property
    def amz_target(self) -> str:
        return self.header("x-amz-target") or ""

    @property
    def is_dynamodb(self) -> bool:
        return self.amz_target.startswith(DYNAMODB_TARGET_PREFIX)

    @property
    def dynamodb_operation(self) -> str:
        target = self.amz_target
        return target[len(DYNAMODB_TARGET_PREFIX):] if target.startswith(DYNAMODB_TARGET_PREFIX) else ""

    def json(self):
        if self._json is None:
            self._json = json.loads(self.body)
        return self._json


class Response:
    __slots__ = ("status", "reason", "headers", "body", "keep_alive")

    def __init__(self, status, reason, headers, body, keep_alive=True):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


def _connection_tokens(headers) -> set[str]:
    tokens = set()
    for key, value in headers:
        if key.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def _parse_headers(lines) -> list[tuple[str, str]]:
    headers = []
    for raw in lines:
        name, sep, value = raw.partition(b":")
        if not sep or not name or name != name.strip() or raw[:1] in (b" ", b"\t"):
            raise HttpError(400, "malformed header line")
        headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    return headers


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The head up to and without the blank line; None at a clean end of stream."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial.strip():
                return None
            raise HttpError(400, "incomplete message head") from None
        except asyncio.LimitOverrunError:
            raise HttpError(431, "message head too large") from None
        head = head.lstrip(b"\r\n")  # stray blank lines between messages are allowed
        if head:
            return head[:-4]


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise HttpError(400, "malformed chunk size") from None
        if size < 0:
            raise HttpError(400, "malformed chunk size")
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, dropped
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise HttpError(400, "malformed chunk")


def _content_length(headers) -> int | None:
    values = {value.strip() for key, value in headers if key.lower() == "content-length"}
    if not values:
        return None
    if len(values) != 1:
        raise HttpError(400, "conflicting Content-Length headers")
    value = values.pop()
    if not value.isdigit():
        raise HttpError(400, "malformed Content-Length")
    return int(value)


def _is_chunked(headers) -> bool:
    codings = [
        c.strip().lower() for k, v in headers if k.lower() == "transfer-encoding" for c in v.split(",") if c.strip()
    ]
    if not codings:
        return False
    if codings != ["chunked"]:
        raise HttpError(501, "only Transfer-Encoding: chunked is supported")
    return True


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
    head = await _read_head(reader)
    if head is None:
        return None
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise HttpError(400, "malformed request line")
    method, target, version = (p.decode("latin-1") for p in parts)
    headers = _parse_headers(lines[1:])
    tokens = _connection_tokens(headers)
    if version == "HTTP/1.1":
        keep_alive = "close" not in tokens
    else:
        keep_alive = "keep-alive" in tokens
    chunked = _is_chunked(headers)
    length = None if chunked else _content_length(headers)
    has_body = chunked or bool(length)
    expect = next((v for k, v in headers if k.lower() == "expect"), None)
    if expect is not None and expect.lower() == "100-continue" and has_body:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    try:
        if chunked:
            body = await _read_chunked(reader)
        elif length:
            body = await reader.readexactly(length)
        else:
            body = b""
    except asyncio.IncompleteReadError:
        raise ConnectionResetError("client closed the connection inside a request body") from None
    except asyncio.LimitOverrunError:
        raise HttpError(400, "malformed chunked body") from None
    return Request(method, target, version, headers, body, keep_alive, chunked or length is not None)


async def read_response(reader: asyncio.StreamReader, method: str) -> Response:
    first = True
    while True:
        try:
            head = await _read_head(reader)
        except HttpError as exc:
            raise UpstreamError(f"unreadable response: {exc.message}") from None
        except ConnectionError as exc:
            if first:
                raise NothingReceived(str(exc) or type(exc).__name__) from None
            raise
        if head is None:
            if first:
                raise NothingReceived("upstream closed the connection without a response")
            raise UpstreamError("upstream closed the connection after an interim response")
        first = False
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise UpstreamError("malformed status line")
        version = parts[0].decode("latin-1")
        status = int(parts[1])
        reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        try:
            headers = _parse_headers(lines[1:])
        except HttpError:
            raise UpstreamError("malformed response header") from None
        if 100 <= status < 200 and status != 101:
            continue  # interim responses are not relayed
        break
    if status == 101:
        raise UpstreamError("protocol upgrades are not supported")
    tokens = _connection_tokens(headers)
    keep_alive = ("close" not in tokens) if version == "HTTP/1.1" else ("keep-alive" in tokens)
    try:
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif _is_chunked(headers):
            body = await _read_chunked(reader)
        else:
            length = _content_length(headers)
            if length is None:
                body = await reader.read()
                keep_alive = False
            else:
                body = await reader.readexactly(length)
    except HttpError as exc:
        raise UpstreamError(f"unreadable response body: {exc.message}") from None
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise UpstreamError("upstream closed the connection inside a response") from None
    return Response(status, reason, headers, body, keep_alive)


def encode_request(req: Request, body: bytes) -> bytes:
    drop = HOP_BY_HOP | _connection_tokens(req.headers)
    lines = [f"{req.method} {req.target} HTTP/1.1"]
    for key, value in req.headers:
        if key.lower() not in drop:
            lines.append(f"{key}: {value}")
    if body or req.had_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def encode_response(resp: Response, method: str, keep_alive: bool) -> bytes:
    drop = HOP_BY_HOP | _connection_tokens(resp.headers)
    reason = resp.reason or REASONS.get(resp.status, "")
    lines = [f"HTTP/1.1 {resp.status} {reason}"]
    for key, value in resp.headers:
        lower = key.lower()
        if lower not in drop or (lower == "content-length" and method == "HEAD"):
            lines.append(f"{key}: {value}")
    if method != "HEAD" and resp.status not in (204, 304):
        lines.append(f"Content-Length: {len(resp.body)}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _replace_header(headers, name: str, value: str | None):
    lower = name.lower()
    out = [(k, v) for k, v in headers if k.lower() != lower]
    if value is not None:
        out.append((name, value))
    return out


def _dynamodb_request_id() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(random.choice(alphabet) for _ in range(52))


def dynamodb_response(status: int, payload) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amzn-RequestId", _dynamodb_request_id()),
        ("x-amz-crc32", str(zlib.crc32(body))),
    ]
    return Response(status, REASONS.get(status, ""), headers, body)


def neptune_error(code: str) -> Response:
    status, detailed = NEPTUNE_ERRORS[code]
    request_id = str(uuid.uuid4())
    payload = {
        # Neptune's graph-engine error body (what aws-sdk-neptunedata parses: `code`)
        "requestId": request_id,
        "code": code,
        "detailedMessage": detailed,
        # Gremlin Server's HTTP error body (what TinkerPop clients read)
        "message": detailed,
        "Exception-Class": code,
        "exceptions": [code],
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)]
    return Response(status, REASONS.get(status, ""), headers, body)


def json_response(status: int, payload, content_type: str = "application/json") -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, REASONS.get(status, ""), [("Content-Type", content_type)], body)


class Fault:
    def __init__(self, index: int, spec: dict):
        self.index = index
        self.kind = spec["kind"]
        self.rate = spec["rate"]
        self.count = spec.get("count")
        self.match = spec.get("match")
        self.match_bytes = self.match.encode() if self.match is not None else None
        self.path = spec.get("path")
        self.query = spec.get("query")
        self.method = spec.get("method")
        self.spec = spec
        self.injected = 0

    def exhausted(self) -> bool:
        return self.count is not None and self.injected >= self.count

    def matches(self, req: Request) -> bool:
        if self.path is not None and self.path not in req.path:
            return False
        if self.query is not None and self.query not in req.query:
            return False
        if self.method is not None and self.method != req.method:
            return False
        if self.match is None:
            return True
        return self.match in req.amz_target or self.match_bytes in req.body


def _fail(message: str):
    raise ValueError(message)


def normalise_plan(raw) -> dict:
    if not isinstance(raw, dict):
        _fail("the plan must be a JSON object {\"seed\": N, \"faults\": [...]}")
    unknown = set(raw) - {"seed", "faults"}
    if unknown:
        _fail(f"unknown plan field(s): {', '.join(sorted(unknown))}")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        _fail("seed must be an integer")
    faults = raw.get("faults", [])
    if not isinstance(faults, list):
        _fail("faults must be a list")
    out = []
    for i, spec in enumerate(faults):
        where = f"faults[{i}]"
        if not isinstance(spec, dict):
            _fail(f"{where} must be an object")
        kind = spec.get("kind")
        if kind not in KINDS:
            _fail(f"{where}.kind must be one of {', '.join(KINDS)}")
        unknown = set(spec) - COMMON_KEYS - KIND_KEYS[kind]
        if unknown:
            _fail(f"{where}: unknown field(s) for {kind}: {', '.join(sorted(unknown))}")
        norm = {"kind": kind}
        rate = spec.get("rate", 1.0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            _fail(f"{where}.rate must be a number from 0 to 1")
        norm["rate"] = float(rate)
        if "count" in spec and spec["count"] is not None:
            count = spec["count"]
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                _fail(f"{where}.count must be a non-negative integer")
            norm["count"] = count
        if "match" in spec and spec["match"] is not None:
            if not isinstance(spec["match"], str) or not spec["match"]:
                _fail(f"{where}.match must be a non-empty string")
            norm["match"] = spec["match"]
        if "path" in spec and spec["path"] is not None:
            if not isinstance(spec["path"], str) or not spec["path"]:
                _fail(f"{where}.path must be a non-empty string")
            norm["path"] = spec["path"]
        if "query" in spec and spec["query"] is not None:
            if not isinstance(spec["query"], str) or not spec["query"]:
                _fail(f"{where}.query must be a non-empty string")
            norm["query"] = spec["query"]
        if "method" in spec and spec["method"] is not None:
            if spec["method"] not in ("GET", "PUT", "POST", "DELETE", "HEAD"):
                _fail(f"{where}.method must be one of GET, PUT, POST, DELETE, HEAD")
            norm["method"] = spec["method"]
        if kind == "throttle" and spec.get("error") is not None:
            if spec["error"] not in THROTTLE_ERRORS:
                _fail(f"{where}.error must be one of {', '.join(THROTTLE_ERRORS)}")
            norm["error"] = spec["error"]
        if kind == "lose_response":
            mode = spec.get("mode", "close")
            if mode not in LOSE_MODES:
                _fail(f"{where}.mode must be one of {', '.join(LOSE_MODES)}")
            norm["mode"] = mode
        if kind == "outage":
            seconds = spec.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
                _fail(f"{where}.seconds must be a positive number")
            norm["seconds"] = seconds
            mode = spec.get("mode", "reset")
            if mode not in OUTAGE_MODES:
                _fail(f"{where}.mode must be one of {', '.join(OUTAGE_MODES)}")
            norm["mode"] = mode
        if kind == "error":
            status = spec.get("status")
            if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
                _fail(f"{where}.status must be an HTTP error status from 400 to 599")
            norm["status"] = status
        if kind == "delay":
            ms = spec.get("ms")
            if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms < 0:
                _fail(f"{where}.ms must be a non-negative number")
            norm["ms"] = ms
        out.append(norm)
    return {"seed": seed, "faults": out}


class Plan:
    def __init__(self, normalised: dict):
        self.spec = normalised
        self.rng = random.Random(normalised["seed"])
        self.faults = [Fault(i, f) for i, f in enumerate(normalised["faults"])]
        self.set_at = time.monotonic()
        self.set_at_wall = time.time()

    def applicable(self, fault: Fault, req: Request, now: float) -> bool:
        kind = fault.kind
        if kind == "unprocessed":
            if req.dynamodb_operation != "BatchWriteItem":
                return False
        elif kind == "concurrent_modification":
            if req.is_dynamodb:
                return False
        elif kind == "outage":
            if now - self.set_at >= fault.spec["seconds"]:
                return False
        return fault.matches(req)

    def choose(self, req: Request) -> Fault | None:
        """The first fault of the plan that fires for this request (the RNG is drawn once per
        fault that applies to it), or None."""
        now = time.monotonic()
        for fault in self.faults:
            if fault.exhausted() or not self.applicable(fault, req, now):
                continue
            if self.rng.random() >= fault.rate:
                continue
            if fault.kind == "unprocessed" and not _batch_write_requests(req):
                continue
            fault.injected += 1
            return fault
        return None

    def state(self) -> dict:
        now = time.monotonic()
        faults = []
        for fault in self.faults:
            entry = dict(fault.spec)
            entry["injected"] = fault.injected
            entry["exhausted"] = fault.exhausted()
            if fault.kind == "outage":
                entry["remaining_seconds"] = round(max(0.0, fault.spec["seconds"] - (now - self.set_at)), 3)
            faults.append(entry)
        return {"seed": self.spec["seed"], "faults": faults, "set_at": self.set_at_wall}


def _batch_write_requests(req: Request) -> list:
    """[(table, write request)] of a BatchWriteItem body, or [] if it is not one we can split."""
    try:
        items = req.json().get("RequestItems")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return []
    if not isinstance(items, dict):
        return []
    flat = []
    for table, writes in items.items():
        if not isinstance(writes, list):
            return []
        flat.extend((table, w) for w in writes)
    return flat


def _group(pairs) -> dict:
    grouped: dict = {}
    for table, write in pairs:
        grouped.setdefault(table, []).append(write)
    return grouped


class Upstream:
    """One upstream connection, kept alive as long as the upstream allows, per client connection."""

    def __init__(self, host: str, port: int):
        self.host = host
        self.port = port
        self.reader = None
        self.writer = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None

    async def exchange(self, head: bytes, body: bytes, method: str) -> Response:
        for attempt in (0, 1):
            reused = self.writer is not None
            if not reused:
                try:
                    self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
                except OSError as exc:
                    raise UpstreamError(f"cannot connect: {exc.strerror or exc}") from None
            try:
                try:
                    self.writer.write(head)
                    if body:
                        self.writer.write(body)
                    await self.writer.drain()
                except ConnectionError as exc:
                    raise NothingReceived(str(exc) or type(exc).__name__) from None
                resp = await read_response(self.reader, method)
            except NothingReceived as exc:
                # Only when not a byte of a response came back: on a reused connection this is the
                # upstream having closed it while idle, so the request is sent once more, afresh.
                self.close()
                if reused and attempt == 0:
                    continue
                raise UpstreamError(str(exc)) from None
            except ConnectionError as exc:
                self.close()
                raise UpstreamError(str(exc) or type(exc).__name__) from None
            except BaseException:
                self.close()
                raise
            if not resp.keep_alive:
                self.close()
            return resp
        raise UpstreamError("unreachable")


class Proxy:
    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.upstream_url = f"http://{upstream_host}:{upstream_port}"
        self.plan: Plan | None = None
        self.counters = {
            "requests": 0,
            "forwarded": 0,
            "upstream_errors": 0,
            "control": 0,
            "injected": {kind: 0 for kind in KINDS},
        }
        self.writers: set = set()

    # ---- control API -------------------------------------------------------------------

    def state(self) -> dict:
        return {
            "plan": self.plan.state() if self.plan else None,
            "counters": {**self.counters, "injected": dict(self.counters["injected"])},
            "upstream": self.upstream_url,
        }

    def control(self, req: Request) -> Response:
        self.counters["control"] += 1
        if req.path.rstrip("/") != CONTROL_PREFIX:
            return json_response(404, {"error": f"no such control path; use {CONTROL_PREFIX}"})
        if req.method == "GET":
            return json_response(200, self.state())
        if req.method == "PUT":
            try:
                raw = json.loads(req.body or b"null")
                plan = Plan(normalise_plan(raw))
            except ValueError as exc:
                return json_response(400, {"error": str(exc)})
            self.plan = plan
            kinds = ", ".join(f.kind for f in plan.faults) or "none"
            log(f"plan set: seed {plan.spec['seed']}, faults: {kinds}")
            return json_response(200, self.state())
        if req.method == "DELETE":
            if self.plan is not None:
                log("plan cleared")
            self.plan = None
            return json_response(200, self.state())
        resp = json_response(405, {"error": "use GET, PUT or DELETE"})
        resp.headers.append(("Allow", "GET, PUT, DELETE"))
        return resp

    # ---- connections -------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        upstream = Upstream(self.upstream_host, self.upstream_port)
        try:
            while True:
                try:
                    req = await read_request(reader, writer)
                except HttpError as exc:
                    resp = json_response(exc.status, {"error": exc.message})
                    writer.write(encode_response(resp, "GET", False) + resp.body)
                    await writer.drain()
                    break
                if req is None:
                    break
                if req.path.startswith(CONTROL_PREFIX):
                    resp = self.control(req)
                    await self.send(writer, req, resp, req.keep_alive)
                    keep = req.keep_alive
                else:
                    keep = await self.serve(req, writer, upstream)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception as exc:  # a bug here must not take the proxy down
            log(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            upstream.close()
            self.writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()

    async def send(self, writer, req: Request, resp: Response, keep_alive: bool) -> None:
        writer.write(encode_response(resp, req.method, keep_alive))
        if resp.body and req.method != "HEAD":
            writer.write(resp.body)
        await writer.drain()

    @staticmethod
    def reset(writer) -> None:
        """Close the client connection with a TCP reset."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.transport.abort()

    async def forward(self, req: Request, upstream: Upstream, body: bytes | None = None) -> Response:
        body = req.body if body is None else body
        try:
            resp = await upstream.exchange(encode_request(req, body), body, req.method)
        except UpstreamError as exc:
            self.counters["upstream_errors"] += 1
            log(f"upstream error on {req.method} {req.path}: {exc}")
            return json_response(502, {"message": f"fault proxy: upstream error: {exc}"})
        self.counters["forwarded"] += 1
        return resp

    def describe(self, req: Request) -> str:
        operation = req.dynamodb_operation
        return f"{req.method} {req.path}" + (f" {operation}" if operation else "")

    async def serve(self, req: Request, writer, upstream: Upstream) -> bool:
        """Answer one request; False when the client connection must be closed."""
        self.counters["requests"] += 1
        fault = self.plan.choose(req) if self.plan is not None else None
        if fault is None:
            resp = await self.forward(req, upstream)
            await self.send(writer, req, resp, req.keep_alive)
            return req.keep_alive

        kind = fault.kind
        self.counters["injected"][kind] += 1
        what = f"{kind} (fault {fault.index}) on {self.describe(req)}"

        if kind == "throttle":
            error = fault.spec.get("error")
            if req.is_dynamodb:
                name = error if error in DYNAMODB_ERRORS else DYNAMODB_DEFAULT_ERROR
                error_type, message = DYNAMODB_ERRORS[name]
                resp = dynamodb_response(400, {"__type": error_type, "message": message})
            else:
                name = error if error in NEPTUNE_THROTTLES else NEPTUNE_DEFAULT_THROTTLE
                resp = neptune_error(name)
            log(f"{what}: {resp.status} {name}")
            await self.send(writer, req, resp, req.keep_alive)
            return req.keep_alive

        if kind == "error":
            status = fault.spec["status"]
            resp = json_response(status, {"message": f"fault proxy: injected error {status}"})
            log(f"{what}: {status}")
            await self.send(writer, req, resp, req.keep_alive)
            return req.keep_alive

        if kind == "concurrent_modification":
            resp = neptune_error("ConcurrentModificationException")
            log(f"{what}: {resp.status} ConcurrentModificationException")
            await self.send(writer, req, resp, req.keep_alive)
            return req.keep_alive

        if kind == "outage":
            if fault.spec["mode"] == "reset":
                log(f"{what}: connection reset")
                self.reset(writer)
                return False
            content_type = "application/x-amz-json-1.0" if req.is_dynamodb else "application/json"
            resp = json_response(503, {}, content_type)
            log(f"{what}: 503")
            await self.send(writer, req, resp, req.keep_alive)
            return req.keep_alive

        if kind == "delay":
            log(f"{what}: {fault.spec['ms']} ms")
            await asyncio.sleep(fault.spec["ms"] / 1000.0)
            resp = await self.forward(req, upstream)
            await self.send(writer, req, resp, req.keep_alive)
            return req.keep_alive

        if kind == "unprocessed":
            resp = await self.unprocessed(req, upstream, what)
            await self.send(writer, req, resp, req.keep_alive)
            return req.keep_alive

        if kind == "lose_response":
            resp = await self.forward(req, upstream)
            mode = fault.spec["mode"]
            log(f"{what}: upstream answered {resp.status}, response dropped ({mode})")
            if mode == "reset":
                self.reset(writer)
            elif mode == "partial":
                # the whole head, with the full Content-Length, and half of the body
                head = encode_response(resp, req.method, req.keep_alive)
                body = resp.body if req.method != "HEAD" else b""
                writer.write(head + body[: len(body) // 2] if body else head[: len(head) // 2])
                await writer.drain()
                writer.transport.abort()
            else:
                writer.close()
            return False

        raise AssertionError(kind)

    async def unprocessed(self, req: Request, upstream: Upstream, what: str) -> Response:
        writes = _batch_write_requests(req)
        n = len(writes)
        rng = self.plan.rng
        keep = sorted(rng.sample(range(n), rng.randint(1, n - 1))) if n > 1 else []
        kept = set(keep)
        forwarded = [writes[i] for i in keep]
        held = [writes[i] for i in range(n) if i not in kept]
        log(f"{what}: forwarded {len(forwarded)} of {n} write requests, {len(held)} unprocessed")
        held_items = _group(held)
        if not forwarded:
            return dynamodb_response(200, {"UnprocessedItems": held_items})
        body = dict(req.json())
        body["RequestItems"] = _group(forwarded)
        resp = await self.forward(req, upstream, json.dumps(body, separators=(",", ":")).encode())
        if resp.status != 200:
            return resp
        try:
            payload = json.loads(resp.body)
            unprocessed = payload.get("UnprocessedItems") or {}
        except (ValueError, UnicodeDecodeError, AttributeError):
            return resp
        for table, items in held_items.items():
            unprocessed.setdefault(table, []).extend(items)
        payload["UnprocessedItems"] = unprocessed
        new_body = json.dumps(payload, separators=(",", ":")).encode()
        headers = resp.headers
        if any(k.lower() == "x-amz-crc32" for k, _ in headers):
            headers = _replace_header(headers, "x-amz-crc32", str(zlib.crc32(new_body)))
        return Response(resp.status, resp.reason, headers, new_body, resp.keep_alive)

    def shutdown(self) -> None:
        for writer in list(self.writers):
            writer.transport.abort()


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen must be HOST:PORT, not {value!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"--listen host must be a loopback IP address, not {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"refusing to listen on {host}: only loopback addresses are allowed")
    return host, int(port)


def parse_upstream(value: str) -> tuple[str, int]:
    parts = urlsplit(value)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"--upstream must be an http:// URL, not {value!r}")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError("--upstream takes no path: requests keep their own")
    return parts.hostname, parts.port or 80


def write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as out:
        out.write(f"{port}\n")
    os.replace(tmp, path)


async def run(args) -> None:
    listen_host, listen_port = parse_listen(args.listen)
    upstream_host, upstream_port = parse_upstream(args.upstream)
    # resolved once, so that each new upstream connection skips a name lookup
    upstream_ip = socket.getaddrinfo(upstream_host, upstream_port, type=socket.SOCK_STREAM)[0][4][0]
    proxy = Proxy(upstream_ip, upstream_port)
    proxy.upstream_url = args.upstream.rstrip("/")
    if args.plan:
        with open(args.plan) as f:
            proxy.plan = Plan(normalise_plan(json.load(f)))
    server = await asyncio.start_server(
        proxy.handle, listen_host, listen_port, limit=MAX_HEAD, backlog=512, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.port_file:
        write_port_file(args.port_file, port)
    log(f"listening on {listen_host}:{port}, forwarding to http://{upstream_host}:{upstream_port}")
    await stop.wait()
    server.close()
    proxy.shutdown()
    await server.wait_closed()
    log("stopped")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Fault-injecting HTTP proxy for tests (DynamoDB, Neptune Gremlin).")
    parser.add_argument("--listen", default="127.0.0.1:0", help="loopback HOST:PORT (port 0: any free port)")
    parser.add_argument("--upstream", required=True, help="http://HOST:PORT of the real service")
    parser.add_argument("--port-file", help="write the chosen port here (atomically) once listening")
    parser.add_argument("--plan", help="a JSON file with the fault plan to start with")
    args = parser.parse_args(argv)
    try:
        parse_listen(args.listen)
        parse_upstream(args.upstream)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(run(args))
    except (OSError, ValueError) as exc:
        log(f"cannot start: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
