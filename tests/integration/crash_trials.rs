//! Crash trials of the full copy, as users run it (`tsmigrate run` as a child process): the run
//! killed with SIGKILL at random points and simply started again; the local Tablestore server
//! process killed and restarted on the same data and port mid-copy; MariaDB restarted (cleanly,
//! then after a crash) mid-copy; the copy's source connections killed with KILL CONNECTION.
//! After each: the run succeeds, verify finds 0 mismatches, an independent row-by-row read of
//! the destination equals the source, and the chunks' copied-row totals equal the source's
//! row count (no row counted twice). Seeded; the seed is printed (TSMIGRATE_TRIAL_SEED
//! replays one). TSMIGRATE_TRIAL_ROWS / TSMIGRATE_TRIAL_KILLS size the SIGKILL trial
//! (docs/reliability.md has the 500k-row figures).

use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use tablestore::client::Client;
use tablestore::{PkValue, Row, Value};

use crate::harness::mariadb::{MariaDb, USER, USER_PASSWORD};
use crate::harness::output::{signal, spawn_run, status_chunks, text, tsmigrate};
use crate::harness::write_local_config;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

/// The trial's seed: TSMIGRATE_TRIAL_SEED, or a random one; printed either way.
fn seed(trial: &str) -> u64 {
    let seed = env_u64("TSMIGRATE_TRIAL_SEED", fastrand::u64(..));
    eprintln!("{trial}: seed {seed} (TSMIGRATE_TRIAL_SEED={seed} replays it)");
    seed
}

/// `t` with `rows` rows: ids with gaps (3, 6, 9, …), a multi-byte string of varying length,
/// a BIGINT that is NULL for every 11th row, a DOUBLE.
async fn create_source(db: &MariaDb, d: &str, rows: u64) {
    db.exec(&format!(
        "CREATE TABLE `{d}`.t (id BIGINT PRIMARY KEY, s VARCHAR(80) CHARACTER SET utf8mb4 NOT NULL,
             n BIGINT NULL, f DOUBLE NOT NULL);
         INSERT INTO `{d}`.t SELECT seq * 3, CONCAT('row-', seq, '-ß', REPEAT('x', seq % 40)),
             IF(seq % 11 = 0, NULL, CAST(seq AS SIGNED) * 7 - 100000), seq / 4 FROM `{d}`.seq_1_to_{rows};
         ANALYZE TABLE `{d}`.t"
    ))
    .await;
}

/// Row `i` (1-based) of `t` as the destination must hold it: key, s, n (absent when NULL), f.
fn expected(i: u64) -> (i64, String, Option<i64>, f64) {
    let i = i as i64;
    let s = format!("row-{i}-ß{}", "x".repeat((i % 40) as usize));
    let n = (i % 11 != 0).then_some(i * 7 - 100_000);
    (i * 3, s, n, i as f64 / 4.0)
}

/// The destination's `t`, row by row, equals the source's `rows` rows.
fn assert_rows(got: &[Row], rows: u64) {
    assert_eq!(got.len() as u64, rows, "row count of the destination");
    for (k, r) in got.iter().enumerate() {
        let (id, s, n, f) = expected(k as u64 + 1);
        let key = match r.primary_key.columns().first().map(|c| &c.value) {
            Some(PkValue::Integer(i)) => *i,
            other => panic!("row {k}: key {other:?}"),
        };
        assert_eq!(key, id, "row {k}: a key is missing or extra");
        assert_eq!(r.get("s"), Some(&Value::String(s)), "s of id {id}");
        assert_eq!(r.get("n"), n.map(Value::Integer).as_ref(), "n of id {id}");
        assert_eq!(r.get("f"), Some(&Value::Double(f)), "f of id {id}");
        let cells = 2 + usize::from(n.is_some());
        assert_eq!(r.cells.len(), cells, "id {id} has extra cells: {r:?}");
    }
}

/// A config migrating `t` of `database` (as `user`) to `endpoint`, copying at about
/// `rps` rows/s so the faults land mid-copy.
fn write_config(
    dir: &Path,
    db: &MariaDb,
    database: &str,
    user: &str,
    endpoint: &str,
    rows: u64,
    rps: f64,
) -> String {
    let extra = serde_json::json!({
        // About 16 chunks, 4 per execution: kills land in copies, between chunks, in the
        // plan and around continuations.
        "full": {"chunk_rows": (rows / 16).max(1000), "page_rows": 250, "chunks_per_execution": 4},
        "throttle": {"full": {"rps": rps}}
    });
    let id = format!("crash_{database}");
    write_local_config(dir, db, user, database, &id, Some(endpoint), extra)
}

