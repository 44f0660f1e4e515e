//! The binlog reader against a real MariaDB (ROW, FULL image, FULL metadata): bounded batches
//! that end on transaction boundaries and resume without loss or repeat (across a rotation),
//! values and table metadata, and the errors a user must see: a purged position, a compressed
//! binlog, a transaction over the size cap.
//!
//! The shared server is written to by other tests at the same time; every assertion looks only
//! at the rows of this test's own database.

use std::time::Duration;

use crate::chunk_reader::{
    all_types_mapping_with, key, load_all_types, page_all, reader, ALL_TYPES, ALL_TYPES_OVERRIDES,
};
use crate::harness::mariadb::{MariaDb, USER};
use mysql_async::prelude::Queryable;
use tsmigrate_core::config::{ColumnType, FloatPrecision, WriteMode};
use tsmigrate_core::error::{Class, ErrorName};
use tsmigrate_core::mapping::convert::{select_list, RowConverter};
use tsmigrate_core::mysql::binlog::{
    read_batch, render, text_row, Batch, Bounds, Image, Position, RowsKind, Stop, TableFilter,
    TableMeta,
};
use tsmigrate_core::mysql::{
    self, binary_logs, binlog_position, server_info, ConnectOptions, PageQuery, SourceError,
};

/// A server_id per test: concurrent readers with one id kick each other (pitfall 5).
const ID_SMALL: u32 = 9001;
const ID_RESUME: u32 = 9002;
const ID_VALUES: u32 = 9003;
const ID_ERRORS: u32 = 9004;
const ID_CAP: u32 = 9005;
const ID_TYPES: u32 = 9006;
const ID_TIME: u32 = 9007;
const ID_RESTART: u32 = 9008;

pub(crate) fn unbounded() -> Bounds {
    Bounds {
        max_events: u64::MAX,
        max_bytes: u64::MAX,
        max_duration: Duration::from_secs(60),
        max_transaction_bytes: 64 << 20,
        deadline: None,
    }
}

pub(crate) fn only(database: &str) -> TableFilter {
    let database = database.to_owned();
    Box::new(move |db, _| db == database)
}

pub(crate) async fn position(opts: &ConnectOptions) -> Position {
    let mut conn = mysql::connect(opts).await.expect("connect");
    let info = server_info(&mut conn).await.expect("server info");
    let p = binlog_position(&mut conn, &info).await.expect("position");
    mysql::close(conn).await;
    Position {
        file: p.file,
        pos: p.pos,
    }
}

/// A fresh database on `server` with `ddl(db)` run in it, and the binlog position after it.
async fn setup(
    server: &MariaDb,
    prefix: &str,
    ddl: impl Fn(&str) -> String,
) -> (ConnectOptions, String, Position) {
    let opts = server.user_options();
    let db = server.fresh_database(prefix).await;
    server.exec(&ddl(&db)).await;
    let start = position(&opts).await;
    (opts, db, start)
}

pub(crate) async fn read(
    opts: &ConnectOptions,
    id: u32,
    start: &Position,
    bounds: &Bounds,
    db: &str,
) -> Batch {
    read_batch(opts, id, start, bounds, only(db))
        .await
        .unwrap_or_else(|e| panic!("read_batch from {start}: {e}"))
}

/// Column `i` of `image` as the full copy's text (`None` for NULL).
fn text(image: &Image, table: &TableMeta, i: usize) -> Option<String> {
    let v = image.get(i).expect("the column is in the image");
    render(v, &table.columns[i])
        .unwrap_or_else(|e| panic!("column {i}: {e}"))
        .map(|b| String::from_utf8(b).expect("UTF-8"))
}

fn int(image: &Image, table: &TableMeta, i: usize) -> i64 {
    text(image, table, i)
        .and_then(|t| t.parse().ok())
        .expect("an integer")
}

/// `(kind, id)` of every change of `db`, in log order.
fn changes(batches: &[Batch]) -> Vec<(RowsKind, i64)> {
    batches
        .iter()
        .flat_map(|b| &b.transactions)
        .flat_map(|t| &t.changes)
        .map(|c| {
            let image = c.after.as_ref().or(c.before.as_ref()).expect("an image");
            (c.kind, int(image, &c.table, 0))
        })
        .collect()
}

