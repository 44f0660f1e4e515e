// Shared by .ci/asl-engine.mjs (recorded scenarios) and .ci/asl-live.mjs (the real steps):
// the definition with its ${NameFunctionArn} placeholders replaced, and the path of states an
// execution entered, as both compare it.
import { readFileSync } from 'node:fs';

export const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:tsmigrate-migration';
export const FUNCTION_ARN = (key) => `arn:aws:lambda:us-east-1:123456789012:function:tsmigrate-${key}`;

export const failError = (name, message) => Object.assign(new Error(message), { name });

// The Task handlers of a run: each ${NameFunctionArn} task calls `invoke(step, input)`; a
// startExecution (continue-as-new) is answered here and handed to `onStart({name, input})`.
export function taskHandlers(taskKeys, invoke, onStart) {
  const handlers = {};
  for (const [state, key] of Object.entries(taskKeys)) {
    handlers[state] = async (input) => {
      if (key !== 'startExecution') return invoke(key, input);
      if (input.StateMachineArn !== STATE_MACHINE_ARN) {
        throw failError('StepFunctions.StateMachineDoesNotExistException', `unknown ${input.StateMachineArn}`);
      }
      const parsed = typeof input.Input === 'string' ? JSON.parse(input.Input) : input.Input;
      onStart({ name: input.Name, input: parsed });
      return {
        ExecutionArn: `arn:aws:states:us-east-1:123456789012:execution:tsmigrate-migration:${input.Name}`,
        StartDate: new Date().toISOString(),
      };
    };
  }
  return handlers;
}

// Loads the definition; returns it with Lambda ARNs in place of the placeholders, the task
// states' keys (state name -> step name, or 'startExecution'), and the Wait and Retry states.
export function loadDefinition(defPath) {
  const rawDefinition = JSON.parse(readFileSync(defPath, 'utf8'));
  const taskKeys = {};
  const waitStates = [];
  const retryStates = [];
  (function walk(states) {
    for (const [name, s] of Object.entries(states)) {
      if (s.Retry) retryStates.push(name);
      if (s.Type === 'Wait') waitStates.push(name);
      if (s.Type === 'Map') walk((s.ItemProcessor ?? s.Iterator).States);
      if (s.Type !== 'Task') continue;
      const m = /^\$\{(\w+)FunctionArn\}$/.exec(s.Resource);
      if (m) {
        taskKeys[name] = m[1];
        s.Resource = FUNCTION_ARN(m[1]);
      } else if (s.Resource === 'arn:aws:states:::states:startExecution') {
        taskKeys[name] = 'startExecution';
      } else {
        throw new Error(`state ${name}: resource ${s.Resource} is neither \${NameFunctionArn} nor startExecution`);
      }
    }
  })(rawDefinition.States);
  return { rawDefinition, taskKeys, waitStates, retryStates };
}

// The context object of an execution named `name`.
function executionContext(name, input) {
  return {
    Execution: {
      Id: `arn:aws:states:us-east-1:123456789012:execution:tsmigrate-migration:${name}`,
      Name: name,
      Input: input,
      StartTime: new Date().toISOString(),
    },
    StateMachine: { Id: STATE_MACHINE_ARN, Name: 'tsmigrate-migration' },
  };
}

// Runs one execution named `name` on `machine` with `overrides`; returns its record:
// {name, status, error?, cause?, path}.
export async function runExecution(machine, name, input, overrides) {
  const run = machine.run(input, { overrides, context: executionContext(name, input) });
  const events = [];
  const logging = (async () => {
    for await (const e of run.eventLogs) events.push(e);
  })();
  const record = { name };
  try {
    await run.result;
    record.status = 'SUCCEEDED';
  } catch (e) {
    record.status = 'FAILED';
    // ExecutionError wraps the failing state's error
    Object.assign(record, failureOf(e));
  }
  await logging;
  record.path = pathOf(events);
  return record;
}

// The failing state's error of a failed run, as {error, cause}.
function failureOf(e) {
  const inner = e?.getWrappedError?.() ?? e?.cause ?? e;
  let cause = inner?.cause ?? inner?.message;
  if (typeof cause !== 'string') cause = cause === undefined ? undefined : JSON.stringify(cause);
  return { error: inner?.name ?? String(e), cause };
}

export // States entered, in order; the states of Map iterations as Map/index/State, grouped by index
// right after the Map state (iterations interleave when they run concurrently).
function pathOf(events) {
  const path = [];
  let map = null; // { name, iterations: Map<index, string[]> }
  const flush = () => {
    if (!map) return;
    for (const i of [...map.iterations.keys()].sort((a, b) => a - b)) {
      for (const s of map.iterations.get(i)) path.push(`${map.name}/${i}/${s}`);
    }
    map = null;
  };
  for (const e of events) {
    if (e.type === 'MapIterationStarted') {
      if (!map || map.name !== e.parentState.name) throw new Error('nested Map paths are not supported here');
      if (!map.iterations.has(e.index)) map.iterations.set(e.index, []);
      continue;
    }
    if (e.type !== 'StateEntered') continue;
    if (e.index !== undefined) {
      if (!map) throw new Error(`iteration event outside a Map: ${JSON.stringify(e)}`);
      if (!map.iterations.has(e.index)) map.iterations.set(e.index, []);
      map.iterations.get(e.index).push(e.state.name);
      continue;
    }
    flush();
    path.push(e.state.name);
    if (e.state.type === 'Map') map = { name: e.state.name, iterations: new Map() };
  }
  flush();
  return path;
}

