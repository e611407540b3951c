//! What the live event feed ([`crate::live`]) needs from the database: events read in seq
//! order together with what was still in flight when they were read, events between two seqs,
//! and notice that events committed.

use async_trait::async_trait;
use uuid::Uuid;

use super::{StoreError, TicketEvent};

/// The transactions in flight when a read's snapshot was taken, as far as they can still add
/// events below the newest one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight {
    /// None can: every event below the newest one read has committed or never will (SQLite's
    /// single writer commits in seq order).
    Nothing,
    /// PostgreSQL's snapshot bounds: `xmin`, the oldest transaction still running, and `xmax`,
    /// the first transaction id not yet assigned. `xmin == xmax`: none was running.
    Transactions {
        /// The oldest transaction id still running.
        xmin: u64,
        /// The first transaction id not yet assigned.
        xmax: u64,
    },
}

/// Events read in one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedRead {
    /// The events after the seq asked for, oldest first.
    pub events: Vec<TicketEvent>,
    /// The newest seq of the snapshot (0 when there is no event), even past a read's limit.
    pub newest: i64,
    /// What was in flight.
    pub in_flight: InFlight,
}

/// Tells the feed that events may have committed, or that such notices may have been lost (a
/// reconnect): either way it reads again.
#[async_trait]
pub trait CommitNotices: Send {
    /// Waits for the next notice. An error is the connection failing; the next call
    /// reconnects, and its success is itself a notice.
    async fn next(&mut self) -> Result<(), StoreError>;
}

/// Reading events for the live feed.
#[async_trait]
pub trait FeedStore: Send + Sync {
    /// Up to `limit` events with a seq above `after`, oldest first, with what was in flight,
    /// all in one snapshot.
    async fn read_feed(&self, after: i64, limit: u32) -> Result<FeedRead, StoreError>;

    /// Up to `limit` events with `after < seq <= through`, oldest first: all tickets', or
    /// one's. No check that the ticket exists.
    async fn events_between(
        &self,
        ticket: Option<Uuid>,
        after: i64,
        through: i64,
        limit: u32,
    ) -> Result<Vec<TicketEvent>, StoreError>;

    /// Notices of commits, where the database can give them: SQLite's come from the store's
    /// own writer, PostgreSQL's from LISTEN on a session connection (`DATABASE_LISTEN_URL`, or
    /// the database's own unless it is a transaction pooler). `None`: the feed polls.
    async fn commit_notices(&self) -> Result<Option<Box<dyn CommitNotices>>, StoreError> {
        Ok(None)
    }
}
