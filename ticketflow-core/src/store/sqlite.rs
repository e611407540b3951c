//! The SQLite store: the embedded default. One writer (a single-connection pool, every write
//! transaction `BEGIN IMMEDIATE`), WAL for concurrent readers, a busy timeout for the rest.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, SqliteConnection};
use ticketflow_graph::{Checkpoint, CheckpointError, Checkpointer};
use uuid::Uuid;

use super::{
    Backlog, EventType, Fence, ListQuery, NewEvent, NewTicket, OutboxMessage, StoreError, Ticket, TicketEvent,
    TicketPage, TicketStatus, TicketStore, Transition, content_hash, ticket_id,
};
use crate::{HistorySource, PastTicket};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

const TICKET_COLUMNS: &str = "id, customer_id, subject, body, status, result, attempt_count, version, channel, \
                              metadata, lease_epoch, created_at, started_at, completed_at";
const EVENT_COLUMNS: &str = "id, ticket_id, seq, event_type, step_name, payload, request_id, created_at";
const CHECKPOINT_COLUMNS: &str = "thread_id, step, checkpoint_id, parent_id, completed_node, next_node, state, \
                                  graph_version, interrupt, metadata, created_at";

/// Tickets, events, checkpoints and outbox in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (WAL lets them run beside the writer).
    read: SqlitePool,
    /// The one writer.
    write: SqlitePool,
}

/// Timestamps as fixed-width RFC 3339 UTC text, so that text order is time order.
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn now() -> String {
    timestamp(Utc::now())
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {text:?}: {e}")))
}

fn parse_uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("uuid {text:?}: {e}")))
}

