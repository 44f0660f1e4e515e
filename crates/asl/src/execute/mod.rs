//! The interpreter: runs a validated [`StateMachine`] state by state.
//!
//! This file holds the execution chain (continue-as-new), the state loop, every state kind but
//! Map, Retry/Catch and the input/output processing; `map` runs a Map state's iterations,
//! `choice` evaluates Choice rules.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use super::asl::{Catcher, Kind, Resource, Retrier, Scope, State, StateMachine, Text, WaitFor};
use super::intrinsics::uuid_v4;
use super::paths::merge_result;
use super::{
    ExecutionRecord, ExecutionResult, RunError, RunOptions, StartRequest, Status, TaskInvoker,
};

mod choice;
mod map;

#[cfg(test)]
mod tests;

use choice::choose;
use map::attempt_map;

/// AWS's limit on a state's input, output and task payloads.
const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

const RUNTIME: &str = "States.Runtime";
const DATA_LIMIT: &str = "States.DataLimitExceeded";
const STATE_LIMIT: &str = "Runner.StateLimitExceeded";

/// An error raised in a state, as Retry/Catch see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    error: String,
    cause: String,
}

impl Failure {
    fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Failure {
            error: error.into(),
            cause: cause.into(),
        }
    }

    fn runtime(state: &str, cause: impl std::fmt::Display) -> Self {
        Failure::new(RUNTIME, format!("state `{state}`: {cause}"))
    }
}

/// Whether an `ErrorEquals` entry matches an error name. `States.ALL` matches everything but
/// the terminal errors; `States.TaskFailed` everything but those and `States.Timeout`.
pub(super) fn error_matches(pattern: &str, error: &str) -> bool {
    let terminal = matches!(error, RUNTIME | DATA_LIMIT | STATE_LIMIT);
    match pattern {
        _ if terminal => false,
        "States.ALL" => true,
        "States.TaskFailed" => error != "States.Timeout",
        p => p == error,
    }
}

/// State entries of one scope (an execution or one Map iteration).
type Trail = Mutex<Vec<String>>;

fn push(trail: &Trail, entry: String) {
    if let Ok(mut t) = trail.lock() {
        t.push(entry);
    }
}

fn take(trail: Trail) -> Vec<String> {
    trail
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Everything one execution shares, Map iterations included.
struct Exec<'r> {
    invoker: &'r dyn TaskInvoker,
    options: &'r RunOptions,
    /// `$$` without `State` and `Map`.
    context: Value,
    entries: AtomicUsize,
    /// History events so far (see [`ExecutionRecord::history_events`]).
    history: AtomicUsize,
    /// The largest payload so far, in bytes.
    largest_payload: AtomicUsize,
    /// startExecution requests made by this execution.
    starts: Mutex<Vec<StartRequest>>,
    /// Every execution name used so far in this chain.
    names: &'r Mutex<HashSet<String>>,
}

enum Step<'s> {
    Next(&'s str, Value),
    End(Value),
}

pub(super) fn collect_resources(scope: &Scope, out: &mut Vec<String>) {
    for s in scope.states.values() {
        match &s.kind {
            Kind::Task(t) => {
                if let Resource::Invoke(r) = &t.resource {
                    out.push(r.clone());
                }
            }
            Kind::Map(m) => collect_resources(&m.processor, out),
            _ => {}
        }
    }
}

fn valid_name(name: &str) -> bool {
    (1..=80).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn now() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_owned())
}

/// `arn:aws:states:R:A:stateMachine:NAME` -> (`arn:aws:states:R:A:execution:NAME:`, NAME)
fn execution_arn_prefix(machine_arn: &str) -> Option<(String, String)> {
    let (head, name) = machine_arn.split_once(":stateMachine:")?;
    if !head.starts_with("arn:") || name.is_empty() || name.contains(':') {
        return None;
    }
    Some((format!("{head}:execution:{name}:"), name.to_owned()))
}

