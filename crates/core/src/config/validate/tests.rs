//! Unit tests of `MigrationConfig::validate`, one per config section (moved out of
//! `validate/mod.rs` so the checks read on their own).

use super::super::*;
use super::*;

fn base() -> MigrationConfig {
    MigrationConfig::new(
        "shop",
        SourceConfig::new("db.internal", "dts", SecretRef::env("SRC_PASSWORD"), "shop"),
        DestinationConfig::new(
            "https://shop.cn-hangzhou.ots.aliyuncs.com",
            "shop",
            SecretRef::env("OTS_AK"),
            SecretRef::env("OTS_SK"),
        ),
    )
}

/// The paths `validate` reports after `change`.
fn paths_after(change: impl FnOnce(&mut MigrationConfig)) -> Vec<String> {
    let mut c = base();
    change(&mut c);
    match c.validate() {
        Ok(()) => Vec::new(),
        Err(e) => e.errors.into_iter().map(|e| e.path).collect(),
    }
}

fn spec(name: &str) -> TableSpec {
    TableSpec::new(name)
}

fn tables(c: &mut MigrationConfig, specs: Vec<TableSpec>) {
    c.objects.tables = TableSelection::List(specs);
}

#[test]
fn base_is_valid() {
    base().validate().unwrap();
}

#[test]
fn migration_id() {
    for bad in ["", "has space", "dot.ted", &"x".repeat(65), "ünï"] {
        let bad = bad.to_owned();
        assert_eq!(paths_after(|c| c.migration_id = bad), ["migration_id"]);
    }
    for good in ["a", "shop-orders_2", &"x".repeat(64)] {
        let good = good.to_owned();
        assert!(paths_after(|c| c.migration_id = good).is_empty());
    }
}

#[test]
fn source_fields() {
    assert_eq!(
        paths_after(|c| {
            c.source.host = " ".into();
            c.source.port = 0;
            c.source.user = "".into();
            c.source.database = "".into();
        }),
        [
            "source.host",
            "source.port",
            "source.user",
            "source.database"
        ]
    );
    assert_eq!(
        paths_after(|c| c.source.database = "d".repeat(65)),
        ["source.database"]
    );
}

#[test]
fn a_tls_ca_file_needs_a_verifying_mode() {
    use crate::config::TlsMode;
    for mode in [TlsMode::Preferred, TlsMode::Required, TlsMode::Disabled] {
        assert_eq!(
            paths_after(|c| {
                c.source.tls = mode;
                c.source.tls_ca_file = Some("/etc/ssl/rds-global-bundle.pem".into());
            }),
            ["source.tls_ca_file"],
            "{mode}"
        );
    }
    for mode in [TlsMode::VerifyCa, TlsMode::VerifyIdentity] {
        assert!(paths_after(|c| {
            c.source.tls = mode;
            c.source.tls_ca_file = Some("/etc/ssl/rds-global-bundle.pem".into());
        })
        .is_empty());
        assert_eq!(
            paths_after(|c| {
                c.source.tls = mode;
                c.source.tls_ca_file = Some("".into());
            }),
            ["source.tls_ca_file"]
        );
    }
}

#[test]
fn destination_fields() {
    assert_eq!(
        paths_after(|c| {
            c.destination.endpoint = "ots.aliyuncs.com".into();
            c.destination.instance = "a".into();
            c.destination.region = Some("CN HANGZHOU".into());
            c.destination.max_tables = 0;
            c.destination.state_table = "1state".into();
        }),
        [
            "destination.endpoint",
            "destination.instance",
            "destination.region",
            "destination.max_tables",
            "destination.state_table"
        ]
    );
    for bad in ["ab", "1abc", "abc-", "abc_def", &"a".repeat(17)] {
        assert!(!is_instance_name(bad), "{bad}");
    }
    for good in ["abc", "local", "my-instance-01", &"a".repeat(16)] {
        assert!(is_instance_name(good), "{good}");
    }
    assert!(paths_after(|c| {
        c.destination.endpoint = "embedded:./data".into();
        c.destination.region = Some("cn-hangzhou".into());
    })
    .is_empty());
}

