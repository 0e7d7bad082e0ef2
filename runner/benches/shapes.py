"""Writes one of the pathological workloads of `shapes.sh` as canonical
observations on standard output.

  chain N K   N records linked in one chain (record i holds emails i and
              i + 1), then the last K retracted from the tail
  hub N       N/2 pairs: a record with account i and email i, and a record
              with email i and the one device all pairs share (the device
              is not generic, but would join every account)
  hot N       N events, each a record of its own, all holding one email
"""
import json
import sys


def person(i, ts, identifiers):
    return json.dumps(
        {
            "source": "events",
            "id": i,
            "ts": ts,
            "kind": "person",
            "identifiers": [{"type": t, "value": v} for t, v in identifiers],
            "attributes": {"seen": ts},
        },
        separators=(",", ":"),
    )


def main():
    shape, *args = sys.argv[1:]
    out = sys.stdout
    ts = "2026-01-01T00:00:00Z"
    if shape == "chain":
        n, k = int(args[0]), int(args[1])
        for i in range(n):
            out.write(person(f"r{i}", ts, [("email", f"e{i}@x.io"), ("email", f"e{i + 1}@x.io")]) + "\n")
        for j in range(1, k + 1):
            out.write(json.dumps({"source": "events", "id": f"r{n - j}", "ts": "2026-01-02T00:00:00Z", "retract": True}) + "\n")
    elif shape == "hub":
        for i in range(int(args[0]) // 2):
            out.write(person(f"a{i}", ts, [("account_id", f"acct-{i}"), ("email", f"p{i}@x.io")]) + "\n")
            out.write(person(f"d{i}", ts, [("email", f"p{i}@x.io"), ("device_id", "tablet-1")]) + "\n")
    elif shape == "hot":
        for i in range(int(args[0])):
            out.write(person(f"ev{i}", ts, [("email", "ann.hot@example.com"), ("cookie", f"ck-{i}")]) + "\n")
    else:
        sys.exit(f"unknown shape {shape!r}: chain, hub or hot")


if __name__ == "__main__":
    main()