pub(super) async fn run_chain(
    machine: &StateMachine,
    name: &str,
    input: Value,
    invoker: &dyn TaskInvoker,
    options: &RunOptions,
) -> Result<ExecutionResult, RunError> {
    if !(options.time_scale.is_finite() && options.time_scale >= 0.0) {
        return Err(RunError::InvalidOptions(
            "time_scale must be a finite number >= 0".into(),
        ));
    }
    if options.max_executions == 0 || options.max_state_entries == 0 {
        return Err(RunError::InvalidOptions(
            "max_executions and max_state_entries must be at least 1".into(),
        ));
    }
    let Some((exec_prefix, machine_name)) = execution_arn_prefix(&options.state_machine_arn) else {
        return Err(RunError::InvalidOptions(format!(
            "state_machine_arn `{}` is not arn:aws:states:REGION:ACCOUNT:stateMachine:NAME",
            options.state_machine_arn
        )));
    };
    if !valid_name(name) {
        return Err(RunError::InvalidName(name.to_owned()));
    }
    let names = Mutex::new(HashSet::from([name.to_owned()]));
    let mut queue = VecDeque::from([StartRequest {
        name: name.to_owned(),
        input,
    }]);
    let mut executions = Vec::new();
    while let Some(req) = queue.pop_front() {
        if executions.len() >= options.max_executions {
            queue.push_front(req);
            break;
        }
        let context = json!({
            "Execution": {
                "Id": format!("{exec_prefix}{}", req.name),
                "Name": req.name,
                "Input": req.input,
                "StartTime": now(),
            },
            "StateMachine": {"Id": options.state_machine_arn, "Name": machine_name},
        });
        let exec = Exec {
            invoker,
            options,
            context,
            entries: AtomicUsize::new(0),
            // ExecutionStarted and ExecutionSucceeded/Failed.
            history: AtomicUsize::new(2),
            largest_payload: AtomicUsize::new(payload_size(&req.input)),
            starts: Mutex::new(Vec::new()),
            names: &names,
        };
        let trail = Trail::default();
        let result = run_scope(&exec, &machine.root, req.input.clone(), &trail).await;
        let (status, output) = match result {
            Ok(out) => (Status::Succeeded, Some(out)),
            Err(f) => (
                Status::Failed {
                    error: f.error,
                    cause: f.cause,
                },
                None,
            ),
        };
        tracing::debug!(execution = %req.name, ?status, "execution ended");
        executions.push(ExecutionRecord {
            name: req.name,
            input: req.input,
            status,
            output,
            path: take(trail),
            history_events: exec.history.load(Ordering::Relaxed),
            largest_payload: exec.largest_payload.load(Ordering::Relaxed),
        });
        queue.extend(exec.starts.into_inner().unwrap_or_else(|p| p.into_inner()));
    }
    Ok(ExecutionResult {
        executions,
        pending: queue.into_iter().collect(),
    })
}

fn run_scope<'a>(
    exec: &'a Exec<'_>,
    scope: &'a Scope,
    input: Value,
    trail: &'a Trail,
) -> BoxFuture<'a, Result<Value, Failure>> {
    Box::pin(async move {
        let mut name = scope.start_at.as_str();
        let mut data = input;
        loop {
            let Some(state) = scope.states.get(name) else {
                return Err(Failure::runtime(name, "no such state"));
            };
            let n = exec.entries.fetch_add(1, Ordering::Relaxed) + 1;
            if n > exec.options.max_state_entries {
                return Err(Failure::new(
                    STATE_LIMIT,
                    format!(
                        "entering state `{name}`: more than {} states entered in one execution",
                        exec.options.max_state_entries
                    ),
                ));
            }
            push(trail, name.to_owned());
            exec.events(2); // entered, exited
            match run_state(exec, name, state, data, trail).await? {
                Step::Next(next, out) => {
                    name = next;
                    data = out;
                }
                Step::End(out) => return Ok(out),
            }
        }
    })
}

