//! Rows as PostgreSQL returns them, and the records they become.

use chrono::{DateTime, Utc};
use ticketflow_graph::{Checkpoint, CheckpointError};
use uuid::Uuid;

use crate::PastTicket;
use crate::store::{Backlog, OutboxMessage, Ticket, TicketEvent, TicketStatus};

/// The columns of [`TicketRow`], for `SELECT` and `RETURNING`.
pub(super) const TICKET_COLUMNS: &str = "id, customer_id, subject, body, status, result, attempt_count, version, \
                                         channel, metadata, lease_epoch, created_at, started_at, completed_at";

/// A `tickets` row.
#[derive(sqlx::FromRow)]
pub(super) struct TicketRow {
    id: Uuid,
    customer_id: String,
    subject: String,
    body: String,
    status: TicketStatus,
    result: Option<serde_json::Value>,
    attempt_count: i32,
    version: i64,
    channel: String,
    metadata: serde_json::Value,
    lease_epoch: i64,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
}

impl From<TicketRow> for Ticket {
    fn from(row: TicketRow) -> Self {
        Ticket {
            id: row.id,
            customer_id: row.customer_id,
            subject: row.subject,
            body: row.body,
            status: row.status,
            // A JSON `null` result is no result, as a ticket read back from `to_json` says.
            result: row.result.filter(|r| !r.is_null()),
            attempt_count: row.attempt_count,
            version: row.version,
            channel: row.channel,
            metadata: row.metadata,
            lease_epoch: row.lease_epoch,
            created_at: row.created_at,
            started_at: row.started_at,
            completed_at: row.completed_at,
        }
    }
}

/// A ticket a statement returned as `to_json(t)`: its columns, by name, as JSON.
pub(super) fn ticket_from_json(json: serde_json::Value) -> Result<Ticket, sqlx::Error> {
    serde_json::from_value(json).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The columns of [`EventRow`].
pub(super) const EVENT_COLUMNS: &str = "id, ticket_id, seq, event_type, step_name, payload, request_id, created_at";

/// A `ticket_events` row.
#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    id: Uuid,
    ticket_id: Uuid,
    seq: i64,
    event_type: String,
    step_name: Option<String>,
    payload: serde_json::Value,
    request_id: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<EventRow> for TicketEvent {
    fn from(row: EventRow) -> Self {
        TicketEvent {
            id: row.id,
            ticket_id: row.ticket_id,
            seq: row.seq,
            event_type: row.event_type,
            step_name: row.step_name,
            payload: row.payload,
            request_id: row.request_id,
            created_at: row.created_at,
        }
    }
}

/// An outbox row claimed for publishing, with its ticket's attempt count.
#[derive(sqlx::FromRow)]
pub(super) struct OutboxRow {
    id: i64,
    ticket_id: Uuid,
    request_id: Option<String>,
    traceparent: Option<String>,
    attempt_count: i32,
}

impl From<OutboxRow> for OutboxMessage {
    fn from(row: OutboxRow) -> Self {
        OutboxMessage {
            id: row.id,
            ticket_id: row.ticket_id,
            request_id: row.request_id,
            traceparent: row.traceparent,
            attempt: row.attempt_count,
        }
    }
}

/// One of a customer's earlier tickets.
#[derive(sqlx::FromRow)]
pub(super) struct PastTicketRow {
    id: Uuid,
    subject: String,
    status: TicketStatus,
    created_at: DateTime<Utc>,
}

impl From<PastTicketRow> for PastTicket {
    fn from(row: PastTicketRow) -> Self {
        PastTicket {
            id: row.id.to_string(),
            subject: row.subject,
            status: row.status.as_str().to_owned(),
            created_at: row.created_at,
        }
    }
}

/// The columns of [`CheckpointRow`] (the state as the text it was written as).
pub(super) const CHECKPOINT_COLUMNS: &str = "thread_id, step, checkpoint_id, parent_id, completed_node, next_node, \
                                             state::text AS state, graph_version, interrupt, metadata, created_at";

/// A `workflow_checkpoints` row.
#[derive(sqlx::FromRow)]
pub(super) struct CheckpointRow {
    thread_id: String,
    step: i64,
    checkpoint_id: Uuid,
    parent_id: Option<Uuid>,
    completed_node: Option<String>,
    next_node: Option<String>,
    state: String,
    graph_version: String,
    interrupt: Option<serde_json::Value>,
    metadata: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl TryFrom<CheckpointRow> for Checkpoint {
    type Error = CheckpointError;

    fn try_from(row: CheckpointRow) -> Result<Self, CheckpointError> {
        Ok(Checkpoint {
            thread_id: row.thread_id.into(),
            id: row.checkpoint_id,
            parent_id: row.parent_id,
            step: u64::try_from(row.step).map_err(CheckpointError::storage)?,
            completed_node: row.completed_node.map(Into::into),
            next_node: row.next_node.map(Into::into),
            state: serde_json::value::RawValue::from_string(row.state).map_err(CheckpointError::storage)?,
            graph_version: row.graph_version.into(),
            interrupt: row.interrupt,
            metadata: row.metadata,
            created_at: row.created_at,
        })
    }
}

/// The backlog gauges.
#[derive(sqlx::FromRow)]
pub(super) struct BacklogRow {
    pending: i64,
    oldest: f64,
    due: i64,
    lag: f64,
}

impl From<BacklogRow> for Backlog {
    fn from(row: BacklogRow) -> Self {
        Backlog {
            pending: row.pending,
            oldest_pending_seconds: row.oldest,
            outbox_due: row.due,
            outbox_lag_seconds: row.lag,
        }
    }
}
