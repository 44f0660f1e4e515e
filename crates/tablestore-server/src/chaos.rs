//! The random chaos mode: a seeded share of requests fails the ways a real service fails
//! (busy, timing out, connections lost before or after the write), and every request waits a
//! fixed latency, so migrations can be tried against a WAN-like, flaky destination.

use std::time::Duration;

use super::faults::Fault;

/// Settings of the chaos mode. The same seed gives the same sequence of draws (the order in
/// which concurrent requests draw still varies).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChaosConfig {
    /// Share of requests (0.0-1.0) that fail.
    pub fault_rate: f64,
    /// Wait before answering each request.
    pub latency: Duration,
    pub seed: u64,
}

impl ChaosConfig {
    /// Checks the rate; `seed` None picks one at random (it is logged, so a run can be
    /// repeated).
    pub fn new(fault_rate: f64, latency: Duration, seed: Option<u64>) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&fault_rate) {
            return Err(format!(
                "the fault rate must be between 0 and 1, got {fault_rate}"
            ));
        }
        Ok(ChaosConfig {
            fault_rate,
            latency,
            seed: seed.unwrap_or_else(|| fastrand::u64(..)),
        })
    }

    /// Whether it changes anything (rate or latency above zero).
    pub fn is_active(&self) -> bool {
        self.fault_rate > 0.0 || !self.latency.is_zero()
    }
}

impl std::fmt::Display for ChaosConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fault rate {}, latency {} ms, seed {}",
            self.fault_rate,
            self.latency.as_millis(),
            self.seed
        )
    }
}

/// How long an injected OTSTimeout keeps the request before answering.
const TIMEOUT_DELAY_MS: std::ops::RangeInclusive<u64> = 50..=500;

#[derive(Debug)]
pub(crate) struct Chaos {
    config: ChaosConfig,
    rng: fastrand::Rng,
}

impl Chaos {
    pub fn new(config: ChaosConfig) -> Self {
        Chaos {
            rng: fastrand::Rng::with_seed(config.seed),
            config,
        }
    }

    pub fn config(&self) -> &ChaosConfig {
        &self.config
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.f64() < p
    }

    /// The fault for one request of `action`, or None (most requests).
    pub fn draw(&mut self, action: &str) -> Option<Fault> {
        if !self.chance(self.config.fault_rate) {
            return None;
        }
        // Multi-row writes can also fail row by row inside a successful answer.
        let kinds = if matches!(action, "BatchWriteRow" | "BulkImport") {
            5
        } else {
            4
        };
        Some(match self.rng.u32(0..kinds) {
            0 => Fault::server_busy(),
            1 => Fault::Timeout(Duration::from_millis(self.rng.u64(TIMEOUT_DELAY_MS))),
            2 => Fault::DropConnection,
            3 => Fault::DropAfterApply,
            _ => Fault::RowErrors(0.05 + 0.45 * self.rng.f64()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chaos(rate: f64, seed: u64) -> Chaos {
        Chaos::new(ChaosConfig::new(rate, Duration::ZERO, Some(seed)).unwrap())
    }

    #[test]
    fn fails_about_the_configured_share_with_every_kind() {
        let mut c = chaos(0.05, 42);
        let faults: Vec<Fault> = (0..20_000)
            .filter_map(|_| c.draw("BatchWriteRow"))
            .collect();
        assert!((800..1200).contains(&faults.len()), "{}", faults.len());
        let has = |f: fn(&Fault) -> bool| faults.iter().any(f);
        assert!(has(
            |f| matches!(f, Fault::Error { code, .. } if code == "OTSServerBusy")
        ));
        assert!(has(|f| matches!(f, Fault::Timeout(_))));
        assert!(has(|f| matches!(f, Fault::DropConnection)));
        assert!(has(|f| matches!(f, Fault::DropAfterApply)));
        assert!(has(
            |f| matches!(f, Fault::RowErrors(r) if (0.05..=0.5).contains(r))
        ));
    }

    #[test]
    fn same_seed_same_draws_and_row_errors_only_for_batches() {
        let draws = |seed| {
            let mut c = chaos(0.5, seed);
            (0..200).map(|_| c.draw("GetRow")).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        assert!(draws(7)
            .iter()
            .flatten()
            .all(|f| !matches!(f, Fault::RowErrors(_))));
        assert!(chaos(1.0, 1).draw("PutRow").is_some());
        assert!(chaos(0.0, 1).draw("PutRow").is_none());
    }

    #[test]
    fn rejects_rates_outside_0_to_1() {
        assert!(ChaosConfig::new(1.5, Duration::ZERO, None).is_err());
        assert!(ChaosConfig::new(-0.1, Duration::ZERO, None).is_err());
        assert!(ChaosConfig::new(f64::NAN, Duration::ZERO, None).is_err());
    }
}
