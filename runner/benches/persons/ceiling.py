"""How much of the truth a resolver can reach without linking on names
alone: the share of true pairs whose two records are connected, within
their person, through records that both carry some field besides a name (a
date of birth, an address, an identifier such as a phone or an SSN), however
damaged. The other true pairs (a tax record without a date of birth and a
benefits record without an address, say, with no census record between
them) share only a name, which households and namesakes make weak evidence.
Their share bounds recall, and so F1, for any resolver that does not link
on names alone.

    ceiling.py --input persons.jsonl --truth persons-truth.jsonl

prints one JSON object: pairs, reachable, recall and the F1 ceiling at
precision 1.
"""

import argparse
import collections
import itertools
import json

ADDRESS = ("street", "street_number", "zip")


def kinds(record):
    """The kinds of evidence besides a name the record carries."""
    attributes = record.get("attributes", {})
    found = set()
    if attributes.get("date_of_birth"):
        found.add("date_of_birth")
    if any(attributes.get(f) for f in ADDRESS):
        found.add("address")
    for identifier in record.get("identifiers", []):
        if identifier.get("value"):
            found.add(identifier["type"])
    return found


def reachable_pairs(records):
    """Pairs of these records (one person's) connected through pairs that
    share a kind of evidence."""
    neighbours = {i: set() for i in range(len(records))}
    evidence = [kinds(r) for r in records]
    for a, b in itertools.combinations(range(len(records)), 2):
        if evidence[a] & evidence[b]:
            neighbours[a].add(b)
            neighbours[b].add(a)
    seen, total = set(), 0
    for start in neighbours:
        if start in seen:
            continue
        stack, size = [start], 0
        seen.add(start)
        while stack:
            node = stack.pop()
            size += 1
            for other in neighbours[node] - seen:
                seen.add(other)
                stack.append(other)
        total += size * (size - 1) // 2
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--truth", required=True)
    args = parser.parse_args()
    records = {}
    with open(args.input, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            records[(r["source"], r["id"])] = r
    people = collections.defaultdict(list)
    with open(args.truth, encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)
            if "entity" in t:
                people[t["entity"]].append(records[(t["source"], t["id"])])
    pairs = sum(len(rs) * (len(rs) - 1) // 2 for rs in people.values())
    reachable = sum(reachable_pairs(rs) for rs in people.values() if len(rs) > 1)
    recall = reachable / pairs if pairs else 0.0
    f1 = 2 * recall / (1 + recall) if recall else 0.0
    print(json.dumps({"pairs": pairs, "reachable": reachable,
                      "recall": round(recall, 4), "f1": round(f1, 4)}))


if __name__ == "__main__":
    main()
