//! Incremental migration end to end on a real MariaDB and the local Tablestore server: the
//! full copy, then changes made while and after it ran, replayed from the binlog in bounded
//! batches until caught up; `verify` then finds source and destination equal, row for row.

use crate::harness::mariadb::MariaDb;
use tsmigrate_core::config::{MigrationConfig, MigrationType, TableSelection, TableSpec};
use tsmigrate_core::steps::binlog::binlog_batch;
use tsmigrate_core::steps::{self, Context, ErrorName};

fn config(db: &MariaDb, database: &str, dir: &std::path::Path) -> MigrationConfig {
    let mut cfg = crate::harness::local_config(db, database, dir, format!("inc_{database}"));
    cfg.migration_types = vec![
        MigrationType::Schema,
        MigrationType::Full,
        MigrationType::Incremental,
    ];
    cfg.incremental.max_events = 25;
    cfg
}

async fn context(cfg: MigrationConfig) -> Context {
    crate::harness::local_context(cfg).await
}

async fn full_copy(ctx: &Context) {
    steps::create_schema(ctx).await.expect("schema");
    steps::begin(ctx, "inc-exec").await.expect("begin");
    let plan = steps::plan::plan_chunks(ctx).await.expect("plan");
    for i in plan.wave_start..plan.wave_start + plan.chunk_count {
        while !steps::copy::copy_chunk(ctx, i, Some("inc-exec"))
            .await
            .expect("copy")
            .done
        {}
    }
}

