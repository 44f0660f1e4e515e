//! The functions' AWS side against a real AWS API emulator: moto's server (PyPI `moto`), started
//! by this test binary on a free loopback port. The SDK clients are the functions' own (same
//! HTTPS client, same config loader), only pointed at the emulator with dummy credentials.
//!
//! - `start-migration` calls `StartExecution` on a state machine created from
//!   statemachine/migration.asl.json; a duplicate event starts nothing new, another config does.
//! - `start-migration` reads the config file an S3 object-created event names (moto's S3), in
//!   both event forms, and a redelivery starts nothing new.
//! - `SecretsManagerResolver` reads secrets with `GetSecretValue`, and `key` picks a JSON field.
//!
//! moto comes from the repository's .venv, which .ci/run creates and fills; the launcher is
//! shared with the root crate's tests (tests/integration/harness/moto.rs). This test fails (it does not
//! skip) when moto cannot start.

#[allow(dead_code)]
#[path = "../../../tests/integration/harness/moto.rs"]
mod moto;

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_sfn::config::Credentials;
use lambda_runtime::{Context, LambdaEvent};
use moto::Moto;
use serde_json::{json, Value};
use tsmigrate_core::config::{SecretRef, SecretResolver};
use tsmigrate_functions::start::{Started, Starter};
use tsmigrate_functions::SecretsManagerResolver;

fn moto() -> &'static Moto {
    Moto::shared()
}

async fn sdk_config() -> aws_config::SdkConfig {
    tsmigrate_functions::aws_config_loader()
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
        .await
}

/// The real ASL when it exists (resource placeholders filled with dummy ARNs), else a one-state
/// Pass machine. moto does not run executions by default, so the definition is only stored.
fn definition() -> (String, &'static str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../statemachine/migration.asl.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut out = String::new();
            let mut rest = text.as_str();
            while let Some(start) = rest.find("${") {
                let Some(len) = rest[start..].find('}') else {
                    break;
                };
                out.push_str(&rest[..start]);
                let var = &rest[start + 2..start + len];
                let var = var.strip_suffix("FunctionArn").unwrap_or(var);
                out.push_str(&format!(
                    "arn:aws:lambda:us-east-1:123456789012:function:{var}"
                ));
                rest = &rest[start + len + 1..];
            }
            out.push_str(rest);
            (out, "statemachine/migration.asl.json")
        }
        Err(_) => (
            r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#.to_owned(),
            "a one-state Pass machine (statemachine/migration.asl.json is absent)",
        ),
    }
}

async fn create_state_machine(sfn: &aws_sdk_sfn::Client, name: &str) -> String {
    let (definition, what) = definition();
    eprintln!("state machine {name}: {what}");
    sfn.create_state_machine()
        .name(name)
        .definition(definition)
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

fn config(id: &str, concurrency: u32) -> Value {
    json!({
        "migration_id": id,
        "source": {"host": "db.internal.example.com", "user": "dts",
                   "password": {"secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:src-AbC", "key": "password"},
                   "database": "shop"},
        "destination": {"endpoint": "https://shop.cn-hangzhou.ots.aliyuncs.com", "instance": "shop",
                        "access_key_id": {"secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ots-DeF", "key": "ak"},
                        "access_key_secret": {"secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ots-DeF", "key": "sk"}},
        "writer": {"concurrency": concurrency}
    })
}

fn eventbridge(id: &str, detail: Value) -> LambdaEvent<Value> {
    let payload = json!({
        "version": "0", "id": id, "detail-type": "tsmigrate start", "source": "custom.tsmigrate",
        "account": "123456789012", "time": "2026-05-01T12:00:00Z", "region": "us-east-1",
        "resources": [], "detail": detail
    });
    let mut context = Context::default();
    // Each delivery is a new Lambda request; only the event id is shared.
    context.request_id = format!("req-{}", unique_suffix());
    LambdaEvent::new(payload, context)
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

async fn executions(sfn: &aws_sdk_sfn::Client, arn: &str) -> Vec<(String, String)> {
    let listed = sfn
        .list_executions()
        .state_machine_arn(arn)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "ListExecutions: {}",
                aws_sdk_sfn::error::DisplayErrorContext(&e)
            )
        });
    let mut out = Vec::new();
    for e in listed.executions() {
        let described = sfn
            .describe_execution()
            .execution_arn(e.execution_arn())
            .send()
            .await
            .expect("DescribeExecution");
        out.push((
            e.name().to_owned(),
            described.input().unwrap_or("").to_owned(),
        ));
    }
    out.sort();
    out
}

