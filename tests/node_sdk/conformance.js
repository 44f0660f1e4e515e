#!/usr/bin/env node
'use strict';
/*
 * Conformance checks of the local Tablestore server against the official Node.js SDK
 * (npm `tablestore`, pinned in package.json). The Python SDK suite (tests/conformance/
 * official_sdk.py) covers the same ground with a different encoder, signer and parser.
 *
 * Environment: TS_ENDPOINT (http://127.0.0.1:PORT), TS_INSTANCE, TS_AK, TS_SK.
 *
 * Prints `PASS name` / `FAIL name: why` per check and finally `N passed, M failed`; exits 0 only
 * when every check passed. Tables get a per-run prefix and are deleted at the end.
 *
 * How this SDK reports things (read from its source, lib/protocol/*.js):
 *  - a JS number is written as a DOUBLE; INTEGER values are written from and read back as
 *    int64-buffer Int64LE objects (TableStore.Long.fromNumber / fromString);
 *  - a service error becomes err.code = HTTP status (a number) and err.message = the raw
 *    protobuf Error body (which holds the OTS error code text) + " requestId:...";
 *  - a missing row reads back as `row: {}`.
 */

let TableStore;
try {
  TableStore = require('tablestore');
} catch (e) {
  console.error('cannot load the official Node.js SDK (run `npm ci --prefix tests/node_sdk`): ' + e.message);
  process.exit(2);
}
const Long = TableStore.Long;
// Surface every error at once: no SDK-side retries hide what the server answered.
TableStore.DefaultRetryPolicy.maxRetryTimes = 0;

const RANGE_ROWS = 6000; // > one 5000-row page, so GetRange pages on its own
const BATCH = 200;
const PAGE_MAX = 5000;
const INT64_MIN = '-9223372036854775808';
const INT64_MAX = '9223372036854775807';

// ------------------------------------------------------------------------------------ harness

function fail(msg) {
  throw new Error(msg);
}

function show(v) {
  if (v === undefined) return 'undefined';
  if (v === TableStore.INF_MIN) return 'INF_MIN';
  if (v === TableStore.INF_MAX) return 'INF_MAX';
  if (isInt(v)) return 'Int64(' + v.toString() + ')';
  if (Buffer.isBuffer(v)) return 'Buffer<' + v.toString('hex') + '>';
  if (Array.isArray(v)) return '[' + v.map(show).join(', ') + ']';
  if (v && typeof v === 'object') {
    return '{' + Object.keys(v).map((k) => k + ': ' + show(v[k])).join(', ') + '}';
  }
  return JSON.stringify(v);
}

// The SDK's INTEGER type (int64-buffer's Int64LE, not a dependency of ours by name).
const Int64 = Long.fromNumber(0).constructor;
function isInt(v) {
  return v instanceof Int64;
}

/** Exact equality including the kind: Int64 vs double vs string vs Buffer vs boolean. */
function sameValue(got, want) {
  if (isInt(want)) return isInt(got) && got.toString() === want.toString();
  if (Buffer.isBuffer(want)) return Buffer.isBuffer(got) && got.equals(want);
  if (typeof want === 'number') {
    return typeof got === 'number' && (Object.is(got, want) || got === want);
  }
  return typeof got === typeof want && got === want;
}

function eq(got, want, what) {
  const ok = Array.isArray(want)
    ? Array.isArray(got) && got.length === want.length && want.every((w, i) => sameValue(got[i], w))
    : sameValue(got, want);
  if (!ok) fail(what + ': expected ' + show(want) + ', got ' + show(got));
}

function ok(cond, what) {
  if (!cond) fail(what);
}

const int = (v) => (typeof v === 'string' ? Long.fromString(v) : Long.fromNumber(v));

/** pk: [{name: value}] as the SDK takes it; checks a decoded row's primary key. */
function checkPk(got, pk, what) {
  ok(Array.isArray(got), what + ': primary key missing (' + show(got) + ')');
  eq(got.length, pk.length, what + ': number of primary-key columns');
  pk.forEach((col, i) => {
    const name = Object.keys(col)[0];
    eq(got[i].name, name, what + ': primary-key column ' + i + ' name');
    eq(got[i].value, col[name], what + ': primary-key column ' + name);
  });
}

/** want: [[name, value]] or [[name, value, timestampMs]]; max one version per column. */
function checkAttrs(got, want, what, nearNow) {
  ok(Array.isArray(got), what + ': attribute columns missing (' + show(got) + ')');
  const byName = new Map();
  for (const c of got) {
    ok(!byName.has(c.columnName), what + ': column ' + c.columnName + ' returned twice');
    ok(isInt(c.timestamp) && c.timestamp.toNumber() > 0, what + ': column ' + c.columnName + ' timestamp ' + show(c.timestamp));
    if (nearNow) {
      const d = Math.abs(c.timestamp.toNumber() - Date.now());
      ok(d < 10 * 60 * 1000, what + ': column ' + c.columnName + ' timestamp ' + c.timestamp + ' is not near now');
    }
    byName.set(c.columnName, c);
  }
  eq([...byName.keys()].sort(), want.map((w) => w[0]).sort(), what + ': attribute column names');
  for (const w of want) {
    const c = byName.get(w[0]);
    eq(c.columnValue, w[1], what + ': column ' + w[0]);
    if (w.length === 3) eq(c.timestamp.toNumber(), w[2], what + ': timestamp of column ' + w[0]);
  }
}