/// Batches until one reaches the end of the log; returns the rows written in all.
async fn catch_up(ctx: &Context) -> u64 {
    let mut written = 0;
    for _ in 0..10_000 {
        let out = binlog_batch(ctx, Some("inc-exec"), None)
            .await
            .unwrap_or_else(|e| panic!("binlog batch: {e}"));
        written += out.rows_written;
        if out.caught_up {
            return written;
        }
    }
    panic!("never caught up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_changes_after_the_copy_leave_the_destination_equal_to_the_source() {
    let server = MariaDb::shared();
    let database = server.fresh_database("inc").await;
    server
        .exec(&format!(
            "USE `{database}`;
             CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), n DECIMAL(10,2), ts DATETIME(3));
             INSERT INTO t SELECT seq, CONCAT('v', seq), seq / 4, '2024-01-01 00:00:00.5'
               FROM seq_1_to_300"
        ))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(config(server, &database, dir.path())).await;
    full_copy(&ctx).await;

    // Inserts, updates (one changes the key), deletes, a multi-row transaction, a column
    // added by DDL mid-stream: all after P0.
    server
        .exec(&format!(
            "USE `{database}`;
             INSERT INTO t VALUES (1000, 'new', 1.25, '2024-05-01 12:30:00.123');
             UPDATE t SET v = 'changed', n = n + 1 WHERE id <= 50;
             UPDATE t SET id = 2000 WHERE id = 60;
             DELETE FROM t WHERE id BETWEEN 100 AND 120;
             BEGIN; INSERT INTO t SELECT seq, 'tx', 0, NULL FROM seq_500_to_599;
                    DELETE FROM t WHERE id = 501; COMMIT;
             ALTER TABLE t ADD COLUMN extra INT NULL;
             UPDATE t SET extra = 7 WHERE id = 1000;"
        ))
        .await;
    let written = catch_up(&ctx).await;
    // 174 keys changed (1000, 1-50, 60 → 2000 as a delete and a put, 100-120, 500-599): at
    // least one write each; changes of one key inside a batch are coalesced to the last.
    assert!(written >= 174, "rows written: {written}");

    let v = steps::verify::verify(&ctx, None).await.expect("verify");
    assert_eq!(
        (v.missing, v.different, v.extra),
        (0, 0, 0),
        "verify after catch-up: {v:?}"
    );
    assert!(v.matched >= 300 + 1 + 100 - 21 - 1, "{v:?}");

    // Caught up: another batch writes nothing of ours and the checkpoint stays valid.
    let again = binlog_batch(&ctx, Some("inc-exec"), None)
        .await
        .expect("batch");
    assert!(again.caught_up || again.rows_written == 0, "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_migrated_table_stops_with_schema_conflict() {
    let server = MariaDb::shared();
    let database = server.fresh_database("inc_drop").await;
    server
        .exec(&format!(
            "USE `{database}`; CREATE TABLE t (id INT PRIMARY KEY, v INT);
             CREATE TABLE other (id INT PRIMARY KEY);
             INSERT INTO t VALUES (1, 1)"
        ))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(server, &database, dir.path());
    cfg.objects.tables = TableSelection::List(vec![TableSpec::new("t")]);
    let ctx = context(cfg).await;
    full_copy(&ctx).await;
    server
        .exec(&format!(
            "USE `{database}`; DROP TABLE other; INSERT INTO t VALUES (2, 2); TRUNCATE TABLE t"
        ))
        .await;
    let mut result = Ok(());
    for _ in 0..1000 {
        match binlog_batch(&ctx, Some("inc-exec"), None).await {
            Ok(out) if out.caught_up => break,
            Ok(_) => continue,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let err = result.expect_err("TRUNCATE of a migrated table");
    assert_eq!(err.name, ErrorName::SchemaConflict, "{err}");
    assert!(err.message.contains("TRUNCATE"), "{err}");
}

/// A source that logs no column metadata (MySQL 5.7, MariaDB before 10.5, or
/// binlog_row_metadata=NO_LOG): names, signedness, charsets and ENUM labels come from
/// information_schema while the table map still fits the table; after an ALTER that changes
/// the columns, older events stop the batch with SchemaConflict instead of being mislabelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_row_metadata_names_come_from_the_schema_while_it_fits() {
    let server = MariaDb::start_with(&["--binlog-row-metadata=NO_LOG"]);
    let database = server.fresh_database("inc_nolog").await;
    server
        .exec(&format!(
            "USE `{database}`;
             CREATE TABLE t (id INT UNSIGNED PRIMARY KEY, big BIGINT UNSIGNED,
               l1 VARCHAR(20) CHARACTER SET latin1, e ENUM('small','medium','large'),
               m MEDIUMINT, g VARCHAR(20) CHARACTER SET gbk);
             INSERT INTO t VALUES (1, 1, 'a', 'small', -1, '中')"
        ))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(config(&server, &database, dir.path())).await;
    full_copy(&ctx).await;
    server
        .exec(&format!(
            "USE `{database}`;
             INSERT INTO t VALUES (4294967295, 18446744073709551615, 'café', 'large', -8388608,
               '迁移');
             UPDATE t SET l1 = 'naïve', e = 'medium', g = '表格存储' WHERE id = 1;"
        ))
        .await;
    catch_up(&ctx).await;
    let v = steps::verify::verify(&ctx, None).await.expect("verify");
    assert_eq!((v.missing, v.different, v.extra), (0, 0, 0), "{v:?}");

    // Events written before an ALTER no longer fit the table: stop, never guess.
    server
        .exec(&format!(
            "USE `{database}`; INSERT INTO t VALUES (2, 2, 'b', 'small', 2, NULL);
             ALTER TABLE t ADD COLUMN extra INT NULL"
        ))
        .await;
    let err = binlog_batch(&ctx, Some("inc-exec"), None)
        .await
        .expect_err("the old event does not fit");
    assert_eq!(err.name, ErrorName::SchemaConflict, "{err}");
    assert!(err.message.contains("binlog_row_metadata=FULL"), "{err}");
}

/// Character columns in legacy charsets (Chinese, Japanese, Korean, Cyrillic; ENUM labels
/// too) are decoded from the binlog to the same text the copy read: verify finds them equal.
/// The precheck item `binlog_charsets` passes them (its refusal, for MySQL 8's gb18030, is a
/// unit test in `steps::precheck`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_charsets_replay_as_the_copy_read_them() {
    let server = MariaDb::shared();
    let database = server.fresh_database("inc_cs").await;
    server
        .exec(&format!(
            "USE `{database}`;
             CREATE TABLE t (id INT PRIMARY KEY, g VARCHAR(20) CHARACTER SET gbk,
               b VARCHAR(20) CHARACTER SET big5, j VARCHAR(20) CHARACTER SET sjis,
               k VARCHAR(20) CHARACTER SET euckr, r TEXT CHARACTER SET cp1251,
               e ENUM('数据','迁移') CHARACTER SET gbk, u VARCHAR(10) CHARACTER SET utf32);
             INSERT INTO t VALUES (1, '数据', '資料', 'データ', '데이터', 'данные', '数据', '😀'),
               (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
        ))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(config(server, &database, dir.path())).await;
    let report = steps::precheck(&ctx).await;
    let item = report
        .item("binlog_charsets")
        .expect("binlog_charsets item");
    assert_eq!(item.status, steps::Status::Passed, "{item:?}");
    full_copy(&ctx).await;
    server
        .exec(&format!(
            "USE `{database}`;
             INSERT INTO t VALUES (3, '表格存储 ok', '表格儲存', '表形式ストア', '테이블', 'таблица',
               '迁移', '𝔘𝔗𝔉');
             UPDATE t SET g = '更新', b = '更新', j = '更新', k = '갱신', r = 'обновление',
               e = '迁移', u = 'ü' WHERE id = 2;
             DELETE FROM t WHERE id = 1;"
        ))
        .await;
    catch_up(&ctx).await;
    let v = steps::verify::verify(&ctx, None).await.expect("verify");
    assert_eq!((v.missing, v.different, v.extra), (0, 0, 0), "{v:?}");
    assert_eq!(v.matched, 2, "{v:?}");
}

/// FLOAT/DOUBLE columns rounded by `float_precision` are not replayed from the binlog yet: the
/// precheck names them (before, the first batch stopped, after the full copy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precheck_refuses_floats_the_binlog_cannot_replay() {
    let server = MariaDb::shared();
    let database = server.fresh_database("inc_fl").await;
    server
        .exec(&format!(
            "CREATE TABLE `{database}`.t (id INT PRIMARY KEY, f FLOAT, d DOUBLE)"
        ))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(config(server, &database, dir.path())).await;
    let report = steps::precheck(&ctx).await;
    let item = report.item("binlog_floats").expect("binlog_floats item");
    assert_eq!(item.status, steps::Status::Passed, "{item:?}");

    let mut cfg = config(server, &database, dir.path());
    cfg.float_precision.double = Some(2);
    let report = steps::precheck(&context(cfg).await).await;
    let item = report.item("binlog_floats").expect("binlog_floats item");
    assert_eq!(item.status, steps::Status::Failed, "{item:?}");
    assert!(item.detail.starts_with("t.d: "), "{item:?}");
    assert!(item.fix.contains("float_precision"), "{item:?}");
    assert!(!report.passed);
}

