//! The outbound webhooks' outbox: one delivery per (event, endpoint), written with the event
//! by the database itself (migrations: a trigger on `ticket_events`), claimed and recorded
//! by the webhook relay, listed and retried by people.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::StoreError;

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    /// Not yet accepted: due at `available_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up on after the retry window (`WEBHOOK_RETRY_HOURS`); a person can retry it.
    Failed,
}

impl WebhookStatus {
    /// Every status.
    pub const ALL: [WebhookStatus; 3] = [WebhookStatus::Pending, WebhookStatus::Delivered, WebhookStatus::Failed];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Pending => "pending",
            WebhookStatus::Delivered => "delivered",
            WebhookStatus::Failed => "failed",
        }
    }
}

stored_as_text!(WebhookStatus, UnknownWebhookStatus, "webhook delivery status");

/// The webhook event types.
pub const WEBHOOK_EVENT_TYPES: [&str; 5] = [
    "ticket.completed",
    "ticket.failed",
    "ticket.escalated",
    "ticket.awaiting_approval",
    "approval.decided",
];

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// Its id.
    pub id: i64,
    /// The ticket event it announces.
    pub event_id: Uuid,
    /// The receiver's URL.
    pub endpoint: String,
    /// `ticket.completed`, `ticket.failed`, `ticket.escalated`, `ticket.awaiting_approval`,
    /// `approval.decided`.
    pub event_type: String,
    /// The ticket.
    pub ticket_id: Uuid,
    /// What is posted: `{type, timestamp, data}`, made with the event.
    pub body: serde_json::Value,
    /// Where it is.
    pub status: WebhookStatus,
    /// Attempts so far (a claim counts one).
    pub attempts: i32,
    /// When it is next due (while pending).
    pub available_at: DateTime<Utc>,
    /// Retries stop once this is the retry window old.
    pub retry_from: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The HTTP status of the last answer, if there was one.
    pub last_status: Option<i32>,
    /// When it was queued (with its event).
    pub created_at: DateTime<Utc>,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl WebhookDelivery {
    /// The `webhook-id` header: the same for every attempt of this event to this endpoint
    /// (receivers deduplicate on it), different for another endpoint.
    pub fn webhook_id(&self) -> String {
        let mut digest = Sha256::new();
        digest.update(self.event_id.as_bytes());
        digest.update(self.endpoint.as_bytes());
        format!("msg_{}", hex::encode(&digest.finalize()[..16]))
    }
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookOutcome {
    /// Accepted (2xx).
    Delivered {
        /// The status answered.
        status: u16,
    },
    /// Not accepted; due again at `retry_at`.
    Retry {
        /// Why.
        error: String,
        /// The status answered, if any.
        status: Option<u16>,
        /// When to try again.
        retry_at: DateTime<Utc>,
    },
    /// Not accepted, and the retry window is over.
    Failed {
        /// Why.
        error: String,
        /// The status answered, if any.
        status: Option<u16>,
    },
}

impl WebhookOutcome {
    /// The status it leaves the delivery in.
    pub fn status(&self) -> WebhookStatus {
        match self {
            WebhookOutcome::Delivered { .. } => WebhookStatus::Delivered,
            WebhookOutcome::Retry { .. } => WebhookStatus::Pending,
            WebhookOutcome::Failed { .. } => WebhookStatus::Failed,
        }
    }

    /// The error and HTTP status to record.
    pub fn error_and_status(&self) -> (Option<&str>, Option<i32>) {
        match self {
            WebhookOutcome::Delivered { status } => (None, Some(i32::from(*status))),
            WebhookOutcome::Retry { error, status, .. } | WebhookOutcome::Failed { error, status } => {
                (Some(error.as_str()), status.map(i32::from))
            }
        }
    }
}

/// An attempt made on a claimed delivery, and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAttempt {
    /// The delivery as claimed (its `attempts` fences the record).
    pub delivery: WebhookDelivery,
    /// What became of it.
    pub outcome: WebhookOutcome,
}

/// A page of deliveries, newest first.
#[derive(Debug, Clone, Default)]
pub struct WebhookQuery {
    /// Only in this status.
    pub status: Option<WebhookStatus>,
    /// Only of this event type.
    pub event_type: Option<String>,
    /// Only this ticket's.
    pub ticket_id: Option<Uuid>,
    /// 1-based.
    pub page: u32,
    /// The page size.
    pub page_size: u32,
}

/// A page of deliveries.
#[derive(Debug, Clone)]
pub struct WebhookPage {
    /// Newest first.
    pub deliveries: Vec<WebhookDelivery>,
    /// How many match.
    pub total: i64,
    /// The page.
    pub page: u32,
    /// The page size.
    pub page_size: u32,
}

/// The webhook outbox.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Makes `urls` the endpoints that get new events; others stop getting them (their
    /// deliveries stay, and pending ones are still delivered).
    async fn register_webhook_endpoints(&self, urls: &[String]) -> Result<(), StoreError>;

    /// Claims up to `limit` due deliveries to endpoints other than `resting`, counting an
    /// attempt on each and hiding them for `visibility`; several relays share the outbox
    /// without sending one delivery twice at once. A resting endpoint's deliveries stay as
    /// they are: not attempted, not counted.
    async fn claim_webhooks(
        &self,
        limit: u32,
        visibility: Duration,
        resting: &[String],
    ) -> Result<Vec<WebhookDelivery>, StoreError>;

    /// Records the outcomes of `attempts`, in one statement (a dead receiver fails a batch at
    /// once, and its outcomes must not cost a write each), skipping any delivery another claim
    /// has attempted since (fenced by `attempts`).
    async fn record_webhooks(&self, attempts: &[WebhookAttempt]) -> Result<(), StoreError>;

    /// A page of deliveries, newest first.
    async fn webhook_deliveries(&self, query: &WebhookQuery) -> Result<WebhookPage, StoreError>;

    /// Makes a pending or failed delivery due now, with a new retry window; `None` for an
    /// unknown one, `Conflict` for a delivered one.
    async fn retry_webhook(&self, id: i64) -> Result<Option<WebhookDelivery>, StoreError>;
}

/// The error of a retry of a delivered delivery.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn already_delivered(delivery: &WebhookDelivery) -> StoreError {
    StoreError::Conflict {
        id: delivery.ticket_id,
        message: format!("webhook delivery {} was already delivered", delivery.id),
    }
}
