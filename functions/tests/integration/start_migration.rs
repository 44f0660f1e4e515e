//! `start-migration` without AWS: the event shapes it accepts and refuses, validation, and the
//! execution name's determinism. The Step Functions side runs against moto in
//! `tests/aws_emulator.rs`.

use serde_json::{json, Value};
use tsmigrate_functions::start::{
    decode_s3_key, execution_name, parse_config_object, parse_event, AllowedSecrets, Mode, Origin,
    S3Object, StartEvent, StartRequest, MAX_EXECUTION_NAME_LEN,
};

fn config(id: &str) -> Value {
    json!({
        "migration_id": id,
        "source": {"host": "db.internal.example.com", "user": "dts",
                   "password": {"secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:src-AbC", "key": "password"},
                   "database": "shop"},
        "destination": {"endpoint": "https://shop.cn-hangzhou.ots.aliyuncs.com", "instance": "shop",
                        "access_key_id": {"secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ots-DeF", "key": "ak"},
                        "access_key_secret": {"secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ots-DeF", "key": "sk"}}
    })
}

fn eventbridge(id: &str, detail: Value) -> Value {
    json!({
        "version": "0", "id": id, "detail-type": "tsmigrate start", "source": "custom.tsmigrate",
        "account": "123456789012", "time": "2026-05-01T12:00:00Z", "region": "us-east-1",
        "resources": [], "detail": detail
    })
}

fn name_of(request: &StartRequest) -> String {
    request.prepare().expect("prepare").name
}

fn parse(payload: Value, request_id: &str) -> StartRequest {
    match parse_event(&payload, request_id).unwrap_or_else(|e| panic!("{e}")) {
        StartEvent::Inline(request) => *request,
        StartEvent::S3(object) => panic!("not an inline request: {object:?}"),
    }
}

fn s3_object(payload: Value) -> S3Object {
    match parse_event(&payload, "req").unwrap_or_else(|e| panic!("{e}")) {
        StartEvent::S3(object) => object,
        StartEvent::Inline(request) => panic!("not an S3 event: {request:?}"),
    }
}

fn refused(payload: Value) -> String {
    let e = parse_event(&payload, "req").expect_err("must be refused");
    assert_eq!(e.name.as_str(), "Migration.ConfigInvalid", "{e}");
    e.message
}

#[test]
fn the_three_shapes() {
    // (c) direct invoke, mode given.
    let direct = parse(
        json!({"config": config("shop"), "mode": "catch_up"}),
        "req-1",
    );
    assert_eq!(direct.execution.mode, Mode::CatchUp);
    assert_eq!(direct.execution.config.migration_id, "shop");
    assert_eq!(
        direct.origin,
        Origin::LambdaRequest {
            request_id: "req-1".into()
        }
    );
    // Mode defaults to full_and_incremental; an idempotency_key is the dedup key.
    let keyed = parse(
        json!({"config": config("shop"), "idempotency_key": "deploy-42"}),
        "req-1",
    );
    assert_eq!(keyed.execution.mode, Mode::FullAndIncremental);
    assert_eq!(keyed.origin, Origin::IdempotencyKey("deploy-42".into()));

    // (a) EventBridge: detail holds the same object; the event id is the dedup key.
    let eb = parse(
        eventbridge(
            "ev-1",
            json!({"config": config("shop"), "mode": "full_and_incremental"}),
        ),
        "req-1",
    );
    assert_eq!(eb.execution.mode, Mode::FullAndIncremental);
    assert_eq!(
        eb.origin,
        Origin::EventBridge {
            event_id: "ev-1".into()
        }
    );

    // (b) S3 object-created events name the config object: a notification (key URL-encoded)
    // or EventBridge (key as is); the upload's sequencer tells deliveries apart.
    let notification = s3_object(
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "cfg"}, "object": {"key": "shop+1%2B1.json", "eTag": "abc", "sequencer": "01"}}}]}),
    );
    assert_eq!(
        notification,
        S3Object {
            bucket: "cfg".into(),
            key: "shop 1+1.json".into(),
            version_id: None,
            revision: "01".into()
        }
    );
    let eventbridge_s3 = s3_object(
        json!({"version": "0", "id": "e", "detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": "cfg"}, "object": {"key": "shop 1+1.json", "etag": "abc", "sequencer": "01"}}}),
    );
    assert_eq!(eventbridge_s3, notification);
    // Without a sequencer: the version id, else the ETag.
    let versioned = s3_object(
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Copy",
        "s3": {"bucket": {"name": "cfg"}, "object": {"key": "a.json", "eTag": "abc", "versionId": "v7"}}}]}),
    );
    assert_eq!(
        (versioned.version_id.as_deref(), versioned.revision.as_str()),
        (Some("v7"), "v7")
    );
    let etag_only = s3_object(json!({"source": "aws.s3", "detail-type": "Object Created",
        "detail": {"bucket": {"name": "cfg"}, "object": {"key": "a.json", "etag": "abc"}}}));
    assert_eq!(etag_only.revision, "abc");
}