/// Invariant 3: the full copy starts after P0, so changes made while it runs (some of which
/// it copies, some not) are all replayed from P0; replays are harmless because writes are
/// keyed. REPLACE, updates to NULL, a rolled-back transaction and a multi-statement
/// transaction included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_during_the_copy_are_replayed_from_p0() {
    let server = MariaDb::shared();
    let database = server.fresh_database("inc_during").await;
    server
        .exec(&format!(
            "USE `{database}`;
             CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), n INT NULL) ENGINE=InnoDB;
             INSERT INTO t SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_2000"
        ))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(server, &database, dir.path());
    cfg.full.chunk_rows = 500;
    cfg.full.page_rows = 100;
    let ctx = context(cfg).await;
    steps::create_schema(&ctx).await.expect("schema");
    steps::begin(&ctx, "inc-exec").await.expect("begin"); // P0
    let plan = steps::plan::plan_chunks(&ctx).await.expect("plan");

    // DML between the chunks of the copy: before, between and after them.
    let dml = [
        "UPDATE t SET v = 'early', n = NULL WHERE id <= 100",
        "REPLACE INTO t VALUES (5, 'replaced', 5), (3000, 'new', 3000)",
        "BEGIN; DELETE FROM t WHERE id BETWEEN 400 AND 600; INSERT INTO t VALUES (3001, 'tx', 1); COMMIT",
        "BEGIN; DELETE FROM t WHERE id > 1500; ROLLBACK",
        "UPDATE t SET id = id + 10000 WHERE id BETWEEN 1900 AND 1910",
    ];
    let mut next = dml.iter();
    for i in plan.wave_start..plan.wave_start + plan.chunk_count {
        if let Some(sql) = next.next() {
            server.exec(&format!("USE `{database}`; {sql}")).await;
        }
        while !steps::copy::copy_chunk(&ctx, i, Some("inc-exec"))
            .await
            .expect("copy")
            .done
        {}
    }
    for sql in next {
        server.exec(&format!("USE `{database}`; {sql}")).await;
    }
    catch_up(&ctx).await;
    let v = steps::verify::verify(&ctx, None).await.expect("verify");
    assert_eq!((v.missing, v.different, v.extra), (0, 0, 0), "{v:?}");
    assert_eq!(v.matched, 2000 - 201 + 2, "{v:?}");
}

