#!/usr/bin/env python3
"""Helper of runner/benches/kafka.sh: topics, a producer, and the runner's metrics.

  create-topic  --bootstrap B --topic T --partitions N
  delete-topics --bootstrap B T [T ...]          (missing topics are ignored)
  produce       --bootstrap B --topic T --input FILE [--limit N]
                [--rate R --duration S --slice-ms MS] [--linger-ms MS]
  metrics       --url URL [--histogram NAME] [--counter NAME ...]
  wait-counter  --url URL --counter NAME --at-least N --timeout S
  watch         --url URL --histogram NAME --output FILE [--every S] [--timeout S]
  wait-ready    --url URL [--timeout S]
  log-events    --log FILE --start UNIX_S MESSAGE [MESSAGE ...]
  timed         --output FILE -- COMMAND [ARG ...]

`produce` sends the lines of FILE (JSON lines, one message each, no key) to
the partitions of T in turn (round-robin by explicit partition number). Without
--rate it sends as fast as the client takes them; with --rate it sends R
messages a second in slices of --slice-ms milliseconds (each slice sends its
share, then sleeps to the slice's end; a slice that starts late catches up),
for --duration seconds. The message timestamp is the producer's (CreateTime,
taken when `produce` is called), so a latency measured from it includes the
producer's queueing and linger. It prints one JSON object.

`metrics` reads a Prometheus text page and prints one JSON object: the
counters' values and, for the histogram, its count, sum, the upper bound of
the bucket holding the 99th percentile, and the upper bound of the highest
non-empty bucket. `watch` scrapes every --every seconds until the page stops
answering after it has answered (the runner exited), or until it is killed,
and keeps the last scrape of the histogram in FILE. `wait-ready` waits for an HTTP 200. `log-events` prints, for each
MESSAGE, the last line of the runner's log (the `tracing` text format) that
holds it: its `key=value` fields, `at_s` (seconds from UNIX_S to it) and
`count` (lines holding MESSAGE).
`timed` runs COMMAND (standard streams inherited, SIGTERM and SIGINT passed
on), exits with its status, and writes to FILE its wall time, user and system
CPU seconds (and per thread name, sampled every 0.2 s), with the CPU seconds
the whole machine was busy meanwhile (all processes, from /proc/stat), so that a figure taken on a
shared machine shows how much of it the command had. Only `produce`, `create-topic` and `delete-topics` need confluent-kafka.
"""

import argparse
import datetime
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request


def admin(bootstrap):
    from confluent_kafka.admin import AdminClient

    # log_level 3: errors only (not librdkafka's notice on closing).
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})


def create_topic(args):
    from confluent_kafka.admin import NewTopic

    client = admin(args.bootstrap)
    futures = client.create_topics(
        [NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1)]
    )
    futures[args.topic].result(timeout=30)
    # Wait until the metadata shows every partition with a leader.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = client.list_topics(args.topic, timeout=5).topics.get(args.topic)
        if md is not None and md.error is None and len(md.partitions) == args.partitions:
            if all(p.leader >= 0 for p in md.partitions.values()):
                return
        time.sleep(0.1)
    sys.exit(f"topic {args.topic}: {args.partitions} partitions not ready after 30 s")


def delete_topics(args):
    client = admin(args.bootstrap)
    existing = set(client.list_topics(timeout=10).topics)
    wanted = [t for t in args.topics if t in existing]
    if not wanted:
        return
    for topic, future in client.delete_topics(wanted, operation_timeout=30).items():
        try:
            future.result(timeout=60)
        except Exception as e:  # reported, not fatal: the bench has its figures
            print(f"delete topic {topic}: {e}", file=sys.stderr)