#[tokio::test]
async fn start_migration_starts_one_execution_per_distinct_event() {
    tsmigrate_functions::init_tracing();
    let sdk = sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let arn = create_state_machine(&sfn, "tsmigrate-dedup").await;
    let starter = Starter::new(sfn.clone(), arn.clone());

    let detail = json!({"config": config("shop", 8), "mode": "full_and_incremental"});
    let first: Started = serde_json::from_value(
        starter
            .handle(eventbridge("ev-1", detail.clone()))
            .await
            .expect("first start"),
    )
    .expect("answer");
    assert!(first.started, "{first:?}");
    assert!(
        first
            .execution_name
            .starts_with("shop-full_and_incremental-"),
        "{first:?}"
    );

    // The same event again (EventBridge delivers at least once): nothing new.
    let again: Started = serde_json::from_value(
        starter
            .handle(eventbridge("ev-1", detail.clone()))
            .await
            .expect("duplicate start succeeds"),
    )
    .expect("answer");
    assert!(!again.started, "{again:?}");
    assert_eq!(again.execution_arn, first.execution_arn);
    assert_eq!(again.execution_name, first.execution_name);
    assert_eq!(
        again.existing_status.as_deref(),
        Some("RUNNING"),
        "{again:?}"
    );

    let listed = executions(&sfn, &arn).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, first.execution_name);
    let input: Value = serde_json::from_str(&listed[0].1).expect("input is JSON");
    assert_eq!(input["mode"], json!("full_and_incremental"));
    assert_eq!(input["config"]["migration_id"], json!("shop"));
    assert_eq!(input["config"]["writer"]["concurrency"], json!(8));
    // Normalized: defaults spelled out.
    assert_eq!(input["config"]["full"]["chunks_per_execution"], json!(200));
    assert_eq!(
        tsmigrate_core::config::from_json_value(&input["config"]).expect("the steps can parse it"),
        tsmigrate_core::config::from_json_value(&config("shop", 8)).expect("config")
    );

    // A different config: a second execution.
    let other = json!({"config": config("shop", 16), "mode": "full_and_incremental"});
    let second: Started = serde_json::from_value(
        starter
            .handle(eventbridge("ev-1", other))
            .await
            .expect("second start"),
    )
    .expect("answer");
    assert!(second.started);
    assert_ne!(second.execution_name, first.execution_name);
    let listed = executions(&sfn, &arn).await;
    assert_eq!(listed.len(), 2, "{listed:?}");

    // A direct invoke pinned by an idempotency_key, twice from two requests: one execution.
    let direct =
        json!({"config": config("shop", 8), "mode": "catch_up", "idempotency_key": "deploy-7"});
    let mut names = Vec::new();
    for request_id in ["req-x", "req-y"] {
        let mut context = Context::default();
        context.request_id = request_id.to_owned();
        let out: Started = serde_json::from_value(
            starter
                .handle(LambdaEvent::new(direct.clone(), context))
                .await
                .expect("direct start"),
        )
        .expect("answer");
        names.push((out.execution_name, out.started));
    }
    assert_eq!(names[0].0, names[1].0);
    assert_eq!((names[0].1, names[1].1), (true, false));
    assert!(names[0].0.starts_with("shop-catch_up-"));
    assert_eq!(executions(&sfn, &arn).await.len(), 3);
}

