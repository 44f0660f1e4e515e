//! Parsing an ASL (JSONPath query language) document into typed states, validating everything
//! the runner will need so that execution never meets an unknown field, a dangling `Next`, a bad
//! path or an unsupported intrinsic.
//!
//! Every problem is collected with its JSON pointer (`/States/CopyChunks/ItemProcessor/...`),
//! and a field that is valid ASL but not implemented by this runner is reported as such: the
//! runner never silently ignores part of the definition.
//!
//! This file holds the typed state machine the executor runs and [`load`], the entry point.
//! The loader's parts: `fields` (the field reader that reports unknown and unsupported fields),
//! `states` (one parser per state kind, Retry and Catch), `choice` (Choice rules and their
//! operators), `graph` (transitions, reachability and state names across scopes).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::paths::Path;
use super::templates::Template;

mod choice;
mod fields;
mod graph;
mod states;

#[cfg(test)]
mod tests;

use fields::Fields;
use graph::check_names;
use states::parse_scope;

/// The integration the runner implements itself (continue-as-new).
pub const START_EXECUTION: &str = "arn:aws:states:::states:startExecution";

/// The parsed state machine.
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub root: Scope,
}

/// A set of states with a start: the machine itself or a Map's ItemProcessor.
#[derive(Debug, Clone)]
pub struct Scope {
    pub start_at: String,
    pub states: BTreeMap<String, State>,
}

#[derive(Debug, Clone)]
pub struct State {
    pub kind: Kind,
    /// `None` = `InputPath: null` (the state sees `{}`).
    pub input_path: Option<Path>,
    /// `None` = `OutputPath: null` (the state outputs `{}`).
    pub output_path: Option<Path>,
    /// `None` = `ResultPath: null` (the result is discarded).
    pub result_path: Option<Path>,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    /// `None` for terminal states (End, Succeed, Fail) and Choice.
    pub next: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Task(Task),
    Pass { result: Option<Value> },
    Choice(Choice),
    Wait(WaitFor),
    Map(Box<MapState>),
    Succeed,
    Fail(Fail),
}

#[derive(Debug, Clone)]
pub struct Task {
    pub resource: Resource,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// Invoked through the [`super::TaskInvoker`] with this (substituted) resource string.
    Invoke(String),
    /// `arn:aws:states:::states:startExecution`, run in-process.
    StartExecution,
}

#[derive(Debug, Clone)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub full_jitter: bool,
}

#[derive(Debug, Clone)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub result_path: Option<Path>,
    pub next: String,
}

#[derive(Debug, Clone)]
pub struct Choice {
    pub choices: Vec<(Rule, String)>,
    pub default: Option<String>,
}

/// A Choice rule (without its `Next`).
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Compare {
        variable: Path,
        op: Op,
        operand: Operand,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Literal(Value),
    Path(Path),
}

/// Comparison operators (each with a `...Path` variant given by [`Operand::Path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

/// RFC 3339 timestamp as nanoseconds since the epoch.
pub fn parse_timestamp(s: &str) -> Option<i128> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

#[derive(Debug, Clone)]
pub enum WaitFor {
    Seconds(u64),
    SecondsPath(Path),
}

#[derive(Debug, Clone)]
pub struct MapState {
    pub items_path: Path,
    pub item_selector: Option<Template>,
    pub processor: Scope,
    pub max_concurrency: Concurrency,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

#[derive(Debug, Clone)]
pub enum Concurrency {
    /// 0 = no limit.
    Fixed(u64),
    Path(Path),
}

#[derive(Debug, Clone)]
pub struct Fail {
    pub error: Option<Text>,
    pub cause: Option<Text>,
}

#[derive(Debug, Clone)]
pub enum Text {
    Literal(String),
    Path(Path),
}

/// Why a state machine could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the state machine is not valid for the local runner:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

impl LoadError {
    /// The individual problems (empty for read and JSON errors).
    pub fn problems(&self) -> &[String] {
        match self {
            LoadError::Invalid(p) => p,
            _ => &[],
        }
    }
}

/// Parses and validates a definition, replacing every `${Name}` in its strings from
/// `substitutions` first (as SAM's DefinitionSubstitutions do).
pub fn load(
    text: &str,
    substitutions: &HashMap<String, String>,
) -> Result<StateMachine, LoadError> {
    let mut doc: Value = serde_json::from_str(text)?;
    let mut problems = Vec::new();
    substitute(&mut doc, "", substitutions, &mut problems);
    let root = match doc.as_object() {
        Some(m) => {
            let mut f = Fields::new(m, "", &mut problems);
            f.take("Comment");
            f.take("Version");
            if let Some(q) = f.take("QueryLanguage") {
                if q != "JSONPath" {
                    f.problem(
                        "QueryLanguage",
                        "only JSONPath is supported by the local runner (not JSONata)",
                    );
                }
            }
            for k in ["TimeoutSeconds"] {
                if f.take(k).is_some() {
                    f.problem(k, "valid ASL, not supported by the local runner");
                }
            }
            let scope = parse_scope(&mut f, "");
            f.finish();
            scope
        }
        None => {
            problems.push("the document must be a JSON object".to_owned());
            None
        }
    };
    if let Some(root) = &root {
        let mut seen = HashSet::new();
        check_names(root, "", &mut seen, &mut problems);
    }
    match root {
        Some(root) if problems.is_empty() => Ok(StateMachine { root }),
        _ => Err(LoadError::Invalid(problems)),
    }
}

fn substitute(v: &mut Value, at: &str, subs: &HashMap<String, String>, problems: &mut Vec<String>) {
    match v {
        Value::String(s) if s.contains("${") => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(i) = rest.find("${") {
                out.push_str(&rest[..i]);
                let after = &rest[i + 2..];
                let Some(end) = after.find('}') else {
                    problems.push(format!("{at}: unterminated `${{` in `{s}`"));
                    return;
                };
                let key = &after[..end];
                match subs.get(key) {
                    Some(val) => out.push_str(val),
                    None => problems.push(format!("{at}: no substitution given for `${{{key}}}`")),
                }
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                substitute(x, &format!("{at}/{i}"), subs, problems);
            }
        }
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                substitute(x, &format!("{at}/{k}"), subs, problems);
            }
        }
        _ => {}
    }
}
