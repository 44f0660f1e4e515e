//! Parsing an ASL (JSONPath query language) document into typed states, validating everything
//! the runner will need so that execution never meets an unknown field, a dangling `Next`, a bad
//! path or an unsupported intrinsic.
//!
//! Every problem is collected with its JSON pointer (`/States/CopyChunks/ItemProcessor/...`),
//! and a field that is valid ASL but not implemented by this runner is reported as such: the
//! runner never silently ignores part of the definition.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

use super::paths::{parse_input_path, parse_result_path, Path, Template};

/// The integration the runner implements itself (continue-as-new).
pub const START_EXECUTION: &str = "arn:aws:states:::states:startExecution";

/// Longest state name AWS accepts.
const MAX_STATE_NAME: usize = 80;

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

const OPS: &[(&str, Op)] = &[
    ("StringEquals", Op::StringEquals),
    ("StringLessThan", Op::StringLessThan),
    ("StringGreaterThan", Op::StringGreaterThan),
    ("StringLessThanEquals", Op::StringLessThanEquals),
    ("StringGreaterThanEquals", Op::StringGreaterThanEquals),
    ("StringMatches", Op::StringMatches),
    ("NumericEquals", Op::NumericEquals),
    ("NumericLessThan", Op::NumericLessThan),
    ("NumericGreaterThan", Op::NumericGreaterThan),
    ("NumericLessThanEquals", Op::NumericLessThanEquals),
    ("NumericGreaterThanEquals", Op::NumericGreaterThanEquals),
    ("BooleanEquals", Op::BooleanEquals),
    ("TimestampEquals", Op::TimestampEquals),
    ("TimestampLessThan", Op::TimestampLessThan),
    ("TimestampGreaterThan", Op::TimestampGreaterThan),
    ("TimestampLessThanEquals", Op::TimestampLessThanEquals),
    ("TimestampGreaterThanEquals", Op::TimestampGreaterThanEquals),
    ("IsNull", Op::IsNull),
    ("IsPresent", Op::IsPresent),
    ("IsNumeric", Op::IsNumeric),
    ("IsString", Op::IsString),
    ("IsBoolean", Op::IsBoolean),
    ("IsTimestamp", Op::IsTimestamp),
];

impl Op {
    fn literal_ok(self, v: &Value) -> bool {
        use Op::*;
        match self {
            StringEquals
            | StringLessThan
            | StringGreaterThan
            | StringLessThanEquals
            | StringGreaterThanEquals
            | StringMatches => v.is_string(),
            NumericEquals
            | NumericLessThan
            | NumericGreaterThan
            | NumericLessThanEquals
            | NumericGreaterThanEquals => v.is_number(),
            TimestampEquals
            | TimestampLessThan
            | TimestampGreaterThan
            | TimestampLessThanEquals
            | TimestampGreaterThanEquals => {
                v.as_str().is_some_and(|s| parse_timestamp(s).is_some())
            }
            BooleanEquals | IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp => {
                v.is_boolean()
            }
        }
    }

    fn has_path_variant(self) -> bool {
        !matches!(
            self,
            Op::StringMatches
                | Op::IsNull
                | Op::IsPresent
                | Op::IsNumeric
                | Op::IsString
                | Op::IsBoolean
                | Op::IsTimestamp
        )
    }
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

/// Reads the fields of one JSON object, remembering which were used so that the rest can be
/// reported as unknown.
struct Fields<'a, 'p> {
    m: &'a Map<String, Value>,
    at: String,
    used: HashSet<&'a str>,
    problems: &'p mut Vec<String>,
}

impl<'a, 'p> Fields<'a, 'p> {
    fn new(m: &'a Map<String, Value>, at: &str, problems: &'p mut Vec<String>) -> Self {
        Fields {
            m,
            at: at.to_owned(),
            used: HashSet::new(),
            problems,
        }
    }

    fn problem(&mut self, field: &str, msg: impl std::fmt::Display) {
        self.problems.push(format!("{}/{field}: {msg}", self.at));
    }

    fn here(&self, field: &str) -> String {
        format!("{}/{field}", self.at)
    }

    fn take(&mut self, k: &str) -> Option<&'a Value> {
        let (key, v) = self.m.get_key_value(k)?;
        self.used.insert(key.as_str());
        Some(v)
    }

    fn has(&self, k: &str) -> bool {
        self.m.contains_key(k)
    }

