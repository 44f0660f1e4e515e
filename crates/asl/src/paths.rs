//! The JSONPath subset of the ASL (JSONPath query language): parsing, lookup and the
//! ResultPath assignment. A leaf module: intrinsics (`intrinsics.rs`) and payload templates
//! (`templates.rs`) build on it, it uses neither.
//!
//! Paths: `$` (state input) or `$$` (context object), then any number of `.name`, `['name']`
//! or `[n]`. Wildcards, filters, slices and recursive descent are valid JSONPath but not
//! supported here: they are rejected when the state machine is loaded, never ignored.

use serde_json::{Map, Value};

/// A runtime evaluation failure: the message becomes the `Cause` of a `States.Runtime` error.
pub type EvalError = String;

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `$`: the data the state works on.
    Input,
    /// `$$`: the context object.
    Context,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Field(String),
    Index(usize),
}

/// A parsed path such as `$.begin.settings['max_concurrency']` or `$$.Map.Item.Value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub root: Root,
    pub segments: Vec<Segment>,
    text: String,
}

impl Path {
    /// `$`
    pub fn root() -> Path {
        Path {
            root: Root::Input,
            segments: Vec::new(),
            text: "$".to_owned(),
        }
    }

    pub fn parse(text: &str) -> Result<Path, String> {
        let bad = |why: &str| Err(format!("path `{text}`: {why}"));
        let (root, mut rest) = if let Some(r) = text.strip_prefix("$$") {
            (Root::Context, r)
        } else if let Some(r) = text.strip_prefix('$') {
            (Root::Input, r)
        } else {
            return bad("must start with `$` or `$$`");
        };
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if rest.starts_with("..") {
                return bad("recursive descent `..` is not supported by the local runner");
            } else if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty() {
                    return bad("empty field name after `.`");
                }
                if name == "*" {
                    return bad("wildcards are not supported by the local runner");
                }
                if let Some(c) = name.chars().find(|c| {
                    c.is_whitespace()
                        || matches!(
                            c,
                            '*' | '@' | '(' | ')' | ',' | '?' | ']' | '\'' | '"' | ':'
                        )
                }) {
                    return bad(&format!("character `{c}` in a field name (use ['...'])"));
                }
                segments.push(Segment::Field(name.to_owned()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let close = match r.find(']') {
                    Some(i) => i,
                    None => return bad("unclosed `[`"),
                };
                let inner = &r[..close];
                if let Some(q) = inner.chars().next().filter(|c| *c == '\'' || *c == '"') {
                    // ['name'] with no escapes; a `]` inside the name is not supported
                    if inner.len() < 2 || !inner.ends_with(q) {
                        return bad("unterminated quoted field name");
                    }
                    let name = &inner[1..inner.len() - 1];
                    if name.contains(q) {
                        return bad("quotes inside a quoted field name are not supported");
                    }
                    segments.push(Segment::Field(name.to_owned()));
                } else if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
                    match inner.parse::<usize>() {
                        Ok(i) => segments.push(Segment::Index(i)),
                        Err(_) => return bad("array index too large"),
                    }
                } else {
                    return bad(&format!(
                        "`[{inner}]` (wildcards, filters, slices, negative indexes) is not supported by the local runner"
                    ));
                }
                rest = &r[close + 1..];
            } else {
                return bad(&format!("unexpected `{rest}`"));
            }
        }
        Ok(Path {
            root,
            segments,
            text: text.to_owned(),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_root(&self) -> bool {
        self.root == Root::Input && self.segments.is_empty()
    }

    /// The value at this path, `None` when it does not exist.
    pub fn get<'a>(&self, input: &'a Value, context: &'a Value) -> Option<&'a Value> {
        let mut v = match self.root {
            Root::Input => input,
            Root::Context => context,
        };
        for s in &self.segments {
            v = match (s, v) {
                (Segment::Field(f), Value::Object(m)) => m.get(f)?,
                (Segment::Index(i), Value::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// Like [`Path::get`], an error naming the path when it does not exist.
    pub fn resolve<'a>(
        &self,
        input: &'a Value,
        context: &'a Value,
    ) -> Result<&'a Value, EvalError> {
        self.get(input, context).ok_or_else(|| {
            let what = match self.root {
                Root::Input => "the input",
                Root::Context => "the context object",
            };
            format!("the JSONPath `{}` could not be found in {what}", self.text)
        })
    }
}

/// A path that may only refer to the state input (`InputPath`, `OutputPath`, `ItemsPath`,
/// `ResultPath`, ...): `$$` is rejected.
pub fn parse_input_path(text: &str) -> Result<Path, String> {
    let p = Path::parse(text)?;
    if p.root == Root::Context {
        return Err(format!(
            "path `{text}`: must refer to the state input (`$`), not the context object"
        ));
    }
    Ok(p)
}

/// A ResultPath: input-rooted, fields only.
pub fn parse_result_path(text: &str) -> Result<Path, String> {
    let p = parse_input_path(text)?;
    if p.segments.iter().any(|s| matches!(s, Segment::Index(_))) {
        return Err(format!(
            "ResultPath `{text}`: array indexes are not supported"
        ));
    }
    Ok(p)
}

/// Applies a ResultPath: `None` (ResultPath null) keeps `input`; the root path replaces it with
/// `result`; otherwise `result` is written at the path, creating missing objects on the way.
pub fn merge_result(input: Value, path: Option<&Path>, result: Value) -> Result<Value, EvalError> {
    let Some(path) = path else {
        return Ok(input);
    };
    if path.is_root() {
        return Ok(result);
    }
    let mut root = input;
    let mut cur = &mut root;
    let last = path.segments.len() - 1;
    for (i, seg) in path.segments.iter().enumerate() {
        let Segment::Field(name) = seg else {
            return Err(format!(
                "ResultPath `{}`: array indexes are not supported",
                path.text
            ));
        };
        let Value::Object(m) = cur else {
            return Err(format!(
                "ResultPath `{}`: cannot write a field into a non-object value",
                path.text
            ));
        };
        if i == last {
            m.insert(name.clone(), result);
            return Ok(root);
        }
        cur = m
            .entry(name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    // unreachable: the loop returns at the last segment
    Err(format!("ResultPath `{}`: empty path", path.text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_supported_paths() {
        let p = Path::parse("$.a.b['c d'][2]").unwrap();
        assert_eq!(p.root, Root::Input);
        assert_eq!(
            p.segments,
            vec![
                Segment::Field("a".into()),
                Segment::Field("b".into()),
                Segment::Field("c d".into()),
                Segment::Index(2)
            ]
        );
        assert_eq!(
            Path::parse("$$.Map.Item.Value").unwrap().root,
            Root::Context
        );
        assert!(Path::parse("$").unwrap().is_root());
        assert!(Path::parse("$$").unwrap().segments.is_empty());
        assert_eq!(
            Path::parse("$[\"x\"]").unwrap().segments,
            vec![Segment::Field("x".into())]
        );
    }

    #[test]
    fn rejects_unsupported_and_malformed_paths() {
        for bad in [
            "a.b",
            "$.",
            "$..a",
            "$.a[*]",
            "$[*].rows",
            "$.a[?(@.x)]",
            "$.a[1:2]",
            "$.a[-1]",
            "$.a[",
            "$['a]",
            "$.a b",
            "$.*",
            "$x",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(parse_input_path("$$.Execution.Id").is_err());
        assert!(parse_result_path("$.a[0]").is_err());
    }

    #[test]
    fn gets_values() {
        let input = json!({"a": {"b": [10, 20]}, "n": null});
        let ctx = json!({"Execution": {"Name": "x"}});
        let get = |p: &str| Path::parse(p).unwrap().get(&input, &ctx).cloned();
        assert_eq!(get("$.a.b[1]"), Some(json!(20)));
        assert_eq!(get("$.n"), Some(Value::Null));
        assert_eq!(get("$.a.c"), None);
        assert_eq!(get("$.a.b[5]"), None);
        assert_eq!(get("$.a.b.c"), None);
        assert_eq!(get("$$.Execution.Name"), Some(json!("x")));
        let err = Path::parse("$.zz")
            .unwrap()
            .resolve(&input, &ctx)
            .unwrap_err();
        assert!(err.contains("`$.zz`"), "{err}");
    }

    #[test]
    fn result_path_merges() {
        let input = json!({"a": 1, "o": {"x": 1}});
        let rp = |p: &str| parse_result_path(p).unwrap();
        assert_eq!(merge_result(input.clone(), None, json!(9)).unwrap(), input);
        assert_eq!(
            merge_result(input.clone(), Some(&rp("$")), json!(9)).unwrap(),
            json!(9)
        );
        assert_eq!(
            merge_result(input.clone(), Some(&rp("$.r")), json!(9)).unwrap(),
            json!({"a": 1, "o": {"x": 1}, "r": 9})
        );
        assert_eq!(
            merge_result(input.clone(), Some(&rp("$.o.y.z")), json!(9)).unwrap(),
            json!({"a": 1, "o": {"x": 1, "y": {"z": 9}}})
        );
        assert_eq!(
            merge_result(input.clone(), Some(&rp("$.a")), json!({"b": 2})).unwrap(),
            json!({"a": {"b": 2}, "o": {"x": 1}})
        );
        assert!(merge_result(input.clone(), Some(&rp("$.a.b")), json!(9)).is_err());
        assert!(merge_result(json!([1]), Some(&rp("$.a")), json!(9)).is_err());
    }
}