#[tokio::test]
async fn start_migration_reports_errors_by_name() {
    let sdk = sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let missing = Starter::new(
        sfn.clone(),
        "arn:aws:states:us-east-1:123456789012:stateMachine:does-not-exist",
    );
    let err = missing
        .handle(eventbridge("ev-9", json!({"config": config("shop", 8)})))
        .await
        .expect_err("no such state machine");
    assert_eq!(err.error_type, "Migration.Fatal", "{err:?}");
    assert!(
        err.error_message.contains("StateMachineDoesNotExist"),
        "{err:?}"
    );

    let arn = create_state_machine(&sfn, "tsmigrate-errors").await;
    let starter = Starter::new(sfn.clone(), arn.clone());
    let mut bad = config("shop", 8);
    bad["writer"]["bucket_count"] = json!(64);
    let err = starter
        .handle(eventbridge("ev-10", json!({"config": bad})))
        .await
        .expect_err("invalid config");
    assert_eq!(err.error_type, "Migration.ConfigInvalid", "{err:?}");
    assert!(executions(&sfn, &arn).await.is_empty());
}

/// An S3 notification as S3 sends it: the key URL-encoded, a space as `+`.
fn s3_notification(bucket: &str, encoded_key: &str, etag: &str, sequencer: &str) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-05-01T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "tsmigrate-configs",
               "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": encoded_key, "size": 100, "eTag": etag, "sequencer": sequencer}}
    }]})
}

fn invoke(payload: Value) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = format!("req-{}", unique_suffix());
    LambdaEvent::new(payload, context)
}

