//! The step functions' handler glue, called the way the Lambda runtime calls it: a synthetic
//! event and a default context. No AWS: `secret_arn` references are answered by an in-memory
//! resolver standing in for Secrets Manager.

use std::net::TcpListener;
use std::path::Path;

use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use tsmigrate_core::config::{LocalSecrets, SecretString};
use tsmigrate_core::steps::dispatch::Step;
use tsmigrate_functions::{function_name, handle_step, Function};

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

const SOURCE_SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:src-AbCdEf";
const OTS_SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ots-GhIjKl";

fn secrets() -> LocalSecrets {
    let mut s = LocalSecrets::new();
    s.insert(
        SOURCE_SECRET,
        SecretString::new(r#"{"username":"dts","password":"src-hunter2"}"#),
    );
    s.insert(
        OTS_SECRET,
        SecretString::new(r#"{"access_key_id":"AKID","access_key_secret":"ots-hunter2"}"#),
    );
    s
}

/// A valid config whose source and destination are loopback ports nothing listens on.
fn unreachable_config() -> Value {
    json!({
        "migration_id": "fn-test",
        "source": {"host": "127.0.0.1", "port": closed_port(), "user": "dts",
                   "password": {"secret_arn": SOURCE_SECRET, "key": "password"},
                   "database": "shop", "tls": "disabled"},
        "destination": {"endpoint": format!("http://127.0.0.1:{}", closed_port()),
                        "instance": "local",
                        "access_key_id": {"secret_arn": OTS_SECRET, "key": "access_key_id"},
                        "access_key_secret": {"secret_arn": OTS_SECRET, "key": "access_key_secret"}},
        "migration_types": ["schema", "full"]
    })
}

fn event(payload: Value) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = "00000000-0000-0000-0000-000000000001".to_owned();
    // As Lambda sets it: milliseconds since the epoch when the invocation is cut off.
    context.deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64 + 900_000)
        .unwrap_or(u64::MAX);
    LambdaEvent::new(payload, context)
}

#[tokio::test]
async fn precheck_reports_an_unreachable_source_as_a_failed_item_not_an_error() {
    tsmigrate_functions::init_tracing();
    let resolver = secrets();
    let out = handle_step(
        Step::Precheck,
        event(json!({"config": unreachable_config()})),
        &resolver,
    )
    .await
    .expect("precheck answers with a report, not an error");
    assert_eq!(out["passed"], json!(false), "{out:#}");
    let items = out["items"].as_array().expect("items");
    let item = |name: &str| {
        items
            .iter()
            .find(|i| i["name"] == json!(name))
            .unwrap_or_else(|| panic!("no {name} item in {out:#}"))
    };
    assert_eq!(
        item("source_connection")["status"],
        json!("failed"),
        "{out:#}"
    );
    assert_eq!(
        item("destination_connection")["status"],
        json!("failed"),
        "{out:#}"
    );
    assert!(!item("source_connection")["fix"]
        .as_str()
        .unwrap_or("")
        .is_empty());
    let text = out.to_string();
    assert!(
        !text.contains("hunter2"),
        "a resolved secret leaked into the report: {text}"
    );
}

