//! Intrinsic functions (`States.Format('{}-w{}', $.a, 1)`) of the JSONPath query language.
//!
//! Parsed and checked (function name, argument count, literal argument types, Format
//! placeholders) when the state machine is loaded; evaluated against the state's data and the
//! context object. Supported: States.Format, States.StringToJson, States.JsonToString,
//! States.Array, States.ArrayRange, States.ArrayContains, States.ArrayLength,
//! States.ArrayGetItem, States.MathAdd, States.UUID, States.JsonMerge. The other functions of
//! the ASL (States.Hash, States.Base64Encode, ...) are rejected at load.

use serde_json::{Map, Number, Value};

use super::paths::{EvalError, Path};

/// ArrayRange's limit on AWS.
const MAX_RANGE_ITEMS: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayRange,
    ArrayContains,
    ArrayLength,
    ArrayGetItem,
    MathAdd,
    Uuid,
    JsonMerge,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "States.Format" => Func::Format,
            "States.StringToJson" => Func::StringToJson,
            "States.JsonToString" => Func::JsonToString,
            "States.Array" => Func::Array,
            "States.ArrayRange" => Func::ArrayRange,
            "States.ArrayContains" => Func::ArrayContains,
            "States.ArrayLength" => Func::ArrayLength,
            "States.ArrayGetItem" => Func::ArrayGetItem,
            "States.MathAdd" => Func::MathAdd,
            "States.UUID" => Func::Uuid,
            "States.JsonMerge" => Func::JsonMerge,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Func::Format => "States.Format",
            Func::StringToJson => "States.StringToJson",
            Func::JsonToString => "States.JsonToString",
            Func::Array => "States.Array",
            Func::ArrayRange => "States.ArrayRange",
            Func::ArrayContains => "States.ArrayContains",
            Func::ArrayLength => "States.ArrayLength",
            Func::ArrayGetItem => "States.ArrayGetItem",
            Func::MathAdd => "States.MathAdd",
            Func::Uuid => "States.UUID",
            Func::JsonMerge => "States.JsonMerge",
        }
    }

    /// (min, max) argument count.
    fn arity(self) -> (usize, usize) {
        match self {
            Func::Format => (1, usize::MAX),
            Func::Array => (0, usize::MAX),
            Func::StringToJson | Func::JsonToString | Func::ArrayLength => (1, 1),
            Func::ArrayContains | Func::ArrayGetItem | Func::MathAdd => (2, 2),
            Func::ArrayRange | Func::JsonMerge => (3, 3),
            Func::Uuid => (0, 0),
        }
    }
}

/// A string literal: `value` has every escape resolved; `raw` keeps `\{` and `\}` so that
/// States.Format can tell literal braces from placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Str {
    pub value: String,
    raw: Vec<FormatPiece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum FormatPiece {
    Text(String),
    Placeholder,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Str(Str),
    Literal(Value),
    Path(Path),
    Call(Call),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub func: Func,
    pub args: Vec<Arg>,
}

