#!/usr/bin/env python3
"""verdict.py: the soak's judgement from its samples and exports.

Flat means: over the last fifth of the run, the highest resident memory is
at most 10 % (plus 16 MiB for allocator slack) above the highest of the
fifth after the warm-up (20-40 % of the run), file descriptors at most 2
above it, and threads no more. Exports: the runner's, the restored
checkpoint's and the file run's must be equal. Exits 1 when one fails."""

import argparse
import csv
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samples", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--sent", type=int, required=True)
    p.add_argument("--seconds", type=int, required=True)
    p.add_argument("--rate", type=int, required=True)
    args = p.parse_args()
    with open(args.samples, encoding="ascii") as f:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    if len(rows) < 10:
        sys.exit(f"soak: only {len(rows)} samples; run longer (SOAK_SECONDS) or sample more often (SOAK_EVERY)")
    n = len(rows)
    after_warmup = rows[n // 5 : 2 * n // 5]
    end = rows[4 * n // 5 :]

    def top(part, key):
        return max(r[key] for r in part)

    checks = []
    rss_base, rss_end = top(after_warmup, "rss_mib"), top(end, "rss_mib")
    checks.append(("memory", rss_end <= rss_base * 1.10 + 16,
                   f"resident memory {rows[0]['rss_mib']:.0f} MiB at the start, "
                   f"{rss_base:.0f} MiB after the warm-up, {rss_end:.0f} MiB at the end"))
    fd_base, fd_end = top(after_warmup, "fds"), top(end, "fds")
    checks.append(("file descriptors", fd_end <= fd_base + 2,
                   f"open files {fd_base:.0f} after the warm-up, {fd_end:.0f} at the end"))
    th_base, th_end = top(after_warmup, "threads"), top(end, "threads")
    checks.append(("threads", th_end <= th_base,
                   f"threads {th_base:.0f} after the warm-up, {th_end:.0f} at the end"))

    def lines(name):
        with open(f"{args.dir}/export.{name}", encoding="utf-8") as f:
            return f.read().splitlines()

    runner, restored, reference = lines("runner"), lines("restored"), lines("reference")
    checks.append(("exports", runner == restored == reference and len(runner) > 0,
                   f"export lines: runner {len(runner)}, restored {len(restored)}, file run {len(reference)}"))

    print(f"soak: {args.sent:,} observations at {args.rate:,}/s for {args.seconds} s, "
          f"{len(rows)} samples, {rows[-1]['checkpoints']:.0f} checkpoints")
    failed = False
    for name, ok, detail in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
        failed |= not ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
