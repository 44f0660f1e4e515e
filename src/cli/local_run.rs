//! One local run per migration: before `tsmigrate run` starts the state machine it records its
//! process in the state store. A run restarted after its predecessor died (kill -9, a crash, a
//! reboot) takes over that run's lease and batch claim at once; while the predecessor is still
//! running, the new run is refused instead of writing beside it.
//!
//! A process is named `host/pid/start` (`start`: the process start time from
//! `/proc/PID/stat`), so a recycled pid is not mistaken for the old run. Whether a process on
//! another host is alive cannot be known: its lease is then respected until it expires.

use std::time::SystemTime;

use tsmigrate_core::state::{StateError, StateStore};
use tsmigrate_core::steps::lifecycle::LEASE_TTL;

/// This process's name.
pub fn this_process() -> String {
    let pid = std::process::id();
    format!("{}/{pid}/{}", host(), start_time(pid).unwrap_or_default())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Field 22 of `/proc/PID/stat` (start time in clock ticks since boot), read after the
/// command name, which may itself hold spaces and parentheses.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_owned)
}

#[derive(Debug, PartialEq, Eq)]
enum Liveness {
    Alive,
    Gone,
    /// On another host: unknowable from here.
    Elsewhere,
}

fn liveness(process: &str) -> Liveness {
    let mut parts = process.rsplitn(3, '/');
    let (Some(start), Some(pid), Some(h)) = (parts.next(), parts.next(), parts.next()) else {
        return Liveness::Elsewhere;
    };
    if h != host() {
        return Liveness::Elsewhere;
    }
    match pid.parse::<u32>().ok().and_then(start_time) {
        Some(s) if s == start => Liveness::Alive,
        _ => Liveness::Gone,
    }
}

/// Whether `owner` is an execution of the local run named `base` (`local-ID`, or a
/// continuation `local-ID-cN`).
fn is_local_execution(owner: &str, base: &str) -> bool {
    owner == base
        || owner
            .strip_prefix(base)
            .and_then(|r| r.strip_prefix("-c"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Makes this process the migration's one local run, taking over the lease of a dead
/// predecessor. `base` is the local execution name. Refuses (with what to do) when another
/// live run holds the migration.
pub async fn claim(store: &StateStore, base: &str) -> Result<(), String> {
    let me = this_process();
    let previous = store.local_run().await.map_err(|e| e.to_string())?;
    let lease = store.lease().await.map_err(|e| e.to_string())?;
    let live_local_lease = lease
        .as_ref()
        .filter(|l| is_local_execution(&l.owner, base) && !l.is_expired_at(SystemTime::now()));
    if let Some(p) = previous.as_deref().filter(|p| *p != me) {
        match liveness(p) {
            Liveness::Alive => {
                return Err(format!(
                    "another `tsmigrate run` of this migration is running (process {p}); \
                     stop it (Ctrl-C) before starting a new one"
                ))
            }
            Liveness::Elsewhere if live_local_lease.is_some() => {
                return Err(format!(
                    "a `tsmigrate run` on another host (process {p}) holds this migration; stop \
                     it there, or wait until its lease expires"
                ))
            }
            Liveness::Elsewhere | Liveness::Gone => {}
        }
    }
    if let Some(held) = live_local_lease {
        eprintln!(
            "taking over from an earlier local run that is no longer running (it held execution \
             {:?})",
            held.owner
        );
        store
            .take_over_lease(held, base, LEASE_TTL)
            .await
            .map_err(|e| e.to_string())?;
    }
    match store.set_local_run(previous.as_deref(), &me).await {
        Ok(()) => Ok(()),
        Err(StateError::LeaseHeld { .. }) => Err(
            "another `tsmigrate run` of this migration started at the same moment; stop it \
             before starting a new one"
                .into(),
        ),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_executions_include_continuations_only() {
        assert!(is_local_execution("local-m1", "local-m1"));
        assert!(is_local_execution("local-m1-c12", "local-m1"));
        assert!(!is_local_execution("local-m1-c", "local-m1"));
        assert!(!is_local_execution("local-m10", "local-m1"));
        assert!(!is_local_execution("exec-1", "local-m1"));
    }

    #[test]
    fn this_process_is_alive_and_a_dead_pid_is_gone() {
        let me = this_process();
        assert_eq!(liveness(&me), Liveness::Alive, "{me}");
        // Same host and pid, another start time: a recycled pid is not the old run.
        let (head, _) = me.rsplit_once('/').expect("three parts");
        assert_eq!(liveness(&format!("{head}/1")), Liveness::Gone);
        assert_eq!(liveness("some-other-host.invalid/1/1"), Liveness::Elsewhere);
    }
}
