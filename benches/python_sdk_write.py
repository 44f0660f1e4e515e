#!/usr/bin/env python3
"""BatchWriteRow throughput of the official Tablestore Python SDK against an endpoint.

Environment:
    TS_ENDPOINT, TS_INSTANCE, TS_AK, TS_SK   where to write (as for tests/conformance/official_sdk.py)
    BENCH_ROWS      rows to write (default 20000)
    BENCH_THREADS   client threads sharing one OTSClient (default 1)

Creates a table `bench_py_<random>` (pk INTEGER), writes BENCH_ROWS rows of about 1 KB (one
1000-byte string plus a few small columns) in 200-row batch_write_row calls, prints one JSON
line {"client":"python-sdk","rows":N,"seconds":s,"rows_per_s":r,...} and deletes the table.
Exit status 1 if any row failed. Retries are off: a throttled or failed call fails the run.

    .venv/bin/python benches/python_sdk_write.py
"""

import json
import logging
import os
import random
import sys
import threading
import time

from tablestore import (
    OTSClient,
    TableMeta,
    TableOptions,
    ReservedThroughput,
    CapacityUnit,
    Row,
    Condition,
    RowExistenceExpectation,
    PutRowItem,
    BatchWriteRowRequest,
    TableInBatchWriteRowItem,
)
from tablestore.retry import NoRetryPolicy

BATCH = 200


def env_int(name, default):
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        sys.exit("%s must be an integer, got %r" % (name, raw))
    if value <= 0:
        sys.exit("%s must be positive, got %r" % (name, raw))
    return value


def make_row(i, payload):
    return Row(
        [("pk", i)],
        [
            ("payload", payload),
            ("n", i),
            ("f", i / 7.0),
            ("flag", i % 2 == 0),
            ("tag", "t%05d" % (i % 100000)),
        ],
    )


def row_bytes(row):
    """Data size as the service accounts it: names + values (string UTF-8, int/double 8, bool 1)."""
    def size(v):
        if isinstance(v, bool):
            return 1
        if isinstance(v, (int, float)):
            return 8
        if isinstance(v, str):
            return len(v.encode("utf-8"))
        return len(v)

    cells = list(row.primary_key) + list(row.attribute_columns)
    return sum(len(c[0]) + size(c[1]) for c in cells)


def main():
    missing = [v for v in ("TS_ENDPOINT", "TS_INSTANCE", "TS_AK", "TS_SK") if not os.environ.get(v)]
    if missing:
        print("set %s (endpoint, instance, access key id, secret)" % ", ".join(missing), file=sys.stderr)
        return 2
    rows = env_int("BENCH_ROWS", 20000)
    threads = env_int("BENCH_THREADS", 1)
    logging.getLogger("tablestore-client").setLevel(logging.CRITICAL)

    client = OTSClient(
        os.environ["TS_ENDPOINT"],
        os.environ["TS_AK"],
        os.environ["TS_SK"],
        os.environ["TS_INSTANCE"],
        retry_policy=NoRetryPolicy(),
        max_connection=max(threads, 1) * 2,
    )
    table = "bench_py_%x%04x" % (int(time.time()) & 0xFFFFFF, random.getrandbits(16))
    client.create_table(TableMeta(table, [("pk", "INTEGER")]), TableOptions(), ReservedThroughput(CapacityUnit(0, 0)))
    try:
        payload = ("0123456789abcdef" * 63)[:1000]  # 1000-byte string attribute
        batches = [(lo, min(lo + BATCH, rows)) for lo in range(0, rows, BATCH)]
        lock = threading.Lock()
        state = {"next": 0, "failed_rows": 0, "errors": []}
        condition = Condition(RowExistenceExpectation.IGNORE)

        def worker():
            while True:
                with lock:
                    if state["next"] >= len(batches) or state["errors"]:
                        return
                    lo, hi = batches[state["next"]]
                    state["next"] += 1
                request = BatchWriteRowRequest()
                request.add(TableInBatchWriteRowItem(table, [PutRowItem(make_row(i, payload), condition)
                                                             for i in range(lo, hi)]))
                try:
                    response = client.batch_write_row(request)
                except Exception as e:  # noqa: BLE001 - reported below
                    with lock:
                        state["errors"].append("rows %d..%d: %s" % (lo, hi, e))
                    return
                failed = response.get_failed_of_put()
                if failed:
                    with lock:
                        state["failed_rows"] += len(failed)
                        state["errors"].append("rows %d..%d: %d failed, first %s %s" % (
                            lo, hi, len(failed), failed[0].error_code, failed[0].error_message))

        t0 = time.perf_counter()
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        seconds = time.perf_counter() - t0
    finally:
        try:
            client.delete_table(table)
        except Exception as e:  # noqa: BLE001
            print("could not delete %s: %s" % (table, e), file=sys.stderr)

    print(json.dumps({
        "client": "python-sdk",
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1) if not state["errors"] else None,
        "threads": threads,
        "batch": BATCH,
        "row_bytes": row_bytes(make_row(0, payload)),
    }, separators=(",", ":")), flush=True)
    if state["errors"]:
        for e in state["errors"][:5]:
            print("error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