#[test]
fn secret_refs() {
    assert_eq!(
        paths_after(|c| {
            c.source.password = SecretRef::env("1BAD");
            c.destination.access_key_id = SecretRef::secret_arn("arn:aws:s3:::bucket", Some(""));
            c.destination.access_key_secret = SecretRef::literal("sk");
            c.destination.sts_token = Some(SecretRef::literal(REDACTED));
        }),
        [
            "source.password.env",
            "destination.access_key_id.secret_arn",
            "destination.access_key_id.key",
            "destination.access_key_secret",
            "destination.sts_token.value"
        ]
    );
    // Secret names (not ARNs) are accepted by Secrets Manager too.
    assert!(
        paths_after(|c| c.source.password = SecretRef::secret_arn("prod/shop", None)).is_empty()
    );
}

#[test]
fn literal_secrets_only_for_local_setups() {
    let literal = |c: &mut MigrationConfig| c.source.password = SecretRef::literal("pw");
    assert_eq!(paths_after(literal), ["source.password"]);
    let e = {
        let mut c = base();
        literal(&mut c);
        c.validate().unwrap_err()
    };
    assert!(e.errors[0].fix.contains("{\"env\""), "{e}");
    assert!(!e.to_string().contains("\"pw\""));
    assert!(paths_after(|c| {
        literal(c);
        c.destination.endpoint = "embedded:./d".into();
    })
    .is_empty());
    assert!(paths_after(|c| {
        literal(c);
        c.source.host = "127.0.0.1".into();
    })
    .is_empty());
    assert!(paths_after(|c| {
        literal(c);
        c.destination.endpoint = "http://localhost:8801".into();
    })
    .is_empty());
}

#[test]
fn type_lists() {
    assert_eq!(
        paths_after(|c| c.migration_types.clear()),
        ["migration_types"]
    );
    assert_eq!(
        paths_after(|c| c.migration_types.push(MigrationType::Full)),
        ["migration_types[3]"]
    );
    assert_eq!(
        paths_after(|c| c.operation_types.clear()),
        ["operation_types"]
    );
    assert!(paths_after(|c| {
        c.operation_types.clear();
        c.migration_types = vec![MigrationType::Schema, MigrationType::Full];
    })
    .is_empty());
    assert_eq!(
        paths_after(|c| c.operation_types.push(OperationType::Insert)),
        ["operation_types[3]"]
    );
}

#[test]
fn writer() {
    assert_eq!(
        paths_after(|c| c.writer.bucket_count = 9),
        ["writer.bucket_count"]
    );
    assert!(paths_after(|c| {
        c.writer.bucket_count = 16;
        c.writer.concurrency = 16;
    })
    .is_empty());
    assert_eq!(
        paths_after(|c| {
            c.writer.queue_size = 0;
            c.writer.thread_count = 65;
            c.writer.concurrency = 0;
            c.writer.bucket_count = 0;
        }),
        [
            "writer.queue_size",
            "writer.thread_count",
            "writer.concurrency",
            "writer.bucket_count"
        ]
    );
    assert_eq!(
        paths_after(|c| c.writer.queue_size = 1 << 20),
        ["writer.queue_size"]
    );
}

#[test]
fn exclude_tables() {
    assert_eq!(
        paths_after(|c| c.objects.exclude_tables = vec!["a".into(), "".into(), "a".into()]),
        ["objects.exclude_tables[1]", "objects.exclude_tables[2]"]
    );
    assert_eq!(
        paths_after(|c| {
            tables(c, vec![spec("a")]);
            c.objects.exclude_tables = vec!["b".into()];
        }),
        ["objects.exclude_tables"]
    );
}

#[test]
fn table_list_sizes() {
    assert_eq!(paths_after(|c| tables(c, vec![])), ["objects.tables"]);
    let many: Vec<TableSpec> = (0..1001).map(|i| spec(&format!("t{i}"))).collect();
    assert_eq!(
        paths_after(|c| {
            c.destination.max_tables = 5000;
            tables(c, many.clone());
        }),
        ["objects.tables"]
    );
    // 64 tables + the state table exceed the default 64-table instance limit.
    let sixty_four: Vec<TableSpec> = (0..64).map(|i| spec(&format!("t{i}"))).collect();
    assert_eq!(
        paths_after(|c| tables(c, sixty_four.clone())),
        ["objects.tables"]
    );
    assert!(paths_after(|c| tables(c, sixty_four[..63].to_vec())).is_empty());
}