#[test]
fn unusable_s3_events_are_refused() {
    let record = |name: &str| {
        json!({"eventSource": "aws:s3", "eventName": name,
            "s3": {"bucket": {"name": "cfg"}, "object": {"key": "a.json", "sequencer": "01"}}})
    };
    let m = refused(json!({"Records": [record("ObjectRemoved:Delete")]}));
    assert!(m.contains("ObjectCreated"), "{m}");
    let m = refused(json!({"Records": [record("ObjectCreated:Put"), record("ObjectCreated:Put")]}));
    assert!(m.contains("2 records"), "{m}");
    let m = refused(json!({"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}}));
    assert!(m.contains("Object Created"), "{m}");
    let m = refused(
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "cfg"}, "object": {"key": "a.json"}}}]}),
    );
    assert!(m.contains("sequencer"), "{m}");
    let m = refused(
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "cfg"}, "object": {"key": "a%2", "sequencer": "01"}}}]}),
    );
    assert!(m.contains("URL encoding"), "{m}");
}

#[test]
fn s3_keys_are_url_decoded() {
    assert_eq!(
        decode_s3_key("a+b%2Bc%3D%C3%A9.json").ok().as_deref(),
        Some("a b+c=é.json")
    );
    assert_eq!(
        decode_s3_key("plain/key.json").ok().as_deref(),
        Some("plain/key.json")
    );
    for bad in ["%", "%4", "%zz", "%ff"] {
        assert!(decode_s3_key(bad).is_err(), "{bad}");
    }
}

