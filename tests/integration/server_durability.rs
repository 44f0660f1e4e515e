//! An acknowledged write survives kill -9 of the server process.

use std::process::Child;

use tablestore::batch::{BatchOptions, BatchWriter};
use tablestore::client::{BatchRow, Client};
use tablestore::read::ReadOptions;
use tablestore::schema::{PkSchema, TableDef};
use tablestore::{Condition, PkType, PrimaryKey, Row, RowChange, Value};

use crate::harness::tablestore::{local_client, serve_process};

/// Starts `tsmigrate tablestore serve` on a free port; returns the child and its endpoint.
pub(crate) fn spawn_server(dir: &std::path::Path) -> (Child, String) {
    serve_process(dir, "127.0.0.1:0")
}

fn client(endpoint: &str) -> Client {
    local_client(endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, endpoint) = spawn_server(dir.path());
    let c = client(&endpoint);
    c.create_table(&TableDef::new(
        "t",
        vec![PkSchema::new("id", PkType::Integer)],
    ))
    .await
    .unwrap();
    let w = BatchWriter::new(c.clone(), BatchOptions::default());
    for id in 0..3000i64 {
        w.write(BatchRow {
            table: "t".into(),
            change: RowChange::Put(Row::new(PrimaryKey::new().with("id", id)).with("v", id)).into(),
            condition: Condition::ignore(),
        })
        .await
        .unwrap();
    }
    assert_eq!(w.close().await.unwrap().rows_written, 3000);
    c.put_row(
        "t",
        &Row::new(PrimaryKey::new().with("id", -1)).with("v", "last"),
        &Condition::ignore(),
    )
    .await
    .unwrap();

    child.kill().unwrap(); // SIGKILL: no shutdown path runs
    child.wait().unwrap();

    let (mut child, endpoint) = spawn_server(dir.path());
    let c = client(&endpoint);
    assert_eq!(c.list_tables().await.unwrap(), vec!["t".to_string()]);
    for id in [0i64, 1234, 2999] {
        let row = c
            .get_row(
                "t",
                &PrimaryKey::new().with("id", id),
                &ReadOptions::default(),
            )
            .await
            .unwrap()
            .expect("row survived");
        assert_eq!(row.get("v"), Some(&Value::Integer(id)));
    }
    let row = c
        .get_row(
            "t",
            &PrimaryKey::new().with("id", -1),
            &ReadOptions::default(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get("v"), Some(&Value::String("last".into())));
    child.kill().unwrap();
    child.wait().unwrap();
}
