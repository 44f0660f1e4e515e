#!/usr/bin/env python3
"""Conformance checks of the local Tablestore server against the official Python SDK.

Runs the real `tablestore` package (PyPI, 6.4.x) against an endpoint and checks that every
response is accepted (the SDK verifies response signatures, MD5, dates and PlainBuffer CRCs)
and that the semantics match the service. Standalone: no pytest.

Environment:
    TS_ENDPOINT   e.g. http://127.0.0.1:8080
    TS_INSTANCE   instance name (the local server's default is `local`)
    TS_AK         access key id
    TS_SK         access key secret

Prints one line per check (`PASS name` / `FAIL name: why`) and finally `N passed, M failed`.
Exit status 0 only if every check passed. Tables get a per-run unique prefix and are deleted
at the end (the server has a 64-table quota).

Row-reading checks run twice: with the native PlainBuffer parser (`enable_native=True`, and
`native_fallback=False` so a native parse failure is reported instead of silently retried in
Python) and with the pure-Python parser (`enable_native=False`).
"""

import logging
import os
import random
import sys
import time
import traceback

try:
    from tablestore import (
        OTSClient,
        TableMeta,
        TableOptions,
        ReservedThroughput,
        CapacityUnit,
        Row,
        Condition,
        RowExistenceExpectation,
        SingleColumnCondition,
        CompositeColumnCondition,
        ComparatorType,
        LogicalOperator,
        INF_MIN,
        INF_MAX,
        Direction,
        PutRowItem,
        UpdateRowItem,
        DeleteRowItem,
        BatchWriteRowRequest,
        TableInBatchWriteRowItem,
        BatchGetRowRequest,
        TableInBatchGetRowItem,
    )
    from tablestore.retry import NoRetryPolicy
    from tablestore.error import OTSServiceError, OTSClientError
except ImportError as e:  # pragma: no cover - environment problem, not a check
    print("cannot import the official SDK (pip install tablestore): %s" % e, file=sys.stderr)
    sys.exit(2)

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1
RANGE_ROWS = 12000
BATCH = 200
PAGE_MAX = 5000  # documented GetRange page limit (rows)

# ----------------------------------------------------------------------------- harness


class Checks(object):
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def run(self, name, fn, *args, **kwargs):
        t0 = time.monotonic()
        try:
            detail = fn(*args, **kwargs)
        except AssertionError as e:
            self._fail(name, t0, "%s" % (e,) or "assertion failed")
            return False
        except OTSServiceError as e:
            self._fail(name, t0, "unexpected %s" % describe_service_error(e))
            return False
        except OTSClientError as e:
            self._fail(
                name,
                t0,
                "the SDK rejected the exchange: OTSClientError(%r, http_status=%r)"
                % (e.get_error_message(), e.get_http_status()),
            )
            return False
        except Exception as e:  # noqa: BLE001 - report anything as a failed check
            tb = traceback.format_exc().strip().splitlines()
            self._fail(name, t0, "%s: %s | %s" % (type(e).__name__, e, " / ".join(tb[-4:])))
            return False
        dt = time.monotonic() - t0
        self.passed += 1
        print("PASS %s (%.2fs)%s" % (name, dt, (": " + detail) if detail else ""), flush=True)
        return True

    def _fail(self, name, t0, why):
        dt = time.monotonic() - t0
        self.failed += 1
        self.failures.append((name, why))
        print("FAIL %s (%.2fs): %s" % (name, dt, why), flush=True)


def describe_service_error(e):
    return "OTSServiceError(http_status=%r, code=%r, message=%r, request_id=%r)" % (
        e.get_http_status(),
        e.get_error_code(),
        e.get_error_message(),
        e.get_request_id(),
    )


def eq(got, want, what):
    assert got == want, "%s: expected %r, got %r" % (what, want, got)


def expect_error(fn, code, http_status, what):
    """Calls fn; it must raise OTSServiceError with this code and HTTP status."""
    try:
        ret = fn()
    except OTSServiceError as e:
        assert e.get_error_code() == code and e.get_http_status() == http_status, (
            "%s: expected OTSServiceError(code=%r, http_status=%r), got %s"
            % (what, code, http_status, describe_service_error(e))
        )
        assert e.get_request_id(), "%s: error response has no x-ots-requestid" % what
        return e
    except OTSClientError as e:
        raise AssertionError(
            "%s: expected OTSServiceError(code=%r, http_status=%r), but the SDK raised "
            "OTSClientError(%r, http_status=%r)"
            % (what, code, http_status, e.get_error_message(), e.get_http_status())
        )
    raise AssertionError(
        "%s: expected OTSServiceError(code=%r, http_status=%r), but the call succeeded and returned %s"
        % (what, code, http_status, short(ret))
    )


def short(ret, limit=400):
    """A one-line summary of an SDK return value (batch responses: per-row is_ok/error_code)."""
    if hasattr(ret, "table_of_put"):
        tables = {}
        for kind in ("put", "update", "delete"):
            for table, rows in getattr(ret, "table_of_" + kind).items():
                for r in rows:
                    tables.setdefault(table, []).append(
                        (r.index, kind, r.is_ok, r.error_code, r.error_message))
        text = "BatchWriteRowResponse %r" % {t: sorted(v) for t, v in tables.items()}
    elif hasattr(ret, "items") and hasattr(ret, "get_failed_rows"):
        text = "BatchGetRowResponse %r" % {
            t: [(r.is_ok, r.error_code) for r in rows] for t, rows in ret.items.items()}
    else:
        text = repr(ret)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def same_value(got, want):
    """Exact equality including the Python type (True != 1, 1.0 != 1, bytearray != str)."""
    return type(got) is type(want) and got == want


def check_pk(got, want, what):
    assert got is not None, "%s: primary key missing" % what
    got = [tuple(c) for c in got]
    eq(len(got), len(want), "%s: number of primary-key columns" % what)
    for (gn, gv), (wn, wv) in zip(got, want):
        assert gn == wn and same_value(gv, wv), "%s: primary key expected %r, got %r" % (what, want, got)