    fn string(&mut self, k: &str) -> Option<&'a str> {
        let v = self.take(k)?;
        match v.as_str() {
            Some(s) => Some(s),
            None => {
                self.problem(k, "must be a string");
                None
            }
        }
    }

    fn required_string(&mut self, k: &str) -> Option<&'a str> {
        if !self.has(k) {
            self.problem(k, "is required");
            return None;
        }
        self.string(k)
    }

    fn uint(&mut self, k: &str) -> Option<u64> {
        let v = self.take(k)?;
        match v.as_u64() {
            Some(n) => Some(n),
            None => {
                self.problem(k, "must be a non-negative integer");
                None
            }
        }
    }

    fn number(&mut self, k: &str) -> Option<f64> {
        let v = self.take(k)?;
        match v.as_f64() {
            Some(n) => Some(n),
            None => {
                self.problem(k, "must be a number");
                None
            }
        }
    }

    fn bool(&mut self, k: &str) -> Option<bool> {
        let v = self.take(k)?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.problem(k, "must be true or false");
                None
            }
        }
    }

    /// A path field that may be null (`InputPath`/`OutputPath`); absent = `$`.
    fn nullable_path(&mut self, k: &str, result_path: bool) -> Option<Path> {
        match self.take(k) {
            None => Some(Path::root()),
            Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let parsed = if result_path {
                    parse_result_path(s)
                } else {
                    parse_input_path(s)
                };
                match parsed {
                    Ok(p) => Some(p),
                    Err(e) => {
                        self.problem(k, e);
                        Some(Path::root())
                    }
                }
            }
            Some(_) => {
                self.problem(k, "must be a path string or null");
                Some(Path::root())
            }
        }
    }

    fn path(&mut self, k: &str, any_root: bool) -> Option<Path> {
        let s = self.string(k)?;
        let parsed = if any_root {
            Path::parse(s)
        } else {
            parse_input_path(s)
        };
        match parsed {
            Ok(p) => Some(p),
            Err(e) => {
                self.problem(k, e);
                None
            }
        }
    }

    fn template(&mut self, k: &str) -> Option<Template> {
        let v = self.take(k)?;
        if !v.is_object() {
            self.problem(k, "must be an object (a payload template)");
            return None;
        }
        let at = self.here(k);
        Some(Template::compile(v, &at, self.problems))
    }

    /// Reports every field not read, as unknown or as valid-but-unsupported.
    fn finish(self) {
        for k in self.m.keys() {
            if self.used.contains(k.as_str()) {
                continue;
            }
            let msg = if UNSUPPORTED.contains(&k.as_str()) {
                "valid ASL, not supported by the local runner"
            } else {
                "unknown field"
            };
            self.problems.push(format!("{}/{k}: {msg}", self.at));
        }
    }
}

/// ASL fields the runner knows exist but does not implement.
const UNSUPPORTED: &[&str] = &[
    "TimeoutSeconds",
    "TimeoutSecondsPath",
    "HeartbeatSeconds",
    "HeartbeatSecondsPath",
    "Credentials",
    "Timestamp",
    "TimestampPath",
    "Iterator",
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "Label",
    "Branches",
    "Assign",
    "Arguments",
    "Output",
    "QueryLanguage",
];

fn parse_scope(f: &mut Fields<'_, '_>, at: &str) -> Option<Scope> {
    let start_at = f.required_string("StartAt").map(str::to_owned);
    let states_v = match f.take("States") {
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            f.problem("States", "must be an object");
            None
        }
        None => {
            f.problem("States", "is required");
            None
        }
    };
    let (start_at, states_v) = (start_at?, states_v?);
    let mut states = BTreeMap::new();
    for (name, sv) in states_v {
        let sat = format!("{at}/States/{name}");
        match sv.as_object() {
            Some(sm) => {
                if let Some(s) = parse_state(sm, &sat, f.problems) {
                    states.insert(name.clone(), s);
                }
            }
            None => f.problems.push(format!("{sat}: must be an object")),
        }
    }
    if states_v.is_empty() {
        f.problem("States", "must contain at least one state");
    }
    let scope = Scope { start_at, states };
    check_graph(&scope, states_v, at, f.problems);
    Some(scope)
}

