//! Unit tests of config parsing, defaults and the `MigrationConfig` helpers (moved out of
//! `config/mod.rs` so the module stays readable).

use super::*;

pub(crate) const MINIMAL: &str = r#"{
        "migration_id": "shop",
        "source": {"host": "db.internal", "user": "dts", "password": {"env": "SRC_PASSWORD"},
                   "database": "shop"},
        "destination": {"endpoint": "https://shop.cn-hangzhou.ots.aliyuncs.com",
                        "instance": "shop",
                        "access_key_id": {"env": "OTS_AK"},
                        "access_key_secret": {"env": "OTS_SK"}}
    }"#;

fn minimal() -> MigrationConfig {
    from_json_str(MINIMAL).unwrap()
}

#[test]
fn minimal_config_gets_every_default() {
    let c = minimal();
    assert_eq!(c.source.port, 3306);
    assert_eq!(c.source.tls, TlsMode::Preferred);
    assert_eq!(c.source.server_id, 0);
    assert_eq!(c.source.managed, Managed::SelfManaged);
    assert_eq!(c.destination.sts_token, None);
    assert_eq!(c.destination.region, None);
    assert_eq!(c.destination.max_tables, 64);
    assert_eq!(c.destination.state_table, "tsmigrate_state");
    assert_eq!(
        c.migration_types,
        [
            MigrationType::Schema,
            MigrationType::Full,
            MigrationType::Incremental
        ]
    );
    assert_eq!(c.conflicting_tables, ConflictingTables::PrecheckAndReport);
    assert_eq!(
        c.operation_types,
        [
            OperationType::Insert,
            OperationType::Update,
            OperationType::Delete
        ]
    );
    assert_eq!(c.dirty_data, DirtyDataPolicy::Skip);
    assert_eq!(c.write_mode, WriteMode::UpdateRow);
    assert_eq!(c.batch_write_mode, BatchWriteMode::BulkImport);
    assert_eq!(
        c.writer,
        WriterConfig {
            queue_size: 1024,
            thread_count: 4,
            concurrency: 8,
            bucket_count: 8
        }
    );
    assert_eq!(c.name_case, NameCase::Default);
    assert_eq!(c.objects.tables, TableSelection::All);
    assert!(c.objects.exclude_tables.is_empty());
    assert_eq!(
        c.retry,
        RetryConfig {
            connection_minutes: 720,
            other_minutes: 10
        }
    );
    assert_eq!(c.throttle, ThrottleConfig::default());
    assert!(!c.throttle.full.is_set() && !c.throttle.incremental.is_set());
    assert_eq!(
        c.heartbeat,
        HeartbeatConfig {
            enabled: false,
            table: "tsmigrate_heartbeat".into()
        }
    );
    assert_eq!(c.monitoring.latency_alert_seconds, None);
    assert_eq!(
        c.full,
        FullConfig {
            chunk_rows: 200_000,
            page_rows: 5_000,
            chunks_per_execution: 200
        }
    );
    assert_eq!(
        c.incremental,
        IncrementalConfig {
            max_events: 50_000,
            max_seconds: 60,
            max_bytes: 64 << 20,
            idle_wait_seconds: 5,
            continue_as_new_after: 500
        }
    );
    assert_eq!(c.float_precision, FloatPrecision::default());
    assert!(c.has(MigrationType::Full) && c.applies(OperationType::Delete));
    c.validate().unwrap();
}

#[test]
fn new_matches_the_serde_defaults() {
    let c = minimal();
    let built = MigrationConfig::new(
        "shop",
        SourceConfig::new("db.internal", "dts", SecretRef::env("SRC_PASSWORD"), "shop"),
        DestinationConfig::new(
            "https://shop.cn-hangzhou.ots.aliyuncs.com",
            "shop",
            SecretRef::env("OTS_AK"),
            SecretRef::env("OTS_SK"),
        ),
    );
    assert_eq!(built, c);
}

