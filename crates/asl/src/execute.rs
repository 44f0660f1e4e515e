//! The interpreter: runs a validated [`StateMachine`] state by state.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::asl::{
    parse_timestamp, Catcher, Choice, Concurrency, Kind, MapState, Op, Operand, Resource, Retrier,
    Rule, Scope, State, StateMachine, Text, WaitFor,
};
use super::intrinsics::uuid_v4;
use super::paths::merge_result;
use super::{
    ExecutionRecord, ExecutionResult, RunError, RunOptions, StartRequest, Status, TaskInvoker,
};

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

fn check_size(state: &str, what: &str, v: &Value) -> Result<(), Failure> {
    let n = payload_size(v);
    if n > MAX_PAYLOAD_BYTES {
        return Err(Failure::new(
            DATA_LIMIT,
            format!("state `{state}`: the {what} has {n} bytes, more than the {MAX_PAYLOAD_BYTES} Step Functions allows"),
        ));
    }
    Ok(())
}

impl Exec<'_> {
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

fn state_output(name: &str, state: &State, data: Value, ctx: &Value) -> Result<Value, Failure> {
    let out = match &state.output_path {
        None => json!({}),
        Some(p) if p.is_root() => data,
        Some(p) => p
            .resolve(&data, ctx)
            .cloned()
            .map_err(|e| Failure::runtime(name, format!("OutputPath: {e}")))?,
    };
    check_size(name, "output", &out)?;
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
            Ok(transition(state, state_output(name, state, merged, &ctx)?))
        }
        Kind::Choice(c) => {
            let ctx = exec.state_context(name, &entered, 0);
            let eff = effective_input(name, state, &input, &ctx)?;
            let next = choose(name, c, &eff, &ctx)?;
            Ok(Step::Next(next, state_output(name, state, eff, &ctx)?))
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
            Ok(transition(state, state_output(name, state, eff, &ctx)?))
        }
        Kind::Succeed => {
            let ctx = exec.state_context(name, &entered, 0);
            let eff = effective_input(name, state, &input, &ctx)?;
            Ok(Step::End(state_output(name, state, eff, &ctx)?))
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
            check_size(name, "output", &out)?;
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
    check_size(name, "task input", &params)?;
    let result = match resource {
        Resource::Invoke(r) => exec
            .invoker
            .invoke(r, params)
            .await
            .map_err(|e| Failure::new(e.error, e.cause))?,
        Resource::StartExecution => exec.start_execution(&params)?,
    };
    check_size(name, "task result", &result)?;
    let merged = merge(name, state, input, result, ctx)?;
    state_output(name, state, merged, ctx)
}

