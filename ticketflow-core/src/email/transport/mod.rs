//! The ways mail leaves: one [`MailTransport`] per provider, each in its own file, chosen by
//! `EMAIL_PROVIDER`.

mod log;
#[cfg(feature = "http")]
mod mailgun;
#[cfg(feature = "http")]
mod sendgrid;
#[cfg(feature = "smtp")]
mod smtp;

use async_trait::async_trait;

pub use log::LogTransport;
#[cfg(feature = "http")]
pub use mailgun::{MAILGUN_BASE_URL, MailgunTransport};
#[cfg(feature = "http")]
pub use sendgrid::{SENDGRID_BASE_URL, SendgridTransport};
#[cfg(feature = "smtp")]
pub use smtp::SmtpTransport;

use super::OutgoingEmail;

/// Which provider delivers mail (`EMAIL_PROVIDER`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmailProvider {
    /// Nothing is delivered: replies are logged and kept as `recorded` (the default).
    #[default]
    Log,
    /// A mail server (`SMTP_URL`).
    Smtp,
    /// SendGrid's v3 mail send (`SENDGRID_API_KEY`).
    Sendgrid,
    /// Mailgun's messages API (`MAILGUN_API_KEY`, `MAILGUN_DOMAIN`).
    Mailgun,
}

/// What a transport did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handed {
    /// The provider accepted it.
    Sent,
    /// Nothing was delivered: the message was only written to the log.
    Logged,
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again later: the server is down, slow, busy, or refused for now.
    #[error("{0}")]
    Transient(String),
    /// Trying again will not help: the address or the message was rejected for good.
    #[error("{0}")]
    Permanent(String),
}

/// Hands e-mail to a provider.
#[async_trait]
pub trait MailTransport: Send + Sync {
    /// The provider's name, as stored on sent messages (`smtp`, `sendgrid`, `mailgun`, `log`).
    fn provider(&self) -> &'static str;

    /// Hands `email` over. Every attempt for one message carries the same Message-ID.
    async fn send(&self, email: &OutgoingEmail) -> Result<Handed, DeliveryError>;
}

/// How an HTTP provider's status answers: 2xx accepted; 408, 429 and 5xx worth retrying;
/// 401 and 403 too (a key being rotated must not fail the mail waiting); other 4xx reject
/// the message for good.
#[cfg(feature = "http")]
fn http_outcome(provider: &str, status: reqwest::StatusCode, body: &str) -> Result<Handed, DeliveryError> {
    if status.is_success() {
        return Ok(Handed::Sent);
    }
    let detail: String = body.chars().take(300).collect();
    let message = format!("{provider} answered {status}: {detail}");
    let code = status.as_u16();
    if status.is_server_error() || matches!(code, 401 | 403 | 408 | 429) {
        Err(DeliveryError::Transient(message))
    } else {
        Err(DeliveryError::Permanent(message))
    }
}

/// An HTTP client for a provider's API, each request within `timeout`.
#[cfg(feature = "http")]
fn http_client(timeout: std::time::Duration) -> Result<reqwest::Client, DeliveryError> {
    crate::telemetry::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("ticketflow/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DeliveryError::Permanent(format!("cannot build the HTTP client: {e}")))
}

/// A request that got no answer: worth retrying.
#[cfg(feature = "http")]
fn unanswered(provider: &str, error: &reqwest::Error) -> DeliveryError {
    DeliveryError::Transient(format!("{provider} did not answer: {error}"))
}