/// Transitions point at states of the same scope, every state is reachable, some state ends.
fn check_graph(scope: &Scope, raw: &Map<String, Value>, at: &str, problems: &mut Vec<String>) {
    let exists = |n: &str| raw.contains_key(n);
    if !exists(&scope.start_at) {
        problems.push(format!("{at}/StartAt: no state named `{}`", scope.start_at));
    }
    let mut reachable = HashSet::new();
    let mut stack = vec![scope.start_at.as_str()];
    while let Some(n) = stack.pop() {
        if !reachable.insert(n) {
            continue;
        }
        if let Some(s) = scope.states.get(n) {
            for (target, via) in s.transitions() {
                if exists(target) {
                    stack.push(target);
                } else {
                    problems.push(format!(
                        "{at}/States/{n}/{via}: no state named `{target}` here"
                    ));
                }
            }
        }
    }
    for n in raw.keys() {
        if !reachable.contains(n.as_str()) && scope.states.contains_key(n) {
            problems.push(format!("{at}/States/{n}: not reachable from StartAt"));
        }
    }
    if !scope.states.is_empty() && !scope.states.values().any(State::is_terminal) {
        problems.push(format!(
            "{at}/States: no terminal state (End, Succeed or Fail)"
        ));
    }
}

/// State names are unique across the whole machine (nested scopes included) and short enough.
fn check_names<'a>(
    scope: &'a Scope,
    at: &str,
    seen: &mut HashSet<&'a str>,
    problems: &mut Vec<String>,
) {
    for (name, s) in &scope.states {
        if name.is_empty() || name.chars().count() > MAX_STATE_NAME {
            problems.push(format!(
                "{at}/States/{name}: a state name has 1 to {MAX_STATE_NAME} characters"
            ));
        }
        if name.contains('/') {
            problems.push(format!(
                "{at}/States/{name}: `/` is reserved in the runner's state paths (Map/index/State)"
            ));
        }
        if !seen.insert(name) {
            problems.push(format!(
                "{at}/States/{name}: state names must be unique in the whole state machine"
            ));
        }
        if let Kind::Map(m) = &s.kind {
            check_names(
                &m.processor,
                &format!("{at}/States/{name}/ItemProcessor"),
                seen,
                problems,
            );
        }
    }
}

impl State {
    fn is_terminal(&self) -> bool {
        matches!(self.kind, Kind::Succeed | Kind::Fail(_))
            || (self.next.is_none() && !matches!(self.kind, Kind::Choice(_)))
    }

    /// (target, field) of every transition.
    fn transitions(&self) -> Vec<(&str, String)> {
        let mut out = Vec::new();
        if let Some(n) = &self.next {
            out.push((n.as_str(), "Next".to_owned()));
        }
        let catchers = match &self.kind {
            Kind::Task(t) => &t.catch[..],
            Kind::Map(m) => &m.catch[..],
            Kind::Choice(c) => {
                for (i, (_, n)) in c.choices.iter().enumerate() {
                    out.push((n.as_str(), format!("Choices/{i}/Next")));
                }
                if let Some(d) = &c.default {
                    out.push((d.as_str(), "Default".to_owned()));
                }
                &[]
            }
            _ => &[],
        };
        for (i, c) in catchers.iter().enumerate() {
            out.push((c.next.as_str(), format!("Catch/{i}/Next")));
        }
        out
    }
}