async fn attempt_map(
    exec: &Exec<'_>,
    name: &str,
    state: &State,
    m: &MapState,
    input: &Value,
    ctx: &Value,
    trail: &Trail,
) -> Result<Value, Failure> {
    let eff = effective_input(name, state, input, ctx)?;
    let items = match m.items_path.resolve(&eff, ctx) {
        Ok(Value::Array(a)) => a.clone(),
        Ok(other) => {
            return Err(Failure::runtime(
                name,
                format!(
                    "ItemsPath `{}` is {other}, not an array",
                    m.items_path.text()
                ),
            ))
        }
        Err(e) => return Err(Failure::runtime(name, format!("ItemsPath: {e}"))),
    };
    let limit = match &m.max_concurrency {
        Concurrency::Fixed(n) => *n,
        Concurrency::Path(p) => {
            let v = p
                .resolve(&eff, ctx)
                .map_err(|e| Failure::runtime(name, format!("MaxConcurrencyPath: {e}")))?;
            v.as_u64().ok_or_else(|| {
                Failure::runtime(
                    name,
                    format!(
                        "MaxConcurrencyPath `{}` is {v}, not an integer >= 0",
                        p.text()
                    ),
                )
            })?
        }
    };
    let limit = match usize::try_from(limit) {
        Ok(0) | Err(_) => items.len().max(1),
        Ok(n) => n,
    };
    let mut inputs = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let iteration_input = match &m.item_selector {
            Some(t) => {
                let mut item_ctx = ctx.clone();
                if let Value::Object(cm) = &mut item_ctx {
                    cm.insert(
                        "Map".to_owned(),
                        json!({"Item": {"Index": i, "Value": item}}),
                    );
                }
                t.eval(&eff, &item_ctx)
                    .map_err(|e| Failure::runtime(name, format!("ItemSelector (item {i}): {e}")))?
            }
            None => item,
        };
        inputs.push(iteration_input);
    }
    let slots: Vec<Trail> = inputs.iter().map(|_| Trail::default()).collect();
    let mut results: Vec<Value> = vec![Value::Null; inputs.len()];
    let outcome = {
        let mut runs = stream::iter(inputs.into_iter().enumerate().map(|(i, it)| {
            let slot = &slots[i];
            let processor = &m.processor;
            async move { (i, run_scope(exec, processor, it, slot).await) }
        }))
        .buffer_unordered(limit);
        let mut outcome = Ok(());
        while let Some((i, r)) = runs.next().await {
            match r {
                Ok(v) => results[i] = v,
                Err(f) => {
                    // like AWS: the first failed iteration fails the Map, the others stop
                    outcome = Err(f);
                    break;
                }
            }
        }
        outcome
    };
    for (i, slot) in slots.into_iter().enumerate() {
        for entry in take(slot) {
            push(trail, format!("{name}/{i}/{entry}"));
        }
    }
    outcome?;
    let merged = merge(name, state, input, Value::Array(results), ctx)?;
    state_output(name, state, merged, ctx)
}

fn choose<'s>(name: &str, c: &'s Choice, input: &Value, ctx: &Value) -> Result<&'s str, Failure> {
    for (rule, next) in &c.choices {
        if eval_rule(rule, input, ctx).map_err(|e| Failure::runtime(name, e))? {
            return Ok(next);
        }
    }
    c.default.as_deref().ok_or_else(|| {
        Failure::new(
            "States.NoChoiceMatched",
            format!("state `{name}`: no choice rule matched and there is no Default"),
        )
    })
}

