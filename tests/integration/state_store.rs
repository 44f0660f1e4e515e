//! The migration state store against the local Tablestore server over real HTTP: table
//! creation, lease fencing (races included), conditional checkpoints, chunk plans across batch
//! and paging boundaries, retry windows, dirty records, status, and lost-answer replays.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::harness::tablestore::{int_table, start, TestServer};
use serde_json::json;
use tablestore::{Condition, PkType, PrimaryKey, Row};
use tablestore_server::Fault;
use tsmigrate_core::error::Class;
use tsmigrate_core::state::{
    from_unix_millis, unix_millis, Checkpoint, ChunkRecord, ChunkStatus, DirtyRecord, FailureKind,
    Plan, StateError, StateStore, Status, TAKEOVER_GRACE,
};

const TABLE: &str = "tsmigrate_state";

async fn store(t: &TestServer, migration: &str) -> StateStore {
    let s = StateStore::new(t.client.clone(), TABLE, migration);
    s.ensure_table().await.unwrap();
    s
}

/// A settable clock (unix ms).
fn manual_clock(start: SystemTime) -> (Arc<AtomicI64>, impl Fn() -> SystemTime + Send + Sync) {
    let ms = Arc::new(AtomicI64::new(unix_millis(start)));
    let m = ms.clone();
    (ms, move || from_unix_millis(m.load(Ordering::SeqCst)))
}

fn cp(seq: u64, pos: u64) -> Checkpoint {
    Checkpoint {
        file: "mysql-bin.000003".into(),
        pos,
        gtid_set: if seq.is_multiple_of(2) {
            Some(format!("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-{seq}"))
        } else {
            None
        },
        event_time: Some(1_700_000_000 + seq as i64),
        seq,
        updated_at: 1_700_000_000_000 + seq as i64,
        events: seq * 10,
        rows_written: seq * 7,
    }
}

fn plan_chunks(n: u32) -> (Plan, Vec<ChunkRecord>) {
    let chunks: Vec<ChunkRecord> = (0..n)
        .map(|i| {
            let table = if i < n / 2 { "orders" } else { "customers" };
            let lower = (i > 0).then(|| json!([i64::from(i) * 1000, format!("k{i}")]));
            let upper =
                (i + 1 < n).then(|| json!([i64::from(i + 1) * 1000, format!("k{}", i + 1)]));
            ChunkRecord::new(i, table, lower, upper)
        })
        .collect();
    let plan = Plan {
        chunk_count: n,
        tables: vec!["orders".into(), "customers".into()],
        created_at: 1_700_000_000_000,
    };
    (plan, chunks)
}

// ------------------------------------------------------------------------------ table

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_table_is_idempotent_and_checks_the_key_schema() {
    let t = start().await;
    let s = StateStore::new(t.client.clone(), TABLE, "m1");
    s.ensure_table().await.unwrap();
    s.ensure_table().await.unwrap();
    // Two executions at once.
    let s2 = StateStore::new(t.client.clone(), "tsmigrate_state2", "m1");
    let s3 = StateStore::new(t.client.clone(), "tsmigrate_state2", "m2");
    let (a, b) = tokio::join!(s2.ensure_table(), s3.ensure_table());
    a.unwrap();
    b.unwrap();

    let d = t.client.describe_table(TABLE).await.unwrap();
    let pk: Vec<_> = d
        .def
        .primary_key
        .iter()
        .map(|c| (c.name.as_str(), c.pk_type))
        .collect();
    assert_eq!(
        pk,
        vec![("migration_id", PkType::String), ("key", PkType::String)]
    );
    assert_eq!(d.def.options.max_versions, 1);
    assert_eq!(d.def.options.time_to_live, -1);
    // The readiness probe leaves nothing behind.
    assert_eq!(s.delete_migration().await.unwrap(), 0);

    t.client
        .create_table(&int_table("not_state"))
        .await
        .unwrap();
    let wrong = StateStore::new(t.client.clone(), "not_state", "m1");
    let e = wrong.ensure_table().await.unwrap_err();
    assert!(
        matches!(&e, StateError::TableMismatch { table, .. } if table == "not_state"),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("not_state") && msg.contains("destination.state_table"),
        "{msg}"
    );
}

