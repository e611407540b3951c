//! Persistence, one trait per aggregate — [`TicketStore`] (tickets and their events),
//! [`ClaimStore`] (leases), [`OutboxStore`] (the transactional outbox and the sweep),
//! [`CheckpointStore`] (workflow checkpoints), [`CommerceStore`] (customers, products,
//! orders), [`ToolStore`] (the tool-call journal and the calls' effects), [`ApprovalStore`]
//! (a person's decisions on held calls), [`MessageStore`] (tickets' conversations),
//! [`DeliveryStore`] (the e-mail outbox), [`FeedStore`] (reading events as they commit),
//! [`WebhookStore`] (the webhooks' outbox), [`PeopleStore`] (staff accounts, API keys, sessions
//! and the audit trail) — gathered by [`Store`], with a PostgreSQL
//! (production, Supabase-compatible; feature `postgres`) and a SQLite (the embedded default;
//! feature `sqlite`) backend. Each backend is a folder with one file per aggregate, and both
//! pass one conformance suite (`testing::store`, feature `testing`).

#[macro_use]
mod text_column;
mod approvals;
mod checkpoints;
mod claims;
mod commerce;
mod deliveries;
mod error;
mod events;
mod feed;
mod identity;
pub(crate) mod messages;
mod outbox;
mod people;
#[cfg(feature = "postgres")]
mod postgres;
mod search;
#[cfg(feature = "sqlite")]
mod sqlite;
mod tickets;
mod tool_calls;
mod webhooks;

use std::sync::Arc;

use async_trait::async_trait;

pub use approvals::{
    Approval, ApprovalPage, ApprovalQuery, ApprovalStatus, ApprovalStore, ApprovalTicket, Decided, Decision, DeskStats,
    MAX_DECIDED_BY_CHARS, MAX_EDITED_RESPONSE_CHARS, MAX_REASON_CHARS, NewApproval, SEND_REPLY, UnknownApprovalStatus,
    rejection_result,
};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) use approvals::{already_decided, call_not_held, not_waiting};
pub use checkpoints::CheckpointStore;
pub use claims::{ClaimStore, Fence};
pub use commerce::{CommerceStore, DemoLoaded};
pub use deliveries::{AUTO_SUBMITTED, DeliveryOutcome, DeliveryStore};
pub use error::{BackendError, StoreError};
pub use events::{
    ApprovalDecided, ApprovalRequested, Claimed, Created, EmailFailed, EmailReceived, EmailSent, EventType, Failed,
    Interrupted, ManualRetry, Moved, NewEvent, Payload, Released, RetryScheduled, StepCompleted, TicketEvent,
    ToolCalled, TurnStarted, step_complete_event,
};
pub use feed::{CommitNotices, FeedRead, FeedStore, InFlight};
pub use identity::{content_hash, ticket_id};
pub use messages::{
    Arrival, Attachment, ConversationMessage, Direction, MessageStatus, MessageStore, NewMessage, PASSWORD_RESET,
    Received, StaffReplied, UnknownDirection, UnknownMessageStatus, already_received, reply_subject,
};
pub use outbox::{Backlog, OutboxMessage, OutboxStore};
pub use people::{
    ApiKey, AuditEntry, AuditPage, MAX_EMAIL_CHARS, MAX_NAME_CHARS, NewApiKey, NewAuditEntry, NewSession, NewUser,
    PeopleStore, Role, Session, UnknownRole, User, normalized_email,
};
#[cfg(feature = "postgres")]
pub use postgres::{PgOptions, PgStore};
pub use search::{ListSort, MAX_SEARCH_CHARS, search_words};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use tickets::{
    LIMITS, ListQuery, MAX_ACTOR_CHARS, NewTicket, Ticket, TicketPage, TicketStatus, TicketStore, Transition,
    UnknownStatus, turn_of_thread, turn_thread,
};
pub use tool_calls::{
    Applied, BugReport, CallEffects, CallStatus, Effect, Escalation, NewToolCall, PasswordReset, Render, Settlement,
    ToolCall, ToolStore, UnknownCallStatus, effect_id,
};
pub use webhooks::{
    UnknownWebhookStatus, WEBHOOK_EVENT_TYPES, WebhookAttempt, WebhookDelivery, WebhookOutcome, WebhookPage,
    WebhookQuery, WebhookStatus, WebhookStore,
};

use crate::HistorySource;

/// Everything the API, the processor and the workflow need from the database: every
/// aggregate's trait, plus migrations and a health check.
#[async_trait]
pub trait Store:
    TicketStore
    + ClaimStore
    + OutboxStore
    + CheckpointStore
    + CommerceStore
    + ToolStore
    + ApprovalStore
    + MessageStore
    + DeliveryStore
    + FeedStore
    + WebhookStore
    + PeopleStore
    + HistorySource
{
    /// Applies the migrations that have not run yet.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Checks that the database answers and that the store can read its own tables.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// How [`connect`] opens a database, beyond its URL.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// PostgreSQL: the schema the tables live in (`DATABASE_SCHEMA`, default `ticketflow`).
    pub schema: String,
    /// PostgreSQL: a direct or session connection for migrations (`DATABASE_MIGRATION_URL`);
    /// required when the database URL is a transaction pooler, which cannot run them.
    pub migration_url: Option<String>,
    /// PostgreSQL: a direct or session connection for the live feed's LISTEN
    /// (`DATABASE_LISTEN_URL`); without it the store listens on its own connection, unless
    /// that is a transaction pooler, which keeps no LISTEN (then the feed polls).
    pub listen_url: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            schema: "ticketflow".into(),
            migration_url: None,
            listen_url: None,
        }
    }
}

/// Opens the store a `DATABASE_URL` names: `postgres://…` or `sqlite://…` (a path, created if
/// missing).
pub async fn connect(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    #[allow(unused_variables)]
    let unsupported = |backend: &str| StoreError::Validation {
        field: "DATABASE_URL",
        message: format!("this build of ticketflow-core has no {backend} backend (feature `{backend}`)"),
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            let (url, pg) = PgOptions::for_url(url, options);
            return Ok(Arc::new(PgStore::connect(&url, pg).await?));
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = options;
            return Err(unsupported("postgres"));
        }
    }
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        return Ok(Arc::new(SqliteStore::connect(url).await?));
        #[cfg(not(feature = "sqlite"))]
        return Err(unsupported("sqlite"));
    }
    Err(StoreError::Validation {
        field: "DATABASE_URL",
        message: "must start with postgres://, postgresql:// or sqlite:".into(),
    })
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

#[cfg(test)]
mod tests {
    use super::redact_url;

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
