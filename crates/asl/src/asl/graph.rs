//! Structural checks of a parsed scope: transitions point at states of the same scope, every
//! state is reachable, some state ends, and state names are unique and well-formed across the
//! whole machine (Map ItemProcessors included).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{Kind, Scope, State};

/// Longest state name AWS accepts.
const MAX_STATE_NAME: usize = 80;

/// Transitions point at states of the same scope, every state is reachable, some state ends.
pub(super) fn check_graph(
    scope: &Scope,
    raw: &Map<String, Value>,
    at: &str,
    problems: &mut Vec<String>,
) {
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
pub(super) fn check_names<'a>(
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