#[tokio::test]
async fn a_batch_holds_the_committed_transactions_of_its_tables_only() {
    let server = MariaDb::shared();
    let (opts, db, start) = setup(server, "binlog_small", |db| {
        format!(
            "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(20));
             CREATE TABLE `{db}`.other (id INT PRIMARY KEY)"
        )
    })
    .await;
    server
        .exec(&format!(
            "BEGIN; INSERT INTO `{db}`.t VALUES (1,'a'),(2,'b'),(3,'c'); COMMIT;
             UPDATE `{db}`.t SET v = 'bb' WHERE id = 2;
             DELETE FROM `{db}`.t WHERE id = 3;
             INSERT INTO `{db}`.other VALUES (7)"
        ))
        .await;
    let filter_t: TableFilter = {
        let db = db.clone();
        Box::new(move |d, t| d == db && t == "t")
    };
    let batch = read_batch(&opts, ID_SMALL, &start, &unbounded(), filter_t)
        .await
        .expect("batch");
    assert_eq!(batch.stop, Stop::EndOfLog);
    let got = changes(std::slice::from_ref(&batch));
    assert_eq!(
        got,
        vec![
            (RowsKind::Insert, 1),
            (RowsKind::Insert, 2),
            (RowsKind::Insert, 3),
            (RowsKind::Update, 2),
            (RowsKind::Delete, 3),
        ]
    );
    let ours: Vec<_> = batch
        .transactions
        .iter()
        .filter(|t| !t.changes.is_empty())
        .collect();
    // One transaction per statement group, each with the position after it and a GTID.
    assert_eq!(ours.len(), 3);
    assert!(ours
        .windows(2)
        .all(|w| w[0].end.pos < w[1].end.pos || w[0].end.file < w[1].end.file));
    assert!(ours
        .iter()
        .all(|t| t.gtid.as_deref().is_some_and(|g| g.starts_with("0-1-"))));
    let update = &ours[1].changes[0];
    assert_eq!(update.table.table, "t");
    let names: Vec<_> = update
        .table
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, vec![Some("id".to_owned()), Some("v".to_owned())]);
    assert_eq!(update.table.primary_key, vec![0]);
    let (before, after) = (update.before.as_ref(), update.after.as_ref());
    assert_eq!(
        before.map(|b| text(b, &update.table, 1)),
        Some(Some("b".to_owned()))
    );
    assert_eq!(
        after.map(|a| text(a, &update.table, 1)),
        Some(Some("bb".to_owned()))
    );
    assert!(batch.gtid.is_some(), "MariaDB GTID position recorded");
}

#[tokio::test]
async fn bounded_batches_resume_without_loss_or_repeat_across_a_rotation() {
    let server = MariaDb::shared();
    let (opts, db, start) = setup(server, "binlog_resume", |db| {
        format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v INT)")
    })
    .await;
    let mut sql = String::new();
    for i in 0..60 {
        sql.push_str(&format!("INSERT INTO `{db}`.t VALUES ({i}, {i});"));
    }
    sql.push_str("FLUSH BINARY LOGS;");
    sql.push_str(&format!(
        "BEGIN; INSERT INTO `{db}`.t SELECT seq, seq FROM `{db}`.seq_1000_to_1099; COMMIT;"
    ));
    for i in 60..120 {
        sql.push_str(&format!(
            "UPDATE `{db}`.t SET v = v + 1 WHERE id = {};",
            i - 60
        ));
    }
    server.exec(&sql).await;

    let reference = read(&opts, ID_RESUME, &start, &unbounded(), &db).await;
    let expected = changes(std::slice::from_ref(&reference));
    assert_eq!(expected.len(), 60 + 100 + 60);

    let small = Bounds {
        max_events: 7,
        ..unbounded()
    };
    let mut batches = Vec::new();
    let mut at = start.clone();
    let mut files = std::collections::BTreeSet::new();
    for _ in 0..10_000 {
        let b = read(&opts, ID_RESUME, &at, &small, &db).await;
        files.insert(b.end.file.clone());
        at = b.end.clone();
        let done = b.stop == Stop::EndOfLog;
        batches.push(b);
        if done {
            break;
        }
    }
    assert_eq!(
        changes(&batches),
        expected,
        "batched reads see every change exactly once"
    );
    assert!(
        files.len() >= 2,
        "the batches crossed a rotation: {files:?}"
    );
    // The 100-row transaction came whole, in one batch, though the bound is 7 events.
    assert!(batches
        .iter()
        .flat_map(|b| &b.transactions)
        .any(|t| t.changes.len() == 100));
}

