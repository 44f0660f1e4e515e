// Runs the scenarios of tests/runner_scenarios.json through a second ASL engine,
// aws-local-stepfunctions (npm, Node >= 22), on the real statemachine/migration.asl.json, and
// checks each execution's status, error and path of states against the scenario's expectations:
// the same expectations tests/integration/runner.rs checks for our in-process runner (crates/asl), so the
// two engines agree or CI fails.
//
// Usage: node .ci/asl-engine.mjs <node_modules dir> <definition.asl.json> <scenarios.json>
// Exit: 0 all scenarios match, 1 a mismatch, 2 a setup error.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { failError, loadDefinition, runExecution, taskHandlers } from './asl-common.mjs';

const [modulesDir, defPath, scenariosPath] = process.argv.slice(2);
if (!modulesDir || !defPath || !scenariosPath) {
  console.error('usage: node asl-engine.mjs <node_modules dir> <definition.asl.json> <scenarios.json>');
  process.exit(2);
}
const require = createRequire(join(resolve(modulesDir), 'resolver.cjs'));
const { StateMachine } = require('aws-local-stepfunctions');

// ${NameFunctionArn} -> Name, the key of the scenario's recorded responses.
let loaded;
try {
  loaded = loadDefinition(defPath);
} catch (e) {
  console.error(e.message);
  process.exit(2);
}
const { rawDefinition, taskKeys, waitStates, retryStates } = loaded;

const deepEqual = (a, b) => JSON.stringify(a) === JSON.stringify(b);
// Every field of `want` is in `got` (recursively for objects); null = present with any value.
function contains(got, want) {
  if (want === null) return got !== undefined;
  if (typeof want === 'object' && !Array.isArray(want)) {
    if (typeof got !== 'object' || got === null || Array.isArray(got)) return false;
    return Object.entries(want).every(([k, v]) => k in got && contains(got[k], v));
  }
  return deepEqual(got, want);
}


async function runScenario(sc, executionName) {
  const problems = [];
  const queues = {};
  for (const [key, responses] of Object.entries(sc.tasks)) {
    queues[key] = Array.isArray(responses)
      ? { list: [...responses] }
      : { byIndex: Object.fromEntries(Object.entries(responses).map(([i, r]) => [i, [...r]])) };
  }
  const calls = {};
  let started = [];

  const respond = (key, input) => {
    calls[key] = (calls[key] ?? 0) + 1;
    const q = queues[key];
    const list = q ? (q.list ?? q.byIndex[String(input.chunk_index)]) : undefined;
    const r = list?.shift();
    if (!r) {
      problems.push(`${key}: no recorded response left for input ${JSON.stringify(input)}`);
      throw failError('Test.NoResponse', `no recorded response for ${key}`);
    }
    if (r.expect_input && !contains(input, r.expect_input)) {
      problems.push(`${key}: input ${JSON.stringify(input)} does not contain ${JSON.stringify(r.expect_input)}`);
    }
    if (r.error) throw failError(r.error, r.cause ?? '');
    return r.output;
  };

  const handlers = taskHandlers(taskKeys, respond, (req) => started.push(req));

  const machine = new StateMachine(rawDefinition, { validationOptions: { checkPaths: true, checkArn: true } });
  const executions = [];
  const queue = [{ name: executionName, input: sc.input }];
  let pending = null;
  while (queue.length) {
    const req = queue.shift();
    if (executions.length >= sc.max_executions) {
      pending = req.name;
      break;
    }
    started = [];
    const record = await runExecution(machine, req.name, req.input, {
      taskResourceLocalHandlers: handlers,
      waitTimeOverrides: Object.fromEntries(waitStates.map((s) => [s, 0])),
      retryIntervalOverrides: Object.fromEntries(retryStates.map((s) => [s, 0])),
    });
    executions.push(record);
    queue.push(...started);
  }
  return { executions, pending, calls, queues, problems };
}

const doc = JSON.parse(readFileSync(scenariosPath, 'utf8'));
let failed = 0;
for (const sc of doc.scenarios) {
  let got;
  try {
    got = await runScenario(sc, doc.execution_name);
  } catch (e) {
    console.error(`✗ ${sc.name}: engine error ${e?.stack ?? e}`);
    failed++;
    continue;
  }
  const problems = [...got.problems];
  const want = sc.expect;
  if (got.executions.length !== want.executions.length) {
    problems.push(`${got.executions.length} executions, expected ${want.executions.length}`);
  }
  want.executions.forEach((w, i) => {
    const g = got.executions[i];
    if (!g) return;
    const tag = `execution ${i} (${w.name})`;
    if (g.name !== w.name) problems.push(`${tag}: name ${g.name}`);
    if (g.status !== w.status) problems.push(`${tag}: status ${g.status} (${g.error}: ${g.cause}), expected ${w.status}`);
    if (w.error !== undefined && g.error !== w.error) problems.push(`${tag}: error ${g.error}, expected ${w.error}`);
    if (w.cause !== undefined && g.cause !== w.cause) problems.push(`${tag}: cause ${g.cause}, expected ${w.cause}`);
    if (!deepEqual(g.path, w.path)) {
      problems.push(`${tag}: path differs\n    got:      ${JSON.stringify(g.path)}\n    expected: ${JSON.stringify(w.path)}`);
    }
  });
  if ((got.pending ?? null) !== (want.pending ?? null)) problems.push(`pending ${got.pending}, expected ${want.pending}`);
  for (const [key, n] of Object.entries(want.calls ?? {})) {
    if ((got.calls[key] ?? 0) !== n) problems.push(`${key} called ${got.calls[key] ?? 0} times, expected ${n}`);
  }
  for (const [key, q] of Object.entries(got.queues)) {
    const left = q.list ? q.list.length : Object.values(q.byIndex).reduce((n, l) => n + l.length, 0);
    if (left) problems.push(`${key}: ${left} recorded responses not used`);
  }
  if (problems.length) {
    failed++;
    console.error(`✗ ${sc.name}\n  ${problems.join('\n  ')}`);
  } else {
    console.log(`✓ ${sc.name}`);
  }
}
if (failed) {
  console.error(`${failed} of ${doc.scenarios.length} scenarios differ in aws-local-stepfunctions`);
  process.exit(1);
}
console.log(`all ${doc.scenarios.length} scenarios match in aws-local-stepfunctions`);
