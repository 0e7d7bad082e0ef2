#!/usr/bin/env python3
"""Throughput of the fault proxy against a trivial upstream, and of that upstream directly.

    python3 tests/faults/bench.py [--seconds 5] [--connections 32] [--body-bytes 400]

Starts a minimal keep-alive HTTP upstream (its own process), the proxy in front
of it with no fault plan, and a load generator (this process, asyncio, one
request at a time per connection) that POSTs a small body and reads the answer.
Prints requests/s and mean latency, direct and through the proxy, and the
proxy's own CPU time per request (Linux). Standard
library only; everything on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class UpstreamProtocol(asyncio.Protocol):
    """Answers every request with 200 and a small JSON body; assumes Content-Length requests."""

    RESPONSE_BODY = b'{"UnprocessedItems":{}}'
    RESPONSE = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: "
        + str(len(RESPONSE_BODY)).encode()
        + b"\r\n\r\n"
        + RESPONSE_BODY
    )

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15 :].split(b"\r\n", 1)[0])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            self.transport.write(self.RESPONSE)


def serve_upstream(port_file: str) -> None:
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(UpstreamProtocol, "127.0.0.1", 0, backlog=512)
        with open(port_file + ".tmp", "w") as f:
            f.write(str(server.sockets[0].getsockname()[1]))
        os.replace(port_file + ".tmp", port_file)
        await asyncio.Event().wait()

    asyncio.run(main())


class ClientProtocol(asyncio.Protocol):
    def __init__(self, request: bytes, deadline: float, stats: dict, done: asyncio.Future):
        self.request = request
        self.deadline = deadline
        self.stats = stats
        self.done = done
        self.buffer = b""

    def connection_made(self, transport):
        self.transport = transport
        self.send()

    def send(self):
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data):
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        if not head.startswith(b"http/1.1 200"):
            self.stats["errors"] += 1
        self.buffer = self.buffer[end + 4 + length :]
        now = time.perf_counter()
        self.stats["count"] += 1
        self.stats["latency"] += now - self.sent_at
        if now < self.deadline:
            self.send()
        else:
            self.transport.close()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)


async def load(port: int, seconds: float, connections: int, body_bytes: int) -> dict:
    body = json.dumps({"RequestItems": {"bench": [{"PutRequest": {"Item": {"pk": {"S": "x" * body_bytes}}}}]}})
    request = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Amz-Target: DynamoDB_20120810.BatchWriteItem\r\n"
        f"Content-Type: application/x-amz-json-1.0\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    loop = asyncio.get_running_loop()
    stats = {"count": 0, "latency": 0.0, "errors": 0}
    start = time.perf_counter()
    deadline = start + seconds
    waits = []
    for _ in range(connections):
        done = loop.create_future()
        await loop.create_connection(lambda d=done: ClientProtocol(request, deadline, stats, d), "127.0.0.1", port)
        waits.append(done)
    await asyncio.gather(*waits)
    elapsed = time.perf_counter() - start
    n = max(stats["count"], 1)
    return {
        "requests_per_s": round(stats["count"] / elapsed),
        "mean_latency_ms": round(1000 * stats["latency"] / n, 2),
        "errors": stats["errors"],
    }


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (Linux /proc), 0.0 where unavailable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def wait_for_file(path: str, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return int(open(path).read().strip())
        time.sleep(0.02)
    raise SystemExit(f"no port file {path} after {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--body-bytes", type=int, default=400)
    parser.add_argument("--plan", help="a fault plan (JSON text) for the proxy, e.g. one that never fires")
    parser.add_argument("--serve-upstream", metavar="PORT_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return
    with tempfile.TemporaryDirectory() as tmp:
        upstream_file = os.path.join(tmp, "upstream.port")
        proxy_file = os.path.join(tmp, "proxy.port")
        plan_file = os.path.join(tmp, "plan.json")
        if args.plan:
            with open(plan_file, "w") as f:
                f.write(args.plan)
        upstream = subprocess.Popen([sys.executable, __file__, "--serve-upstream", upstream_file])
        proxy = None
        try:
            upstream_port = wait_for_file(upstream_file)
            proxy = subprocess.Popen(
                [
                    sys.executable,
                    os.path.join(HERE, "proxy.py"),
                    "--listen",
                    "127.0.0.1:0",
                    "--upstream",
                    f"http://127.0.0.1:{upstream_port}",
                    "--port-file",
                    proxy_file,
                ]
                + (["--plan", plan_file] if args.plan else []),
                stderr=subprocess.DEVNULL,
            )
            proxy_port = wait_for_file(proxy_file)
            results = {}
            for name, port in (("direct", upstream_port), ("proxy", proxy_port)):
                before = cpu_seconds(proxy.pid)
                results[name] = asyncio.run(load(port, args.seconds, args.connections, args.body_bytes))
                if name == "proxy":
                    used = cpu_seconds(proxy.pid) - before
                    done = results[name]["requests_per_s"] * args.seconds
                    if used and done:
                        results[name]["proxy_cpu_us_per_request"] = round(1e6 * used / done)
            print(json.dumps({"connections": args.connections, "cpus": os.cpu_count(), **results}))
        finally:
            for p in (proxy, upstream):
                if p is not None:
                    p.terminate()
                    p.wait(timeout=10)


if __name__ == "__main__":
    main()
