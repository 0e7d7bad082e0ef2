#!/usr/bin/env python3
"""Helper of runner/benches/sinks.sh: the runner's sink metrics, an end-to-end
latency probe (Kafka append to readable in DynamoDB), and clean-up.

  watch         --url URL --output FILE [--pid PID | --parent PID] [--every S]
                [--timeout S]
  markers       --bootstrap B --topic T --rate R --duration S --prefix P
                                                          (needs confluent-kafka)
  poll          --endpoint E --region R --profiles-table P --identifiers-table I
                [--timeout S] [--interval S] --output FILE
                                                          (needs boto3)
  count-live    --endpoint E --region R --table T         (needs boto3)
  delete-tables --endpoint E --region R TABLE [TABLE ...] (needs boto3)
  graph-drop    --endpoint URL --prefix P                 (standard library)
  moto-log      --log FILE --start UNIX_S --end UNIX_S [--offset BYTES]

`watch` scrapes the runner's /metrics every --every seconds (default 0.1)
until the page stops answering after it has answered (the runner exited), the
process --pid is gone, or SIGTERM; after every scrape it rewrites FILE with
the last values: per sink (the `sink` label) the counters of
kith_sink_requests_total, kith_sink_operations_total, kith_sink_flushes_total,
kith_sink_retries_total (in all and by reason), kith_sink_throttles_total,
kith_sink_errors_total, kith_sink_oversize_items_total, the sum and count of
kith_sink_batch_size (items per request), and the highest
kith_sink_in_flight and kith_sink_oldest_unwritten_seconds seen; the runner's
kith_observations_total and the highest sum of kith_consumer_lag seen; with
--pid (or --parent: its first child, such as the runner under
kafka_produce.py's `timed`), the highest VmRSS seen and VmHWM from
/proc/PID/status; and a timeline, one point a second (seconds since the first
scrape, the time, RSS MiB, observations, consumer lag, each sink's oldest
unwritten seconds and completed operations). `scraped_unix` is the time of
the last scrape, so the requests a run sent after it are not counted (the
caller compares it with the process's exit). Operations and flushes count
completed flushes only: a run whose input fits in one flush shows 0 until it
is written.

`markers` produces R marker observations a second for S seconds to topic T,
spread over its partitions in turn: each a new person (source `probe`, record
id `P-<n>`) holding only the email `P-<n>@bench.example`. For each marker the
broker acknowledged it prints one JSON line, `{"n", "email", "sent",
"acked"}`, where `sent` is the wall-clock time (time.time()) taken just before
the producer's `produce` call and `acked` the time of its delivery report
(linger.ms=1, acks=all).

`poll` reads those lines on standard input. A marker is readable once a
strongly consistent read of `email#<email>` in the identifier index returns a
row (not a tombstone) naming a profile, and a strongly consistent read of that
profile in the profiles table returns it (not a tombstone); its latency is
the time of that second read minus `sent`. Reads are rounds of one
BatchGetItem (ConsistentRead on both tables) for the oldest 100 pending
markers, a round every --interval seconds (default 0.05), so that the probe
adds at most 20 requests a second to the store however many markers are
pending (moto answers a few hundred requests a second in all). A marker not
readable --timeout seconds (default 30) after `sent` is counted missing. When
the input ends it waits for the markers still pending, then writes FILE (one
line per marker) and prints one JSON object: markers, found, missing, and
p50, p90, p99, max and mean in milliseconds, where a percentile that falls on
a missing marker is reported as `"> <timeout> s"` (missing markers are ranked
above every found one); the same from `acked`; and the requests made.

`count-live` counts the items of a table without `deleted` (a Scan).
`delete-tables` deletes tables (missing ones are ignored). `graph-drop`
removes the vertices (and so their edges) whose id starts with P from the
Gremlin endpoint, 5,000 at a time, and prints how many. `moto-log` counts
the requests moto's server log (one werkzeug line per request, local time,
whole seconds) holds for each second from UNIX_S to UNIX_S, and prints the
total, the median and highest per second, how many seconds had at most 2
(moto stalled: it answers hundreds a second when it works) and the longest
run of such seconds, and the answers other than 200.
"""

import argparse
import json
import math
import os
import queue
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