#[tokio::test]
async fn start_migration_starts_the_config_an_s3_event_names() {
    tsmigrate_functions::init_tracing();
    let sdk = sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    // Path-style: the emulator is an IP address, not a virtual-host S3 endpoint.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let arn = create_state_machine(&sfn, "tsmigrate-s3").await;
    let starter = Starter::new(sfn.clone(), arn.clone()).with_s3(s3.clone());

    let bucket = "tsmigrate-configs";
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateBucket: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        });
    // A key that S3 notifications encode: a space and a plus sign.
    let key = "configs/shop v1+next.json";
    let encoded_key = "configs/shop+v1%2Bnext.json";
    let put = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(
            serde_json::to_vec(&config("s3shop", 16))
                .expect("json")
                .into(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObject: {}", aws_sdk_s3::error::DisplayErrorContext(&e)));
    let etag = put
        .e_tag()
        .unwrap_or("\"etag\"")
        .trim_matches('"')
        .to_owned();

    let event = s3_notification(bucket, encoded_key, &etag, "0066A1B2C3D4E5F601");
    let first: Started = serde_json::from_value(
        starter
            .handle(invoke(event.clone()))
            .await
            .unwrap_or_else(|e| panic!("S3 start: {e:?}")),
    )
    .expect("answer");
    assert!(first.started, "{first:?}");
    assert_eq!(first.migration_id, "s3shop");
    assert!(
        first
            .execution_name
            .starts_with("s3shop-full_and_incremental-"),
        "{first:?}"
    );
    let listed = executions(&sfn, &arn).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, first.execution_name);
    let input: Value = serde_json::from_str(&listed[0].1).expect("input is JSON");
    // Exactly what a direct invoke of that config would send: normalized config and mode.
    assert_eq!(input["mode"], json!("full_and_incremental"));
    assert_eq!(input.as_object().map(|o| o.len()), Some(2), "{input}");
    assert_eq!(input["config"]["writer"]["concurrency"], json!(16));
    assert_eq!(input["config"]["full"]["chunks_per_execution"], json!(200));
    assert_eq!(
        tsmigrate_core::config::from_json_value(&input["config"]).expect("the steps can parse it"),
        tsmigrate_core::config::from_json_value(&config("s3shop", 16)).expect("config")
    );

    // S3 delivers at least once: the same notification again starts nothing.
    let again: Started = serde_json::from_value(
        starter
            .handle(invoke(event))
            .await
            .expect("duplicate S3 start succeeds"),
    )
    .expect("answer");
    assert!(!again.started, "{again:?}");
    assert_eq!(again.execution_arn, first.execution_arn);
    assert_eq!(again.existing_status.as_deref(), Some("RUNNING"));

    // The same upload through EventBridge (key not encoded there, same sequencer): the same
    // execution.
    let eventbridge_s3 = json!({
        "version": "0", "id": "5f1e0c8a-0000-4000-8000-000000000001", "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": "2026-05-01T12:00:00Z",
        "region": "us-east-1", "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {"version": "0", "bucket": {"name": bucket},
                   "object": {"key": key, "size": 100, "etag": etag, "sequencer": "0066A1B2C3D4E5F601"},
                   "request-id": "R1", "requester": "123456789012", "reason": "PutObject"}
    });
    let via_eventbridge: Started = serde_json::from_value(
        starter
            .handle(invoke(eventbridge_s3))
            .await
            .unwrap_or_else(|e| panic!("EventBridge S3 start: {e:?}")),
    )
    .expect("answer");
    assert!(!via_eventbridge.started, "{via_eventbridge:?}");
    assert_eq!(via_eventbridge.execution_arn, first.execution_arn);
    assert_eq!(executions(&sfn, &arn).await.len(), 1);

    // A new upload holding the direct-invoke object: a second execution, in its mode.
    let body = json!({"config": config("s3shop", 16), "mode": "catch_up", "verify": false});
    s3.put_object()
        .bucket(bucket)
        .key("catch-up.json")
        .body(serde_json::to_vec(&body).expect("json").into())
        .send()
        .await
        .expect("PutObject");
    let catch_up: Started = serde_json::from_value(
        starter
            .handle(invoke(s3_notification(
                bucket,
                "catch-up.json",
                "e2",
                "0066A1B2C3D4E5F602",
            )))
            .await
            .unwrap_or_else(|e| panic!("catch-up start: {e:?}")),
    )
    .expect("answer");
    assert!(catch_up.started, "{catch_up:?}");
    assert!(catch_up.execution_name.starts_with("s3shop-catch_up-"));
    let listed = executions(&sfn, &arn).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let input: Value = serde_json::from_str(
        &listed
            .iter()
            .find(|(name, _)| *name == catch_up.execution_name)
            .expect("listed")
            .1,
    )
    .expect("json");
    assert_eq!(input["mode"], json!("catch_up"));
    assert_eq!(input["verify"], json!(false));

    // Errors: a missing object, an invalid config file (named, values not quoted).
    let err = starter
        .handle(invoke(s3_notification(bucket, "gone.json", "e3", "03")))
        .await
        .expect_err("no such object");
    assert_eq!(err.error_type, "Migration.Fatal", "{err:?}");
    assert!(err.error_message.contains("NoSuchKey"), "{err:?}");
    assert!(
        err.error_message
            .contains("s3://tsmigrate-configs/gone.json"),
        "{err:?}"
    );
    let mut bad = config("s3shop", 16);
    bad["writer"]["bucket_count"] = json!(64);
    s3.put_object()
        .bucket(bucket)
        .key("bad.json")
        .body(serde_json::to_vec(&bad).expect("json").into())
        .send()
        .await
        .expect("PutObject");
    let err = starter
        .handle(invoke(s3_notification(bucket, "bad.json", "e4", "04")))
        .await
        .expect_err("invalid config");
    assert_eq!(err.error_type, "Migration.ConfigInvalid", "{err:?}");
    assert!(
        err.error_message
            .contains("s3://tsmigrate-configs/bad.json"),
        "{err:?}"
    );
    assert!(err.error_message.contains("writer.bucket_count"), "{err:?}");
    assert_eq!(executions(&sfn, &arn).await.len(), 2);
}

