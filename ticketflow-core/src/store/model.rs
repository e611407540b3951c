//! The records the stores read and write.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Waiting for a worker.
    Pending,
    /// A worker holds it.
    Processing,
    /// Done; `result` holds the answer.
    Completed,
    /// Given up on; `result` holds the error. `retry` re-queues it.
    FailedPermanent,
    /// Paused for a human decision.
    AwaitingApproval,
}

impl TicketStatus {
    /// Every status.
    pub const ALL: [TicketStatus; 5] = [
        TicketStatus::Pending,
        TicketStatus::Processing,
        TicketStatus::Completed,
        TicketStatus::FailedPermanent,
        TicketStatus::AwaitingApproval,
    ];

    /// The name stored in the database and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Pending => "pending",
            TicketStatus::Processing => "processing",
            TicketStatus::Completed => "completed",
            TicketStatus::FailedPermanent => "failed_permanent",
            TicketStatus::AwaitingApproval => "awaiting_approval",
        }
    }

    /// True for statuses a ticket leaves only by an explicit retry.
    pub fn is_final(self) -> bool {
        matches!(self, TicketStatus::Completed | TicketStatus::FailedPermanent)
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TicketStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TicketStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown ticket status `{s}`"))
    }
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// Deterministic id (see [`ticket_id`](super::ticket_id)).
    pub id: Uuid,
    /// The customer.
    pub customer_id: String,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Status.
    pub status: TicketStatus,
    /// The workflow's result (or, for a failed ticket, the error).
    pub result: Option<serde_json::Value>,
    /// Failed processing attempts charged to the retry budget (`MAX_RETRIES`); database and
    /// broker outages are never charged.
    pub attempt_count: i32,
    /// Optimistic-lock version; every change adds one.
    pub version: i64,
    /// Where the ticket came from (`api`, `email`, ...).
    pub channel: String,
    /// Free-form metadata given at creation.
    pub metadata: serde_json::Value,
    /// The lease epoch; a processor's checkpoint writes are fenced by it.
    pub lease_epoch: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When processing first started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed or failed for good.
    pub completed_at: Option<DateTime<Utc>>,
}

/// What a caller submits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewTicket {
    /// 1 to 100 characters.
    pub customer_id: String,
    /// 1 to 500 characters.
    pub subject: String,
    /// 1 to 10,000 characters.
    pub body: String,
    /// Defaults to `api` when empty.
    pub channel: String,
    /// Free-form metadata (`Null` for none).
    pub metadata: serde_json::Value,
    /// When given, the ticket's identity (scoped to the customer) instead of its content.
    pub idempotency_key: Option<String>,
    /// The request that created it, carried into the outbox and the `created` event.
    pub request_id: Option<String>,
    /// W3C trace context of the request, carried into the outbox.
    pub traceparent: Option<String>,
}

/// Kinds of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// The ticket was created.
    Created,
    /// The status changed.
    StatusChange,
    /// A workflow step completed (its checkpoint committed).
    StepComplete,
    /// Processing failed and will be retried later.
    Retry,
    /// Something went wrong.
    Error,
    /// A step fell back from the LLM to the offline engine.
    Fallback,
}

impl EventType {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "created",
            EventType::StatusChange => "status_change",
            EventType::StepComplete => "step_complete",
            EventType::Retry => "retry",
            EventType::Error => "error",
            EventType::Fallback => "fallback",
        }
    }
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Its kind.
    pub event_type: EventType,
    /// The workflow step it concerns.
    pub step_name: Option<String>,
    /// Details.
    pub payload: serde_json::Value,
    /// The request id it traces back to.
    pub request_id: Option<String>,
}

impl NewEvent {
    /// An event of `event_type` with a payload and nothing else.
    pub fn new(event_type: EventType, payload: serde_json::Value) -> Self {
        Self {
            event_type,
            step_name: None,
            payload,
            request_id: None,
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketEvent {
    /// Its id.
    pub id: Uuid,
    /// Its ticket.
    pub ticket_id: Uuid,
    /// Its position among all events (orders events that share a timestamp).
    pub seq: i64,
    /// `created`, `status_change`, `step_complete`, `retry`, `error`, ...
    pub event_type: String,
    /// The workflow step, for step events.
    pub step_name: Option<String>,
    /// Details.
    pub payload: serde_json::Value,
    /// The request id it traces back to.
    pub request_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A status change, guarded by the ticket's version.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The new status.
    pub to: TicketStatus,
    /// Sets `result` when given.
    pub result: Option<serde_json::Value>,
    /// Adds one to `attempt_count` (a failed attempt charged to the retry budget).
    pub count_attempt: bool,
    /// Sets `attempt_count` back to zero (a manual retry gets a fresh budget).
    pub reset_attempts: bool,
    /// Also enqueues the ticket (an outbox row) after this delay, in the same transaction.
    pub enqueue_after: Option<std::time::Duration>,
    /// Extra events written in the same transaction (after the `status_change` event).
    pub events: Vec<NewEvent>,
    /// The request id recorded on the `status_change` event.
    pub request_id: Option<String>,
}

impl Transition {
    /// A plain status change.
    pub fn to(status: TicketStatus) -> Self {
        Self {
            to: status,
            result: None,
            count_attempt: false,
            reset_attempts: false,
            enqueue_after: None,
            events: Vec::new(),
            request_id: None,
        }
    }

    /// Also sets the result.
    pub fn with_result(mut self, result: serde_json::Value) -> Self {
        self.result = Some(result);
        self
    }

    /// Also enqueues the ticket after `delay`.
    pub fn enqueue_after(mut self, delay: std::time::Duration) -> Self {
        self.enqueue_after = Some(delay);
        self
    }

    /// Also writes `event`.
    pub fn with_event(mut self, event: NewEvent) -> Self {
        self.events.push(event);
        self
    }
}

/// Filters and paging for [`TicketStore::list`](super::TicketStore::list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// 1-based page.
    pub page: u32,
    /// 1 to 100.
    pub page_size: u32,
    /// Only tickets in this status.
    pub status: Option<TicketStatus>,
    /// Only this customer's tickets.
    pub customer_id: Option<String>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            page: 1,
            page_size: 20,
            status: None,
            customer_id: None,
        }
    }
}