#[tokio::test]
async fn an_invalid_config_is_a_diagnostic_named_config_invalid() {
    let resolver = secrets();
    let mut config = unreachable_config();
    config["writer"] = json!({"concurrency": 2, "bucket_count": 8});
    for step in Step::ALL {
        let err = handle_step(step, event(json!({"config": config.clone()})), &resolver)
            .await
            .expect_err("validation must fail");
        assert_eq!(
            err.error_type, "Migration.ConfigInvalid",
            "{step:?}: {err:?}"
        );
        assert!(
            err.error_message.contains("writer.bucket_count"),
            "{step:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn malformed_inputs_are_config_invalid_and_never_echo_secrets() {
    let resolver = secrets();
    // No config at all.
    let err = handle_step(Step::Precheck, event(json!({"chunk_index": 1})), &resolver)
        .await
        .expect_err("no config");
    assert_eq!(err.error_type, "Migration.ConfigInvalid");
    assert!(err.error_message.contains("config"), "{err:?}");

    // A literal password on a non-loopback host: refused, and the value is not quoted.
    let mut config = unreachable_config();
    config["source"]["host"] = json!("db.example.com");
    config["destination"]["endpoint"] = json!("https://i.cn-hangzhou.ots.aliyuncs.com");
    config["source"]["password"] = json!({"value": "literal-hunter2"});
    let err = handle_step(Step::Precheck, event(json!({"config": config})), &resolver)
        .await
        .expect_err("literal secret on a remote host");
    assert_eq!(err.error_type, "Migration.ConfigInvalid");
    assert!(err.error_message.contains("source.password"), "{err:?}");
    assert!(!err.error_message.contains("literal-hunter2"), "{err:?}");

    // A plain-string password (the secret itself): refused without echoing it.
    let mut config = unreachable_config();
    config["source"]["password"] = json!("plain-hunter2");
    let err = handle_step(Step::Precheck, event(json!({"config": config})), &resolver)
        .await
        .expect_err("plain string secret");
    assert_eq!(err.error_type, "Migration.ConfigInvalid");
    assert!(!err.error_message.contains("plain-hunter2"), "{err:?}");

    // A secret the resolver does not know: named by its reference, and the fix says what to do.
    let mut config = unreachable_config();
    config["source"]["password"] = json!({"secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:missing", "key": "password"});
    let err = handle_step(Step::Precheck, event(json!({"config": config})), &resolver)
        .await
        .expect_err("unknown secret");
    assert_eq!(err.error_type, "Migration.ConfigInvalid");
    assert!(err.error_message.contains("secret:missing"), "{err:?}");
    assert!(err.error_message.contains("GetSecretValue"), "{err:?}");
}

#[test]
fn every_template_function_names_a_job_the_bootstrap_runs() {
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"),
    )
    .expect("infra/template.yaml");
    let mut named: Vec<String> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("TSMIGRATE_FUNCTION:"))
        .map(|v| v.trim().to_owned())
        .collect();
    for name in &named {
        assert!(Function::parse(name).is_some(), "unknown function {name}");
    }
    named.sort();
    let mut expected = Function::names();
    expected.sort();
    assert_eq!(
        named, expected,
        "one template function per step and start-migration"
    );
    assert_eq!(
        template
            .matches("BuildProperties: { Binary: bootstrap }")
            .count(),
        expected.len()
    );
    assert_eq!(function_name(Step::CreateSchema), "create-schema");
    assert_eq!(function_name(Step::BinlogBatch), "binlog-batch");
    assert_eq!(
        Function::parse("copy-chunk"),
        Some(Function::Step(Step::CopyChunk))
    );
    assert_eq!(
        Function::parse("start-migration"),
        Some(Function::StartMigration)
    );
    assert_eq!(Function::parse("CopyChunk"), None);
}

#[test]
fn binlog_batches_emit_cloudwatch_metrics() {
    let output = json!({"position": "binlog.000002:4", "events": 120, "rows_written": 100,
                        "dirty": 2, "caught_up": true, "lag_seconds": 3});
    let line = tsmigrate_functions::binlog_metrics("shop", &output, 1_700_000_000_000)
        .expect("a metrics line");
    let v: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(v["MigrationId"], "shop");
    assert_eq!(v["LagSeconds"], 3.0);
    assert_eq!(v["RowsWritten"], 100.0);
    assert_eq!(v["DirtyRows"], 2.0);
    assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
    let metrics = &v["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(metrics["Namespace"], "tsmigrate");
    assert_eq!(metrics["Dimensions"][0][0], "MigrationId");
    let names: Vec<&str> = metrics["Metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter_map(|m| m["Name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["LagSeconds", "EventsApplied", "RowsWritten", "DirtyRows"]
    );
    // No lag known yet: the metric is left out, not reported as 0.
    let no_lag = tsmigrate_functions::binlog_metrics("shop", &json!({"events": 0}), 1).unwrap();
    assert!(!no_lag.contains("\"LagSeconds\":"), "{no_lag}");
    assert!(tsmigrate_functions::binlog_metrics("", &output, 1).is_none());
}
