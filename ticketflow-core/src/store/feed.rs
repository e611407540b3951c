//! What the live event feed ([`crate::live`]) needs from the database: events read in seq
//! order together with who may still be writing below them, events between two seqs, and
//! notice that events committed.

use async_trait::async_trait;
use uuid::Uuid;

use super::{StoreError, TicketEvent};

/// Who may still add events below the newest one a read saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InFlight {
    /// Nobody: every event below the newest one read has committed or never will (SQLite's
    /// single writer commits in seq order).
    Nothing,
    /// PostgreSQL: the transactions that held the event table's write lock just after the
    /// read's snapshot (their virtual transaction ids). A transaction takes that lock before
    /// it takes a seq and keeps it to its end, so once these have ended, every seq the read
    /// could not see is committed or never will be.
    Writers(Vec<String>),
}

/// Events read in one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedRead {
    /// The events after the seq asked for, oldest first.
    pub events: Vec<TicketEvent>,
    /// The newest seq of the snapshot (0 when there is no event), even past a read's limit.
    pub newest: i64,
    /// Who may still be writing below `newest`.
    pub in_flight: InFlight,
    /// The writers the read was asked to wait for had all ended before its snapshot was
    /// taken (always true when it was asked for none).
    pub waited_for_ended: bool,
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
    /// Up to `limit` events with a seq above `after`, oldest first, all in one snapshot, with
    /// who may still be writing; first, before that snapshot, whether the writers of
    /// `waiting_for` (an earlier read's) have all ended.
    async fn read_feed(&self, after: i64, limit: u32, waiting_for: &[String]) -> Result<FeedRead, StoreError>;

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
