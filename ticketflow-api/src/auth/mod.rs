//! Who is calling and what they may do. A caller presents a bearer key (one of `API_KEYS`, or
//! a named key) or a session cookie; each operation asks for the [`Role`] it needs with
//! [`Caller::require`], whose refusal is the response (401 without valid credentials, 403
//! for a role that may not, or a cookie-authenticated change without its CSRF token).
//!
//! With no people, no named keys and no `API_KEYS` the API is open, as it was before accounts
//! existed; once anyone is added it closes (within a second for a person added by another
//! process) and stays closed.

mod login_limit;
mod password;
mod secrets;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Bearer};
use sha2::Digest;
use subtle::ConstantTimeEq;
use ticketflow_core::store::{Role, Store, StoreError, User};

pub use login_limit::LoginLimit;
pub use password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, PasswordError, Passwords};
pub use secrets::{KEY_PREFIX, NoRandomness, api_key, digest, key_id, token};

use crate::ApiError;
use crate::error::body;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ticketflow_session";

/// The header that carries a session's CSRF token.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// The keys of `API_KEYS`, each an admin key (empty: none), kept as their digests.
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
                .map(|k| sha2::Sha256::digest(k.as_bytes()).to_vec())
                .collect(),
        ))
    }

    /// True when there is at least one.
    pub fn enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// The index of the key `token` is, if any. Every key's digest is compared with the
    /// token's, each in constant time, so the time taken says nothing about which key matched,
    /// how much of one did, or how long the keys are.
    pub fn holder(&self, token: &str) -> Option<usize> {
        let presented = sha2::Sha256::digest(token.as_bytes());
        let mut found = None;
        for (index, key) in self.0.iter().enumerate() {
            if bool::from(key.as_slice().ct_eq(&presented[..])) {
                found = Some(index);
            }
        }
        found
    }
}

/// How sessions behave (`SESSION_IDLE_MINUTES`, `SESSION_MAX_HOURS`, `TRUST_PROXY`).
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after sign-in, whatever happens.
    pub max_age: Duration,
    /// Believe `X-Forwarded-Proto` (cookies are `Secure` when it says `https`).
    pub trust_proxy: bool,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(3600),
            max_age: Duration::from_secs(12 * 3600),
            trust_proxy: false,
        }
    }
}

/// What the access checks need, shared by every request (request data).
#[derive(Clone)]
pub struct Access {
    /// People, keys and sessions.
    pub store: Arc<dyn Store>,
    /// `API_KEYS`.
    pub static_keys: ApiKeys,
    /// Sessions' lifetimes and cookies.
    pub sessions: SessionPolicy,
    /// Hashes and checks passwords.
    pub passwords: Passwords,
    /// Sign-in attempts allowed (`LOGIN_ATTEMPTS_PER_MINUTE`).
    pub login_limit: LoginLimit,
    /// Password checks running at once: each takes 19 MiB and a core for tens of
    /// milliseconds, so a flood of sign-ins waits here instead of exhausting memory.
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// Whether anyone was ever added, as last read (see [`Access::is_open`]).
    open: Arc<OpenMode>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("static_keys", &self.static_keys)
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}

/// The open-mode cache. `closed` is set once people exist and never cleared; `confirmed` is
/// when the store last said nobody exists, trusted for [`OPEN_RECHECK`] — so an open API costs
/// a query a second, not one per request.
#[derive(Debug, Default)]
struct OpenMode {
    closed: AtomicBool,
    confirmed: std::sync::Mutex<Option<Instant>>,
}

const OPEN_RECHECK: Duration = Duration::from_secs(1);

impl Access {
    /// Access over `store`'s people and keys, and `static_keys`.
    pub fn new(store: Arc<dyn Store>, static_keys: ApiKeys, sessions: SessionPolicy, login_limit: LoginLimit) -> Self {
        let passwords = Passwords::default();
        passwords.warm();
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self {
            store,
            static_keys,
            sessions,
            passwords,
            login_limit,
            hashing: Arc::new(tokio::sync::Semaphore::new(cores)),
            open: Arc::new(OpenMode::default()),
        }
    }

