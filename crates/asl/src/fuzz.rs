//! The harness of the `asl_path` fuzz target (`fuzz/`), here so that the target and the corpus
//! replay test below run the very same code. Not part of the runner's API.
//!
//! Input: a payload-template expression (a JSONPath or an intrinsic call) on the first line;
//! the rest, when it is JSON, is the state input (else a sample input is used). The expression
//! is parsed as a template value, an InputPath and a ResultPath, evaluated against the input
//! and a context object, and merged as a ResultPath would be.

use serde_json::{json, Value};

use super::intrinsics;
use super::paths::{self, Path};
use super::templates::{Expr, Template};

/// Runs one fuzz input; never panics on any input (that is what the fuzzer checks).
pub fn path_expr(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (expr, rest) = text.split_once('\n').unwrap_or((text, ""));
    let input = serde_json::from_str::<Value>(rest).unwrap_or_else(|_| sample_input());
    let context = sample_context(&input);

    if let Ok(e) = Expr::parse(expr) {
        let _ = e.eval(&input, &context);
    }
    // The same text as a `.$` field of a template, as the loader compiles Parameters.
    let mut problems = Vec::new();
    let template = Template::compile(&json!({ "v.$": expr, "k": [expr] }), "", &mut problems);
    if problems.is_empty() {
        let _ = template.eval(&input, &context);
    }
    if let Ok(call) = intrinsics::parse(expr) {
        let _ = call.eval(&input, &context);
    }
    if let Ok(p) = Path::parse(expr) {
        let _ = p.get(&input, &context);
    }
    let _ = paths::parse_input_path(expr);
    if let Ok(p) = paths::parse_result_path(expr) {
        let _ = paths::merge_result(input.clone(), Some(&p), json!({"r": 1}));
    }
}

fn sample_input() -> Value {
    json!({
        "config": {"migration_id": "m1", "source": {"host": "db"}},
        "mode": "run",
        "begin": {
            "lease_owner": "exec-1",
            "settings": {"migration_types": ["schema", "full", "incremental"], "max_concurrency": 4}
        },
        "tables": [{"name": "t1", "chunks": 3}, {"name": "t2", "chunks": 0}],
        "n": 3,
        "s": "{\"a\": [1, 2]}",
        "error": null
    })
}

fn sample_context(input: &Value) -> Value {
    json!({
        "Execution": {
            "Id": "arn:aws:states:local:0:execution:m:e1",
            "Name": "e1",
            "Input": input,
            "StartTime": "2026-01-01T00:00:00Z"
        },
        "StateMachine": {"Id": "arn:aws:states:local:0:stateMachine:m", "Name": "m"},
        "State": {"Name": "S", "EnteredTime": "2026-01-01T00:00:00Z", "RetryCount": 0},
        "Map": {"Item": {"Index": 0, "Value": {"name": "t1"}}}
    })
}

#[cfg(test)]
mod tests {
    /// Replays the committed corpus of the `asl_path` fuzz target (stable, fast).
    #[test]
    fn fuzz_corpus_asl_path_replays_without_panic() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/asl_path");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
            let data = std::fs::read(entry.expect("corpus entry").path()).expect("corpus file");
            super::path_expr(&data);
            n += 1;
        }
        assert!(n > 0, "no corpus files in {}", dir.display());
    }
}
