//! The batch writer against the local server: request cutting, per-key order, partial
//! failures handed back, retries, both write APIs.

use crate::harness::tablestore::{int_table, start};
use std::time::Duration;
use tablestore::batch::{BatchOptions, BatchWriter, WriteApi};
use tablestore::client::BatchRow;
use tablestore::error::code;
use tablestore::read::ReadOptions;
use tablestore::{Cell, CellOp, Condition, PrimaryKey, Row, RowChange, RowExistence, Value};

use tablestore_server::chaos::ChaosConfig;
use tablestore_server::Fault;

fn put(table: &str, id: i64, v: impl Into<Value>) -> BatchRow {
    BatchRow {
        table: table.into(),
        change: RowChange::Put(Row::new(PrimaryKey::new().with("id", id)).with("v", v)).into(),
        condition: Condition::ignore(),
    }
}

async fn value_of(c: &tablestore::client::Client, table: &str, id: i64) -> Option<Value> {
    c.get_row(
        table,
        &PrimaryKey::new().with("id", id),
        &ReadOptions::default(),
    )
    .await
    .unwrap()
    .and_then(|r| r.get("v").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_at_200_rows_and_writes_everything_with_both_apis() {
    for api in [WriteApi::BatchWriteRow, WriteApi::BulkImport] {
        let t = start().await;
        t.client.create_table(&int_table("a")).await.unwrap();
        t.client.create_table(&int_table("b")).await.unwrap();
        let w = BatchWriter::new(
            t.client.clone(),
            BatchOptions {
                api,
                lanes: 1,
                ..Default::default()
            },
        );
        for id in 0..1000 {
            w.write(put("a", id, id)).await.unwrap();
        }
        for id in 0..10 {
            w.write(put("b", id, "x")).await.unwrap();
        }
        let r = w.close().await.unwrap();
        assert_eq!(r.rows_written, 1010, "{api:?}");
        assert!(r.failed.is_empty());
        // 1,000 rows at 200 per request on one lane; BulkImport also cuts at the table change.
        assert!(r.requests >= 6, "{api:?}: {} requests", r.requests);
        for id in [0, 199, 200, 999] {
            assert_eq!(value_of(&t.client, "a", id).await, Some(Value::Integer(id)));
        }
        assert_eq!(
            value_of(&t.client, "b", 9).await,
            Some(Value::String("x".into()))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_at_4_mb() {
    let t = start().await;
    t.client.create_table(&int_table("t")).await.unwrap();
    let w = BatchWriter::new(
        t.client.clone(),
        BatchOptions {
            lanes: 1,
            ..Default::default()
        },
    );
    let big = "x".repeat(300 * 1024);
    for id in 0..40 {
        w.write(put("t", id, big.as_str())).await.unwrap();
    }
    let r = w.close().await.unwrap();
    assert_eq!(r.rows_written, 40);
    // 40 × 300 KiB: at least 3 requests under 4 MiB each (the server enforces it).
    assert!(r.requests >= 3, "{} requests", r.requests);
    assert!(r.bytes_written > 40 * 300 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_one_key_apply_in_order() {
    let t = start().await;
    t.client.create_table(&int_table("t")).await.unwrap();
    let w = BatchWriter::new(
        t.client.clone(),
        BatchOptions {
            lanes: 4,
            concurrency: 4,
            ..Default::default()
        },
    );
    // Interleave many keys; each key gets 30 successive values, plus updates and deletes.
    // Odd rounds go in one `write_all` (one message per lane), even rounds row by row.
    for round in 0..30i64 {
        if round % 2 == 1 {
            w.write_all((0..50).map(|id| put("t", id, round)).collect())
                .await
                .unwrap();
            continue;
        }
        for id in 0..50 {
            w.write(put("t", id, round)).await.unwrap();
        }
    }
    for id in 0..10 {
        w.write(BatchRow {
            table: "t".into(),
            change: RowChange::Delete(PrimaryKey::new().with("id", id)).into(),
            condition: Condition::ignore(),
        })
        .await
        .unwrap();
        w.write(BatchRow {
            table: "t".into(),
            change: RowChange::Update {
                primary_key: PrimaryKey::new().with("id", id),
                ops: vec![CellOp::Put(Cell::new("w", id))],
            }
            .into(),
            condition: Condition::ignore(),
        })
        .await
        .unwrap();
    }
    let r = w.close().await.unwrap();
    assert_eq!(r.rows_written, 30 * 50 + 20);
    for id in 0..10 {
        let row = t
            .client
            .get_row(
                "t",
                &PrimaryKey::new().with("id", id),
                &ReadOptions::default(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.get("v"), None, "delete then update of {id}");
        assert_eq!(row.get("w"), Some(&Value::Integer(id)));
    }
    for id in 10..50 {
        assert_eq!(value_of(&t.client, "t", id).await, Some(Value::Integer(29)));
    }
}

/// Per-key order while requests for other keys stay in flight, under latency and faults
/// (busy answers, dropped connections before and after applying, rows failing retriably):
/// small batches, so each lane has many requests out at once and each key's next change
/// waits only for the request that holds it. The last value of every key wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_one_key_apply_in_order_with_requests_in_flight_and_faults() {
    let t = start().await;
    t.client.create_table(&int_table("t")).await.unwrap();
    let chaos = ChaosConfig::new(0.1, Duration::from_millis(3), Some(7)).unwrap();
    t.server.faults().set_chaos(Some(chaos));
    let w = BatchWriter::new(
        t.client.clone(),
        BatchOptions {
            lanes: 2,
            concurrency: 8,
            lane_depth: 8,
            max_rows: 10,
            ..Default::default()
        },
    );
    for round in 0..20i64 {
        w.write_all((0..300).map(|id| put("t", id, round)).collect())
            .await
            .unwrap();
    }
    let r = w.close().await.unwrap();
    assert!(
        t.server.faults().chaos_faults() > 0,
        "no fault was injected"
    );
    t.server.faults().set_chaos(None);
    assert_eq!(r.rows_written, 20 * 300);
    assert!(r.failed.is_empty(), "{:?}", r.failed.len());
    for id in 0..300 {
        assert_eq!(
            value_of(&t.client, "t", id).await,
            Some(Value::Integer(19)),
            "key {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_come_back_row_by_row() {
    let t = start().await;
    t.client.create_table(&int_table("t")).await.unwrap();
    let w = BatchWriter::new(
        t.client.clone(),
        BatchOptions {
            lanes: 1,
            ..Default::default()
        },
    );
    for id in 0..50 {
        w.write(put("t", id, id)).await.unwrap();
    }
    // A row for a missing table: the service refuses the whole request; the writer splits it
    // until that row is alone, so its neighbours still land.
    w.write(put("missing", 1, 1)).await.unwrap();
    // A conditional put that fails its condition.
    w.write(BatchRow {
        condition: Condition::expect(RowExistence::ExpectNotExist),
        ..put("t", 3, 333)
    })
    .await
    .unwrap();
    // A key of the wrong type: OTSInvalidPK for that row only.
    w.write(BatchRow {
        table: "t".into(),
        change: RowChange::Put(
            Row::new(PrimaryKey::new().with("id", "k".repeat(2000))).with("v", 1i64),
        )
        .into(),
        condition: Condition::ignore(),
    })
    .await
    .unwrap();
    for id in 50..60 {
        w.write(put("t", id, id)).await.unwrap();
    }
    let r = w.close().await.unwrap();
    assert_eq!(r.rows_written, 60);
    let mut codes: Vec<(String, String)> = r
        .failed
        .iter()
        .map(|f| (f.row.table.to_string(), f.error.code.clone()))
        .collect();
    codes.sort();
    assert_eq!(r.failed.len(), 3, "{codes:?}");
    assert!(codes.contains(&("missing".into(), code::OBJECT_NOT_EXIST.into())));
    assert!(codes.contains(&("t".into(), code::CONDITION_CHECK_FAIL.into())));
    assert_eq!(value_of(&t.client, "t", 3).await, Some(Value::Integer(3)));
    assert_eq!(value_of(&t.client, "t", 59).await, Some(Value::Integer(59)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_busy_server_and_dropped_connections() {
    let t = start().await;
    t.client.create_table(&int_table("t")).await.unwrap();
    t.server
        .faults()
        .fail_next_action("BatchWriteRow", 2, Fault::server_busy());
    t.server
        .faults()
        .fail_next_action("BatchWriteRow", 1, Fault::DropConnection);
    t.server
        .faults()
        .fail_next_action("BatchWriteRow", 1, Fault::DropAfterApply);
    let w = BatchWriter::new(t.client.clone(), BatchOptions::default());
    for id in 0..2000 {
        w.write(put("t", id, id)).await.unwrap();
    }
    let r = w.close().await.unwrap();
    assert_eq!(r.rows_written, 2000);
    for id in [0, 777, 1999] {
        assert_eq!(value_of(&t.client, "t", id).await, Some(Value::Integer(id)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrecoverable_request_fails_the_flush() {
    let t = start().await;
    t.client.create_table(&int_table("t")).await.unwrap();
    t.server
        .faults()
        .fail_next_action("BatchWriteRow", 100, Fault::server_busy());
    let w = BatchWriter::new(t.client.clone(), BatchOptions::default());
    w.write(put("t", 1, 1)).await.unwrap();
    let e = w.flush().await.unwrap_err();
    assert_eq!(e.code(), Some(code::SERVER_BUSY));
    t.server.faults().clear();
    // The writer keeps working for later rows once the destination recovers.
    w.write(put("t", 2, 2)).await.unwrap();
    let r = w.close().await.unwrap();
    assert_eq!(r.rows_written, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_request_is_split_to_isolate_bad_rows() {
    let t = start().await;
    t.client.create_table(&int_table("t")).await.unwrap();
    // The whole first request is refused (as the service does for a malformed row): the
    // writer splits it and re-sends halves, so the good rows still land.
    t.server.faults().fail_next_action(
        "BatchWriteRow",
        1,
        Fault::Error {
            code: code::PARAMETER_INVALID.into(),
            message: "The input parameter is invalid.".into(),
        },
    );
    let w = BatchWriter::new(
        t.client.clone(),
        BatchOptions {
            lanes: 1,
            ..Default::default()
        },
    );
    for id in 0..100 {
        w.write(put("t", id, id)).await.unwrap();
    }
    let r = w.close().await.unwrap();
    assert_eq!(r.rows_written, 100);
    assert!(r.failed.is_empty());
    assert_eq!(r.requests, 3, "one refused request, then its two halves");
}
