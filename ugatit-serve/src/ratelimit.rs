//! At most N uploads an hour from one client address (`--rate-limit`, as selfie2anime.com's
//! firewall rule), over a sliding window. Each API process counts its own clients.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(3600);
/// Addresses tracked before idle ones are swept out.
const SWEEP_AT: usize = 10_000;

/// A per-address sliding-window limiter.
#[derive(Debug)]
pub struct RateLimiter {
    per_hour: usize,
    seen: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl RateLimiter {
    /// A limiter allowing `per_hour` requests an hour from each address (at least 1).
    pub fn new(per_hour: usize) -> Self {
        Self {
            per_hour: per_hour.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request from `addr` at `now`; `Err(seconds)` until a slot frees up when the
    /// address already made `per_hour` requests in the last hour (the refused one is not
    /// counted).
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= SWEEP_AT {
            seen.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
        }
        let times = seen.entry(addr).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= self.per_hour {
            let oldest = times.front().copied().unwrap_or(now);
            let wait = WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_n_plus_first_request_in_an_hour_is_refused() {
        let limiter = RateLimiter::new(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(a, t0).is_ok());
        }
        assert_eq!(limiter.check(a, t0), Err(3600));
        assert!(limiter.check(b, t0).is_ok());
        assert!(limiter.check(a, t0 + WINDOW).is_ok());
    }
}