/** The call must fail with this HTTP status and OTS error code. */
async function expectError(promise, status, code, what) {
  let data;
  try {
    data = await promise;
  } catch (e) {
    const msg = String(e.message || '');
    ok(e.code === status && msg.includes(code),
      what + ': expected HTTP ' + status + ' ' + code + ', got code=' + show(e.code) + ' message=' + JSON.stringify(msg));
    return msg;
  }
  fail(what + ': expected HTTP ' + status + ' ' + code + ', but the call succeeded: ' + show(data).slice(0, 300));
}

const ignore = () => new TableStore.Condition(TableStore.RowExistenceExpectation.IGNORE, null);
const cond = (existence, columnCondition) =>
  new TableStore.Condition(TableStore.RowExistenceExpectation[existence], columnCondition || null);
const single = (name, value, cmp, passIfMissing) =>
  new TableStore.SingleColumnCondition(name, value, TableStore.ComparatorType[cmp], passIfMissing);
function composite(op, subs) {
  const c = new TableStore.CompositeCondition(TableStore.LogicalOperator[op]);
  subs.forEach((s) => c.addSubCondition(s));
  return c;
}

// ------------------------------------------------------------------------------------ suite

class Suite {
  constructor(env) {
    this.env = env;
    this.client = this.makeClient(env.TS_SK);
    this.prefix = 'nodec_' + (Date.now() % 0xffffff).toString(16) + Math.floor(Math.random() * 0xffff).toString(16) + '_';
    this.created = [];
    this.passed = 0;
    this.failed = 0;
  }

  makeClient(secret, accessKeyId) {
    return new TableStore.Client({
      accessKeyId: accessKeyId || this.env.TS_AK,
      secretAccessKey: secret,
      endpoint: this.env.TS_ENDPOINT,
      instancename: this.env.TS_INSTANCE,
    });
  }

  table(suffix) {
    return this.prefix + suffix;
  }