#[test]
fn config_objects_are_bare_configs_or_start_objects() {
    let object = S3Object {
        bucket: "cfg".into(),
        key: "shop.json".into(),
        version_id: None,
        revision: "01".into(),
    };
    let bare = parse_config_object(&object, config("shop").to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bare.execution.mode, Mode::FullAndIncremental);
    assert_eq!(bare.execution.verify, None);
    assert_eq!(bare.origin.dedup_key(), "s3:cfg/shop.json@01");
    // The same config inline with the same dedup key is the same execution.
    let inline = parse(
        json!({"config": config("shop"), "idempotency_key": "k"}),
        "r",
    );
    let mut same = inline.clone();
    same.execution.dedup_key = bare.execution.dedup_key.clone();
    assert_eq!(name_of(&same), name_of(&bare));

    let wrapped = json!({"config": config("shop"), "mode": "catch_up", "verify": true});
    let wrapped = parse_config_object(&object, wrapped.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(wrapped.execution.mode, Mode::CatchUp);
    assert_eq!(wrapped.execution.verify, Some(true));
    assert_ne!(name_of(&wrapped), name_of(&bare));

    let e = parse_config_object(&object, b"{not json").expect_err("not JSON");
    assert_eq!(e.name.as_str(), "Migration.ConfigInvalid");
    assert!(e.message.contains("s3://cfg/shop.json is not JSON"), "{e}");
    let mut literal = config("shop");
    literal["source"]["host"] = json!("127.0.0.1");
    literal["source"]["password"] = json!({"value": "local-hunter2"});
    let e = parse_config_object(&object, literal.to_string().as_bytes()).expect_err("literal");
    assert!(
        e.message.contains("s3://cfg/shop.json: source.password"),
        "{e}"
    );
    assert!(!e.message.contains("hunter2"), "{e}");
    let e = parse_config_object(&object, &[0xff, 0xfe]).expect_err("binary");
    assert!(e.message.contains("not UTF-8"), "{e}");
}

#[test]
fn unrecognized_and_malformed_events_are_refused_without_quoting_values() {
    let m = refused(json!({"hello": "hunter2"}));
    assert!(
        m.contains("unrecognized event") && m.contains("[hello]"),
        "{m}"
    );
    assert!(!m.contains("hunter2"), "{m}");
    let m = refused(json!("just a string"));
    assert!(m.contains("not a JSON object"), "{m}");
    let m = refused(json!({"config": config("shop"), "mode": "sometimes"}));
    assert!(m.contains("unknown variant"), "{m}");
    let m = refused(json!({"config": config("shop"), "moed": "catch_up"}));
    assert!(m.contains("unknown field `moed`"), "{m}");
    let m = refused(eventbridge("", json!({"config": config("shop")})));
    assert!(m.contains("no \"id\""), "{m}");
    let m = refused(eventbridge("ev", json!({"mode": "catch_up"})));
    assert!(m.contains("missing field `config`"), "{m}");
}

#[test]
fn configs_are_validated_and_literal_secrets_refused() {
    let mut bad = config("shop");
    bad["writer"] = json!({"concurrency": 2, "bucket_count": 8});
    let m = refused(json!({"config": bad}));
    assert!(m.contains("writer.bucket_count"), "{m}");

    let mut typo = config("shop");
    typo["migration_typos"] = json!(["full"]);
    let m = refused(json!({"config": typo}));
    assert!(m.contains("migration_typos"), "{m}");

    // Literals are allowed by validate() for loopback setups, but never in an execution input.
    let mut local = config("shop");
    local["source"]["host"] = json!("127.0.0.1");
    local["source"]["password"] = json!({"value": "local-hunter2"});
    let m = refused(json!({"config": local}));
    assert!(
        m.contains("source.password") && m.contains("secret_arn"),
        "{m}"
    );
    assert!(!m.contains("local-hunter2"), "{m}");

    let mut full_only = config("shop");
    full_only["migration_types"] = json!(["schema", "full"]);
    let m = refused(json!({"config": full_only.clone(), "mode": "catch_up"}));
    assert!(m.contains("catch_up") && m.contains("incremental"), "{m}");
    parse(json!({"config": full_only}), "r");
}

#[test]
fn the_input_is_the_normalized_config_and_mode() {
    let request = parse(json!({"config": config("shop"), "mode": "catch_up"}), "r");
    let prepared = request.prepare().expect("prepare");
    assert_eq!(prepared.input["mode"], json!("catch_up"));
    let keys: Vec<&String> = prepared.input.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    // `verify` is passed on when given.
    let verified = parse(json!({"config": config("shop"), "verify": true}), "r");
    let with_verify = verified.prepare().expect("prepare");
    assert_eq!(with_verify.input["verify"], json!(true));
    assert_eq!(with_verify.input["mode"], json!("full_and_incremental"));
    let cfg = &prepared.input["config"];
    // Defaults are spelled out, so the ASL can read them without guarding for absence.
    assert_eq!(cfg["full"]["chunks_per_execution"], json!(200));
    assert_eq!(cfg["incremental"]["idle_wait_seconds"], json!(5));
    assert_eq!(cfg["source"]["port"], json!(3306));
    // Secret references stay references.
    assert_eq!(
        cfg["source"]["password"],
        json!({"secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:src-AbC", "key": "password"})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&prepared.input_text).expect("json"),
        prepared.input
    );
    // The steps parse it back to the same config.
    let again = tsmigrate_core::config::from_json_value(cfg).expect("parses");
    assert_eq!(again, request.execution.config);
}

