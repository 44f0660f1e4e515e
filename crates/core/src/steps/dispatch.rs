//! One entry point for every step, JSON in and JSON out: what the Lambda functions and the
//! local runner call. Input: `{"config": {…}, …step fields}`; see [`StepInput`].

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::budget::{Budget, TABLE_STEP_MARGIN};
use super::context::Context;
use super::error::{Class, ErrorName, StepError};
use super::lifecycle::{is_continuation, state_store};
use super::verify::VerifyProgress;
use super::window;
use crate::config::{self, SecretResolver};

/// The steps of design §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Precheck,
    CreateSchema,
    Begin,
    PlanChunks,
    CopyChunk,
    Verify,
    BinlogBatch,
    Finish,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Precheck,
        Step::CreateSchema,
        Step::Begin,
        Step::PlanChunks,
        Step::CopyChunk,
        Step::Verify,
        Step::BinlogBatch,
        Step::Finish,
    ];

    /// The function/resource name: `Precheck`, `CreateSchema`, …
    pub fn resource_name(self) -> &'static str {
        match self {
            Step::Precheck => "Precheck",
            Step::CreateSchema => "CreateSchema",
            Step::Begin => "Begin",
            Step::PlanChunks => "PlanChunks",
            Step::CopyChunk => "CopyChunk",
            Step::Verify => "Verify",
            Step::BinlogBatch => "BinlogBatch",
            Step::Finish => "Finish",
        }
    }

    pub fn from_resource_name(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.resource_name() == name)
    }
}

/// Fields a step may read besides the config.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StepInput {
    #[serde(default)]
    pub execution_name: Option<String>,
    #[serde(default)]
    pub lease_owner: Option<String>,
    #[serde(default)]
    pub chunk_index: Option<u32>,
    /// Finish: the error that ended the execution (`{"Error", "Cause"}` as Step Functions
    /// passes it).
    #[serde(default)]
    pub error: Option<Value>,
    /// Finish: `{status: succeeded|failed|continued, next_execution_name?}`.
    #[serde(default)]
    pub outcome: Option<Value>,
    /// Precheck, CreateSchema: the source table to continue at (the previous call's
    /// `next_table`); `None` = from the first.
    #[serde(default)]
    pub next_table: Option<String>,
    /// Verify: the previous call's `progress` (`None` = from the first chunk).
    #[serde(default)]
    pub progress: Option<VerifyProgress>,
}

/// Time CopyChunk keeps for itself before the invocation's deadline: the last page's writes,
/// the cursor save and the response.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(60);

/// Runs `step` on `input` with no deadline (the local runner): CopyChunk stops at
/// [`super::copy::DEFAULT_BUDGET`].
pub async fn run_step(
    step: Step,
    input: Value,
    resolver: &dyn SecretResolver,
) -> Result<Value, StepError> {
    run_step_until(step, input, resolver, None).await
}

/// CopyChunk's time budget: the invocation's deadline minus [`DEADLINE_MARGIN`] (at least a
/// few seconds, so it always copies a page), else the default budget.
pub fn copy_budget(deadline: Option<SystemTime>, now: SystemTime) -> Duration {
    match deadline {
        None => super::copy::DEFAULT_BUDGET,
        Some(d) => d
            .duration_since(now)
            .unwrap_or_default()
            .saturating_sub(DEADLINE_MARGIN)
            .max(MIN_BUDGET),
    }
}

const MIN_BUDGET: Duration = Duration::from_secs(5);

/// Runs `step` on `input`; `deadline` is when the invocation is cut off (Lambda's). Errors
/// carry the design's names; retriable ones pass through the configured retry windows.
pub async fn run_step_until(
    step: Step,
    input: Value,
    resolver: &dyn SecretResolver,
    deadline: Option<SystemTime>,
) -> Result<Value, StepError> {
    let cfg_value = input.get("config").ok_or_else(|| {
        StepError::new(ErrorName::ConfigInvalid, "the step input has no \"config\"")
    })?;
    let cfg = config::from_json_value(cfg_value)
        .map_err(|e| StepError::new(ErrorName::ConfigInvalid, e.to_string()))?;
    let fields: StepInput = serde_json::from_value(input.clone())
        .map_err(|e| StepError::new(ErrorName::ConfigInvalid, format!("bad step input: {e}")))?;
    let ctx = Context::new(cfg, resolver).await?;
    let outcome = run_with_context(step, &ctx, &fields, deadline).await;
    // A precheck that passed or failed for good has no window to count; an outage during
    // the precheck of a migration under way (a restart, a continuation) has.
    let outage = step == Step::Precheck
        && outcome
            .as_ref()
            .is_err_and(|e| e.name == ErrorName::ConnectionFailed);
    if step == Step::Finish || (step == Step::Precheck && !outage) {
        return outcome;
    }
    let store = state_store(&ctx);
    window::guard(
        &store,
        ctx.config.retry.connection_minutes,
        ctx.config.retry.other_minutes,
        outcome,
    )
    .await
}

