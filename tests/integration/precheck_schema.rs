//! Precheck and schema migration against a real MariaDB and the local Tablestore server:
//! a good setup passes; each bad setup fails with its item named and a fix.

use crate::harness::mariadb::{MariaDb, ADMIN_PASSWORD, USER, USER_PASSWORD};
use tablestore::schema::PkSchema;
use tablestore::PkType;
use tsmigrate_core::config::{ConflictingTables, MigrationConfig, TableSelection, TableSpec};
use tsmigrate_core::steps::{self, Context, ErrorName, PrecheckReport, Status};

fn config(
    db: &MariaDb,
    database: &str,
    dest_dir: &std::path::Path,
    user: &str,
    password: &str,
) -> MigrationConfig {
    crate::harness::local_config_as(
        db,
        database,
        dest_dir,
        user,
        password,
        format!("m_{database}"),
    )
}

async fn context(cfg: MigrationConfig) -> Context {
    crate::harness::local_context(cfg).await
}

fn status(r: &PrecheckReport, item: &str) -> Status {
    r.item(item)
        .unwrap_or_else(|| panic!("no item {item} in {r:#?}"))
        .status
}

fn assert_failed(r: &PrecheckReport, item: &str, detail_has: &str) {
    let i = r
        .item(item)
        .unwrap_or_else(|| panic!("no item {item} in {r:#?}"));
    assert_eq!(i.status, Status::Failed, "{item}: {i:#?}");
    assert!(
        i.detail.contains(detail_has),
        "{item} detail {:?} lacks {detail_has:?}",
        i.detail
    );
    assert!(!i.fix.is_empty(), "{item} has no fix");
    assert!(!r.passed);
}