fn parse_json(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("json: {e}")))
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path/to/file.db`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Validation {
                field: "DATABASE_URL",
                message: e.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL still never corrupts the database; a power cut may lose the last
            // transactions. FULL makes every commit durable, as the checkpoints promise.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { read, write })
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn fetch_ticket(conn: &mut SqliteConnection, id: Uuid) -> Result<Option<(Ticket, Uuid)>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TICKET_COLUMNS}, content_hash FROM tickets WHERE id = ?"
        )))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|r| {
            Ok((
                ticket_from_row(&r)?,
                parse_uuid(&r.try_get::<String, _>("content_hash")?)?,
            ))
        })
        .transpose()
    }
}

fn ticket_from_row(row: &SqliteRow) -> Result<Ticket, StoreError> {
    let opt_time = |name: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        row.try_get::<Option<String>, _>(name)?
            .as_deref()
            .map(parse_time)
            .transpose()
    };
    let status: String = row.try_get("status")?;
    Ok(Ticket {
        id: parse_uuid(&row.try_get::<String, _>("id")?)?,
        customer_id: row.try_get("customer_id")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        result: row
            .try_get::<Option<String>, _>("result")?
            .as_deref()
            .map(parse_json)
            .transpose()?,
        attempt_count: row.try_get("attempt_count")?,
        version: row.try_get("version")?,
        channel: row.try_get("channel")?,
        metadata: parse_json(&row.try_get::<String, _>("metadata")?)?,
        lease_epoch: row.try_get("lease_epoch")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
        started_at: opt_time("started_at")?,
        completed_at: opt_time("completed_at")?,
    })
}

fn event_from_row(row: &SqliteRow) -> Result<TicketEvent, StoreError> {
    Ok(TicketEvent {
        id: parse_uuid(&row.try_get::<String, _>("id")?)?,
        ticket_id: parse_uuid(&row.try_get::<String, _>("ticket_id")?)?,
        seq: row.try_get("seq")?,
        event_type: row.try_get("event_type")?,
        step_name: row.try_get("step_name")?,
        payload: parse_json(&row.try_get::<String, _>("payload")?)?,
        request_id: row.try_get("request_id")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
    })
}

async fn insert_event(
    conn: &mut SqliteConnection,
    ticket_id: Uuid,
    event: &NewEvent,
    checkpoint_step: Option<i64>,
) -> Result<TicketEvent, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO ticket_events (id, ticket_id, event_type, step_name, checkpoint_step, payload, request_id, \
         created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {EVENT_COLUMNS}"
    )))
    .bind(Uuid::now_v7().to_string())
    .bind(ticket_id.to_string())
    .bind(event.event_type.as_str())
    .bind(event.step_name.as_deref())
    .bind(checkpoint_step)
    .bind(event.payload.to_string())
    .bind(event.request_id.as_deref())
    .bind(now())
    .fetch_one(&mut *conn)
    .await?;
    event_from_row(&row)
}

/// The request id of the most recent outbox row of a ticket (see the PostgreSQL store).
async fn latest_request_id(conn: &mut SqliteConnection, ticket_id: Uuid) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT request_id FROM outbox WHERE ticket_id = ? AND request_id IS NOT NULL ORDER BY id DESC LIMIT 1",
    )
    .bind(ticket_id.to_string())
    .fetch_optional(&mut *conn)
    .await?)
}

/// An outbox row for `ticket_id`, due after `delay`.
async fn enqueue(
    conn: &mut SqliteConnection,
    ticket_id: Uuid,
    request_id: Option<&str>,
    delay: Duration,
) -> Result<(), StoreError> {
    let at = Utc::now();
    // The trace context of the ticket's latest enqueue is carried on, so a retry's spans join
    // the trace that created the ticket.
    sqlx::query(
        "INSERT INTO outbox (ticket_id, request_id, traceparent, available_at, created_at) VALUES (?1, ?2, \
         (SELECT o.traceparent FROM outbox o WHERE o.ticket_id = ?1 ORDER BY o.id DESC LIMIT 1), ?3, ?4)",
    )
    .bind(ticket_id.to_string())
    .bind(request_id)
    .bind(timestamp(
        at + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX),
    ))
    .bind(timestamp(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait]
impl TicketStore for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.write).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn create(&self, new: NewTicket) -> Result<(Ticket, bool), StoreError> {
        new.validate()?;
        let hash = content_hash(&new.customer_id, &new.subject, &new.body);
        let id = ticket_id(
            &new.customer_id,
            &new.subject,
            &new.body,
            new.idempotency_key.as_deref(),
        );
        let mut tx = self.begin().await?;
        let created_at = now();
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tickets (id, customer_id, subject, body, channel, metadata, content_hash, idempotency_key, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING RETURNING {TICKET_COLUMNS}"
        )))
        .bind(id.to_string())
        .bind(&new.customer_id)
        .bind(&new.subject)
        .bind(&new.body)
        .bind(new.channel_or_default())
        .bind(new.metadata_or_default().to_string())
        .bind(hash.to_string())
        .bind(new.idempotency_key.as_deref())
        .bind(&created_at)
        .bind(&created_at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            let (existing, existing_hash) = Self::fetch_ticket(&mut tx, id).await?.ok_or(StoreError::NotFound(id))?;
            tx.rollback().await?;
            if existing_hash != hash {
                return Err(StoreError::IdempotencyConflict(id));
            }
            return Ok((existing, false));
        };
        let ticket = ticket_from_row(&row)?;
        let created = NewEvent {
            event_type: EventType::Created,
            step_name: None,
            payload: json!({ "status": "pending", "channel": ticket.channel }),
            request_id: new.request_id.clone(),
        };
        insert_event(&mut tx, id, &created, None).await?;
        sqlx::query(
            "INSERT INTO outbox (ticket_id, request_id, traceparent, available_at, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(new.request_id.as_deref())
        .bind(new.traceparent.as_deref())
        .bind(&created_at)
        .bind(&created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((ticket, true))
    }

    async fn get(&self, id: Uuid) -> Result<Option<Ticket>, StoreError> {
        let mut conn = self.read.acquire().await?;
        Ok(Self::fetch_ticket(&mut conn, id).await?.map(|(t, _)| t))
    }

    async fn list(&self, query: &ListQuery) -> Result<TicketPage, StoreError> {
        let page_size = query.page_size.clamp(1, 100);
        let page = query.page.max(1);
        let filter = |builder: &mut QueryBuilder<sqlx::Sqlite>| {
            builder.push(" WHERE 1 = 1");
            if let Some(status) = query.status {
                builder.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(customer) = &query.customer_id {
                builder.push(" AND customer_id = ").push_bind(customer.clone());
            }
        };
        let mut count = QueryBuilder::new("SELECT count(*) FROM tickets");
        filter(&mut count);
        let total: i64 = count.build().fetch_one(&self.read).await?.try_get(0)?;
        let mut select = QueryBuilder::new(format!("SELECT {TICKET_COLUMNS} FROM tickets"));
        filter(&mut select);
        select
            .push(" ORDER BY created_at DESC, id LIMIT ")
            .push_bind(i64::from(page_size))
            .push(" OFFSET ")
            .push_bind(i64::from(page - 1) * i64::from(page_size));
        let rows = select.build().fetch_all(&self.read).await?;
        Ok(TicketPage {
            tickets: rows.iter().map(ticket_from_row).collect::<Result<_, _>>()?,
            total,
            page,
            page_size,
        })
    }

    async fn events(&self, id: Uuid) -> Result<Vec<TicketEvent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM ticket_events WHERE ticket_id = ? ORDER BY seq"
        )))
        .bind(id.to_string())
        .fetch_all(&self.read)
        .await?;
        if rows.is_empty() && self.get(id).await?.is_none() {
            return Err(StoreError::NotFound(id));
        }
        rows.iter().map(event_from_row).collect()
    }

    async fn append_event(&self, ticket_id: Uuid, event: NewEvent) -> Result<TicketEvent, StoreError> {
        let mut tx = self.begin().await?;
        let appended = insert_event(&mut tx, ticket_id, &event, None)
            .await
            .map_err(|e| match e {
                StoreError::Unavailable(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                    StoreError::NotFound(ticket_id)
                }
                other => other,
            })?;
        tx.commit().await?;
        Ok(appended)
    }

    async fn transition(&self, id: Uuid, expected_version: i64, change: Transition) -> Result<Ticket, StoreError> {
        let mut tx = self.begin().await?;
        let Some((current, _)) = Self::fetch_ticket(&mut tx, id).await? else {
            return Err(StoreError::NotFound(id));
        };
        if current.version != expected_version {
            return Err(StoreError::Conflict {
                id,
                message: format!("expected version {expected_version}, found {}", current.version),
            });
        }
        let at = now();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE tickets SET status = ?1, version = version + 1, result = COALESCE(?2, result), \
                 attempt_count = CASE WHEN ?7 THEN 0 ELSE attempt_count END + ?3, \
                 worker_id = CASE WHEN ?1 = 'processing' THEN worker_id ELSE NULL END, \
                 lease_expires_at = CASE WHEN ?1 = 'processing' THEN lease_expires_at ELSE NULL END, \
                 started_at = CASE WHEN ?1 = 'processing' THEN COALESCE(started_at, ?4) ELSE started_at END, \
                 completed_at = CASE WHEN ?1 IN ('completed', 'failed_permanent') THEN ?4 \
                                     WHEN ?1 IN ('pending', 'processing') THEN NULL ELSE completed_at END, \
                 updated_at = ?4 \
             WHERE id = ?5 AND version = ?6 RETURNING {TICKET_COLUMNS}"
        )))
        .bind(change.to.as_str())
        .bind(change.result.as_ref().map(ToString::to_string))
        .bind(i32::from(change.count_attempt))
        .bind(&at)
        .bind(id.to_string())
        .bind(expected_version)
        .bind(change.reset_attempts)
        .fetch_one(&mut *tx)
        .await?;
        let ticket = ticket_from_row(&row)?;
        let status_change = NewEvent {
            event_type: EventType::StatusChange,
            step_name: None,
            payload: json!({ "from": current.status.as_str(), "to": change.to.as_str(), "attempt_count": ticket.attempt_count }),
            request_id: change.request_id.clone(),
        };
        insert_event(&mut tx, id, &status_change, None).await?;
        for event in &change.events {
            insert_event(&mut tx, id, event, None).await?;
        }
        if let Some(delay) = change.enqueue_after {
            enqueue(&mut tx, id, change.request_id.as_deref(), delay).await?;
        }
        tx.commit().await?;
        Ok(ticket)
    }

    async fn heartbeat(&self, fence: Fence, lease: Duration) -> Result<bool, StoreError> {
        let at = Utc::now();
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE tickets SET lease_expires_at = ?3, heartbeat_at = ?4 \
             WHERE id = ?1 AND lease_epoch = ?2 AND status = 'processing'",
        )
        .bind(fence.ticket_id.to_string())
        .bind(fence.epoch)
        .bind(timestamp(
            at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX),
        ))
        .bind(timestamp(at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, fence: Fence, reason: &str, delay: Duration) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE tickets SET status = 'pending', worker_id = NULL, lease_expires_at = NULL, \
             version = version + 1, updated_at = ?3 \
             WHERE id = ?1 AND lease_epoch = ?2 AND status = 'processing'",
        )
        .bind(fence.ticket_id.to_string())
        .bind(fence.epoch)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let request_id = latest_request_id(&mut tx, fence.ticket_id).await?;
        let event = NewEvent {
            request_id: request_id.clone(),
            ..NewEvent::new(
                EventType::StatusChange,
                json!({ "from": "processing", "to": "pending", "released": reason }),
            )
        };
        insert_event(&mut tx, fence.ticket_id, &event, None).await?;
        enqueue(&mut tx, fence.ticket_id, request_id.as_deref(), delay).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn claim_outbox(&self, limit: u32, visibility: Duration) -> Result<Vec<OutboxMessage>, StoreError> {
        let at = Utc::now();
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "SELECT o.id, o.ticket_id, o.request_id, o.traceparent, t.attempt_count FROM outbox o \
             JOIN tickets t ON t.id = o.ticket_id \
             WHERE o.sent_at IS NULL AND o.available_at <= ?1 ORDER BY o.available_at, o.id LIMIT ?2",
        )
        .bind(timestamp(at))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let hidden_until = timestamp(at + chrono::Duration::from_std(visibility).unwrap_or(chrono::Duration::MAX));
        let mut claimed = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            sqlx::query("UPDATE outbox SET available_at = ?1, claimed_at = ?3 WHERE id = ?2")
                .bind(&hidden_until)
                .bind(id)
                .bind(timestamp(at))
                .execute(&mut *tx)
                .await?;
            claimed.push(OutboxMessage {
                id,
                ticket_id: parse_uuid(&r.try_get::<String, _>("ticket_id")?)?,
                request_id: r.try_get("request_id")?,
                traceparent: r.try_get("traceparent")?,
                attempt: r.try_get("attempt_count")?,
            });
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<(), StoreError> {
        let sent_at = now();
        let mut tx = self.begin().await?;
        for id in ids {
            sqlx::query("UPDATE outbox SET sent_at = ?1 WHERE id = ?2")
                .bind(&sent_at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn sweep(&self, quiet_for: Duration, limit: u32) -> Result<u64, StoreError> {
        let at = Utc::now();
        let quiet_since = timestamp(at - chrono::Duration::from_std(quiet_for).unwrap_or(chrono::Duration::MAX));
        let at = timestamp(at);
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO outbox (ticket_id, request_id, traceparent, available_at, created_at) \
             SELECT t.id, \
                 (SELECT o.request_id FROM outbox o WHERE o.ticket_id = t.id ORDER BY o.id DESC LIMIT 1), \
                 (SELECT o.traceparent FROM outbox o WHERE o.ticket_id = t.id ORDER BY o.id DESC LIMIT 1), \
                 ?1, ?1 FROM tickets t \
             WHERE (t.status = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.ticket_id = t.id AND \
                       (o.sent_at IS NULL OR o.sent_at > ?2))) \
                OR (t.status = 'processing' AND (t.lease_expires_at IS NULL OR t.lease_expires_at < ?1) \
                    AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.ticket_id = t.id AND \
                       (o.sent_at IS NULL OR o.sent_at > t.lease_expires_at))) \
             ORDER BY t.created_at LIMIT ?3",
        )
        .bind(&at)
        .bind(&quiet_since)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        let at = Utc::now();
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM tickets WHERE status = 'pending') AS pending, \
                    (SELECT min(created_at) FROM tickets WHERE status = 'pending') AS oldest, \
                    (SELECT count(*) FROM outbox WHERE sent_at IS NULL AND available_at <= ?1) AS due, \
                    (SELECT min(available_at) FROM outbox WHERE sent_at IS NULL AND available_at <= ?1) AS lag",
        )
        .bind(timestamp(at))
        .fetch_one(&self.read)
        .await?;
        let age = |name: &str| -> Result<f64, StoreError> {
            Ok(match row.try_get::<Option<String>, _>(name)? {
                Some(t) => (at - parse_time(&t)?).num_milliseconds().max(0) as f64 / 1000.0,
                None => 0.0,
            })
        };
        Ok(Backlog {
            pending: row.try_get("pending")?,
            oldest_pending_seconds: age("oldest")?,
            outbox_due: row.try_get("due")?,
            outbox_lag_seconds: age("lag")?,
        })
    }

    async fn claim(&self, id: Uuid, worker_id: &str, lease: Duration) -> Result<Option<(Ticket, Fence)>, StoreError> {
        let mut tx = self.begin().await?;
        let at = Utc::now();
        let expires = at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let Some((current, _)) = Self::fetch_ticket(&mut tx, id).await? else {
            return Err(StoreError::NotFound(id));
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE tickets SET status = 'processing', worker_id = ?2, lease_epoch = lease_epoch + 1, \
                 lease_expires_at = ?3, heartbeat_at = ?4, version = version + 1, \
                 started_at = COALESCE(started_at, ?4), completed_at = NULL, updated_at = ?4 \
             WHERE id = ?1 AND ((status = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox o \
                     WHERE o.ticket_id = ?1 AND o.sent_at IS NULL AND o.claimed_at IS NULL AND o.available_at > ?4)) OR \
                 (status = 'processing' AND (lease_expires_at IS NULL OR lease_expires_at < ?4))) \
             RETURNING {TICKET_COLUMNS}"
        )))
        .bind(id.to_string())
        .bind(worker_id)
        .bind(timestamp(expires))
        .bind(timestamp(at))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let ticket = ticket_from_row(&row)?;
        if current.status == TicketStatus::Processing {
            metrics::counter!("lease_takeovers_total").increment(1);
        }
        let event = NewEvent {
            request_id: latest_request_id(&mut tx, id).await?,
            ..super::model::claim_event(current.status.as_str(), worker_id, &ticket)
        };
        insert_event(&mut tx, id, &event, None).await?;
        tx.commit().await?;
        let fence = Fence {
            ticket_id: id,
            epoch: ticket.lease_epoch,
        };
        Ok(Some((ticket, fence)))
    }

    fn checkpointer(&self, fence: Option<Fence>) -> Arc<dyn Checkpointer> {
        Arc::new(SqliteCheckpointer {
            store: self.clone(),
            fence,
            last_put: Mutex::new(Some(Instant::now())),
        })
    }

    fn history(&self) -> Arc<dyn HistorySource> {
        Arc::new(self.clone())
    }
}

#[async_trait]
impl HistorySource for SqliteStore {
    async fn recent_tickets(
        &self,
        customer_id: &str,
        except_ticket: &str,
        limit: usize,
    ) -> Result<Vec<PastTicket>, Box<dyn std::error::Error + Send + Sync>> {
        let rows = sqlx::query(
            "SELECT id, subject, status, created_at FROM tickets WHERE customer_id = ? AND id <> ? \
             ORDER BY created_at DESC LIMIT ?",
        )
        .bind(customer_id)
        .bind(except_ticket)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PastTicket {
                    id: r.try_get("id")?,
                    subject: r.try_get("subject")?,
                    status: r.try_get("status")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}

struct SqliteCheckpointer {
    store: SqliteStore,
    fence: Option<Fence>,
    last_put: Mutex<Option<Instant>>,
}

fn storage(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> CheckpointError {
    CheckpointError::storage(error)
}

fn checkpoint_from_row(row: &SqliteRow) -> Result<Checkpoint, CheckpointError> {
    let text = |name: &str| -> Result<String, CheckpointError> { row.try_get(name).map_err(storage) };
    let opt = |name: &str| -> Result<Option<String>, CheckpointError> { row.try_get(name).map_err(storage) };
    let json = |t: Option<String>| -> Result<Option<serde_json::Value>, CheckpointError> {
        t.map(|t| serde_json::from_str(&t).map_err(storage)).transpose()
    };
    let uuid = |t: String| Uuid::parse_str(&t).map_err(storage);
    Ok(Checkpoint {
        thread_id: text("thread_id")?.into(),
        id: uuid(text("checkpoint_id")?)?,
        parent_id: opt("parent_id")?.map(uuid).transpose()?,
        step: u64::try_from(row.try_get::<i64, _>("step").map_err(storage)?).map_err(storage)?,
        completed_node: opt("completed_node")?.map(Into::into),
        next_node: opt("next_node")?.map(Into::into),
        state: serde_json::value::RawValue::from_string(text("state")?).map_err(storage)?,
        graph_version: text("graph_version")?.into(),
        interrupt: json(opt("interrupt")?)?,
        metadata: json(Some(text("metadata")?))?.unwrap_or_default(),
        created_at: parse_time(&text("created_at")?).map_err(storage)?,
    })
}

#[async_trait]
impl Checkpointer for SqliteCheckpointer {
    async fn put(&self, checkpoint: Checkpoint) -> Result<(), CheckpointError> {
        let step = i64::try_from(checkpoint.step).map_err(storage)?;
        let mut tx = self.store.begin().await.map_err(storage)?;
        if let Some(fence) = self.fence {
            // BEGIN IMMEDIATE holds the write lock: no claim can change the epoch meanwhile.
            let epoch: Option<i64> = sqlx::query_scalar("SELECT lease_epoch FROM tickets WHERE id = ?")
                .bind(fence.ticket_id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(storage)?;
            if epoch != Some(fence.epoch) {
                return Err(CheckpointError::Fenced(format!(
                    "ticket {} is at lease epoch {epoch:?}, this run holds {}",
                    fence.ticket_id, fence.epoch
                )));
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO workflow_checkpoints (thread_id, step, checkpoint_id, parent_id, completed_node, next_node, \
             state, graph_version, interrupt, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (thread_id, step) DO NOTHING",
        )
        .bind(&*checkpoint.thread_id)
        .bind(step)
        .bind(checkpoint.id.to_string())
        .bind(checkpoint.parent_id.map(|p| p.to_string()))
        .bind(checkpoint.completed_node.as_deref())
        .bind(checkpoint.next_node.as_deref())
        .bind(checkpoint.state.get())
        .bind(&*checkpoint.graph_version)
        .bind(checkpoint.interrupt.as_ref().map(ToString::to_string))
        .bind(checkpoint.metadata.to_string())
        .bind(timestamp(checkpoint.created_at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if inserted.rows_affected() == 0 {
            return Err(CheckpointError::Conflict {
                thread_id: checkpoint.thread_id.to_string(),
                step: checkpoint.step,
            });
        }
        if let (Some(fence), Some(node)) = (self.fence, &checkpoint.completed_node) {
            let duration = self
                .last_put
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map(|t| t.elapsed());
            let event = super::model::step_complete_event(&checkpoint, node, duration);
            insert_event(&mut tx, fence.ticket_id, &event, Some(step))
                .await
                .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)?;
        *self.last_put.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok(())
    }

    async fn latest(&self, thread_id: &str) -> Result<Option<Checkpoint>, CheckpointError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM workflow_checkpoints WHERE thread_id = ? ORDER BY step DESC LIMIT 1"
        )))
        .bind(thread_id)
        .fetch_optional(&self.store.read)
        .await
        .map_err(storage)?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    async fn history(&self, thread_id: &str, limit: usize) -> Result<Vec<Checkpoint>, CheckpointError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM workflow_checkpoints WHERE thread_id = ? ORDER BY step DESC LIMIT ?"
        )))
        .bind(thread_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.store.read)
        .await
        .map_err(storage)?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    async fn delete_thread(&self, thread_id: &str) -> Result<u64, CheckpointError> {
        let mut tx = self.store.begin().await.map_err(storage)?;
        let done = sqlx::query("DELETE FROM workflow_checkpoints WHERE thread_id = ?")
            .bind(thread_id)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(done.rows_affected())
    }

    async fn prune(&self, thread_id: &str, keep_last: usize) -> Result<u64, CheckpointError> {
        let keep = i64::try_from(keep_last.max(1)).unwrap_or(i64::MAX);
        let mut tx = self.store.begin().await.map_err(storage)?;
        let done = sqlx::query(
            "DELETE FROM workflow_checkpoints WHERE thread_id = ?1 AND step < ( \
                 SELECT step FROM workflow_checkpoints WHERE thread_id = ?1 ORDER BY step DESC LIMIT 1 OFFSET ?2 - 1)",
        )
        .bind(thread_id)
        .bind(keep)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(done.rows_affected())
    }
}
