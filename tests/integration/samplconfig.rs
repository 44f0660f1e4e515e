//! The sample configs in `samplconfig/` all load and validate (every `*.json` there, so new
//! samples are covered automatically), and the config's error reporting works end to end on
//! files: every problem at once with its path, unknown fields with their path, secrets redacted.
//!
//! Samples: `local.json` (quickstart against a local MariaDB on 3307 and the embedded
//! Tablestore server), `full-and-incremental.json` (Amazon RDS source, Secrets Manager
//! references, https endpoint with region), `scheduled-catch-up.json` (incremental only, run on a
//! schedule with mode `catch_up`), `mapping-and-filters.json` (renames, type overrides, WHERE
//! filters, lower-case names, no deletes).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tsmigrate_core::config::{
    self, ConfigError, Endpoint, MigrationType, NameCase, OperationType, SecretRef, TableSelection,
};

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samplconfig")
}

fn sample_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(samples_dir())
        .expect("samplconfig/ exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn sample(name: &str) -> config::MigrationConfig {
    config::load(samples_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_sample_loads_and_validates() {
    let files = sample_files();
    assert!(files.len() >= 4, "samples: {files:?}");
    for file in &files {
        let mut c = config::load(file).unwrap_or_else(|e| panic!("{e}"));
        if let Err(e) = c.validate() {
            panic!("{}: {e}", file.display());
        }
        // What a step receives (literals detached first, as the local runner does) parses back
        // to the same config and is still valid.
        let _local_secrets = c.detach_literal_secrets();
        let payload = serde_json::to_value(&c).expect("serializes");
        let back = config::from_json_value(&payload).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, c, "{}", file.display());
        back.validate()
            .unwrap_or_else(|e| panic!("{} after a round trip: {e}", file.display()));
    }
}

#[test]
fn samples_say_what_their_names_say() {
    let local = sample("local.json");
    assert_eq!(local.source.host, "127.0.0.1");
    assert_eq!(local.source.port, 3307);
    assert_eq!(local.source.database, "tsmigrate_demo");
    assert_eq!(local.source.user, "tsmigrate");
    assert_eq!(
        local.source.password,
        SecretRef::env("TSMIGRATE_SOURCE_PASSWORD")
    );
    assert_eq!(
        local.destination.endpoint().expect("endpoint"),
        Endpoint::Embedded {
            dir: "./tsmigrate-data".into()
        }
    );
    assert_eq!(local.destination.instance, "local");
    assert_eq!(
        local.destination.access_key_id,
        SecretRef::literal("local-ak")
    );
    assert!(local.has(MigrationType::Schema));
    assert!(local.has(MigrationType::Full));
    // The quickstart runs schema, full and a binlog catch-up.
    assert!(local.has(MigrationType::Incremental));
    assert!(local.is_local_setup());

    let prod = sample("full-and-incremental.json");
    assert!(!prod.is_local_setup());
    assert!(prod
        .secret_refs()
        .iter()
        .all(|(_, r)| matches!(r, SecretRef::SecretArn { .. })));
    assert!(matches!(
        prod.destination.endpoint(),
        Ok(Endpoint::Http { https: true, .. })
    ));
    assert!(prod.destination.region.is_some());

    let catch_up = sample("scheduled-catch-up.json");
    assert_eq!(catch_up.migration_types, [MigrationType::Incremental]);

    let mapped = sample("mapping-and-filters.json");
    assert_eq!(mapped.name_case, NameCase::Lower);
    assert!(!mapped.applies(OperationType::Delete));
    let TableSelection::List(specs) = &mapped.objects.tables else {
        panic!("mapping sample lists its tables")
    };
    assert!(specs.iter().any(|s| s.target.is_some()));
    assert!(specs.iter().any(|s| s.filter.is_some()));
    assert!(specs.iter().any(|s| s.primary_key.is_some()));
    assert!(specs
        .iter()
        .any(|s| s.columns.values().any(|c| c.column_type.is_some())));
    for spec in specs {
        if let Some(filter) = &spec.filter {
            config::parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        }
    }
}

/// A config with many problems at once: validation reports every one, each with a fix.
#[test]
fn broken_config_lists_every_problem_at_once() {
    let broken = r#"{
      "migration_id": "shop orders!",
      "source": {"host": "db.internal", "port": 0, "user": "dts",
                 "password": {"value": "hunter2"}, "database": "shop"},
      "destination": {"endpoint": "ots.aliyuncs.com", "instance": "x",
                      "access_key_id": {"env": "OTS AK"},
                      "access_key_secret": {"env": "OTS_SK"}},
      "migration_types": [],
      "writer": {"concurrency": 4, "bucket_count": 8, "thread_count": 0},
      "objects": {"tables": [
        {"name": "orders", "filter": "id > 1; DROP TABLE orders"},
        {"name": "orders"},
        {"name": "items", "target": "9items", "primary_key": ["a", "b", "c", "d", "e"]}
      ]},
      "retry": {"connection_minutes": 10, "other_minutes": 10},
      "throttle": {"full": {"rps": 0}},
      "monitoring": {"latency_alert_seconds": 0},
      "full": {"chunk_rows": 1000, "page_rows": 5000, "chunks_per_execution": 5000},
      "incremental": {"max_seconds": 900},
      "float_precision": {"float": 40, "double": 400}
    }"#;
    let c = config::from_json_str(broken).expect("well-formed");
    let errors = c.validate().expect_err("broken");
    let paths: BTreeSet<&str> = errors.paths().into_iter().collect();
    let expected: BTreeSet<&str> = [
        "migration_id",
        "source.port",
        "source.password",
        "destination.endpoint",
        "destination.instance",
        "destination.access_key_id.env",
        "migration_types",
        "writer.thread_count",
        "writer.bucket_count",
        "objects.tables[0].filter",
        "objects.tables[1].name",
        "objects.tables[2].target",
        "objects.tables[2].primary_key",
        "retry.other_minutes",
        "throttle.full.rps",
        "monitoring.latency_alert_seconds",
        "full.page_rows",
        "full.chunks_per_execution",
        "incremental.max_seconds",
        "float_precision.float",
        "float_precision.double",
    ]
    .into_iter()
    .collect();
    assert_eq!(paths, expected, "{errors}");
    assert_eq!(
        errors.len(),
        expected.len(),
        "one problem per path: {errors}"
    );
    assert!(errors
        .iter()
        .all(|e| !e.fix.is_empty() && !e.problem.is_empty()));
    let text = errors.to_string();
    assert!(
        text.starts_with("21 problems in the migration config:"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn unknown_field_names_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("typo.json");
    let text = std::fs::read_to_string(samples_dir().join("local.json"))
        .expect("sample")
        .replace(
            "\"tls\": \"disabled\"",
            "\"tls\": \"disabled\", \"sever_id\": 7",
        );
    std::fs::write(&file, text).expect("write");
    let e = config::load(&file).expect_err("typo");
    let ConfigError::Parse {
        file: Some(f),
        path,
        message,
        hint,
        line,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(f, &file);
    assert_eq!(path, "source.sever_id");
    assert!(message.contains("`server_id`"), "{message}");
    assert_eq!(hint.as_deref(), Some("server_id"));
    assert_eq!(*line, 9);
    let shown = e.to_string();
    assert!(shown.contains("typo.json:9:"), "{shown}");
    assert!(shown.contains("source.sever_id"), "{shown}");
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let local = sample("local.json");
    for shown in [
        format!("{local:?}"),
        format!("{local:#?}"),
        format!("{}", local.destination.access_key_secret),
        serde_json::to_string(&local).expect("serializes"),
    ] {
        assert!(!shown.contains("local-secret"), "{shown}");
        assert!(!shown.contains("local-ak"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
    let secrets = local.resolve_secrets_env();
    // TSMIGRATE_SOURCE_PASSWORD may or may not be set where tests run; either way the resolved
    // (or failed) secrets print no credential.
    let shown = format!("{secrets:?}");
    assert!(!shown.contains("local-secret"), "{shown}");
}

#[test]
fn schema_describes_every_top_level_field_of_the_samples() {
    let schema = config::json_schema();
    let props = schema["properties"].as_object().expect("properties");
    for file in sample_files() {
        let text = std::fs::read_to_string(&file).expect("sample");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        for key in value.as_object().expect("object").keys() {
            assert!(
                props[key]["description"].is_string(),
                "{}: {key}",
                file.display()
            );
        }
    }
}
