//! Sign-in attempts allowed per client address and per e-mail address (`governor`): guessing
//! passwords is slow from one address, and slow against one account from many.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The two limits on sign-in attempts.
#[derive(Clone)]
pub struct LoginLimit {
    by_address: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    by_email: Arc<DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for LoginLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimit").finish_non_exhaustive()
    }
}

impl LoginLimit {
    /// `per_minute` attempts a minute from each address and against each e-mail address,
    /// bursting up to the same number.
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        Self {
            by_address: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
            by_email: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
        }
    }

    /// Counts an attempt; `Err(seconds to wait)` when either limit is reached. The e-mail is
    /// compared lower-cased, as accounts are.
    pub fn check(&self, address: Option<IpAddr>, email: &str) -> Result<(), u64> {
        let wait =
            |not_until: governor::NotUntil<_>| not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1);
        if let Some(address) = address {
            self.by_address.check_key(&address).map_err(wait)?;
        }
        self.by_email.check_key(&email.trim().to_lowercase()).map_err(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_and_each_email_has_its_limit() {
        let limit = LoginLimit::per_minute(NonZeroU32::new(2).unwrap());
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limit.check(Some(one), "a@x").is_ok() && limit.check(Some(one), "b@x").is_ok());
        assert!(limit.check(Some(one), "c@x").is_err(), "the address is spent");
        assert!(limit.check(Some(two), "A@x").is_ok(), "a's second attempt");
        assert!(
            limit.check(Some(two), " a@X ").unwrap_err() >= 1,
            "a is spent, whatever the case"
        );
    }
}
