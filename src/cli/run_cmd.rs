//! `tsmigrate run`: the state machine in-process (design §8), steps bound to `steps::*`, with
//! progress per table while the full copy runs and a summary at the end. Ctrl-C stops; the next
//! run resumes from the saved chunk cursors.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use asl::{RunOptions, Runner, TaskError, TaskInvoker};
use tsmigrate_core::config::{self, LocalSecrets};
use tsmigrate_core::state::ChunkStatus;
use tsmigrate_core::steps::{self, run_step, Step};

/// The ASL file, compiled in so the binary runs anywhere.
pub const MIGRATION_ASL: &str = include_str!("../../statemachine/migration.asl.json");

/// `${PrecheckFunctionArn}` → `Precheck`, …
pub fn local_substitutions() -> HashMap<String, String> {
    Step::ALL
        .iter()
        .map(|s| {
            (
                format!("{}FunctionArn", s.resource_name()),
                s.resource_name().to_owned(),
            )
        })
        .collect()
}

/// Runs steps in this process, each on its own task (as each Lambda invocation runs on its
/// own): the Map's concurrent CopyChunks then use every core instead of sharing the runner's.
pub struct LocalInvoker {
    pub secrets: Arc<LocalSecrets>,
}

/// Aborts the step's task when the runner drops its future (a failed Map iteration stops the
/// others, as on AWS), so no step keeps writing after its execution gave up on it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TaskInvoker for LocalInvoker {
    fn invoke<'a>(
        &'a self,
        resource: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, TaskError>> {
        Box::pin(async move {
            let step = Step::from_resource_name(resource).ok_or_else(|| {
                TaskError::new("States.TaskFailed", format!("unknown resource {resource}"))
            })?;
            let secrets = self.secrets.clone();
            let mut task = AbortOnDrop(tokio::spawn(async move {
                run_step(step, input, secrets.as_ref()).await
            }));
            match (&mut task.0).await {
                Ok(r) => r.map_err(task_error),
                Err(e) => Err(TaskError::new(
                    "States.TaskFailed",
                    format!("the {resource} step stopped: {e}"),
                )),
            }
        })
    }
}

/// A step's error as the state machine sees it: its stable name is what Retry/Catch match.
pub fn task_error(e: steps::StepError) -> TaskError {
    TaskError::new(e.name.as_str(), e.message)
}