# ---------------------------------------------------------------- metrics
def parse_metrics(text):
    """[(name, {label: value}, value)] of a Prometheus text page."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if "{" in head:
            name, labels = head.split("{", 1)
            labels = dict(LABEL.findall(labels))
        else:
            name, labels = head, {}
        try:
            out.append((name, labels, float(value)))
        except ValueError:
            pass
    return out


COUNTERS = {
    "kith_sink_requests_total": "requests",
    "kith_sink_operations_total": "operations",
    "kith_sink_flushes_total": "flushes",
    "kith_sink_throttles_total": "throttles",
    "kith_sink_errors_total": "errors",
    "kith_sink_oversize_items_total": "oversize_items",
    "kith_sink_batch_size_sum": "batch_items",
    "kith_sink_batch_size_count": "batch_requests",
}


def proc_status(pid):
    """(VmRSS, VmHWM) of a process in MiB, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, kb = line.split()[:2]
            values[key.rstrip(":")] = int(kb) / 1024.0
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def child_of(parent, timeout=30):
    """The pid of the first child process of `parent` (the runner under
    kafka_produce.py's `timed`), waited for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
                return int(entry)
        time.sleep(0.02)
    sys.exit(f"no child of process {parent} after {timeout} s")


def watch(args):
    if args.parent:
        args.pid = child_of(args.parent)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
    deadline = time.monotonic() + args.timeout
    state = {"sinks": {}, "observations": 0, "max_consumer_lag": 0, "timeline": []}
    answered = False
    first = None
    next_point = 0.0

    def save():
        with open(args.output + ".tmp", "w") as f:
            json.dump(state, f)
        os.replace(args.output + ".tmp", args.output)

    while not stop.is_set() and time.monotonic() < deadline:
        rss = None
        if args.pid:
            rss = proc_status(args.pid)
            if rss is None:
                break
            state["max_rss_mb"] = round(max(state.get("max_rss_mb", 0.0), rss[0]), 1)
            state["hwm_mb"] = round(rss[1], 1)
        try:
            with urllib.request.urlopen(args.url, timeout=2) as r:
                text = r.read().decode()
        except (urllib.error.URLError, ConnectionError, OSError):
            if answered and not args.pid:
                break
            if rss is not None:
                save()
            stop.wait(args.every)
            continue
        now = time.time()
        answered = True
        if first is None:
            first = now
        sinks = {}
        lag = 0.0
        for name, labels, value in parse_metrics(text):
            if name == "kith_observations_total":
                state["observations"] = int(value)
            elif name == "kith_consumer_lag":
                lag += value
            elif name.startswith("kith_sink_") and "sink" in labels:
                s = sinks.setdefault(labels["sink"], {"retries": 0, "retries_by_reason": {}})
                if name in COUNTERS:
                    s[COUNTERS[name]] = int(value) if value == int(value) else value
                elif name == "kith_sink_retries_total":
                    s["retries"] += int(value)
                    s["retries_by_reason"][labels.get("reason", "")] = int(value)
                elif name == "kith_sink_in_flight":
                    s["in_flight"] = int(value)
                elif name == "kith_sink_oldest_unwritten_seconds":
                    s["oldest_unwritten_s"] = value
        for sink, s in sinks.items():
            before = state["sinks"].get(sink, {})
            s["max_in_flight"] = max(before.get("max_in_flight", 0), s.get("in_flight", 0))
            s["max_oldest_unwritten_s"] = round(
                max(before.get("max_oldest_unwritten_s", 0.0), s.get("oldest_unwritten_s", 0.0)), 3
            )
        state["sinks"] = sinks
        state["consumer_lag"] = int(lag)
        state["max_consumer_lag"] = max(state["max_consumer_lag"], int(lag))
        state["scraped_unix"] = round(now, 3)
        if now - first >= next_point:
            next_point += 1.0
            state["timeline"].append(
                {
                    "t": round(now - first, 1),
                    "unix": round(now, 2),
                    "rss_mb": round(rss[0], 1) if rss else None,
                    "observations": state["observations"],
                    "lag": int(lag),
                    "oldest_unwritten_s": {k: round(v.get("oldest_unwritten_s", 0.0), 2) for k, v in sinks.items()},
                    "operations": {k: v.get("operations", 0) for k, v in sinks.items()},
                }
            )
        state["first_scrape_unix"] = round(first, 3)
        save()
        stop.wait(args.every)
    save()


# ---------------------------------------------------------------- markers
def marker_line(prefix, n):
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
    return json.dumps(
        {
            "source": "probe",
            "id": f"{prefix}-{n}",
            "ts": ts,
            "kind": "person",
            "identifiers": [{"type": "email", "value": f"{prefix}-{n}@bench.example"}],
            "attributes": {"given_name": "Probe"},
        }
    ).encode()


def markers(args):
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "linger.ms": 1,
            "acks": "all",
            "log_level": 3,
        }
    )
    md = producer.list_topics(args.topic, timeout=10).topics[args.topic]
    if md.error is not None:
        sys.exit(f"topic {args.topic}: {md.error}")
    partitions = sorted(md.partitions)
    failed = [0]

    def report(n, sent):
        def cb(err, _msg):
            if err is not None:
                failed[0] += 1
                print(f"marker {n}: delivery failed: {err}", file=sys.stderr)
                return
            line = {"n": n, "email": f"{args.prefix}-{n}@bench.example", "sent": sent, "acked": time.time()}
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()

        return cb

    total = round(args.rate * args.duration)
    started = time.monotonic()
    for n in range(total):
        due = started + n / args.rate
        while True:
            left = due - time.monotonic()
            if left <= 0:
                break
            producer.poll(min(left, 0.05))
        value = marker_line(args.prefix, n)
        sent = time.time()
        producer.produce(args.topic, value, partition=partitions[n % len(partitions)], on_delivery=report(n, sent))
        producer.poll(0)
    producer.flush(60)
    if failed[0]:
        sys.exit(1)


# ---------------------------------------------------------------- poll
def dynamodb(endpoint, region):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=10),
    )


def live(item):
    return item is not None and not item.get("deleted", {}).get("BOOL", False)


def poll(args):
    client = dynamodb(args.endpoint, args.region)
    results = []
    pending = {}  # n -> [marker, profile id once its index row is seen]
    inbox = queue.Queue()
    ended = threading.Event()
    requests = [0]
    errors = [0]

    def read_input():
        for line in sys.stdin:
            line = line.strip()
            if line:
                inbox.put(json.loads(line))
        ended.set()

    threading.Thread(target=read_input, daemon=True).start()
    while True:
        while True:
            try:
                m = inbox.get_nowait()
            except queue.Empty:
                break
            pending[m["n"]] = [m, None]
        if not pending:
            if ended.is_set() and inbox.empty():
                break
            time.sleep(args.interval)
            continue
        started = time.monotonic()
        # One strongly consistent BatchGetItem (at most 100 keys) for the
        # oldest pending markers: the index row of those not seen yet, the
        # profile of those whose row named one.
        batch = sorted(pending)[:100]
        index_keys = {}
        profile_keys = {}
        for n in batch:
            m, profile = pending[n]
            if profile is None:
                index_keys.setdefault("email#" + m["email"], []).append(n)
            else:
                profile_keys.setdefault(profile, []).append(n)
        request = {}
        if index_keys:
            request[args.identifiers_table] = {
                "Keys": [{"identifier": {"S": k}} for k in index_keys],
                "ConsistentRead": True,
            }
        if profile_keys:
            request[args.profiles_table] = {
                "Keys": [{"profile_id": {"S": k}} for k in profile_keys],
                "ConsistentRead": True,
            }
        try:
            requests[0] += 1
            answer = client.batch_get_item(RequestItems=request)
            now = time.time()
            for item in answer.get("Responses", {}).get(args.identifiers_table, []):
                ids = item.get("profile_ids", {}).get("L", [])
                if live(item) and ids:
                    for n in index_keys.get(item["identifier"]["S"], []):
                        pending[n][1] = ids[0]["S"]
            for item in answer.get("Responses", {}).get(args.profiles_table, []):
                if live(item):
                    for n in profile_keys.get(item["profile_id"]["S"], []):
                        m, profile = pending.pop(n)
                        results.append({**m, "found": now, "profile_id": profile})
        except Exception as e:  # moto busy or refusing: count, try again
            errors[0] += 1
            if errors[0] <= 5:
                print(f"poll: {type(e).__name__}: {e}", file=sys.stderr)
        now = time.time()
        for n in [n for n, (m, _) in pending.items() if now - m["sent"] > args.timeout]:
            m, profile = pending.pop(n)
            results.append({**m, "found": None, "profile_id": profile})
        left = args.interval - (time.monotonic() - started)
        if left > 0:
            time.sleep(left)
    results.sort(key=lambda r: r["n"])
    with open(args.output, "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")

    def stats(origin):
        lat = sorted(
            (r["found"] - r[origin]) * 1000 if r["found"] is not None else math.inf for r in results
        )
        out = {}
        if not lat:
            return out
        for name, q in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99)):
            v = lat[max(0, math.ceil(q * len(lat)) - 1)]
            out[name + "_ms"] = round(v, 1) if v != math.inf else f"> {args.timeout:g} s"
        found = [v for v in lat if v != math.inf]
        out["max_ms"] = round(lat[-1], 1) if lat[-1] != math.inf else f"> {args.timeout:g} s"
        if found:
            out["max_found_ms"] = round(found[-1], 1)
            out["mean_found_ms"] = round(sum(found) / len(found), 1)
        return out

    summary = {
        "markers": len(results),
        "found": sum(r["found"] is not None for r in results),
        "missing": sum(r["found"] is None for r in results),
        "timeout_s": args.timeout,
        "from_sent": stats("sent"),
        "from_acked": stats("acked"),
        "batch_get_requests": requests[0],
        "poll_errors": errors[0],
    }
    print(json.dumps(summary))


def count_live(args):
    client = dynamodb(args.endpoint, args.region)
    total = live_items = 0
    kwargs = {"TableName": args.table, "ProjectionExpression": "#d", "ExpressionAttributeNames": {"#d": "deleted"}}
    while True:
        page = client.scan(**kwargs)
        for item in page.get("Items", []):
            total += 1
            live_items += live(item)
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    print(json.dumps({"items": total, "live": live_items}))


def delete_tables(args):
    client = dynamodb(args.endpoint, args.region)
    for table in args.tables:
        try:
            client.delete_table(TableName=table)
        except client.exceptions.ResourceNotFoundException:
            pass
        except Exception as e:  # reported, not fatal: the bench has its figures
            print(f"delete table {table}: {e}", file=sys.stderr)


MOTO_LINE = re.compile(r'\[(\d\d/\w\w\w/\d{4} \d\d:\d\d:\d\d)\] "(?:\x1b\[[0-9;]*m)*(\w+) [^"]*" (\d{3})')


def moto_log(args):
    """Requests moto logged per second between two times (its log has
    werkzeug's lines, local time, whole seconds)."""
    per_second = {}
    failed = 0
    with open(args.log, errors="replace") as f:
        if args.offset:
            f.seek(args.offset)
        for line in f:
            m = MOTO_LINE.search(line)
            if not m:
                continue
            at = time.mktime(time.strptime(m.group(1), "%d/%b/%Y %H:%M:%S"))
            if args.start - 1 <= at <= args.end:
                per_second[int(at)] = per_second.get(int(at), 0) + 1
                failed += m.group(3) != "200"
    seconds = list(range(int(args.start), int(args.end) + 1))
    counts = [per_second.get(t, 0) for t in seconds]
    longest = run = 0
    for c in counts:
        run = run + 1 if c <= 2 else 0
        longest = max(longest, run)
    busy = sorted(counts)
    print(
        json.dumps(
            {
                "requests": sum(counts),
                "seconds": len(counts),
                "per_s_median": busy[len(busy) // 2] if busy else 0,
                "per_s_max": busy[-1] if busy else 0,
                "seconds_with_at_most_2": sum(c <= 2 for c in counts),
                "longest_such_run_s": longest,
                "not_200": failed,
            }
        )
    )


def graph_drop(args):
    url = args.endpoint.rstrip("/") + "/gremlin"
    prefix = args.prefix.replace("\\", "\\\\").replace("'", "\\'")
    script = f"g.V().hasId(TextP.startingWith('{prefix}')).limit(5000).sideEffect(drop()).count()"
    dropped = 0
    while True:
        body = json.dumps({"gremlin": script}).encode()
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            answer = json.load(r)
        value = answer["result"]["data"]["@value"][0]
        n = value["@value"] if isinstance(value, dict) else value
        dropped += n
        if n == 0:
            break
    print(json.dumps({"vertices_dropped": dropped}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    w = sub.add_parser("watch")
    w.add_argument("--url", required=True)
    w.add_argument("--output", required=True)
    w.add_argument("--pid", type=int, default=0)
    w.add_argument("--parent", type=int, default=0, help="watch the first child of this process")
    w.add_argument("--every", type=float, default=0.1)
    w.add_argument("--timeout", type=float, default=3600)
    w.set_defaults(func=watch)

    m = sub.add_parser("markers")
    m.add_argument("--bootstrap", required=True)
    m.add_argument("--topic", required=True)
    m.add_argument("--rate", type=float, default=5)
    m.add_argument("--duration", type=float, default=60)
    m.add_argument("--prefix", required=True)
    m.set_defaults(func=markers)

    po = sub.add_parser("poll")
    po.add_argument("--endpoint", required=True)
    po.add_argument("--region", default="us-east-1")
    po.add_argument("--profiles-table", required=True)
    po.add_argument("--identifiers-table", required=True)
    po.add_argument("--timeout", type=float, default=30)
    po.add_argument("--interval", type=float, default=0.05)
    po.add_argument("--output", required=True)
    po.set_defaults(func=poll)

    c = sub.add_parser("count-live")
    c.add_argument("--endpoint", required=True)
    c.add_argument("--region", default="us-east-1")
    c.add_argument("--table", required=True)
    c.set_defaults(func=count_live)

    d = sub.add_parser("delete-tables")
    d.add_argument("--endpoint", required=True)
    d.add_argument("--region", default="us-east-1")
    d.add_argument("tables", nargs="+")
    d.set_defaults(func=delete_tables)

    ml = sub.add_parser("moto-log")
    ml.add_argument("--log", required=True)
    ml.add_argument("--start", type=float, required=True)
    ml.add_argument("--end", type=float, required=True)
    ml.add_argument("--offset", type=int, default=0, help="start reading at this byte")
    ml.set_defaults(func=moto_log)

    g = sub.add_parser("graph-drop")
    g.add_argument("--endpoint", required=True)
    g.add_argument("--prefix", required=True)
    g.set_defaults(func=graph_drop)

    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