fn payload_size(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

fn check_size(exec: &Exec<'_>, state: &str, what: &str, v: &Value) -> Result<(), Failure> {
    let n = payload_size(v);
    exec.largest_payload.fetch_max(n, Ordering::Relaxed);
    if n > MAX_PAYLOAD_BYTES {
        return Err(Failure::new(
            DATA_LIMIT,
            format!("state `{state}`: the {what} has {n} bytes, more than the {MAX_PAYLOAD_BYTES} Step Functions allows"),
        ));
    }
    Ok(())
}

impl Exec<'_> {
    fn events(&self, n: usize) {
        self.history.fetch_add(n, Ordering::Relaxed);
    }

    /// `$$` while in a state.
    fn state_context(&self, name: &str, entered: &str, retry_count: u32) -> Value {
        let mut ctx = self.context.clone();
        if let Value::Object(m) = &mut ctx {
            m.insert(
                "State".to_owned(),
                json!({"Name": name, "EnteredTime": entered, "RetryCount": retry_count}),
            );
        }
        ctx
    }

    async fn sleep(&self, seconds: f64) {
        let scaled = seconds * self.options.time_scale;
        if scaled > 0.0 && scaled.is_finite() {
            tokio::time::sleep(Duration::from_secs_f64(scaled)).await;
        }
    }

    /// The in-process `states:startExecution`: records the request, runs it after this one.
    fn start_execution(&self, params: &Value) -> Result<Value, Failure> {
        let own = &self.options.state_machine_arn;
        match params.get("StateMachineArn").and_then(Value::as_str) {
            Some(arn) if arn == own => {}
            other => {
                return Err(Failure::new(
                    "StepFunctions.StateMachineDoesNotExistException",
                    format!(
                    "the local runner can only start its own state machine {own}, not {other:?}"
                ),
                ))
            }
        }
        let input = match params.get("Input") {
            None => json!({}),
            Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| {
                Failure::new(
                    "StepFunctions.InvalidExecutionInputException",
                    format!("Input is not JSON: {e}"),
                )
            })?,
            Some(v) => v.clone(),
        };
        let name = match params.get("Name") {
            None => uuid_v4(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(Failure::new(
                    "StepFunctions.InvalidNameException",
                    format!("Name must be a string, got {other}"),
                ))
            }
        };
        if !valid_name(&name) {
            return Err(Failure::new(
                "StepFunctions.InvalidNameException",
                format!("invalid execution name `{name}`: 1 to 80 characters of A-Z a-z 0-9 - _"),
            ));
        }
        let fresh = match self.names.lock() {
            Ok(mut names) => names.insert(name.clone()),
            Err(_) => false,
        };
        if !fresh {
            return Err(Failure::new(
                "StepFunctions.ExecutionAlreadyExistsException",
                format!("an execution named `{name}` already exists"),
            ));
        }
        let arn = self
            .context
            .pointer("/Execution/Id")
            .and_then(Value::as_str)
            .and_then(|id| id.rsplit_once(':'))
            .map(|(prefix, _)| format!("{prefix}:{name}"))
            .unwrap_or_else(|| name.clone());
        if let Ok(mut starts) = self.starts.lock() {
            starts.push(StartRequest {
                name: name.clone(),
                input,
            });
        }
        Ok(json!({"ExecutionArn": arn, "StartDate": now()}))
    }
}

fn effective_input(
    name: &str,
    state: &State,
    input: &Value,
    ctx: &Value,
) -> Result<Value, Failure> {
    match &state.input_path {
        None => Ok(json!({})),
        Some(p) => p
            .resolve(input, ctx)
            .cloned()
            .map_err(|e| Failure::runtime(name, format!("InputPath: {e}"))),
    }
}

fn state_output(
    exec: &Exec<'_>,
    name: &str,
    state: &State,
    data: Value,
    ctx: &Value,
) -> Result<Value, Failure> {
    let out = match &state.output_path {
        None => json!({}),
        Some(p) if p.is_root() => data,
        Some(p) => p
            .resolve(&data, ctx)
            .cloned()
            .map_err(|e| Failure::runtime(name, format!("OutputPath: {e}")))?,
    };
    check_size(exec, name, "output", &out)?;
    Ok(out)
}

