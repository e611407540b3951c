//! The outbox aggregate: what must be published to the queue, and the sweep that re-enqueues
//! what nothing will otherwise wake.

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreError;

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

/// Queue-related gauges (see [`OutboxStore::backlog`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backlog {
    /// Tickets in `pending`.
    pub pending: i64,
    /// Seconds since the oldest pending ticket was created (0 when none).
    pub oldest_pending_seconds: f64,
    /// Outbox rows due and not yet sent.
    pub outbox_due: i64,
    /// Seconds since the oldest due, unsent outbox row became due (0 when none).
    pub outbox_lag_seconds: f64,
}

/// The transactional outbox.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims up to `limit` due outbox rows for publishing, hiding them for `visibility` (if
    /// the publisher dies, they become due again).
    async fn claim_outbox(&self, limit: u32, visibility: Duration) -> Result<Vec<OutboxMessage>, StoreError>;

    /// Marks published outbox rows as sent.
    async fn mark_sent(&self, ids: &[i64]) -> Result<(), StoreError>;

    /// Re-enqueues tickets nothing will otherwise wake: `pending` ones with no unsent outbox
    /// row and none sent within `quiet_for`, and `processing` ones whose lease expired with no
    /// outbox row unsent or sent since it expired (a crashed worker's tickets come back as soon
    /// as their leases run out, however recently they were enqueued).
    /// Returns how many were enqueued (at most `limit`).
    async fn sweep(&self, quiet_for: Duration, limit: u32) -> Result<u64, StoreError>;

    /// Metrics for operators: pending tickets, age of the oldest pending ticket, unsent due
    /// outbox rows and the age of the oldest.
    async fn backlog(&self) -> Result<Backlog, StoreError>;
}