#[test]
fn table_names_and_targets() {
    let mut renamed = spec("b");
    renamed.target = Some("a".into());
    let mut bad_target = spec("c");
    bad_target.target = Some("9c".into());
    let mut state = spec("d");
    state.target = Some("tsmigrate_state".into());
    assert_eq!(
        paths_after(|c| tables(
            c,
            vec![
                spec("a"),
                spec("a"),
                renamed,
                bad_target,
                spec("order-items"),
                state,
                spec("")
            ]
        )),
        [
            "objects.tables[1].name",
            "objects.tables[2].target",
            "objects.tables[3].target",
            "objects.tables[4].name",
            "objects.tables[5].target",
            "objects.tables[6].name"
        ]
    );
    // Targets collide after the name case policy.
    assert_eq!(
        paths_after(|c| {
            c.name_case = NameCase::Lower;
            tables(c, vec![spec("Orders"), spec("orders")]);
        }),
        ["objects.tables[1].name"]
    );
    assert!(paths_after(|c| tables(c, vec![spec("Orders"), spec("orders")])).is_empty());
}

#[test]
fn filters() {
    let with = |f: &str| {
        let mut s = spec("t");
        s.filter = Some(f.into());
        s
    };
    assert!(paths_after(|c| tables(c, vec![with("status <> 'deleted'")])).is_empty());
    for bad in [
        "a = 1; DROP TABLE t",
        "id IN (SELECT id FROM x)",
        "a = = 1",
        "",
    ] {
        let p = paths_after(|c| tables(c, vec![with(bad)]));
        assert_eq!(p, ["objects.tables[0].filter"], "{bad}");
    }
}

#[test]
fn primary_keys_and_columns() {
    let mut s = spec("t");
    s.primary_key = Some(vec![]);
    let mut s2 = spec("u");
    s2.primary_key = Some(vec![
        "a".into(),
        "b".into(),
        "c".into(),
        "d".into(),
        "e".into(),
    ]);
    let mut s3 = spec("v");
    s3.primary_key = Some(vec!["a".into(), "a".into(), "".into()]);
    assert_eq!(
        paths_after(|c| tables(c, vec![s, s2, s3])),
        [
            "objects.tables[0].primary_key",
            "objects.tables[1].primary_key",
            "objects.tables[2].primary_key[2]",
            "objects.tables[2].primary_key[1]"
        ]
    );

    let mut s = spec("t");
    s.primary_key = Some(vec!["id".into(), "ok".into()]);
    let col = |target: Option<&str>, t: Option<ColumnType>| ColumnSpec {
        target: target.map(str::to_owned),
        column_type: t,
    };
    s.columns
        .insert("id".into(), col(None, Some(ColumnType::Double)));
    s.columns
        .insert("ok".into(), col(None, Some(ColumnType::EpochMicros)));
    s.columns.insert("a".into(), col(Some("x"), None));
    s.columns
        .insert("b".into(), col(Some("x"), Some(ColumnType::Boolean)));
    s.columns.insert("c-d".into(), col(None, None));
    s.columns.insert("e".into(), col(Some("bad name"), None));
    s.columns.insert("".into(), col(None, None));
    assert_eq!(
        paths_after(|c| tables(c, vec![s])),
        [
            "objects.tables[0].columns.",
            "objects.tables[0].columns.b.target",
            "objects.tables[0].columns.c-d",
            "objects.tables[0].columns.e.target",
            "objects.tables[0].columns.id.type"
        ]
    );
}

#[test]
fn retry_windows() {
    assert_eq!(
        paths_after(|c| c.retry.other_minutes = 720),
        ["retry.other_minutes"]
    );
    assert_eq!(
        paths_after(|c| {
            c.retry.connection_minutes = 0;
            c.retry.other_minutes = 0;
        }),
        ["retry.connection_minutes", "retry.other_minutes"]
    );
    assert_eq!(
        paths_after(|c| c.retry.connection_minutes = 1441),
        ["retry.connection_minutes"]
    );
    assert!(paths_after(|c| {
        c.retry.connection_minutes = 2;
        c.retry.other_minutes = 1;
    })
    .is_empty());
}

