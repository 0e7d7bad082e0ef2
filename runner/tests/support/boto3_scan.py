"""Print every item of a DynamoDB table as one JSON object per line, read
through boto3 (the client most applications reading Kith's tables use), so
tests can check that what the runner wrote through the AWS SDK for Rust
reads back intact through a second, independent client.

    python boto3_scan.py ENDPOINT TABLE

Strings, numbers (as strings, exactly as stored), booleans, lists, maps and
string sets are printed in their natural JSON shape; anything else is
refused, so a test never compares a value this script did not understand.
"""

import json
import sys
from decimal import Decimal

import boto3
from boto3.dynamodb.types import TypeDeserializer


def plain(value):
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, set):
        return sorted(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    raise TypeError(f"unexpected DynamoDB value of type {type(value).__name__}")


def main():
    endpoint, table = sys.argv[1], sys.argv[2]
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    deserializer = TypeDeserializer()
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            row = {k: plain(deserializer.deserialize(v)) for k, v in item.items()}
            print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