pub async fn run(path: &Path, mode: super::ModeArg) -> i32 {
    let mut cfg = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if let Err(problems) = cfg.validate() {
        eprintln!("error: the config has problems:\n{problems}");
        return 2;
    }
    let secrets = cfg.detach_literal_secrets();
    if let Err(e) = super::embedded::resolve(&mut cfg, &secrets).await {
        eprintln!("error: {e}");
        return 2;
    }
    let runner = match Runner::parse(MIGRATION_ASL, &local_substitutions()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: the state machine does not load: {e}");
            return 2;
        }
    };
    let cfg_json = match serde_json::to_value(&cfg) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let ctx = match steps::Context::new(cfg.clone(), &secrets).await {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let input = json!({"config": cfg_json, "mode": mode.as_str(), "verify": false});
    let invoker = LocalInvoker {
        secrets: Arc::new(secrets),
    };
    // A stable name: a rerun after Ctrl-C re-enters its own lease; after kill -9 it takes
    // over the dead run's lease (local_run).
    let name = format!("local-{}", cfg.migration_id);
    let store = steps::lifecycle::state_store(&ctx);
    let claimed = match store.ensure_table().await {
        Ok(()) => super::local_run::claim(&store, &name).await,
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = claimed {
        eprintln!("error: {e}");
        return 2;
    }
    let started = Instant::now();
    let progress = tokio::spawn(show_progress(ctx.clone()));
    let options = RunOptions::default();
    let outcome = tokio::select! {
        r = runner.execute(&name, input, &invoker, &options) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    progress.abort();
    eprintln!();
    let code = match outcome {
        None => {
            println!(
                "stopped: every acknowledged row is saved; run the same command again to resume"
            );
            130
        }
        Some(Err(e)) => {
            eprintln!("error: {e}");
            2
        }
        Some(Ok(result)) => {
            let last = result.last();
            match last.map(|e| &e.status) {
                Some(asl::Status::Succeeded) if result.pending.is_empty() => {
                    println!(
                        "migration {} succeeded in {:.1} s ({} execution{})",
                        cfg.migration_id,
                        started.elapsed().as_secs_f64(),
                        result.executions.len(),
                        if result.executions.len() == 1 {
                            ""
                        } else {
                            "s"
                        }
                    );
                    0
                }
                Some(asl::Status::Failed { error, cause }) => {
                    println!("migration {} FAILED: {error}: {cause}", cfg.migration_id);
                    if error == steps::ErrorName::PrecheckFailed.as_str() {
                        print_failed_checks(&ctx).await;
                    }
                    1
                }
                _ => {
                    println!(
                        "migration {} did not finish ({} start requests pending)",
                        cfg.migration_id,
                        result.pending.len()
                    );
                    1
                }
            }
        }
    };
    summary(&ctx).await;
    code
}

/// Source row estimates per table (information_schema; approximate), for the ETA.
async fn row_estimates(ctx: &steps::Context) -> HashMap<String, u64> {
    let Ok(mut conn) = tsmigrate_core::mysql::connect(&ctx.source).await else {
        return HashMap::new();
    };
    let estimates = match steps::objects::select(&mut conn, &ctx.config).await {
        Ok(selected) => steps::objects::map_all(&selected, &ctx.config)
            .0
            .into_iter()
            .map(|m| (m.source_name, m.row_estimate))
            .collect(),
        Err(_) => HashMap::new(),
    };
    tsmigrate_core::mysql::close(conn).await;
    estimates
}

/// Copy progress of one table, from its chunk rows in the state store.
#[derive(Debug, Default, Clone, PartialEq)]
struct TableProgress {
    table: String,
    rows: u64,
    chunks_done: usize,
    chunks: usize,
}

fn table_progress(chunks: &[tsmigrate_core::state::ChunkRecord]) -> Vec<TableProgress> {
    let mut per: Vec<TableProgress> = Vec::new();
    for c in chunks {
        let i = match per.iter().position(|p| p.table == c.table) {
            Some(i) => i,
            None => {
                per.push(TableProgress {
                    table: c.table.clone(),
                    ..Default::default()
                });
                per.len() - 1
            }
        };
        let p = &mut per[i];
        p.rows += c.rows;
        p.chunks += 1;
        p.chunks_done += usize::from(c.status == ChunkStatus::Done);
    }
    per
}

/// One progress line: `table  [#####.....] rows/estimate  rows/s  ETA`.
fn progress_line(p: &TableProgress, estimate: Option<u64>, rate: f64) -> String {
    const WIDTH: usize = 20;
    let done = p.chunks > 0 && p.chunks_done == p.chunks;
    // Estimates are approximate: never show more than 99% before the last chunk is done.
    let fraction = match (done, estimate) {
        (true, _) => 1.0,
        (false, Some(e)) if e > 0 => (p.rows as f64 / e as f64).min(0.99),
        _ => 0.0,
    };
    let filled = (fraction * WIDTH as f64).floor() as usize;
    let bar = format!("{}{}", "#".repeat(filled), ".".repeat(WIDTH - filled));
    let eta = if done {
        "done".to_owned()
    } else {
        match estimate {
            Some(e) if rate > 0.0 && e > p.rows => {
                let secs = ((e - p.rows) as f64 / rate).round() as u64;
                format!("ETA {}:{:02}", secs / 60, secs % 60)
            }
            _ => "ETA --".to_owned(),
        }
    };
    let of = estimate.map(|e| format!("/~{e}")).unwrap_or_default();
    format!(
        "{:<24} [{bar}] {}{of} rows  {:>8.0} rows/s  {eta}  ({}/{} chunks)",
        p.table, p.rows, rate, p.chunks_done, p.chunks
    )
}

/// Per table: a bar, rows copied / estimate, rows/s, ETA. On a terminal, indicatif draws
/// one bar per table, refreshed every second; otherwise (logs, CI) a [`progress_line`] per
/// table is printed every 10 seconds.
async fn show_progress(ctx: Arc<steps::Context>) {
    use std::io::IsTerminal;
    let store = steps::lifecycle::state_store(&ctx);
    let estimates = row_estimates(&ctx).await;
    let tty = std::io::stderr().is_terminal();
    let every = Duration::from_secs(if tty { 1 } else { 10 });
    let mut bars = Bars::new();
    // Rates over the last interval, per table (the log lines' rows/s).
    let mut last: HashMap<String, (u64, Instant)> = HashMap::new();
    let incremental = ctx
        .config
        .has(tsmigrate_core::config::MigrationType::Incremental);
    let mut binlog_bar: Option<indicatif::ProgressBar> = None;
    let mut last_binlog: Option<(u64, u64, Instant)> = None;
    loop {
        tokio::time::sleep(every).await;
        if incremental {
            if let Ok(Some(c)) = store.checkpoint().await {
                let now = Instant::now();
                let (events, rows, at) = last_binlog.unwrap_or((c.events, c.rows_written, now));
                let secs = now.duration_since(at).as_secs_f64();
                let rate = |n: u64, before: u64| {
                    if secs > 0.0 {
                        n.saturating_sub(before) as f64 / secs
                    } else {
                        0.0
                    }
                };
                let line = binlog_line(
                    &c,
                    rate(c.events, events),
                    rate(c.rows_written, rows),
                    unix_now(),
                );
                last_binlog = Some((c.events, c.rows_written, now));
                // Only once batches run: during the copy the checkpoint is P0.
                if c.seq > 1 {
                    if tty {
                        binlog_bar
                            .get_or_insert_with(|| {
                                bars.multi.add(indicatif::ProgressBar::new_spinner())
                            })
                            .set_message(line);
                    } else {
                        eprintln!("{line}");
                    }
                }
            }
        }
        let Ok(chunks) = store.chunks().await else {
            continue;
        };
        let now = Instant::now();
        for p in table_progress(&chunks) {
            let estimate = estimates.get(&p.table).copied();
            if tty {
                bars.show(&p, estimate);
                continue;
            }
            let (before, at) = last.get(&p.table).copied().unwrap_or((p.rows, now));
            let secs = now.duration_since(at).as_secs_f64();
            let rate = if secs > 0.0 {
                p.rows.saturating_sub(before) as f64 / secs
            } else {
                0.0
            };
            last.insert(p.table.clone(), (p.rows, now));
            eprintln!("{}", progress_line(&p, estimate, rate));
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The binlog loop's progress: position, rates over the last interval, totals and how long
/// ago the last applied transaction committed on the source (the lag, when the source is
/// busy or `heartbeat.enabled` keeps it writing).
fn binlog_line(
    c: &tsmigrate_core::state::Checkpoint,
    events_per_s: f64,
    rows_per_s: f64,
    now: i64,
) -> String {
    let lag = c
        .event_time
        .map(|t| format!("last applied commit {} s ago", (now - t).max(0)))
        .unwrap_or_else(|| "no transaction applied yet".into());
    format!(
        "binlog {}:{}  {events_per_s:>8.0} events/s  {rows_per_s:>8.0} rows/s  {lag}  ({} events, {} rows since the start)",
        c.file, c.pos, c.events, c.rows_written
    )
}

/// The terminal's progress bars, one per table in plan order.
struct Bars {
    multi: indicatif::MultiProgress,
    bars: HashMap<String, indicatif::ProgressBar>,
    style: indicatif::ProgressStyle,
}

impl Bars {
    fn new() -> Bars {
        let style = indicatif::ProgressStyle::with_template(
            "{prefix:<24} [{bar:20}] {human_pos}/~{human_len} rows  {rate}  ETA {eta}  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:>8.0} rows/s", state.per_sec());
            },
        )
        .progress_chars("#>.");
        Bars {
            multi: indicatif::MultiProgress::new(),
            bars: HashMap::new(),
            style,
        }
    }

    fn show(&mut self, p: &TableProgress, estimate: Option<u64>) {
        let bar = self.bars.entry(p.table.clone()).or_insert_with(|| {
            let bar = self.multi.add(indicatif::ProgressBar::new(0));
            bar.set_style(self.style.clone());
            bar.set_prefix(p.table.clone());
            bar
        });
        if bar.is_finished() {
            return;
        }
        let done = p.chunks > 0 && p.chunks_done == p.chunks;
        // Estimates are approximate: the bar never looks full before the last chunk is done.
        let length = if done {
            p.rows
        } else {
            estimate
                .unwrap_or(0)
                .max(p.rows.saturating_add(p.rows / 100).saturating_add(1))
        };
        bar.set_length(length);
        bar.set_position(p.rows);
        bar.set_message(format!("({}/{} chunks)", p.chunks_done, p.chunks));
        if done {
            bar.finish();
        }
    }
}

/// The failed precheck items and their fixes, so a run that stopped at the precheck says why
/// (the execution keeps them in the Precheck step's output, which a local run does not show).
async fn print_failed_checks(ctx: &steps::Context) {
    let report = steps::precheck(ctx).await;
    for i in report
        .items
        .iter()
        .filter(|i| i.status == steps::precheck::Status::Failed)
    {
        println!("  {}: {}", i.name, i.detail);
        if !i.fix.is_empty() {
            println!("    fix: {}", i.fix);
        }
    }
}

async fn summary(ctx: &steps::Context) {
    let store = steps::lifecycle::state_store(ctx);
    let chunks = store.chunks().await.unwrap_or_default();
    let mut per: Vec<(String, u64, u64)> = Vec::new();
    for c in &chunks {
        match per.iter_mut().find(|p| p.0 == c.table) {
            Some(p) => {
                p.1 += c.rows;
                p.2 += c.bytes;
            }
            None => per.push((c.table.clone(), c.rows, c.bytes)),
        }
    }
    if !per.is_empty() {
        println!("\n{:<32} {:>12} {:>12}", "TABLE", "ROWS", "MB");
        for (t, rows, bytes) in &per {
            println!("{t:<32} {rows:>12} {:>12.1}", *bytes as f64 / 1048576.0);
        }
    }
    if ctx
        .config
        .has(tsmigrate_core::config::MigrationType::Incremental)
    {
        if let Ok(Some(c)) = store.checkpoint().await {
            let lag = c
                .event_time
                .map(|t| {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0);
                    format!(
                        ", {} s behind the source's last applied commit",
                        (now - t).max(0)
                    )
                })
                .unwrap_or_default();
            println!("binlog applied up to {}:{}{lag}", c.file, c.pos);
        }
    }
    if let Ok(n) = store.dirty_count().await {
        println!("dirty rows (recorded, not migrated): {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(rows: u64, done: usize, chunks: usize) -> TableProgress {
        TableProgress {
            table: "orders".into(),
            rows,
            chunks_done: done,
            chunks,
        }
    }

    #[test]
    fn progress_line_shows_rows_rate_and_eta() {
        let l = progress_line(&p(250, 0, 2), Some(1000), 50.0);
        assert!(l.contains("[#####...............]"), "{l}");
        assert!(l.contains("250/~1000 rows"), "{l}");
        assert!(l.contains("50 rows/s"), "{l}");
        assert!(l.contains("ETA 0:15"), "{l}");
        assert!(l.contains("(0/2 chunks)"), "{l}");
    }

    #[test]
    fn progress_line_caps_an_underestimate_and_finishes_on_the_last_chunk() {
        let running = progress_line(&p(5000, 1, 2), Some(1000), 10.0);
        assert!(running.contains("[###################.]"), "{running}");
        assert!(running.contains("ETA --"), "{running}");
        let done = progress_line(&p(5000, 2, 2), Some(1000), 0.0);
        assert!(done.contains("[####################]"), "{done}");
        assert!(done.ends_with("done  (2/2 chunks)"), "{done}");
    }

    #[test]
    fn binlog_line_shows_position_rates_lag_and_totals() {
        let c = tsmigrate_core::state::Checkpoint {
            file: "bin.000002".into(),
            pos: 4711,
            gtid_set: None,
            event_time: Some(1_000),
            seq: 5,
            updated_at: 0,
            events: 12_000,
            rows_written: 9_000,
        };
        let l = binlog_line(&c, 1500.0, 1200.0, 1_003);
        assert!(l.starts_with("binlog bin.000002:4711 "), "{l}");
        assert!(l.contains("1500 events/s"), "{l}");
        assert!(l.contains("1200 rows/s"), "{l}");
        assert!(l.contains("last applied commit 3 s ago"), "{l}");
        assert!(
            l.ends_with("(12000 events, 9000 rows since the start)"),
            "{l}"
        );
    }

    #[test]
    fn table_progress_sums_chunks_per_table_in_plan_order() {
        let mut a = tsmigrate_core::state::ChunkRecord::new(0, "b", None, None);
        a.rows = 5;
        a.status = ChunkStatus::Done;
        let mut b = tsmigrate_core::state::ChunkRecord::new(1, "a", None, None);
        b.rows = 7;
        let mut c = tsmigrate_core::state::ChunkRecord::new(2, "b", None, None);
        c.rows = 1;
        let per = table_progress(&[a, b, c]);
        assert_eq!(per.len(), 2);
        assert_eq!(
            (
                per[0].table.as_str(),
                per[0].rows,
                per[0].chunks_done,
                per[0].chunks
            ),
            ("b", 6, 1, 2)
        );
        assert_eq!(
            (
                per[1].table.as_str(),
                per[1].rows,
                per[1].chunks_done,
                per[1].chunks
            ),
            ("a", 7, 0, 1)
        );
    }
}
