//! The ticket aggregate: tickets, their status changes and their events.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::StoreError;
use super::events::{Moved, NewEvent, TicketEvent};

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Handed to a person; no automatic reply is sent, and a staff reply completes it.
    Escalated,
}

impl TicketStatus {
    /// Every status.
    pub const ALL: [TicketStatus; 6] = [
        TicketStatus::Pending,
        TicketStatus::Processing,
        TicketStatus::Completed,
        TicketStatus::FailedPermanent,
        TicketStatus::AwaitingApproval,
        TicketStatus::Escalated,
    ];

    /// The name stored in the database and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Pending => "pending",
            TicketStatus::Processing => "processing",
            TicketStatus::Completed => "completed",
            TicketStatus::FailedPermanent => "failed_permanent",
            TicketStatus::AwaitingApproval => "awaiting_approval",
            TicketStatus::Escalated => "escalated",
        }
    }

    /// True for statuses no run moves on from by itself: a ticket leaves them only by a
    /// person's action (a retry, a reply) or a new message.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TicketStatus::Completed | TicketStatus::FailedPermanent | TicketStatus::Escalated
        )
    }
}

stored_as_text!(TicketStatus, UnknownStatus, "ticket status");

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
    /// The workflow's turn over the ticket's conversation: 1, then one more each time a new
    /// message reopens it (see [`MessageStore`](super::MessageStore)).
    #[serde(default = "first_turn")]
    pub turn: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When processing first started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed or failed for good.
    pub completed_at: Option<DateTime<Utc>>,
}

fn first_turn() -> i32 {
    1
}

impl Ticket {
    /// The checkpoint thread of the ticket's current turn: the ticket's id for the first
    /// (as before conversations had turns), `<id>/turn-<n>` after.
    pub fn thread(&self) -> String {
        turn_thread(self.id, self.turn)
    }
}

/// The checkpoint thread of turn `turn` of ticket `id` (see [`Ticket::thread`]).
pub fn turn_thread(id: Uuid, turn: i32) -> String {
    if turn <= 1 {
        id.to_string()
    } else {
        format!("{id}/turn-{turn}")
    }
}

/// The turn whose checkpoints thread `thread` holds (see [`turn_thread`]).
pub fn turn_of_thread(thread: &str) -> i32 {
    thread
        .rsplit_once("/turn-")
        .and_then(|(_, turn)| turn.parse().ok())
        .unwrap_or(1)
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
    /// The ticket's first message, when it came as one (an e-mail); `None`: its subject and
    /// body ([`NewMessage::first_of`](super::NewMessage::first_of)).
    pub first_message: Option<super::NewMessage>,
    /// Who created it: a person's e-mail, `key:<name>` for a named key, `api-key-<n>` for one
    /// of `API_KEYS`; `None` when anonymous. Recorded on the `created` event; not part of the
    /// ticket's identity (the same submission by two people is one ticket).
    pub actor: Option<String>,
}

/// The longest actor (a person's e-mail, `key:<name>`, `api-key-<n>`) an event records.
pub const MAX_ACTOR_CHARS: usize = 300;

/// Longest customer id, subject and body, in characters.
pub const LIMITS: [(&str, usize); 3] = [("customer_id", 100), ("subject", 500), ("body", 10_000)];

impl NewTicket {
    /// Checks lengths and characters; PostgreSQL cannot store NUL, so no store accepts it.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |field: &'static str, message: String| StoreError::Validation { field, message };
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
        if let Some(actor) = &self.actor
            && (actor.is_empty() || actor.chars().count() > MAX_ACTOR_CHARS || actor.contains('\0'))
        {
            return Err(invalid(
                "actor",
                format!("must be 1 to {MAX_ACTOR_CHARS} characters without NUL"),
            ));
        }
        if self.metadata.to_string().contains("\\u0000") {
            return Err(invalid("metadata", "must not contain NUL characters".into()));
        }
        Ok(())
    }

    /// The channel stored: `api` when none was given.
    pub fn channel_or_default(&self) -> &str {
        if self.channel.is_empty() { "api" } else { &self.channel }
    }

    /// The metadata stored: `{}` when none was given.
    pub fn metadata_or_default(&self) -> serde_json::Value {
        if self.metadata.is_null() {
            serde_json::json!({})
        } else {
            self.metadata.clone()
        }
    }

    /// The first message stored for ticket `id`.
    pub fn first_message_for(&self, id: Uuid) -> super::NewMessage {
        self.first_message.clone().unwrap_or_else(|| {
            super::NewMessage::first_of(
                id,
                &self.customer_id,
                self.channel_or_default(),
                &self.subject,
                &self.body,
            )
        })
    }
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
    pub enqueue_after: Option<Duration>,
    /// Extra events written in the same transaction (after the `status_change` event).
    pub events: Vec<NewEvent>,
    /// The request id recorded on the `status_change` event.
    pub request_id: Option<String>,
    /// Who made the change, when a person or key did (a person's e-mail, `key:<name>`,
    /// `api-key-<n>`), recorded on the `status_change` event; `None` for the workflow's own.
    pub actor: Option<String>,
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
            actor: None,
        }
    }

    /// Also sets the result.
    pub fn with_result(mut self, result: serde_json::Value) -> Self {
        self.result = Some(result);
        self
    }

    /// Also enqueues the ticket after `delay`.
    pub fn enqueue_after(mut self, delay: Duration) -> Self {
        self.enqueue_after = Some(delay);
        self
    }

    /// Also writes `event`.
    pub fn with_event(mut self, event: NewEvent) -> Self {
        self.events.push(event);
        self
    }

    /// `ticket`'s attempt count once this change applies.
    pub fn attempt_count_after(&self, ticket: &Ticket) -> i32 {
        let kept = if self.reset_attempts { 0 } else { ticket.attempt_count };
        kept + i32::from(self.count_attempt)
    }

    /// The payload of the `status_change` event this change writes on `ticket`.
    pub fn status_change(&self, ticket: &Ticket) -> Moved {
        Moved {
            from: ticket.status,
            to: self.to,
            attempt_count: self.attempt_count_after(ticket),
            actor: self.actor.clone(),
        }
    }
}

