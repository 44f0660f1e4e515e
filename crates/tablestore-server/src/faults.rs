//! Fault injection: a deterministic queue for tests (make the next N requests fail in a chosen
//! way) and a seeded random chaos mode that fails a fraction of all requests, the way a busy
//! service across a WAN does.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::chaos::Chaos;
pub use super::chaos::ChaosConfig;

/// How an injected failure looks to the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this service error (e.g. OTSServerBusy) without executing the request.
    Error { code: String, message: String },
    /// Wait this long, then answer 503 OTSTimeout without executing (a client with a shorter
    /// timeout sees a transport timeout).
    Timeout(Duration),
    /// Close the connection without answering and without executing.
    DropConnection,
    /// Execute the request, then close the connection without answering: the client cannot
    /// tell whether the write happened (tests that replays are harmless).
    DropAfterApply,
    /// BatchWriteRow / BulkImport: execute, but answer this fraction of the rows (chosen at
    /// random, not written) with a row-level OTSServerBusy; other actions run normally.
    RowErrors(f64),
}

impl Fault {
    pub fn server_busy() -> Self {
        Fault::Error {
            code: tablestore::error::code::SERVER_BUSY.into(),
            message: "Server is busy.".into(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    action: Option<String>,
    /// Matching requests let through before the fault applies.
    skip: usize,
    remaining: usize,
    fault: Fault,
}

/// A queue of pending faults, consulted once per request, then the chaos mode if it is on.
#[derive(Debug, Default)]
pub struct FaultInjector {
    queue: Mutex<VecDeque<Entry>>,
    chaos: Mutex<Option<Chaos>>,
    /// Faults the chaos mode has injected so far.
    chaos_faults: AtomicU64,
}

impl FaultInjector {
    /// The next `n` requests (any action) fail with `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.push(None, n, fault);
    }

    /// The next `n` requests of `action` (e.g. "BatchWriteRow") fail with `fault`.
    pub fn fail_next_action(&self, action: &str, n: usize, fault: Fault) {
        self.push(Some(action.to_owned()), n, fault);
    }

    /// The `n` requests of `action` after the next `skip` ones fail with `fault`: a failure
    /// in the middle of a run, at a point fixed in advance.
    pub fn fail_action_after(&self, action: &str, skip: usize, n: usize, fault: Fault) {
        if n == 0 {
            return;
        }
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(Entry {
                action: Some(action.to_owned()),
                skip,
                remaining: n,
                fault,
            });
        }
    }

    /// Empties the queue (the chaos mode stays as it is).
    pub fn clear(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.clear();
        }
    }

    /// Turns the random chaos mode on (Some) or off (None).
    pub fn set_chaos(&self, config: Option<ChaosConfig>) {
        if let Ok(mut c) = self.chaos.lock() {
            *c = config.map(Chaos::new);
        }
    }

    /// The delay every request waits before it is answered (chaos mode), if any.
    pub fn latency(&self) -> Duration {
        self.chaos
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|c| c.config().latency))
            .unwrap_or_default()
    }

    /// Whether a row of a `RowErrors` batch fails (random, from the chaos seed when on).
    pub fn row_fails(&self, fraction: f64) -> bool {
        match self
            .chaos
            .lock()
            .ok()
            .as_deref_mut()
            .and_then(Option::as_mut)
        {
            Some(c) => c.chance(fraction),
            None => fastrand::f64() < fraction,
        }
    }

    fn push(&self, action: Option<String>, n: usize, fault: Fault) {
        if n == 0 {
            return;
        }
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(Entry {
                action,
                skip: 0,
                remaining: n,
                fault,
            });
        }
    }

    /// The fault for this request: a queued one for its action first, else the chaos mode's
    /// draw.
    pub fn take(&self, action: &str) -> Option<Fault> {
        if let Some(f) = self.take_queued(action) {
            return Some(f);
        }
        let mut chaos = self.chaos.lock().ok()?;
        let fault = chaos.as_mut()?.draw(action);
        if fault.is_some() {
            self.chaos_faults.fetch_add(1, Ordering::Relaxed);
        }
        fault
    }

    /// How many requests the chaos mode has failed (row errors count once per request).
    pub fn chaos_faults(&self) -> u64 {
        self.chaos_faults.load(Ordering::Relaxed)
    }

    fn take_queued(&self, action: &str) -> Option<Fault> {
        let mut q = self.queue.lock().ok()?;
        let pos = q
            .iter()
            .position(|e| e.action.as_deref().is_none_or(|a| a == action))?;
        let entry = q.get_mut(pos)?;
        if entry.skip > 0 {
            entry.skip -= 1;
            return None;
        }
        entry.remaining -= 1;
        let fault = entry.fault.clone();
        if entry.remaining == 0 {
            q.remove(pos);
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_per_action() {
        let f = FaultInjector::default();
        f.fail_next_action("PutRow", 2, Fault::DropConnection);
        assert_eq!(f.take("GetRow"), None);
        assert_eq!(f.take("PutRow"), Some(Fault::DropConnection));
        assert_eq!(f.take("PutRow"), Some(Fault::DropConnection));
        assert_eq!(f.take("PutRow"), None);
    }

    #[test]
    fn fails_after_skipping() {
        let f = FaultInjector::default();
        f.fail_action_after("BulkImport", 2, 1, Fault::DropConnection);
        assert_eq!(f.take("PutRow"), None);
        assert_eq!(f.take("BulkImport"), None);
        assert_eq!(f.take("BulkImport"), None);
        assert_eq!(f.take("BulkImport"), Some(Fault::DropConnection));
        assert_eq!(f.take("BulkImport"), None);
    }

    #[test]
    fn queued_faults_come_before_chaos() {
        let f = FaultInjector::default();
        f.set_chaos(Some(ChaosConfig {
            fault_rate: 0.0,
            latency: Duration::from_millis(7),
            seed: 1,
        }));
        f.fail_next(1, Fault::DropConnection);
        assert_eq!(f.take("PutRow"), Some(Fault::DropConnection));
        assert_eq!(f.take("PutRow"), None, "rate 0: chaos never fails");
        assert_eq!(f.latency(), Duration::from_millis(7));
        f.set_chaos(None);
        assert_eq!(f.latency(), Duration::ZERO);
    }
}