    /// True while the API is open: no `API_KEYS`, and nobody was ever added.
    pub async fn is_open(&self) -> Result<bool, StoreError> {
        if self.static_keys.enabled() || self.open.closed.load(Ordering::Acquire) {
            return Ok(false);
        }
        let fresh = self
            .open
            .confirmed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < OPEN_RECHECK);
        if fresh {
            return Ok(true);
        }
        // Open only on the store's word: an error is an error, never an open door.
        if self.store.has_people().await? {
            self.close();
            return Ok(false);
        }
        *self
            .open
            .confirmed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        Ok(!self.open.closed.load(Ordering::Acquire))
    }

    /// Closes the API at once (someone was just added by this process).
    pub fn close(&self) {
        self.open.closed.store(true, Ordering::Release);
    }

    async fn identify_key(&self, presented: &str) -> Checked {
        if let Some(index) = self.static_keys.holder(presented) {
            return Checked::Valid(Identity::StaticKey(index));
        }
        let Some(id) = key_id(presented) else {
            return Checked::Invalid;
        };
        match self.store.api_key_by_prefix(id).await {
            Ok(Some((key, hash))) => {
                let matches = bool::from(digest(presented).as_bytes().ct_eq(hash.as_bytes()));
                if matches && key.is_live(chrono::Utc::now()) {
                    Checked::Valid(Identity::Key {
                        name: key.name,
                        role: key.role,
                    })
                } else {
                    Checked::Invalid
                }
            }
            Ok(None) => Checked::Invalid,
            Err(error) => Checked::Outage(error),
        }
    }

    async fn identify_session(&self, req: &Request, cookie: &str) -> Checked {
        let id_hash = digest(cookie);
        match self.store.session(&id_hash, self.sessions.idle).await {
            Ok(Some(session)) => {
                let presented = req
                    .headers()
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let csrf_ok =
                    req.method().is_safe() || bool::from(presented.as_bytes().ct_eq(session.csrf_token.as_bytes()));
                Checked::Valid(Identity::Person {
                    user: session.user,
                    csrf_token: session.csrf_token,
                    csrf_ok,
                    session: id_hash,
                })
            }
            Ok(None) => Checked::Invalid,
            Err(error) => Checked::Outage(error),
        }
    }
}

/// Who a caller was found to be.
#[derive(Clone)]
pub enum Identity {
    /// A signed-in person (by the session cookie).
    Person {
        /// Who.
        user: User,
        /// The session's CSRF token.
        csrf_token: String,
        /// False for a state-changing request without the session's CSRF token.
        csrf_ok: bool,
        /// The digest of the session id.
        session: String,
    },
    /// A named API key.
    Key {
        /// Its name.
        name: String,
        /// What it may do.
        role: Role,
    },
    /// Key number `.0` (from 0) of `API_KEYS`: an admin key.
    StaticKey(usize),
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The CSRF token and the session's digest stay out of any log line.
        write!(f, "Identity({} as {})", self.actor(), self.role())
    }
}

impl Identity {
    /// What it may do.
    pub fn role(&self) -> Role {
        match self {
            Identity::Person { user, .. } => user.role,
            Identity::Key { role, .. } => *role,
            Identity::StaticKey(_) => Role::Admin,
        }
    }

    /// The name recorded for what it does: a person's e-mail, `key:<name>`, `api-key-<n>`.
    pub fn actor(&self) -> String {
        match self {
            Identity::Person { user, .. } => user.email.clone(),
            Identity::Key { name, .. } => format!("key:{name}"),
            Identity::StaticKey(index) => format!("api-key-{}", index + 1),
        }
    }
}

/// The outcome of checking presented credentials.
#[derive(Debug)]
pub enum Checked {
    /// They are good.
    Valid(Identity),
    /// They are not (unknown, revoked, expired, tampered with).
    Invalid,
    /// They could not be checked: the store is down.
    Outage(StoreError),
}

async fn check_bearer(req: &Request, bearer: Bearer) -> Option<Checked> {
    let access = req.data::<Access>()?;
    match access.identify_key(&bearer.token).await {
        Checked::Invalid => None,
        checked => Some(checked),
    }
}

async fn check_session(req: &Request, cookie: ApiKey) -> Option<Checked> {
    let access = req.data::<Access>()?;
    match access.identify_session(req, &cookie.key).await {
        Checked::Invalid => None,
        checked => Some(checked),
    }
}

/// A bearer API key: one of `API_KEYS`, or a named key (`ticketflow-api keys create`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_bearer")]
pub struct BearerKey(Checked);

/// The session cookie set by `POST /auth/login`. Changes made with it carry the session's
/// CSRF token in `X-CSRF-Token`.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "ticketflow_session",
    key_in = "cookie",
    checker = "check_session"
)]
pub struct SessionCookie(Checked);

/// Every operation's security: a bearer key, a session cookie, or nobody (allowed only while
/// the API is open).
#[derive(SecurityScheme)]
pub enum Caller {
    /// Presented a valid bearer key.
    Bearer(BearerKey),
    /// Presented a live session cookie.
    Session(SessionCookie),
    /// Presented nothing valid.
    #[oai(fallback)]
    Anonymous,
}

