//! `EMAIL_PROVIDER=smtp`: any mail server, through lettre, at `SMTP_URL` with lettre's URL
//! rules — `smtp://host:port` plain, `?tls=required` or `?tls=opportunistic` for STARTTLS,
//! `smtps://` for implicit TLS, credentials in the URL.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{DeliveryError, Handed, MailTransport};
use crate::email::OutgoingEmail;

/// A pooled SMTP client.
#[derive(Clone)]
pub struct SmtpTransport {
    mailer: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpTransport { credentials redacted }")
    }
}

impl SmtpTransport {
    /// A client for the server at `url`, connecting within `timeout` (the relay bounds a whole
    /// attempt). An URL lettre cannot read is an error naming it (without its credentials).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, DeliveryError> {
        crate::telemetry::install_crypto_provider();
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| DeliveryError::Permanent(format!("SMTP_URL is not a usable SMTP URL: {e}")))?
            .timeout(Some(timeout))
            .build();
        Ok(Self { mailer })
    }

    /// The message lettre sends: every value was checked by [`OutgoingEmail::compose`], and
    /// lettre encodes what is not ASCII.
    fn message(email: &OutgoingEmail) -> Result<Message, DeliveryError> {
        let mailbox = |address: &str, name: Option<&String>| -> Result<Mailbox, DeliveryError> {
            let address = address
                .parse()
                .map_err(|e| DeliveryError::Permanent(format!("{address:?} is not an address: {e}")))?;
            Ok(Mailbox::new(name.cloned(), address))
        };
        let mut builder = Message::builder()
            .from(mailbox(&email.from, email.from_name.as_ref())?)
            .to(mailbox(&email.to, None)?)
            .reply_to(mailbox(&email.reply_to, None)?)
            .subject(email.subject.clone())
            .message_id(Some(email.message_id.clone()))
            .date_now();
        if let Some(id) = &email.in_reply_to {
            builder = builder.in_reply_to(id.clone());
        }
        if let Some(references) = email.references_header() {
            builder = builder.references(references);
        }
        if email.auto_submitted {
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-replied".into(),
            ));
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the message: {e}")))
    }
}

#[async_trait]
impl MailTransport for SmtpTransport {
    fn provider(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<Handed, DeliveryError> {
        let message = Self::message(email)?;
        match self.mailer.send(message).await {
            Ok(_) => Ok(Handed::Sent),
            // A 5xx answer rejects this message for good; anything else (no connection, a
            // timeout, 4xx, TLS) may pass later.
            Err(error) if error.is_permanent() => {
                Err(DeliveryError::Permanent(format!("the mail server refused it: {error}")))
            }
            Err(error) => Err(DeliveryError::Transient(format!(
                "the mail server did not take it: {error}"
            ))),
        }
    }
}
