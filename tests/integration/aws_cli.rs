//! `tsmigrate aws start` and `tsmigrate aws status` as a user runs them: the CLI binary, its
//! client from the standard AWS environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, …),
//! against moto's Step Functions (tests/integration/harness/moto.rs), which here runs the executions
//! (`execute_state_machine`), so a Pass machine succeeds and a Fail machine fails with its
//! error and cause.
//!
//! moto comes from the repository's .venv (`.ci/run` installs it); the test fails, never skips,
//! without it.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::harness::moto::{self, Moto};
use crate::harness::output::text;
use aws_sdk_sfn::config::Credentials;
use serde_json::{json, Value};

fn moto() -> &'static Moto {
    static CONFIGURED: std::sync::Once = std::sync::Once::new();
    let moto = Moto::shared();
    CONFIGURED
        .call_once(|| moto.configure(r#"{"stepfunctions": {"execute_state_machine": true}}"#));
    moto
}

/// The CLI with moto's environment and nothing of the caller's AWS setup.
fn tsmigrate(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tsmigrate"));
    command.args(args);
    for var in [
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
        "AWS_SESSION_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ] {
        command.env_remove(var);
    }
    for (var, value) in moto().env() {
        command.env(var, value);
    }
    command.output().expect("run tsmigrate")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `tsmigrate aws start` of `config` on `arn` that must exit with `code` and name every one
/// of `expect` on stderr.
fn start_refused(arn: &str, config: &str, code: i32, expect: &[&str]) -> Output {
    let out = tsmigrate(&[
        "aws",
        "start",
        "--state-machine-arn",
        arn,
        "--config",
        config,
    ]);
    assert_eq!(out.status.code(), Some(code), "{}", text(&out));
    for e in expect {
        assert!(stderr(&out).contains(e), "expected {e:?}: {}", text(&out));
    }
    out
}

/// The `key: value` line of the CLI's output.
fn field(o: &Output, key: &str) -> String {
    let prefix = format!("{key}: ");
    stdout(o)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {key} in\n{}", text(o)))
}

async fn sfn() -> aws_sdk_sfn::Client {
    let sdk = tsmigrate_core::aws::config_loader()
        .region(aws_config::Region::new(moto::REGION))
        .credentials_provider(Credentials::new(
            moto::ACCESS_KEY_ID,
            moto::SECRET_ACCESS_KEY,
            None,
            None,
            "moto",
        ))
        .endpoint_url(&moto().endpoint)
        .load()
        .await;
    aws_sdk_sfn::Client::new(&sdk)
}

async fn state_machine(sfn: &aws_sdk_sfn::Client, name: &str, definition: Value) -> String {
    sfn.create_state_machine()
        .name(name)
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/tsmigrate-sfn")
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateStateMachine: {}",
                aws_sdk_sfn::error::DisplayErrorContext(&e)
            )
        })
        .state_machine_arn()
        .to_owned()
}

async fn inputs(sfn: &aws_sdk_sfn::Client, arn: &str) -> Vec<(String, Value)> {
    let listed = sfn
        .list_executions()
        .state_machine_arn(arn)
        .send()
        .await
        .expect("ListExecutions");
    let mut out = Vec::new();
    for e in listed.executions() {
        let d = sfn
            .describe_execution()
            .execution_arn(e.execution_arn())
            .send()
            .await
            .expect("DescribeExecution");
        let input = serde_json::from_str(d.input().unwrap_or("null")).expect("input is JSON");
        out.push((e.execution_arn().to_owned(), input));
    }
    out
}

fn config(id: &str) -> Value {
    json!({
        "migration_id": id,
        "source": {"host": "db.internal.example.com", "user": "dts",
                   "password": {"secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:src-AbC", "key": "password"},
                   "database": "shop"},
        "destination": {"endpoint": "https://shop.cn-hangzhou.ots.aliyuncs.com", "instance": "shop",
                        "access_key_id": {"secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ots-DeF", "key": "ak"},
                        "access_key_secret": {"secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ots-DeF", "key": "sk"}},
        "writer": {"concurrency": 8}
    })
}

fn write(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).expect("json")).expect("write config");
    path.display().to_string()
}

