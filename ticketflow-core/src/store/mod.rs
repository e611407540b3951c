//! Persistence: tickets, their events, workflow checkpoints and the outbox, behind one
//! [`TicketStore`] trait with PostgreSQL (production, Supabase-compatible) and SQLite (the
//! embedded default) implementations that pass one conformance suite.

mod group_commit;
mod identity;
mod model;
mod postgres;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ticketflow_graph::Checkpointer;
use uuid::Uuid;

pub use identity::{content_hash, ticket_id};
pub use model::{
    EventType, Fence, ListQuery, NewEvent, NewTicket, OutboxMessage, Ticket, TicketEvent, TicketPage, TicketStatus,
    Transition,
};
pub use postgres::{PgOptions, PgStore};
pub use sqlite::SqliteStore;

use crate::HistorySource;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A field of the input is invalid.
    #[error("invalid `{field}`: {message}")]
    Validation {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No ticket with this id.
    #[error("ticket {0} not found")]
    NotFound(Uuid),
    /// The ticket changed since it was read (optimistic lock), or is not in the status the
    /// change requires.
    #[error("ticket {id} was changed concurrently or is not in the expected state: {message}")]
    Conflict {
        /// The ticket.
        id: Uuid,
        /// What did not match.
        message: String,
    },
    /// The idempotency key was used before for a ticket with other content.
    #[error("idempotency key already used for a different ticket {0}")]
    IdempotencyConflict(Uuid),
    /// The database is unreachable or failed; retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Stored data could not be decoded (a bug or manual tampering).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Applying the migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        // SQLSTATE class 22 (data exception: invalid text, NUL bytes, out-of-range values) is
        // the input's fault, not an outage.
        if let sqlx::Error::Database(db) = &error
            && db.code().is_some_and(|code| code.starts_with("22"))
        {
            return StoreError::Validation {
                field: "input",
                message: db.message().to_owned(),
            };
        }
        match error {
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_) => {
                StoreError::Corrupt(error.to_string())
            }
            other => StoreError::Unavailable(other),
        }
    }
}

/// Everything the API, the processor and the workflow need from the database.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Applies the migrations that have not run yet.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

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

    /// Changes a ticket's status (and result, and attempt count) if its version is still
    /// `expected_version`, writing a `status_change` event and the transition's own events in
    /// the same transaction. Returns the updated ticket (its version one higher).
    async fn transition(&self, id: Uuid, expected_version: i64, change: Transition) -> Result<Ticket, StoreError>;

    /// [`transition`](Self::transition) for a run's final write, which needs nothing back: a
    /// store may commit it together with other writes (PostgreSQL commits completions with
    /// concurrent runs' checkpoints). Same guarantees and errors; returns once committed.
    async fn finish(&self, id: Uuid, expected_version: i64, change: Transition) -> Result<(), StoreError> {
        self.transition(id, expected_version, change).await.map(drop)
    }

    /// Claims a ticket for `worker_id` for `lease`: a `pending` ticket, or a `processing` one
    /// whose lease expired (a takeover, counted in `lease_takeovers_total`). Sets `processing`,
    /// bumps the lease epoch (the first claim of a ticket gets epoch 1) and version, and writes
    /// a `status_change` event, in one transaction. Returns the ticket and the fence its
    /// checkpoint writes must carry; `None` when another live worker holds it, it is in no
    /// state to be processed, or it is `pending` with a delayed retry not yet due (an early
    /// duplicate delivery must not skip the backoff: the scheduled message will come);
    /// [`StoreError::NotFound`] when there is no such ticket.
    async fn claim(&self, id: Uuid, worker_id: &str, lease: Duration) -> Result<Option<(Ticket, Fence)>, StoreError>;

    /// Extends a lease the run still holds; `false` when the fence is stale (the ticket was
    /// taken over or finished), and the run should stop.
    async fn heartbeat(&self, fence: Fence, lease: Duration) -> Result<bool, StoreError>;

    /// Hands a ticket back (`processing` -> `pending`, lease cleared) if the run still holds it,
    /// enqueuing it again after `delay`; used on shutdown and after infrastructure errors, and
    /// never charged to the retry budget. `false` when the fence is stale.
    async fn release(&self, fence: Fence, reason: &str, delay: Duration) -> Result<bool, StoreError>;

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

    /// A checkpointer over this database for the workflow of one ticket. Each checkpoint that
    /// records a completed node also writes that node's `step_complete` event, in the same
    /// transaction. With a fence, a write is refused unless the ticket still carries the
    /// fence's lease epoch.
    fn checkpointer(&self, fence: Option<Fence>) -> Arc<dyn Checkpointer>;

    /// The store as the research step's history source.
    fn history(&self) -> Arc<dyn HistorySource>;
}

/// Queue-related gauges (see [`TicketStore::backlog`]).
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

/// A connection string safe to print: the password (and any `password=` query parameter)
/// replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..].find(['/', '?']).map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(start) = out.find("password=") {
        let value_start = start + "password=".len();
        let value_end = out[value_start..].find('&').map_or(out.len(), |i| value_start + i);
        out.replace_range(value_start..value_end, "***");
    }
    out
}

/// Options for a PostgreSQL URL. A transaction pooler (Supabase's port 6543, or a URL marked
/// `pgbouncer=true`, which is removed) cannot keep prepared statements: caching is turned off.
fn pg_options_for(url: &str) -> (String, PgOptions) {
    let mut options = PgOptions::default();
    let mut url = url.to_owned();
    for marker in ["?pgbouncer=true&", "&pgbouncer=true", "?pgbouncer=true"] {
        if let Some(at) = url.find(marker) {
            let keep = if marker.ends_with('&') { "?" } else { "" };
            url.replace_range(at..at + marker.len(), keep);
            options.statement_cache = false;
        }
    }
    let authority = url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    if authority.rsplit('@').next().is_some_and(|host| host.ends_with(":6543")) {
        options.statement_cache = false;
    }
    (url, options)
}

/// Opens the store a `DATABASE_URL` names: `postgres://…` or `sqlite://…` (a path, created if
/// missing).
pub async fn connect(url: &str) -> Result<Arc<dyn TicketStore>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (url, options) = pg_options_for(url);
        Ok(Arc::new(PgStore::connect(&url, options).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else {
        Err(StoreError::Validation {
            field: "DATABASE_URL",
            message: "must start with postgres://, postgresql:// or sqlite:".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn transaction_poolers_turn_statement_caching_off() {
        let (url, o) = super::pg_options_for("postgres://u:p@h:5432/db");
        assert!(o.statement_cache);
        assert_eq!(url, "postgres://u:p@h:5432/db");
        let (url, o) = super::pg_options_for("postgres://u:p@pooler.supabase.com:6543/postgres?sslmode=require");
        assert!(!o.statement_cache);
        assert_eq!(url, "postgres://u:p@pooler.supabase.com:6543/postgres?sslmode=require");
        let (url, o) = super::pg_options_for("postgres://u:p@h:5432/db?pgbouncer=true&sslmode=require");
        assert!(!o.statement_cache);
        assert_eq!(url, "postgres://u:p@h:5432/db?sslmode=require");
        let (url, o) = super::pg_options_for("postgres://u:p@h/db?sslmode=require&pgbouncer=true");
        assert!(!o.statement_cache);
        assert_eq!(url, "postgres://u:p@h/db?sslmode=require");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?password=secret&sslmode=require"),
            "postgres://u@h/db?password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact_url("sqlite://ticketflow.db"), "sqlite://ticketflow.db");
        assert_eq!(redact_url("postgres://u:p@ss:w@rd@h/db"), "postgres://u:***@h/db");
    }
}
