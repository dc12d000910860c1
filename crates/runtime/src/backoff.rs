//! Exponential backoff with full jitter, for reconnect and retry loops.
//!
//! Full jitter (a uniform delay between zero and the exponential cap) spreads the retries of
//! many instances that failed together, so a recovering database is not hit in lockstep.

use std::{future::Future, time::Duration};

use rand::Rng;

/// Delay generator; call [`Backoff::next_delay`] after each failure and [`Backoff::reset`]
/// after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            attempt: 0,
        }
    }

    /// The cap for the current attempt, before jitter.
    pub fn current_cap(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(20));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A jittered delay to wait before the next attempt; grows the cap for the one after.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self.current_cap();
        self.attempt = self.attempt.saturating_add(1);
        let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        // Never below a tenth of the cap, so a retry loop cannot spin.
        Duration::from_millis(rand::rng().random_range(millis / 10..=millis.max(1)))
    }

    /// Failures since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(10))
    }
}

/// Calls `attempt` until it succeeds, waiting out failures that `retryable` says a dependency
/// coming back will cure (logged as `what`); any other failure is returned at once. `Ok(None)`
/// when `shutdown` resolves first, so a service started before its dependencies still stops
/// promptly.
pub async fn retry_until_ready<T, E, Fut>(
    mut backoff: Backoff,
    what: &str,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
    mut attempt: impl FnMut() -> Fut,
    retryable: impl Fn(&E) -> bool,
) -> Result<Option<T>, E>
where
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    loop {
        match attempt().await {
            Ok(value) => return Ok(Some(value)),
            Err(e) if retryable(&e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, ?delay, "{what}; retrying");
                tokio::select! {
                    () = &mut *shutdown => return Ok(None),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_doubles_until_the_maximum() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1_000));
        let caps: Vec<u128> = (0..6)
            .map(|_| {
                let cap = backoff.current_cap().as_millis();
                let delay = backoff.next_delay();
                assert!(delay.as_millis() <= cap && delay.as_millis() >= cap / 10);
                cap
            })
            .collect();
        assert_eq!(caps, vec![100, 200, 400, 800, 1_000, 1_000]);
        backoff.reset();
        assert_eq!(backoff.current_cap(), Duration::from_millis(100));
    }
}