#[tokio::test]
async fn values_arrive_typed_by_the_table_map() {
    let server = MariaDb::shared();
    let (opts, db, start) = setup(server, "binlog_values", |db| {
        format!(
            "CREATE TABLE `{db}`.t (id BIGINT UNSIGNED PRIMARY KEY, d DECIMAL(20,6),
               e ENUM('small','medium','large'), s SET('a','b','c','d'), n INT NULL)"
        )
    })
    .await;
    server
        .exec(&format!(
            "INSERT INTO `{db}`.t VALUES (18446744073709551615, -12345678901234.123456, 'medium', 'a,c,d', NULL)"
        ))
        .await;
    let batch = read(&opts, ID_VALUES, &start, &unbounded(), &db).await;
    let change = batch
        .transactions
        .iter()
        .flat_map(|t| &t.changes)
        .next()
        .expect("the insert");
    let row = change.after.as_ref().expect("after image");
    let t = &change.table;
    assert_eq!(
        text(row, t, 0).as_deref(),
        Some("18446744073709551615"),
        "unsigned by the signedness metadata"
    );
    assert_eq!(text(row, t, 1).as_deref(), Some("-12345678901234.123456"));
    assert_eq!(text(row, t, 2).as_deref(), Some("medium"), "ENUM by label");
    assert_eq!(text(row, t, 3).as_deref(), Some("a,c,d"), "SET by members");
    assert_eq!(text(row, t, 4), None);
    let t = &change.table;
    assert!(t.columns[0].unsigned && !t.columns[4].unsigned);
    assert_eq!(
        t.columns[2].labels,
        Some(vec![
            b"small".to_vec(),
            b"medium".to_vec(),
            b"large".to_vec()
        ])
    );
    assert_eq!(
        t.columns[3].labels.as_ref().map(Vec::len),
        Some(4),
        "SET members"
    );
    assert!(t.has_names && t.has_signedness);
}

#[tokio::test]
async fn a_purged_position_needs_a_full_resync_and_compressed_events_are_refused() {
    // Servers of their own: PURGE and log_bin_compress must not touch the shared one.
    let server = MariaDb::start_with(&["--log-bin-compress=ON"]);
    let (opts, db, old) = setup(&server, "binlog_errors", |db| {
        format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v TEXT)")
    })
    .await;
    // A row over log_bin_compress_min_len (256 bytes) is logged compressed.
    server
        .exec(&format!(
            "INSERT INTO `{db}`.t VALUES (1, REPEAT('x', 2000))"
        ))
        .await;
    let err = read_batch(&opts, ID_ERRORS, &old, &unbounded(), only(&db))
        .await
        .expect_err("compressed events");
    assert!(
        matches!(err, SourceError::BinlogUnsupported { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("log_bin_compress"), "{err}");

    server.exec("FLUSH BINARY LOGS; FLUSH BINARY LOGS").await;
    let now = position(&opts).await;
    // MariaDB keeps a file until its binlog checkpoint is written: purge until it is gone.
    let mut gone = false;
    for _ in 0..100 {
        server
            .exec(&format!("PURGE BINARY LOGS TO '{}'", now.file))
            .await;
        let mut conn = mysql::connect(&opts).await.expect("connect");
        let files = binary_logs(&mut conn).await.expect("SHOW BINARY LOGS");
        mysql::close(conn).await;
        if files.iter().all(|f| f.name != old.file) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "{} was not purged", old.file);
    let err = read_batch(&opts, ID_ERRORS, &old, &unbounded(), only(&db))
        .await
        .expect_err("purged");
    assert!(matches!(err, SourceError::BinlogPurged { .. }), "{err:?}");
    assert_eq!(err.class(), Class::Definite(ErrorName::BinlogUnavailable));
    assert!(err.to_string().contains("full re-sync"), "{err}");
}

#[tokio::test]
async fn a_transaction_over_the_cap_is_refused_not_buffered() {
    let server = MariaDb::shared();
    let (opts, db, start) = setup(server, "binlog_cap", |db| {
        format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v INT)")
    })
    .await;
    server
        .exec(&format!(
            "INSERT INTO `{db}`.t SELECT seq, seq FROM `{db}`.seq_1_to_5000"
        ))
        .await;
    let bounds = Bounds {
        max_transaction_bytes: 4096,
        ..unbounded()
    };
    let err = read_batch(&opts, ID_CAP, &start, &bounds, only(&db))
        .await
        .expect_err("over the cap");
    assert!(err.to_string().contains("incremental.max_bytes"), "{err}");
    // The user account is the one the migration uses: no extra grants were needed.
    assert_eq!(opts.user, USER);
}

