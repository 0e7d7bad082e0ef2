#!/usr/bin/env python3
"""Helper of runner/benches/trickle.sh: the latency of a lone observation.

  trickle.py --source stdin|fifo|kafka --runner BIN --pipeline FILE --dir DIR
             [--count N] [--gap S] [--bootstrap B --topic T]

Starts the runner on PIPELINE (whose file sink writes DIR/feed.jsonl), then
sends N observations one at a time, S seconds apart, each with an email
nothing else holds. For each it measures, from the moment it was written to
standard input or the FIFO (for Kafka: from the producer's send, with
linger.ms=0), how long until
  lookup   GET /v1/profiles?identifier=email:... on the admin port finds it
           (polled every millisecond), and
  sink     its profile.created event is in the file sink's output.
Prints one JSON object: the source, N, the gap and, for each measure, the
median, the 99th percentile and the maximum in milliseconds."""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def found(admin, email):
    url = f"http://{admin}/v1/profiles?identifier=email:{email}"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status == 200
    except urllib.error.HTTPError:
        return False
    except (urllib.error.URLError, ConnectionError):
        return False


def wait_ready(admin, limit=60):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{admin}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    sys.exit(f"the runner on {admin} never became ready")


def quantiles(values):
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {"p50_ms": round(pick(0.5), 1), "p99_ms": round(pick(0.99), 1), "max_ms": round(ordered[-1], 1)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--source", choices=["stdin", "fifo", "kafka"], required=True)
    p.add_argument("--runner", required=True)
    p.add_argument("--pipeline", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--count", type=int, default=40)
    p.add_argument("--gap", type=float, default=0.5)
    p.add_argument("--bootstrap")
    p.add_argument("--topic")
    p.add_argument("--label", default="")
    args = p.parse_args()

    admin = f"127.0.0.1:{free_port()}"
    feed = os.path.join(args.dir, "feed.jsonl")
    command = [args.runner, "run", args.pipeline, "--state", os.path.join(args.dir, "state"), "--admin", admin]
    env = dict(os.environ)
    stdin = subprocess.DEVNULL
    if args.source == "stdin":
        stdin = subprocess.PIPE
    elif args.source == "fifo":
        fifo = os.path.join(args.dir, "input.fifo")
        os.mkfifo(fifo)
        command += ["--input", fifo]
    log = open(os.path.join(args.dir, "runner.err"), "wb")
    runner = subprocess.Popen(command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=log, env=env)
    if args.source == "stdin":
        writer = runner.stdin
    elif args.source == "fifo":
        writer = open(fifo, "wb")  # blocks until the runner opens it
    else:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 0, "acks": "1"})
    wait_ready(admin)

    def send(line):
        if args.source == "kafka":
            producer.produce(args.topic, line)
            producer.poll(0)
        else:
            writer.write(line + b"\n")
            writer.flush()

    lookup, sink = [], []
    feed_at = 0
    tag = f"{os.getpid()}-{int(time.time())}"
    for i in range(args.count):
        email = f"trickle-{tag}-{i}@example.com"
        line = json.dumps({
            "source": "web", "id": f"trickle-{tag}-{i}", "ts": "2026-03-01T12:00:00Z",
            "kind": "person", "identifiers": [{"type": "email", "value": email}],
        }).encode()
        sent = time.monotonic()
        send(line)
        seen_lookup = seen_sink = None
        deadline = sent + 10
        while (seen_lookup is None or seen_sink is None) and time.monotonic() < deadline:
            if seen_lookup is None and found(admin, email):
                seen_lookup = time.monotonic()
            if seen_sink is None and os.path.exists(feed):
                with open(feed, "rb") as f:
                    f.seek(feed_at)
                    chunk = f.read()
                if email.encode() in chunk:
                    seen_sink = time.monotonic()
                    feed_at += len(chunk)
            time.sleep(0.001)
        if seen_lookup is None or seen_sink is None:
            sys.exit(f"observation {i} not seen within 10 s (lookup {seen_lookup}, sink {seen_sink}); see {log.name}")
        lookup.append((seen_lookup - sent) * 1e3)
        sink.append((seen_sink - sent) * 1e3)
        time.sleep(args.gap)
    runner.terminate()
    if args.source == "stdin":
        runner.stdin.close()
    runner.wait(timeout=60)
    print(json.dumps({"source": args.source, "label": args.label, "count": args.count, "gap_s": args.gap,
                      "lookup": quantiles(lookup), "sink": quantiles(sink)}))


if __name__ == "__main__":
    main()