/// Parses and checks one call such as `States.ArrayRange(0, States.MathAdd($.n, -1), 1)`.
pub fn parse(text: &str) -> Result<Call, String> {
    let mut p = Parser { s: text, i: 0 };
    let call = p.call().map_err(|e| format!("intrinsic `{text}`: {e}"))?;
    p.ws();
    if p.i != text.len() {
        return Err(format!(
            "intrinsic `{text}`: unexpected `{}` after the call",
            &text[p.i..]
        ));
    }
    Ok(call)
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }

    fn ws(&mut self) {
        let r = self.rest();
        self.i += r.len() - r.trim_start().len();
    }

    fn call(&mut self) -> Result<Call, String> {
        let r = self.rest();
        let end = r.find('(').ok_or("missing `(`")?;
        let name = r[..end].trim();
        let func = Func::from_name(name).ok_or_else(|| {
            format!("`{name}` is not an intrinsic function supported by the local runner")
        })?;
        self.i += end + 1;
        let mut args = Vec::new();
        self.ws();
        if self.rest().starts_with(')') {
            self.i += 1;
        } else {
            loop {
                self.ws();
                args.push(self.arg()?);
                self.ws();
                let r = self.rest();
                if r.starts_with(',') {
                    self.i += 1;
                } else if r.starts_with(')') {
                    self.i += 1;
                    break;
                } else if r.is_empty() {
                    return Err(format!("missing `)` closing {name}"));
                } else {
                    return Err(format!("expected `,` or `)` in {name}, found `{r}`"));
                }
            }
        }
        let call = Call { func, args };
        call.check()?;
        Ok(call)
    }

    fn arg(&mut self) -> Result<Arg, String> {
        let r = self.rest();
        if r.starts_with('\'') {
            return self.string().map(Arg::Str);
        }
        if r.starts_with("States.") {
            return self.call().map(Arg::Call);
        }
        // a path, number, true/false/null: up to the next `,` or `)` outside brackets/quotes
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        let mut end = r.len();
        for (k, c) in r.char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') if depth > 0 => quote = Some(c),
                (None, '[') => depth += 1,
                (None, ']') => depth = depth.saturating_sub(1),
                (None, ',' | ')') if depth == 0 => {
                    end = k;
                    break;
                }
                _ => {}
            }
        }
        let token = r[..end].trim();
        self.i += end;
        if token.is_empty() {
            return Err("empty argument".to_owned());
        }
        if token.starts_with('$') {
            return Path::parse(token).map(Arg::Path);
        }
        match serde_json::from_str::<Value>(token) {
            Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => Ok(Arg::Literal(v)),
            _ => Err(format!(
                "argument `{token}` is not a 'string', number, true, false, null, path or intrinsic"
            )),
        }
    }

    /// `'...'` with the escapes `\'`, `\\`, `\{`, `\}`.
    fn string(&mut self) -> Result<Str, String> {
        let r = self.rest();
        let mut value = String::new();
        let mut raw = Vec::new();
        let mut text = String::new();
        let mut chars = r.char_indices().skip(1);
        while let Some((k, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e @ ('\'' | '\\' | '{' | '}'))) => {
                        value.push(e);
                        text.push(e);
                    }
                    Some((_, e)) => {
                        return Err(format!("unknown escape `\\{e}` in a string literal"))
                    }
                    None => break,
                },
                '\'' => {
                    if !text.is_empty() {
                        raw.push(FormatPiece::Text(text));
                    }
                    self.i += k + 1;
                    return Ok(Str { value, raw });
                }
                '{' if r[k + 1..].starts_with('}') => {
                    chars.next();
                    value.push_str("{}");
                    if !text.is_empty() {
                        raw.push(FormatPiece::Text(std::mem::take(&mut text)));
                    }
                    raw.push(FormatPiece::Placeholder);
                }
                c => {
                    value.push(c);
                    text.push(c);
                }
            }
        }
        Err("unterminated string literal".to_owned())
    }
}

impl Call {
    /// Load-time checks: argument count and the types of literal arguments.
    fn check(&self) -> Result<(), String> {
        let name = self.func.name();
        let (min, max) = self.func.arity();
        let n = self.args.len();
        if n < min || n > max {
            let want = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(format!("{name} takes {want} arguments, got {n}"));
        }
        let literal_int = |a: &Arg| match a {
            Arg::Literal(Value::Number(x)) => x.as_i64().is_some(),
            Arg::Literal(_) | Arg::Str(_) => false,
            _ => true,
        };
        match self.func {
            Func::Format => {
                let Some(Arg::Str(t)) = self.args.first() else {
                    return Err(
                        "States.Format's first argument must be a string literal".to_owned()
                    );
                };
                let holes = t
                    .raw
                    .iter()
                    .filter(|p| **p == FormatPiece::Placeholder)
                    .count();
                if holes != n - 1 {
                    return Err(format!(
                        "States.Format has {holes} `{{}}` placeholders but {} values",
                        n - 1
                    ));
                }
            }
            Func::ArrayRange | Func::MathAdd => {
                if let Some(i) = self.args.iter().position(|a| !literal_int(a)) {
                    return Err(format!("{name}: argument {} must be an integer", i + 1));
                }
            }
            Func::ArrayGetItem if !literal_int(&self.args[1]) => {
                return Err("States.ArrayGetItem: the index must be an integer".to_owned());
            }
            Func::JsonMerge if !matches!(self.args[2], Arg::Literal(Value::Bool(false))) => {
                return Err(
                    "States.JsonMerge: only a shallow merge (third argument false) is supported"
                        .to_owned(),
                );
            }
            Func::StringToJson if matches!(self.args[0], Arg::Literal(_)) => {
                return Err("States.StringToJson takes a string".to_owned());
            }
            _ => {}
        }
        Ok(())
    }

