//! The per-client rate limit on ticket creation (off unless configured). Who may call at all
//! is [`crate::auth`]'s.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

/// Ticket creations allowed per client per minute (`RATE_LIMIT_PER_MINUTE`; absent: no limit).
#[derive(Clone)]
pub struct CreateLimit(Arc<DefaultKeyedRateLimiter<String>>);

impl CreateLimit {
    /// `per_minute` creations a minute, bursting up to the same number.
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        Self(Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))))
    }

    /// `Err(seconds to wait)` when `client` is over its limit.
    pub fn check(&self, client: &str) -> Result<(), u64> {
        // Clients idle for a minute are forgotten now and then, so the map does not keep every
        // client ever seen.
        if self.0.len() > 10_000 {
            self.0.retain_recent();
        }
        self.0.check_key(&client.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            wait.as_secs().max(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_per_client() {
        let limit = CreateLimit::per_minute(NonZeroU32::new(2).unwrap());
        assert!(limit.check("a").is_ok() && limit.check("a").is_ok());
        assert!(limit.check("a").unwrap_err() >= 1);
        assert!(limit.check("b").is_ok());
    }
}