/// Who acted, once allowed: the name recorded in events and the audit trail (none for an
/// anonymous caller of an open API).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor(pub Option<String>);

impl Caller {
    fn checked(&self) -> Option<&Checked> {
        match self {
            Caller::Bearer(BearerKey(checked)) | Caller::Session(SessionCookie(checked)) => Some(checked),
            Caller::Anonymous => None,
        }
    }

    /// Who the caller is, when they presented valid credentials.
    pub fn identity(&self) -> Option<&Identity> {
        match self.checked()? {
            Checked::Valid(identity) => Some(identity),
            _ => None,
        }
    }

    /// Lets the caller through when they may act as `needed`: 401 without valid credentials
    /// (unless the API is open), 403 for a weaker role or a cookie-authenticated change
    /// without its CSRF token, 503 when the credentials could not be checked.
    pub async fn require(&self, access: &Access, needed: Role) -> Result<Actor, ApiError> {
        match self.checked() {
            Some(Checked::Valid(identity)) => {
                if let Identity::Person { csrf_ok: false, .. } = identity {
                    return Err(ApiError::Forbidden(body(
                        "csrf_token_missing",
                        format!("a change made with the session cookie needs its CSRF token in `{CSRF_HEADER}`"),
                        Some(CSRF_HEADER.into()),
                    )));
                }
                let role = identity.role();
                if !role.includes(needed) {
                    return Err(ApiError::Forbidden(body(
                        "forbidden",
                        format!("this needs the `{needed}` role; the caller has `{role}`"),
                        None,
                    )));
                }
                Ok(Actor(Some(identity.actor())))
            }
            Some(Checked::Outage(error)) => {
                tracing::warn!(%error, "credentials could not be checked");
                Err(ApiError::Unavailable(body(
                    "database_unavailable",
                    "the credentials could not be checked; retry later",
                    None,
                )))
            }
            Some(Checked::Invalid) | None => {
                if access.is_open().await? {
                    return Ok(Actor(None));
                }
                Err(unauthorized())
            }
        }
    }

    /// Like [`Caller::require`], but an anonymous caller is refused even while the API is open:
    /// managing people and keys needs someone to be (the first admin comes from the CLI).
    pub async fn require_named(&self, access: &Access, needed: Role) -> Result<Actor, ApiError> {
        if self.identity().is_none() && !matches!(self.checked(), Some(Checked::Outage(_))) {
            return Err(unauthorized());
        }
        self.require(access, needed).await
    }
}

impl Actor {
    /// The rate-limit identity: the actor when there is one, else the client's IP.
    pub fn client(&self, ip: Option<std::net::IpAddr>) -> String {
        match &self.0 {
            Some(name) => format!("actor:{name}"),
            None => ip.map_or_else(|| "ip:unknown".into(), |ip| format!("ip:{ip}")),
        }
    }
}

/// The `csrf_token` field of a form-encoded body, as a header value — when the request carries
/// no `X-CSRF-Token` header of its own.
pub(crate) fn form_csrf_token(req: &Request, body: &[u8]) -> Option<poem::http::HeaderValue> {
    let form = req
        .headers()
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().starts_with("application/x-www-form-urlencoded"));
    if !form || req.headers().contains_key(CSRF_HEADER) {
        return None;
    }
    // A token is base64url: it needs no decoding, and anything that would is not a token.
    let body = std::str::from_utf8(body).ok()?;
    let token = body
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "csrf_token")?
        .1;
    poem::http::HeaderValue::from_str(token).ok()
}

/// The 401 of a caller without valid credentials.
pub(crate) fn unauthorized() -> ApiError {
    ApiError::Unauthorized(body(
        "unauthorized",
        "valid credentials are required: Authorization: Bearer <key>, or the session cookie of POST /auth/login",
        Some("Authorization".into()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_keys_are_matched_exactly() {
        let keys = ApiKeys::parse(" alpha , beta,, ");
        assert!(keys.enabled());
        assert_eq!((keys.holder("alpha"), keys.holder("beta")), (Some(0), Some(1)));
        assert!(keys.holder("alph").is_none() && keys.holder("alphaa").is_none() && keys.holder("").is_none());
        assert!(!ApiKeys::parse("").enabled());
        assert!(!format!("{keys:?}").contains("alpha"));
    }

    #[test]
    fn roles_include_the_weaker_ones() {
        assert!(Role::Admin.includes(Role::Agent) && Role::Agent.includes(Role::Viewer));
        assert!(!Role::Viewer.includes(Role::Agent) && !Role::Agent.includes(Role::Admin));
    }
}