/// Two invocations of the same batch race (a Step Functions retry while the first Lambda still
/// runs): only one holds the writing slot at a time, the other is told to retry, and the
/// destination ends equal to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_invocations_of_one_batch_never_leave_older_rows() {
    let server = MariaDb::shared();
    let database = server.fresh_database("inc_race").await;
    server
        .exec(&format!(
            "USE `{database}`; CREATE TABLE t (id INT PRIMARY KEY, v INT);
             INSERT INTO t SELECT seq, 0 FROM seq_1_to_100"
        ))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(config(server, &database, dir.path())).await;
    full_copy(&ctx).await;
    let mut sql = format!("USE `{database}`;");
    for round in 1..=20 {
        sql.push_str(&format!(
            "UPDATE t SET v = {round} WHERE id % 10 = {};",
            round % 10
        ));
    }
    server.exec(&sql).await;

    let ctx = std::sync::Arc::new(ctx);
    let mut outcomes = Vec::new();
    for _ in 0..50 {
        let (a, b) = tokio::join!(
            binlog_batch(&ctx, Some("inc-exec"), None),
            binlog_batch(&ctx, Some("inc-exec"), None)
        );
        let caught_up = [&a, &b]
            .iter()
            .any(|r| r.as_ref().is_ok_and(|o| o.caught_up));
        outcomes.push((a.is_ok(), b.is_ok()));
        for r in [a, b] {
            if let Err(e) = r {
                // The loser is told to come back: transient, never a failure of the migration.
                assert_eq!(e.name, ErrorName::Transient, "{e}");
            }
        }
        if caught_up {
            break;
        }
    }
    assert!(outcomes.iter().any(|(a, b)| *a || *b), "{outcomes:?}");
    catch_up(&ctx).await;
    let v = steps::verify::verify(&ctx, None).await.expect("verify");
    assert_eq!((v.missing, v.different, v.extra), (0, 0, 0), "{v:?}");
}

/// A full copy that ran without a start position cannot grow an incremental phase: the changes
/// made since it began are in no checkpoint. Begin refuses with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_cannot_be_added_after_a_copy_without_p0() {
    let server = MariaDb::shared();
    let database = server.fresh_database("inc_late").await;
    server
        .exec(&format!(
            "USE `{database}`; CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)"
        ))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(server, &database, dir.path());
    cfg.migration_types = vec![MigrationType::Schema, MigrationType::Full];
    let ctx = context(cfg.clone()).await;
    full_copy(&ctx).await;
    steps::finish(&ctx, Some("inc-exec"), None, None)
        .await
        .expect("finish");

    cfg.migration_types.push(MigrationType::Incremental);
    let ctx = context(cfg).await;
    let err = steps::begin(&ctx, "inc-exec-2").await.expect_err("refused");
    assert_eq!(err.name, ErrorName::ConfigInvalid, "{err}");
    assert!(err.message.contains("another migration_id"), "{err}");
}

