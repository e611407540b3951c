//! Signing in and out (DESIGN.md's sign-in contract): `POST /auth/login` checks an e-mail and
//! password and begins a server-side session — its id, 256 random bits, goes to the browser in
//! one HttpOnly, SameSite=Lax cookie and is stored only as a digest; `GET /auth/me` says who
//! the caller is; `POST /auth/logout` ends the session.

use std::time::Duration;

use poem::Request;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiRequest, ApiResponse, Enum, Object, OpenApi};
use ticketflow_core::store::{NewSession, Role};

use crate::auth::{Access, Caller, Identity, MAX_PASSWORD_BYTES, SESSION_COOKIE, digest, token};
use crate::error::{ApiError, body};
use crate::model::{RoleName, Text, UserView};

/// The sign-in operations.
pub struct SignInApi {
    pub(crate) access: Access,
}

/// An e-mail address and password.
#[derive(Clone, Object, serde::Deserialize)]
pub struct Credentials {
    /// The account's e-mail address.
    #[oai(validator(max_length = 254))]
    pub email: Text,
    /// Its password (at most 256 characters).
    #[oai(validator(max_length = 256))]
    pub password: Text,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email.0)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A sign-in, as JSON or as a form post (the dashboard's).
#[derive(Debug, ApiRequest)]
enum SignInRequest {
    /// From a script.
    Json(Json<Credentials>),
    /// From the dashboard's sign-in form.
    Form(Form<Credentials>),
}

/// Who signed in, and the token their changes carry.
#[derive(Debug, Clone, Object)]
pub struct SignedInView {
    /// Who.
    pub user: UserView,
    /// Send it in `X-CSRF-Token` (or a `csrf_token` form field) with every change made with
    /// the session cookie.
    pub csrf_token: String,
}

#[derive(Debug, ApiResponse)]
enum SignedIn {
    /// Signed in; the session cookie is set.
    #[oai(status = 200)]
    Json(Json<SignedInView>, #[oai(header = "Set-Cookie")] String),
    /// Signed in from the dashboard's form: on to the overview, the session cookie set.
    #[oai(status = 303)]
    Redirect(#[oai(header = "Location")] String, #[oai(header = "Set-Cookie")] String),
}

#[derive(Debug, ApiResponse)]
enum SignedOut {
    /// The session (if any) is over and its cookie cleared.
    #[oai(status = 204)]
    Done(#[oai(header = "Set-Cookie")] String),
}

/// How the caller is let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum AccessMode {
    /// Nobody was ever added: every route is open to anyone.
    Open,
    /// Authenticated, by a session or a key.
    SignedIn,
}

/// A key the caller authenticated with.
#[derive(Debug, Clone, Object)]
pub struct KeyIdentityView {
    /// Its name (`api-key-<n>` for one of `API_KEYS`).
    pub name: String,
    /// What it may do.
    pub role: RoleName,
}

/// Who the caller is.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MeView {
    /// Open, or signed in.
    pub mode: AccessMode,
    /// The signed-in person (by the session cookie).
    pub user: Option<UserView>,
    /// The key, when the caller presented one.
    pub key: Option<KeyIdentityView>,
    /// The session's CSRF token.
    pub csrf_token: Option<String>,
}

/// The `Set-Cookie` of a session.
fn session_cookie(value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The session cookie a request carries, if any.
fn presented_session(req: &Request) -> Option<String> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

impl SignInApi {
    /// True when the browser reached us over TLS (directly, or through a trusted proxy that
    /// says so).
    fn over_tls(&self, req: &Request) -> bool {
        *req.scheme() == poem::http::uri::Scheme::HTTPS
            || (self.access.sessions.trust_proxy
                && req
                    .headers()
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|proto| proto.eq_ignore_ascii_case("https")))
    }
}

fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized(body(
        "invalid_credentials",
        "the e-mail address or the password is wrong",
        None,
    ))
}

#[OpenApi]
impl SignInApi {
    /// Sign in with an e-mail address and password.
    ///
    /// Begins a session: one cookie (HttpOnly, SameSite=Lax, Secure over TLS), a new id at
    /// every sign-in. The answer does not say whether the address has an account. Attempts are
    /// limited per client address and per e-mail address (429). Needs no credentials.
    #[oai(path = "/auth/login", method = "post", operation_id = "sign_in")]
    async fn sign_in(
        &self,
        credentials: SignInRequest,
        req: &Request,
        remote: &poem::web::RemoteAddr,
    ) -> Result<SignedIn, ApiError> {
        let (credentials, from_form) = match credentials {
            SignInRequest::Json(Json(credentials)) => (credentials, false),
            SignInRequest::Form(Form(credentials)) => (credentials, true),
        };
        // A form is not checked by the document's validators: the limits again, by hand.
        if credentials.email.0.chars().count() > 254 {
            return Err(ApiError::Unprocessable(body(
                "validation_error",
                "`email` may have at most 254 characters",
                Some("email".into()),
            )));
        }
        if credentials.password.0.len() > MAX_PASSWORD_BYTES {
            return Err(ApiError::Unprocessable(body(
                "validation_error",
                format!("`password` may have at most {MAX_PASSWORD_BYTES} bytes"),
                Some("password".into()),
            )));
        }
        let address = remote.as_socket_addr().map(|a| a.ip());
        if let Err(wait) = self.access.login_limit.check(address, &credentials.email.0) {
            metrics::counter!("sign_ins_limited_total").increment(1);
            return Err(ApiError::TooManyRequests(
                body(
                    "rate_limited",
                    format!("too many sign-in attempts; retry in {wait} s"),
                    None,
                ),
                wait,
            ));
        }
        let found = self
            .access
            .store
            .user_by_email(&credentials.email.0)
            .await?
            .filter(|(user, _)| user.disabled_at.is_none());
        let (user, hash) = found.map_or((None, None), |(user, hash)| (Some(user), Some(hash)));
        // Hashing is seconds of CPU on a slow machine: off the request threads, and only as
        // many at once as there are cores.
        let Ok(_permit) = self.access.hashing.acquire().await else {
            return Err(invalid_credentials());
        };
        let passwords = self.access.passwords.clone();
        let password = credentials.password.0;
        let matched = tokio::task::spawn_blocking(move || passwords.verify(&password, hash.as_deref()))
            .await
            .unwrap_or(false);
        let Some(user) = user.filter(|_| matched) else {
            metrics::counter!("sign_ins_failed_total").increment(1);
            tracing::info!("sign-in refused");
            return Err(invalid_credentials());
        };
        // Nothing of a session from before survives a sign-in.
        if let Some(old) = presented_session(req) {
            self.access.store.end_session(&digest(&old)).await?;
        }
        let (Ok(id), Ok(csrf_token)) = (token(), token()) else {
            return Err(ApiError::Unavailable(body(
                "no_randomness",
                "no random bytes to make a session with; retry later",
                None,
            )));
        };
        let max_age = self.access.sessions.max_age;
        self.access
            .store
            .start_session(NewSession {
                id_hash: digest(&id),
                user_id: user.id,
                csrf_token: csrf_token.clone(),
                expires_at: chrono::Utc::now()
                    + chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::days(365)),
            })
            .await?;
        metrics::counter!("sign_ins_total").increment(1);
        tracing::info!(user = %user.email, role = %user.role, "signed in");
        let cookie = session_cookie(&id, max_age, self.over_tls(req));
        if from_form {
            return Ok(SignedIn::Redirect("/".into(), cookie));
        }
        Ok(SignedIn::Json(
            Json(SignedInView {
                user: user.into(),
                csrf_token,
            }),
            cookie,
        ))
    }

    /// Sign out: the session ends and its cookie is cleared.
    ///
    /// Made with the session cookie, it carries the session's CSRF token (`X-CSRF-Token`).
    #[oai(path = "/auth/logout", method = "post", operation_id = "sign_out")]
    async fn sign_out(&self, caller: Caller, req: &Request) -> Result<SignedOut, ApiError> {
        if let Some(Identity::Person { session, .. }) = caller.identity() {
            caller.require(&self.access, Role::Viewer).await?;
            self.access.store.end_session(session).await?;
        } else if let Some(cookie) = presented_session(req) {
            // Signed out with a key beside the cookie: the cookie's session ends too.
            self.access.store.end_session(&digest(&cookie)).await?;
        }
        Ok(SignedOut::Done(session_cookie("", Duration::ZERO, self.over_tls(req))))
    }

    /// Who the caller is.
    ///
    /// `open` (anyone may do anything), or the signed-in person (with the session's CSRF
    /// token) or key.
    ///
    /// Role: viewer.
    #[oai(path = "/auth/me", method = "get", operation_id = "who_am_i")]
    async fn who_am_i(&self, caller: Caller) -> Result<Json<MeView>, ApiError> {
        caller.require(&self.access, Role::Viewer).await?;
        let me = match caller.identity() {
            None => MeView {
                mode: AccessMode::Open,
                user: None,
                key: None,
                csrf_token: None,
            },
            Some(Identity::Person { user, csrf_token, .. }) => MeView {
                mode: AccessMode::SignedIn,
                user: Some(user.clone().into()),
                key: None,
                csrf_token: Some(csrf_token.clone()),
            },
            Some(identity) => MeView {
                mode: AccessMode::SignedIn,
                user: None,
                key: Some(KeyIdentityView {
                    name: identity.actor().trim_start_matches("key:").to_owned(),
                    role: identity.role().into(),
                }),
                csrf_token: None,
            },
        };
        Ok(Json(me))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_lax_and_secure_over_tls() {
        let plain = session_cookie("abc", Duration::from_secs(60), false);
        assert_eq!(
            plain,
            "ticketflow_session=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"
        );
        assert!(session_cookie("abc", Duration::from_secs(60), true).ends_with("; Secure"));
    }
}
