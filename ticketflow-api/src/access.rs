//! Who may call the ticket operations: bearer API keys (compared in constant time) and a
//! per-client rate limit on ticket creation. Both are off unless configured.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use subtle::ConstantTimeEq;

/// The configured API keys (empty: no authentication).
#[derive(Clone, Default)]
pub struct ApiKeys(Arc<Vec<Vec<u8>>>);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} configured, values redacted)", self.0.len())
    }
}

impl ApiKeys {
    /// Keys from a comma-separated list (`API_KEYS`); blanks are ignored.
    pub fn parse(list: &str) -> Self {
        Self(Arc::new(
            list.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| k.as_bytes().to_vec())
                .collect(),
        ))
    }

    /// True when authentication is on.
    pub fn enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// The index of the key `token` is, if any. Every key is compared, each in constant time,
    /// so the time taken says nothing about which key matched or how much of one did.
    pub fn holder(&self, token: &str) -> Option<usize> {
        let mut found = None;
        for (index, key) in self.0.iter().enumerate() {
            if bool::from(key.as_slice().ct_eq(token.as_bytes())) {
                found = Some(index);
            }
        }
        found
    }
}

/// The caller, as identified by a valid API key (its index, never the key itself).
#[derive(Debug, Clone, Copy)]
pub struct KeyHolder(pub usize);

async fn check_bearer(req: &Request, bearer: Bearer) -> Option<KeyHolder> {
    req.data::<ApiKeys>()?.holder(&bearer.token).map(KeyHolder)
}

/// A bearer API key.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_bearer")]
pub struct ApiKeyAuth(KeyHolder);

/// The ticket operations' security: a valid key, or nobody (allowed only when no keys are
/// configured; the operations check).
#[derive(SecurityScheme)]
pub enum Caller {
    /// Presented a valid key.
    Key(ApiKeyAuth),
    /// Presented none, or an invalid one.
    #[oai(fallback)]
    Anonymous,
}

impl Caller {
    /// With API keys configured, only a caller with a valid one passes.
    pub(crate) fn authorize(&self, keys: &ApiKeys) -> Result<(), crate::ApiError> {
        if keys.enabled() && matches!(self, Caller::Anonymous) {
            return Err(crate::ApiError::Unauthorized(crate::error::body(
                "unauthorized",
                "a valid API key is required: Authorization: Bearer <key>",
                Some("Authorization".into()),
            )));
        }
        Ok(())
    }

    /// The name recorded for what the caller does (who decided an approval): the key's, when
    /// it presented one (`api-key-1` for the first key of `API_KEYS`, ...); none when anonymous.
    pub fn name(&self) -> Option<String> {
        match self {
            Caller::Key(ApiKeyAuth(KeyHolder(index))) => Some(format!("api-key-{}", index + 1)),
            Caller::Anonymous => None,
        }
    }

    /// The rate-limit identity: the key when there is one, else the client's IP.
    pub fn client(&self, ip: Option<IpAddr>) -> String {
        match self {
            Caller::Key(ApiKeyAuth(KeyHolder(index))) => format!("key:{index}"),
            Caller::Anonymous => ip.map_or_else(|| "ip:unknown".into(), |ip| format!("ip:{ip}")),
        }
    }
}

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
    fn keys_are_matched_exactly() {
        let keys = ApiKeys::parse(" alpha , beta,, ");
        assert!(keys.enabled());
        assert_eq!((keys.holder("alpha"), keys.holder("beta")), (Some(0), Some(1)));
        assert!(keys.holder("alph").is_none() && keys.holder("alphaa").is_none() && keys.holder("").is_none());
        assert!(!ApiKeys::parse("").enabled());
        assert!(!format!("{keys:?}").contains("alpha"));
    }

    #[test]
    fn the_limit_is_per_client() {
        let limit = CreateLimit::per_minute(NonZeroU32::new(2).unwrap());
        assert!(limit.check("a").is_ok() && limit.check("a").is_ok());
        assert!(limit.check("a").unwrap_err() >= 1);
        assert!(limit.check("b").is_ok());
    }
}