/// Whether the migration has begun (a chunk plan or a status exists; no state table: not
/// begun). When the state store cannot be reached, only the execution's name can tell: a
/// continue-as-new execution (`…-cN`) continues a migration under way, and its outage is
/// retried in the window; a first execution gets the precheck report at once (a wrong
/// endpoint in a new config must not be retried for hours).
async fn under_way(ctx: &Context, execution_name: Option<&str>) -> bool {
    let store = state_store(ctx);
    let begun = match store.plan().await {
        Ok(Some(_)) => Ok(true),
        Ok(None) => store.status().await.map(|s| s.is_some()),
        Err(e) => Err(e),
    };
    match begun {
        Ok(b) => b,
        Err(e) => e.class() == Class::Connection && execution_name.is_some_and(is_continuation),
    }
}

fn to_json<T: Serialize>(v: T) -> Result<Value, StepError> {
    serde_json::to_value(v).map_err(|e| StepError::fatal(format!("cannot encode step output: {e}")))
}

async fn run_with_context(
    step: Step,
    ctx: &Context,
    input: &StepInput,
    deadline: Option<SystemTime>,
) -> Result<Value, StepError> {
    let owner = || {
        input
            .lease_owner
            .clone()
            .or_else(|| input.execution_name.clone())
            .ok_or_else(|| {
                StepError::new(
                    ErrorName::ConfigInvalid,
                    "the step input names no lease_owner or execution_name",
                )
            })
    };
    match step {
        Step::Precheck => {
            // An execution that continues a run (continue-as-new) was handed the lease by
            // one whose precheck passed: nothing to check again.
            if let Some(name) = input.execution_name.as_deref() {
                if super::precheck::continues_run(ctx, name).await {
                    return Ok(json!({
                        "passed": true,
                        "items": [{"name": "continued", "status": "passed", "fix": "",
                                   "detail": "this execution continues a run whose precheck passed"}],
                        "done": true,
                        "next_table": null,
                        "continued": true,
                    }));
                }
            }
            let budget = Budget::until(deadline, TABLE_STEP_MARGIN);
            let slice =
                super::precheck::precheck_from(ctx, input.next_table.as_deref(), &budget).await;
            // An outage in a migration under way is retried in the window, not final.
            if let Some(why) = &slice.report.unreachable {
                if under_way(ctx, input.execution_name.as_deref()).await {
                    return Err(StepError::new(
                        ErrorName::ConnectionFailed,
                        format!("precheck of a migration under way: {why}"),
                    ));
                }
            }
            let mut out = to_json(bounded_precheck(slice.report))?;
            out["done"] = json!(slice.next_table.is_none());
            out["next_table"] = json!(slice.next_table);
            out["continued"] = json!(false);
            Ok(out)
        }
        Step::CreateSchema => {
            // Counts only: the tables' detail (logged, and printed by `tsmigrate
            // create-schema`) would grow the payload past Step Functions' 256 KiB at a few
            // thousand tables (tests/integration/runner_scale.rs). A new table may take up to
            // a minute to accept writes: keep that much more in hand.
            let budget = Budget::until(deadline, TABLE_STEP_MARGIN * 2);
            let out =
                super::create_schema::create_schema_from(ctx, input.next_table.as_deref(), &budget)
                    .await?;
            let created = out
                .tables
                .iter()
                .filter(|t| t.outcome == super::create_schema::TableOutcome::Created)
                .count();
            Ok(json!({
                "tables": out.tables.len(),
                "created": created,
                "existing": out.tables.len() - created,
                "done": out.next_table.is_none(),
                "next_table": out.next_table,
            }))
        }
        Step::Begin => to_json(super::begin(ctx, &owner()?).await?),
        Step::Finish => {
            let error = input
                .error
                .as_ref()
                .filter(|e| !e.is_null())
                .map(error_text);
            let continue_as = input
                .outcome
                .as_ref()
                .filter(|o| o.get("status").and_then(Value::as_str) == Some("continued"))
                .and_then(|o| o.get("next_execution_name"))
                .and_then(Value::as_str);
            to_json(
                super::finish(
                    ctx,
                    input.lease_owner.as_deref(),
                    error.as_deref(),
                    continue_as,
                )
                .await?,
            )
        }
        Step::PlanChunks => to_json(
            super::plan::plan_chunks_until(ctx, &Budget::until(deadline, TABLE_STEP_MARGIN))
                .await?,
        ),
        Step::CopyChunk => {
            let index = input.chunk_index.ok_or_else(|| {
                StepError::new(ErrorName::ConfigInvalid, "CopyChunk needs chunk_index")
            })?;
            let budget = copy_budget(deadline, SystemTime::now());
            to_json(
                super::copy::copy_chunk_with_budget(
                    ctx,
                    index,
                    input.lease_owner.as_deref(),
                    budget,
                )
                .await?,
            )
        }
        Step::Verify => {
            let (out, progress) = match input.chunk_index {
                Some(i) => {
                    let out = super::verify::verify(ctx, Some(i)).await?;
                    let progress = VerifyProgress {
                        next_chunk: i + 1,
                        done: true,
                        matched: out.matched,
                        mismatched: out.missing + out.different + out.extra,
                        dirty: out.dirty,
                        ..VerifyProgress::default()
                    };
                    (out, progress)
                }
                None => {
                    let budget = Budget::until(deadline, TABLE_STEP_MARGIN);
                    let from = input.progress.clone().unwrap_or_default();
                    super::verify::verify_from(ctx, from, &budget).await?
                }
            };
            let mut v = to_json(out)?;
            v["progress"] = to_json(progress)?;
            Ok(v)
        }
        Step::BinlogBatch => {
            to_json(super::binlog::binlog_batch(ctx, input.lease_owner.as_deref(), deadline).await?)
        }
    }
}

