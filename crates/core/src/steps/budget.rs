//! How much a per-table step (Precheck, CreateSchema, PlanChunks, Verify) may do in one
//! invocation. At 1,000 tables none of them fits in one Lambda invocation for sure, so each
//! works until its budget is spent, answers `done: false` with where it stopped, and the state
//! machine calls it again (statemachine/migration.asl.json's loops).

use std::time::{Duration, Instant, SystemTime};

/// Time a per-table step keeps for itself before the invocation's deadline: the unit of work
/// in progress (a table's ranges, a chunk's comparison), saving progress and the response.
pub const TABLE_STEP_MARGIN: Duration = Duration::from_secs(60);

/// A step's allowance for one invocation. Whatever it says, the first unit of work is always
/// done, so every call makes progress.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    stop_at: Option<Instant>,
    max_units: Option<usize>,
}

impl Budget {
    /// No limit: the local runner and the command line do everything in one call.
    pub fn unlimited() -> Budget {
        Budget::default()
    }

    /// Until `margin` before `deadline` (Lambda's), or unlimited without one.
    pub fn until(deadline: Option<SystemTime>, margin: Duration) -> Budget {
        let stop_at = deadline.map(|d| {
            let left = d
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(margin);
            Instant::now() + left
        });
        Budget {
            stop_at,
            max_units: None,
        }
    }

    /// At most `n` units of work per call (tests: many resumptions without a slow clock).
    pub fn units(n: usize) -> Budget {
        Budget {
            stop_at: None,
            max_units: Some(n.max(1)),
        }
    }

    /// Whether a call that has done `done` units must stop now.
    pub fn spent(&self, done: usize) -> bool {
        done > 0
            && (self.max_units.is_some_and(|m| done >= m)
                || self.stop_at.is_some_and(|t| Instant::now() >= t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_unit_is_always_allowed() {
        let past = Budget::until(Some(SystemTime::now()), TABLE_STEP_MARGIN);
        assert!(!past.spent(0));
        assert!(past.spent(1));
        assert!(!Budget::unlimited().spent(1_000_000));
        let three = Budget::units(3);
        assert!(!three.spent(2));
        assert!(three.spent(3));
        let later = Budget::until(
            Some(SystemTime::now() + Duration::from_secs(900)),
            TABLE_STEP_MARGIN,
        );
        assert!(!later.spent(10));
    }
}
