//! Token buckets for the throttling options (source queries/s, rows/s, MB/s).

use std::time::Duration;

use tokio::time::Instant;

/// A token bucket refilled at `rate` tokens per second, holding at most one second's worth.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64) -> Self {
        TokenBucket {
            rate,
            // Empty at start: each chunk invocation makes a new bucket, and a full one would
            // let every invocation burst a second's worth on top of the rate.
            tokens: 0.0,
            last: Instant::now(),
        }
    }

    /// Waits until `n` tokens are available, then takes them. Requests larger than the
    /// bucket go into debt, which later calls wait off, so the average rate holds.
    pub async fn take(&mut self, n: f64) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
            .min(self.rate.max(n));
        self.last = now;
        self.tokens -= n;
        if self.tokens < 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(-self.tokens / self.rate)).await;
        }
    }
}

/// An optional bucket per limit; `None` limits cost nothing.
#[derive(Debug, Default)]
pub struct Throttle {
    pub queries: Option<TokenBucket>,
    pub rows: Option<TokenBucket>,
    pub bytes: Option<TokenBucket>,
}

impl Throttle {
    /// One of `share` equal parts of per-migration limits: the configured rates hold for
    /// the whole migration while `share` chunks are copied at once.
    pub fn share_of(qps: Option<f64>, rps: Option<f64>, mb_per_s: Option<f64>, share: u32) -> Self {
        let part = |r: Option<f64>| r.map(|r| r / f64::from(share.max(1)));
        Throttle::new(part(qps), part(rps), part(mb_per_s))
    }

    pub fn new(qps: Option<f64>, rps: Option<f64>, mb_per_s: Option<f64>) -> Self {
        Throttle {
            queries: qps.filter(|r| *r > 0.0).map(TokenBucket::new),
            rows: rps.filter(|r| *r > 0.0).map(TokenBucket::new),
            bytes: mb_per_s
                .filter(|r| *r > 0.0)
                .map(|m| TokenBucket::new(m * 1024.0 * 1024.0)),
        }
    }

    pub async fn query(&mut self) {
        if let Some(b) = &mut self.queries {
            b.take(1.0).await;
        }
    }

    pub async fn rows_and_bytes(&mut self, rows: u64, bytes: u64) {
        if let Some(b) = &mut self.rows {
            b.take(rows as f64).await;
        }
        if let Some(b) = &mut self.bytes {
            b.take(bytes as f64).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holds_the_average_rate() {
        let mut b = TokenBucket::new(100.0);
        let start = tokio::time::Instant::now();
        for _ in 0..30 {
            b.take(10.0).await;
        }
        // 300 tokens at 100/s with a 100-token head start: about 2 s.
        let took = start.elapsed().as_secs_f64();
        assert!((2.9..3.2).contains(&took), "{took}");
    }
}