/// One page of tickets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketPage {
    /// The tickets, newest first.
    pub tickets: Vec<Ticket>,
    /// How many tickets match in all.
    pub total: i64,
    /// The page.
    pub page: u32,
    /// The page size.
    pub page_size: u32,
}

/// The right of one processing run to write a ticket's checkpoints: the ticket and the lease
/// epoch the run was granted. A later claim bumps the epoch, and the earlier run's writes lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    /// The ticket.
    pub ticket_id: Uuid,
    /// The lease epoch.
    pub epoch: i64,
}

/// Longest customer id, subject and body, in characters.
pub const LIMITS: [(&str, usize); 3] = [("customer_id", 100), ("subject", 500), ("body", 10_000)];

impl NewTicket {
    /// Checks lengths and characters; PostgreSQL cannot store NUL, so no store accepts it.
    pub fn validate(&self) -> Result<(), super::StoreError> {
        let invalid = |field: &'static str, message: String| super::StoreError::Validation { field, message };
        for ((field, max), value) in LIMITS.iter().zip([&self.customer_id, &self.subject, &self.body]) {
            let length = value.chars().count();
            if value.trim().is_empty() {
                return Err(invalid(field, "must not be empty".into()));
            }
            if length > *max {
                return Err(invalid(
                    field,
                    format!("is {length} characters long, at most {max} allowed"),
                ));
            }
            if value.contains('\0') {
                return Err(invalid(field, "must not contain NUL characters".into()));
            }
        }
        if self.channel.contains('\0') || self.channel.chars().count() > 50 {
            return Err(invalid("channel", "must be at most 50 characters without NUL".into()));
        }
        if let Some(key) = &self.idempotency_key
            && (key.is_empty() || key.chars().count() > 255 || key.contains('\0'))
        {
            return Err(invalid(
                "idempotency_key",
                "must be 1 to 255 characters without NUL".into(),
            ));
        }
        if self.metadata.to_string().contains("\\u0000") {
            return Err(invalid("metadata", "must not contain NUL characters".into()));
        }
        Ok(())
    }

    pub(crate) fn channel_or_default(&self) -> &str {
        if self.channel.is_empty() { "api" } else { &self.channel }
    }

    pub(crate) fn metadata_or_default(&self) -> serde_json::Value {
        if self.metadata.is_null() {
            serde_json::json!({})
        } else {
            self.metadata.clone()
        }
    }
}

/// The `status_change` event of a claim; `takeover` when the ticket was already processing
/// (its previous holder's lease expired).
pub(crate) fn claim_event(from: &str, worker_id: &str, ticket: &Ticket) -> NewEvent {
    NewEvent::new(
        EventType::StatusChange,
        serde_json::json!({
            "from": from,
            "to": "processing",
            "worker_id": worker_id,
            "lease_epoch": ticket.lease_epoch,
            "takeover": from == "processing",
        }),
    )
}

/// An outbox row claimed for publishing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// The row.
    pub id: i64,
    /// The ticket to wake a worker for.
    pub ticket_id: Uuid,
    /// The request that caused it.
    pub request_id: Option<String>,
    /// W3C trace context.
    pub traceparent: Option<String>,
    /// The ticket's failed attempts so far (a message header).
    pub attempt: i32,
}

/// The `step_complete` event a fenced checkpoint writes beside itself, in the same transaction:
/// the step, the checkpoint, the time since the run's previous checkpoint (node time plus the
/// write), and the request id the run carries in its metadata.
pub(crate) fn step_complete_event(
    checkpoint: &ticketflow_graph::Checkpoint,
    node: &str,
    since_previous: Option<std::time::Duration>,
) -> NewEvent {
    NewEvent {
        event_type: EventType::StepComplete,
        step_name: Some(node.to_owned()),
        payload: serde_json::json!({
            "step": checkpoint.step,
            "checkpoint_id": checkpoint.id,
            "duration_ms": since_previous.map(|d| d.as_secs_f64() * 1000.0),
        }),
        request_id: checkpoint
            .metadata
            .get("request_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
    }
}
