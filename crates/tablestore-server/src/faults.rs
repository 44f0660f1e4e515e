//! Fault injection for tests: make the next N requests fail in a chosen way.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

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
    remaining: usize,
    fault: Fault,
}

/// A queue of pending faults, consulted once per request.
#[derive(Debug, Default)]
pub struct FaultInjector {
    queue: Mutex<VecDeque<Entry>>,
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

    pub fn clear(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.clear();
        }
    }

    fn push(&self, action: Option<String>, n: usize, fault: Fault) {
        if n == 0 {
            return;
        }
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(Entry {
                action,
                remaining: n,
                fault,
            });
        }
    }

    /// The fault for this request, if one is pending for its action.
    pub fn take(&self, action: &str) -> Option<Fault> {
        let mut q = self.queue.lock().ok()?;
        let pos = q
            .iter()
            .position(|e| e.action.as_deref().is_none_or(|a| a == action))?;
        let entry = q.get_mut(pos)?;
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
}
