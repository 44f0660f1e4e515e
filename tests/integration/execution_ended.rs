//! The execution-ended handler against the local Tablestore server: what a timed-out, aborted
//! or failed execution leaves in the migration's state store, set up with the real Begin and
//! Finish. The config references its secrets by ARN (answered in memory, as Secrets Manager
//! would); only the Tablestore keys are there, so a handler that touched the source's secret
//! would fail.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use tsmigrate_core::config::{self, LocalSecrets, SecretString};
use tsmigrate_core::state::{unix_millis, StateStore, Status};
use tsmigrate_core::steps::ended::{
    execution_ended, EndedOutput, ExecutionInputs, LeaseAction, NoDescribe, StatusAction,
    DETAIL_TYPE,
};
use tsmigrate_core::steps::error::StepError;
use tsmigrate_core::steps::lifecycle::LEASE_TTL;
use tsmigrate_core::steps::{begin, finish, Context};

use crate::harness::output::{text, tsmigrate};
use crate::harness::tablestore::{start, TestServer};

const SOURCE_SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:src-AbCdEf";
const OTS_SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ots-GhIjKl";
const STATE_MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:shop-migration";
const STOP_DATE: i64 = 1_765_000_000_000;

/// The Tablestore keys only: resolving the source password fails the test.
fn ots_secrets() -> LocalSecrets {
    let mut s = LocalSecrets::new();
    s.insert(
        OTS_SECRET,
        SecretString::new(r#"{"access_key_id":"local-ak","access_key_secret":"local-secret"}"#),
    );
    s
}

/// Both secrets: what the steps (Begin, Finish) resolve.
fn all_secrets() -> LocalSecrets {
    let mut s = ots_secrets();
    s.insert(SOURCE_SECRET, SecretString::new("src-hunter2"));
    s
}

/// A schema + full migration (Begin connects to no source) on the test server.
fn config_json(t: &TestServer, migration_id: &str) -> Value {
    json!({
        "migration_id": migration_id,
        "source": {"host": "127.0.0.1", "port": 1, "user": "dts",
                   "password": {"secret_arn": SOURCE_SECRET}, "database": "shop",
                   "tls": "disabled"},
        "destination": {"endpoint": t.server.endpoint(), "instance": "local",
                        "access_key_id": {"secret_arn": OTS_SECRET, "key": "access_key_id"},
                        "access_key_secret": {"secret_arn": OTS_SECRET,
                                              "key": "access_key_secret"}},
        "migration_types": ["schema", "full"]
    })
}

/// The execution input start-migration builds: the normalized config and the mode.
fn execution_input(t: &TestServer, migration_id: &str) -> String {
    let cfg = config::from_json_value(&config_json(t, migration_id)).expect("config");
    json!({"config": cfg, "mode": "full_and_incremental"}).to_string()
}

async fn context(t: &TestServer, migration_id: &str) -> Context {
    let cfg = config::from_json_value(&config_json(t, migration_id)).expect("config");
    Context::new(cfg, &all_secrets()).await.expect("context")
}

fn store(t: &TestServer, migration_id: &str) -> StateStore {
    StateStore::new(t.client.clone(), "tsmigrate_state", migration_id)
}

/// The status-change event as EventBridge delivers it.
fn event(name: &str, status: &str, input: Option<&str>, error: Option<&str>) -> Value {
    json!({
        "version": "0", "id": format!("evt-{name}-{status}"),
        "detail-type": DETAIL_TYPE, "source": "aws.states",
        "account": "123456789012", "time": "2025-12-06T05:46:40Z", "region": "us-east-1",
        "resources": [format!("arn:aws:states:us-east-1:123456789012:execution:shop-migration:{name}")],
        "detail": {
            "executionArn": format!("arn:aws:states:us-east-1:123456789012:execution:shop-migration:{name}"),
            "stateMachineArn": STATE_MACHINE,
            "name": name, "status": status,
            "startDate": STOP_DATE - 3_600_000, "stopDate": STOP_DATE,
            "input": input, "inputDetails": {"included": input.is_some()},
            "output": null, "outputDetails": null,
            "error": error, "cause": error.map(|_| "the step's message"),
        }
    })
}

async fn handle(event: &Value) -> EndedOutput {
    execution_ended(event, &NoDescribe, &ots_secrets())
        .await
        .expect("handled")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_execution_holding_the_lease_is_recorded_and_released_at_once() {
    let t = start().await;
    let ctx = context(&t, "ended-timeout").await;
    let name = "ended-timeout-full_and_incremental-0123456789abcdef";
    begin(&ctx, name).await.expect("begin");
    let s = store(&t, "ended-timeout");
    let lease = s.lease().await.unwrap().expect("lease taken");
    assert!(lease.expires_at > SystemTime::now() + LEASE_TTL / 2);

    let input = execution_input(&t, "ended-timeout");
    let out = handle(&event(name, "TIMED_OUT", Some(&input), None)).await;
    assert_eq!(out.status, StatusAction::Recorded, "{out:?}");
    assert_eq!(out.lease, LeaseAction::Released, "{out:?}");
    assert_eq!(out.migration_id.as_deref(), Some("ended-timeout"));

    let status = s.status().await.unwrap().expect("status");
    assert_eq!(status.phase, "timed_out");
    assert!(status.stopped);
    assert_eq!(status.execution.as_deref(), Some(name));
    assert_eq!(status.ended_at, Some(STOP_DATE));
    assert_eq!(status.last_error.as_deref(), Some("States.Timeout"));
    let detail = status.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains(name) && detail.contains("TIMED_OUT") && detail.contains("start"),
        "{detail}"
    );
    assert_eq!(s.lease().await.unwrap(), None);

    // A new execution begins now, not when the hour-long lease would have expired (this
    // execution stopped long ago: none of its invocations can still be running).
    let next = "ended-timeout-full_and_incremental-fedcba9876543210";
    begin(&ctx, next)
        .await
        .expect("a new execution begins at once");
    assert_eq!(s.lease().await.unwrap().expect("lease").owner, next);
    let status = s.status().await.unwrap().expect("status");
    assert_eq!((status.phase.as_str(), status.stopped), ("running", false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_just_ended_execution_keeps_the_lease_until_its_invocations_cannot_run() {
    // Step Functions leaves the Lambda invocations of an ended execution running: a
    // CopyChunk started just before the timeout may write for up to 15 minutes more. A new
    // execution beginning meanwhile could see its rows overwritten by that late page.
    let t = start().await;
    let ctx = context(&t, "ended-recent").await;
    let name = "ended-recent-full_and_incremental-0123456789abcdef";
    begin(&ctx, name).await.expect("begin");
    let s = store(&t, "ended-recent");
    let stopped = unix_millis(SystemTime::now());
    let mut e = event(
        name,
        "TIMED_OUT",
        Some(&execution_input(&t, "ended-recent")),
        None,
    );
    e["detail"]["stopDate"] = json!(stopped);

    let out = handle(&e).await;
    assert_eq!(out.status, StatusAction::Recorded, "{out:?}");
    assert_eq!(out.lease, LeaseAction::FreedAfterInvocations, "{out:?}");
    let free_at = stopped + 930_000;
    assert_eq!(out.lease_free_at, Some(free_at));
    let lease = s.lease().await.unwrap().expect("lease kept");
    assert_eq!(lease.owner, format!("{name}/ended"));
    assert_eq!(unix_millis(lease.expires_at), free_at);
    // No step of the ended execution renews it, and no new execution begins before then.
    assert!(s.renew_lease(name, LEASE_TTL).await.is_err());
    let next = "ended-recent-full_and_incremental-fedcba9876543210";
    let held = begin(&ctx, next)
        .await
        .expect_err("the ended execution's steps may still write");
    assert!(
        held.to_string().contains(&format!("{name}/ended")),
        "{held}"
    );
    let detail = s
        .status()
        .await
        .unwrap()
        .expect("status")
        .detail
        .unwrap_or_default();
    assert!(detail.contains("16 minutes"), "{detail}");

    // Redelivered: nothing more.
    let again = handle(&e).await;
    assert_eq!(again.lease, LeaseAction::AlreadyReleased, "{again:?}");
    assert_eq!(
        unix_millis(s.lease().await.unwrap().expect("lease").expires_at),
        free_at
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_predecessor_that_continued_as_new_leaves_its_successors_lease_alone() {
    let t = start().await;
    let ctx = context(&t, "ended-handover").await;
    let name = "ended-handover-full_and_incremental-0123456789abcdef";
    let successor = format!("{name}-c1");
    begin(&ctx, name).await.expect("begin");
    // Finish hands the lease over, then the successor begins (re-entrant).
    finish(&ctx, Some(name), None, Some(&successor))
        .await
        .expect("hand over");
    begin(&ctx, &successor).await.expect("successor begins");
    let s = store(&t, "ended-handover");
    let lease_before = s.lease().await.unwrap().expect("lease");
    let status_before = s.status().await.unwrap();

    // The predecessor then fails (e.g. its StartExecution of the successor was retried out).
    let input = execution_input(&t, "ended-handover");
    let out = handle(&event(
        name,
        "FAILED",
        Some(&input),
        Some("States.TaskFailed"),
    ))
    .await;
    assert_eq!(out.status, StatusAction::Untouched, "{out:?}");
    assert_eq!(out.lease, LeaseAction::NotHeld, "{out:?}");
    assert_eq!(out.lease_holder.as_deref(), Some(successor.as_str()));
    assert_eq!(s.lease().await.unwrap(), Some(lease_before));
    assert_eq!(s.status().await.unwrap(), status_before);

    // An execution that never took the lease (Begin refused it: LeaseHeld) changes nothing
    // either.
    let out = handle(&event("someone-else", "ABORTED", Some(&input), None)).await;
    assert_eq!(
        (out.status, out.lease),
        (StatusAction::Untouched, LeaseAction::NotHeld)
    );
    assert_eq!(s.status().await.unwrap(), status_before);
    assert_eq!(s.lease().await.unwrap().expect("lease").owner, successor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_event_changes_nothing_more() {
    let t = start().await;
    let ctx = context(&t, "ended-dup").await;
    let name = "ended-dup-full_and_incremental-0123456789abcdef";
    begin(&ctx, name).await.expect("begin");
    let s = store(&t, "ended-dup");
    let input = execution_input(&t, "ended-dup");
    let e = event(name, "ABORTED", Some(&input), None);

    let first = handle(&e).await;
    assert_eq!(
        (first.status, first.lease),
        (StatusAction::Recorded, LeaseAction::Released)
    );
    let status = s.status().await.unwrap().expect("status");
    assert_eq!(status.phase, "aborted");
    assert_eq!(status.last_error.as_deref(), Some("Execution aborted"));

    let second = handle(&e).await;
    assert_eq!(second.status, StatusAction::Untouched, "{second:?}");
    assert_eq!(s.status().await.unwrap(), Some(status.clone()));
    assert_eq!(s.lease().await.unwrap(), None);

    // Redelivered after a new execution began: the new one's lease and status stay.
    let next = "ended-dup-full_and_incremental-fedcba9876543210";
    begin(&ctx, next).await.expect("begin");
    let running = s.status().await.unwrap();
    let third = handle(&e).await;
    assert_eq!(third.lease_holder.as_deref(), Some(next));
    assert_eq!(s.status().await.unwrap(), running);
    assert_eq!(s.lease().await.unwrap().expect("lease").owner, next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binlog_batch_still_running_keeps_its_claim_while_the_lease_is_freed() {
    let t = start().await;
    let ctx = context(&t, "ended-claim").await;
    let name = "ended-claim-full_and_incremental-0123456789abcdef";
    begin(&ctx, name).await.expect("begin");
    let s = store(&t, "ended-claim");
    // The aborted execution's BinlogBatch invocation runs on until its deadline.
    let until = SystemTime::now() + Duration::from_secs(600);
    s.claim_batch(name, "stale-batch", until)
        .await
        .expect("claim");
    let input = execution_input(&t, "ended-claim");
    let e = event(name, "ABORTED", Some(&input), None);
    let out = handle(&e).await;
    assert_eq!(out.lease, LeaseAction::ExpiredKeepingBatchClaim, "{out:?}");
    let lease = s.lease().await.unwrap().expect("row kept for the claim");
    assert!(lease.is_expired_at(SystemTime::now()));
    assert_ne!(lease.owner, name, "the ended execution must not renew it");
    assert!(s
        .renew_lease(name, LEASE_TTL)
        .await
        .is_err_and(|e| e.to_string().contains(name)));

    // Redelivered: nothing more happens.
    let again = handle(&e).await;
    assert_eq!(
        (again.status, again.lease),
        (StatusAction::AlreadyRecorded, LeaseAction::AlreadyReleased)
    );

    // A new execution begins at once; its batches wait for the stale one's claim.
    let next = "ended-claim-full_and_incremental-fedcba9876543210";
    begin(&ctx, next)
        .await
        .expect("a new execution begins at once");
    let claim = s.batch_claim().await.unwrap().expect("claim kept");
    assert_eq!(claim.token, "stale-batch");
    assert_eq!(unix_millis(claim.until), unix_millis(until));
    let busy = s
        .claim_batch(
            next,
            "new-batch",
            SystemTime::now() + Duration::from_secs(60),
        )
        .await
        .expect_err("the stale batch may still write");
    assert!(busy.to_string().contains("another binlog batch"), "{busy}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_finish_recorded_is_not_overwritten() {
    let t = start().await;
    let ctx = context(&t, "ended-finish").await;
    let s = store(&t, "ended-finish");
    let input = execution_input(&t, "ended-finish");

    // Finish recorded the failure and released the lease (the usual FAILED execution).
    let name = "ended-finish-full_and_incremental-0123456789abcdef";
    begin(&ctx, name).await.expect("begin");
    finish(
        &ctx,
        Some(name),
        Some("Migration.SchemaConflict: table orders no longer maps as planned"),
        None,
    )
    .await
    .expect("finish");
    let recorded = s.status().await.unwrap().expect("status");
    assert_eq!(recorded.phase, "failed");
    let out = handle(&event(
        name,
        "FAILED",
        Some(&input),
        Some("Migration.SchemaConflict"),
    ))
    .await;
    assert_eq!(out.status, StatusAction::Untouched, "{out:?}");
    assert_eq!(s.status().await.unwrap(), Some(recorded));

    // Finish recorded it but could not release the lease (it failed after its status write):
    // the status stays, the lease goes.
    let name = "ended-finish-full_and_incremental-fedcba9876543210";
    begin(&ctx, name).await.expect("begin");
    let mut status: Status = s.status().await.unwrap().expect("status");
    status.phase = "failed".into();
    status.stopped = true;
    status.last_error = Some("Migration.Fatal: the detailed reason".into());
    status.execution = Some(name.into());
    s.set_status(&status).await.unwrap();
    let out = handle(&event(
        name,
        "FAILED",
        Some(&input),
        Some("Migration.ConnectionFailed"),
    ))
    .await;
    assert_eq!(
        (out.status, out.lease),
        (StatusAction::AlreadyRecorded, LeaseAction::Released),
        "{out:?}"
    );
    assert_eq!(s.status().await.unwrap(), Some(status));
    assert_eq!(s.lease().await.unwrap(), None);
}

/// Answers DescribeExecution with a fixed input and remembers what it was asked.
struct StubDescribe {
    input: Option<String>,
    asked: Mutex<Vec<String>>,
}

impl ExecutionInputs for StubDescribe {
    fn input<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StepError>> {
        self.asked.lock().unwrap().push(execution_arn.to_owned());
        let input = self.input.clone();
        Box::pin(async move { Ok(input) })
    }
}

/// Says whether the executions it is asked about exist.
struct Existing {
    exists: Option<bool>,
    asked: Mutex<Vec<String>>,
}

impl ExecutionInputs for Existing {
    fn input<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<String>, StepError>> {
        Box::pin(async { Ok(None) })
    }

    fn exists<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<Option<bool>, StepError>> {
        self.asked.lock().unwrap().push(execution_arn.to_owned());
        let exists = self.exists;
        Box::pin(async move { Ok(exists) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_that_was_never_started_does_not_keep_the_lease() {
    // Finish handed the lease to `…-c1`, then starting `…-c1` failed for good: the predecessor
    // ends FAILED (its Finish cannot release a lease that is no longer its own).
    let t = start().await;
    let ctx = context(&t, "ended-orphan").await;
    let s = store(&t, "ended-orphan");
    let name = "ended-orphan-full_and_incremental-0123456789abcdef";
    let successor = format!("{name}-c1");
    begin(&ctx, name).await.expect("begin");
    finish(&ctx, Some(name), None, Some(&successor))
        .await
        .expect("hand over");
    let input = execution_input(&t, "ended-orphan");
    let e = event(name, "FAILED", Some(&input), Some("States.TaskFailed"));

    // Step Functions says the successor exists (or cannot tell): its lease stays.
    for exists in [Some(true), None] {
        let stub = Existing {
            exists,
            asked: Mutex::new(Vec::new()),
        };
        let out = execution_ended(&e, &stub, &ots_secrets())
            .await
            .expect("handled");
        assert_eq!(out.lease, LeaseAction::NotHeld, "{out:?}");
        assert_eq!(s.lease().await.unwrap().expect("lease").owner, successor);
        assert_eq!(
            *stub.asked.lock().unwrap(),
            vec![format!(
                "arn:aws:states:us-east-1:123456789012:execution:shop-migration:{successor}"
            )]
        );
    }

    // It does not exist: the lease is freed (the predecessor stopped long ago here).
    let stub = Existing {
        exists: Some(false),
        asked: Mutex::new(Vec::new()),
    };
    let out = execution_ended(&e, &stub, &ots_secrets())
        .await
        .expect("handled");
    assert_eq!(out.lease, LeaseAction::Released, "{out:?}");
    assert!(out.note.unwrap_or_default().contains("never started"));
    assert_eq!(s.lease().await.unwrap(), None);
    let next = "ended-orphan-full_and_incremental-fedcba9876543210";
    begin(&ctx, next).await.expect("a new execution begins");

    // Another execution's lease is never a successor's to free.
    let out = execution_ended(&e, &stub, &ots_secrets())
        .await
        .expect("handled");
    assert_eq!(out.lease_holder.as_deref(), Some(next));
    assert_eq!(s.lease().await.unwrap().expect("lease").owner, next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_without_input_reads_it_with_describe_execution() {
    let t = start().await;
    let ctx = context(&t, "ended-big").await;
    let name = "ended-big-full_and_incremental-0123456789abcdef";
    begin(&ctx, name).await.expect("begin");
    let e = event(name, "TIMED_OUT", None, None);

    // Without a way to describe the execution: an error saying so.
    let err = execution_ended(&e, &NoDescribe, &ots_secrets())
        .await
        .expect_err("no input, no DescribeExecution");
    assert!(err.message.contains("DescribeExecution"), "{err}");
    assert!(store(&t, "ended-big").lease().await.unwrap().is_some());

    let describe = StubDescribe {
        input: Some(execution_input(&t, "ended-big")),
        asked: Mutex::new(Vec::new()),
    };
    let out = execution_ended(&e, &describe, &ots_secrets())
        .await
        .expect("handled");
    assert_eq!(
        (out.status, out.lease),
        (StatusAction::Recorded, LeaseAction::Released)
    );
    assert_eq!(
        describe.asked.lock().unwrap().as_slice(),
        [e["detail"]["executionArn"].as_str().unwrap().to_owned()]
    );

    // DescribeExecution without an input: an error naming the execution.
    let empty = StubDescribe {
        input: None,
        asked: Mutex::new(Vec::new()),
    };
    let err = execution_ended(&e, &empty, &ots_secrets())
        .await
        .expect_err("no input anywhere");
    assert!(err.message.contains(name), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsmigrate_status_shows_the_recorded_end() {
    let t = start().await;
    let ctx = context(&t, "ended-cli").await;
    let name = "ended-cli-full_and_incremental-0123456789abcdef";
    begin(&ctx, name).await.expect("begin");
    let input = execution_input(&t, "ended-cli");
    handle(&event(name, "TIMED_OUT", Some(&input), None)).await;

    // The CLI reads the same state store with literal keys (a local setup).
    let mut cfg = config_json(&t, "ended-cli");
    cfg["source"]["password"] = json!({"value": "unused"});
    cfg["destination"]["access_key_id"] = json!({"value": "local-ak"});
    cfg["destination"]["access_key_secret"] = json!({"value": "local-secret"});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ended.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    let out = tsmigrate(&["status", "--config", path.to_str().unwrap()]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        printed.contains("phase: timed_out (stopped), last error: States.Timeout"),
        "{}",
        text(&out)
    );
    assert!(
        printed.contains(&format!("ended: execution {name} ended TIMED_OUT")),
        "{}",
        text(&out)
    );
    assert!(
        printed.contains("running: no execution holds the migration"),
        "{}",
        text(&out)
    );

    // An execution that ended just now: its steps may still write for a while.
    let recent = "ended-cli-full_and_incremental-fedcba9876543210";
    begin(&ctx, recent).await.expect("begin");
    let mut e = event(recent, "ABORTED", Some(&input), None);
    e["detail"]["stopDate"] = json!(unix_millis(SystemTime::now()));
    handle(&e).await;
    let out = tsmigrate(&["status", "--config", path.to_str().unwrap()]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!(
            "running: none; steps of ended execution {recent} may still write until"
        )),
        "{}",
        text(&out)
    );
}
