//! Sign-in attempts allowed per client address and per e-mail address (`governor`): guessing
//! passwords is slow from one address, and slow against one account from many.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The two limits on sign-in attempts.
#[derive(Clone)]
pub struct LoginLimit {
    by_address: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    by_email: Arc<DefaultKeyedRateLimiter<String>>,
    /// Attempts counted, to forget the limits' idle keys every [`FORGET_EVERY`] of them (the
    /// maps would otherwise keep every address and e-mail ever tried).
    attempts: Arc<AtomicU64>,
}

const FORGET_EVERY: u64 = 1024;

/// The part of an address a limit counts: an IPv4 address, or an IPv6 address's /64 (one
/// host is given a whole /64, so counting single IPv6 addresses would count nothing).
fn counted(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
    }
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
            attempts: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Counts an attempt; `Err(seconds to wait)` when either limit is reached. The e-mail is
    /// compared lower-cased, as accounts are.
    pub fn check(&self, address: Option<IpAddr>, email: &str) -> Result<(), u64> {
        let wait =
            |not_until: governor::NotUntil<_>| not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1);
        if self.attempts.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            self.by_address.retain_recent();
            self.by_email.retain_recent();
        }
        if let Some(address) = address {
            self.by_address.check_key(&counted(address)).map_err(wait)?;
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