/// `aws status` until the execution leaves RUNNING (moto runs it in the background).
fn settled_status(execution_arn: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = tsmigrate(&["aws", "status", "--execution-arn", execution_arn]);
        if field(&out, "status") != "RUNNING" || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_start_starts_once_and_aws_status_reports_the_outcome() {
    let sfn = sfn().await;
    let pass = state_machine(
        &sfn,
        "cli-pass",
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "shop.json", &config("shop"));

    let first = tsmigrate(&[
        "aws",
        "start",
        "--state-machine-arn",
        &pass,
        "--config",
        &file,
    ]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let arn = field(&first, "execution_arn");
    assert!(
        arn.starts_with(
            "arn:aws:states:us-east-1:123456789012:execution:cli-pass:shop-full_and_incremental-"
        ),
        "{}",
        text(&first)
    );
    assert_eq!(field(&first, "started"), "yes", "{}", text(&first));

    // The execution input is the normalized config and the mode, as start-migration sends it.
    let listed = inputs(&sfn, &pass).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, arn);
    let input = &listed[0].1;
    assert_eq!(input["mode"], json!("full_and_incremental"));
    assert_eq!(input.as_object().map(|o| o.len()), Some(2), "{input}");
    assert_eq!(input["config"]["full"]["chunks_per_execution"], json!(200));
    assert_eq!(
        tsmigrate_core::config::from_json_value(&input["config"]).expect("parses"),
        tsmigrate_core::config::from_json_value(&config("shop")).expect("config")
    );

    // Again: the same request, the same execution; nothing new starts.
    let again = tsmigrate(&[
        "aws",
        "start",
        "--state-machine-arn",
        &pass,
        "--config",
        &file,
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(field(&again, "execution_arn"), arn);
    assert!(
        field(&again, "started").starts_with("no, it already existed"),
        "{}",
        text(&again)
    );
    assert_eq!(inputs(&sfn, &pass).await.len(), 1);

    let status = settled_status(&arn);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    assert_eq!(field(&status, "status"), "SUCCEEDED", "{}", text(&status));
    assert!(
        field(&status, "start_date").starts_with("20"),
        "{}",
        text(&status)
    );
    assert!(
        field(&status, "stop_date").starts_with("20"),
        "{}",
        text(&status)
    );
    assert!(!stdout(&status).contains("error:"), "{}", text(&status));

    // Another mode, --verify and an idempotency key: a second execution, with that input.
    let catch_up = tsmigrate(&[
        "aws",
        "start",
        "--state-machine-arn",
        &pass,
        "--config",
        &file,
        "--mode",
        "catch_up",
        "--verify",
        "--idempotency-key",
        "deploy-7",
        "--json",
    ]);
    assert_eq!(catch_up.status.code(), Some(0), "{}", text(&catch_up));
    let answer: Value = serde_json::from_slice(&catch_up.stdout).expect("--json prints JSON");
    assert_eq!(answer["started"], json!(true), "{answer}");
    assert_eq!(answer["mode"], json!("catch_up"), "{answer}");
    let listed = inputs(&sfn, &pass).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let (_, input) = listed
        .iter()
        .find(|(a, _)| Some(a.as_str()) == answer["execution_arn"].as_str())
        .expect("the new execution is listed");
    assert_eq!(input["mode"], json!("catch_up"));
    assert_eq!(input["verify"], json!(true));

    // A failing execution: status shows its error and cause, exit 1.
    let fail = state_machine(
        &sfn,
        "cli-fail",
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Migration.Fatal",
            "Cause": "the source is unreachable (test)"}}}),
    )
    .await;
    let started = tsmigrate(&[
        "aws",
        "start",
        "--state-machine-arn",
        &fail,
        "--config",
        &file,
    ]);
    assert_eq!(started.status.code(), Some(0), "{}", text(&started));
    let failed = settled_status(&field(&started, "execution_arn"));
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert_eq!(field(&failed, "status"), "FAILED", "{}", text(&failed));
    assert_eq!(
        field(&failed, "error"),
        "Migration.Fatal",
        "{}",
        text(&failed)
    );
    assert_eq!(
        field(&failed, "cause"),
        "the source is unreachable (test)",
        "{}",
        text(&failed)
    );
    assert!(
        field(&failed, "stop_date").starts_with("20"),
        "{}",
        text(&failed)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_errors_say_what_is_wrong_and_how_to_fix_it() {
    let sfn = sfn().await;
    let pass = state_machine(
        &sfn,
        "cli-errors",
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(dir.path(), "shop.json", &config("shop"));

    // No such state machine: could not run (2), with the fix.
    let missing = "arn:aws:states:us-east-1:123456789012:stateMachine:does-not-exist";
    let out = tsmigrate(&[
        "aws",
        "start",
        "--state-machine-arn",
        missing,
        "--config",
        &good,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("StateMachineDoesNotExist"),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("fix: check the state machine ARN"),
        "{}",
        text(&out)
    );

    // A literal secret: refused (1) before any AWS call, the secret not echoed.
    let mut literal = config("shop");
    literal["source"]["host"] = json!("127.0.0.1");
    literal["source"]["password"] = json!({"value": "local-hunter2"});
    let literal = write(dir.path(), "literal.json", &literal);
    let out = start_refused(&pass, &literal, 1, &["source.password", "secret_arn"]);
    assert!(!text(&out).contains("hunter2"), "{}", text(&out));

    // An invalid config: refused (1), pointing at `config check`.
    let mut invalid = config("shop");
    invalid["writer"]["bucket_count"] = json!(64);
    let invalid = write(dir.path(), "invalid.json", &invalid);
    start_refused(&pass, &invalid, 1, &["writer.bucket_count", "fix: "]);

    // An unreadable file: could not run (2).
    let nowhere = dir.path().join("nowhere.json").display().to_string();
    start_refused(&pass, &nowhere, 2, &["fix: check the --config path"]);
    assert!(inputs(&sfn, &pass).await.is_empty());

    // A bad mode is clap's usage error (2).
    let out = tsmigrate(&[
        "aws",
        "start",
        "--state-machine-arn",
        &pass,
        "--config",
        &good,
        "--mode",
        "sometimes",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("catch_up"), "{}", text(&out));

    // No such execution.
    let out = tsmigrate(&[
        "aws",
        "status",
        "--execution-arn",
        "arn:aws:states:us-east-1:123456789012:execution:cli-errors:nope",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("ExecutionDoesNotExist"),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("fix: check the execution ARN"),
        "{}",
        text(&out)
    );

    // No credentials anywhere: could not run, and how to provide them.
    let home = tempfile::tempdir().expect("home");
    let out = Command::new(env!("CARGO_BIN_EXE_tsmigrate"))
        .args([
            "aws",
            "start",
            "--state-machine-arn",
            &pass,
            "--config",
            &good,
        ])
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run tsmigrate");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("fix: set AWS credentials"),
        "{}",
        text(&out)
    );
    assert!(inputs(&sfn, &pass).await.is_empty());
}