def check_attrs(got, want, what, now_ms=None):
    """got: SDK attribute list [(name, value, ts)]; want: [(name, value)] or [(name, value, ts)]."""
    assert got is not None, "%s: attribute columns missing" % what
    got_map = {}
    for c in got:
        assert len(c) == 3, "%s: attribute %r should be (name, value, timestamp)" % (what, c)
        name, value, ts = c
        assert name not in got_map, "%s: column %r returned twice (max_version=1): %r" % (what, name, got)
        assert isinstance(ts, int) and ts > 0, "%s: column %r has timestamp %r" % (what, name, ts)
        if now_ms is not None:
            assert abs(ts - now_ms) < 10 * 60 * 1000, (
                "%s: column %r timestamp %r is not near now (%r ms)" % (what, name, ts, now_ms)
            )
        got_map[name] = (value, ts)
    want_names = [w[0] for w in want]
    eq(sorted(got_map), sorted(want_names), "%s: attribute column names" % what)
    for w in want:
        value, ts = got_map[w[0]]
        assert same_value(value, w[1]), "%s: column %r expected %r (%s), got %r (%s)" % (
            what,
            w[0],
            w[1],
            type(w[1]).__name__,
            value,
            type(value).__name__,
        )
        if len(w) == 3:
            eq(ts, w[2], "%s: timestamp of column %r" % (what, w[0]))


def now_ms():
    return int(time.time() * 1000)


def ignore():
    return Condition(RowExistenceExpectation.IGNORE)


def batch_results_in_order(resp, table):
    """All per-row results of one table, in request order."""
    items = []
    for getter in (resp.get_put_by_table, resp.get_update_by_table, resp.get_delete_by_table):
        try:
            items.extend(getter(table))
        except KeyError:
            pass
    items.sort(key=lambda r: r.index)
    return items


def scan(client, table, direction, start, end, limit=None, columns=None):
    """Manual get_range loop. Returns (rows, page_sizes)."""
    rows, pages = [], []
    next_pk = start
    while next_pk is not None:
        consumed, next_pk, page, token = client.get_range(
            table, direction, next_pk, end, columns_to_get=columns, limit=limit, max_version=1
        )
        assert isinstance(consumed, CapacityUnit), "get_range consumed is %r" % (consumed,)
        pages.append(len(page))
        rows.extend(page)
        assert len(pages) <= 100, "get_range did not finish after 100 pages (next key %r)" % (next_pk,)
    return rows, pages


# ----------------------------------------------------------------------------- the run