/// `{"Error": "...", "Cause": "..."}` → one line.
fn error_text(v: &Value) -> String {
    let e = v.get("Error").and_then(Value::as_str).unwrap_or("error");
    let c = v.get("Cause").and_then(Value::as_str).unwrap_or("");
    if c.is_empty() {
        e.to_owned()
    } else {
        format!("{e}: {c}")
    }
}

/// A precheck item's detail at most this long in a step's output (a failure listing every one
/// of thousands of tables would crowd the 256 KiB payload limit); `tsmigrate precheck` prints
/// it whole.
const MAX_DETAIL: usize = 1_000;

fn bounded_precheck(mut report: super::PrecheckReport) -> super::PrecheckReport {
    for item in &mut report.items {
        if item.detail.len() > MAX_DETAIL {
            let mut end = MAX_DETAIL;
            while !item.detail.is_char_boundary(end) {
                end -= 1;
            }
            let more = item.detail.len() - end;
            item.detail.truncate(end);
            item.detail.push_str(&format!(
                "… ({more} more bytes: `tsmigrate precheck` prints the whole list)"
            ));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_budget_follows_the_invocation_deadline() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(copy_budget(None, now), super::super::copy::DEFAULT_BUDGET);
        // Lambda's 15 minutes: 14 left for copying.
        let d = now + Duration::from_secs(900);
        assert_eq!(copy_budget(Some(d), now), Duration::from_secs(840));
        // Nearly out of time, or past it: still one short page's worth.
        assert_eq!(
            copy_budget(Some(now + Duration::from_secs(30)), now),
            MIN_BUDGET
        );
        assert_eq!(
            copy_budget(Some(now - Duration::from_secs(1)), now),
            MIN_BUDGET
        );
    }

    #[test]
    fn long_precheck_details_are_cut_at_a_char_boundary_with_a_pointer() {
        let report = super::super::PrecheckReport {
            passed: false,
            items: vec![super::super::CheckItem {
                name: "select_privilege".into(),
                status: super::super::Status::Failed,
                detail: format!("no SELECT on: {}", "täble, ".repeat(400)),
                fix: String::new(),
            }],
            unreachable: None,
        };
        let bounded = bounded_precheck(report);
        let d = &bounded.items[0].detail;
        assert!(d.len() < MAX_DETAIL + 100, "{}", d.len());
        assert!(
            d.ends_with("`tsmigrate precheck` prints the whole list)"),
            "{d}"
        );
    }
}