#[test]
fn execution_names_are_deterministic() {
    let event = eventbridge(
        "ev-1",
        json!({"config": config("shop"), "mode": "full_and_incremental"}),
    );
    let first = name_of(&parse(event.clone(), "req-a"));
    // The same event delivered again (another Lambda request): the same name.
    assert_eq!(name_of(&parse(event.clone(), "req-b")), first);
    assert!(first.starts_with("shop-full_and_incremental-"), "{first}");
    assert!(first.len() <= MAX_EXECUTION_NAME_LEN);
    assert!(first
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));

    // Key order and spelled-out defaults do not matter: the input is normalized.
    let mut reordered = serde_json::Map::new();
    let original = config("shop");
    let mut keys: Vec<&String> = original.as_object().expect("object").keys().collect();
    keys.reverse();
    for k in keys {
        reordered.insert(k.clone(), original[k].clone());
    }
    let mut explicit = Value::Object(reordered);
    explicit["source"]["port"] = json!(3306);
    explicit["full"] = json!({"chunk_rows": 200000});
    let same = eventbridge(
        "ev-1",
        json!({"config": explicit, "mode": "full_and_incremental"}),
    );
    assert_eq!(name_of(&parse(same, "req-c")), first);

    // Another event, mode or config: another name.
    let other_event = eventbridge("ev-2", json!({"config": config("shop")}));
    assert_ne!(name_of(&parse(other_event, "req-a")), first);
    let other_mode = eventbridge(
        "ev-1",
        json!({"config": config("shop"), "mode": "catch_up"}),
    );
    let other_mode = name_of(&parse(other_mode, "req-a"));
    assert_ne!(other_mode, first);
    assert!(other_mode.starts_with("shop-catch_up-"), "{other_mode}");
    let mut changed = config("shop");
    changed["writer"] = json!({"concurrency": 16});
    let other_config = eventbridge("ev-1", json!({"config": changed}));
    assert_ne!(name_of(&parse(other_config, "req-a")), first);
    let with_verify = eventbridge("ev-1", json!({"config": config("shop"), "verify": false}));
    assert_ne!(name_of(&parse(with_verify, "req-a")), first);

    // Direct invokes: Lambda's retry of one request keeps the name, a new request does not,
    // unless the caller pins it with an idempotency_key.
    let direct = json!({"config": config("shop")});
    let a = name_of(&parse(direct.clone(), "req-a"));
    assert_eq!(name_of(&parse(direct.clone(), "req-a")), a);
    assert_ne!(name_of(&parse(direct, "req-b")), a);
    let keyed = json!({"config": config("shop"), "idempotency_key": "k1"});
    assert_eq!(
        name_of(&parse(keyed.clone(), "req-a")),
        name_of(&parse(keyed, "req-b"))
    );

    // A 64-character id still fits in 80 characters, hash intact.
    let long_id = "x".repeat(64);
    let long = name_of(&parse(json!({"config": config(&long_id)}), "r"));
    assert!(long.len() <= MAX_EXECUTION_NAME_LEN, "{long}");
    assert_eq!(long.rsplit('-').next().map(str::len), Some(16), "{long}");

    // The name is a pure function of its inputs.
    let input = json!({"b": 1, "a": [1, 2]});
    let reordered_input = json!({"a": [1, 2], "b": 1});
    assert_eq!(
        execution_name("m", Mode::CatchUp, &input, "k"),
        execution_name("m", Mode::CatchUp, &reordered_input, "k")
    );
    assert_ne!(
        execution_name("m", Mode::CatchUp, &input, "k"),
        execution_name("m", Mode::CatchUp, &input, "k2")
    );
}

/// The stack's allowed list: a config may reference those secrets only (by full ARN), never an
/// environment variable; the error names the field and the ARN, and how to fix it.
#[test]
fn configs_reference_only_the_stacks_secrets() {
    let src = "arn:aws:secretsmanager:us-east-1:123456789012:secret:src-AbC";
    let ots = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ots-DeF";
    let request = parse(json!({"config": config("shop")}), "req");
    let shop = &request.execution.config;

    let allowed = AllowedSecrets::parse(&format!(" {ots} ,{src},,{src}"));
    assert_eq!(allowed.arns(), [ots, src]);
    allowed.check(shop).expect("both secrets allowed");

    // The Tablestore secret is not in the list: both of its fields are named.
    let e = AllowedSecrets::parse(src)
        .check(shop)
        .expect_err("ots secret not allowed");
    assert_eq!(e.name.as_str(), "Migration.ConfigInvalid");
    assert!(e.message.contains("destination.access_key_id references secret arn:aws:secretsmanager:us-east-1:123456789012:secret:ots-DeF"), "{e}");
    assert!(e.message.contains("destination.access_key_secret"), "{e}");
    assert!(!e.message.contains("source.password"), "{e}");
    assert!(e.message.contains("SourceSecretArns"), "{e}");
    // A name or a partial ARN is not the listed ARN.
    let mut by_name = config("shop");
    by_name["source"]["password"] = json!({"secret_arn": "src", "key": "password"});
    let request = parse(json!({"config": by_name}), "req");
    let e = allowed
        .check(&request.execution.config)
        .expect_err("by name");
    assert!(
        e.message.contains("source.password references secret src,"),
        "{e}"
    );

    // An empty list allows nothing.
    let e = AllowedSecrets::parse("")
        .check(shop)
        .expect_err("none allowed");
    assert!(e.message.contains("allowed: none"), "{e}");

    // {"env": …} would read the function's own environment (its AWS keys): refused.
    let mut env = config("shop");
    env["source"]["password"] = json!({"env": "AWS_SECRET_ACCESS_KEY"});
    let request = parse(json!({"config": env}), "req");
    let e = allowed.check(&request.execution.config).expect_err("env");
    assert!(
        e.message
            .contains("source.password is an {\"env\": …} reference"),
        "{e}"
    );
    assert!(!e.message.contains("AWS_SECRET_ACCESS_KEY"), "{e}");
}