/// Filters and paging for [`TicketStore::list`].
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
    /// Only tickets whose subject, body, customer or reply hold every word of this text (see
    /// [`search_words`](super::search_words)); at most [`MAX_SEARCH_CHARS`](super::MAX_SEARCH_CHARS).
    pub q: Option<String>,
    /// Only tickets of this channel (`api`, `email`, ...).
    pub channel: Option<String>,
    /// Only tickets created at or after this instant.
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only tickets created before this instant.
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
    /// The order.
    pub sort: super::ListSort,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            page: 1,
            page_size: 20,
            status: None,
            customer_id: None,
            q: None,
            channel: None,
            created_after: None,
            created_before: None,
            sort: super::ListSort::default(),
        }
    }
}

impl ListQuery {
    /// Checks the text filters: no NUL (PostgreSQL cannot compare it), a search of at most
    /// [`MAX_SEARCH_CHARS`](super::MAX_SEARCH_CHARS) characters that is not blank.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |field: &'static str, message: &str| StoreError::Validation {
            field,
            message: message.to_owned(),
        };
        for (field, value) in [
            ("customer_id", &self.customer_id),
            ("channel", &self.channel),
            ("q", &self.q),
        ] {
            if value.as_deref().is_some_and(|v| v.contains('\0')) {
                return Err(invalid(field, "must not contain NUL characters"));
            }
        }
        if let Some(q) = &self.q {
            if q.trim().is_empty() {
                return Err(invalid("q", "must not be blank"));
            }
            if q.chars().count() > super::MAX_SEARCH_CHARS {
                return Err(invalid("q", "is longer than 500 characters"));
            }
        }
        Ok(())
    }

    /// The page size within 1..=100 and the page at least 1.
    pub fn bounded(&self) -> (u32, u32) {
        (self.page.max(1), self.page_size.clamp(1, 100))
    }

    /// Rows to skip for the page.
    pub fn offset(&self) -> i64 {
        let (page, page_size) = self.bounded();
        i64::from(page - 1) * i64::from(page_size)
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

/// Tickets and their events.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Creates a ticket, its `created` event and its outbox row in one transaction. Idempotent:
    /// the id is derived from the content (or from the idempotency key), so a repeat returns the
    /// existing ticket with `created = false`, and a key reused with other content is an
    /// [`StoreError::IdempotencyConflict`].
    async fn create(&self, ticket: NewTicket) -> Result<(Ticket, bool), StoreError>;

    /// One ticket.
    async fn get(&self, id: Uuid) -> Result<Option<Ticket>, StoreError>;

    /// A page of tickets, newest first.
    async fn list(&self, query: &ListQuery) -> Result<TicketPage, StoreError>;

    /// A ticket's events, oldest first; `NotFound` for an unknown ticket.
    async fn events(&self, id: Uuid) -> Result<Vec<TicketEvent>, StoreError>;

    /// Appends an event.
    async fn append_event(&self, ticket_id: Uuid, event: NewEvent) -> Result<TicketEvent, StoreError>;

    /// Changes `ticket`'s status (and result, and attempt count) if it is still at
    /// `ticket.version`, writing a `status_change` event (from `ticket.status`, see
    /// [`Transition::status_change`]) and the transition's own events after it, and the
    /// outbox row it asks for, in one transaction. Returns the updated ticket (its version one
    /// higher); `Conflict` when the ticket moved on, `NotFound` when it is gone.
    async fn transition(&self, ticket: &Ticket, change: Transition) -> Result<Ticket, StoreError>;

    /// [`transition`](Self::transition) for a run's final write, which needs nothing back: a
    /// store may commit it together with other writes (PostgreSQL commits it with concurrent
    /// runs' checkpoints). Same guarantees and errors; returns once committed.
    async fn finish(&self, ticket: &Ticket, change: Transition) -> Result<(), StoreError> {
        self.transition(ticket, change).await.map(drop)
    }
}