fn transition<'s>(state: &'s State, out: Value) -> Step<'s> {
    match &state.next {
        Some(n) => Step::Next(n, out),
        None => Step::End(out),
    }
}

/// The result, through ResultSelector and ResultPath, merged into the raw input.
fn merge(
    name: &str,
    state: &State,
    input: &Value,
    result: Value,
    ctx: &Value,
) -> Result<Value, Failure> {
    let selected = match &state.result_selector {
        Some(t) => t
            .eval(&result, ctx)
            .map_err(|e| Failure::runtime(name, format!("ResultSelector: {e}")))?,
        None => result,
    };
    merge_result(input.clone(), state.result_path.as_ref(), selected).map_err(|e| {
        Failure::new(
            "States.ResultPathMatchFailure",
            format!("state `{name}`: {e}"),
        )
    })
}

async fn run_state<'s>(
    exec: &Exec<'_>,
    name: &'s str,
    state: &'s State,
    input: Value,
    trail: &Trail,
) -> Result<Step<'s>, Failure> {
    let entered = now();
    match &state.kind {
        Kind::Task(t) => {
            run_retriable(
                exec, name, state, &t.retry, &t.catch, input, &entered, trail,
            )
            .await
        }
        Kind::Map(m) => {
            run_retriable(
                exec, name, state, &m.retry, &m.catch, input, &entered, trail,
            )
            .await
        }
        Kind::Pass { result } => {
            let ctx = exec.state_context(name, &entered, 0);
            let eff = effective_input(name, state, &input, &ctx)?;
            let res = match (result, &state.parameters) {
                (Some(r), _) => r.clone(),
                (None, Some(t)) => t
                    .eval(&eff, &ctx)
                    .map_err(|e| Failure::runtime(name, format!("Parameters: {e}")))?,
                (None, None) => eff,
            };
            let merged = merge_result(input, state.result_path.as_ref(), res).map_err(|e| {
                Failure::new(
                    "States.ResultPathMatchFailure",
                    format!("state `{name}`: {e}"),
                )
            })?;
            Ok(transition(
                state,
                state_output(exec, name, state, merged, &ctx)?,
            ))
        }
        Kind::Choice(c) => {
            let ctx = exec.state_context(name, &entered, 0);
            let eff = effective_input(name, state, &input, &ctx)?;
            let next = choose(name, c, &eff, &ctx)?;
            Ok(Step::Next(
                next,
                state_output(exec, name, state, eff, &ctx)?,
            ))
        }
        Kind::Wait(w) => {
            let ctx = exec.state_context(name, &entered, 0);
            let eff = effective_input(name, state, &input, &ctx)?;
            let seconds = match w {
                WaitFor::Seconds(s) => *s as f64,
                WaitFor::SecondsPath(p) => {
                    let v = p
                        .resolve(&eff, &ctx)
                        .map_err(|e| Failure::runtime(name, format!("SecondsPath: {e}")))?;
                    v.as_f64()
                        .filter(|s| *s >= 0.0 && s.is_finite())
                        .ok_or_else(|| {
                            Failure::runtime(
                                name,
                                format!(
                                    "SecondsPath `{}` is {v}, not a number of seconds >= 0",
                                    p.text()
                                ),
                            )
                        })?
                }
            };
            exec.sleep(seconds).await;
            Ok(transition(
                state,
                state_output(exec, name, state, eff, &ctx)?,
            ))
        }
        Kind::Succeed => {
            let ctx = exec.state_context(name, &entered, 0);
            let eff = effective_input(name, state, &input, &ctx)?;
            Ok(Step::End(state_output(exec, name, state, eff, &ctx)?))
        }
        Kind::Fail(f) => {
            let ctx = exec.state_context(name, &entered, 0);
            let text = |t: &Option<Text>, field: &str| -> Result<String, Failure> {
                Ok(match t {
                    None => String::new(),
                    Some(Text::Literal(s)) => s.clone(),
                    Some(Text::Path(p)) => match p.resolve(&input, &ctx) {
                        Ok(Value::String(s)) => s.clone(),
                        Ok(other) => {
                            return Err(Failure::runtime(
                                name,
                                format!("{field} `{}` is {other}, not a string", p.text()),
                            ))
                        }
                        Err(e) => return Err(Failure::runtime(name, format!("{field}: {e}"))),
                    },
                })
            };
            let error = text(&f.error, "ErrorPath")?;
            let cause = text(&f.cause, "CausePath")?;
            Err(Failure::new(error, cause))
        }
    }
}