// ------------------------------------------------------------------------------ lease

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_acquire_reacquire_hold_release() {
    let t = start().await;
    let s = store(&t, "m1").await;
    let ttl = Duration::from_secs(60);
    assert_eq!(s.lease().await.unwrap(), None);

    let l1 = s.acquire_lease("exec-a", ttl).await.unwrap();
    assert_eq!(l1.owner, "exec-a");
    assert_eq!(s.lease().await.unwrap().as_ref(), Some(&l1));

    // Re-entrant: the same execution re-invoking a step extends its lease.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let l2 = s.acquire_lease("exec-a", ttl).await.unwrap();
    assert!(l2.expires_at > l1.expires_at);

    let e = s.acquire_lease("exec-b", ttl).await.unwrap_err();
    match &e {
        StateError::LeaseHeld {
            owner, expires_at, ..
        } => {
            assert_eq!(owner, "exec-a");
            assert_eq!(unix_millis(*expires_at), unix_millis(l2.expires_at));
        }
        other => panic!("expected LeaseHeld, got {other:?}"),
    }
    assert!(e.to_string().contains("exec-a"), "{e}");

    // Only the owner renews or releases.
    assert!(matches!(
        s.renew_lease("exec-b", ttl).await.unwrap_err(),
        StateError::LeaseHeld { ref owner, .. } if owner == "exec-a"
    ));
    assert!(matches!(
        s.release_lease("exec-b").await.unwrap_err(),
        StateError::LeaseHeld { ref owner, .. } if owner == "exec-a"
    ));
    let l3 = s.renew_lease("exec-a", ttl).await.unwrap();
    assert_eq!(l3.owner, "exec-a");
    assert_eq!(s.lease().await.unwrap().unwrap().owner, "exec-a");

    s.release_lease("exec-a").await.unwrap();
    assert_eq!(s.lease().await.unwrap(), None);
    // Releasing an absent lease is fine; renewing it is not.
    s.release_lease("exec-a").await.unwrap();
    assert!(matches!(
        s.renew_lease("exec-a", ttl).await.unwrap_err(),
        StateError::LeaseLost { .. }
    ));
    // Free again.
    s.acquire_lease("exec-b", ttl).await.unwrap();

    // Leases of other migrations in the same table are independent.
    let other = store(&t, "m2").await;
    other.acquire_lease("exec-a", ttl).await.unwrap();
    assert_eq!(s.lease().await.unwrap().unwrap().owner, "exec-b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_lease_is_taken_over() {
    let t = start().await;
    let now = SystemTime::now();
    let (a_ms, a_clock) = manual_clock(now);
    let (_b_ms, b_clock) = manual_clock(now + Duration::from_secs(3600));
    let a = store(&t, "m1").await.with_clock(a_clock);
    let b = StateStore::new(t.client.clone(), TABLE, "m1").with_clock(b_clock);
    let ttl = Duration::from_secs(30);

    a.acquire_lease("exec-a", ttl).await.unwrap();
    // Expired but nobody took it: still a's to renew (and to re-acquire).
    a_ms.fetch_add(60_000, Ordering::SeqCst);
    let renewed = a.renew_lease("exec-a", ttl).await.unwrap();
    assert_eq!(unix_millis(renewed.expires_at), unix_millis(a.now() + ttl));

    // An hour later b takes the expired lease over.
    let lb = b.acquire_lease("exec-b", ttl).await.unwrap();
    assert_eq!(lb.owner, "exec-b");
    assert_eq!(a.lease().await.unwrap().unwrap().owner, "exec-b");
    // a has lost it: renew, release and (by a's clock, unexpired) acquire all fail.
    assert!(matches!(
        a.renew_lease("exec-a", ttl).await.unwrap_err(),
        StateError::LeaseHeld { ref owner, .. } if owner == "exec-b"
    ));
    assert!(matches!(
        a.release_lease("exec-a").await.unwrap_err(),
        StateError::LeaseHeld { .. }
    ));
    assert!(matches!(
        a.acquire_lease("exec-a", ttl).await.unwrap_err(),
        StateError::LeaseHeld { .. }
    ));
    assert_eq!(b.lease().await.unwrap().unwrap(), lb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_acquirers_exactly_one_wins() {
    let t = start().await;
    let s = store(&t, "m1").await;
    let ttl = Duration::from_secs(60);
    for round in 0..15 {
        let a = s.clone();
        let b = StateStore::new(t.client.clone(), TABLE, "m1");
        let (ra, rb) = tokio::join!(
            a.acquire_lease("exec-a", ttl),
            b.acquire_lease("exec-b", ttl)
        );
        let (winner, loser_err) = match (ra, rb) {
            (Ok(l), Err(e)) | (Err(e), Ok(l)) => (l, e),
            (ra, rb) => panic!("round {round}: expected exactly one winner: {ra:?} / {rb:?}"),
        };
        match loser_err {
            StateError::LeaseHeld { owner, .. } => assert_eq!(owner, winner.owner),
            other => panic!("round {round}: loser got {other:?}"),
        }
        assert_eq!(s.lease().await.unwrap().unwrap().owner, winner.owner);
        s.release_lease(&winner.owner).await.unwrap();
    }

    // Racing takeovers of an expired lease: still exactly one winner.
    let later = SystemTime::now() + Duration::from_secs(3600);
    for round in 0..10 {
        s.acquire_lease("old", Duration::from_millis(1))
            .await
            .unwrap();
        let a = StateStore::new(t.client.clone(), TABLE, "m1").with_clock(move || later);
        let b = a.clone();
        let (ra, rb) = tokio::join!(
            a.acquire_lease("exec-a", ttl),
            b.acquire_lease("exec-b", ttl)
        );
        assert!(
            ra.is_ok() != rb.is_ok(),
            "round {round}: expected exactly one winner: {ra:?} / {rb:?}"
        );
        let winner = ra.or(rb).unwrap();
        assert_eq!(s.lease().await.unwrap().unwrap().owner, winner.owner);
        a.release_lease(&winner.owner).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_survives_lost_answers() {
    let t = start().await;
    let s = store(&t, "m1").await;
    let ttl = Duration::from_secs(60);
    // The create is applied but its answer lost: the client's retry sees the row exist.
    t.server
        .faults()
        .fail_next_action("PutRow", 1, Fault::DropAfterApply);
    let l = s.acquire_lease("exec-a", ttl).await.unwrap();
    assert_eq!(s.lease().await.unwrap().unwrap().owner, l.owner);
    // A conditional update whose answer is lost surfaces; the step's retry re-acquires.
    t.server
        .faults()
        .fail_next_action("UpdateRow", 1, Fault::DropAfterApply);
    let e = s.acquire_lease("exec-a", ttl).await.unwrap_err();
    assert!(
        matches!(e.class(), Class::Connection | Class::Transient),
        "{e:?}"
    );
    s.acquire_lease("exec-a", ttl).await.unwrap();
    assert!(matches!(
        s.acquire_lease("exec-b", ttl).await.unwrap_err(),
        StateError::LeaseHeld { .. }
    ));
}

// ------------------------------------------------------------------------------ checkpoint

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_chain_is_conditional() {
    let t = start().await;
    let s = store(&t, "m1").await;
    assert_eq!(s.checkpoint().await.unwrap(), None);

    let c1 = cp(1, 4);
    s.save_checkpoint(None, &c1).await.unwrap();
    assert_eq!(s.checkpoint().await.unwrap(), Some(c1.clone()));

    // A second "first" checkpoint conflicts.
    let e = s.save_checkpoint(None, &cp(1, 999)).await.unwrap_err();
    assert!(
        matches!(
            e,
            StateError::CheckpointConflict {
                expected: None,
                found: Some(1),
                ..
            }
        ),
        "{e:?}"
    );

    let c2 = cp(2, 1200);
    s.save_checkpoint(Some(&c1), &c2).await.unwrap();
    assert_eq!(s.checkpoint().await.unwrap(), Some(c2.clone()));
    let c3 = cp(3, 5000);
    s.save_checkpoint(Some(&c2), &c3).await.unwrap();
    // gtid_set and event_time may go away.
    assert_eq!(s.checkpoint().await.unwrap().unwrap().gtid_set, None);

    // A writer still holding c1 (stale) is refused, and the stored checkpoint is unchanged.
    let e = s.save_checkpoint(Some(&c1), &cp(2, 777)).await.unwrap_err();
    match &e {
        StateError::CheckpointConflict {
            expected, found, ..
        } => assert_eq!((*expected, *found), (Some(1), Some(3))),
        other => panic!("expected CheckpointConflict, got {other:?}"),
    }
    assert!(e.to_string().contains("another execution"), "{e}");
    assert_eq!(s.checkpoint().await.unwrap(), Some(c3.clone()));

    // Replaying the save that already happened is harmless.
    s.save_checkpoint(Some(&c2), &c3).await.unwrap();
    assert_eq!(s.checkpoint().await.unwrap(), Some(c3.clone()));

    // seq must increase.
    assert!(matches!(
        s.save_checkpoint(Some(&c3), &cp(3, 6000))
            .await
            .unwrap_err(),
        StateError::Invalid(_)
    ));

    // A lost answer on a conditional save: the caller retries the same save.
    let c4 = cp(4, 7000);
    t.server
        .faults()
        .fail_next_action("PutRow", 1, Fault::DropAfterApply);
    assert!(s.save_checkpoint(Some(&c3), &c4).await.is_err());
    s.save_checkpoint(Some(&c3), &c4).await.unwrap();
    assert_eq!(s.checkpoint().await.unwrap(), Some(c4));

    // Another migration has its own checkpoint.
    let other = store(&t, "m2").await;
    assert_eq!(other.checkpoint().await.unwrap(), None);
    other.save_checkpoint(None, &cp(1, 4)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_checkpoint_survives_a_lost_answer() {
    let t = start().await;
    let s = store(&t, "m1").await;
    t.server
        .faults()
        .fail_next_action("PutRow", 1, Fault::DropAfterApply);
    s.save_checkpoint(None, &cp(1, 4)).await.unwrap();
    assert_eq!(s.checkpoint().await.unwrap(), Some(cp(1, 4)));
}

// ------------------------------------------------------------------------------ plan

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_with_450_chunks_round_trips_in_order() {
    let t = start().await;
    // 450 chunks: three BatchWriteRow calls (200 + 200 + 50), and five GetRange pages.
    let s = store(&t, "m1").await.with_page_rows(100);
    assert_eq!(s.plan().await.unwrap(), None);
    assert!(s.chunks().await.unwrap().is_empty());

    let (plan, chunks) = plan_chunks(450);
    s.create_plan(&plan, &chunks).await.unwrap();
    assert_eq!(s.plan().await.unwrap(), Some(plan.clone()));
    assert_eq!(s.chunks().await.unwrap(), chunks);
    assert_eq!(s.chunk(0).await.unwrap(), Some(chunks[0].clone()));
    assert_eq!(s.chunk(449).await.unwrap(), Some(chunks[449].clone()));
    assert_eq!(s.chunk(450).await.unwrap(), None);
    assert_eq!(chunks[0].lower, None);
    assert_eq!(chunks[449].upper, None);

    // A second plan is refused and the first one kept.
    let (plan2, chunks2) = plan_chunks(3);
    let e = s.create_plan(&plan2, &chunks2).await.unwrap_err();
    assert!(
        matches!(
            e,
            StateError::PlanConflict {
                chunk_count: 450,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("resume"), "{e}");
    assert_eq!(s.plan().await.unwrap(), Some(plan));
    assert_eq!(s.chunks().await.unwrap(), chunks);

    // Malformed requests are refused before anything is written.
    let s2 = store(&t, "m2").await;
    let (p, mut c) = plan_chunks(3);
    c.swap(0, 1);
    assert!(matches!(
        s2.create_plan(&p, &c).await.unwrap_err(),
        StateError::Invalid(_)
    ));
    assert!(matches!(
        s2.create_plan(&p, &c[..2]).await.unwrap_err(),
        StateError::Invalid(_)
    ));
    assert_eq!(s2.plan().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_creation_recovers_from_a_crashed_attempt_and_lost_answers() {
    let t = start().await;
    let s = store(&t, "m1").await.with_page_rows(3);
    // Leftovers of a crashed attempt: chunk rows but no plan row.
    for i in [2u32, 7, 10] {
        let row = Row::new(
            PrimaryKey::new()
                .with("migration_id", "m1")
                .with("key", format!("chunk/{i:06}")),
        )
        .with("index", i64::from(i))
        .with("table", "old")
        .with("rows", 5i64)
        .with("bytes", 5i64)
        .with("status", "done")
        .with("plan_id", "crashed");
        t.client
            .put_row(TABLE, &row, &Condition::ignore())
            .await
            .unwrap();
    }
    assert_eq!(s.plan().await.unwrap(), None);
    assert!(s.chunks().await.unwrap().is_empty());
    assert!(s.next_unfinished_chunks(10).await.unwrap().is_empty());

    let (plan, chunks) = plan_chunks(5);
    // The plan row's answer is lost; the client's retry finds our own plan.
    t.server
        .faults()
        .fail_next_action("PutRow", 1, Fault::DropAfterApply);
    s.create_plan(&plan, &chunks).await.unwrap();
    assert_eq!(s.plan().await.unwrap(), Some(plan));
    assert_eq!(s.chunks().await.unwrap(), chunks);
    assert_eq!(s.chunk(2).await.unwrap(), Some(chunks[2].clone()));
    // Rows beyond the plan's end are gone.
    assert_eq!(s.chunk(7).await.unwrap(), None);
    assert_eq!(s.chunk(10).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_progress_and_waves() {
    let t = start().await;
    let s = store(&t, "m1").await.with_page_rows(2);
    assert!(s.next_unfinished_chunks(5).await.unwrap().is_empty());
    let (plan, chunks) = plan_chunks(10);
    s.create_plan(&plan, &chunks).await.unwrap();

    let mut c3 = chunks[3].clone();
    c3.cursor = Some(json!([3500, "k3x"]));
    c3.rows = 5000;
    c3.bytes = 1 << 20;
    c3.status = ChunkStatus::Running;
    s.save_chunk_progress(&c3).await.unwrap();
    assert_eq!(s.chunk(3).await.unwrap(), Some(c3.clone()));
    // Saving the same progress again is harmless.
    s.save_chunk_progress(&c3).await.unwrap();

    // Done: cursor cleared, counts kept; table and bounds stay the plan's.
    let mut done3 = c3.clone();
    done3.cursor = None;
    done3.rows = 7000;
    done3.status = ChunkStatus::Done;
    done3.table = "ignored".into();
    s.save_chunk_progress(&done3).await.unwrap();
    let got = s.chunk(3).await.unwrap().unwrap();
    assert_eq!(got.cursor, None);
    assert_eq!(got.rows, 7000);
    assert_eq!(got.status, ChunkStatus::Done);
    assert_eq!(got.table, chunks[3].table);
    assert_eq!(got.upper, chunks[3].upper);

    for i in [0usize, 1] {
        let mut c = chunks[i].clone();
        c.status = ChunkStatus::Done;
        s.save_chunk_progress(&c).await.unwrap();
    }
    let mut c2 = chunks[2].clone();
    c2.status = ChunkStatus::Running;
    s.save_chunk_progress(&c2).await.unwrap();

    let idx = |v: Vec<ChunkRecord>| v.into_iter().map(|c| c.index).collect::<Vec<_>>();
    assert_eq!(
        idx(s.next_unfinished_chunks(3).await.unwrap()),
        vec![2, 4, 5]
    );
    assert_eq!(
        idx(s.next_unfinished_chunks(100).await.unwrap()),
        vec![2, 4, 5, 6, 7, 8, 9]
    );
    assert!(s.next_unfinished_chunks(0).await.unwrap().is_empty());
    assert_eq!(s.chunks().await.unwrap().len(), 10);

    for c in s.chunks().await.unwrap() {
        let mut c = c;
        c.status = ChunkStatus::Done;
        s.save_chunk_progress(&c).await.unwrap();
    }
    assert!(s.next_unfinished_chunks(10).await.unwrap().is_empty());

    // A chunk outside the plan.
    let e = s
        .save_chunk_progress(&ChunkRecord::new(10, "orders", None, None))
        .await
        .unwrap_err();
    assert!(
        matches!(e, StateError::ChunkNotFound { index: 10, .. }),
        "{e:?}"
    );
    assert_eq!(s.chunk(10).await.unwrap(), None);
    assert!(matches!(
        s.chunk(1_000_000).await.unwrap_err(),
        StateError::Invalid(_)
    ));
}

// ------------------------------------------------------------------------------ records

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_windows_keep_the_first_time() {
    let t = start().await;
    let (ms, clock) = manual_clock(SystemTime::now());
    let s = store(&t, "m1").await.with_clock(clock);
    assert_eq!(s.failure(FailureKind::Connection).await.unwrap(), None);

    let t1 = s.record_failure(FailureKind::Connection).await.unwrap();
    assert_eq!(unix_millis(t1), unix_millis(s.now()));
    ms.fetch_add(60_000, Ordering::SeqCst);
    let again = s.record_failure(FailureKind::Connection).await.unwrap();
    assert_eq!(unix_millis(again), unix_millis(t1));
    // Kinds are independent.
    let o1 = s.record_failure(FailureKind::Other).await.unwrap();
    assert_eq!(unix_millis(o1), unix_millis(t1) + 60_000);
    ms.fetch_add(60_000, Ordering::SeqCst);
    assert_eq!(
        unix_millis(s.record_failure(FailureKind::Connection).await.unwrap()),
        unix_millis(t1)
    );

    s.clear_failure(FailureKind::Connection).await.unwrap();
    s.clear_failure(FailureKind::Connection).await.unwrap();
    assert_eq!(s.failure(FailureKind::Connection).await.unwrap(), None);
    ms.fetch_add(1_000, Ordering::SeqCst);
    let t2 = s.record_failure(FailureKind::Connection).await.unwrap();
    assert_eq!(unix_millis(t2), unix_millis(t1) + 121_000);
    assert_eq!(
        s.failure(FailureKind::Other)
            .await
            .unwrap()
            .map(unix_millis),
        Some(unix_millis(o1))
    );

    // A lost answer on the first failure's write is recognised.
    s.clear_failure(FailureKind::Other).await.unwrap();
    t.server
        .faults()
        .fail_next_action("PutRow", 1, Fault::DropAfterApply);
    let o2 = s.record_failure(FailureKind::Other).await.unwrap();
    assert_eq!(unix_millis(o2), unix_millis(s.now()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dirty_records_are_kept_and_counted() {
    let t = start().await;
    let s = store(&t, "m1").await.with_page_rows(2);
    assert_eq!(s.dirty_count().await.unwrap(), 0);
    assert!(s.dirty_records(10).await.unwrap().is_empty());

    let rec = |table: &str, pk: &str, at: i64| DirtyRecord {
        table: table.into(),
        primary_key: pk.into(),
        reason: "BIGINT UNSIGNED value above 2^63-1; map the column to string".into(),
        at,
    };
    let long_key = format!("note={}", "x".repeat(2000));
    let records = vec![
        rec("orders", "id=42", 1),
        rec("orders", "id=7", 2),
        rec("customers", "id=1", 3),
        rec("orders", &long_key, 4),
        rec("orders", "id=a/b", 5),
    ];
    for r in &records {
        s.record_dirty(r).await.unwrap();
    }
    // A replay of the same row replaces its record: counted once.
    s.record_dirty(&rec("orders", "id=42", 9)).await.unwrap();
    assert_eq!(s.dirty_count().await.unwrap(), 5);

    let all = s.dirty_records(100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0], rec("customers", "id=1", 3));
    assert!(all.contains(&rec("orders", "id=42", 9)));
    assert!(all.contains(&rec("orders", &long_key, 4)));
    assert_eq!(s.dirty_records(2).await.unwrap(), all[..2].to_vec());

    // Other migrations' records are not counted.
    let other = store(&t, "m2").await;
    assert_eq!(other.dirty_count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_round_trip_and_reset() {
    let t = start().await;
    let s = store(&t, "m1").await;
    assert_eq!(s.status().await.unwrap(), None);
    let st = Status {
        phase: "full".into(),
        stopped: false,
        detail: Some("copying chunk 3 of 10".into()),
        updated_at: 1_700_000_000_000,
        rows_copied: 123_456,
        dirty_rows: 2,
        last_error: None,
        ..Status::default()
    };
    s.set_status(&st).await.unwrap();
    assert_eq!(s.status().await.unwrap(), Some(st.clone()));
    let st2 = Status {
        phase: "failed".into(),
        stopped: true,
        detail: None,
        last_error: Some("Migration.RetryWindowExceeded".into()),
        ..st
    };
    s.set_status(&st2).await.unwrap();
    assert_eq!(s.status().await.unwrap(), Some(st2));

    // Reset deletes this migration's rows only.
    let other = store(&t, "m2").await;
    other.set_status(&Status::default()).await.unwrap();
    s.acquire_lease("exec-a", Duration::from_secs(60))
        .await
        .unwrap();
    s.save_checkpoint(None, &cp(1, 4)).await.unwrap();
    let (plan, chunks) = plan_chunks(3);
    s.create_plan(&plan, &chunks).await.unwrap();
    assert_eq!(s.delete_migration().await.unwrap(), 7);
    assert_eq!(s.status().await.unwrap(), None);
    assert_eq!(s.lease().await.unwrap(), None);
    assert_eq!(s.plan().await.unwrap(), None);
    assert_eq!(other.status().await.unwrap(), Some(Status::default()));
}

/// Fencing of binlog writes: two invocations of one execution (a retry while the first still
/// runs) cannot both hold the writing slot; the second gets it once the first released it or
/// its deadline plus the grace has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_claims_fence_overlapping_invocations() {
    let t = start().await;
    let now = SystemTime::now();
    let (ms, clock) = manual_clock(now);
    let s = store(&t, "m1").await.with_clock(clock);
    let ttl = Duration::from_secs(3600);
    s.acquire_lease("exec-a", ttl).await.unwrap();
    let until = now + Duration::from_secs(900);

    s.claim_batch("exec-a", "first", until).await.unwrap();
    // Re-entrant for the same token; the other invocation must wait.
    s.claim_batch("exec-a", "first", until).await.unwrap();
    let busy = s.claim_batch("exec-a", "second", until).await.unwrap_err();
    assert!(matches!(busy, StateError::BatchBusy { .. }), "{busy:?}");
    assert_eq!(busy.class(), Class::Transient);
    // Another execution is refused by the lease itself.
    assert!(matches!(
        s.claim_batch("exec-b", "third", until).await.unwrap_err(),
        StateError::LeaseHeld { .. }
    ));

    // Released: the next batch claims at once.
    s.release_batch("first").await.unwrap();
    assert_eq!(s.batch_claim().await.unwrap(), None);
    s.claim_batch("exec-a", "second", until).await.unwrap();

    // A claim whose holder died: free only after its deadline plus the grace.
    ms.fetch_add(900_000, Ordering::SeqCst);
    assert!(s.claim_batch("exec-a", "third", until).await.is_err());
    ms.fetch_add(TAKEOVER_GRACE.as_millis() as i64, Ordering::SeqCst);
    s.claim_batch("exec-a", "third", until).await.unwrap();
    assert_eq!(
        s.batch_claim().await.unwrap().map(|c| c.token),
        Some("third".to_owned())
    );
    // The stale holder's release does not end the new claim.
    s.release_batch("second").await.unwrap();
    assert_eq!(
        s.batch_claim().await.unwrap().map(|c| c.token),
        Some("third".to_owned())
    );
}
