//! The server never panics or drops a connection on bad input: random bodies and mutated
//! valid requests get a protocol error (or succeed), and the server keeps serving.

use crate::harness::tablestore::{int_table, start};
use prost::Message;
use tablestore::error::Error;
use tablestore::pb;
use tablestore::plainbuffer;
use tablestore::{PrimaryKey, Row, RowChange};

// The actions the fuzz target picks from (the last is not one).
use tablestore_server::fuzz::ACTIONS;

fn assert_answered(r: Result<bytes::Bytes, Error>, what: &str) {
    match r {
        Ok(_) => {}
        Err(Error::Service(e)) => {
            assert!(e.http_status < 500, "{what}: server error {e}");
        }
        Err(e) => panic!("{what}: no protocol answer: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bodies_get_errors_not_panics() {
    let t = start().await;
    t.client.create_table(&int_table("t")).await.unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    for round in 0..60 {
        for action in ACTIONS {
            let len = rng.usize(0..300);
            let body: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            assert_answered(
                t.client.call_raw(action, &body).await,
                &format!("{action} round {round}"),
            );
        }
    }
    assert_eq!(t.client.list_tables().await.unwrap(), vec!["t".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_plainbuffer_rows_get_errors_not_panics() {
    let t = start().await;
    t.client.create_table(&int_table("t")).await.unwrap();
    let row = Row::new(PrimaryKey::new().with("id", 5))
        .with("s", "some text")
        .with("b", vec![1u8, 2, 3])
        .with("d", 2.5)
        .with("n", 9i64);
    let valid = plainbuffer::change_buffer(&RowChange::Put(row));
    let mut rng = fastrand::Rng::with_seed(11);
    for i in 0..400 {
        let mut buf = valid.clone();
        match i % 3 {
            0 => {
                let p = rng.usize(..buf.len());
                buf[p] ^= 1 << rng.u8(0..8);
            }
            1 => buf.truncate(rng.usize(..buf.len())),
            _ => {
                let p = rng.usize(..buf.len());
                buf.insert(p, rng.u8(..));
            }
        }
        let put = pb::PutRowRequest {
            table_name: "t".into(),
            row: buf.clone(),
            condition: pb::Condition {
                row_existence: 0,
                column_condition: None,
            },
            return_content: None,
            transaction_id: None,
        };
        assert_answered(
            t.client.call_raw("PutRow", &put.encode_to_vec()).await,
            &format!("PutRow mutation {i}"),
        );
        let get = pb::GetRangeRequest {
            table_name: "t".into(),
            direction: 0,
            inclusive_start_primary_key: buf.clone(),
            exclusive_end_primary_key: buf,
            ..Default::default()
        };
        assert_answered(
            t.client.call_raw("GetRange", &get.encode_to_vec()).await,
            &format!("GetRange mutation {i}"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413() {
    let t = start().await;
    let body = vec![0u8; 5 * 1024 * 1024 + 1];
    match t.client.call_raw("PutRow", &body).await {
        Err(Error::Service(e)) => {
            assert_eq!(
                (e.code.as_str(), e.http_status),
                ("OTSRequestBodyTooLarge", 413)
            )
        }
        other => panic!("expected 413, got {other:?}"),
    }
}