/// Waits for a run to end by itself, at most `limit`.
fn wait_for(mut run: Child, limit: Duration) -> Output {
    let started = Instant::now();
    while run.try_wait().expect("poll").is_none() {
        if started.elapsed() > limit {
            signal(&run, libc::SIGKILL);
            let out = run.wait_with_output().expect("output");
            panic!("the run did not end within {limit:?}: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    run.wait_with_output().expect("output")
}

/// `(chunks done, chunks, rows copied)` from `tsmigrate status`; `None` before the plan.
fn chunk_status(config: &str) -> Option<(u64, u64, u64)> {
    status_chunks(config).filter(|&(_, chunks, _)| chunks > 0)
}

/// The run ended well, every chunk is done and counted its rows once, and verify agrees.
fn assert_complete(run: &Output, config: &str, rows: u64) {
    assert!(run.status.success(), "the run failed: {}", text(run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("succeeded"), "{}", text(run));
    // The run's own summary: `t <rows> <MB>`.
    let reported: Option<u64> = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("t ")
                .and_then(|r| r.split_whitespace().next())
        })
        .and_then(|n| n.parse().ok());
    assert_eq!(reported, Some(rows), "rows the run reports: {}", text(run));
    assert!(
        stdout.contains("dirty rows (recorded, not migrated): 0"),
        "{}",
        text(run)
    );
    let (done, total, copied) = chunk_status(config).expect("a plan");
    assert_eq!(
        (done, copied),
        (total, rows),
        "chunks done and rows counted"
    );
    let verify = tsmigrate(&["verify", "--config", config]);
    assert!(verify.status.success(), "verify: {}", text(&verify));
    assert!(
        text(&verify).contains(&format!("matched {rows}, missing 0, different 0, extra 0")),
        "{}",
        text(&verify)
    );
}

fn client(endpoint: &str) -> Client {
    crate::harness::tablestore::local_client(endpoint)
}

/// `tsmigrate run` killed with SIGKILL at random points (start-up, plan, mid-page, between
/// chunks, around continuations) and started again each time, no step in between; the
/// embedded server dies with it each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_of_a_full_copy_then_restart() {
    let rows = env_u64("TSMIGRATE_TRIAL_ROWS", 60_000);
    let kills = env_u64("TSMIGRATE_TRIAL_KILLS", 20);
    // Uninterrupted, the copy would take about this long: the kills (~1.6 s apart) cover
    // about half of it, so each lands mid-copy and the last run still has work.
    let copy_seconds = env_u64("TSMIGRATE_TRIAL_COPY_SECONDS", 60);
    let mut rng = fastrand::Rng::with_seed(seed("sigkill trial"));
    let db = MariaDb::shared();
    let d = db.fresh_database("crash_kill").await;
    let t0 = Instant::now();
    create_source(db, &d, rows).await;
    eprintln!("sigkill trial: {rows} source rows in {:?}", t0.elapsed());
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = format!("embedded:{}", dir.path().join("data").display());
    let rps = rows as f64 / copy_seconds as f64;
    let config = write_config(dir.path(), db, &d, USER, &endpoint, rows, rps);

    let started = Instant::now();
    let mut copied_before = 0;
    for k in 0..kills {
        let mut run = spawn_run(&config);
        tokio::time::sleep(Duration::from_millis(rng.u64(200..3000))).await;
        if run.try_wait().expect("poll").is_some() {
            let out = run.wait_with_output().expect("output");
            panic!(
                "kill {k}: the run ended before it was killed (raise TSMIGRATE_TRIAL_COPY_SECONDS): {}",
                text(&out)
            );
        }
        signal(&run, libc::SIGKILL);
        let out = run.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), None, "killed by a signal");
        let status = chunk_status(&config);
        eprintln!("kill {k} after {:?}: chunks {status:?}", started.elapsed());
        if let Some((_, _, copied)) = status {
            // Counted rows never run ahead of the source, never go back.
            assert!(
                (copied_before..=rows).contains(&copied),
                "kill {k}: {copied} rows counted after {copied_before}"
            );
            copied_before = copied;
        }
    }
    assert!(
        copied_before > 0 && copied_before < rows,
        "the kills should land mid-copy; {copied_before} of {rows} rows were copied"
    );
    let last = wait_for(spawn_run(&config), Duration::from_secs(30 * 60));
    eprintln!(
        "sigkill trial: {rows} rows, {kills} kills, done after {:?}",
        started.elapsed()
    );
    assert_complete(&last, &config, rows);

    let cfg = crate::harness::local_config(db, &d, &dir.path().join("data"), format!("crash_{d}"));
    let ctx = crate::harness::local_context(cfg).await;
    assert_rows(&crate::full_copy::all_rows(&ctx, "t", &["id"]).await, rows);
}