    pub fn eval(&self, input: &Value, context: &Value) -> Result<Value, EvalError> {
        let name = self.func.name();
        let fail = |why: String| format!("{name}: {why}");
        let args = self
            .args
            .iter()
            .map(|a| a.eval(input, context))
            .collect::<Result<Vec<_>, _>>()?;
        let int = |k: usize| -> Result<i64, EvalError> {
            args[k].as_i64().ok_or_else(|| {
                fail(format!(
                    "argument {} must be an integer, got {}",
                    k + 1,
                    args[k]
                ))
            })
        };
        let array = |k: usize| -> Result<&Vec<Value>, EvalError> {
            args[k]
                .as_array()
                .ok_or_else(|| fail(format!("argument {} must be an array", k + 1)))
        };
        Ok(match self.func {
            Func::Format => {
                let Some(Arg::Str(t)) = self.args.first() else {
                    return Err(fail("the template must be a string literal".to_owned()));
                };
                let mut out = String::new();
                let mut values = args.iter().skip(1);
                for piece in &t.raw {
                    match piece {
                        FormatPiece::Text(s) => out.push_str(s),
                        FormatPiece::Placeholder => match values.next() {
                            Some(Value::String(s)) => out.push_str(s),
                            Some(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => {
                                out.push_str(&v.to_string())
                            }
                            Some(_) => {
                                return Err(fail(
                                    "values must be strings, numbers, booleans or null".to_owned(),
                                ))
                            }
                            None => return Err(fail("too few values".to_owned())),
                        },
                    }
                }
                Value::String(out)
            }
            Func::StringToJson => {
                let s = args[0]
                    .as_str()
                    .ok_or_else(|| fail("the argument must be a string".to_owned()))?;
                serde_json::from_str(s).map_err(|e| fail(format!("not JSON: {e}")))?
            }
            Func::JsonToString => Value::String(args[0].to_string()),
            Func::Array => Value::Array(args),
            Func::ArrayRange => {
                let (start, end, step) = (int(0)?, int(1)?, int(2)?);
                if step == 0 {
                    return Err(fail("the step must not be 0".to_owned()));
                }
                let count = if (step > 0 && end < start) || (step < 0 && end > start) {
                    0
                } else {
                    (end - start) / step + 1
                };
                if count > MAX_RANGE_ITEMS {
                    return Err(fail(format!("{count} items, at most {MAX_RANGE_ITEMS}")));
                }
                Value::Array((0..count).map(|k| Value::from(start + k * step)).collect())
            }
            Func::ArrayContains => Value::Bool(array(0)?.contains(&args[1])),
            Func::ArrayLength => Value::from(array(0)?.len()),
            Func::ArrayGetItem => {
                let a = array(0)?;
                let k = int(1)?;
                usize::try_from(k)
                    .ok()
                    .and_then(|k| a.get(k))
                    .cloned()
                    .ok_or_else(|| fail(format!("index {k} out of range for {} items", a.len())))?
            }
            Func::MathAdd => {
                let sum = int(0)?
                    .checked_add(int(1)?)
                    .ok_or_else(|| fail("overflow".to_owned()))?;
                Value::Number(Number::from(sum))
            }
            Func::Uuid => Value::String(uuid_v4()),
            Func::JsonMerge => {
                let (Value::Object(a), Value::Object(b)) = (&args[0], &args[1]) else {
                    return Err(fail("both arguments must be objects".to_owned()));
                };
                let mut m: Map<String, Value> = a.clone();
                for (k, v) in b {
                    m.insert(k.clone(), v.clone());
                }
                Value::Object(m)
            }
        })
    }
}

impl Arg {
    fn eval(&self, input: &Value, context: &Value) -> Result<Value, EvalError> {
        match self {
            Arg::Str(s) => Ok(Value::String(s.value.clone())),
            Arg::Literal(v) => Ok(v.clone()),
            Arg::Path(p) => p.resolve(input, context).cloned(),
            Arg::Call(c) => c.eval(input, context),
        }
    }
}

/// A random (version 4) UUID.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = fastrand::u128(..).to_le_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(text: &str, input: Value) -> Result<Value, String> {
        parse(text)
            .unwrap()
            .eval(&input, &json!({"Execution": {"Name": "ex-1"}}))
    }

    #[test]
    fn array_range_with_nested_math_add() {
        let f = "States.ArrayRange(0, States.MathAdd($.plan.chunk_count, -1), 1)";
        assert_eq!(
            eval(f, json!({"plan": {"chunk_count": 3}})).unwrap(),
            json!([0, 1, 2])
        );
        assert_eq!(
            eval(f, json!({"plan": {"chunk_count": 1}})).unwrap(),
            json!([0])
        );
        assert_eq!(
            eval(f, json!({"plan": {"chunk_count": 0}})).unwrap(),
            json!([])
        );
        assert_eq!(
            eval("States.ArrayRange(10, 0, -5)", json!({})).unwrap(),
            json!([10, 5, 0])
        );
        assert!(eval("States.ArrayRange(0, 1000, 1)", json!({})).is_err());
        assert!(eval("States.ArrayRange(0, 3, 0)", json!({})).is_err());
        assert!(eval(f, json!({"plan": {"chunk_count": "3"}})).is_err());
        assert!(eval(f, json!({"plan": {}})).is_err());
    }

    #[test]
    fn array_contains_length_get_item_and_array() {
        let input = json!({"t": ["schema", "full"]});
        assert_eq!(
            eval("States.ArrayContains($.t, 'full')", input.clone()).unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("States.ArrayContains($.t, 'incremental')", input.clone()).unwrap(),
            json!(false)
        );
        assert_eq!(
            eval("States.ArrayLength($.t)", input.clone()).unwrap(),
            json!(2)
        );
        assert_eq!(
            eval("States.ArrayGetItem($.t, 1)", input.clone()).unwrap(),
            json!("full")
        );
        assert!(eval("States.ArrayGetItem($.t, 2)", input.clone()).is_err());
        assert!(eval("States.ArrayLength($.nope)", input.clone()).is_err());
        assert!(eval("States.ArrayContains('x', 'x')", input.clone()).is_err());
        assert_eq!(
            eval("States.Array(1, 'a', true, null, $.t)", input).unwrap(),
            json!([1, "a", true, null, ["schema", "full"]])
        );
    }

    #[test]
    fn format_with_escapes_and_placeholders() {
        assert_eq!(
            eval("States.Format('{}-w{}', $$.Execution.Name, 2)", json!({})).unwrap(),
            json!("ex-1-w2")
        );
        assert_eq!(
            eval(
                r"States.Format('it\'s \{literal\} {} \\ ,)', $.a)",
                json!({"a": true})
            )
            .unwrap(),
            json!(r"it's {literal} true \ ,)")
        );
        assert_eq!(
            eval("States.Format('none')", json!({})).unwrap(),
            json!("none")
        );
        assert!(eval("States.Format('{}', $.o)", json!({"o": {}})).is_err());
        assert!(parse("States.Format('{} {}', $.a)").is_err());
        assert!(parse("States.Format($.a)").is_err());
    }

    #[test]
    fn json_string_round_trip_and_merge() {
        let input = json!({"o": {"a": 1, "b": [1, 2]}, "o2": {"b": 3}});
        let s = eval("States.JsonToString($.o)", input.clone()).unwrap();
        assert_eq!(s, json!(r#"{"a":1,"b":[1,2]}"#));
        assert_eq!(
            eval(
                "States.StringToJson(States.JsonToString($.o))",
                input.clone()
            )
            .unwrap(),
            input["o"]
        );
        assert!(eval("States.StringToJson('not json')", json!({})).is_err());
        assert_eq!(
            eval("States.JsonMerge($.o, $.o2, false)", input).unwrap(),
            json!({"a": 1, "b": 3})
        );
        assert!(parse("States.JsonMerge($.o, $.o2, true)").is_err());
    }

    #[test]
    fn math_add_and_uuid() {
        assert_eq!(
            eval("States.MathAdd($.n, 1)", json!({"n": 41})).unwrap(),
            json!(42)
        );
        assert_eq!(
            eval("States.MathAdd(-1, -1)", json!({})).unwrap(),
            json!(-2)
        );
        assert!(eval("States.MathAdd($.n, 1)", json!({"n": 1.5})).is_err());
        assert!(parse("States.MathAdd('1', 1)").is_err());
        let u = eval("States.UUID()", json!({})).unwrap();
        let u = u.as_str().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(uuid_v4(), uuid_v4());
    }

    #[test]
    fn rejects_unknown_functions_arity_and_syntax() {
        for bad in [
            "States.Hash($.a, 'MD5')",
            "States.Nope()",
            "States.MathAdd(1)",
            "States.UUID(1)",
            "States.ArrayLength($.a",
            "States.ArrayLength($.a) x",
            "States.ArrayLength(foo)",
            "States.ArrayLength($.a[*])",
            "States.Format('unterminated)",
            "States.ArrayContains($.a, 'x' 'y')",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(parse("States.ArrayLength( $['a,b'] )").is_ok());
    }
}
