//! The loader's field reader: reads the fields of one JSON object with their type checks,
//! remembers which were read, and reports the rest as unknown or as valid-but-unsupported ASL.
//! Every problem carries its JSON pointer.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::super::paths::{parse_input_path, parse_result_path, Path};
use super::super::templates::Template;

/// Reads the fields of one JSON object, remembering which were used so that the rest can be
/// reported as unknown.
pub(super) struct Fields<'a, 'p> {
    m: &'a Map<String, Value>,
    at: String,
    used: HashSet<&'a str>,
    pub(super) problems: &'p mut Vec<String>,
}

impl<'a, 'p> Fields<'a, 'p> {
    pub(super) fn new(m: &'a Map<String, Value>, at: &str, problems: &'p mut Vec<String>) -> Self {
        Fields {
            m,
            at: at.to_owned(),
            used: HashSet::new(),
            problems,
        }
    }

    pub(super) fn problem(&mut self, field: &str, msg: impl std::fmt::Display) {
        self.problems.push(format!("{}/{field}: {msg}", self.at));
    }

    pub(super) fn here(&self, field: &str) -> String {
        format!("{}/{field}", self.at)
    }

    pub(super) fn take(&mut self, k: &str) -> Option<&'a Value> {
        let (key, v) = self.m.get_key_value(k)?;
        self.used.insert(key.as_str());
        Some(v)
    }

    pub(super) fn has(&self, k: &str) -> bool {
        self.m.contains_key(k)
    }

    pub(super) fn string(&mut self, k: &str) -> Option<&'a str> {
        let v = self.take(k)?;
        match v.as_str() {
            Some(s) => Some(s),
            None => {
                self.problem(k, "must be a string");
                None
            }
        }
    }

    pub(super) fn required_string(&mut self, k: &str) -> Option<&'a str> {
        if !self.has(k) {
            self.problem(k, "is required");
            return None;
        }
        self.string(k)
    }

    pub(super) fn uint(&mut self, k: &str) -> Option<u64> {
        let v = self.take(k)?;
        match v.as_u64() {
            Some(n) => Some(n),
            None => {
                self.problem(k, "must be a non-negative integer");
                None
            }
        }
    }

    pub(super) fn number(&mut self, k: &str) -> Option<f64> {
        let v = self.take(k)?;
        match v.as_f64() {
            Some(n) => Some(n),
            None => {
                self.problem(k, "must be a number");
                None
            }
        }
    }

    pub(super) fn bool(&mut self, k: &str) -> Option<bool> {
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
    pub(super) fn nullable_path(&mut self, k: &str, result_path: bool) -> Option<Path> {
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

    pub(super) fn path(&mut self, k: &str, any_root: bool) -> Option<Path> {
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

    pub(super) fn template(&mut self, k: &str) -> Option<Template> {
        let v = self.take(k)?;
        if !v.is_object() {
            self.problem(k, "must be an object (a payload template)");
            return None;
        }
        let at = self.here(k);
        Some(Template::compile(v, &at, self.problems))
    }

    /// Reports every field not read, as unknown or as valid-but-unsupported.
    pub(super) fn finish(self) {
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

impl<'a> Fields<'a, '_> {
    /// Parses an input path from a field already marked used.
    pub(super) fn path_from_taken(&mut self, k: &str) -> Option<Path> {
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

    pub(super) fn array(&mut self, k: &str) -> Option<&'a Vec<Value>> {
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