/// `tsmigrate tablestore serve --listen ADDR --data-dir DIR` in its own process; returns the
/// child and its endpoint.
fn serve(data: &Path, listen: &str) -> (Child, String) {
    crate::harness::tablestore::serve_process(data, listen)
}

/// The server process (which also holds the state store) is killed with SIGKILL twice
/// mid-copy and comes back on the same data and port after a pause; the run rides it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_killed_and_restarted_mid_copy() {
    const ROWS: u64 = 30_000;
    let mut rng = fastrand::Rng::with_seed(seed("server kill trial"));
    let db = MariaDb::shared();
    let d = db.fresh_database("crash_server").await;
    create_source(db, &d, ROWS).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("ts");
    let (mut server, endpoint) = serve(&data, "127.0.0.1:0");
    let listen = endpoint.trim_start_matches("http://").to_owned();
    let config = write_config(
        dir.path(),
        db,
        &d,
        USER,
        &endpoint,
        ROWS,
        ROWS as f64 / 20.0,
    );

    let run = spawn_run(&config);
    for k in 0..2 {
        tokio::time::sleep(Duration::from_millis(rng.u64(2000..5000))).await;
        server.kill().expect("SIGKILL the server");
        server.wait().expect("reap the server");
        let down = rng.u64(500..4000);
        eprintln!("server kill {k}: down for {down} ms");
        tokio::time::sleep(Duration::from_millis(down)).await;
        (server, _) = serve(&data, &listen);
    }
    let out = wait_for(run, Duration::from_secs(600));
    assert_complete(&out, &config, ROWS);
    let got = crate::harness::tablestore::all_rows(&client(&endpoint), "t", &["id"]).await;
    assert_rows(&got, ROWS);
    let _ = server.kill();
    let _ = server.wait();
}

/// A private MariaDB is restarted mid-copy twice: a clean shutdown, then a crash (SIGKILL);
/// both times on the same data and port. The copy resumes and ends equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restarted_mid_copy() {
    const ROWS: u64 = 30_000;
    let mut rng = fastrand::Rng::with_seed(seed("mariadb restart trial"));
    let db = tokio::task::block_in_place(|| MariaDb::start_with(&[]));
    let d = db.fresh_database("crash_mariadb").await;
    create_source(&db, &d, ROWS).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = format!("embedded:{}", dir.path().join("data").display());
    let config = write_config(
        dir.path(),
        &db,
        &d,
        USER,
        &endpoint,
        ROWS,
        ROWS as f64 / 20.0,
    );

    let run = spawn_run(&config);
    for crash in [false, true] {
        tokio::time::sleep(Duration::from_millis(rng.u64(2000..5000))).await;
        let t = Instant::now();
        tokio::task::block_in_place(|| {
            if crash {
                db.restart_after_crash()
            } else {
                db.restart()
            }
        });
        eprintln!(
            "mariadb {} took {:?}",
            if crash {
                "crash and restart"
            } else {
                "restart"
            },
            t.elapsed()
        );
    }
    let out = wait_for(run, Duration::from_secs(600));
    assert_complete(&out, &config, ROWS);
    let cfg = crate::harness::local_config(&db, &d, &dir.path().join("data"), format!("crash_{d}"));
    let ctx = crate::harness::local_context(cfg).await;
    assert_rows(&crate::full_copy::all_rows(&ctx, "t", &["id"]).await, ROWS);
}

