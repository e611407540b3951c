//! The mail relay: delivers queued outbound e-mail through a [`MailTransport`], at least once,
//! never silently dropped. A claimed message hides for `visibility`; a failed attempt comes
//! due again after a backoff that doubles; after `max_attempts` — or at once, when the
//! provider rejects it for good — it is `failed`, with an event on its ticket. A crash after
//! the provider accepted a message and before it was marked sends it again, under the same
//! Message-ID.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::email::transport::{DeliveryError, Handed, MailTransport};
use crate::email::{OutgoingEmail, Sender};
use crate::store::{ConversationMessage, DeliveryOutcome, DeliveryStore, StoreError};

/// Delivers the e-mail outbox.
#[derive(Clone)]
pub struct MailRelay {
    store: Arc<dyn DeliveryStore>,
    transport: Arc<dyn MailTransport>,
    sender: Sender,
    wake: Arc<Notify>,
    /// Attempts before a message fails (`EMAIL_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// The delay after the first failed attempt (`EMAIL_RETRY_SECONDS`); it doubles with each
    /// one after, up to `max_backoff`.
    pub backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
    /// The longest one attempt may take (`EMAIL_SEND_TIMEOUT_SECONDS`): a server that stops
    /// answering mid-conversation fails the attempt instead of holding the relay.
    pub attempt_timeout: Duration,
    /// Messages claimed per round.
    pub batch: u32,
    /// Messages handed to the provider at once.
    pub concurrency: usize,
    /// How long to wait for new mail when none is due (a `wake` cuts it short).
    pub idle: Duration,
    /// How long a claimed message stays hidden. A round takes at most
    /// `attempt_timeout × ⌈batch / concurrency⌉`; [`deliver_once`](Self::deliver_once) claims
    /// for at least that long (and twice it), so no claim lapses while its relay still holds it.
    pub visibility: Duration,
}

impl std::fmt::Debug for MailRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailRelay")
            .field("provider", &self.transport.provider())
            .field("sender", &self.sender)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl MailRelay {
    /// A relay from `store`'s queued mail to `transport`, as `sender`.
    pub fn new(store: Arc<dyn DeliveryStore>, transport: Arc<dyn MailTransport>, sender: Sender) -> Self {
        Self {
            store,
            transport,
            sender,
            wake: Arc::new(Notify::new()),
            max_attempts: 8,
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            attempt_timeout: Duration::from_secs(30),
            batch: 16,
            concurrency: 8,
            idle: Duration::from_millis(500),
            visibility: Duration::from_secs(120),
        }
    }

    /// Wakes the relay now instead of at its next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers one round of due mail; returns how many messages it attempted.
    pub async fn deliver_once(&self) -> Result<usize, StoreError> {
        let visibility = super::claim_visibility(self.batch, self.concurrency, self.attempt_timeout, self.visibility);
        let due = self.store.claim_deliveries(self.batch, visibility).await?;
        let attempted = due.len();
        let results = futures::stream::iter(due)
            .map(|message| async move {
                let outcome = self.attempt(&message).await;
                self.store.record_delivery(&message, outcome).await
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        // A message whose outcome was not recorded comes due again after the visibility
        // timeout (and may go out twice, with the same Message-ID).
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(attempted)
    }

    /// One attempt on `message` (its `attempts` already counts it).
    async fn attempt(&self, message: &ConversationMessage) -> DeliveryOutcome {
        let provider = self.transport.provider();
        let email = match OutgoingEmail::compose(message, &self.sender) {
            Ok(email) => email,
            Err(error) => return self.failed(message, format!("cannot be sent: {} {}", error.field, error.message)),
        };
        let span =
            tracing::info_span!("email.send", ticket_id = %message.ticket_id, message_id = %email.message_id, provider);
        let sent = tokio::time::timeout(
            self.attempt_timeout,
            tracing::Instrument::instrument(self.transport.send(&email), span),
        )
        .await
        .unwrap_or_else(|_| {
            Err(DeliveryError::Transient(format!(
                "{provider} took longer than {} s",
                self.attempt_timeout.as_secs_f64()
            )))
        });
        match sent {
            Ok(Handed::Sent) => {
                metrics::counter!("emails_sent_total", "provider" => provider).increment(1);
                tracing::info!(ticket_id = %message.ticket_id, message_id = %email.message_id, provider, "e-mail sent");
                DeliveryOutcome::Sent {
                    provider: provider.to_owned(),
                }
            }
            Ok(Handed::Logged) => DeliveryOutcome::Recorded,
            Err(DeliveryError::Permanent(error)) => self.failed(message, error),
            Err(DeliveryError::Transient(error)) => {
                let attempts = u32::try_from(message.attempts).unwrap_or(u32::MAX);
                if attempts >= self.max_attempts {
                    return self.failed(message, format!("gave up after {attempts} attempts: {error}"));
                }
                let delay = self.delay_after(attempts);
                tracing::warn!(
                    ticket_id = %message.ticket_id, message_id = %email.message_id, provider, attempts,
                    retry_in_s = delay.as_secs_f64(), %error, "e-mail not delivered; it is retried"
                );
                metrics::counter!("email_retries_total", "provider" => provider).increment(1);
                DeliveryOutcome::Retry {
                    error,
                    retry_at: Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX),
                }
            }
        }
    }

    fn failed(&self, message: &ConversationMessage, error: String) -> DeliveryOutcome {
        metrics::counter!("emails_failed_total", "provider" => self.transport.provider()).increment(1);
        tracing::error!(ticket_id = %message.ticket_id, message_id = %message.message_id, %error, "e-mail failed");
        DeliveryOutcome::Failed { error }
    }

    /// The delay after failed attempt number `attempts`: `backoff`, doubled for each attempt
    /// before, at most `max_backoff`.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(20);
        self.backoff.saturating_mul(1 << doublings).min(self.max_backoff)
    }

    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        super::run_rounds("mail relay", &shutdown, &self.wake, self.idle, || self.deliver_once()).await;
    }
}
