//! The live feed's reads in PostgreSQL — with who holds the event table's write lock, which is
//! what the feed's hold-back waits for — and its notices: LISTEN on the schema's channel, which
//! the store's [`Notifier`](super::notifier::Notifier) notifies after its writes.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{FromRow, Row, SqlStr};
use uuid::Uuid;

use super::PgStore;
use super::rows::{EVENT_COLUMNS, EventRow};
use super::sql::statement;
use crate::store::{CommitNotices, FeedRead, FeedStore, InFlight, StoreError, TicketEvent};

/// The feed's statements.
#[derive(Debug)]
pub(super) struct FeedSql {
    newest: SqlStr,
    writers: SqlStr,
    still_writing: SqlStr,
    after: SqlStr,
    between: SqlStr,
    ticket_between: SqlStr,
}

/// The transactions holding the event table's write lock (an INSERT takes it before its row's
/// seq, and keeps it to the transaction's end); pg_locks lists fast-path locks too.
const WRITERS: &str = "FROM pg_locks WHERE locktype = 'relation' AND relation = '{schema}.ticket_events'::regclass \
                       AND mode = 'RowExclusiveLock'";

impl FeedSql {
    pub(super) fn new(schema: &str) -> Self {
        Self {
            newest: statement(schema, "SELECT coalesce(max(seq), 0) FROM {schema}.ticket_events"),
            writers: statement(
                schema,
                &format!("SELECT coalesce(array_agg(DISTINCT virtualtransaction), '{{}}') {WRITERS}"),
            ),
            still_writing: statement(
                schema,
                &format!("SELECT EXISTS (SELECT 1 {WRITERS} AND virtualtransaction = ANY($1))"),
            ),
            after: statement(
                schema,
                &format!("SELECT {EVENT_COLUMNS} FROM {{schema}}.ticket_events WHERE seq > $1 ORDER BY seq LIMIT $2"),
            ),
            between: statement(
                schema,
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM {{schema}}.ticket_events WHERE seq > $1 AND seq <= $2 \
                     ORDER BY seq LIMIT $3"
                ),
            ),
            ticket_between: statement(
                schema,
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM {{schema}}.ticket_events \
                     WHERE ticket_id = $4 AND seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"
                ),
            ),
        }
    }
}

/// The LISTEN channel of a schema.
pub(super) fn channel(schema: &str) -> String {
    format!("{schema}.ticket_events")
}

fn events(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<TicketEvent>, StoreError> {
    Ok(rows
        .iter()
        .map(|r| EventRow::from_row(r).map(TicketEvent::from))
        .collect::<Result<_, _>>()?)
}

#[async_trait]
impl FeedStore for PgStore {
    async fn read_feed(&self, after: i64, limit: u32, waiting_for: &[String]) -> Result<FeedRead, StoreError> {
        // Before the snapshot: a writer that has released its lock has also made its commit
        // visible to every snapshot taken after.
        let waited_for_ended = waiting_for.is_empty()
            || !self
                .db
                .fetch_one(sqlx::query(self.sql.feed.still_writing.clone()).bind(waiting_for))
                .await?
                .try_get::<bool, _>(0)?;
        // One snapshot for the newest seq and the rows (the first statement of a REPEATABLE
        // READ transaction takes it), then who holds the write lock after it.
        let persistent = self.db.persistent();
        let mut tx = self
            .db
            .pool()
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let newest: i64 = sqlx::query(self.sql.feed.newest.clone())
            .persistent(persistent)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let rows = sqlx::query(self.sql.feed.after.clone())
            .bind(after)
            .bind(i64::from(limit))
            .persistent(persistent)
            .fetch_all(&mut *tx)
            .await?;
        let writers: Vec<String> = sqlx::query(self.sql.feed.writers.clone())
            .persistent(persistent)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        tx.commit().await?;
        Ok(FeedRead {
            events: events(&rows)?,
            newest,
            in_flight: InFlight::Writers(writers),
            waited_for_ended,
        })
    }

    async fn events_between(
        &self,
        ticket: Option<Uuid>,
        after: i64,
        through: i64,
        limit: u32,
    ) -> Result<Vec<TicketEvent>, StoreError> {
        let statement = match ticket {
            Some(ticket) => sqlx::query(self.sql.feed.ticket_between.clone())
                .bind(after)
                .bind(through)
                .bind(i64::from(limit))
                .bind(ticket),
            None => sqlx::query(self.sql.feed.between.clone())
                .bind(after)
                .bind(through)
                .bind(i64::from(limit)),
        };
        events(&self.db.fetch_all(statement).await?)
    }

    async fn commit_notices(&self) -> Result<Option<Box<dyn CommitNotices>>, StoreError> {
        let Some(options) = &self.listen else {
            return Ok(None);
        };
        // A pool of one session connection, which the listener keeps (and replaces when lost).
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options.clone());
        let mut listener = PgListener::connect_with(&pool).await?;
        let channel = channel(&self.schema);
        listener.listen(&channel).await?;
        Ok(Some(Box::new(Notices {
            pool,
            listener,
            channel,
            lost: false,
        })))
    }
}

/// LISTEN on one session connection.
struct Notices {
    /// Where the listener's connection comes from.
    pool: sqlx::PgPool,
    listener: PgListener,
    /// The schema's channel.
    channel: String,
    /// The connection failed since the last notice: the next call starts a new listener (the
    /// old one may keep a dead connection), which is a notice of its own, since whatever was
    /// notified meanwhile is lost.
    lost: bool,
}

#[async_trait]
impl CommitNotices for Notices {
    async fn next(&mut self) -> Result<(), StoreError> {
        if self.lost {
            let mut listener = PgListener::connect_with(&self.pool).await?;
            listener.listen(&self.channel).await?;
            self.listener = listener;
            self.lost = false;
            return Ok(());
        }
        // `try_recv`, not `recv`: `Ok(None)` is a reconnect, after which the feed must read
        // again (`recv` would reconnect silently and lose what was notified meanwhile).
        match self.listener.try_recv().await {
            Ok(_) => {
                // Many notices may be waiting: one read answers them all.
                while self.listener.next_buffered().is_some() {}
                Ok(())
            }
            Err(error) => {
                self.lost = true;
                Err(error.into())
            }
        }
    }
}