/// The run's source connections are killed with KILL CONNECTION five times mid-copy. The run
/// connects as a user of its own, so only its connections are found in the processlist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_connections_killed_mid_copy() {
    const ROWS: u64 = 30_000;
    let mut rng = fastrand::Rng::with_seed(seed("kill connection trial"));
    let db = MariaDb::shared();
    let d = db.fresh_database("crash_conn").await;
    create_source(db, &d, ROWS).await;
    let user = format!("u_{d}");
    db.exec(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{USER_PASSWORD}';
         GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR ON *.* TO '{user}'@'%'"
    ))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = format!("embedded:{}", dir.path().join("data").display());
    let config = write_config(
        dir.path(),
        db,
        &d,
        &user,
        &endpoint,
        ROWS,
        ROWS as f64 / 20.0,
    );

    let mut run = spawn_run(&config);
    let mut admin = db.admin_conn().await;
    let mut killed = 0;
    let mut rounds = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while rounds < 5 {
        tokio::time::sleep(Duration::from_millis(rng.u64(1000..2500))).await;
        assert!(
            run.try_wait().expect("poll").is_none(),
            "the run ended after only {rounds} rounds of kills"
        );
        assert!(Instant::now() < deadline, "no copy connection to kill");
        // Prefer connections running the copy's page query; else every one of the run's.
        let ids: Vec<(u64, Option<String>)> = admin
            .exec(
                "SELECT ID, INFO FROM information_schema.PROCESSLIST WHERE USER = ?",
                (user.as_str(),),
            )
            .await
            .expect("processlist");
        let copying: Vec<u64> = ids
            .iter()
            .filter(|(_, info)| info.as_deref().is_some_and(|q| q.contains("SELECT")))
            .map(|(id, _)| *id)
            .collect();
        let victims = if copying.is_empty() {
            ids.iter().map(|(id, _)| *id).collect()
        } else {
            copying
        };
        if victims.is_empty() {
            continue;
        }
        for id in &victims {
            // The connection may have closed on its own meanwhile (ER_NO_SUCH_THREAD).
            if admin
                .query_drop(format!("KILL CONNECTION {id}"))
                .await
                .is_ok()
            {
                killed += 1;
            }
        }
        rounds += 1;
    }
    tsmigrate_core::mysql::close(admin).await;
    eprintln!("kill connection trial: {killed} connections killed in {rounds} rounds");
    assert!(killed >= rounds, "{killed} kills");
    let out = wait_for(run, Duration::from_secs(600));
    assert_complete(&out, &config, ROWS);
    let cfg = crate::harness::local_config(db, &d, &dir.path().join("data"), format!("crash_{d}"));
    let ctx = crate::harness::local_context(cfg).await;
    assert_rows(&crate::full_copy::all_rows(&ctx, "t", &["id"]).await, ROWS);
}

/// Regression (found by `mariadb_restarted_mid_copy`): a continuation's or restarted run's
/// Precheck that meets the source down ended the migration with Migration.PrecheckFailed. For
/// a migration under way it is now Migration.ConnectionFailed (retried within the connection
/// window); a first precheck still fails at once with its report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precheck_meeting_a_source_outage_is_retried_once_under_way() {
    use tsmigrate_core::config::SecretResolver;
    use tsmigrate_core::state::Plan;
    use tsmigrate_core::steps::dispatch::{run_step, Step};
    use tsmigrate_core::steps::ErrorName;

    let db = MariaDb::shared();
    let t = crate::harness::tablestore::start().await;
    let mut cfg = crate::harness::local_config(db, "gone", Path::new("unused"), "outage".into());
    cfg.destination.endpoint = t.server.endpoint();
    // A port nobody listens on: the source is down.
    cfg.source.port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let secrets = cfg.detach_literal_secrets();
    let input = serde_json::json!({"config": serde_json::to_value(&cfg).expect("config")});
    let precheck = || {
        run_step(
            Step::Precheck,
            input.clone(),
            &secrets as &dyn SecretResolver,
        )
    };

    let first = precheck().await.expect("a report");
    assert_eq!(first["passed"], false, "{first}");

    let ctx = crate::harness::context(cfg.clone(), &secrets).await;
    let store = tsmigrate_core::steps::lifecycle::state_store(&ctx);
    store.ensure_table().await.expect("state table");
    let plan = Plan {
        chunk_count: 0,
        tables: vec![],
        created_at: 0,
    };
    store.create_plan(&plan, &[]).await.expect("plan");
    let e = precheck().await.expect_err("an outage, not a report");
    assert_eq!(e.name, ErrorName::ConnectionFailed, "{e}");
    assert!(
        e.message
            .contains("precheck of a migration under way: source:"),
        "{e}"
    );
}