fn parse_state(m: &Map<String, Value>, at: &str, problems: &mut Vec<String>) -> Option<State> {
    let mut f = Fields::new(m, at, problems);
    f.take("Comment");
    let ty = f.required_string("Type")?;
    let (io_fields, transition): (&[&str], bool) = match ty {
        "Task" | "Map" => (
            &[
                "InputPath",
                "OutputPath",
                "ResultPath",
                "Parameters",
                "ResultSelector",
            ],
            true,
        ),
        "Pass" => (
            &["InputPath", "OutputPath", "ResultPath", "Parameters"],
            true,
        ),
        "Wait" => (&["InputPath", "OutputPath"], true),
        "Choice" | "Succeed" => (&["InputPath", "OutputPath"], false),
        "Fail" => (&[], false),
        "Parallel" => {
            f.problem(
                "Type",
                "Parallel is valid ASL, not supported by the local runner",
            );
            return None;
        }
        other => {
            f.problem("Type", format!("unknown state type `{other}`"));
            return None;
        }
    };
    let mut state = State {
        kind: Kind::Succeed,
        input_path: Some(Path::root()),
        output_path: Some(Path::root()),
        result_path: Some(Path::root()),
        parameters: None,
        result_selector: None,
        next: None,
    };
    for k in io_fields {
        match *k {
            "InputPath" => state.input_path = f.nullable_path(k, false),
            "OutputPath" => state.output_path = f.nullable_path(k, false),
            "ResultPath" => state.result_path = f.nullable_path(k, true),
            "Parameters" if ty == "Map" && f.take(k).is_some() => {
                f.problem(
                    k,
                    "a Map state takes ItemSelector (Parameters is the deprecated form)",
                );
            }
            "Parameters" => state.parameters = f.template(k),
            "ResultSelector" => state.result_selector = f.template(k),
            _ => {}
        }
    }
    if transition {
        let next = f.string("Next").map(str::to_owned);
        let end = f.bool("End");
        match (next, end) {
            (Some(n), None | Some(false)) => state.next = Some(n),
            (None, Some(true)) => {}
            (Some(_), Some(true)) => {
                f.problem("End", "a state has either Next or End: true, not both")
            }
            (None, _) => f.problem("Next", "a non-terminal state needs Next or End: true"),
        }
    }
    state.kind = match ty {
        "Task" => Kind::Task(parse_task(&mut f, &state)),
        "Pass" => {
            let result = f.take("Result").cloned();
            if result.is_some() && state.parameters.is_some() {
                f.problem("Result", "give Result or Parameters, not both");
            }
            Kind::Pass { result }
        }
        "Choice" => Kind::Choice(parse_choice(&mut f)),
        "Wait" => {
            let secs = f.uint("Seconds");
            let path = f.path("SecondsPath", false);
            match (secs, path) {
                (Some(s), None) => Kind::Wait(WaitFor::Seconds(s)),
                (None, Some(p)) => Kind::Wait(WaitFor::SecondsPath(p)),
                (Some(_), Some(_)) => {
                    f.problem("Seconds", "give Seconds or SecondsPath, not both");
                    Kind::Wait(WaitFor::Seconds(0))
                }
                (None, None) => {
                    if !f.has("Timestamp") && !f.has("TimestampPath") {
                        f.problem("Seconds", "a Wait state needs Seconds or SecondsPath");
                    }
                    Kind::Wait(WaitFor::Seconds(0))
                }
            }
        }
        "Map" => Kind::Map(Box::new(parse_map(&mut f)?)),
        "Succeed" => Kind::Succeed,
        "Fail" => {
            let error = fail_text(&mut f, "Error", "ErrorPath");
            let cause = fail_text(&mut f, "Cause", "CausePath");
            Kind::Fail(Fail { error, cause })
        }
        _ => return None,
    };
    f.finish();
    Some(state)
}

fn fail_text(f: &mut Fields<'_, '_>, lit: &str, path: &str) -> Option<Text> {
    let l = f.string(lit).map(|s| Text::Literal(s.to_owned()));
    let p = f.path(path, true).map(Text::Path);
    if l.is_some() && p.is_some() {
        f.problem(path, format!("give {lit} or {path}, not both"));
    }
    l.or(p)
}

fn parse_task(f: &mut Fields<'_, '_>, state: &State) -> Task {
    let resource = match f.required_string("Resource") {
        Some(START_EXECUTION) => {
            let keys = state
                .parameters
                .as_ref()
                .map(Template::keys)
                .unwrap_or_default();
            for k in &keys {
                if !matches!(*k, "StateMachineArn" | "Input" | "Name") {
                    f.problem(
                        "Parameters",
                        format!("startExecution: `{k}` is not supported by the local runner (StateMachineArn, Input, Name)"),
                    );
                }
            }
            if !keys.contains(&"StateMachineArn") {
                f.problem(
                    "Parameters",
                    "startExecution needs StateMachineArn (use `$$.StateMachine.Id`)",
                );
            }
            Resource::StartExecution
        }
        Some(r) if r.starts_with("arn:aws:states:::") => {
            f.problem(
                "Resource",
                format!("the integration `{r}` is not supported by the local runner (only {START_EXECUTION})"),
            );
            Resource::Invoke(r.to_owned())
        }
        Some("") => {
            f.problem("Resource", "must not be empty");
            Resource::Invoke(String::new())
        }
        Some(r) => Resource::Invoke(r.to_owned()),
        None => Resource::Invoke(String::new()),
    };
    let retry = parse_retry(f);
    let catch = parse_catch(f);
    Task {
        resource,
        retry,
        catch,
    }
}

