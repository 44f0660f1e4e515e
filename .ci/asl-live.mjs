// Runs statemachine/migration.asl.json in a second ASL engine, aws-local-stepfunctions, against
// the REAL steps: each Task runs `tsmigrate step --config F <Step>` (the step as its Lambda runs
// it: input on stdin, output on stdout, a step error as {"error", "cause"}), and a continue-as-new
// starts the next execution here. Used by tests/integration/asl_live.rs, which sets up the
// source and the destination and checks the outcome.
//
// Usage: node .ci/asl-live.mjs <node_modules dir> <definition.asl.json> <tsmigrate> <config.json>
//          <mode> <max executions>
// Prints one JSON line per execution: {name, status, error?, cause?, path}. Exit 0 when the last
// execution succeeded, 1 when it failed or executions were left pending, 2 on a setup error.
// With ASL_LIVE_TRACE=<file>, every invocation's input, output and log text is appended there
// (the test greps a whole run for secrets).
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { failError, loadDefinition, runExecution, taskHandlers } from './asl-common.mjs';

const [modulesDir, defPath, tsmigrate, config, mode, maxExecutions] = process.argv.slice(2);
if (!maxExecutions) {
  console.error('usage: node asl-live.mjs <node_modules> <definition> <tsmigrate> <config> <mode> <max executions>');
  process.exit(2);
}
const require = createRequire(join(resolve(modulesDir), 'resolver.cjs'));
const { StateMachine } = require('aws-local-stepfunctions');
const { rawDefinition, taskKeys, retryStates } = loadDefinition(defPath);

// One step in its own process, as one Lambda invocation.
function invoke(step, input) {
  return new Promise((done, fail) => {
    const child = spawn(tsmigrate, ['step', '--config', config, step], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', fail);
    child.on('close', (code) => {
      if (process.env.ASL_LIVE_TRACE) {
        appendFileSync(process.env.ASL_LIVE_TRACE, JSON.stringify({ step, input, code, out, err }) + '\n');
      }
      if (code === 0) return done(JSON.parse(out));
      if (code === 1) {
        const e = JSON.parse(out);
        return fail(failError(e.error, e.cause));
      }
      fail(failError('States.TaskFailed', `${step} exited ${code}: ${err.slice(-2000)}`));
    });
    child.stdin.end(JSON.stringify(input));
  });
}

let started = [];
const handlers = taskHandlers(taskKeys, invoke, (req) => started.push(req));

const firstInput = JSON.parse(
  execFileSync(tsmigrate, ['step', '--config', config, '--mode', mode, '--execution-input'], { encoding: 'utf8' }),
);
const machine = new StateMachine(rawDefinition, { validationOptions: { checkPaths: true, checkArn: true } });
const queue = [{ name: 'live-1', input: firstInput }];
let last = null;
let count = 0;
while (queue.length) {
  const req = queue.shift();
  if (count >= Number(maxExecutions)) {
    console.log(JSON.stringify({ pending: req.name }));
    process.exit(1);
  }
  count++;
  started = [];
  const record = await runExecution(machine, req.name, req.input, {
    taskResourceLocalHandlers: handlers,
    // Retries at once: the steps' own waits (batch claims, leases) are what is tested.
    retryIntervalOverrides: Object.fromEntries(retryStates.map((s) => [s, 0])),
  });
  console.log(JSON.stringify(record));
  last = record;
  queue.push(...started);
}
process.exit(last?.status === 'SUCCEEDED' ? 0 : 1);
