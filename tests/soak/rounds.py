#!/usr/bin/env python3
"""rounds.py BASE TOTAL: TOTAL lines of the canonical observations in BASE,
round after round, every timestamp of round k moved k hours later, so that
each round updates the same records rather than adding new ones."""

import datetime
import json
import sys


def main():
    base_path, total = sys.argv[1], int(sys.argv[2])
    with open(base_path, encoding="utf-8") as f:
        base = [json.loads(line) for line in f if line.strip()]
    if not base:
        sys.exit(f"{base_path} holds no observations")
    out = sys.stdout
    written, k = 0, 0
    while written < total:
        shift = datetime.timedelta(hours=k)
        for obs in base:
            if written >= total:
                break
            ts = datetime.datetime.fromisoformat(obs["ts"].replace("Z", "+00:00"))
            moved = dict(obs, ts=(ts + shift).strftime("%Y-%m-%dT%H:%M:%SZ"))
            out.write(json.dumps(moved, separators=(",", ":")))
            out.write("\n")
            written += 1
        k += 1


if __name__ == "__main__":
    main()