fn parse_map(f: &mut Fields<'_, '_>) -> Option<MapState> {
    let items_path = match f.take("ItemsPath") {
        None => Some(Path::root()),
        Some(_) => f.path_from_taken("ItemsPath"),
    };
    let item_selector = f.template("ItemSelector");
    let fixed = f.uint("MaxConcurrency");
    let path = f.path("MaxConcurrencyPath", false);
    let max_concurrency = match (fixed, path) {
        (Some(_), Some(_)) => {
            f.problem(
                "MaxConcurrencyPath",
                "give MaxConcurrency or MaxConcurrencyPath, not both",
            );
            Concurrency::Fixed(0)
        }
        (None, Some(p)) => Concurrency::Path(p),
        (Some(n), None) => Concurrency::Fixed(n),
        (None, None) => Concurrency::Fixed(0),
    };
    let processor = match f.take("ItemProcessor") {
        Some(Value::Object(pm)) => {
            let at = f.here("ItemProcessor");
            let mut pf = Fields::new(pm, &at, f.problems);
            pf.take("Comment");
            match pf.take("ProcessorConfig") {
                None => {}
                Some(Value::Object(cm)) => {
                    let cat = pf.here("ProcessorConfig");
                    let mut cf = Fields::new(cm, &cat, pf.problems);
                    if let Some(mode) = cf.string("Mode") {
                        if mode != "INLINE" {
                            cf.problem("Mode", format!("`{mode}`: only INLINE Map states are supported by the local runner"));
                        }
                    }
                    cf.finish();
                }
                Some(_) => pf.problem("ProcessorConfig", "must be an object"),
            }
            let scope = parse_scope(&mut pf, &at);
            pf.finish();
            scope
        }
        Some(_) => {
            f.problem("ItemProcessor", "must be an object");
            None
        }
        None => {
            f.problem("ItemProcessor", "is required");
            None
        }
    };
    let retry = parse_retry(f);
    let catch = parse_catch(f);
    Some(MapState {
        items_path: items_path?,
        item_selector,
        processor: processor?,
        max_concurrency,
        retry,
        catch,
    })
}

impl<'a> Fields<'a, '_> {
    /// Parses an input path from a field already marked used.
    fn path_from_taken(&mut self, k: &str) -> Option<Path> {
        match self.m.get(k).and_then(Value::as_str) {
            Some(s) => match parse_input_path(s) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.problem(k, e);
                    None
                }
            },
            None => {
                self.problem(k, "must be a path string");
                None
            }
        }
    }

    fn array(&mut self, k: &str) -> Option<&'a Vec<Value>> {
        let v = self.take(k)?;
        match v.as_array() {
            Some(a) => Some(a),
            None => {
                self.problem(k, "must be an array");
                None
            }
        }
    }
}

fn error_equals(f: &mut Fields<'_, '_>, last: bool) -> Vec<String> {
    let Some(list) = f.array("ErrorEquals").cloned() else {
        if !f.has("ErrorEquals") {
            f.problem("ErrorEquals", "is required");
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for v in &list {
        match v.as_str() {
            Some(s) if !s.is_empty() => out.push(s.to_owned()),
            _ => f.problem("ErrorEquals", "must list non-empty error names"),
        }
    }
    if out.is_empty() {
        f.problem("ErrorEquals", "must not be empty");
    }
    if out.iter().any(|e| e == "States.ALL") {
        if out.len() > 1 {
            f.problem("ErrorEquals", "States.ALL must appear alone");
        }
        if !last {
            f.problem(
                "ErrorEquals",
                "States.ALL must be in the last retrier/catcher",
            );
        }
    }
    out
}

fn parse_retry(f: &mut Fields<'_, '_>) -> Vec<Retrier> {
    let Some(list) = f.array("Retry").cloned() else {
        return Vec::new();
    };
    let n = list.len();
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let at = f.here(&format!("Retry/{i}"));
        let Some(m) = v.as_object() else {
            f.problems.push(format!("{at}: must be an object"));
            continue;
        };
        let mut rf = Fields::new(m, &at, f.problems);
        rf.take("Comment");
        let error_equals = error_equals(&mut rf, i + 1 == n);
        let interval_seconds = rf.uint("IntervalSeconds").unwrap_or(1);
        if interval_seconds == 0 {
            rf.problem("IntervalSeconds", "must be at least 1");
        }
        let max_attempts = rf.uint("MaxAttempts").unwrap_or(3);
        if max_attempts > 99_999_999 {
            rf.problem("MaxAttempts", "must be at most 99999999");
        }
        let backoff_rate = rf.number("BackoffRate").unwrap_or(2.0);
        if backoff_rate < 1.0 {
            rf.problem("BackoffRate", "must be at least 1.0");
        }
        let max_delay_seconds = rf.uint("MaxDelaySeconds");
        if max_delay_seconds == Some(0) {
            rf.problem("MaxDelaySeconds", "must be at least 1");
        }
        let full_jitter = match rf.string("JitterStrategy") {
            None | Some("NONE") => false,
            Some("FULL") => true,
            Some(other) => {
                rf.problem("JitterStrategy", format!("`{other}`: FULL or NONE"));
                false
            }
        };
        rf.finish();
        out.push(Retrier {
            error_equals,
            interval_seconds: interval_seconds as f64,
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
            backoff_rate,
            max_delay_seconds: max_delay_seconds.map(|d| d as f64),
            full_jitter,
        });
    }
    out
}

fn parse_catch(f: &mut Fields<'_, '_>) -> Vec<Catcher> {
    let Some(list) = f.array("Catch").cloned() else {
        return Vec::new();
    };
    let n = list.len();
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let at = f.here(&format!("Catch/{i}"));
        let Some(m) = v.as_object() else {
            f.problems.push(format!("{at}: must be an object"));
            continue;
        };
        let mut cf = Fields::new(m, &at, f.problems);
        cf.take("Comment");
        let error_equals = error_equals(&mut cf, i + 1 == n);
        let result_path = cf.nullable_path("ResultPath", true);
        let next = cf.required_string("Next").unwrap_or_default().to_owned();
        cf.finish();
        out.push(Catcher {
            error_equals,
            result_path,
            next,
        });
    }
    out
}