#[test]
fn serializes_and_parses_back() {
    let mut c = minimal();
    c.objects.tables = TableSelection::List(vec![TableSpec {
        name: "orders".into(),
        target: Some("orders_v2".into()),
        filter: Some("status <> 'deleted'".into()),
        primary_key: Some(vec!["id".into()]),
        columns: [(
            "amount".to_owned(),
            ColumnSpec {
                target: None,
                column_type: Some(ColumnType::String),
            },
        )]
        .into(),
    }]);
    c.throttle.full.rps = Some(1000.0);
    c.destination.sts_token = Some(SecretRef::secret_arn("arn:aws:secretsmanager:x", None));
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(
        json["objects"]["tables"][0]["columns"]["amount"]["type"],
        "string"
    );
    assert_eq!(json["source"]["managed"], "self");
    assert_eq!(from_json_value(&json).unwrap(), c);
    let all = serde_json::to_value(minimal()).unwrap();
    assert_eq!(all["objects"]["tables"], "*");
}

#[test]
fn enum_spellings() {
    let text = MINIMAL.replacen(
        "\"migration_id\": \"shop\",",
        r#""migration_id": "shop",
               "conflicting_tables": "ignore_and_proceed", "dirty_data": "block",
               "write_mode": "overwrite_row", "batch_write_mode": "batch_write_row",
               "name_case": "upper", "migration_types": ["incremental"],
               "operation_types": ["insert", "update"],"#,
        1,
    );
    let c = from_json_str(&text).unwrap();
    assert_eq!(c.conflicting_tables, ConflictingTables::IgnoreAndProceed);
    assert_eq!(c.dirty_data, DirtyDataPolicy::Block);
    assert_eq!(c.write_mode, WriteMode::OverwriteRow);
    assert_eq!(c.batch_write_mode, BatchWriteMode::BatchWriteRow);
    assert_eq!(c.name_case, NameCase::Upper);
    assert!(!c.has(MigrationType::Full));
    assert!(!c.applies(OperationType::Delete));
    let rds = MINIMAL.replace(
        "\"database\": \"shop\"",
        "\"database\": \"shop\", \"managed\": \"rds\", \"tls\": \"verify_identity\"",
    );
    let c = from_json_str(&rds).unwrap();
    assert_eq!(c.source.managed, Managed::Rds);
    assert_eq!(c.source.tls, TlsMode::VerifyIdentity);
}