class Suite(object):
    def __init__(self, endpoint, instance, ak, sk):
        self.endpoint, self.instance, self.ak, self.sk = endpoint, instance, ak, sk
        self.checks = Checks()
        run_id = "%x%04x" % (int(time.time()) & 0xFFFFFF, random.getrandbits(16))
        self.prefix = "sdkc_%s_" % run_id
        self.created = []
        self.native = self.client(enable_native=True, native_fallback=False)
        self.pure = self.client(enable_native=False)
        self.variants = [("native", self.native), ("python", self.pure)]

    def client(self, secret=None, **kwargs):
        return OTSClient(
            self.endpoint,
            self.ak,
            secret or self.sk,
            self.instance,
            retry_policy=NoRetryPolicy(),
            **kwargs
        )

    def table(self, suffix):
        return self.prefix + suffix

    def create(self, suffix, schema, options=None):
        name = self.table(suffix)
        self.native.create_table(
            TableMeta(name, schema),
            options or TableOptions(),
            ReservedThroughput(CapacityUnit(0, 0)),
        )
        self.created.append(name)
        return name

    # ------------------------------------------------------------------ table operations

    def t_native_parser_active(self):
        dec = self.native.protocol.decoder
        assert dec._use_native_parser, (
            "the SDK's native PlainBuffer parser did not load on this platform, so the 'native' "
            "variant would only exercise the Python parser"
        )
        assert not self.pure.protocol.decoder._use_native_parser, "enable_native=False client uses the native parser"

    def t_create_describe(self):
        opts = TableOptions(time_to_live=172800, max_version=2, max_time_deviation=86400)
        name = self.create("meta", [("pk", "STRING"), ("id", "INTEGER")], opts)
        d = self.native.describe_table(name)
        eq(d.table_meta.table_name, name, "describe_table table_name")
        eq([tuple(c) for c in d.table_meta.schema_of_primary_key], [("pk", "STRING"), ("id", "INTEGER")],
           "describe_table primary key schema")
        eq(d.table_options.time_to_live, 172800, "describe_table time_to_live")
        eq(d.table_options.max_version, 2, "describe_table max_versions")
        eq(d.table_options.max_time_deviation, 86400, "describe_table deviation_cell_version_in_sec")
        cu = d.reserved_throughput_details.capacity_unit
        eq((cu.read, cu.write), (0, 0), "describe_table reserved capacity unit")
        assert isinstance(d.reserved_throughput_details.last_increase_time, int), (
            "describe_table last_increase_time is %r" % (d.reserved_throughput_details.last_increase_time,)
        )
        # Defaults as sent by TableOptions() (observed on the wire: ttl -1, max_versions 1).
        name2 = self.create("meta_default", [("k", "BINARY")])
        d2 = self.pure.describe_table(name2)
        eq([tuple(c) for c in d2.table_meta.schema_of_primary_key], [("k", "BINARY")], "default table PK schema")
        eq((d2.table_options.time_to_live, d2.table_options.max_version), (-1, 1), "default table options")

    def t_list_table(self):
        names = self.native.list_table()
        assert isinstance(names, tuple), "list_table returned %r" % (names,)
        for t in (self.table("meta"), self.table("meta_default")):
            assert t in names, "list_table does not contain %r: %r" % (t, names)

    def t_create_existing(self):
        name = self.table("meta")
        e = expect_error(
            lambda: self.native.create_table(
                TableMeta(name, [("pk", "STRING"), ("id", "INTEGER")]),
                TableOptions(),
                ReservedThroughput(CapacityUnit(0, 0)),
            ),
            "OTSObjectAlreadyExist",
            409,
            "create_table on an existing table",
        )
        return "message %r" % e.get_error_message()

    def t_describe_missing(self):
        e = expect_error(
            lambda: self.native.describe_table(self.table("no_such_table")),
            "OTSObjectNotExist",
            404,
            "describe_table on a missing table",
        )
        return "message %r" % e.get_error_message()

    def t_missing_table_ops(self):
        missing = self.table("no_such_table")
        expect_error(lambda: self.native.delete_table(missing), "OTSObjectNotExist", 404, "delete_table missing")
        expect_error(lambda: self.native.get_row(missing, [("pk", "a")], max_version=1),
                     "OTSObjectNotExist", 404, "get_row on a missing table")
        expect_error(lambda: self.native.put_row(missing, Row([("pk", "a")], [("c", 1)]), ignore()),
                     "OTSObjectNotExist", 404, "put_row on a missing table")

    def t_delete_table(self):
        name = self.table("meta_default")
        ret = self.native.delete_table(name)
        eq(ret, None, "delete_table return value")
        self.created.remove(name)
        names = self.native.list_table()
        assert name not in names, "deleted table %r still listed: %r" % (name, names)
        expect_error(lambda: self.native.describe_table(name), "OTSObjectNotExist", 404,
                     "describe_table after delete_table")

    def t_invalid_pk(self):
        t = self.table("meta")
        e = expect_error(lambda: self.native.get_row(t, [("pk", "a"), ("nope", 1)], max_version=1),
                         "OTSInvalidPK", 400, "get_row with a wrong primary-key name")
        expect_error(lambda: self.native.get_row(t, [("pk", "a")], max_version=1),
                     "OTSInvalidPK", 400, "get_row with too few primary-key columns")
        return "message %r" % e.get_error_message()

    # ------------------------------------------------------------------ single-row ops

    ALL_TYPES = [
        ("i", 42),
        ("neg", -7),
        ("zero", 0),
        ("i64min", INT64_MIN),
        ("i64max", INT64_MAX),
        ("f", 3.141592653589793),
        ("fneg", -0.5),
        ("fbig", 1.7976931348623157e308),
        ("ftiny", 5e-324),
        ("t", True),
        ("fl", False),
        ("s", "plain ascii"),
        ("u", "h\u00e9llo w\u00f6rld \u2014 \u4e16\u754c \U0001F680\U0001F389 \u0645\u0631\u062d\u0628\u0627"),
        ("bin", bytearray(range(256))),
        ("bin0", bytearray(b"\x00\x00")),
    ]

    def t_put_get_all_types(self, client, t):
        pk = [("pk", "all-types"), ("id", 1)]
        consumed, ret = client.put_row(t, Row(pk, self.ALL_TYPES), ignore())
        assert isinstance(consumed, CapacityUnit), "put_row consumed is %r" % (consumed,)
        assert consumed.write >= 1, "put_row consumed write CU %r, expected >= 1" % (consumed.write,)
        eq(ret, None, "put_row return_row without return_type")
        consumed, row, token = client.get_row(t, pk, max_version=1)
        assert row is not None, "get_row returned no row after put_row"
        assert consumed.read >= 1, "get_row consumed read CU %r, expected >= 1" % (consumed.read,)
        check_pk(row.primary_key, pk, "get_row")
        check_attrs(row.attribute_columns, self.ALL_TYPES, "get_row", now_ms())

    def t_get_columns_and_missing(self, client, t):
        pk = [("pk", "all-types"), ("id", 1)]
        _, row, _ = client.get_row(t, pk, columns_to_get=["s", "i64min", "not_there"], max_version=1)
        check_pk(row.primary_key, pk, "get_row columns_to_get")
        check_attrs(row.attribute_columns, [("s", "plain ascii"), ("i64min", INT64_MIN)], "get_row columns_to_get")
        _, row, _ = client.get_row(t, [("pk", "all-types"), ("id", 2)], max_version=1)
        eq(row, None, "get_row of a missing row")

    def t_unicode_pk(self, client, t):
        pk = [("pk", "\u043a\u043b\u044e\u0447-\U0001F511-\u00e9"), ("id", INT64_MIN)]
        client.put_row(t, Row(pk, [("c", "v")]), ignore())
        _, row, _ = client.get_row(t, pk, max_version=1)
        assert row is not None, "get_row with a non-ASCII STRING / int64-min PK returned None"
        check_pk(row.primary_key, pk, "non-ASCII PK")
        check_attrs(row.attribute_columns, [("c", "v")], "non-ASCII PK")

    def t_binary_pk(self, client, t):
        keys = [b"\xff", b"\x00", b"\x80", b"\x7f", b"\x01\x00", b"\x00\x01\xff\xfe"]
        for k in keys:
            client.put_row(t, Row([("k", bytearray(k)), ("n", 1)], [("orig", bytearray(k))]), ignore())
        for k in keys:
            _, row, _ = client.get_row(t, [("k", bytearray(k)), ("n", 1)], max_version=1)
            assert row is not None, "get_row on BINARY pk %r returned None" % (k,)
            check_pk(row.primary_key, [("k", bytearray(k)), ("n", 1)], "BINARY pk get_row")
            check_attrs(row.attribute_columns, [("orig", bytearray(k))], "BINARY pk get_row")
        rows, _ = scan(client, t, Direction.FORWARD, [("k", INF_MIN), ("n", INF_MIN)], [("k", INF_MAX), ("n", INF_MAX)])
        got = [bytes(r.primary_key[0][1]) for r in rows]
        eq(got, sorted(keys), "BINARY pk get_range order (unsigned byte-wise)")
        for r in rows:
            assert type(r.primary_key[0][1]) is bytearray, "BINARY pk decoded as %r" % (type(r.primary_key[0][1]),)

    def t_update_row(self, client, t):
        pk = [("pk", "upd"), ("id", 7)]
        old_ts = now_ms() - 60 * 1000
        client.put_row(t, Row(pk, [("a", 1), ("b", "x"), ("c", True), ("counter", 10), ("ver", "old", old_ts)]),
                       ignore())
        _, row, _ = client.get_row(t, pk, max_version=1)
        check_attrs(row.attribute_columns,
                    [("a", 1), ("b", "x"), ("c", True), ("counter", 10), ("ver", "old", old_ts)],
                    "row before update_row")
        consumed, ret = client.update_row(
            t,
            Row(pk, {
                "PUT": [("b", "y"), ("n2", 2.5), ("raw", bytearray(b"\x00\xff"))],
                "DELETE_ALL": ["a"],
                "INCREMENT": [("counter", 5), ("fresh", 3)],
                "DELETE": [("ver", None, old_ts)],
            }),
            ignore(),
        )
        assert isinstance(consumed, CapacityUnit) and consumed.write >= 1, "update_row consumed %r" % (consumed,)
        eq(ret, None, "update_row return_row without return_type")
        _, row, _ = client.get_row(t, pk, max_version=1)
        check_attrs(
            row.attribute_columns,
            [("b", "y"), ("c", True), ("counter", 15), ("fresh", 3), ("n2", 2.5), ("raw", bytearray(b"\x00\xff"))],
            "row after update_row PUT/DELETE_ALL/INCREMENT/DELETE",
            now_ms(),
        )
        client.update_row(t, Row(pk, {"INCREMENT": [("counter", -20)]}), ignore())
        _, row, _ = client.get_row(t, pk, columns_to_get=["counter"], max_version=1)
        check_attrs(row.attribute_columns, [("counter", -5)], "counter after INCREMENT(-20)")
        # UpdateRow on an absent row creates it.
        pk2 = [("pk", "upd-new"), ("id", 8)]
        client.update_row(t, Row(pk2, {"PUT": [("x", "created")], "INCREMENT": [("cnt", 1)]}), ignore())
        _, row, _ = client.get_row(t, pk2, max_version=1)
        assert row is not None, "update_row on an absent row did not create it"
        check_attrs(row.attribute_columns, [("x", "created"), ("cnt", 1)], "row created by update_row")

    def t_increment_non_integer(self, client, t):
        pk = [("pk", "upd"), ("id", 7)]
        expect_error(lambda: client.update_row(t, Row(pk, {"INCREMENT": [("b", 1)]}), ignore()),
                     "OTSParameterInvalid", 400, "INCREMENT on a STRING column")

    def t_delete_row(self, client, t):
        pk = [("pk", "upd"), ("id", 7)]
        consumed, ret = client.delete_row(t, Row(pk), ignore())
        assert isinstance(consumed, CapacityUnit), "delete_row consumed %r" % (consumed,)
        _, row, _ = client.get_row(t, pk, max_version=1)
        eq(row, None, "get_row after delete_row")
        # Deleting an absent row with IGNORE succeeds.
        client.delete_row(t, Row(pk), ignore())

    # ------------------------------------------------------------------ batches

    def t_batch_write_200(self, client, t):
        items = [
            PutRowItem(Row([("pk", "bw"), ("id", i)], [("v", i), ("s", "row-%d" % i)]), ignore())
            for i in range(BATCH)
        ]
        req = BatchWriteRowRequest()
        req.add(TableInBatchWriteRowItem(t, items))
        resp = client.batch_write_row(req)
        results = batch_results_in_order(resp, t)
        eq(len(results), BATCH, "number of per-row results")
        bad = [(r.index, r.error_code, r.error_message) for r in results if not r.is_ok]
        eq(bad, [], "failed rows in a 200-row batch")
        assert resp.is_all_succeed(), "is_all_succeed() is False"
        for r in results:
            assert r.consumed is not None and r.consumed.write >= 1, "row %d consumed %r" % (r.index, r.consumed)
        rows, _ = scan(client, t, Direction.FORWARD, [("pk", "bw"), ("id", INF_MIN)], [("pk", "bw"), ("id", INF_MAX)])
        eq([r.primary_key[1][1] for r in rows], list(range(BATCH)), "ids read back after the batch")
        for r in rows:
            i = r.primary_key[1][1]
            check_attrs(r.attribute_columns, [("v", i), ("s", "row-%d" % i)], "batch row %d" % i)

    def t_batch_write_mixed(self, client, t):
        wrong_pk = [("pk", "bw"), ("nope", 1)]
        items = [
            PutRowItem(Row([("pk", "bw"), ("id", 1000)], [("v", 1000)]), ignore()),
            PutRowItem(Row([("pk", "bw"), ("id", 5)], [("v", -1)]),
                       Condition(RowExistenceExpectation.EXPECT_NOT_EXIST)),
            UpdateRowItem(Row(wrong_pk, {"PUT": [("v", 1)]}), ignore()),
            DeleteRowItem(Row([("pk", "bw"), ("id", 6)]), ignore()),
            UpdateRowItem(Row([("pk", "bw"), ("id", 7)], {"PUT": [("x", "upd")]}),
                          Condition(RowExistenceExpectation.EXPECT_EXIST)),
            UpdateRowItem(Row([("pk", "bw"), ("id", 9999)], {"PUT": [("x", "upd")]}),
                          Condition(RowExistenceExpectation.EXPECT_EXIST)),
        ]
        req = BatchWriteRowRequest()
        req.add(TableInBatchWriteRowItem(t, items))
        resp = client.batch_write_row(req)
        results = batch_results_in_order(resp, t)
        got = [(r.index, r.is_ok, r.error_code) for r in results]
        want = [
            (0, True, None),
            (1, False, "OTSConditionCheckFail"),
            (2, False, "OTSInvalidPK"),
            (3, True, None),
            (4, True, None),
            (5, False, "OTSConditionCheckFail"),
        ]
        eq(got, want, "per-row (index, is_ok, error_code) of a mixed batch")
        assert not resp.is_all_succeed(), "is_all_succeed() is True for a batch with failed rows"
        _, row, _ = client.get_row(t, [("pk", "bw"), ("id", 1000)], max_version=1)
        assert row is not None, "good row of the mixed batch was not written"
        _, row, _ = client.get_row(t, [("pk", "bw"), ("id", 5)], max_version=1)
        check_attrs(row.attribute_columns, [("v", 5), ("s", "row-5")], "row whose condition failed (unchanged)")
        _, row, _ = client.get_row(t, [("pk", "bw"), ("id", 6)], max_version=1)
        eq(row, None, "row deleted in the mixed batch")
        _, row, _ = client.get_row(t, [("pk", "bw"), ("id", 7)], max_version=1)
        check_attrs(row.attribute_columns, [("v", 7), ("s", "row-7"), ("x", "upd")], "row updated in the mixed batch")
        _, row, _ = client.get_row(t, [("pk", "bw"), ("id", 9999)], max_version=1)
        eq(row, None, "row whose EXPECT_EXIST failed must not be created")
        return "row errors: %s" % "; ".join(
            "%d %s %r" % (r.index, r.error_code, r.error_message) for r in results if not r.is_ok
        )

    def t_batch_write_missing_table(self, client, t):
        # Official API reference (BatchWriteRow): "An error is returned [for the whole request]
        # if ... a specified table does not exist."
        missing = self.table("no_such_table")
        req = BatchWriteRowRequest()
        req.add(TableInBatchWriteRowItem(t, [PutRowItem(Row([("pk", "bw-mt"), ("id", 1)], [("v", 1)]), ignore())]))
        req.add(TableInBatchWriteRowItem(missing, [PutRowItem(Row([("pk", "x"), ("id", 1)], [("v", 1)]), ignore())]))
        e = expect_error(lambda: client.batch_write_row(req), "OTSObjectNotExist", 404,
                         "batch_write_row naming a missing table")
        _, row, _ = client.get_row(t, [("pk", "bw-mt"), ("id", 1)], max_version=1)
        eq(row, None, "row of an existing table in a rejected batch")
        return "message %r" % e.get_error_message()

    def t_batch_write_limits(self, client, t):
        items = [PutRowItem(Row([("pk", "lim"), ("id", i)], [("v", i)]), ignore()) for i in range(BATCH + 1)]
        req = BatchWriteRowRequest()
        req.add(TableInBatchWriteRowItem(t, items))
        expect_error(lambda: client.batch_write_row(req), "OTSParameterInvalid", 400, "batch_write_row with 201 rows")
        dup = [PutRowItem(Row([("pk", "lim"), ("id", 1)], [("v", i)]), ignore()) for i in range(2)]
        req = BatchWriteRowRequest()
        req.add(TableInBatchWriteRowItem(t, dup))
        expect_error(lambda: client.batch_write_row(req), "OTSParameterInvalid", 400,
                     "batch_write_row with the same primary key twice")

    def t_batch_get(self, client, t, tbin):
        keys = [
            [("pk", "bw"), ("id", 0)],
            [("pk", "bw"), ("id", 199)],
            [("pk", "bw"), ("id", 987654)],  # missing
            [("pk", "bw"), ("id", 5)],
        ]
        bkeys = [[("k", bytearray(b"\x80")), ("n", 1)], [("k", bytearray(b"\x81")), ("n", 1)]]
        req = BatchGetRowRequest()
        req.add(TableInBatchGetRowItem(t, keys, max_version=1))
        req.add(TableInBatchGetRowItem(tbin, bkeys, columns_to_get=["orig"], max_version=1))
        resp = client.batch_get_row(req)
        assert resp.is_all_succeed(), "failed rows: %r" % (
            [(r.table_name, r.error_code, r.error_message) for r in resp.get_failed_rows()],)
        rows = resp.get_result_by_table(t)
        eq(len(rows), 4, "batch_get_row results for %s" % t)
        for i in (0, 1, 3):
            assert rows[i].is_ok and rows[i].row is not None, "batch_get_row row %d: %r" % (i, rows[i].__dict__)
            check_pk(rows[i].row.primary_key, keys[i], "batch_get_row row %d (request order)" % i)
            n = keys[i][1][1]
            check_attrs(rows[i].row.attribute_columns, [("v", n), ("s", "row-%d" % n)], "batch_get_row row %d" % i)
        assert rows[2].is_ok, "missing row must be is_ok=True: %r" % (rows[2].__dict__,)
        eq(rows[2].row, None, "batch_get_row missing row")
        brows = resp.get_result_by_table(tbin)
        eq(len(brows), 2, "batch_get_row results for the BINARY table")
        check_pk(brows[0].row.primary_key, bkeys[0], "batch_get_row BINARY row")
        check_attrs(brows[0].row.attribute_columns, [("orig", bytearray(b"\x80"))], "batch_get_row BINARY row")
        eq(brows[1].row, None, "batch_get_row missing BINARY row")

    # ------------------------------------------------------------------ ranges

    def range_expected(self):
        keys = [(["a", "b", "c"][i % 3], i - RANGE_ROWS // 2) for i in range(RANGE_ROWS)]
        return sorted(keys)

    def t_range_load(self):
        t = self.create("range", [("part", "STRING"), ("id", "INTEGER")])
        keys = [(["a", "b", "c"][i % 3], i - RANGE_ROWS // 2) for i in range(RANGE_ROWS)]
        random.Random(7).shuffle(keys)
        calls = 0
        for off in range(0, RANGE_ROWS, BATCH):
            items = [
                PutRowItem(Row([("part", p), ("id", i)], [("v", i), ("s", p * 3)]), ignore())
                for p, i in keys[off:off + BATCH]
            ]
            req = BatchWriteRowRequest()
            req.add(TableInBatchWriteRowItem(t, items))
            resp = self.native.batch_write_row(req)
            calls += 1
            assert resp.is_all_succeed(), "batch %d: failed rows %r" % (
                calls, [(r.index, r.error_code, r.error_message) for r in resp.get_failed_of_put()][:5])
        return "%d rows in %d batch_write_row calls" % (RANGE_ROWS, calls)

    def check_range_rows(self, rows, want_keys, what):
        got = [(r.primary_key[0][1], r.primary_key[1][1]) for r in rows]
        if got != want_keys:
            first = next((k for k, (g, w) in enumerate(zip(got, want_keys)) if g != w), min(len(got), len(want_keys)))
            raise AssertionError("%s: %d rows, expected %d; first difference at position %d: got %r, expected %r" % (
                what, len(got), len(want_keys), first,
                got[first:first + 3], want_keys[first:first + 3]))
        for r in rows:
            p, i = r.primary_key[0][1], r.primary_key[1][1]
            attrs = [(c[0], c[1]) for c in r.attribute_columns]
            if sorted(attrs) != [("s", p * 3), ("v", i)]:
                raise AssertionError("%s: row %r has attributes %r" % (what, (p, i), r.attribute_columns))

    def t_range_forward(self, client):
        t = self.table("range")
        rows, pages = scan(client, t, Direction.FORWARD, [("part", INF_MIN), ("id", INF_MIN)],
                           [("part", INF_MAX), ("id", INF_MAX)])
        assert len(pages) > 1, "the full scan came back in one page of %d rows (no server paging)" % pages[0]
        assert max(pages) <= PAGE_MAX, "a page holds %d rows (> %d)" % (max(pages), PAGE_MAX)
        assert len(pages) >= -(-RANGE_ROWS // PAGE_MAX), "pages %r" % (pages,)
        self.check_range_rows(rows, self.range_expected(), "forward get_range")
        return "pages %s" % pages

    def t_range_backward(self, client):
        t = self.table("range")
        rows, pages = scan(client, t, Direction.BACKWARD, [("part", INF_MAX), ("id", INF_MAX)],
                           [("part", INF_MIN), ("id", INF_MIN)])
        assert len(pages) > 1, "backward scan came back in one page"
        assert max(pages) <= PAGE_MAX, "a page holds %d rows (> %d)" % (max(pages), PAGE_MAX)
        self.check_range_rows(rows, list(reversed(self.range_expected())), "backward get_range")
        return "pages %s" % pages

    def t_xget_range(self, client):
        t = self.table("range")
        counter = CapacityUnit(0, 0)
        rows = list(client.xget_range(t, Direction.FORWARD, [("part", INF_MIN), ("id", INF_MIN)],
                                      [("part", INF_MAX), ("id", INF_MAX)], counter))
        self.check_range_rows(rows, self.range_expected(), "xget_range")
        assert counter.read >= 1, "xget_range consumed_counter.read = %r" % (counter.read,)
        counter = CapacityUnit(0, 0)
        rows = list(client.xget_range(t, Direction.FORWARD, [("part", INF_MIN), ("id", INF_MIN)],
                                      [("part", INF_MAX), ("id", INF_MAX)], counter, count=5003))
        self.check_range_rows(rows, self.range_expected()[:5003], "xget_range count=5003")

    def t_range_limit(self, client):
        t = self.table("range")
        want = self.range_expected()
        start, end = [("part", INF_MIN), ("id", INF_MIN)], [("part", INF_MAX), ("id", INF_MAX)]
        _, next_pk, rows, _ = client.get_range(t, Direction.FORWARD, start, end, limit=7, max_version=1)
        self.check_range_rows(rows, want[:7], "get_range limit=7 page 1")
        assert next_pk is not None, "get_range limit=7 returned no next_start_primary_key"
        check_pk(next_pk, [("part", want[7][0]), ("id", want[7][1])], "next_start_primary_key after limit=7")
        _, next_pk, rows, _ = client.get_range(t, Direction.FORWARD, next_pk, end, limit=7, max_version=1)
        self.check_range_rows(rows, want[7:14], "get_range limit=7 page 2")
        check_pk(next_pk, [("part", want[14][0]), ("id", want[14][1])], "next_start_primary_key after page 2")
        # Backward with a limit.
        _, next_pk, rows, _ = client.get_range(t, Direction.BACKWARD, end, start, limit=7, max_version=1)
        self.check_range_rows(rows, list(reversed(want))[:7], "backward get_range limit=7")
        check_pk(next_pk, [("part", want[-8][0]), ("id", want[-8][1])], "backward next_start_primary_key")

    def t_range_bounded(self, client):
        t = self.table("range")
        want = [k for k in self.range_expected() if k[0] == "b" and -100 <= k[1] < 100]
        rows, pages = scan(client, t, Direction.FORWARD, [("part", "b"), ("id", -100)], [("part", "b"), ("id", 100)])
        self.check_range_rows(rows, want, "bounded get_range [b,-100) .. (b,100)")
        eq(len(pages), 1, "pages of a small bounded range")
        _, next_pk, rows, _ = client.get_range(t, Direction.FORWARD, [("part", "b"), ("id", 0)],
                                               [("part", "b"), ("id", 10)], columns_to_get=["v"], max_version=1)
        small = [k[1] for k in want if 0 <= k[1] < 10]
        assert small, "test data has no part-b ids in [0, 10)"
        eq([(r.primary_key[1][1], [(c[0], c[1]) for c in r.attribute_columns]) for r in rows],
           [(i, [("v", i)]) for i in small],
           "get_range [b,0)..(b,10) columns_to_get=['v']")
        eq(next_pk, None, "next_start_primary_key of a complete range")
        expect_error(lambda: client.get_range(t, Direction.FORWARD, [("part", "c"), ("id", 0)],
                                              [("part", "a"), ("id", 0)], max_version=1),
                     "OTSParameterInvalid", 400, "FORWARD get_range with start > end")

    # ------------------------------------------------------------------ conditions

    def t_conditions(self):
        c = self.native
        t = self.create("cond", [("pk", "STRING")])
        c.put_row(t, Row([("pk", "r1")], [("n", 5), ("s", "x")]), ignore())
        e = expect_error(
            lambda: c.put_row(t, Row([("pk", "r1")], [("n", 99)]), Condition(RowExistenceExpectation.EXPECT_NOT_EXIST)),
            "OTSConditionCheckFail", 403, "put_row EXPECT_NOT_EXIST on an existing row")
        _, row, _ = c.get_row(t, [("pk", "r1")], max_version=1)
        check_attrs(row.attribute_columns, [("n", 5), ("s", "x")], "row after a failed EXPECT_NOT_EXIST put")
        c.put_row(t, Row([("pk", "r2")], [("n", 1)]), Condition(RowExistenceExpectation.EXPECT_NOT_EXIST))
        expect_error(
            lambda: c.update_row(t, Row([("pk", "r3")], {"PUT": [("n", 1)]}), Condition(RowExistenceExpectation.EXPECT_EXIST)),
            "OTSConditionCheckFail", 403, "update_row EXPECT_EXIST on a missing row")
        expect_error(
            lambda: c.delete_row(t, Row([("pk", "r3")]), Condition(RowExistenceExpectation.EXPECT_EXIST)),
            "OTSConditionCheckFail", 403, "delete_row EXPECT_EXIST on a missing row")
        _, row, _ = c.get_row(t, [("pk", "r3")], max_version=1)
        eq(row, None, "row r3 after failed conditional writes")
        return "message %r" % e.get_error_message()

    def t_column_conditions(self):
        c = self.native
        t = self.table("cond")
        pk = [("pk", "r1")]
        expect_error(
            lambda: c.update_row(t, Row(pk, {"PUT": [("n", 100)]}),
                                 Condition(RowExistenceExpectation.IGNORE,
                                           SingleColumnCondition("n", 6, ComparatorType.EQUAL))),
            "OTSConditionCheckFail", 403, "update_row with failing SingleColumnCondition n == 6")
        expect_error(
            lambda: c.put_row(t, Row(pk, [("n", 100)]),
                              Condition(RowExistenceExpectation.EXPECT_EXIST,
                                        SingleColumnCondition("n", 5, ComparatorType.GREATER_THAN))),
            "OTSConditionCheckFail", 403, "put_row with failing SingleColumnCondition n > 5")
        expect_error(
            lambda: c.update_row(t, Row(pk, {"PUT": [("n", 100)]}),
                                 Condition(RowExistenceExpectation.IGNORE,
                                           SingleColumnCondition("nope", 1, ComparatorType.EQUAL,
                                                                 pass_if_missing=False))),
            "OTSConditionCheckFail", 403, "SingleColumnCondition on a missing column with pass_if_missing=False")
        _, row, _ = c.get_row(t, pk, max_version=1)
        check_attrs(row.attribute_columns, [("n", 5), ("s", "x")], "row after failed column conditions")
        c.update_row(t, Row(pk, {"PUT": [("n", 6)]}),
                     Condition(RowExistenceExpectation.EXPECT_EXIST, SingleColumnCondition("n", 5, ComparatorType.EQUAL)))
        c.update_row(t, Row(pk, {"PUT": [("m", 1)]}),
                     Condition(RowExistenceExpectation.IGNORE,
                               SingleColumnCondition("nope", 1, ComparatorType.EQUAL, pass_if_missing=True)))
        comp = CompositeColumnCondition(LogicalOperator.AND)
        comp.add_sub_condition(SingleColumnCondition("n", 6, ComparatorType.GREATER_EQUAL))
        comp.add_sub_condition(SingleColumnCondition("s", "x", ComparatorType.EQUAL))
        c.put_row(t, Row(pk, [("n", 7), ("s", "x"), ("m", 2)]), Condition(RowExistenceExpectation.EXPECT_EXIST, comp))
        _, row, _ = c.get_row(t, pk, max_version=1)
        check_attrs(row.attribute_columns, [("n", 7), ("s", "x"), ("m", 2)], "row after passing column conditions")

    # ------------------------------------------------------------------ signing / auth

    def t_v4_signing(self):
        v4 = self.client(region="cn-hangzhou")
        names = v4.list_table()
        assert self.table("cond") in names, "v4 list_table does not contain %r: %r" % (self.table("cond"), names)
        t = self.table("cond")
        pk = [("pk", "v4")]
        v4.put_row(t, Row(pk, [("u", "\u00fc\U0001F600"), ("b", bytearray(b"\x01\x02"))]), ignore())
        _, row, _ = v4.get_row(t, pk, max_version=1)
        check_attrs(row.attribute_columns, [("u", "\u00fc\U0001F600"), ("b", bytearray(b"\x01\x02"))], "v4 get_row")
        # Error responses must also be acceptable (signed with the v4 key, if signed at all).
        expect_error(lambda: v4.describe_table(self.table("no_such_table")), "OTSObjectNotExist", 404,
                     "v4 describe_table missing")
        expect_error(
            lambda: v4.put_row(t, Row(pk, [("n", 1)]), Condition(RowExistenceExpectation.EXPECT_NOT_EXIST)),
            "OTSConditionCheckFail", 403, "v4 conditional put failure")

    def t_wrong_secret(self):
        bad = self.client(secret="wrong-" + self.sk)
        e = expect_error(lambda: bad.list_table(), "OTSAuthFailed", 403, "list_table with a wrong secret")
        expect_error(lambda: bad.get_row(self.table("cond"), [("pk", "r1")], max_version=1),
                     "OTSAuthFailed", 403, "get_row with a wrong secret")
        bad4 = self.client(secret="wrong-" + self.sk, region="cn-hangzhou")
        expect_error(lambda: bad4.list_table(), "OTSAuthFailed", 403, "v4 list_table with a wrong secret")
        return "message %r" % e.get_error_message()

    def t_wrong_access_key_id(self):
        bad = OTSClient(self.endpoint, "not-" + self.ak, self.sk, self.instance, retry_policy=NoRetryPolicy())
        expect_error(lambda: bad.list_table(), "OTSAuthFailed", 403, "list_table with an unknown access key id")

    # ------------------------------------------------------------------ driver

    def run(self):
        ck = self.checks
        print("endpoint %s, instance %s, table prefix %s" % (self.endpoint, self.instance, self.prefix), flush=True)
        try:
            ck.run("native PlainBuffer parser is active for the enable_native client", self.t_native_parser_active)
            ck.run("create_table (STRING+INTEGER PK, options) + describe_table", self.t_create_describe)
            ck.run("list_table lists the new tables", self.t_list_table)
            ck.run("create_table on an existing table -> OTSObjectAlreadyExist 409", self.t_create_existing)
            ck.run("describe_table on a missing table -> OTSObjectNotExist 404", self.t_describe_missing)
            ck.run("delete_table/get_row/put_row on a missing table -> OTSObjectNotExist 404", self.t_missing_table_ops)
            ck.run("wrong primary-key schema -> OTSInvalidPK 400", self.t_invalid_pk)
            ck.run("delete_table, then gone from list_table/describe_table", self.t_delete_table)

            ck.run("batch_write_row 12,000 rows in 200-row batches", self.t_range_load)

            for label, client in self.variants:
                ok = ck.run("[%s] create row tables" % label, self._create_row_tables, label)
                if not ok:
                    continue
                t, tbin = self.table("rows_" + label), self.table("bin_" + label)
                ck.run("[%s] put_row/get_row every value type, exact round trip" % label,
                       self.t_put_get_all_types, client, t)
                ck.run("[%s] get_row columns_to_get, missing row -> None" % label,
                       self.t_get_columns_and_missing, client, t)
                ck.run("[%s] non-ASCII STRING PK with int64-min INTEGER PK" % label, self.t_unicode_pk, client, t)
                ck.run("[%s] BINARY primary key put/get/get_range order" % label, self.t_binary_pk, client, tbin)
                ck.run("[%s] update_row PUT/DELETE_ALL/INCREMENT/DELETE" % label, self.t_update_row, client, t)
                ck.run("[%s] INCREMENT on a STRING column -> OTSParameterInvalid 400" % label,
                       self.t_increment_non_integer, client, t)
                ck.run("[%s] delete_row then get_row -> None" % label, self.t_delete_row, client, t)
                ck.run("[%s] batch_write_row 200 PutRowItems, all is_ok" % label, self.t_batch_write_200, client, t)
                ck.run("[%s] batch_write_row with bad rows mixed in: per-row is_ok" % label,
                       self.t_batch_write_mixed, client, t)
                ck.run("[%s] batch_write_row naming a missing table -> OTSObjectNotExist" % label,
                       self.t_batch_write_missing_table, client, t)
                ck.run("[%s] batch_write_row 201 rows / duplicate PK -> OTSParameterInvalid" % label,
                       self.t_batch_write_limits, client, t)
                ck.run("[%s] batch_get_row two tables, incl. missing keys, request order" % label,
                       self.t_batch_get, client, t, tbin)
                ck.run("[%s] get_range FORWARD INF_MIN..INF_MAX pages through 12,000 rows" % label,
                       self.t_range_forward, client)
                ck.run("[%s] get_range BACKWARD pages through 12,000 rows" % label, self.t_range_backward, client)
                ck.run("[%s] xget_range all rows and count=5003" % label, self.t_xget_range, client)
                ck.run("[%s] get_range limit=7 -> 7 rows + next key" % label, self.t_range_limit, client)
                ck.run("[%s] bounded get_range, columns_to_get, bad direction" % label,
                       self.t_range_bounded, client)

            ck.run("conditional put/update/delete: row existence -> OTSConditionCheckFail 403", self.t_conditions)
            ck.run("column conditions: failing -> OTSConditionCheckFail 403, passing -> ok", self.t_column_conditions)
            ck.run("v4 signing (region=cn-hangzhou): list_table, put/get, error responses", self.t_v4_signing)
            ck.run("wrong secret -> OTSAuthFailed 403 (v2 and v4)", self.t_wrong_secret)
            ck.run("unknown access key id -> OTSAuthFailed 403", self.t_wrong_access_key_id)
        finally:
            ck.run("cleanup: delete this run's tables", self._cleanup)
        print("%d passed, %d failed" % (ck.passed, ck.failed), flush=True)
        return ck.failed == 0

    def _create_row_tables(self, label):
        self.create("rows_" + label, [("pk", "STRING"), ("id", "INTEGER")])
        self.create("bin_" + label, [("k", "BINARY"), ("n", "INTEGER")])

    def _cleanup(self):
        errors = []
        for name in list(self.created):
            try:
                self.native.delete_table(name)
                self.created.remove(name)
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %s" % (name, e))
        left = [n for n in self.native.list_table() if n.startswith(self.prefix)]
        assert not errors and not left, "could not delete %r; still listed: %r" % (errors, left)


def main():
    missing = [v for v in ("TS_ENDPOINT", "TS_INSTANCE", "TS_AK", "TS_SK") if not os.environ.get(v)]
    if missing:
        print("set %s (endpoint, instance, access key id, secret)" % ", ".join(missing), file=sys.stderr)
        return 2
    # The SDK logs every error response at ERROR level; the checks report what matters.
    logging.getLogger("tablestore-client").setLevel(logging.CRITICAL)
    suite = Suite(os.environ["TS_ENDPOINT"], os.environ["TS_INSTANCE"], os.environ["TS_AK"], os.environ["TS_SK"])
    return 0 if suite.run() else 1


if __name__ == "__main__":
    sys.exit(main())
