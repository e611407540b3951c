//! `EMAIL_PROVIDER=log`, the default: mail is written to the log and kept as `recorded`,
//! never delivered.

use async_trait::async_trait;

use super::{DeliveryError, Handed, MailTransport};
use crate::email::OutgoingEmail;

/// Logs instead of sending.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogTransport;

#[async_trait]
impl MailTransport for LogTransport {
    fn provider(&self) -> &'static str {
        "log"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<Handed, DeliveryError> {
        tracing::info!(
            to = %email.to,
            message_id = %email.message_id,
            subject = %email.subject,
            "e-mail recorded, not delivered (EMAIL_PROVIDER=log)"
        );
        Ok(Handed::Logged)
    }
}
