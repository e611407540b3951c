//! The e-mail outbox: outbound messages waiting for delivery, claimed by a mail relay, and
//! what became of each attempt.
//!
//! A `queued` message in a ticket's conversation is its own outbox row: it is written with
//! the reply (or the staff message, or the reset link), so nothing between the workflow and
//! the mail server can lose it. A claim hides it for a while (a relay that dies lets it come
//! due again); a failed attempt delays it; the last one fails it visibly.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{ConversationMessage, StoreError};

/// What an attempt to deliver a message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The provider accepted it: `sent`, with an `email_sent` event.
    Sent {
        /// The provider (`smtp`, `sendgrid`, `mailgun`).
        provider: String,
    },
    /// Nothing delivers mail here (`EMAIL_PROVIDER=log`): kept as `recorded`.
    Recorded,
    /// It failed and is tried again at `retry_at`.
    Retry {
        /// Why.
        error: String,
        /// When it is due again.
        retry_at: DateTime<Utc>,
    },
    /// It failed for good: `failed`, with an `email_failed` event.
    Failed {
        /// Why.
        error: String,
    },
}

/// The metadata key of an outbound message's kind of automatic mail: workflow replies and
/// reset links carry `"auto_submitted": true` (they go out with `Auto-Submitted:
/// auto-replied` and count against the per-address limit); a person's reply does not.
pub const AUTO_SUBMITTED: &str = "auto_submitted";

/// What a password reset e-mail's text becomes once its delivery is over (sent, failed or
/// recorded): the link is a secret, kept only as long as it may still go out.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) const DELIVERED_SECRET: &str = "(a password reset link, removed once its delivery ended)";

/// Delivering outbound e-mail.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Claims up to `limit` due `queued` messages of the e-mail channel, oldest first, counting
    /// an attempt on each and hiding it for `visibility` (longer than its relay's round).
    async fn claim_deliveries(&self, limit: u32, visibility: Duration) -> Result<Vec<ConversationMessage>, StoreError>;

    /// Records what the attempt on `message` (as claimed) came to. A message claimed again
    /// since (its claim lapsed: another relay holds the newer attempt) or no longer `queued` is
    /// left as it is. A password reset's text is removed once its delivery is over.
    async fn record_delivery(&self, message: &ConversationMessage, outcome: DeliveryOutcome) -> Result<(), StoreError>;

    /// How many automatic outbound messages to `address` (compared case-insensitively) were
    /// written since `since` and are queued or sent.
    async fn automatic_replies_to(&self, address: &str, since: DateTime<Utc>) -> Result<u32, StoreError>;
}

/// The event an outcome writes, if any.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn delivery_event(message: &ConversationMessage, outcome: &DeliveryOutcome) -> Option<super::NewEvent> {
    match outcome {
        DeliveryOutcome::Sent { provider } => Some(super::NewEvent::of(&super::EmailSent {
            message_id: message.message_id.clone(),
            to: message.to_address.clone(),
            provider: provider.clone(),
            attempts: message.attempts,
        })),
        DeliveryOutcome::Failed { error } => Some(super::NewEvent::of(&super::EmailFailed {
            message_id: message.message_id.clone(),
            to: message.to_address.clone(),
            error: error.clone(),
            attempts: message.attempts,
        })),
        DeliveryOutcome::Recorded | DeliveryOutcome::Retry { .. } => None,
    }
}

/// The status an outcome leaves the message in, and the error it keeps.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn delivery_status(outcome: &DeliveryOutcome) -> (super::MessageStatus, Option<&str>) {
    use super::MessageStatus;
    match outcome {
        DeliveryOutcome::Sent { .. } => (MessageStatus::Sent, None),
        DeliveryOutcome::Recorded => (MessageStatus::Recorded, None),
        DeliveryOutcome::Retry { error, .. } => (MessageStatus::Queued, Some(error)),
        DeliveryOutcome::Failed { error } => (MessageStatus::Failed, Some(error)),
    }
}