def produce(args):
    from confluent_kafka import Producer

    errors = [0]

    def delivered(err, _msg):
        if err is not None:
            errors[0] += 1
            if errors[0] <= 5:
                print(f"delivery failed: {err}", file=sys.stderr)

    config = {
        "bootstrap.servers": args.bootstrap,
        "linger.ms": args.linger_ms,
        "acks": "all",
        "compression.type": "none",
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "batch.num.messages": 10_000,
        "delivery.report.only.error": True,
        "on_delivery": delivered,
    }
    producer = Producer(config)
    md = producer.list_topics(args.topic, timeout=10).topics[args.topic]
    if md.error is not None:
        sys.exit(f"topic {args.topic}: {md.error}")
    partitions = sorted(md.partitions)
    n_parts = len(partitions)
    topic = args.topic
    send = producer.produce
    poll = producer.poll

    def put(value, partition):
        while True:
            try:
                send(topic, value, partition=partition)
                return
            except BufferError:
                poll(0.01)  # the local queue is full: let deliveries drain it

    sent = 0
    max_behind = 0.0
    limit = args.limit if args.limit > 0 else math.inf
    with open(args.input, "rb") as f:
        lines = (line.rstrip(b"\n") for line in f)
        started = time.monotonic()
        if args.rate <= 0:
            for value in lines:
                if sent >= limit:
                    break
                put(value, partitions[sent % n_parts])
                sent += 1
                if sent % 10_000 == 0:
                    poll(0)
        else:
            slice_s = args.slice_ms / 1000.0
            total = min(limit, round(args.rate * args.duration))
            k = 0
            while sent < total:
                k += 1
                due = min(total, round(args.rate * slice_s * k))
                while sent < due:
                    value = next(lines, None)
                    if value is None:
                        total = sent
                        break
                    put(value, partitions[sent % n_parts])
                    sent += 1
                poll(0)
                end = started + slice_s * k
                now = time.monotonic()
                if now < end:
                    time.sleep(end - now)
                else:
                    max_behind = max(max_behind, now - end)
        produced_s = time.monotonic() - started
        left = producer.flush(120)
        seconds = time.monotonic() - started
    out = {
        "messages": sent,
        "partitions": n_parts,
        "seconds": round(seconds, 3),
        "messages_per_s": round(sent / max(seconds, 1e-9)),
        "send_seconds": round(produced_s, 3),
        "linger_ms": args.linger_ms,
        "delivery_errors": errors[0] + left,
    }
    if args.rate > 0:
        out.update(
            rate=args.rate,
            slice_ms=args.slice_ms,
            max_behind_ms=round(max_behind * 1000, 1),
        )
    print(json.dumps(out))
    if errors[0] + left:
        sys.exit(1)