fn parse_choice(f: &mut Fields<'_, '_>) -> Choice {
    let mut choices = Vec::new();
    match f.array("Choices").cloned() {
        Some(list) if !list.is_empty() => {
            for (i, v) in list.iter().enumerate() {
                let at = f.here(&format!("Choices/{i}"));
                let next = v.get("Next").and_then(Value::as_str).map(str::to_owned);
                if next.is_none() {
                    f.problems
                        .push(format!("{at}/Next: a top-level choice rule needs Next"));
                }
                if let (Some(rule), Some(next)) = (parse_rule(v, &at, true, f.problems), next) {
                    choices.push((rule, next));
                }
            }
        }
        Some(_) => f.problem("Choices", "must not be empty"),
        None => {
            if !f.has("Choices") {
                f.problem("Choices", "is required");
            }
        }
    }
    let default = f.string("Default").map(str::to_owned);
    Choice { choices, default }
}

fn parse_rule(v: &Value, at: &str, top: bool, problems: &mut Vec<String>) -> Option<Rule> {
    let Some(m) = v.as_object() else {
        problems.push(format!("{at}: a choice rule must be an object"));
        return None;
    };
    let mut f = Fields::new(m, at, problems);
    f.take("Comment");
    if top {
        f.take("Next");
    }
    let mut found: Vec<Rule> = Vec::new();
    for combinator in ["And", "Or"] {
        if let Some(list) = f.array(combinator).cloned() {
            if list.is_empty() {
                f.problem(combinator, "must not be empty");
            }
            let here = f.here(combinator);
            let rules: Vec<Rule> = list
                .iter()
                .enumerate()
                .filter_map(|(i, r)| parse_rule(r, &format!("{here}/{i}"), false, f.problems))
                .collect();
            found.push(if combinator == "And" {
                Rule::And(rules)
            } else {
                Rule::Or(rules)
            });
        }
    }
    if let Some(inner) = f.take("Not") {
        let here = f.here("Not");
        if let Some(r) = parse_rule(inner, &here, false, f.problems) {
            found.push(Rule::Not(Box::new(r)));
        }
    }
    let variable = f.path("Variable", true);
    let mut compares = Vec::new();
    for (name, op) in OPS {
        if let Some(v) = f.take(name) {
            if op.literal_ok(v) {
                compares.push((*op, Operand::Literal(v.clone())));
            } else {
                f.problem(name, "operand of the wrong type for this comparison");
            }
        }
        let path_name = format!("{name}Path");
        if op.has_path_variant() && f.has(&path_name) {
            if let Some(p) = f.path(&path_name, true) {
                compares.push((*op, Operand::Path(p)));
            }
        }
    }
    match (variable, compares.len()) {
        (Some(var), 1) => {
            if let Some((op, operand)) = compares.pop() {
                found.push(Rule::Compare {
                    variable: var,
                    op,
                    operand,
                });
            }
        }
        (Some(_), 0) => f.problem("Variable", "needs exactly one comparison operator"),
        (_, n) if n > 1 => f.problem("Variable", "a rule has exactly one comparison operator"),
        (None, 1) => f.problem("Variable", "a comparison needs Variable"),
        _ => {}
    }
    f.finish();
    match found.len() {
        1 => found.pop(),
        0 => {
            problems.push(format!(
                "{at}: a choice rule needs And, Or, Not or Variable with a comparison"
            ));
            None
        }
        _ => {
            problems.push(format!(
                "{at}: a choice rule has exactly one of And, Or, Not, Variable"
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load_value(v: Value) -> Result<StateMachine, LoadError> {
        let subs = HashMap::from([("FnArn".to_owned(), "fn".to_owned())]);
        load(&v.to_string(), &subs)
    }

    fn problems(v: Value) -> Vec<String> {
        match load_value(v) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().to_vec(),
        }
    }

    fn has(problems: &[String], needle: &str) -> bool {
        problems.iter().any(|p| p.contains(needle))
    }

    #[test]
    fn loads_a_small_machine_with_substitutions() {
        let m = load_value(json!({
            "StartAt": "T",
            "States": {
                "T": {"Type": "Task", "Resource": "${FnArn}", "Parameters": {"a.$": "$.a"},
                      "Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "FULL", "MaxDelaySeconds": 5}],
                      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "F"}],
                      "Next": "C"},
                "C": {"Type": "Choice", "Choices": [
                        {"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.m", "Next": "S"},
                        {"And": [{"Variable": "$.x", "IsPresent": true},
                                 {"Not": {"Variable": "$.x", "StringEquals": "y"}}], "Next": "S"}],
                      "Default": "F"},
                "S": {"Type": "Succeed"},
                "F": {"Type": "Fail", "ErrorPath": "$.e.Error", "Cause": "c"}
            }
        }))
        .unwrap();
        let Kind::Task(t) = &m.root.states["T"].kind else {
            panic!()
        };
        assert_eq!(t.resource, Resource::Invoke("fn".into()));
        assert!(t.retry[0].full_jitter);
        assert_eq!(t.retry[0].max_attempts, 3);
        assert_eq!(t.retry[0].interval_seconds, 1.0);
        assert_eq!(t.retry[0].backoff_rate, 2.0);
        let Kind::Choice(c) = &m.root.states["C"].kind else {
            panic!()
        };
        assert_eq!(c.choices.len(), 2);
        assert!(matches!(
            &c.choices[0].0,
            Rule::Compare {
                op: Op::NumericGreaterThanEquals,
                operand: Operand::Path(_),
                ..
            }
        ));
    }

    #[test]
    fn reports_unknown_and_unsupported_fields_everywhere() {
        let p = problems(json!({
            "StartAt": "M",
            "TimeoutSeconds": 5,
            "States": {
                "M": {"Type": "Map", "ItemsPath": "$.xs", "Retries": [],
                      "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                                        "StartAt": "T",
                                        "States": {"T": {"Type": "Task", "Resource": "fn", "End": true,
                                                         "HeartbeatSeconds": 5}}},
                      "Next": "W"},
                "W": {"Type": "Wait", "Timestamp": "2024-01-01T00:00:00Z", "Next": "P"},
                "P": {"Type": "Parallel", "Branches": [], "End": true}
            }
        }));
        for needle in [
            "/TimeoutSeconds: valid ASL, not supported",
            "/States/M/Retries: unknown field",
            "/States/M/ItemProcessor/ProcessorConfig/Mode: `DISTRIBUTED`",
            "/States/M/ItemProcessor/ProcessorConfig/ExecutionType: unknown field",
            "/States/M/ItemProcessor/States/T/HeartbeatSeconds: valid ASL, not supported",
            "/States/W/Timestamp: valid ASL, not supported",
            "/States/P/Type: Parallel is valid ASL, not supported",
        ] {
            assert!(has(&p, needle), "missing `{needle}` in {p:#?}");
        }
    }

    #[test]
    fn reports_graph_problems() {
        let p = problems(json!({
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "Next": "Nowhere"},
                "B": {"Type": "Pass", "End": true},
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "BooleanEquals": true, "Next": "A"}]},
                "D": {"Type": "Pass", "Next": "A", "End": true},
                "E": {"Type": "Pass"}
            }
        }));
        for needle in [
            "/States/A/Next: no state named `Nowhere`",
            "/States/B: not reachable",
            "/States/C: not reachable",
            "/States/D/End: a state has either Next or End",
            "/States/E/Next: a non-terminal state needs Next",
        ] {
            assert!(has(&p, needle), "missing `{needle}` in {p:#?}");
        }
        // Map iterations cannot jump out of their scope; names are unique machine-wide
        let p = problems(json!({
            "StartAt": "M",
            "States": {
                "M": {"Type": "Map", "ItemProcessor": {"StartAt": "X", "States": {
                    "X": {"Type": "Pass", "Next": "Done"}, "Done": {"Type": "Succeed"}}}, "Next": "X"},
                "X": {"Type": "Succeed"}
            }
        }));
        assert!(has(&p, "state names must be unique"), "{p:#?}");
        assert!(!has(&p, "no state named"), "{p:#?}");
    }

    #[test]
    fn reports_bad_paths_templates_intrinsics_and_retriers() {
        let p = problems(json!({
            "StartAt": "T",
            "States": {
                "T": {"Type": "Task", "Resource": "${Missing}",
                      "InputPath": "$.a[*]", "ResultPath": "$$.x",
                      "Parameters": {"a.$": "States.Hash($.a, 'MD5')", "b.$": "$.b", "b": 1},
                      "Retry": [{"ErrorEquals": ["States.ALL"], "BackoffRate": 0.5},
                                {"ErrorEquals": ["X"], "JitterStrategy": "HALF", "IntervalSeconds": 0}],
                      "Catch": [{"ErrorEquals": ["States.ALL", "X"], "Next": "S"}],
                      "Next": "S"},
                "S": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true}
            }
        }));
        for needle in [
            "no substitution given for `${Missing}`",
            "/States/T/InputPath: path `$.a[*]`",
            "/States/T/ResultPath: path `$$.x`",
            "/States/T/Parameters/a.$: intrinsic",
            "/States/T/Parameters/b.$: both `b` and `b.$`",
            "/States/T/Retry/0/ErrorEquals: States.ALL must be in the last",
            "/States/T/Retry/0/BackoffRate",
            "/States/T/Retry/1/JitterStrategy",
            "/States/T/Retry/1/IntervalSeconds",
            "/States/T/Catch/0/ErrorEquals: States.ALL must appear alone",
            "/States/S/Resource: the integration `arn:aws:states:::lambda:invoke` is not supported",
        ] {
            assert!(has(&p, needle), "missing `{needle}` in {p:#?}");
        }
    }

    #[test]
    fn reports_bad_choice_rules() {
        let p = problems(json!({
            "StartAt": "C",
            "States": {
                "C": {"Type": "Choice", "Choices": [
                    {"Variable": "$.x", "StringEquals": 3, "Next": "S"},
                    {"Variable": "$.x", "Next": "S"},
                    {"Variable": "$.x", "IsPresent": true, "BooleanEquals": true, "Next": "S"},
                    {"And": [{"Variable": "$.x", "IsNull": true, "Next": "S"}], "Next": "S"},
                    {"Variable": "$.x", "StringMatchesPath": "$.y", "Next": "S"},
                    {"Variable": "$.x", "TimestampEquals": "yesterday", "Next": "S"},
                    {"Variable": "$.x", "BooleanEquals": true}
                ], "Default": "S"},
                "S": {"Type": "Succeed"}
            }
        }));
        for needle in [
            "/Choices/0/StringEquals: operand of the wrong type",
            "/Choices/1/Variable: needs exactly one comparison",
            "/Choices/2/Variable: a rule has exactly one comparison",
            "/Choices/3/And/0/Next: unknown field",
            "/Choices/4/StringMatchesPath: unknown field",
            "/Choices/5/TimestampEquals: operand of the wrong type",
            "/Choices/6/Next: a top-level choice rule needs Next",
        ] {
            assert!(has(&p, needle), "missing `{needle}` in {p:#?}");
        }
    }

    #[test]
    fn rejects_jsonata_and_bad_documents() {
        assert!(has(
            &problems(
                json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": {"Type": "Succeed"}}})
            ),
            "only JSONPath"
        ));
        assert!(has(
            &problems(json!({"StartAt": "S", "States": {}})),
            "at least one state"
        ));
        assert!(matches!(
            load("[", &HashMap::new()),
            Err(LoadError::Json(_))
        ));
        assert!(has(&problems(json!([])), "must be a JSON object"));
        let p = problems(json!({"StartAt": "S", "States": {"S": {"Type": "Task",
            "Resource": "arn:aws:states:::states:startExecution", "Parameters": {"Input.$": "$", "TraceHeader": "x"},
            "End": true}}}));
        assert!(has(&p, "needs StateMachineArn"), "{p:#?}");
        assert!(has(&p, "`TraceHeader` is not supported"), "{p:#?}");
    }
}