/// Evaluates a Choice rule. A Variable that does not exist is an error (as on AWS), except for
/// IsPresent; And/Or stop at the first rule that decides.
pub(super) fn eval_rule(rule: &Rule, input: &Value, ctx: &Value) -> Result<bool, String> {
    match rule {
        Rule::And(rules) => {
            for r in rules {
                if !eval_rule(r, input, ctx)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Rule::Or(rules) => {
            for r in rules {
                if eval_rule(r, input, ctx)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Rule::Not(r) => Ok(!eval_rule(r, input, ctx)?),
        Rule::Compare {
            variable,
            op,
            operand,
        } => {
            let rhs = match operand {
                Operand::Literal(v) => v.clone(),
                Operand::Path(p) => p.resolve(input, ctx)?.clone(),
            };
            let found = variable.get(input, ctx);
            if *op == Op::IsPresent {
                return Ok(found.is_some() == (rhs == Value::Bool(true)));
            }
            let Some(v) = found else {
                return Err(format!(
                    "the choice rule's Variable `{}` does not exist in the input",
                    variable.text()
                ));
            };
            Ok(compare(*op, v, &rhs))
        }
    }
}

fn compare(op: Op, v: &Value, rhs: &Value) -> bool {
    use std::cmp::Ordering as O;
    use Op::*;
    let flag = rhs.as_bool() == Some(true);
    let ord = |o: Option<O>, want: &[O]| o.is_some_and(|o| want.contains(&o));
    let num_cmp = || -> Option<O> {
        match (v.as_i64(), rhs.as_i64()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => v.as_f64()?.partial_cmp(&rhs.as_f64()?),
        }
    };
    let str_cmp = || -> Option<O> { Some(v.as_str()?.cmp(rhs.as_str()?)) };
    let ts_cmp = || -> Option<O> {
        Some(parse_timestamp(v.as_str()?)?.cmp(&parse_timestamp(rhs.as_str()?)?))
    };
    match op {
        StringEquals => ord(str_cmp(), &[O::Equal]),
        StringLessThan => ord(str_cmp(), &[O::Less]),
        StringGreaterThan => ord(str_cmp(), &[O::Greater]),
        StringLessThanEquals => ord(str_cmp(), &[O::Less, O::Equal]),
        StringGreaterThanEquals => ord(str_cmp(), &[O::Greater, O::Equal]),
        StringMatches => match (v.as_str(), rhs.as_str()) {
            (Some(s), Some(p)) => glob_match(p, s),
            _ => false,
        },
        NumericEquals => ord(num_cmp(), &[O::Equal]),
        NumericLessThan => ord(num_cmp(), &[O::Less]),
        NumericGreaterThan => ord(num_cmp(), &[O::Greater]),
        NumericLessThanEquals => ord(num_cmp(), &[O::Less, O::Equal]),
        NumericGreaterThanEquals => ord(num_cmp(), &[O::Greater, O::Equal]),
        BooleanEquals => v.is_boolean() && v == rhs,
        TimestampEquals => ord(ts_cmp(), &[O::Equal]),
        TimestampLessThan => ord(ts_cmp(), &[O::Less]),
        TimestampGreaterThan => ord(ts_cmp(), &[O::Greater]),
        TimestampLessThanEquals => ord(ts_cmp(), &[O::Less, O::Equal]),
        TimestampGreaterThanEquals => ord(ts_cmp(), &[O::Greater, O::Equal]),
        IsNull => v.is_null() == flag,
        IsNumeric => v.is_number() == flag,
        IsString => v.is_string() == flag,
        IsBoolean => v.is_boolean() == flag,
        IsTimestamp => v.as_str().and_then(parse_timestamp).is_some() == flag,
        IsPresent => flag,
    }
}

/// StringMatches: `*` matches any run of characters; `\*` and `\\` are literal.
fn glob_match(pattern: &str, s: &str) -> bool {
    enum P {
        Star,
        Char(char),
    }
    let mut pat = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => pat.push(P::Char(it.next().unwrap_or('\\'))),
            '*' => pat.push(P::Star),
            c => pat.push(P::Char(c)),
        }
    }
    let s: Vec<char> = s.chars().collect();
    // classic two-pointer wildcard match with backtracking to the last star
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match pat.get(pi) {
            Some(P::Char(c)) if *c == s[si] => {
                pi += 1;
                si += 1;
            }
            Some(P::Star) => {
                star = Some((pi, si));
                pi += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    pat[pi..].iter().all(|p| matches!(p, P::Star))
}

#[cfg(test)]
mod tests {
    use super::super::asl;
    use super::super::{Runner, TaskError};
    use super::*;
    use std::collections::HashMap;

    fn rule(v: Value) -> Rule {
        let doc = json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Next": "S"}], "Default": "S"},
            "S": {"Type": "Succeed"}}});
        let mut doc = doc;
        let mut r = v;
        r["Next"] = json!("S");
        doc["States"]["C"]["Choices"][0] = r;
        let m = asl::load(&doc.to_string(), &HashMap::new()).unwrap();
        let Kind::Choice(c) = &m.root.states["C"].kind else {
            panic!()
        };
        c.choices[0].0.clone()
    }

    fn check(r: Value, input: Value) -> Result<bool, String> {
        eval_rule(&rule(r), &input, &json!({"Execution": {"Name": "e"}}))
    }

    #[test]
    fn choice_comparisons() {
        let input = json!({"s": "b", "n": 5, "f": 2.5, "t": true, "z": null,
                           "ts": "2024-05-01T12:00:00Z", "ts2": "2024-05-01T13:00:00+01:00", "m": 5});
        let yes = |r: Value| assert!(check(r.clone(), input.clone()).unwrap(), "{r} should match");
        let no = |r: Value| {
            assert!(
                !check(r.clone(), input.clone()).unwrap(),
                "{r} should not match"
            )
        };
        yes(json!({"Variable": "$.s", "StringEquals": "b"}));
        no(json!({"Variable": "$.s", "StringEquals": "a"}));
        yes(json!({"Variable": "$.s", "StringGreaterThan": "a"}));
        yes(json!({"Variable": "$.s", "StringLessThanEquals": "b"}));
        no(json!({"Variable": "$.n", "StringEquals": "5"}));
        yes(json!({"Variable": "$.n", "NumericEquals": 5}));
        yes(json!({"Variable": "$.n", "NumericEquals": 5.0}));
        yes(json!({"Variable": "$.n", "NumericGreaterThan": 0}));
        no(json!({"Variable": "$.n", "NumericLessThan": 5}));
        yes(json!({"Variable": "$.f", "NumericLessThanEquals": 2.5}));
        yes(json!({"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.m"}));
        yes(json!({"Variable": "$.n", "NumericEqualsPath": "$.m"}));
        no(json!({"Variable": "$.s", "NumericEquals": 5}));
        yes(json!({"Variable": "$.t", "BooleanEquals": true}));
        no(json!({"Variable": "$.n", "BooleanEquals": true}));
        yes(json!({"Variable": "$.ts", "TimestampEqualsPath": "$.ts2"}));
        yes(json!({"Variable": "$.ts", "TimestampLessThan": "2024-05-02T00:00:00Z"}));
        yes(json!({"Variable": "$.z", "IsNull": true}));
        yes(json!({"Variable": "$.s", "IsString": true}));
        yes(json!({"Variable": "$.n", "IsNumeric": true}));
        yes(json!({"Variable": "$.t", "IsBoolean": true}));
        yes(json!({"Variable": "$.ts", "IsTimestamp": true}));
        no(json!({"Variable": "$.s", "IsTimestamp": true}));
        yes(json!({"Variable": "$.missing", "IsPresent": false}));
        no(json!({"Variable": "$.missing", "IsPresent": true}));
        yes(json!({"Variable": "$.z", "IsPresent": true}));
        yes(json!({"Variable": "$.s", "StringMatches": "*"}));
        yes(json!({"Variable": "$$.Execution.Name", "StringEquals": "e"}));
        yes(
            json!({"And": [{"Variable": "$.t", "BooleanEquals": true}, {"Not": {"Variable": "$.s", "StringEquals": "x"}}]}),
        );
        no(
            json!({"Or": [{"Variable": "$.t", "BooleanEquals": false}, {"Variable": "$.n", "NumericLessThan": 0}]}),
        );
        // short-circuit: the missing variable is never looked at
        yes(
            json!({"Or": [{"Variable": "$.t", "BooleanEquals": true}, {"Variable": "$.missing", "BooleanEquals": true}]}),
        );
        no(
            json!({"And": [{"Variable": "$.missing", "IsPresent": true}, {"Variable": "$.missing", "BooleanEquals": true}]}),
        );
    }

    #[test]
    fn choice_missing_variable_is_an_error() {
        let err = check(
            json!({"Variable": "$.nope", "BooleanEquals": true}),
            json!({}),
        )
        .unwrap_err();
        assert!(err.contains("$.nope"), "{err}");
        assert!(check(
            json!({"Variable": "$.n", "NumericEqualsPath": "$.nope"}),
            json!({"n": 1})
        )
        .is_err());
    }

    #[test]
    fn glob() {
        assert!(glob_match("log-*.txt", "log-2024.txt"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match(r"a\*b", "a*b"));
        assert!(!glob_match(r"a\*b", "aXb"));
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("abc", "abcd"));
    }

    #[test]
    fn error_matching() {
        assert!(error_matches("States.ALL", "Migration.Fatal"));
        assert!(error_matches("States.TaskFailed", "Migration.Fatal"));
        assert!(!error_matches("States.TaskFailed", "States.Timeout"));
        assert!(error_matches("States.ALL", "States.Timeout"));
        assert!(!error_matches("States.ALL", RUNTIME));
        assert!(!error_matches("States.ALL", DATA_LIMIT));
        assert!(!error_matches(RUNTIME, RUNTIME));
        assert!(error_matches("Migration.Transient", "Migration.Transient"));
        assert!(!error_matches(
            "Migration.Transient",
            "Migration.ConnectionFailed"
        ));
    }

    /// Answers each resource from a closure; counts calls.
    struct Fn_<F>(F);
    impl<F> TaskInvoker for Fn_<F>
    where
        F: Fn(&str, Value) -> Result<Value, TaskError> + Send + Sync,
    {
        fn invoke<'a>(
            &'a self,
            resource: &'a str,
            input: Value,
        ) -> BoxFuture<'a, Result<Value, TaskError>> {
            let r = (self.0)(resource, input);
            Box::pin(async move { r })
        }
    }

    fn fast() -> RunOptions {
        RunOptions {
            time_scale: 0.0,
            ..RunOptions::default()
        }
    }

    async fn run(
        def: Value,
        input: Value,
        f: impl Fn(&str, Value) -> Result<Value, TaskError> + Send + Sync,
    ) -> ExecutionRecord {
        let runner = Runner::parse(&def.to_string(), &HashMap::new()).unwrap();
        let mut r = runner
            .execute("t-1", input, &Fn_(f), &fast())
            .await
            .unwrap();
        r.executions.remove(0)
    }

    #[tokio::test]
    async fn io_processing_order() {
        // InputPath -> Parameters -> task -> ResultSelector -> ResultPath (into the raw input) -> OutputPath
        let def = json!({"StartAt": "T", "States": {"T": {
            "Type": "Task", "Resource": "r",
            "InputPath": "$.in",
            "Parameters": {"x.$": "$.x", "ctx.$": "$$.State.Name", "name.$": "$$.Execution.Name"},
            "ResultSelector": {"got.$": "$.echo"},
            "ResultPath": "$.res",
            "OutputPath": "$.res",
            "End": true}}});
        let rec = run(def, json!({"in": {"x": 1}, "other": 2}), |_, input| {
            assert_eq!(input, json!({"x": 1, "ctx": "T", "name": "t-1"}));
            Ok(json!({"echo": input, "noise": true}))
        })
        .await;
        assert_eq!(rec.status, Status::Succeeded);
        assert_eq!(
            rec.output,
            Some(json!({"got": {"x": 1, "ctx": "T", "name": "t-1"}}))
        );
    }

    #[tokio::test]
    async fn runtime_errors_are_not_caught_and_result_path_failures_are() {
        let def = json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "r", "Parameters": {"x.$": "$.missing"},
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "S"}], "End": true},
            "S": {"Type": "Succeed"}}});
        let rec = run(def, json!({}), |_, _| Ok(json!({}))).await;
        let Status::Failed { error, cause } = &rec.status else {
            panic!()
        };
        assert_eq!(error, RUNTIME);
        assert!(cause.contains("$.missing"), "{cause}");
        assert_eq!(rec.path, vec!["T"]);

        let def = json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "r", "ResultPath": "$.a.b",
                  "Catch": [{"ErrorEquals": ["States.ResultPathMatchFailure"], "ResultPath": "$.err", "Next": "S"}],
                  "End": true},
            "S": {"Type": "Succeed"}}});
        let rec = run(def, json!({"a": 1}), |_, _| Ok(json!({}))).await;
        assert_eq!(rec.status, Status::Succeeded);
        assert_eq!(rec.path, vec!["T", "S"]);
        assert_eq!(
            rec.output.unwrap()["err"]["Error"],
            json!("States.ResultPathMatchFailure")
        );
    }

    #[tokio::test]
    async fn retry_counts_backoff_and_exhaustion() {
        let def = json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "r", "Parameters": {"n.$": "$$.State.RetryCount"},
                  "Retry": [{"ErrorEquals": ["A"], "MaxAttempts": 2, "IntervalSeconds": 1, "BackoffRate": 2.0,
                             "MaxDelaySeconds": 1, "JitterStrategy": "FULL"}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "S"}], "End": true},
            "S": {"Type": "Succeed"}}});
        let calls = Mutex::new(Vec::new());
        let rec = run(def, json!({}), |_, input| {
            calls.lock().unwrap().push(input["n"].clone());
            Err(TaskError::new("A", "always"))
        })
        .await;
        assert_eq!(*calls.lock().unwrap(), vec![json!(0), json!(1), json!(2)]);
        assert_eq!(rec.path, vec!["T", "S"]);
        assert_eq!(
            rec.output.unwrap()["e"],
            json!({"Error": "A", "Cause": "always"})
        );
    }

    #[tokio::test]
    async fn retry_delays_follow_the_time_scale() {
        let def = json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "r",
                  "Retry": [{"ErrorEquals": ["A"], "MaxAttempts": 3, "IntervalSeconds": 1, "BackoffRate": 2.0,
                             "MaxDelaySeconds": 3}], "End": true}}});
        let runner = Runner::parse(&def.to_string(), &HashMap::new()).unwrap();
        let calls = AtomicUsize::new(0);
        let invoker = Fn_(|_: &str, _| {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(TaskError::new("A", ""))
            } else {
                Ok(json!(1))
            }
        });
        let opts = RunOptions {
            time_scale: 0.01,
            ..RunOptions::default()
        };
        let t0 = std::time::Instant::now();
        let r = runner
            .execute("t", json!({}), &invoker, &opts)
            .await
            .unwrap();
        let took = t0.elapsed();
        assert!(r.succeeded());
        // delays 1 + 2 + 3 (capped) seconds = 60 ms at 1/100
        assert!(took >= Duration::from_millis(55), "{took:?}");
        assert!(took < Duration::from_millis(2000), "{took:?}");
    }

    #[tokio::test]
    async fn map_concurrency_order_and_failure() {
        let def = json!({"StartAt": "M", "States": {"M": {
            "Type": "Map", "ItemsPath": "$.xs", "MaxConcurrencyPath": "$.c",
            "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value", "k.$": "$.k"},
            "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r", "End": true}}},
            "ResultPath": "$.out", "End": true}}});
        let inflight = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        struct Slow<'a>(&'a AtomicUsize, &'a AtomicUsize);
        impl TaskInvoker for Slow<'_> {
            fn invoke<'a>(
                &'a self,
                _: &'a str,
                input: Value,
            ) -> BoxFuture<'a, Result<Value, TaskError>> {
                Box::pin(async move {
                    let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
                    self.1.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    self.0.fetch_sub(1, Ordering::SeqCst);
                    if input["v"] == json!("bad") {
                        return Err(TaskError::new("Boom", "bad item"));
                    }
                    Ok(json!(format!(
                        "{}{}",
                        input["v"].as_str().unwrap_or(""),
                        input["i"]
                    )))
                })
            }
        }
        let runner = Runner::parse(&def.to_string(), &HashMap::new()).unwrap();
        let slow = Slow(&inflight, &peak);
        let r = runner
            .execute(
                "m",
                json!({"xs": ["a", "b", "c", "d", "e"], "c": 2, "k": 1}),
                &slow,
                &fast(),
            )
            .await
            .unwrap();
        let rec = &r.executions[0];
        assert_eq!(
            rec.output.as_ref().unwrap()["out"],
            json!(["a0", "b1", "c2", "d3", "e4"])
        );
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(
            rec.path,
            vec!["M", "M/0/T", "M/1/T", "M/2/T", "M/3/T", "M/4/T"]
        );

        let r = runner
            .execute(
                "m",
                json!({"xs": ["a", "bad"], "c": 0, "k": 1}),
                &slow,
                &fast(),
            )
            .await
            .unwrap();
        assert_eq!(
            r.executions[0].status,
            Status::Failed {
                error: "Boom".into(),
                cause: "bad item".into()
            }
        );

        let r = runner
            .execute("m", json!({"xs": "no", "c": 1, "k": 1}), &slow, &fast())
            .await
            .unwrap();
        assert!(
            matches!(&r.executions[0].status, Status::Failed { error, .. } if error == RUNTIME)
        );
    }

    #[tokio::test]
    async fn continue_as_new_chain_is_bounded_and_names_are_unique() {
        let def = json!({"StartAt": "Count", "States": {
            "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "More"},
            "More": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericLessThan": 10, "Next": "Again"}],
                     "Default": "Done"},
            "Again": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
                      "Parameters": {"StateMachineArn.$": "$$.StateMachine.Id",
                                     "Name.$": "States.Format('c-{}', $.n)",
                                     "Input.$": "States.JsonToString($)"},
                      "End": true},
            "Done": {"Type": "Succeed"}}});
        let runner = Runner::parse(&def.to_string(), &HashMap::new()).unwrap();
        let none = Fn_(|_: &str, _| Ok(json!(null)));
        let opts = RunOptions {
            max_executions: 3,
            ..fast()
        };
        let r = runner
            .execute("c-0", json!({"n": 0}), &none, &opts)
            .await
            .unwrap();
        let names: Vec<_> = r.executions.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["c-0", "c-1", "c-2"]);
        assert_eq!(r.executions[2].input, json!({"n": 2}));
        assert_eq!(
            r.pending,
            vec![StartRequest {
                name: "c-3".into(),
                input: json!({"n": 3})
            }]
        );
        assert!(!r.succeeded());
        let r = runner
            .execute(
                "c-0",
                json!({"n": 0}),
                &none,
                &RunOptions {
                    max_executions: 100,
                    ..fast()
                },
            )
            .await
            .unwrap();
        assert_eq!(r.executions.len(), 10);
        assert!(r.succeeded());
        // a name already used fails the start
        let r = runner
            .execute("c-1", json!({"n": 0}), &none, &fast())
            .await
            .unwrap();
        assert!(matches!(&r.executions[0].status,
            Status::Failed { error, .. } if error == "StepFunctions.ExecutionAlreadyExistsException"));
        assert!(matches!(
            runner.execute("bad name", json!({}), &none, &fast()).await,
            Err(RunError::InvalidName(_))
        ));
    }

    #[tokio::test]
    async fn endless_loops_and_big_payloads_stop() {
        let def = json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"},
            "Never": {"Type": "Succeed"}}});
        assert!(
            Runner::parse(&def.to_string(), &HashMap::new()).is_err(),
            "unreachable Never"
        );
        let def = json!({"StartAt": "A", "States": {
            "A": {"Type": "Wait", "Seconds": 3600, "Next": "B"},
            "B": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": true, "Next": "S"}], "Default": "A"},
            "S": {"Type": "Succeed"}}});
        let runner = Runner::parse(&def.to_string(), &HashMap::new()).unwrap();
        let none = Fn_(|_: &str, _| Ok(json!(null)));
        let opts = RunOptions {
            max_state_entries: 50,
            ..fast()
        };
        let r = runner.execute("x", json!({}), &none, &opts).await.unwrap();
        assert!(
            matches!(&r.executions[0].status, Status::Failed { error, .. } if error == STATE_LIMIT)
        );
        assert_eq!(r.executions[0].path.len(), 50);

        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r",
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "S"}], "End": true}, "S": {"Type": "Succeed"}}});
        let rec = run(def, json!({}), |_, _| Ok(json!("x".repeat(300 * 1024)))).await;
        assert!(matches!(&rec.status, Status::Failed { error, .. } if error == DATA_LIMIT));
    }

    #[tokio::test]
    async fn fail_state_and_wait_path() {
        let def = json!({"StartAt": "W", "States": {
            "W": {"Type": "Wait", "SecondsPath": "$.s", "Next": "F"},
            "F": {"Type": "Fail", "ErrorPath": "$.e.Error", "CausePath": "$.e.Cause"}}});
        let rec = run(
            def.clone(),
            json!({"s": 10, "e": {"Error": "X", "Cause": "why"}}),
            |_, _| Ok(json!(null)),
        )
        .await;
        assert_eq!(
            rec.status,
            Status::Failed {
                error: "X".into(),
                cause: "why".into()
            }
        );
        assert_eq!(rec.path, vec!["W", "F"]);
        let rec = run(def, json!({"s": -1}), |_, _| Ok(json!(null))).await;
        assert!(matches!(&rec.status, Status::Failed { error, .. } if error == RUNTIME));
    }
}