#[tokio::test]
async fn secrets_manager_resolver_reads_secrets_and_json_keys() {
    let sdk = sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let created = sm
        .create_secret()
        .name("tsmigrate/test-source")
        .secret_string(r#"{"username":"dts","password":"pw-from-secrets-manager"}"#)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateSecret: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            )
        });
    let arn = created.arn().expect("arn").to_owned();
    let resolver = SecretsManagerResolver::new(sm.clone());

    let whole = resolver.fetch(&arn).await.expect("fetch");
    assert!(whole.expose().contains("pw-from-secrets-manager"));
    let pw = SecretRef::secret_arn(&arn, Some("password"))
        .resolve("source.password", &resolver)
        .await
        .expect("resolve key");
    assert_eq!(pw.expose(), "pw-from-secrets-manager");
    // By name too.
    let by_name = resolver
        .fetch("tsmigrate/test-source")
        .await
        .expect("by name");
    assert_eq!(by_name, whole);

    let e = SecretRef::secret_arn(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf",
        None,
    )
    .resolve("source.password", &resolver)
    .await
    .expect_err("missing secret");
    let text = e.to_string();
    assert!(text.contains("ResourceNotFoundException"), "{text}");
    assert!(text.contains("source.password"), "{text}");
    assert!(!text.contains("pw-from-secrets-manager"), "{text}");

    // Cached for the TTL: an update is seen only by a resolver without cache.
    sm.put_secret_value()
        .secret_id(&arn)
        .secret_string(r#"{"password":"rotated"}"#)
        .send()
        .await
        .expect("PutSecretValue");
    let cached = SecretRef::secret_arn(&arn, Some("password"))
        .resolve("source.password", &resolver)
        .await
        .expect("cached");
    assert_eq!(cached.expose(), "pw-from-secrets-manager");
    let uncached = SecretsManagerResolver::with_ttl(sm, Duration::ZERO);
    let fresh = SecretRef::secret_arn(&arn, Some("password"))
        .resolve("source.password", &uncached)
        .await
        .expect("fresh");
    assert_eq!(fresh.expose(), "rotated");
}

#[tokio::test]
async fn execution_ended_reads_a_left_out_input_with_describe_execution() {
    use tsmigrate_core::steps::ended::ExecutionInputs;
    use tsmigrate_functions::ended::{handle_ended, SfnInputs};

    let sdk = sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let arn = create_state_machine(&sfn, "tsmigrate-ended").await;
    let started: Started = serde_json::from_value(
        Starter::new(sfn.clone(), arn.clone())
            .handle(eventbridge(
                "ev-ended",
                json!({"config": config("shop", 8)}),
            ))
            .await
            .expect("start"),
    )
    .expect("answer");
    let inputs = SfnInputs(sfn.clone());
    let input = inputs
        .input(&started.execution_arn)
        .await
        .expect("DescribeExecution")
        .expect("an input");
    let input: Value = serde_json::from_str(&input).expect("JSON");
    assert_eq!(input["config"]["migration_id"], json!("shop"));
    let missing = inputs
        .input(&format!("{}-gone", started.execution_arn))
        .await
        .expect_err("no such execution");
    assert!(
        missing.message.contains("DescribeExecution"),
        "{}",
        missing.message
    );
    // Whether an execution exists (the execution-ended handler asks it of a successor that
    // holds the lease).
    assert_eq!(
        inputs.exists(&started.execution_arn).await.expect("exists"),
        Some(true)
    );
    assert_eq!(
        inputs
            .exists(&format!("{}-c1", started.execution_arn))
            .await
            .expect("exists"),
        Some(false)
    );

    // The event without its input (too large for EventBridge): the handler describes the
    // execution, finds the migration's config and goes on to its state store: here it stops at
    // the Tablestore keys, which this resolver does not hold (the source password is never
    // asked for).
    let event = json!({
        "version": "0", "id": "status-1", "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"executionArn": started.execution_arn, "stateMachineArn": arn,
                   "name": started.execution_name, "status": "TIMED_OUT",
                   "startDate": 1, "stopDate": 2, "input": null,
                   "inputDetails": {"included": false}, "error": null, "cause": null}
    });
    let resolver = tsmigrate_core::config::LocalSecrets::new();
    let err = handle_ended(
        LambdaEvent::new(event, Context::default()),
        &inputs,
        &resolver,
    )
    .await
    .expect_err("no Tablestore keys");
    assert_eq!(err.error_type, "Migration.ConfigInvalid");
    assert!(
        err.error_message.contains("destination.access_key_id"),
        "{}",
        err.error_message
    );
}
