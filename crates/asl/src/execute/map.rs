//! A Map state's attempt: ItemsPath, MaxConcurrency(Path) and ItemSelector, then the
//! iterations run concurrently (each a scope of its own, with its own trail), the first
//! failure failing the Map, and the results merged like a Task's.

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::super::asl::{Concurrency, MapState, State};
use super::{effective_input, merge, push, run_scope, state_output, take, Exec, Failure, Trail};

pub(super) async fn attempt_map(
    exec: &Exec<'_>,
    name: &str,
    state: &State,
    m: &MapState,
    input: &Value,
    ctx: &Value,
    trail: &Trail,
) -> Result<Value, Failure> {
    let eff = effective_input(name, state, input, ctx)?;
    let items = match m.items_path.resolve(&eff, ctx) {
        Ok(Value::Array(a)) => a.clone(),
        Ok(other) => {
            return Err(Failure::runtime(
                name,
                format!(
                    "ItemsPath `{}` is {other}, not an array",
                    m.items_path.text()
                ),
            ))
        }
        Err(e) => return Err(Failure::runtime(name, format!("ItemsPath: {e}"))),
    };
    let limit = match &m.max_concurrency {
        Concurrency::Fixed(n) => *n,
        Concurrency::Path(p) => {
            let v = p
                .resolve(&eff, ctx)
                .map_err(|e| Failure::runtime(name, format!("MaxConcurrencyPath: {e}")))?;
            v.as_u64().ok_or_else(|| {
                Failure::runtime(
                    name,
                    format!(
                        "MaxConcurrencyPath `{}` is {v}, not an integer >= 0",
                        p.text()
                    ),
                )
            })?
        }
    };
    let limit = match usize::try_from(limit) {
        Ok(0) | Err(_) => items.len().max(1),
        Ok(n) => n,
    };
    let mut inputs = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let iteration_input = match &m.item_selector {
            Some(t) => {
                let mut item_ctx = ctx.clone();
                if let Value::Object(cm) = &mut item_ctx {
                    cm.insert(
                        "Map".to_owned(),
                        json!({"Item": {"Index": i, "Value": item}}),
                    );
                }
                t.eval(&eff, &item_ctx)
                    .map_err(|e| Failure::runtime(name, format!("ItemSelector (item {i}): {e}")))?
            }
            None => item,
        };
        inputs.push(iteration_input);
    }
    // MapStateStarted and MapStateSucceeded/Failed, and per iteration started and ended.
    exec.events(2 + 2 * inputs.len());
    let slots: Vec<Trail> = inputs.iter().map(|_| Trail::default()).collect();
    let mut results: Vec<Value> = vec![Value::Null; inputs.len()];
    let outcome = {
        let mut runs = stream::iter(inputs.into_iter().enumerate().map(|(i, it)| {
            let slot = &slots[i];
            let processor = &m.processor;
            async move { (i, run_scope(exec, processor, it, slot).await) }
        }))
        .buffer_unordered(limit);
        let mut outcome = Ok(());
        while let Some((i, r)) = runs.next().await {
            match r {
                Ok(v) => results[i] = v,
                Err(f) => {
                    // like AWS: the first failed iteration fails the Map, the others stop
                    outcome = Err(f);
                    break;
                }
            }
        }
        outcome
    };
    for (i, slot) in slots.into_iter().enumerate() {
        for entry in take(slot) {
            push(trail, format!("{name}/{i}/{entry}"));
        }
    }
    outcome?;
    let merged = merge(name, state, input, Value::Array(results), ctx)?;
    state_output(exec, name, state, merged, ctx)
}
