//! Our client against our local server over real HTTP: every operation, conditions, paging,
//! signing, retries under injected faults.

use crate::harness::tablestore::{int_table, start};
use futures_util::StreamExt;
use tablestore::client::{Client, RetryPolicy};
use tablestore::error::code;
use tablestore::read::{Direction, RangeRequest, ReadOptions};
use tablestore::schema::{PkSchema, TableDef};
use tablestore::{
    Cell, CellOp, ColumnCondition, Comparator, Condition, PkType, PkValue, PrimaryKey, Row,
    RowExistence, Value,
};
use tablestore_server::Fault;

fn pk(id: i64) -> PrimaryKey {
    PrimaryKey::new().with("id", id)
}

fn strip_ts(mut r: Row) -> Row {
    for c in &mut r.cells {
        c.timestamp = None;
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_lifecycle() {
    let t = start().await;
    let c = &t.client;
    let mut def = TableDef::new(
        "orders",
        vec![
            PkSchema::new("shop", PkType::String),
            PkSchema::new("id", PkType::Integer),
            PkSchema::new("raw", PkType::Binary),
        ],
    );
    def.options.max_versions = 3;
    c.create_table(&def).await.unwrap();
    let d = c.describe_table("orders").await.unwrap();
    assert_eq!(d.def, def);
    assert_eq!(c.list_tables().await.unwrap(), vec!["orders".to_string()]);

    let e = c.create_table(&def).await.unwrap_err();
    let s = e.service().unwrap();
    assert_eq!(
        (s.code.as_str(), s.http_status),
        (code::OBJECT_ALREADY_EXIST, 409)
    );
    assert!(s.request_id.is_some());

    let mut opts = def.options;
    opts.max_versions = 5;
    assert_eq!(
        c.update_table("orders", &opts).await.unwrap().max_versions,
        5
    );

    c.delete_table("orders").await.unwrap();
    let e = c.describe_table("orders").await.unwrap_err();
    assert_eq!(e.code(), Some(code::OBJECT_NOT_EXIST));
    assert_eq!(e.service().unwrap().http_status, 404);
    assert!(c.list_tables().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_every_type_round_trip() {
    let t = start().await;
    let c = &t.client;
    c.create_table(&int_table("t")).await.unwrap();
    let row = Row::new(pk(i64::MIN))
        .with("b", true)
        .with("bin", vec![0u8, 255, 1])
        .with("d", -1.5e300)
        .with("i", i64::MAX)
        .with("s", "héllo 🌍");
    c.put_row("t", &row, &Condition::ignore()).await.unwrap();
    let got = c
        .get_row("t", &pk(i64::MIN), &ReadOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert!(got.cells.iter().all(|c| c.timestamp.is_some()));
    assert_eq!(strip_ts(got), row);
    assert_eq!(
        c.get_row("t", &pk(1), &ReadOptions::default())
            .await
            .unwrap(),
        None
    );

    // Column selection.
    let only = ReadOptions {
        columns_to_get: vec!["s".into()],
        ..Default::default()
    };
    let got = c.get_row("t", &pk(i64::MIN), &only).await.unwrap().unwrap();
    assert_eq!(got.cells.len(), 1);
    assert_eq!(got.get("s"), Some(&Value::String("héllo 🌍".into())));

    // Wrong key shape is the service's OTSInvalidPK.
    let e = c
        .get_row(
            "t",
            &PrimaryKey::new().with("other", 1),
            &ReadOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(code::INVALID_PK));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_and_delete() {
    let t = start().await;
    let c = &t.client;
    c.create_table(&int_table("t")).await.unwrap();
    let k = pk(7);
    c.update_row(
        "t",
        &k,
        &[
            CellOp::Put(Cell::new("a", "x")),
            CellOp::Put(Cell::new("n", 10i64)),
        ],
        &Condition::ignore(),
    )
    .await
    .unwrap();
    c.update_row(
        "t",
        &k,
        &[
            CellOp::DeleteAllVersions { name: "a".into() },
            CellOp::Increment {
                name: "n".into(),
                delta: 5,
            },
        ],
        &Condition::ignore(),
    )
    .await
    .unwrap();
    let got = c
        .get_row("t", &k, &ReadOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(strip_ts(got), Row::new(k.clone()).with("n", 15i64));
    c.delete_row("t", &k, &Condition::ignore()).await.unwrap();
    assert_eq!(
        c.get_row("t", &k, &ReadOptions::default()).await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_are_enforced() {
    let t = start().await;
    let c = &t.client;
    c.create_table(&int_table("t")).await.unwrap();
    let row = Row::new(pk(1)).with("status", "open").with("v", 1i64);
    c.put_row("t", &row, &Condition::expect(RowExistence::ExpectNotExist))
        .await
        .unwrap();
    let e = c
        .put_row("t", &row, &Condition::expect(RowExistence::ExpectNotExist))
        .await
        .unwrap_err();
    let s = e.service().unwrap();
    assert_eq!(
        (s.code.as_str(), s.http_status),
        (code::CONDITION_CHECK_FAIL, 403)
    );

    let when = |status: &str| {
        Condition::expect(RowExistence::ExpectExist).with_column(ColumnCondition::Single {
            column: "status".into(),
            comparator: Comparator::Equal,
            value: Value::String(status.into()),
            pass_if_missing: false,
            latest_version_only: true,
        })
    };
    let upd = [CellOp::Put(Cell::new("status", "closed"))];
    let e = c
        .update_row("t", &pk(1), &upd, &when("closed"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(code::CONDITION_CHECK_FAIL));
    c.update_row("t", &pk(1), &upd, &when("open"))
        .await
        .unwrap();
    let e = c
        .delete_row("t", &pk(2), &Condition::expect(RowExistence::ExpectExist))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(code::CONDITION_CHECK_FAIL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_pages_through_12000_rows_both_ways() {
    let t = start().await;
    let c = &t.client;
    let def = TableDef::new(
        "r",
        vec![
            PkSchema::new("g", PkType::String),
            PkSchema::new("id", PkType::Integer),
        ],
    );
    c.create_table(&def).await.unwrap();
    let writer =
        tablestore::batch::BatchWriter::new(c.clone(), tablestore::batch::BatchOptions::default());
    for g in ["a", "b"] {
        for id in 0..6000i64 {
            writer
                .write(tablestore::client::BatchRow {
                    table: "r".into(),
                    change: tablestore::RowChange::Put(
                        Row::new(PrimaryKey::new().with("g", g).with("id", id)).with("v", id * 2),
                    )
                    .into(),
                    condition: Condition::ignore(),
                })
                .await
                .unwrap();
        }
    }
    let report = writer.close().await.unwrap();
    assert_eq!(report.rows_written, 12000);
    assert!(report.failed.is_empty());

    let all = |dir: Direction| {
        let (lo, hi) = (PkValue::InfMin, PkValue::InfMax);
        let (s, e) = match dir {
            Direction::Forward => (lo, hi),
            Direction::Backward => (hi, lo),
        };
        RangeRequest {
            direction: dir,
            start: PrimaryKey::new().with("g", s.clone()).with("id", s),
            end: PrimaryKey::new().with("g", e.clone()).with("id", e),
            limit: None,
            read: ReadOptions::default(),
        }
    };
    // One page stops at the service's 5,000-row limit with a next key.
    let page = c.get_range("r", &all(Direction::Forward)).await.unwrap();
    assert_eq!(page.rows.len(), 5000);
    assert!(page.next_start.is_some());

    let fwd: Vec<Row> = c
        .range_stream("r", all(Direction::Forward))
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(fwd.len(), 12000);
    let keys: Vec<PrimaryKey> = fwd.iter().map(|r| r.primary_key.clone()).collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| {
        a.0.iter()
            .map(|c| &c.value)
            .cmp(b.0.iter().map(|c| &c.value))
    });
    assert_eq!(keys, sorted);
    assert_eq!(
        fwd[6000].primary_key,
        PrimaryKey::new().with("g", "b").with("id", 0)
    );
    assert_eq!(fwd[6000].get("v"), Some(&Value::Integer(0)));

    let back: Vec<Row> = c
        .range_stream("r", all(Direction::Backward))
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(back.len(), 12000);
    assert_eq!(
        back[0].primary_key,
        PrimaryKey::new().with("g", "b").with("id", 5999)
    );

    // A limited page: exactly `limit` rows and the key to continue from.
    let mut req = all(Direction::Forward);
    req.limit = Some(7);
    let page = c.get_range("r", &req).await.unwrap();
    assert_eq!(page.rows.len(), 7);
    assert_eq!(
        page.next_start,
        Some(PrimaryKey::new().with("g", "a").with("id", 7))
    );

    // Start must be below end going forward.
    let bad = RangeRequest {
        start: all(Direction::Forward).end,
        end: all(Direction::Forward).start,
        ..all(Direction::Forward)
    };
    let e = c.get_range("r", &bad).await.unwrap_err();
    assert_eq!(e.code(), Some(code::PARAMETER_INVALID));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_signing_and_wrong_credentials() {
    let t = start().await;
    let mut cfg = t.server.client_config();
    cfg.region = Some("cn-hangzhou".into());
    let v4 = Client::new(cfg).unwrap();
    v4.create_table(&int_table("t")).await.unwrap();
    v4.put_row("t", &Row::new(pk(1)).with("a", 1i64), &Condition::ignore())
        .await
        .unwrap();
    assert!(v4
        .get_row("t", &pk(1), &ReadOptions::default())
        .await
        .unwrap()
        .is_some());

    let mut cfg = t.server.client_config();
    cfg.credentials.access_key_secret = "wrong".into();
    let bad = Client::new(cfg).unwrap();
    let e = bad.list_tables().await.unwrap_err();
    let s = e.service().unwrap();
    assert_eq!((s.code.as_str(), s.http_status), (code::AUTH_FAILED, 403));

    let mut cfg = t.server.client_config();
    cfg.instance = "elsewhere".into();
    let e = Client::new(cfg).unwrap().list_tables().await.unwrap_err();
    assert_eq!(e.code(), Some(code::AUTH_FAILED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_the_sdk_classification() {
    let t = start().await;
    let c = &t.client;
    c.create_table(&int_table("t")).await.unwrap();
    let row = Row::new(pk(1)).with("a", 1i64);

    // Always-retriable code: retried for writes too.
    t.server
        .faults()
        .fail_next_action("PutRow", 2, Fault::server_busy());
    c.put_row("t", &row, &Condition::ignore()).await.unwrap();

    // A dropped connection is retried for idempotent calls (reads, keyed writes).
    t.server
        .faults()
        .fail_next_action("GetRow", 1, Fault::DropConnection);
    assert!(c
        .get_row("t", &pk(1), &ReadOptions::default())
        .await
        .unwrap()
        .is_some());

    // An increment is not idempotent: a server-side failure surfaces instead of re-applying.
    t.server.faults().fail_next_action(
        "UpdateRow",
        1,
        Fault::Error {
            code: code::INTERNAL_SERVER_ERROR.into(),
            message: "Internal server error.".into(),
        },
    );
    let inc = [CellOp::Increment {
        name: "a".into(),
        delta: 1,
    }];
    let e = c
        .update_row("t", &pk(1), &inc, &Condition::ignore())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(code::INTERNAL_SERVER_ERROR));

    // More failures than the retry budget: the error surfaces.
    t.server
        .faults()
        .fail_next_action("PutRow", 10, Fault::server_busy());
    let e = c
        .put_row("t", &row, &Condition::ignore())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(code::SERVER_BUSY));
    t.server.faults().clear();

    // No retries at all with the none policy.
    let mut cfg = t.server.client_config();
    cfg.retry = RetryPolicy::none();
    let once = Client::new(cfg).unwrap();
    t.server
        .faults()
        .fail_next_action("PutRow", 1, Fault::server_busy());
    assert!(once.put_row("t", &row, &Condition::ignore()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut cfg =
        tablestore::client::ClientConfig::new(format!("http://{addr}"), "local", "ak", "sk");
    cfg.retry = RetryPolicy::none();
    let e = Client::new(cfg).unwrap().list_tables().await.unwrap_err();
    assert!(e.is_connection_failure(), "{e}");
    assert!(e.to_string().contains(&addr.to_string()));
}
