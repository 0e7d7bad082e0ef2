#!/usr/bin/env python3
"""sample.py --pid P --metrics URL --every S --while-alive Q --output CSV

Every S seconds, while process Q lives, writes one CSV row about process P:
seconds since start, resident memory (MiB), open file descriptors, threads,
and from its /metrics the observations applied and checkpoints completed."""

import argparse
import os
import re
import time
import urllib.request


def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def metric(page, name):
    m = re.search(rf"^{re.escape(name)} (\S+)$", page, re.M)
    return float(m.group(1)) if m else 0.0


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--metrics", required=True)
    p.add_argument("--every", type=float, default=5)
    p.add_argument("--while-alive", type=int, required=True)
    p.add_argument("--output", required=True)
    args = p.parse_args()
    started = time.monotonic()
    with open(args.output, "w", encoding="ascii") as out:
        out.write("seconds,rss_mib,fds,threads,observations,checkpoints\n")
        while alive(args.while_alive):
            rss, threads = status(args.pid)
            fds = len(os.listdir(f"/proc/{args.pid}/fd"))
            with urllib.request.urlopen(args.metrics, timeout=10) as r:
                page = r.read().decode()
            observations = metric(page, "kith_observations_total")
            checkpoints = metric(page, 'kith_checkpoints_total{result="completed"}')
            out.write(
                f"{time.monotonic() - started:.1f},{rss:.1f},{fds},{threads},"
                f"{observations:.0f},{checkpoints:.0f}\n"
            )
            out.flush()
            time.sleep(args.every)


if __name__ == "__main__":
    main()
