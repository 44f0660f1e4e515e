//! Parsing one state per kind (Task, Pass, Choice, Wait, Map, Succeed, Fail) with its common
//! input/output fields and transition, the scopes that hold states, and the Retry and Catch
//! lists of Task and Map.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::super::paths::Path;
use super::super::templates::Template;
use super::choice::parse_choice;
use super::fields::Fields;
use super::graph::check_graph;
use super::{
    Catcher, Concurrency, Fail, Kind, MapState, Resource, Retrier, Scope, State, Task, Text,
    WaitFor, START_EXECUTION,
};

pub(super) fn parse_scope(f: &mut Fields<'_, '_>, at: &str) -> Option<Scope> {
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