#[test]
fn throttle() {
    assert_eq!(
        paths_after(|c| {
            c.throttle.full.source_qps = Some(0.0);
            c.throttle.full.rps = Some(-1.0);
            c.throttle.full.mb_per_s = Some(f64::NAN);
            c.throttle.incremental.rps = Some(f64::INFINITY);
            c.throttle.incremental.mb_per_s = Some(2.5);
        }),
        [
            "throttle.full.source_qps",
            "throttle.full.rps",
            "throttle.full.mb_per_s",
            "throttle.incremental.rps"
        ]
    );
    assert_eq!(
        paths_after(|c| {
            c.migration_types = vec![MigrationType::Incremental];
            c.throttle.full.rps = Some(100.0);
            c.throttle.incremental.rps = Some(100.0);
        }),
        ["throttle.full"]
    );
    assert_eq!(
        paths_after(|c| {
            c.migration_types = vec![MigrationType::Full];
            c.throttle.incremental.mb_per_s = Some(1.0);
        }),
        ["throttle.incremental"]
    );
}

#[test]
fn heartbeat_and_monitoring() {
    assert_eq!(
        paths_after(|c| {
            c.heartbeat.table = "hb-table".into();
            c.monitoring.latency_alert_seconds = Some(0);
        }),
        ["heartbeat.table", "monitoring.latency_alert_seconds"]
    );
    assert!(paths_after(|c| {
        c.heartbeat.enabled = true;
        c.monitoring.latency_alert_seconds = Some(1);
    })
    .is_empty());
    // The heartbeat table is never migrated, and only binlog batches write it.
    assert_eq!(
        paths_after(|c| {
            c.heartbeat.enabled = true;
            c.objects.tables = TableSelection::List(vec![TableSpec::new("tsmigrate_heartbeat")]);
        }),
        ["heartbeat.table"]
    );
    assert_eq!(
        paths_after(|c| {
            c.heartbeat.enabled = true;
            c.migration_types = vec![MigrationType::Schema, MigrationType::Full];
        }),
        ["heartbeat.enabled"]
    );
}

#[test]
fn full_and_incremental_numbers() {
    assert_eq!(
        paths_after(|c| {
            c.full.chunk_rows = 1000;
            c.full.page_rows = 5000;
        }),
        ["full.page_rows"]
    );
    assert_eq!(
        paths_after(|c| {
            c.full.chunk_rows = 0;
            c.full.page_rows = 0;
            c.full.chunks_per_execution = 1001;
        }),
        [
            "full.chunk_rows",
            "full.page_rows",
            "full.chunks_per_execution"
        ]
    );
    assert!(paths_after(|c| c.full.chunks_per_execution = 1000).is_empty());
    assert_eq!(
        paths_after(|c| {
            c.incremental.max_events = 0;
            c.incremental.max_seconds = 841;
            c.incremental.idle_wait_seconds = 0;
            c.incremental.continue_as_new_after = 0;
        }),
        [
            "incremental.max_events",
            "incremental.max_seconds",
            "incremental.idle_wait_seconds",
            "incremental.continue_as_new_after"
        ]
    );
    assert!(paths_after(|c| c.incremental.max_seconds = 840).is_empty());
}

#[test]
fn float_precision() {
    assert_eq!(
        paths_after(|c| {
            c.float_precision.float = Some(39);
            c.float_precision.double = Some(309);
        }),
        ["float_precision.float", "float_precision.double"]
    );
    assert!(paths_after(|c| {
        c.float_precision.float = Some(38);
        c.float_precision.double = Some(0);
    })
    .is_empty());
}

#[test]
fn display_lists_every_problem() {
    let mut c = base();
    c.writer.bucket_count = 16;
    c.retry.other_minutes = 800;
    let e = c.validate().unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("2 problems in the migration config:"),
        "{text}"
    );
    assert!(
        text.contains(
            "\n  - writer.bucket_count: 16 is greater than writer.concurrency (8)\n    fix: "
        ),
        "{text}"
    );
    assert!(text.contains("\n  - retry.other_minutes: "), "{text}");
    assert_eq!(e.paths(), ["writer.bucket_count", "retry.other_minutes"]);
}
