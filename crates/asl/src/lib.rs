//! The local state-machine runner: executes `statemachine/migration.asl.json` (the same file
//! AWS Step Functions runs) in-process, calling the steps through a [`TaskInvoker`].
//!
//! - [`Runner::load`] parses the definition, applies `${Name}` substitutions (as SAM's
//!   DefinitionSubstitutions do) and validates everything up front: every state, field, path,
//!   payload template, intrinsic call, Retry/Catch, Choice rule and transition. Anything the
//!   runner does not implement is a load error, never silently ignored.
//! - [`Runner::execute`] runs an execution to its end and returns its status, output and the
//!   path of states it entered. The `arn:aws:states:::states:startExecution` integration
//!   (continue-as-new) is run in-process: the request is recorded and the next execution starts
//!   after the current one ends (a loop, bounded by [`RunOptions::max_executions`]).
//!
//! Supported (JSONPath query language): Task (Retry with IntervalSeconds, BackoffRate,
//! MaxAttempts, MaxDelaySeconds, JitterStrategy; Catch with ResultPath), Choice (all comparison
//! operators and their `...Path` forms, Is*, And/Or/Not), Wait (Seconds, SecondsPath), Pass
//! (Result, Parameters), inline Map (ItemsPath, ItemSelector, MaxConcurrency(Path),
//! ItemProcessor), Succeed, Fail (Error/ErrorPath, Cause/CausePath); InputPath, Parameters,
//! ResultSelector, ResultPath, OutputPath; the intrinsics listed in `intrinsics.rs`; the context
//! object (`$$.Execution.Id/Name/Input/StartTime`, `$$.StateMachine.Id/Name`,
//! `$$.State.Name/EnteredTime/RetryCount`, `$$.Map.Item.Index/Value` in ItemSelector).
//! Waits and retry delays are multiplied by [`RunOptions::time_scale`] (0 = no waiting).
//!
//! Error semantics follow AWS: a path that does not resolve in InputPath, Parameters,
//! ItemSelector, ResultSelector, OutputPath or a Choice rule fails the execution with
//! `States.Runtime`, which no Retry or Catch matches; a ResultPath that cannot be applied is
//! `States.ResultPathMatchFailure` (catchable); payloads over 256 KiB are
//! `States.DataLimitExceeded` (not catchable), so oversized step results show up locally too.
//!
//! Why not the crates.io `asl` crate (0.2.0): it does not execute Map states (marked TODO),
//! implements neither intrinsic functions nor Retry, runs tasks through a blocking synchronous
//! handler, and would add about ten dependencies (pest, jsonpath-rust, chrono, derive_builder,
//! ...); we would still need our own load-time validation. The subset we need is small enough
//! to own.

mod asl;
mod execute;
#[doc(hidden)]
pub mod fuzz;
mod intrinsics;
mod paths;
mod templates;

use std::collections::HashMap;
use std::path::Path as FsPath;

use futures_util::future::BoxFuture;
use serde_json::Value;

pub use asl::LoadError;

/// Calls the function behind a Task state's resource (the substituted `${...FunctionArn}`).
pub trait TaskInvoker: Send + Sync {
    fn invoke<'a>(
        &'a self,
        resource: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, TaskError>>;
}

/// A failed task: `error` is what Retry/Catch `ErrorEquals` match (e.g. `Migration.Transient`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskError {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// How executions run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Multiplies Wait durations and Retry delays: 1.0 = real time, 0 = no waiting.
    pub time_scale: f64,
    /// How many executions one [`Runner::execute`] call runs, counting each continue-as-new.
    /// Start requests beyond it are returned in [`ExecutionResult::pending`].
    pub max_executions: usize,
    /// States one execution may enter (Map iterations included) before it fails with
    /// `Runner.StateLimitExceeded`: a guard against endless loops. AWS limits an execution to
    /// 25,000 history events, several per state, so an execution near this bound would not
    /// fit on AWS either.
    pub max_state_entries: usize,
    /// `$$.StateMachine.Id`; executions are named `...:execution:<machine>:<name>` after it.
    pub state_machine_arn: String,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            time_scale: 1.0,
            max_executions: 1000,
            max_state_entries: 25_000,
            state_machine_arn: "arn:aws:states:local:000000000000:stateMachine:tsmigrate-migration"
                .to_owned(),
        }
    }
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Succeeded,
    Failed { error: String, cause: String },
}

/// One execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    pub name: String,
    pub input: Value,
    pub status: Status,
    /// The final output (`None` when the execution failed).
    pub output: Option<Value>,
    /// The states entered, in order. The states of Map iterations are listed as
    /// `Map/index/State`, grouped by iteration index right after the Map state (so the path does
    /// not depend on how concurrent iterations interleave). A retried state is entered once.
    pub path: Vec<String>,
    /// History events this execution would have on AWS (Standard workflows), counted as Step
    /// Functions writes them: 2 for the execution, 2 per state entered (entered, exited), 3
    /// per Task attempt (scheduled, started, succeeded or failed), 2 per Map attempt and 2 per
    /// Map iteration. AWS fails an execution past 25,000.
    pub history_events: usize,
    /// The largest state input, output, task input or task result of the execution, in bytes
    /// of JSON (AWS refuses more than 256 KiB).
    pub largest_payload: usize,
}

/// A request to start an execution (from startExecution, i.e. continue-as-new).
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    pub name: String,
    pub input: Value,
}

/// Every execution one [`Runner::execute`] call ran, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionResult {
    /// The first is the execution `execute` was asked to run; each later one was started by
    /// an earlier one (continue-as-new). Never empty.
    pub executions: Vec<ExecutionRecord>,
    /// Start requests not run because [`RunOptions::max_executions`] was reached.
    pub pending: Vec<StartRequest>,
}

impl ExecutionResult {
    /// The last execution that ran.
    pub fn last(&self) -> Option<&ExecutionRecord> {
        self.executions.last()
    }

    /// The last execution succeeded and nothing is pending.
    pub fn succeeded(&self) -> bool {
        self.pending.is_empty() && self.last().is_some_and(|e| e.status == Status::Succeeded)
    }
}

/// A run that could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid execution name `{0}`: 1 to 80 characters of A-Z a-z 0-9 - _")]
    InvalidName(String),
    #[error("invalid run options: {0}")]
    InvalidOptions(String),
}

/// A loaded, validated state machine.
#[derive(Debug, Clone)]
pub struct Runner {
    machine: asl::StateMachine,
}

impl Runner {
    /// Reads and validates a definition file.
    pub fn load(
        path: impl AsRef<FsPath>,
        substitutions: &HashMap<String, String>,
    ) -> Result<Runner, LoadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Runner::parse(&text, substitutions)
    }

    /// Validates a definition given as text.
    pub fn parse(text: &str, substitutions: &HashMap<String, String>) -> Result<Runner, LoadError> {
        Ok(Runner {
            machine: asl::load(text, substitutions)?,
        })
    }

    /// The resources of every Task state the invoker will be asked to call (startExecution
    /// excluded), sorted and deduplicated.
    pub fn resources(&self) -> Vec<String> {
        let mut out = Vec::new();
        execute::collect_resources(&self.machine.root, &mut out);
        out.sort();
        out.dedup();
        out
    }

    /// Runs the execution `name` with `input`, then every execution it continues as, until
    /// none is left or `options.max_executions` ran.
    pub async fn execute(
        &self,
        name: &str,
        input: Value,
        invoker: &dyn TaskInvoker,
        options: &RunOptions,
    ) -> Result<ExecutionResult, RunError> {
        execute::run_chain(&self.machine, name, input, invoker, options).await
    }
}