/// The heart of the conversion contract: the same rows, read by the full copy and replayed
/// from the binlog, become byte-identical Tablestore changes in both write modes (dirty values
/// dirty in both, for the same reason).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_rows_become_the_same_tablestore_changes_as_copied_rows() {
    let server = MariaDb::shared();
    let (opts, database, start) = setup(server, "binlog_types", |db| {
        format!("USE `{db}`; {ALL_TYPES}")
    })
    .await;
    load_all_types(server, &database, "-00:00:00.1").await;

    let mut conn = reader(server).await;
    // The full copy's overrides, except a FLOAT shown as STRING: the server's own FLOAT text
    // is not rendered from the binlog yet (text.rs), so incremental refuses that override.
    let overrides: Vec<(&str, ColumnType)> = ALL_TYPES_OVERRIDES
        .iter()
        .copied()
        .filter(|(c, _)| *c != "f_str")
        .collect();
    let mapping = all_types_mapping_with(&mut conn, &database, &overrides).await;
    let select = select_list(&mapping, &FloatPrecision::default());
    let (copied, _) = page_all(
        &mut conn,
        &database,
        &PageQuery::new("all_types", select, key(&["id"]), 100),
    )
    .await;
    mysql::close(conn).await;
    assert_eq!(copied.len(), 5);

    let conv = RowConverter::new(&mapping);
    let columns = mapping.source_columns();
    let batch = read(&opts, ID_TYPES, &start, &unbounded(), &database).await;
    // The last image of each key (row 2 was inserted, then updated).
    let mut replayed = Vec::new();
    for change in batch.transactions.iter().flat_map(|t| &t.changes) {
        let after = change.after.as_ref().expect("inserts and updates only");
        let row =
            text_row(after, &change.table, &columns).unwrap_or_else(|e| panic!("renders: {e:?}"));
        let key = conv.primary_key(&row).expect("key");
        replayed.retain(|(k, _)| *k != key);
        replayed.push((key, row));
    }
    assert_eq!(replayed.len(), copied.len());
    for row in &copied {
        let key = conv.primary_key(row).expect("key");
        let (_, from_binlog) = replayed
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("{key:?} not in the binlog"));
        // Cell by cell first, so a difference names its column.
        if let (Ok(a), Ok(b)) = (conv.to_put_row(from_binlog), conv.to_put_row(row)) {
            for (x, y) in a.cells.iter().zip(&b.cells) {
                assert_eq!(x, y, "{key:?}: column {}", y.name);
            }
            assert_eq!(a.cells.len(), b.cells.len(), "{key:?}");
        }
        for mode in [WriteMode::OverwriteRow, WriteMode::UpdateRow] {
            assert_eq!(
                conv.encode_change(from_binlog, mode),
                conv.encode_change(row, mode),
                "{key:?} in {mode:?}"
            );
        }
    }
}