/// `heartbeat.enabled`: precheck names the missing privilege; with it granted, each batch
/// upserts the migration's heartbeat row (creating the table), so on an idle source the
/// checkpoint still moves and its commit time stays current; the table is never migrated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_keeps_an_idle_migration_current() {
    let server = MariaDb::shared();
    let database = server.fresh_database("inc_hb").await;
    server
        .exec(&format!(
            "USE `{database}`; CREATE TABLE t (id INT PRIMARY KEY, v INT);
             INSERT INTO t VALUES (1, 1)"
        ))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(server, &database, dir.path());
    cfg.heartbeat.enabled = true;
    let ctx = context(cfg).await;

    let report = steps::precheck(&ctx).await;
    let item = report.item("heartbeat").expect("heartbeat item");
    assert_eq!(item.status, steps::Status::Failed, "{item:?}");
    assert!(item.detail.contains("INSERT, UPDATE, CREATE"), "{item:?}");
    server
        .exec(&format!(
            "GRANT INSERT, UPDATE, CREATE ON `{database}`.tsmigrate_heartbeat TO 'tsmigrate'@'%'"
        ))
        .await;
    let report = steps::precheck(&ctx).await;
    let item = report.item("heartbeat").expect("heartbeat item");
    assert_eq!(item.status, steps::Status::Passed, "{item:?}");

    full_copy(&ctx).await;
    catch_up(&ctx).await;
    let store = steps::lifecycle::state_store(&ctx);
    let first = store.checkpoint().await.expect("read").expect("checkpoint");
    // Idle source: only the heartbeat moves the log.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    catch_up(&ctx).await;
    let second = store.checkpoint().await.expect("read").expect("checkpoint");
    assert!(
        (second.file.as_str(), second.pos) > (first.file.as_str(), first.pos),
        "the checkpoint moved: {first:?} → {second:?}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let beat = second.event_time.expect("event time");
    assert!(now - beat <= 5, "last applied commit {beat}, now {now}");
    assert!(
        beat > first.event_time.unwrap_or(0),
        "{first:?} → {second:?}"
    );

    let mut conn = server.admin_conn().await;
    use mysql_async::prelude::Queryable;
    let ids: Vec<String> = conn
        .query(format!(
            "SELECT migration_id FROM `{database}`.tsmigrate_heartbeat"
        ))
        .await
        .expect("heartbeat row");
    tsmigrate_core::mysql::close(conn).await;
    assert_eq!(ids, [format!("inc_{database}")]);
    let tables = ctx.destination.list_tables().await.expect("tables");
    assert!(
        !tables.iter().any(|t| t.contains("heartbeat")),
        "{tables:?}"
    );
    let v = steps::verify::verify(&ctx, None).await.expect("verify");
    assert_eq!((v.matched, v.missing, v.different, v.extra), (1, 0, 0, 0));
}

/// Verify while the binlog loop runs: rows changed on the source after the last batch look
/// like mismatches at first; they are compared again once the binlog has been applied past
/// the first comparison, and only a real difference (a destination row changed behind the
/// migration's back) is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_on_a_live_source_reports_only_mismatches_that_persist() {
    let server = MariaDb::shared();
    let database = server.fresh_database("inc_live").await;
    server
        .exec(&format!(
            "USE `{database}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
             INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_300"
        ))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = std::sync::Arc::new(context(config(server, &database, dir.path())).await);
    full_copy(&ctx).await;
    catch_up(&ctx).await;

    // Lag: changed on the source, not applied yet.
    server
        .exec(&format!(
            "USE `{database}`; UPDATE t SET v = 'late' WHERE id <= 5;
             DELETE FROM t WHERE id IN (10, 11); INSERT INTO t VALUES (1001, 'a'), (1002, 'b')"
        ))
        .await;
    // A real difference: the destination changed behind the migration's back.
    let row = tablestore::Row::new(tablestore::PrimaryKey::new().with("id", 200i64))
        .with("v", "tampered");
    ctx.destination
        .put_row("t", &row, &tablestore::Condition::ignore())
        .await
        .expect("put");

    // The binlog loop, running elsewhere, applies the changes a moment later.
    let applier = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            catch_up(&ctx).await
        })
    };
    let v = steps::verify::verify_live(&ctx, None)
        .await
        .expect("verify");
    applier.await.expect("applier");
    assert_eq!((v.missing, v.different, v.extra), (0, 1, 0), "{v:?}");
    assert_eq!(v.mismatched, ["t id=200: different"], "{v:?}");
    let note = v.recheck.as_deref().unwrap_or_default();
    assert!(note.ends_with(": 1 persist"), "{note}");
    assert_eq!(v.matched, 300 - 2 + 2 - 1, "{v:?}");
}