async fn good_tables(db: &MariaDb, database: &str) {
    db.exec(&format!(
        "CREATE TABLE `{database}`.orders (id BIGINT UNSIGNED PRIMARY KEY, amount DECIMAL(12,2), note VARCHAR(100), created DATETIME(6))"
    ))
    .await;
    db.exec(&format!(
        "CREATE TABLE `{database}`.items (shop VARCHAR(32) NOT NULL, sku INT NOT NULL, qty INT, PRIMARY KEY (shop, sku))"
    ))
    .await;
    db.exec(&format!(
        "CREATE TABLE `{database}`.by_unique (code CHAR(8) NOT NULL, v TEXT, UNIQUE KEY u (code))"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_setup_passes_and_schema_is_created_idempotently() {
    let db = MariaDb::shared();
    let database = db.fresh_database("pc_good").await;
    good_tables(db, &database).await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(config(db, &database, dir.path(), USER, USER_PASSWORD)).await;

    let r = steps::precheck(&ctx).await;
    assert!(r.passed, "{r:#?}");
    for item in [
        "destination_connection",
        "source_connection",
        "source_version",
        "binlog_enabled",
        "binlog_format",
        "binlog_row_image",
        "binlog_row_metadata",
        "replication_privileges",
        "select_privilege",
        "source_objects",
        "primary_keys",
        "object_names",
        "table_count",
        "conflicting_tables",
    ] {
        assert_eq!(status(&r, item), Status::Passed, "{item}: {r:#?}");
    }

    let out = steps::create_schema(&ctx).await.unwrap();
    assert_eq!(out.tables.len(), 3);
    let d = ctx.destination.describe_table("orders").await.unwrap();
    assert_eq!(
        d.def.primary_key,
        vec![PkSchema::new("id", PkType::Integer)]
    );
    assert_eq!(
        (d.def.options.max_versions, d.def.options.time_to_live),
        (1, -1)
    );
    let d = ctx.destination.describe_table("items").await.unwrap();
    assert_eq!(
        d.def.primary_key,
        vec![
            PkSchema::new("shop", PkType::String),
            PkSchema::new("sku", PkType::Integer)
        ]
    );
    let d = ctx.destination.describe_table("by_unique").await.unwrap();
    assert_eq!(
        d.def.primary_key,
        vec![PkSchema::new("code", PkType::String)]
    );
    let mut tables = ctx.destination.list_tables().await.unwrap();
    tables.sort();
    assert_eq!(tables, ["by_unique", "items", "orders", "tsmigrate_state"]);

    // Running again is harmless and the precheck still passes (these tables are ours).
    let again = steps::create_schema(&ctx).await.unwrap();
    assert!(again
        .tables
        .iter()
        .all(|t| t.outcome == steps::create_schema::TableOutcome::Existing));
    let r = steps::precheck(&ctx).await;
    assert!(r.passed, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_names_and_conflicts_are_reported() {
    let db = MariaDb::shared();
    let database = db.fresh_database("pc_bad").await;
    db.exec(&format!("CREATE TABLE `{database}`.nokey (a INT, b INT)"))
        .await;
    db.exec(&format!(
        "CREATE TABLE `{database}`.wide (a INT, b INT, c INT, d INT, e INT, PRIMARY KEY (a,b,c,d,e))"
    ))
    .await;
    db.exec(&format!(
        "CREATE TABLE `{database}`.`order-lines` (id INT PRIMARY KEY)"
    ))
    .await;
    db.exec(&format!(
        "CREATE TABLE `{database}`.taken (id INT PRIMARY KEY)"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(config(db, &database, dir.path(), USER, USER_PASSWORD)).await;
    // Someone else's table with the target name already exists.
    ctx.destination
        .create_table(&tablestore::schema::TableDef::new(
            "taken",
            vec![PkSchema::new("id", PkType::Integer)],
        ))
        .await
        .unwrap();

    let r = steps::precheck(&ctx).await;
    assert_failed(&r, "primary_keys", "nokey");
    assert_failed(&r, "primary_keys", "wide");
    assert_failed(&r, "object_names", "order-lines");
    assert_failed(&r, "conflicting_tables", "taken");

    // create_schema refuses as well, naming the problem.
    let e = steps::create_schema(&ctx).await.unwrap_err();
    assert_eq!(e.name, ErrorName::PrecheckFailed, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_and_proceed_reuses_same_key_tables_only() {
    let db = MariaDb::shared();
    let database = db.fresh_database("pc_ign").await;
    db.exec(&format!(
        "CREATE TABLE `{database}`.same (id INT PRIMARY KEY, v INT)"
    ))
    .await;
    db.exec(&format!(
        "CREATE TABLE `{database}`.other (id INT PRIMARY KEY, v INT)"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(db, &database, dir.path(), USER, USER_PASSWORD);
    cfg.conflicting_tables = ConflictingTables::IgnoreAndProceed;
    let ctx = context(cfg).await;
    ctx.destination
        .create_table(&tablestore::schema::TableDef::new(
            "same",
            vec![PkSchema::new("id", PkType::Integer)],
        ))
        .await
        .unwrap();
    ctx.destination
        .create_table(&tablestore::schema::TableDef::new(
            "other",
            vec![PkSchema::new("id", PkType::String)],
        ))
        .await
        .unwrap();
    let r = steps::precheck(&ctx).await;
    assert_failed(&r, "conflicting_tables", "other");
    let e = steps::create_schema(&ctx).await.unwrap_err();
    assert_eq!(e.name, ErrorName::SchemaConflict);
    assert!(e.message.contains("other"), "{e}");

    // With only the same-key table it proceeds, writing into it.
    let mut cfg = config(db, &database, dir.path(), USER, USER_PASSWORD);
    cfg.conflicting_tables = ConflictingTables::IgnoreAndProceed;
    cfg.objects.tables = TableSelection::List(vec![TableSpec::new("same")]);
    let ctx = context(cfg).await;
    let r = steps::precheck(&ctx).await;
    assert!(r.passed, "{r:#?}");
    assert_eq!(status(&r, "conflicting_tables"), Status::Warning);
    steps::create_schema(&ctx).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_renames_and_types_apply() {
    let db = MariaDb::shared();
    let database = db.fresh_database("pc_map").await;
    db.exec(&format!(
        "CREATE TABLE `{database}`.`order-lines` (ID BIGINT PRIMARY KEY, Amount DOUBLE)"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(db, &database, dir.path(), USER, USER_PASSWORD);
    let mut spec = TableSpec::new("order-lines");
    spec.target = Some("order_lines".into());
    spec.columns.insert(
        "ID".into(),
        tsmigrate_core::config::ColumnSpec {
            target: Some("line_id".into()),
            column_type: Some(tsmigrate_core::config::ColumnType::String),
        },
    );
    cfg.objects.tables = TableSelection::List(vec![spec]);
    let ctx = context(cfg).await;
    let r = steps::precheck(&ctx).await;
    assert!(r.passed, "{r:#?}");
    steps::create_schema(&ctx).await.unwrap();
    let d = ctx.destination.describe_table("order_lines").await.unwrap();
    assert_eq!(
        d.def.primary_key,
        vec![PkSchema::new("line_id", PkType::String)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_replication_privileges_fail() {
    let db = MariaDb::shared();
    let database = db.fresh_database("pc_priv").await;
    good_tables(db, &database).await;
    let user = format!("ro_{}", &database[database.len().saturating_sub(8)..]);
    db.exec(&format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'ro-pass'"))
        .await;
    db.exec(&format!("GRANT SELECT ON `{database}`.* TO '{user}'@'%'"))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(config(db, &database, dir.path(), &user, "ro-pass")).await;
    let r = steps::precheck(&ctx).await;
    assert_failed(&r, "replication_privileges", "REPLICATION");
    assert_eq!(status(&r, "select_privilege"), Status::Passed);
    let _ = ADMIN_PASSWORD;
}

/// Each bad binlog setup fails with its own item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_binlog_setups_fail_with_their_item() {
    let cases: [(&[&str], &str, &str); 5] = [
        (&["--skip-log-bin"], "binlog_enabled", "OFF"),
        (&["--binlog-format=STATEMENT"], "binlog_format", "STATEMENT"),
        (
            &["--binlog-row-image=MINIMAL"],
            "binlog_row_image",
            "MINIMAL",
        ),
        (
            &["--binlog-row-metadata=MINIMAL"],
            "binlog_row_metadata",
            "MINIMAL",
        ),
        (
            &["--log-bin-compress=ON"],
            "binlog_readable",
            "log_bin_compress",
        ),
    ];
    for (flags, item, detail) in cases {
        let db = MariaDb::start_with(flags);
        let database = db.fresh_database("pc_bin").await;
        good_tables(&db, &database).await;
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(config(&db, &database, dir.path(), USER, USER_PASSWORD)).await;
        let r = steps::precheck(&ctx).await;
        assert_failed(&r, item, detail);
    }
}