/// Task and Map: one attempt after another as the Retry rules allow, then Catch.
#[allow(clippy::too_many_arguments)]
async fn run_retriable<'s>(
    exec: &Exec<'_>,
    name: &'s str,
    state: &'s State,
    retry: &'s [Retrier],
    catch: &'s [Catcher],
    input: Value,
    entered: &str,
    trail: &Trail,
) -> Result<Step<'s>, Failure> {
    let mut attempts = vec![0u32; retry.len()];
    let mut retry_count = 0u32;
    loop {
        let ctx = exec.state_context(name, entered, retry_count);
        let result = match &state.kind {
            Kind::Task(t) => attempt_task(exec, name, state, &t.resource, &input, &ctx).await,
            Kind::Map(m) => attempt_map(exec, name, state, m, &input, &ctx, trail).await,
            _ => Err(Failure::runtime(name, "not a Task or Map state")),
        };
        let failure = match result {
            Ok(out) => return Ok(transition(state, out)),
            Err(f) => f,
        };
        // the first retrier that matches decides; an exhausted one means no more retries
        if let Some(i) = retry.iter().position(|r| {
            r.error_equals
                .iter()
                .any(|p| error_matches(p, &failure.error))
        }) {
            let r = &retry[i];
            if attempts[i] < r.max_attempts {
                let mut delay =
                    r.interval_seconds * r.backoff_rate.powi(attempts[i].min(1000) as i32);
                if let Some(max) = r.max_delay_seconds {
                    delay = delay.min(max);
                }
                if r.full_jitter {
                    delay *= fastrand::f64();
                }
                attempts[i] += 1;
                retry_count += 1;
                tracing::debug!(state = name, error = %failure.error, attempt = attempts[i], delay, "retrying");
                exec.sleep(delay).await;
                continue;
            }
        }
        if let Some(c) = catch.iter().find(|c| {
            c.error_equals
                .iter()
                .any(|p| error_matches(p, &failure.error))
        }) {
            let error_output = json!({"Error": failure.error, "Cause": failure.cause});
            let out = merge_result(input, c.result_path.as_ref(), error_output).map_err(|e| {
                Failure::new(
                    "States.ResultPathMatchFailure",
                    format!("state `{name}` Catch: {e}"),
                )
            })?;
            check_size(exec, name, "output", &out)?;
            return Ok(Step::Next(&c.next, out));
        }
        return Err(failure);
    }
}

async fn attempt_task(
    exec: &Exec<'_>,
    name: &str,
    state: &State,
    resource: &Resource,
    input: &Value,
    ctx: &Value,
) -> Result<Value, Failure> {
    let eff = effective_input(name, state, input, ctx)?;
    let params = match &state.parameters {
        Some(t) => t
            .eval(&eff, ctx)
            .map_err(|e| Failure::runtime(name, format!("Parameters: {e}")))?,
        None => eff,
    };
    check_size(exec, name, "task input", &params)?;
    exec.events(3); // scheduled, started, succeeded or failed
    let result = match resource {
        Resource::Invoke(r) => exec
            .invoker
            .invoke(r, params)
            .await
            .map_err(|e| Failure::new(e.error, e.cause))?,
        Resource::StartExecution => exec.start_execution(&params)?,
    };
    check_size(exec, name, "task result", &result)?;
    let merged = merge(name, state, input, result, ctx)?;
    state_output(exec, name, state, merged, ctx)
}