#[test]
fn unknown_fields_name_their_path_and_suggest() {
    let text = MINIMAL.replacen(
        "\"migration_id\": \"shop\",",
        r#""migration_id": "shop", "writer": {"bucket_cont": 4},"#,
        1,
    );
    let e = from_json_str(&text).unwrap_err();
    let ConfigError::Parse {
        path,
        message,
        hint,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(path, "writer.bucket_cont");
    assert!(
        message.contains("expected one of `queue_size`"),
        "{message}"
    );
    assert_eq!(hint.as_deref(), Some("bucket_count"));
    assert!(e.to_string().contains("did you mean `bucket_count`"), "{e}");

    let text = MINIMAL.replace(r#"{"env": "SRC_PASSWORD"}"#, r#"{"envv": "SRC_PASSWORD"}"#);
    let e = from_json_str(&text).unwrap_err();
    let ConfigError::Parse { path, hint, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(path, "source.password.envv");
    assert_eq!(hint.as_deref(), Some("env"));

    let text = MINIMAL.replace(
        "\"database\": \"shop\"",
        "\"database\": \"shop\", \"tls\": \"requird\"",
    );
    let e = from_json_str(&text).unwrap_err();
    let ConfigError::Parse { path, hint, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(path, "source.tls");
    assert_eq!(hint.as_deref(), Some("required"));
}

#[test]
fn parse_errors_name_paths_inside_lists_and_maps() {
    let text = MINIMAL.replacen(
        "\"migration_id\": \"shop\",",
        r#""migration_id": "shop", "objects": {"tables": [{"name": "a"},
               {"name": "b", "columns": {"c": {"type": "decimal"}}}]},"#,
        1,
    );
    let e = from_json_str(&text).unwrap_err();
    let ConfigError::Parse { path, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(path, "objects.tables[1].columns.c.type");

    let text = MINIMAL.replacen(
        "\"migration_id\": \"shop\",",
        r#""migration_id": "shop", "objects": {"tables": "orders"},"#,
        1,
    );
    let e = from_json_str(&text).unwrap_err();
    assert!(e.to_string().contains("objects.tables"), "{e}");
    assert!(e.to_string().contains("\"*\""), "{e}");

    let e = from_json_str("{\"migration_id\": \"x\"").unwrap_err();
    assert!(matches!(e, ConfigError::Parse { .. }));
    let e = from_json_str(&format!("{MINIMAL} trailing")).unwrap_err();
    assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
    let e = from_json_str(r#"{"migration_id": "x"}"#).unwrap_err();
    assert!(e.to_string().contains("missing field `source`"), "{e}");
}

#[test]
fn plain_string_password_is_rejected_without_echo() {
    let text = MINIMAL.replace(r#"{"env": "SRC_PASSWORD"}"#, r#""hunter2""#);
    let e = from_json_str(&text).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("source.password"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn load_reports_unreadable_files() {
    let e = load("/nonexistent/tsmigrate/config.json").unwrap_err();
    assert!(e.is_unreadable());
    assert!(e.to_string().contains("/nonexistent/tsmigrate/config.json"));
}

#[test]
fn server_id_is_derived_stably_and_in_range() {
    let mut c = minimal();
    let id = c.effective_server_id();
    assert_eq!(id, derive_server_id("shop"));
    assert_eq!(id, c.effective_server_id());
    assert!((2..=1u32 << 31).contains(&id));
    assert_ne!(derive_server_id("shop"), derive_server_id("shop2"));
    for i in 0..10_000 {
        let id = derive_server_id(&format!("m{i}"));
        assert!((2..=1u32 << 31).contains(&id), "{id}");
    }
    // Pinned: the id must not change between releases (it names the replica on the source).
    assert_eq!(
        derive_server_id(""),
        2 + (0xcbf2_9ce4_8422_2325u64 % ((1 << 31) - 1)) as u32
    );
    c.source.server_id = 77;
    assert_eq!(c.effective_server_id(), 77);
}

#[test]
fn endpoints() {
    assert_eq!(
        Endpoint::parse("embedded:./data").unwrap(),
        Endpoint::Embedded {
            dir: "./data".into()
        }
    );
    assert_eq!(
        Endpoint::parse("https://i.cn-hangzhou.ots.aliyuncs.com/").unwrap(),
        Endpoint::Http {
            url: "https://i.cn-hangzhou.ots.aliyuncs.com".into(),
            https: true,
            host: "i.cn-hangzhou.ots.aliyuncs.com".into(),
            port: None
        }
    );
    assert_eq!(
        Endpoint::parse("http://127.0.0.1:8801").unwrap(),
        Endpoint::Http {
            url: "http://127.0.0.1:8801".into(),
            https: false,
            host: "127.0.0.1".into(),
            port: Some(8801)
        }
    );
    assert!(matches!(
        Endpoint::parse("http://[::1]:8801"),
        Ok(Endpoint::Http {
            port: Some(8801),
            ..
        })
    ));
    for bad in [
        "embedded:",
        "ftp://x",
        "i.ots.aliyuncs.com",
        "http://",
        "http://h:0",
        "http://h:99999",
        "http://h/path",
        "http://u@h",
        "http://h h",
        "http://[zz]:1",
    ] {
        assert!(Endpoint::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn loopback_and_local_setup() {
    for h in ["localhost", "127.0.0.1", "127.3.2.1", "::1", "[::1]"] {
        assert!(is_loopback_host(h), "{h}");
    }
    for h in ["db.internal", "10.0.0.1", "localhost.example.com"] {
        assert!(!is_loopback_host(h), "{h}");
    }
    let mut c = minimal();
    assert!(!c.is_local_setup());
    c.destination.endpoint = "embedded:./d".into();
    assert!(c.is_local_setup());
    c.destination.endpoint = "http://localhost:8801".into();
    assert!(c.is_local_setup());
    let mut c = minimal();
    c.source.host = "127.0.0.1".into();
    assert!(c.is_local_setup());
}

#[test]
fn name_case_and_targets() {
    assert_eq!(NameCase::Default.apply("Orders"), "Orders");
    assert_eq!(NameCase::Source.apply("Orders"), "Orders");
    assert_eq!(NameCase::Lower.apply("Orders"), "orders");
    assert_eq!(NameCase::Upper.apply("Orders"), "ORDERS");
    let mut spec = TableSpec::new("Orders");
    spec.columns.insert(
        "Note".into(),
        ColumnSpec {
            target: Some("Remark".into()),
            column_type: None,
        },
    );
    assert_eq!(spec.target_name(NameCase::Lower), "orders");
    assert_eq!(spec.column_target("Note", NameCase::Lower), "Remark");
    assert_eq!(spec.column_target("Amount", NameCase::Lower), "amount");
    spec.target = Some("Orders_V2".into());
    assert_eq!(spec.target_name(NameCase::Lower), "Orders_V2");
}

#[test]
fn secrets_resolve_from_env_for_the_whole_config() {
    let mut c = minimal();
    c.source.password = SecretRef::env("TSMIGRATE_TEST_CFG_PW_51A0");
    c.destination.access_key_id = SecretRef::env("TSMIGRATE_TEST_CFG_AK_51A0");
    c.destination.access_key_secret = SecretRef::literal("sk");
    std::env::set_var("TSMIGRATE_TEST_CFG_PW_51A0", "pw");
    let e = c.resolve_secrets_env().unwrap_err();
    assert_eq!(e.path, "destination.access_key_id");
    assert!(e.to_string().contains("TSMIGRATE_TEST_CFG_AK_51A0"));
    std::env::set_var("TSMIGRATE_TEST_CFG_AK_51A0", "ak");
    let s = c.resolve_secrets_env().unwrap();
    assert_eq!(s.source_password.expose(), "pw");
    assert_eq!(s.access_key_id.expose(), "ak");
    assert_eq!(s.access_key_secret.expose(), "sk");
    assert!(s.sts_token.is_none());
    assert!(!format!("{s:?}").contains("pw"));
}

#[test]
fn detached_literals_survive_a_payload_round_trip() {
    let mut c = minimal();
    c.source.password = SecretRef::env("TSMIGRATE_TEST_CFG_PW_DETACH_3B7E");
    std::env::set_var("TSMIGRATE_TEST_CFG_PW_DETACH_3B7E", "pw");
    c.destination.endpoint = "embedded:./d".into();
    c.destination.access_key_id = SecretRef::literal("local-ak");
    c.destination.access_key_secret = SecretRef::literal("local-secret");
    // Serialized as is, literals are redacted.
    let redacted = serde_json::to_string(&c).unwrap();
    assert!(!redacted.contains("local-secret"));
    let secrets = c.detach_literal_secrets();
    assert_eq!(secrets.len(), 2);
    let payload = serde_json::to_value(&c).unwrap();
    assert_eq!(
        payload["destination"]["access_key_secret"]["secret_arn"],
        "local:destination.access_key_secret"
    );
    let back = from_json_value(&payload).unwrap();
    back.validate().unwrap();
    let resolved = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(back.resolve_secrets(&secrets))
        .unwrap();
    assert_eq!(resolved.access_key_secret.expose(), "local-secret");
    assert_eq!(resolved.source_password.expose(), "pw");
}

#[test]
fn debug_output_redacts_literals() {
    let mut c = minimal();
    c.source.password = SecretRef::literal("hunter2");
    assert!(!format!("{c:?}").contains("hunter2"));
    assert!(!format!("{c:#?}").contains("hunter2"));
    assert!(!serde_json::to_string(&c).unwrap().contains("hunter2"));
}

#[test]
fn edit_distance_and_hints() {
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(
        nearest_expected(
            "unknown field `bucket_cont`, expected one of `queue_size`, `bucket_count`"
        ),
        Some("bucket_count".into())
    );
    assert_eq!(
        nearest_expected("unknown field `zzz`, expected one of `queue_size`, `bucket_count`"),
        None
    );
    assert_eq!(nearest_expected("missing field `x`"), None);
}