def scrape(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def parse(text, histogram=None, counters=()):
    """Counters' values and a histogram's count, sum, p99 and max bucket bounds."""
    values = {}
    buckets = []
    count = total = 0.0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if name in counters:
            values[name] = values.get(name, 0.0) + float(value)
        if histogram is None:
            continue
        if name == histogram + "_bucket":
            le = name_labels.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((math.inf if le == "+Inf" else float(le), float(value)))
        elif name == histogram + "_count":
            count = float(value)
        elif name == histogram + "_sum":
            total = float(value)
    out = {k: int(v) if v == int(v) else v for k, v in values.items()}
    if histogram is not None:
        h = {"present": bool(buckets), "count": int(count), "sum": total}
        buckets.sort()
        if count > 0:
            rank = math.ceil(0.99 * count)
            h["p99_le"] = next(le for le, cum in buckets if cum >= rank)
            previous = 0.0
            for le, cum in buckets:
                if cum > previous:
                    h["max_le"] = le
                previous = cum
        out[histogram] = h
    return out


def metrics(args):
    print(json.dumps(parse(scrape(args.url), args.histogram, tuple(args.counter)), default=str))


def wait_counter(args):
    deadline = time.monotonic() + args.timeout
    value = 0
    while time.monotonic() < deadline:
        try:
            value = parse(scrape(args.url), None, (args.counter,)).get(args.counter, 0)
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if value >= args.at_least:
            print(json.dumps({args.counter: value}))
            return
        time.sleep(0.2)
    sys.exit(f"{args.counter} is {value} after {args.timeout} s, expected at least {args.at_least}")


def watch(args):
    deadline = time.monotonic() + args.timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = parse(scrape(args.url, timeout=2), args.histogram)[args.histogram]
            last["scraped_unix"] = round(time.time(), 3)
            with open(args.output + ".tmp", "w") as f:
                json.dump(last, f, default=str)
            os.replace(args.output + ".tmp", args.output)
        except (urllib.error.URLError, ConnectionError, OSError):
            if last is not None:
                return  # answered before, gone now: the runner exited
        time.sleep(args.every)


def wait_ready(args):
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(args.url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    sys.exit(f"{args.url} not ready after {args.timeout} s")


ANSI = re.compile(r"\x1b\[[0-9;]*m")
FIELD = re.compile(r"(\w+)=(\"[^\"]*\"|\S+)")


def log_events(args):
    found = {}
    with open(args.log, errors="replace") as f:
        for line in f:
            line = ANSI.sub("", line.rstrip("\n"))
            for message in args.messages:
                if message in line:
                    stamp = line.split(" ", 1)[0]
                    try:
                        at = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
                    except ValueError:
                        continue
                    rest = line.split(message, 1)[1]
                    fields = {k: v.strip('"') for k, v in FIELD.findall(rest)}
                    prev = found.get(message, {"count": 0})
                    found[message] = {
                        **fields,
                        "at_s": round(at - args.start, 3),
                        "count": prev["count"] + 1,
                    }
    print(json.dumps(found))


def machine_busy():
    """CPU seconds all cores spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """CPU seconds per thread name of process `pid` (threads named alike summed;
    librdkafka's `rdk:...` threads as one)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name.startswith("rdk:"):
            name = "rdk:* (librdkafka)"
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        out[name] = out.get(name, 0.0) + cpu
    return out


def timed(args):
    import threading

    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    busy0, t0 = machine_busy(), time.monotonic()
    child = subprocess.Popen(cmd)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    # The child's threads, sampled until it exits (the last sample is at most
    # 0.2 s old; a thread that ended earlier keeps its last value).
    threads = {}
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            now = thread_cpu(child.pid)
            if now:
                for name, cpu in now.items():
                    threads[name] = max(threads.get(name, 0.0), cpu)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    done.set()
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    busy = machine_busy() - busy0
    cpu = usage.ru_utime + usage.ru_stime
    with open(args.output, "w") as f:
        json.dump(
            {
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "user_s": round(usage.ru_utime, 3),
                "sys_s": round(usage.ru_stime, 3),
                "machine_cores": os.cpu_count(),
                "machine_busy_s": round(busy, 3),
                "others_busy_s": round(max(busy - cpu, 0), 3),
                "threads_cpu_s": {k: round(v, 2) for k, v in sorted(threads.items(), key=lambda kv: -kv[1])},
            },
            f,
        )
    code = child.returncode
    sys.exit(code if code >= 0 else 128 - code)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("create-topic")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--partitions", type=int, default=6)
    c.set_defaults(func=create_topic)

    d = sub.add_parser("delete-topics")
    d.add_argument("--bootstrap", required=True)
    d.add_argument("topics", nargs="+")
    d.set_defaults(func=delete_topics)

    pr = sub.add_parser("produce")
    pr.add_argument("--bootstrap", required=True)
    pr.add_argument("--topic", required=True)
    pr.add_argument("--input", required=True)
    pr.add_argument("--limit", type=int, default=0, help="at most this many messages (0: all)")
    pr.add_argument("--rate", type=float, default=0, help="messages per second (0: as fast as possible)")
    pr.add_argument("--duration", type=float, default=60, help="seconds, with --rate")
    pr.add_argument("--slice-ms", type=float, default=5)
    pr.add_argument("--linger-ms", type=float, default=5)
    pr.set_defaults(func=produce)

    m = sub.add_parser("metrics")
    m.add_argument("--url", required=True)
    m.add_argument("--histogram")
    m.add_argument("--counter", action="append", default=[])
    m.set_defaults(func=metrics)

    w = sub.add_parser("wait-counter")
    w.add_argument("--url", required=True)
    w.add_argument("--counter", required=True)
    w.add_argument("--at-least", type=int, required=True)
    w.add_argument("--timeout", type=float, default=120)
    w.set_defaults(func=wait_counter)

    wa = sub.add_parser("watch")
    wa.add_argument("--url", required=True)
    wa.add_argument("--histogram", required=True)
    wa.add_argument("--output", required=True)
    wa.add_argument("--every", type=float, default=1)
    wa.add_argument("--timeout", type=float, default=3600)
    wa.set_defaults(func=watch)

    r = sub.add_parser("wait-ready")
    r.add_argument("--url", required=True)
    r.add_argument("--timeout", type=float, default=120)
    r.set_defaults(func=wait_ready)

    le = sub.add_parser("log-events")
    le.add_argument("--log", required=True)
    le.add_argument("--start", type=float, required=True)
    le.add_argument("messages", nargs="+")
    le.set_defaults(func=log_events)

    t = sub.add_parser("timed")
    t.add_argument("--output", required=True)
    t.add_argument("command", nargs=argparse.REMAINDER)
    t.set_defaults(func=timed)

    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