/// TIME2 stores a negative value with a fraction as the next integer down plus a complement
/// fraction (MySQL's `my_time_packed_from_binary`); each precision has its own width. Every
/// value reads back as the server prints it.
#[tokio::test]
async fn negative_and_fractional_times_read_as_the_server_prints_them() {
    let server = MariaDb::shared();
    let (opts, db, start) = setup(server, "binlog_time", |db| {
        format!(
            "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, t0 TIME, t1 TIME(1), t2 TIME(2), \
             t3 TIME(3), t4 TIME(4), t5 TIME(5), t6 TIME(6))"
        )
    })
    .await;
    let values = [
        "-00:00:00.1",
        "-00:00:00.000001",
        "-00:00:00.99",
        "-00:00:01.5",
        "-00:59:59.999",
        "-12:34:56.789012",
        "-838:59:58.9",
        "-838:59:59",
        "00:00:00",
        "00:00:00.01",
        "12:00:00.5",
        "838:59:58.999999",
        "-01:00:00.000100",
    ];
    let mut inserts = String::new();
    for (i, v) in values.iter().enumerate() {
        inserts.push_str(&format!(
            "INSERT INTO `{db}`.t VALUES ({i}, '{v}', '{v}', '{v}', '{v}', '{v}', '{v}', '{v}');"
        ));
    }
    server.exec(&inserts).await;
    let columns = ["id", "t0", "t1", "t2", "t3", "t4", "t5", "t6"];
    let mut conn = mysql::connect(&opts).await.expect("connect");
    let printed: Vec<Vec<Option<String>>> = conn
        .query_map(
            format!(
                "SELECT CAST(id AS CHAR), CAST(t0 AS CHAR), CAST(t1 AS CHAR), CAST(t2 AS CHAR), \
                 CAST(t3 AS CHAR), CAST(t4 AS CHAR), CAST(t5 AS CHAR), CAST(t6 AS CHAR) \
                 FROM `{db}`.t ORDER BY id"
            ),
            |row: mysql_async::Row| {
                (0..8)
                    .map(|i| row.get::<Option<String>, _>(i).flatten())
                    .collect()
            },
        )
        .await
        .expect("select");
    mysql::close(conn).await;
    let batch = read(&opts, ID_TIME, &start, &unbounded(), &db).await;
    let from_binlog: Vec<Vec<Option<String>>> = batch
        .transactions
        .iter()
        .flat_map(|t| &t.changes)
        .map(|c| {
            let after = c.after.as_ref().expect("inserts");
            text_row(after, &c.table, &columns)
                .expect("renders")
                .into_iter()
                .map(|v| v.map(|b| String::from_utf8(b).expect("UTF-8")))
                .collect()
        })
        .collect();
    assert_eq!(from_binlog.len(), values.len());
    assert_eq!(from_binlog, printed);
    assert_eq!(printed[0][2].as_deref(), Some("-00:00:00.1"));
}

/// A checkpoint taken before the source restarts is still good after it: the stream goes on
/// through the STOP event and the new file, nothing lost or read twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_resume_across_a_server_restart() {
    let server = MariaDb::start_with(&[]);
    let (opts, db, start) = setup(&server, "binlog_restart", |db| {
        format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY)")
    })
    .await;
    let mut sql = String::new();
    for i in 0..30 {
        sql.push_str(&format!("INSERT INTO `{db}`.t VALUES ({i});"));
    }
    server.exec(&sql).await;
    let small = Bounds {
        max_events: 7,
        ..unbounded()
    };
    let first = read(&opts, ID_RESTART, &start, &small, &db).await;
    let resume_at = first.end.clone();
    server.restart();
    let mut sql = String::new();
    for i in 30..60 {
        sql.push_str(&format!("INSERT INTO `{db}`.t VALUES ({i});"));
    }
    server.exec(&sql).await;

    let mut batches = vec![first];
    let mut at = resume_at;
    for _ in 0..1000 {
        let b = read(&opts, ID_RESTART, &at, &small, &db).await;
        at = b.end.clone();
        let done = b.stop == Stop::EndOfLog;
        batches.push(b);
        if done {
            break;
        }
    }
    let ids: Vec<i64> = changes(&batches).into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids, (0..60).collect::<Vec<i64>>());
    assert_ne!(at.file, start.file, "the restart opened a new binlog file");
}