  async create(suffix, pk, options) {
    const name = this.table(suffix);
    await this.client.createTable({
      tableMeta: { tableName: name, primaryKey: pk.map(([n, t]) => ({ name: n, type: t })) },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } },
      tableOptions: options || { timeToLive: -1, maxVersions: 1 },
    });
    this.created.push(name);
    return name;
  }

  async check(name, fn) {
    const t0 = Date.now();
    try {
      const detail = await fn();
      this.passed += 1;
      console.log('PASS ' + name + ' (' + ((Date.now() - t0) / 1000).toFixed(2) + 's)' + (detail ? ': ' + detail : ''));
      return true;
    } catch (e) {
      this.failed += 1;
      const why = e && e.code !== undefined
        ? 'unexpected SDK error code=' + show(e.code) + ' message=' + JSON.stringify(String(e.message))
        : (e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : String(e));
      console.log('FAIL ' + name + ' (' + ((Date.now() - t0) / 1000).toFixed(2) + 's): ' + why);
      return false;
    }
  }

  async getRow(table, pk, extra) {
    return this.client.getRow(Object.assign({ tableName: table, primaryKey: pk, maxVersions: 1 }, extra || {}));
  }

  /** Pages a GetRange to the end; returns {rows, pages}. */
  async scan(table, direction, start, end, extra) {
    const rows = [];
    const pages = [];
    let next = start;
    while (next) {
      const data = await this.client.getRange(Object.assign({
        tableName: table,
        direction: TableStore.Direction[direction],
        inclusiveStartPrimaryKey: next,
        exclusiveEndPrimaryKey: end,
        maxVersions: 1,
      }, extra || {}));
      ok(Array.isArray(data.rows), 'getRange rows is ' + show(data.rows));
      pages.push(data.rows.length);
      rows.push(...data.rows);
      next = data.nextStartPrimaryKey ? data.nextStartPrimaryKey.map((c) => ({ [c.name]: c.value })) : null;
      ok(pages.length <= 200, 'getRange did not finish after 200 pages');
    }
    return { rows, pages };
  }

  // ---------------------------------------------------------------- tables

  async tCreateDescribe() {
    const name = await this.create('meta', [['pk', 'STRING'], ['id', 'INTEGER']],
      { timeToLive: 172800, maxVersions: 2, maxTimeDeviation: 86400 });
    const d = await this.client.describeTable({ tableName: name });
    eq(d.tableMeta.tableName, name, 'describeTable tableName');
    eq(d.tableMeta.primaryKey.map((c) => c.name + ':' + c.type), ['pk:2', 'id:1'], 'describeTable primary key (STRING=2, INTEGER=1)');
    eq(d.tableOptions.timeToLive, 172800, 'describeTable timeToLive');
    eq(d.tableOptions.maxVersions, 2, 'describeTable maxVersions');
    eq(Number(d.tableOptions.deviationCellVersionInSec), 86400, 'describeTable deviationCellVersionInSec');
    const cu = d.reservedThroughputDetails.capacityUnit;
    eq([cu.read, cu.write], [0, 0], 'describeTable reserved capacity');
    const bin = await this.create('meta_bin', [['k', 'BINARY']]);
    const d2 = await this.client.describeTable({ tableName: bin });
    eq(d2.tableMeta.primaryKey.map((c) => c.name + ':' + c.type), ['k:3'], 'BINARY primary key (BINARY=3)');
    eq([d2.tableOptions.timeToLive, d2.tableOptions.maxVersions], [-1, 1], 'default table options');
  }

  async tListTable() {
    const data = await this.client.listTable({});
    ok(Array.isArray(data.tableNames), 'listTable tableNames is ' + show(data.tableNames));
    for (const t of [this.table('meta'), this.table('meta_bin')]) {
      ok(data.tableNames.includes(t), 'listTable does not contain ' + t);
    }
    return data.tableNames.length + ' tables';
  }

  async tTableErrors() {
    const existing = this.table('meta');
    const m = await expectError(this.client.createTable({
      tableMeta: { tableName: existing, primaryKey: [{ name: 'pk', type: 'STRING' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } },
      tableOptions: { timeToLive: -1, maxVersions: 1 },
    }), 409, 'OTSObjectAlreadyExist', 'createTable on an existing table');
    const missing = this.table('no_such_table');
    await expectError(this.client.describeTable({ tableName: missing }), 404, 'OTSObjectNotExist', 'describeTable missing');
    await expectError(this.client.deleteTable({ tableName: missing }), 404, 'OTSObjectNotExist', 'deleteTable missing');
    await expectError(this.getRow(missing, [{ pk: 'a' }, { id: int(1) }]), 404, 'OTSObjectNotExist', 'getRow on a missing table');
    await expectError(this.getRow(existing, [{ pk: 'a' }]), 400, 'OTSInvalidPK', 'getRow with too few primary-key columns');
    return 'message ' + JSON.stringify(m.replace(/[^\x20-\x7e]/g, '.'));
  }

  async tDeleteTable() {
    const name = this.table('meta_bin');
    await this.client.deleteTable({ tableName: name });
    this.created = this.created.filter((t) => t !== name);
    const data = await this.client.listTable({});
    ok(!data.tableNames.includes(name), 'deleted table still listed');
    await expectError(this.client.describeTable({ tableName: name }), 404, 'OTSObjectNotExist', 'describeTable after deleteTable');
  }

  // ---------------------------------------------------------------- rows

  allTypes() {
    return [
      ['i', int(42)],
      ['neg', int(-7)],
      ['zero', int(0)],
      ['i64min', int(INT64_MIN)],
      ['i64max', int(INT64_MAX)],
      ['f', 3.141592653589793],
      ['fneg', -0.5],
      ['fwhole', 2],
      ['fbig', 1.7976931348623157e308],
      ['ftiny', 5e-324],
      ['t', true],
      ['fl', false],
      ['s', 'plain ascii'],
      ['u', 'h\u00e9llo \u4e16\u754c \u{1F680}\u{1F389} \u{1D11E} \u0645\u0631\u062d\u0628\u0627'],
      ['emoji', '\u{1F600}'],
      ['bin', Buffer.from([...Array(256).keys()])],
      ['bin0', Buffer.from([0, 0])],
    ];
  }

  async tPutGetAllTypes() {
    const t = this.table('rows');
    const pk = [{ pk: 'all-types' }, { id: int(1) }];
    const put = await this.client.putRow({
      tableName: t, condition: ignore(), primaryKey: pk,
      attributeColumns: this.allTypes().map(([n, v]) => ({ [n]: v })),
    });
    ok(put.consumed && put.consumed.capacityUnit && put.consumed.capacityUnit.write >= 1,
      'putRow consumed write CU: ' + show(put.consumed));
    const got = await this.getRow(t, pk);
    ok(got.consumed.capacityUnit.read >= 1, 'getRow consumed read CU: ' + show(got.consumed));
    checkPk(got.row.primaryKey, pk, 'getRow');
    checkAttrs(got.row.attributes, this.allTypes(), 'getRow every value type', true);
  }

  async tColumnsToGetAndMissing() {
    const t = this.table('rows');
    const got = await this.getRow(t, [{ pk: 'all-types' }, { id: int(1) }], { columnsToGet: ['s', 'i64min', 'not_there'] });
    checkAttrs(got.row.attributes, [['s', 'plain ascii'], ['i64min', int(INT64_MIN)]], 'getRow columnsToGet');
    const none = await this.getRow(t, [{ pk: 'all-types' }, { id: int(2) }]);
    ok(none.row && none.row.primaryKey === undefined && none.row.attributes === undefined,
      'getRow of a missing row returned ' + show(none.row));
  }

  async tExplicitTimestamp() {
    const t = this.table('rows');
    const pk = [{ pk: 'ts' }, { id: int(1) }];
    const ts = Date.now() - 60 * 1000;
    await this.client.putRow({ tableName: t, condition: ignore(), primaryKey: pk, attributeColumns: [{ c: 'v', timestamp: ts }] });
    const got = await this.getRow(t, pk);
    checkAttrs(got.row.attributes, [['c', 'v', ts]], 'getRow of a cell written with a timestamp');
  }

  async tUnicodePk() {
    const t = this.table('rows');
    const pk = [{ pk: '\u043a\u043b\u044e\u0447-\u{1F511}-\u00e9-\u{10FFFF}' }, { id: int(INT64_MIN) }];
    await this.client.putRow({ tableName: t, condition: ignore(), primaryKey: pk, attributeColumns: [{ c: 'v' }] });
    const got = await this.getRow(t, pk);
    checkPk(got.row.primaryKey, pk, 'non-ASCII STRING / int64-min INTEGER primary key');
    checkAttrs(got.row.attributes, [['c', 'v']], 'non-ASCII primary key row');
    const pk2 = [{ pk: 'max' }, { id: int(INT64_MAX) }];
    await this.client.putRow({ tableName: t, condition: ignore(), primaryKey: pk2, attributeColumns: [{ c: 'w' }] });
    checkPk((await this.getRow(t, pk2)).row.primaryKey, pk2, 'int64-max INTEGER primary key');
  }

  async tBinaryPk() {
    const t = this.table('bin');
    const keys = [[0xff], [0x00], [0x80], [0x7f], [0x01, 0x00], [0x00, 0x01, 0xff, 0xfe]].map((k) => Buffer.from(k));
    for (const k of keys) {
      await this.client.putRow({ tableName: t, condition: ignore(), primaryKey: [{ k }, { n: int(1) }], attributeColumns: [{ orig: k }] });
    }
    for (const k of keys) {
      const got = await this.getRow(t, [{ k }, { n: int(1) }]);
      checkPk(got.row.primaryKey, [{ k }, { n: int(1) }], 'BINARY pk getRow');
      checkAttrs(got.row.attributes, [['orig', k]], 'BINARY pk getRow');
    }
    const { rows } = await this.scan(t, 'FORWARD',
      [{ k: TableStore.INF_MIN }, { n: TableStore.INF_MIN }], [{ k: TableStore.INF_MAX }, { n: TableStore.INF_MAX }]);
    eq(rows.map((r) => r.primaryKey[0].value.toString('hex')),
      keys.slice().sort(Buffer.compare).map((k) => k.toString('hex')), 'BINARY pk getRange order (unsigned byte-wise)');
  }

  async tUpdateRow() {
    const t = this.table('rows');
    const pk = [{ pk: 'upd' }, { id: int(7) }];
    const oldTs = Date.now() - 60 * 1000;
    await this.client.putRow({
      tableName: t, condition: ignore(), primaryKey: pk,
      attributeColumns: [{ a: int(1) }, { b: 'x' }, { c: true }, { counter: int(10) }, { ver: 'old', timestamp: oldTs }],
    });
    const upd = await this.client.updateRow({
      tableName: t, condition: ignore(), primaryKey: pk,
      updateOfAttributeColumns: [
        { PUT: [{ b: 'y' }, { n2: 2.5 }, { raw: Buffer.from([0x00, 0xff]) }, { u: '\u{1F680}' }] },
        { DELETE_ALL: ['a'] },
        { INCREMENT: [{ counter: int(5) }, { fresh: int(3) }] },
        { DELETE: [{ ver: int(oldTs) }] },
      ],
    });
    ok(upd.consumed.capacityUnit.write >= 1, 'updateRow consumed ' + show(upd.consumed));
    let got = await this.getRow(t, pk);
    checkAttrs(got.row.attributes, [
      ['b', 'y'], ['c', true], ['counter', int(15)], ['fresh', int(3)], ['n2', 2.5],
      ['raw', Buffer.from([0x00, 0xff])], ['u', '\u{1F680}'],
    ], 'row after updateRow PUT/DELETE_ALL/INCREMENT/DELETE', true);
    await this.client.updateRow({
      tableName: t, condition: ignore(), primaryKey: pk, updateOfAttributeColumns: [{ INCREMENT: [{ counter: int(-20) }] }],
    });
    got = await this.getRow(t, pk, { columnsToGet: ['counter'] });
    checkAttrs(got.row.attributes, [['counter', int(-5)]], 'counter after INCREMENT(-20)');
    // UpdateRow on an absent row creates it.
    const pk2 = [{ pk: 'upd-new' }, { id: int(8) }];
    await this.client.updateRow({
      tableName: t, condition: ignore(), primaryKey: pk2, updateOfAttributeColumns: [{ PUT: [{ x: 'created' }] }],
    });
    got = await this.getRow(t, pk2);
    checkAttrs(got.row.attributes, [['x', 'created']], 'row created by updateRow');
    await expectError(this.client.updateRow({
      tableName: t, condition: ignore(), primaryKey: pk, updateOfAttributeColumns: [{ INCREMENT: [{ b: int(1) }] }],
    }), 400, 'OTSParameterInvalid', 'INCREMENT on a STRING column');
  }

  async tDeleteRow() {
    const t = this.table('rows');
    const pk = [{ pk: 'upd-new' }, { id: int(8) }];
    const del = await this.client.deleteRow({ tableName: t, condition: ignore(), primaryKey: pk });
    ok(del.consumed.capacityUnit.write >= 1, 'deleteRow consumed ' + show(del.consumed));
    const got = await this.getRow(t, pk);
    ok(got.row.primaryKey === undefined, 'row still there after deleteRow: ' + show(got.row));
  }

  // ---------------------------------------------------------------- conditions

  async tRowExistence() {
    const t = await this.create('cond', [['pk', 'STRING']]);
    await this.client.putRow({ tableName: t, condition: ignore(), primaryKey: [{ pk: 'r1' }], attributeColumns: [{ n: int(5) }, { s: 'x' }] });
    const m = await expectError(this.client.putRow({
      tableName: t, condition: cond('EXPECT_NOT_EXIST'), primaryKey: [{ pk: 'r1' }], attributeColumns: [{ n: int(99) }],
    }), 403, 'OTSConditionCheckFail', 'putRow EXPECT_NOT_EXIST on an existing row');
    checkAttrs((await this.getRow(t, [{ pk: 'r1' }])).row.attributes, [['n', int(5)], ['s', 'x']], 'row after a failed EXPECT_NOT_EXIST put');
    await this.client.putRow({ tableName: t, condition: cond('EXPECT_NOT_EXIST'), primaryKey: [{ pk: 'r2' }], attributeColumns: [{ n: int(1) }] });
    checkAttrs((await this.getRow(t, [{ pk: 'r2' }])).row.attributes, [['n', int(1)]], 'row written with EXPECT_NOT_EXIST');
    await expectError(this.client.updateRow({
      tableName: t, condition: cond('EXPECT_EXIST'), primaryKey: [{ pk: 'r3' }], updateOfAttributeColumns: [{ PUT: [{ n: int(1) }] }],
    }), 403, 'OTSConditionCheckFail', 'updateRow EXPECT_EXIST on a missing row');
    await expectError(this.client.deleteRow({ tableName: t, condition: cond('EXPECT_EXIST'), primaryKey: [{ pk: 'r3' }] }),
      403, 'OTSConditionCheckFail', 'deleteRow EXPECT_EXIST on a missing row');
    ok((await this.getRow(t, [{ pk: 'r3' }])).row.primaryKey === undefined, 'row r3 exists after failed conditional writes');
    return 'message ' + JSON.stringify(m.replace(/[^\x20-\x7e]/g, '.'));
  }

  async tColumnConditions() {
    const t = this.table('cond');
    const pk = [{ pk: 'r1' }];
    const put = (c, cols) => this.client.updateRow({ tableName: t, condition: c, primaryKey: pk, updateOfAttributeColumns: [{ PUT: cols }] });
    await expectError(put(cond('IGNORE', single('n', int(6), 'EQUAL')), [{ n: int(100) }]),
      403, 'OTSConditionCheckFail', 'updateRow with failing n == 6');
    await expectError(this.client.putRow({
      tableName: t, primaryKey: pk, attributeColumns: [{ n: int(100) }], condition: cond('EXPECT_EXIST', single('n', int(5), 'GREATER_THAN')),
    }), 403, 'OTSConditionCheckFail', 'putRow with failing n > 5');
    await expectError(put(cond('IGNORE', single('nope', int(1), 'EQUAL', false)), [{ n: int(100) }]),
      403, 'OTSConditionCheckFail', 'condition on a missing column with passIfMissing=false');
    await expectError(put(cond('IGNORE', composite('AND', [single('n', int(5), 'EQUAL'), single('s', 'y', 'EQUAL')])), [{ n: int(100) }]),
      403, 'OTSConditionCheckFail', 'composite AND with one false side');
    checkAttrs((await this.getRow(t, pk)).row.attributes, [['n', int(5)], ['s', 'x']], 'row after failed column conditions');
    await put(cond('EXPECT_EXIST', single('n', int(5), 'EQUAL')), [{ n: int(6) }]);
    await put(cond('IGNORE', single('nope', int(1), 'EQUAL', true)), [{ m: int(1) }]);
    await put(cond('EXPECT_EXIST', composite('OR', [single('n', int(0), 'EQUAL'), single('s', 'x', 'EQUAL')])), [{ o: true }]);
    await put(cond('IGNORE', composite('NOT', [single('s', 'zzz', 'EQUAL')])), [{ p: 1.5 }]);
    await this.client.putRow({
      tableName: t, primaryKey: pk, attributeColumns: [{ n: int(7) }, { s: 'x' }, { m: int(2) }],
      condition: cond('EXPECT_EXIST', composite('AND', [single('n', int(6), 'GREATER_EQUAL'), single('s', 'x', 'EQUAL'), single('o', true, 'EQUAL')])),
    });
    checkAttrs((await this.getRow(t, pk)).row.attributes, [['n', int(7)], ['s', 'x'], ['m', int(2)]], 'row after passing column conditions');
  }

  // ---------------------------------------------------------------- batches

  async tBatchWrite() {
    const t = this.table('rows');
    const rows = [];
    for (let i = 0; i < 198; i++) {
      rows.push({ type: 'PUT', condition: ignore(), primaryKey: [{ pk: 'batch' }, { id: int(i) }], attributeColumns: [{ v: int(i) }, { s: 'row ' + i }] });
    }
    rows.push({ type: 'UPDATE', condition: ignore(), primaryKey: [{ pk: 'all-types' }, { id: int(1) }], attributeColumns: [{ PUT: [{ s: 'batched' }] }, { DELETE_ALL: ['bin'] }] });
    rows.push({ type: 'DELETE', condition: ignore(), primaryKey: [{ pk: 'ts' }, { id: int(1) }] });
    const data = await this.client.batchWriteRow({ tables: [{ tableName: t, rows }] });
    eq(data.tables.length, 200, 'batchWriteRow results');
    data.tables.forEach((r, i) => ok(r.isOk && r.tableName === t, 'batchWriteRow row ' + i + ': ' + show(r)));
    const got = await this.getRow(t, [{ pk: 'batch' }, { id: int(197) }]);
    checkAttrs(got.row.attributes, [['v', int(197)], ['s', 'row 197']], 'row written by batchWriteRow PUT');
    const upd = await this.getRow(t, [{ pk: 'all-types' }, { id: int(1) }], { columnsToGet: ['s', 'bin', 'i'] });
    checkAttrs(upd.row.attributes, [['s', 'batched'], ['i', int(42)]], 'row changed by batchWriteRow UPDATE');
    ok((await this.getRow(t, [{ pk: 'ts' }, { id: int(1) }])).row.primaryKey === undefined, 'row deleted by batchWriteRow DELETE still there');
  }

  async tBatchWriteMixed() {
    const t = this.table('cond');
    const data = await this.client.batchWriteRow({
      tables: [{
        tableName: t,
        rows: [
          { type: 'PUT', condition: ignore(), primaryKey: [{ pk: 'b1' }], attributeColumns: [{ n: int(1) }] },
          { type: 'PUT', condition: cond('EXPECT_NOT_EXIST'), primaryKey: [{ pk: 'r1' }], attributeColumns: [{ n: int(0) }] },
          { type: 'UPDATE', condition: cond('EXPECT_EXIST', single('n', int(1), 'EQUAL')), primaryKey: [{ pk: 'r2' }], attributeColumns: [{ PUT: [{ q: 'ok' }] }] },
        ],
      }],
    });
    eq(data.tables.map((r) => r.isOk), [true, false, true], 'batchWriteRow per-row isOk');
    eq(data.tables[1].errorCode, 'OTSConditionCheckFail', 'batchWriteRow failed row errorCode');
    checkAttrs((await this.getRow(t, [{ pk: 'r1' }])).row.attributes, [['n', int(7)], ['s', 'x'], ['m', int(2)]], 'row r1 untouched by its failed batch row');
    checkAttrs((await this.getRow(t, [{ pk: 'r2' }])).row.attributes, [['n', int(1)], ['q', 'ok']], 'row r2 after its batch UPDATE');
    checkAttrs((await this.getRow(t, [{ pk: 'b1' }])).row.attributes, [['n', int(1)]], 'row b1 after its batch PUT');
  }

  async tBatchGet() {
    const t = this.table('rows');
    const tb = this.table('bin');
    const data = await this.client.batchGetRow({
      tables: [
        {
          tableName: t,
          primaryKey: [
            [{ pk: 'batch' }, { id: int(5) }],
            [{ pk: 'nope' }, { id: int(0) }],
            [{ pk: 'batch' }, { id: int(3) }],
          ],
          columnsToGet: ['v'],
        },
        { tableName: tb, primaryKey: [[{ k: Buffer.from([0xff]) }, { n: int(1) }]] },
      ],
    });
    eq(data.tables.length, 2, 'batchGetRow tables');
    const [a, b] = data.tables;
    eq(a.map((r) => r.isOk), [true, true, true], 'batchGetRow first table isOk');
    checkPk(a[0].primaryKey, [{ pk: 'batch' }, { id: int(5) }], 'batchGetRow row 0');
    checkAttrs(a[0].attributes, [['v', int(5)]], 'batchGetRow row 0');
    ok(a[1].primaryKey === null, 'batchGetRow missing key returned ' + show(a[1].primaryKey));
    checkAttrs(a[2].attributes, [['v', int(3)]], 'batchGetRow row 2 (request order)');
    eq(b.length, 1, 'batchGetRow second table rows');
    eq(b[0].tableName, tb, 'batchGetRow second table name');
    checkAttrs(b[0].attributes, [['orig', Buffer.from([0xff])]], 'batchGetRow BINARY-key row');
  }

  // ---------------------------------------------------------------- ranges and filters

  rangeKeys() {
    // Three partitions; ids spread over negative and positive int64s.
    const keys = [];
    for (let i = 0; i < RANGE_ROWS; i++) {
      keys.push([['a', 'b', 'c'][i % 3], Math.floor(i / 3) * 7 - 3000]);
    }
    keys.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] - y[1]));
    return keys;
  }

  async tRangeLoad() {
    const t = await this.create('range', [['part', 'STRING'], ['id', 'INTEGER']]);
    const keys = this.rangeKeys();
    for (let i = 0; i < keys.length; i += BATCH) {
      const rows = keys.slice(i, i + BATCH).map(([p, id]) => {
        const cols = [{ v: int(id) }, { grp: ['x', 'y', 'z'][Math.abs(id) % 3] }, { d: id / 2 }];
        if (id % 5 === 0) cols.push({ five: true });
        return { type: 'PUT', condition: ignore(), primaryKey: [{ part: p }, { id: int(id) }], attributeColumns: cols };
      });
      const data = await this.client.batchWriteRow({ tables: [{ tableName: t, rows }] });
      ok(data.tables.length === rows.length && data.tables.every((r) => r.isOk), 'range load batch at ' + i + ' not all isOk');
    }
    return keys.length + ' rows';
  }

  checkRangeRows(rows, want, what) {
    eq(rows.length, want.length, what + ': row count');
    rows.forEach((r, i) => {
      const [p, id] = want[i];
      if (r.primaryKey[0].value !== p || r.primaryKey[1].value.toString() !== String(id)) {
        fail(what + ': row ' + i + ' expected (' + p + ', ' + id + '), got ' + show(r.primaryKey.map((c) => c.value)));
      }
      const v = r.attributes.find((c) => c.columnName === 'v');
      if (!v || v.columnValue.toString() !== String(id)) fail(what + ': row ' + i + ' column v is ' + show(v && v.columnValue));
    });
  }

  async tRangeForward() {
    const t = this.table('range');
    const { rows, pages } = await this.scan(t, 'FORWARD',
      [{ part: TableStore.INF_MIN }, { id: TableStore.INF_MIN }], [{ part: TableStore.INF_MAX }, { id: TableStore.INF_MAX }]);
    ok(pages.length >= 2, 'a ' + RANGE_ROWS + '-row range came back in one page: ' + pages);
    ok(Math.max(...pages) <= PAGE_MAX, 'a page holds more than ' + PAGE_MAX + ' rows: ' + pages);
    this.checkRangeRows(rows, this.rangeKeys(), 'forward getRange INF_MIN..INF_MAX');
    return 'pages ' + pages.join(',');
  }

  async tRangeBackward() {
    const t = this.table('range');
    const { rows, pages } = await this.scan(t, 'BACKWARD',
      [{ part: TableStore.INF_MAX }, { id: TableStore.INF_MAX }], [{ part: TableStore.INF_MIN }, { id: TableStore.INF_MIN }]);
    ok(pages.length >= 2, 'a ' + RANGE_ROWS + '-row backward range came back in one page: ' + pages);
    this.checkRangeRows(rows, this.rangeKeys().reverse(), 'backward getRange INF_MAX..INF_MIN');
    return 'pages ' + pages.join(',');
  }

  async tRangeLimitPaging() {
    const t = this.table('range');
    const want = this.rangeKeys();
    const inB = want.filter(([p]) => p === 'b');
    // Forward in pages of 250 inside one partition: (b, INF_MIN) .. (b, INF_MAX).
    let r = await this.scan(t, 'FORWARD', [{ part: 'b' }, { id: TableStore.INF_MIN }], [{ part: 'b' }, { id: TableStore.INF_MAX }], { limit: 250 });
    this.checkRangeRows(r.rows, inB, 'forward getRange limit=250 over partition b');
    eq(r.pages.length, Math.ceil(inB.length / 250), 'forward pages of 250');
    ok(r.pages.slice(0, -1).every((n) => n === 250), 'forward pages not all 250 rows: ' + r.pages);
    // Backward in pages of 333: (b, INF_MAX) .. (b, INF_MIN).
    r = await this.scan(t, 'BACKWARD', [{ part: 'b' }, { id: TableStore.INF_MAX }], [{ part: 'b' }, { id: TableStore.INF_MIN }], { limit: 333 });
    this.checkRangeRows(r.rows, inB.slice().reverse(), 'backward getRange limit=333 over partition b');
    ok(r.pages.slice(0, -1).every((n) => n === 333), 'backward pages not all 333 rows: ' + r.pages);
    // One page by hand: the next start key is the first row not returned.
    const page = await this.client.getRange({
      tableName: t, direction: TableStore.Direction.BACKWARD, maxVersions: 1, limit: 7,
      inclusiveStartPrimaryKey: [{ part: TableStore.INF_MAX }, { id: TableStore.INF_MAX }],
      exclusiveEndPrimaryKey: [{ part: TableStore.INF_MIN }, { id: TableStore.INF_MIN }],
    });
    const rev = want.slice().reverse();
    this.checkRangeRows(page.rows, rev.slice(0, 7), 'backward getRange limit=7');
    checkPk(page.nextStartPrimaryKey, [{ part: rev[7][0] }, { id: int(rev[7][1]) }], 'backward nextStartPrimaryKey');
    return 'forward pages ' + Math.ceil(inB.length / 250) + ', backward pages ' + r.pages.length;
  }

  async tRangeBounded() {
    const t = this.table('range');
    const want = this.rangeKeys().filter(([p, id]) => p === 'b' && id >= -100 && id < 100);
    const { rows, pages } = await this.scan(t, 'FORWARD', [{ part: 'b' }, { id: int(-100) }], [{ part: 'b' }, { id: int(100) }], { columnsToGet: ['v'] });
    this.checkRangeRows(rows, want, 'bounded getRange [(b,-100), (b,100))');
    eq(pages.length, 1, 'pages of a small bounded range');
    rows.forEach((r) => eq(r.attributes.map((c) => c.columnName), ['v'], 'columnsToGet=[v] in a range'));
    await expectError(this.client.getRange({
      tableName: t, direction: TableStore.Direction.FORWARD, maxVersions: 1,
      inclusiveStartPrimaryKey: [{ part: 'c' }, { id: int(0) }], exclusiveEndPrimaryKey: [{ part: 'a' }, { id: int(0) }],
    }), 400, 'OTSParameterInvalid', 'FORWARD getRange with start > end');
  }

  async rangeWithFilter(filter, extra) {
    const t = this.table('range');
    return this.scan(t, 'FORWARD', [{ part: TableStore.INF_MIN }, { id: TableStore.INF_MIN }],
      [{ part: TableStore.INF_MAX }, { id: TableStore.INF_MAX }], Object.assign({ columnFilter: filter }, extra || {}));
  }

  async tFilterSingle() {
    const all = this.rangeKeys();
    const grp = (id) => ['x', 'y', 'z'][Math.abs(id) % 3];
    let r = await this.rangeWithFilter(single('grp', 'y', 'EQUAL'));
    this.checkRangeRows(r.rows, all.filter(([, id]) => grp(id) === 'y'), 'filter grp == "y"');
    r = await this.rangeWithFilter(single('v', int(2900), 'GREATER_EQUAL'));
    this.checkRangeRows(r.rows, all.filter(([, id]) => id >= 2900), 'filter v >= 2900 (INTEGER)');
    r = await this.rangeWithFilter(single('d', -1000.5, 'LESS_THAN'));
    this.checkRangeRows(r.rows, all.filter(([, id]) => id / 2 < -1000.5), 'filter d < -1000.5 (DOUBLE)');
    r = await this.rangeWithFilter(single('five', true, 'EQUAL', false));
    this.checkRangeRows(r.rows, all.filter(([, id]) => id % 5 === 0), 'filter five == true, passIfMissing=false');
    r = await this.rangeWithFilter(single('five', true, 'NOT_EQUAL', true));
    this.checkRangeRows(r.rows, all.filter(([, id]) => id % 5 !== 0), 'filter five != true, passIfMissing=true');
    // A filter on a single row: a non-matching row reads as missing.
    const t = this.table('range');
    const [p, id] = all[0];
    const hit = await this.getRow(t, [{ part: p }, { id: int(id) }], { columnFilter: single('grp', grp(id), 'EQUAL') });
    checkPk(hit.row.primaryKey, [{ part: p }, { id: int(id) }], 'getRow with a matching filter');
    const miss = await this.getRow(t, [{ part: p }, { id: int(id) }], { columnFilter: single('grp', 'nope', 'EQUAL') });
    ok(miss.row.primaryKey === undefined, 'getRow with a non-matching filter returned ' + show(miss.row));
  }

  async tFilterComposite() {
    const all = this.rangeKeys();
    const grp = (id) => ['x', 'y', 'z'][Math.abs(id) % 3];
    let r = await this.rangeWithFilter(composite('AND', [single('grp', 'x', 'EQUAL'), single('v', int(0), 'LESS_THAN')]));
    this.checkRangeRows(r.rows, all.filter(([, id]) => grp(id) === 'x' && id < 0), 'filter grp == x AND v < 0');
    r = await this.rangeWithFilter(composite('OR', [
      single('v', int(-2990), 'LESS_EQUAL'),
      composite('AND', [single('grp', 'z', 'EQUAL'), single('d', 1400.0, 'GREATER_THAN')]),
    ]));
    this.checkRangeRows(r.rows, all.filter(([, id]) => id <= -2990 || (grp(id) === 'z' && id / 2 > 1400)), 'filter v <= -2990 OR (grp == z AND d > 1400)');
    r = await this.rangeWithFilter(composite('NOT', [single('grp', 'x', 'NOT_EQUAL')]), { limit: 100 });
    this.checkRangeRows(r.rows, all.filter(([, id]) => grp(id) === 'x'), 'filter NOT(grp != x), paged with limit=100');
    return 'NOT+limit pages ' + r.pages.length;
  }

  // ---------------------------------------------------------------- auth

  async tWrongCredentials() {
    const bad = this.makeClient('wrong-' + this.env.TS_SK);
    const m = await expectError(bad.listTable({}), 403, 'OTSAuthFailed', 'listTable with a wrong secret');
    await expectError(bad.getRow({ tableName: this.table('rows'), primaryKey: [{ pk: 'all-types' }, { id: int(1) }] }),
      403, 'OTSAuthFailed', 'getRow with a wrong secret');
    const unknown = this.makeClient(this.env.TS_SK, 'not-' + this.env.TS_AK);
    await expectError(unknown.listTable({}), 403, 'OTSAuthFailed', 'listTable with an unknown access key id');
    return 'message ' + JSON.stringify(m.replace(/[^\x20-\x7e]/g, '.'));
  }

  // ---------------------------------------------------------------- driver

  async run() {
    console.log('endpoint ' + this.env.TS_ENDPOINT + ', instance ' + this.env.TS_INSTANCE + ', table prefix ' + this.prefix);
    try {
      await this.check('createTable (STRING+INTEGER PK, options) + describeTable', () => this.tCreateDescribe());
      await this.check('listTable lists the new tables', () => this.tListTable());
      await this.check('table errors: exists 409, missing 404, bad PK 400', () => this.tTableErrors());
      await this.check('deleteTable, then gone from listTable/describeTable', () => this.tDeleteTable());
      if (await this.check('create row tables', async () => {
        await this.create('rows', [['pk', 'STRING'], ['id', 'INTEGER']]);
        await this.create('bin', [['k', 'BINARY'], ['n', 'INTEGER']]);
      })) {
        await this.check('putRow/getRow every value type, exact round trip', () => this.tPutGetAllTypes());
        await this.check('getRow columnsToGet, missing row -> empty', () => this.tColumnsToGetAndMissing());
        await this.check('putRow with an explicit cell timestamp', () => this.tExplicitTimestamp());
        await this.check('4-byte UTF-8 STRING PK, int64 min/max INTEGER PK', () => this.tUnicodePk());
        await this.check('BINARY primary key put/get/getRange order', () => this.tBinaryPk());
        await this.check('updateRow PUT/DELETE_ALL/INCREMENT/DELETE(version)', () => this.tUpdateRow());
        await this.check('deleteRow then getRow -> empty', () => this.tDeleteRow());
        await this.check('conditions: row existence -> 403 OTSConditionCheckFail', () => this.tRowExistence());
        await this.check('conditions: single/composite column conditions', () => this.tColumnConditions());
        await this.check('batchWriteRow 200 rows (PUT/UPDATE/DELETE)', () => this.tBatchWrite());
        await this.check('batchWriteRow with a failing condition: per-row isOk', () => this.tBatchWriteMixed());
        await this.check('batchGetRow two tables, missing key, request order', () => this.tBatchGet());
      }
      if (await this.check('batchWriteRow ' + RANGE_ROWS + ' rows for ranges', () => this.tRangeLoad())) {
        await this.check('getRange FORWARD INF_MIN..INF_MAX pages on its own', () => this.tRangeForward());
        await this.check('getRange BACKWARD INF_MAX..INF_MIN pages on its own', () => this.tRangeBackward());
        await this.check('getRange paging with limit forward and backward', () => this.tRangeLimitPaging());
        await this.check('bounded getRange, columnsToGet, start > end -> 400', () => this.tRangeBounded());
        await this.check('filters: single column conditions (string/int/double/bool, passIfMissing)', () => this.tFilterSingle());
        await this.check('filters: composite AND/OR/NOT', () => this.tFilterComposite());
      }
      await this.check('wrong secret / unknown key -> 403 OTSAuthFailed', () => this.tWrongCredentials());
    } finally {
      await this.check('cleanup: delete this run\'s tables', async () => {
        for (const name of this.created.slice()) {
          await this.client.deleteTable({ tableName: name });
          this.created = this.created.filter((t) => t !== name);
        }
        const left = (await this.client.listTable({})).tableNames.filter((n) => n.startsWith(this.prefix));
        ok(left.length === 0, 'still listed: ' + left);
      });
    }
    console.log(this.passed + ' passed, ' + this.failed + ' failed');
    return this.failed === 0;
  }
}

async function main() {
  const missing = ['TS_ENDPOINT', 'TS_INSTANCE', 'TS_AK', 'TS_SK'].filter((v) => !process.env[v]);
  if (missing.length) {
    console.error('set ' + missing.join(', ') + ' (endpoint, instance, access key id, secret)');
    return 2;
  }
  return (await new Suite(process.env).run()) ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
