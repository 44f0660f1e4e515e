//! Payload templates (`Parameters`, `ItemSelector`, `ResultSelector`): a key ending in `.$`
//! takes its value from a path or an intrinsic function call; other values are copied. Apart
//! from `paths.rs` because it uses both the JSONPath leaf and the intrinsics, which use only
//! the JSONPath leaf: no module cycle.

use serde_json::{Map, Value};

use super::intrinsics::{self, Call};
use super::paths::{EvalError, Path};

/// Where a value comes from in a payload template.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Path(Path),
    Call(Call),
}

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, String> {
        if text.starts_with('$') {
            Path::parse(text).map(Expr::Path)
        } else if text.starts_with("States.") {
            intrinsics::parse(text).map(Expr::Call)
        } else {
            Err(format!(
                "`{text}` is neither a path (`$...`, `$$...`) nor an intrinsic function (`States.…(…)`)"
            ))
        }
    }

    pub fn eval(&self, input: &Value, context: &Value) -> Result<Value, EvalError> {
        match self {
            Expr::Path(p) => p.resolve(input, context).cloned(),
            Expr::Call(c) => c.eval(input, context),
        }
    }
}

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    Expr(Expr),
}

impl Template {
    /// Compiles a template; every problem is reported with its JSON pointer under `at`.
    pub fn compile(v: &Value, at: &str, problems: &mut Vec<String>) -> Template {
        match v {
            Value::Object(m) => {
                let mut fields = Vec::with_capacity(m.len());
                for (k, val) in m {
                    let here = format!("{at}/{k}");
                    if let Some(name) = k.strip_suffix(".$") {
                        if m.contains_key(name) {
                            problems.push(format!("{here}: both `{name}` and `{k}` are given"));
                        }
                        match val {
                            Value::String(s) => match Expr::parse(s) {
                                Ok(e) => fields.push((name.to_owned(), Template::Expr(e))),
                                Err(e) => problems.push(format!("{here}: {e}")),
                            },
                            _ => problems.push(format!(
                                "{here}: a `.$` field takes a path or intrinsic string"
                            )),
                        }
                    } else {
                        fields.push((k.clone(), Template::compile(val, &here, problems)));
                    }
                }
                Template::Object(fields)
            }
            Value::Array(a) => Template::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| Template::compile(x, &format!("{at}/{i}"), problems))
                    .collect(),
            ),
            other => Template::Literal(other.clone()),
        }
    }

    pub fn eval(&self, input: &Value, context: &Value) -> Result<Value, EvalError> {
        Ok(match self {
            Template::Literal(v) => v.clone(),
            Template::Expr(e) => e.eval(input, context)?,
            Template::Array(a) => Value::Array(
                a.iter()
                    .map(|t| t.eval(input, context))
                    .collect::<Result<_, _>>()?,
            ),
            Template::Object(fields) => {
                let mut m = Map::with_capacity(fields.len());
                for (k, t) in fields {
                    let v = t
                        .eval(input, context)
                        .map_err(|e| format!("field `{k}`: {e}"))?;
                    m.insert(k.clone(), v);
                }
                Value::Object(m)
            }
        })
    }

    /// The top-level keys this template produces (used to check integration parameters).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Template::Object(f) => f.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_evaluate_paths_intrinsics_and_literals() {
        let mut problems = Vec::new();
        let t = Template::compile(
            &json!({
                "config.$": "$.config",
                "name.$": "$$.Execution.Name",
                "n.$": "States.MathAdd($.n, 1)",
                "fixed": {"deep": [1, {"x.$": "$.n"}]},
                "s": "$.not-a-path-without-dollar-key"
            }),
            "/P",
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let out = t
            .eval(
                &json!({"config": {"a": 1}, "n": 4}),
                &json!({"Execution": {"Name": "e1"}}),
            )
            .unwrap();
        assert_eq!(
            out,
            json!({"config": {"a": 1}, "name": "e1", "n": 5, "fixed": {"deep": [1, {"x": 4}]},
                   "s": "$.not-a-path-without-dollar-key"})
        );
        let err = t.eval(&json!({"n": 1}), &json!({})).unwrap_err();
        assert!(err.contains("config"), "{err}");
    }

    #[test]
    fn template_compile_reports_every_problem() {
        let mut problems = Vec::new();
        Template::compile(
            &json!({"a": 1, "a.$": "$.a", "b.$": 3, "c.$": "oops", "d.$": "States.Nope()", "e.$": "$.x[*]"}),
            "/S/P",
            &mut problems,
        );
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems.iter().all(|p| p.starts_with("/S/P/")));
    }
}
