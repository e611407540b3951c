//! The PostgreSQL (and Supabase) store.

use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow, PgSslMode};
use sqlx::{PgConnection, QueryBuilder, Row};
use ticketflow_graph::{Checkpoint, CheckpointError, Checkpointer};
use uuid::Uuid;

use super::group_commit::{Answer, CheckpointWrite, Claim, Completion, GroupCommit, Job, Limits, Written};
use super::{
    Backlog, EventType, Fence, ListQuery, NewEvent, NewTicket, OutboxMessage, StoreError, Ticket, TicketEvent,
    TicketPage, TicketStatus, TicketStore, Transition, content_hash, ticket_id,
};
use crate::{HistorySource, PastTicket};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The schema the tables live in (created if missing; default `ticketflow`). A schema of
    /// its own keeps the tables, and `_sqlx_migrations`, out of Supabase's public REST API.
    pub schema: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a connection; short, so that an outage answers fast.
    pub acquire_timeout: Duration,
    /// Prepared-statement caching. Turn off behind a transaction pooler (Supabase's port
    /// 6543, PgBouncer in transaction mode), which cannot keep prepared statements.
    pub statement_cache: bool,
    /// Group commit: how many checkpoint writes may be in flight at once, each committing
    /// whatever concurrent runs have queued meanwhile in one transaction (see
    /// [`checkpoint_batch`](Self::checkpoint_batch)). Fewer means bigger batches under load,
    /// more means less queueing at low concurrency; 3 measured best on 2 cores.
    pub checkpoint_writers: usize,
    /// The most writes (checkpoints, and the claims and completions that ride along) one
    /// transaction carries; 1 turns group commit off (every write its own transaction).
    /// Either way a run's `put` returns once its checkpoint committed.
    pub checkpoint_batch: usize,
    /// The most bytes (about) one batched statement carries over TLS. The default keeps a
    /// statement inside one TLS record: sqlx 0.9.0 leaves Nagle's algorithm on, so a statement
    /// that spans two records waits for the server's delayed ACK (~40 ms on Linux). Without
    /// TLS there is no limit.
    pub checkpoint_batch_bytes: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            schema: "ticketflow".into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(2),
            statement_cache: true,
            checkpoint_writers: 3,
            checkpoint_batch: 64,
            checkpoint_batch_bytes: 15 * 1024,
        }
    }
}

/// Tickets, events, checkpoints and outbox in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    schema: String,
    checkpoints: GroupCommit,
}

const TICKET_COLUMNS: &str = "id, customer_id, subject, body, status, result, attempt_count, version, channel, \
                              metadata, lease_epoch, created_at, started_at, completed_at";
const EVENT_COLUMNS: &str = "id, ticket_id, seq, event_type, step_name, payload, request_id, created_at";
/// [`TICKET_COLUMNS`] qualified with `t.`, for statements that join `tickets t` with a CTE.
static TICKET_COLUMNS_OF_T: LazyLock<String> = LazyLock::new(|| {
    TICKET_COLUMNS
        .split(", ")
        .map(|c| format!("t.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
});
const CHECKPOINT_COLUMNS: &str = "thread_id, step, checkpoint_id, parent_id, completed_node, next_node, \
                                  state::text AS state, graph_version, interrupt, metadata, created_at";

/// TLS on a loopback connection protects nothing and costs CPU on both ends, so unless
/// `sslmode` or a certificate is set (in the URL or `PGSSLMODE`, `PGSSLROOTCERT`,
/// `PGSSLCERT`), connections to localhost, a loopback address or a Unix socket go without it.
/// (A local server that only accepts TLS needs `sslmode=require`.)
fn without_tls_on_loopback(url: &str, options: PgConnectOptions, tls_env: bool) -> PgConnectOptions {
    let explicit = tls_env
        || url.split_once('?').is_some_and(|(_, query)| {
            query.split('&').any(|p| {
                [
                    "sslmode=",
                    "ssl-mode=",
                    "sslrootcert=",
                    "ssl-root-cert=",
                    "sslcert=",
                    "ssl-cert=",
                ]
                .iter()
                .any(|key| p.starts_with(key))
            })
        });
    let host = options.get_host();
    let loopback = options.get_socket().is_some()
        || host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback && !explicit {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    }
}

fn valid_schema(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Validation {
            field: "schema",
            message: "must be a lowercase SQL identifier".into(),
        })
    }
}

impl PgStore {
    /// Connects (lazily: the pool opens connections on first use, so the API can start while
    /// the database is down and report it in /health).
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        valid_schema(&options.schema)?;
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Validation {
                field: "DATABASE_URL",
                message: e.to_string(),
            })?
            .options([("search_path", options.schema.as_str())])
            .statement_cache_capacity(if options.statement_cache { 256 } else { 0 });
        let tls_env = ["PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
        let connect = without_tls_on_loopback(url, connect, tls_env);
        // Without TLS a batch of any size goes out in one write (see `checkpoint_batch_bytes`).
        let batch_bytes = match connect.get_ssl_mode() {
            PgSslMode::Disable => usize::MAX,
            _ => options.checkpoint_batch_bytes,
        };
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect.clone());
        // The checkpoint writers get connections of their own, one each, where prepared
        // statements always run their generic plan: a batch's arrays change length with
        // every call, which makes PostgreSQL plan a batch with claims or completions afresh
        // each time (~0.5 ms) when left to choose. A generic plan is made once per connection,
        // though, and one made while `tickets` was nearly empty scans it whole, for ever after
        // (until an ANALYZE, which may never come): every table these statements touch is
        // reached through an index, so sequential scans are ruled out on these connections.
        // Behind a transaction pooler nothing is prepared, and nothing is set.
        let writer_connect = if options.statement_cache {
            connect.options([("plan_cache_mode", "force_generic_plan"), ("enable_seqscan", "off")])
        } else {
            connect
        };
        let writer_pool = PgPoolOptions::new()
            .max_connections(u32::try_from(options.checkpoint_writers.max(1)).unwrap_or(u32::MAX))
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(writer_connect);
        Ok(Self {
            checkpoints: GroupCommit::new(
                pool.clone(),
                writer_pool,
                options.checkpoint_writers,
                Limits {
                    rows: options.checkpoint_batch,
                    bytes: batch_bytes,
                },
            ),
            pool,
            schema: options.schema,
        })
    }

    /// The connection pool, for callers that need their own queries.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn fetch_ticket(conn: &mut PgConnection, id: Uuid) -> Result<Option<(Ticket, Uuid)>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TICKET_COLUMNS}, content_hash FROM tickets WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|r| Ok((ticket_from_row(&r)?, r.try_get("content_hash")?)))
            .transpose()
    }

    /// Why a write guarded by `expected_version` changed nothing: the ticket is gone, or at
    /// another version (or, if even this read fails, the database is unavailable).
    async fn refused(&self, id: Uuid, expected_version: i64) -> StoreError {
        match self.get(id).await {
            Ok(None) => StoreError::NotFound(id),
            Ok(Some(t)) => StoreError::Conflict {
                id,
                message: format!("expected version {expected_version}, found {}", t.version),
            },
            Err(error) => error,
        }
    }

    /// A claim in a transaction of its own (see [`TicketStore::claim`]): the ticket as claimed
    /// and whether it was a takeover; `None` when there is none that can be claimed.
    async fn claim_alone(&self, claim: &Claim) -> Result<Option<(Ticket, bool)>, StoreError> {
        let Claim {
            ticket_id: id,
            worker_id,
            lease,
        } = claim;
        let id = *id;
        // One statement, so one round trip: the lock, the update and the `status_change` event
        // (the payload of `model::claim_event`, built here from the row it describes, with the
        // request id of the ticket's latest outbox row) commit together. The retry check's
        // conditions are wrapped in `IS TRUE` so that any plan reads the ticket's own outbox
        // rows (`outbox_ticket_idx`), never every row due later (`outbox_due_idx`), which a
        // generic plan made on a near-empty table would otherwise do for ever.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH old AS (SELECT status FROM tickets WHERE id = $1 AND ((status = 'pending' AND NOT EXISTS \
                 (SELECT 1 FROM outbox o WHERE o.ticket_id = $1 \
                     AND (o.sent_at IS NULL AND o.claimed_at IS NULL AND o.available_at > now()) IS TRUE)) OR \
                 (status = 'processing' AND (lease_expires_at IS NULL OR lease_expires_at < now()))) FOR UPDATE), \
             claimed AS (UPDATE tickets t SET status = 'processing', worker_id = $2, lease_epoch = t.lease_epoch + 1, \
                 lease_expires_at = now() + make_interval(secs => $3), heartbeat_at = now(), \
                 version = t.version + 1, \
                 started_at = COALESCE(t.started_at, now()), completed_at = NULL, updated_at = now() \
                 FROM old WHERE t.id = $1 RETURNING {}, old.status AS from_status), \
             recorded AS (INSERT INTO ticket_events (id, ticket_id, event_type, payload, request_id) \
                 SELECT $4, $1, 'status_change', jsonb_build_object('from', from_status, 'to', 'processing', \
                     'worker_id', $2::text, 'lease_epoch', lease_epoch, 'takeover', from_status = 'processing'), \
                     (SELECT request_id FROM outbox WHERE ticket_id = $1 AND request_id IS NOT NULL \
                      ORDER BY id DESC LIMIT 1) \
                 FROM claimed) \
             SELECT * FROM claimed",
            *TICKET_COLUMNS_OF_T
        )))
        .bind(id)
        .bind(worker_id)
        .bind(lease.as_secs_f64())
        .bind(Uuid::now_v7())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let takeover = row.try_get::<String, _>("from_status")? == TicketStatus::Processing.as_str();
        Ok(Some((ticket_from_row(&row)?, takeover)))
    }
}

/// The checkpoint writer stopped (its runtime shut down) before saying what became of a write
/// it took: it may or may not have committed.
fn writer_lost() -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol(
        "the checkpoint writer stopped before answering".into(),
    ))
}

fn ticket_from_row(row: &PgRow) -> Result<Ticket, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(Ticket {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        result: row.try_get("result")?,
        attempt_count: row.try_get("attempt_count")?,
        version: row.try_get("version")?,
        channel: row.try_get("channel")?,
        metadata: row.try_get("metadata")?,
        lease_epoch: row.try_get("lease_epoch")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
    })
}

fn event_from_row(row: &PgRow) -> Result<TicketEvent, StoreError> {
    Ok(TicketEvent {
        id: row.try_get("id")?,
        ticket_id: row.try_get("ticket_id")?,
        seq: row.try_get("seq")?,
        event_type: row.try_get("event_type")?,
        step_name: row.try_get("step_name")?,
        payload: row.try_get("payload")?,
        request_id: row.try_get("request_id")?,
        created_at: row.try_get("created_at")?,
    })
}

async fn insert_event(
    conn: &mut PgConnection,
    ticket_id: Uuid,
    event: &NewEvent,
    checkpoint_step: Option<i64>,
) -> Result<TicketEvent, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO ticket_events (id, ticket_id, event_type, step_name, checkpoint_step, payload, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {EVENT_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(ticket_id)
    .bind(event.event_type.as_str())
    .bind(event.step_name.as_deref())
    .bind(checkpoint_step)
    .bind(&event.payload)
    .bind(event.request_id.as_deref())
    .fetch_one(&mut *conn)
    .await?;
    event_from_row(&row)
}

/// The request id of the most recent outbox row of a ticket: the request that last woke it,
/// carried onto claim and release events and onto re-enqueued rows.
async fn latest_request_id(conn: &mut PgConnection, ticket_id: Uuid) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT request_id FROM outbox WHERE ticket_id = $1 AND request_id IS NOT NULL ORDER BY id DESC LIMIT 1",
    )
    .bind(ticket_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// An outbox row for `ticket_id`, due after `delay`.
async fn enqueue(
    conn: &mut PgConnection,
    ticket_id: Uuid,
    request_id: Option<&str>,
    delay: Duration,
) -> Result<(), StoreError> {
    // The trace context of the ticket's latest enqueue is carried on, so a retry's spans join
    // the trace that created the ticket.
    sqlx::query(
        "INSERT INTO outbox (ticket_id, request_id, traceparent, available_at) VALUES ($1, $2, \
         (SELECT o.traceparent FROM outbox o WHERE o.ticket_id = $1 ORDER BY o.id DESC LIMIT 1), \
         now() + make_interval(secs => $3))",
    )
    .bind(ticket_id)
    .bind(request_id)
    .bind(delay.as_secs_f64())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait]
impl TicketStore for PgStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        // The schema must exist before the migrator creates its table in it.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            self.schema
        )))
        .execute(&self.pool)
        .await?;
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
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
        // One statement, so one round trip: the ticket, its `created` event and its outbox row
        // commit together, or nothing is written when the id exists already.
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH created AS (INSERT INTO tickets (id, customer_id, subject, body, channel, metadata, content_hash, \
                 idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING \
                 RETURNING {TICKET_COLUMNS}), \
             recorded AS (INSERT INTO ticket_events (id, ticket_id, event_type, payload, request_id) \
                 SELECT $9, id, 'created', jsonb_build_object('status', 'pending', 'channel', channel), $10 \
                 FROM created), \
             queued AS (INSERT INTO outbox (ticket_id, request_id, traceparent) SELECT id, $10, $11 FROM created) \
             SELECT * FROM created"
        )))
        .bind(id)
        .bind(&new.customer_id)
        .bind(&new.subject)
        .bind(&new.body)
        .bind(new.channel_or_default())
        .bind(new.metadata_or_default())
        .bind(hash)
        .bind(new.idempotency_key.as_deref())
        .bind(Uuid::now_v7())
        .bind(new.request_id.as_deref())
        .bind(new.traceparent.as_deref())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = inserted {
            return Ok((ticket_from_row(&row)?, true));
        }
        // A concurrent or earlier create won; it committed before our insert returned.
        let mut conn = self.pool.acquire().await?;
        let (existing, existing_hash) = Self::fetch_ticket(&mut conn, id)
            .await?
            .ok_or(StoreError::NotFound(id))?;
        if existing_hash != hash {
            return Err(StoreError::IdempotencyConflict(id));
        }
        Ok((existing, false))
    }

    async fn get(&self, id: Uuid) -> Result<Option<Ticket>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(Self::fetch_ticket(&mut conn, id).await?.map(|(t, _)| t))
    }

    async fn list(&self, query: &ListQuery) -> Result<TicketPage, StoreError> {
        let page_size = query.page_size.clamp(1, 100);
        let page = query.page.max(1);
        let filter = |builder: &mut QueryBuilder<sqlx::Postgres>| {
            builder.push(" WHERE TRUE");
            if let Some(status) = query.status {
                builder.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(customer) = &query.customer_id {
                builder.push(" AND customer_id = ").push_bind(customer.clone());
            }
        };
        let mut count = QueryBuilder::new("SELECT count(*) FROM tickets");
        filter(&mut count);
        let total: i64 = count.build().fetch_one(&self.pool).await?.try_get(0)?;
        let mut select = QueryBuilder::new(format!("SELECT {TICKET_COLUMNS} FROM tickets"));
        filter(&mut select);
        select
            .push(" ORDER BY created_at DESC, id LIMIT ")
            .push_bind(i64::from(page_size))
            .push(" OFFSET ")
            .push_bind(i64::from(page - 1) * i64::from(page_size));
        let rows = select.build().fetch_all(&self.pool).await?;
        Ok(TicketPage {
            tickets: rows.iter().map(ticket_from_row).collect::<Result<_, _>>()?,
            total,
            page,
            page_size,
        })
    }

    async fn events(&self, id: Uuid) -> Result<Vec<TicketEvent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM ticket_events WHERE ticket_id = $1 ORDER BY seq"
        )))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() && self.get(id).await?.is_none() {
            return Err(StoreError::NotFound(id));
        }
        rows.iter().map(event_from_row).collect()
    }

    async fn append_event(&self, ticket_id: Uuid, event: NewEvent) -> Result<TicketEvent, StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_event(&mut conn, ticket_id, &event, None)
            .await
            .map_err(|e| match e {
                StoreError::Unavailable(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                    StoreError::NotFound(ticket_id)
                }
                other => other,
            })
    }

    async fn transition(&self, id: Uuid, expected_version: i64, change: Transition) -> Result<Ticket, StoreError> {
        // One statement, so one round trip: the update, its `status_change` event (built from
        // the row it describes), the transition's own events after it, in order, and the retry's
        // outbox row (carrying the trace context of the ticket's latest one) commit together.
        let events = &change.events;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH old AS (SELECT status FROM tickets WHERE id = $1 AND version = $5 FOR UPDATE), \
             moved AS (UPDATE tickets t SET status = $2, version = t.version + 1, result = COALESCE($3, t.result), \
                 attempt_count = CASE WHEN $6 THEN 0 ELSE t.attempt_count END + $4, \
                 worker_id = CASE WHEN $2 = 'processing' THEN t.worker_id ELSE NULL END, \
                 lease_expires_at = CASE WHEN $2 = 'processing' THEN t.lease_expires_at ELSE NULL END, \
                 started_at = CASE WHEN $2 = 'processing' THEN COALESCE(t.started_at, now()) ELSE t.started_at END, \
                 completed_at = CASE WHEN $2 IN ('completed', 'failed_permanent') THEN now() \
                                     WHEN $2 IN ('pending', 'processing') THEN NULL ELSE t.completed_at END, \
                 updated_at = now() \
                 FROM old WHERE t.id = $1 AND t.version = $5 \
                 RETURNING {}, old.status AS from_status), \
             recorded AS (INSERT INTO ticket_events (id, ticket_id, event_type, step_name, payload, request_id) \
                 SELECT e.id, $1, e.event_type, e.step_name, e.payload, e.request_id FROM ( \
                     SELECT 0::int8 AS ord, $7::uuid AS id, 'status_change'::text AS event_type, NULL::text AS step_name, \
                         jsonb_build_object('from', from_status, 'to', $2::text, 'attempt_count', attempt_count) \
                             AS payload, $8::text AS request_id \
                     FROM moved \
                     UNION ALL \
                     SELECT x.ord, x.id, x.event_type, x.step_name, x.payload::jsonb, x.request_id \
                     FROM moved, unnest($9::uuid[], $10::text[], $11::text[], $12::text[], $13::text[]) \
                         WITH ORDINALITY AS x(id, event_type, step_name, payload, request_id, ord) \
                 ) e ORDER BY e.ord), \
             queued AS (INSERT INTO outbox (ticket_id, request_id, traceparent, available_at) \
                 SELECT $1, $8, (SELECT o.traceparent FROM outbox o WHERE o.ticket_id = $1 ORDER BY o.id DESC LIMIT 1), \
                     now() + make_interval(secs => $14) FROM moved WHERE $14::float8 IS NOT NULL) \
             SELECT * FROM moved",
            *TICKET_COLUMNS_OF_T
        )))
        .bind(id)
        .bind(change.to.as_str())
        .bind(change.result.as_ref())
        .bind(i32::from(change.count_attempt))
        .bind(expected_version)
        .bind(change.reset_attempts)
        .bind(Uuid::now_v7())
        .bind(change.request_id.as_deref())
        .bind(events.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.step_name.as_deref()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.payload.to_string()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.request_id.as_deref()).collect::<Vec<_>>())
        .bind(change.enqueue_after.map(|d| d.as_secs_f64()))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Err(self.refused(id, expected_version).await);
        };
        ticket_from_row(&row)
    }

    async fn finish(&self, id: Uuid, expected_version: i64, change: Transition) -> Result<(), StoreError> {
        // A plain completion (the end of nearly every run) commits with the checkpoints that
        // concurrent runs have queued: one transaction fewer per ticket under load.
        let plain_completion = change.to == TicketStatus::Completed
            && change.events.is_empty()
            && change.enqueue_after.is_none()
            && !change.count_attempt
            && !change.reset_attempts;
        if !plain_completion {
            return self.transition(id, expected_version, change).await.map(drop);
        }
        let completion = Completion {
            ticket_id: id,
            version: expected_version,
            result: change.result,
            request_id: change.request_id,
        };
        match self.checkpoints.ride_along(Job::Complete(completion)).await {
            Answer::Completed => Ok(()),
            Answer::Alone(Job::Complete(completion)) => {
                let change = Transition {
                    result: completion.result,
                    request_id: completion.request_id,
                    ..Transition::to(TicketStatus::Completed)
                };
                self.transition(id, expected_version, change).await.map(drop)
            }
            Answer::Refused => Err(self.refused(id, expected_version).await),
            Answer::Claimed(..) | Answer::Alone(Job::Claim(_)) | Answer::Lost => Err(writer_lost()),
        }
    }

    async fn heartbeat(&self, fence: Fence, lease: Duration) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tickets SET lease_expires_at = now() + make_interval(secs => $3), heartbeat_at = now() \
             WHERE id = $1 AND lease_epoch = $2 AND status = 'processing'",
        )
        .bind(fence.ticket_id)
        .bind(fence.epoch)
        .bind(lease.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, fence: Fence, reason: &str, delay: Duration) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE tickets SET status = 'pending', worker_id = NULL, lease_expires_at = NULL, \
             version = version + 1, updated_at = now() \
             WHERE id = $1 AND lease_epoch = $2 AND status = 'processing'",
        )
        .bind(fence.ticket_id)
        .bind(fence.epoch)
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
        let rows = sqlx::query(
            "WITH due AS (SELECT id FROM outbox WHERE sent_at IS NULL AND available_at <= now() \
                          ORDER BY available_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             UPDATE outbox o SET available_at = now() + make_interval(secs => $2), claimed_at = now() \
             FROM due, tickets t WHERE o.id = due.id AND t.id = o.ticket_id \
             RETURNING o.id, o.ticket_id, o.request_id, o.traceparent, t.attempt_count",
        )
        .bind(i64::from(limit))
        .bind(visibility.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxMessage {
                    id: r.try_get("id")?,
                    ticket_id: r.try_get("ticket_id")?,
                    request_id: r.try_get("request_id")?,
                    traceparent: r.try_get("traceparent")?,
                    attempt: r.try_get("attempt_count")?,
                })
            })
            .collect()
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn sweep(&self, quiet_for: Duration, limit: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "WITH stranded AS ( \
                 SELECT t.id FROM tickets t \
                 WHERE (t.status = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.ticket_id = t.id AND \
                           (o.sent_at IS NULL OR o.sent_at > now() - make_interval(secs => $1)))) \
                    OR (t.status = 'processing' AND (t.lease_expires_at IS NULL OR t.lease_expires_at < now()) \
                        AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.ticket_id = t.id AND \
                           (o.sent_at IS NULL OR o.sent_at > t.lease_expires_at))) \
                 ORDER BY t.created_at LIMIT $2 FOR UPDATE OF t SKIP LOCKED) \
             INSERT INTO outbox (ticket_id, request_id, traceparent) \
             SELECT s.id, \
                 (SELECT o.request_id FROM outbox o WHERE o.ticket_id = s.id ORDER BY o.id DESC LIMIT 1), \
                 (SELECT o.traceparent FROM outbox o WHERE o.ticket_id = s.id ORDER BY o.id DESC LIMIT 1) \
             FROM stranded s",
        )
        .bind(quiet_for.as_secs_f64())
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM tickets WHERE status = 'pending') AS pending, \
                    (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 FROM tickets \
                        WHERE status = 'pending') AS oldest, \
                    (SELECT count(*) FROM outbox WHERE sent_at IS NULL AND available_at <= now()) AS due, \
                    (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(available_at)), 0)::float8 FROM outbox \
                        WHERE sent_at IS NULL AND available_at <= now()) AS lag",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Backlog {
            pending: row.try_get("pending")?,
            oldest_pending_seconds: row.try_get("oldest")?,
            outbox_due: row.try_get("due")?,
            outbox_lag_seconds: row.try_get("lag")?,
        })
    }

    async fn claim(&self, id: Uuid, worker_id: &str, lease: Duration) -> Result<Option<(Ticket, Fence)>, StoreError> {
        // The claim commits with the checkpoints that concurrent runs have queued: one
        // transaction fewer per ticket under load.
        let claim = Claim {
            ticket_id: id,
            worker_id: worker_id.to_owned(),
            lease,
        };
        let claimed = match self.checkpoints.ride_along(Job::Claim(claim)).await {
            Answer::Claimed(ticket, takeover) => Some((*ticket, takeover)),
            Answer::Refused => None,
            Answer::Alone(Job::Claim(claim)) => self.claim_alone(&claim).await?,
            Answer::Completed | Answer::Alone(Job::Complete(_)) | Answer::Lost => return Err(writer_lost()),
        };
        let Some((ticket, takeover)) = claimed else {
            return if self.get(id).await?.is_some() {
                Ok(None)
            } else {
                Err(StoreError::NotFound(id))
            };
        };
        if takeover {
            metrics::counter!("lease_takeovers_total").increment(1);
        }
        let fence = Fence {
            ticket_id: id,
            epoch: ticket.lease_epoch,
        };
        Ok(Some((ticket, fence)))
    }

    fn checkpointer(&self, fence: Option<Fence>) -> Arc<dyn Checkpointer> {
        Arc::new(PgCheckpointer {
            pool: self.pool.clone(),
            writer: self.checkpoints.clone(),
            fence,
            last_put: Mutex::new(Some(Instant::now())),
        })
    }

    fn history(&self) -> Arc<dyn HistorySource> {
        Arc::new(self.clone())
    }
}

#[async_trait]
impl HistorySource for PgStore {
    async fn recent_tickets(
        &self,
        customer_id: &str,
        except_ticket: &str,
        limit: usize,
    ) -> Result<Vec<PastTicket>, Box<dyn std::error::Error + Send + Sync>> {
        let except = Uuid::parse_str(except_ticket).unwrap_or(Uuid::nil());
        let rows = sqlx::query(
            "SELECT id, subject, status, created_at FROM tickets WHERE customer_id = $1 AND id <> $2 \
             ORDER BY created_at DESC LIMIT $3",
        )
        .bind(customer_id)
        .bind(except)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: Uuid = r.try_get("id")?;
                let created_at: DateTime<Utc> = r.try_get("created_at")?;
                Ok(PastTicket {
                    id: id.to_string(),
                    subject: r.try_get("subject")?,
                    status: r.try_get("status")?,
                    created_at: created_at.to_rfc3339(),
                })
            })
            .collect()
    }
}

/// Checkpoints in `workflow_checkpoints`; see [`TicketStore::checkpointer`].
struct PgCheckpointer {
    pool: PgPool,
    writer: GroupCommit,
    fence: Option<Fence>,
    /// When the previous checkpoint of this run was written, or the checkpointer made (as
    /// the run starts): a step's duration is the time since (node time plus the write).
    last_put: Mutex<Option<Instant>>,
}

fn storage(error: sqlx::Error) -> CheckpointError {
    CheckpointError::storage(error)
}

fn checkpoint_from_row(row: &PgRow) -> Result<Checkpoint, CheckpointError> {
    let get_str = |name: &str| -> Result<Option<String>, CheckpointError> { row.try_get(name).map_err(storage) };
    let state: String = row.try_get("state").map_err(storage)?;
    Ok(Checkpoint {
        thread_id: row.try_get::<String, _>("thread_id").map_err(storage)?.into(),
        id: row.try_get("checkpoint_id").map_err(storage)?,
        parent_id: row.try_get("parent_id").map_err(storage)?,
        step: u64::try_from(row.try_get::<i64, _>("step").map_err(storage)?).map_err(CheckpointError::storage)?,
        completed_node: get_str("completed_node")?.map(Into::into),
        next_node: get_str("next_node")?.map(Into::into),
        state: serde_json::value::RawValue::from_string(state).map_err(CheckpointError::storage)?,
        graph_version: row.try_get::<String, _>("graph_version").map_err(storage)?.into(),
        interrupt: row.try_get("interrupt").map_err(storage)?,
        metadata: row.try_get("metadata").map_err(storage)?,
        created_at: row.try_get("created_at").map_err(storage)?,
    })
}

#[async_trait]
impl Checkpointer for PgCheckpointer {
    async fn put(&self, checkpoint: Checkpoint) -> Result<(), CheckpointError> {
        // Refused here, alone, rather than failing a whole batch later.
        i64::try_from(checkpoint.step).map_err(CheckpointError::storage)?;
        let event = match (self.fence, &checkpoint.completed_node) {
            (Some(_), Some(node)) => {
                let duration = self
                    .last_put
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .map(|t| t.elapsed());
                Some(super::model::step_complete_event(&checkpoint, node, duration))
            }
            _ => None,
        };
        let (thread_id, step) = (checkpoint.thread_id.clone(), checkpoint.step);
        let write = CheckpointWrite {
            checkpoint,
            fence: self.fence,
            event,
        };
        match self.writer.write(write).await? {
            Written::Saved => {
                *self.last_put.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                Ok(())
            }
            Written::Fenced { fence, epoch } => Err(CheckpointError::Fenced(format!(
                "ticket {} is at lease epoch {epoch:?}, this run holds {}",
                fence.ticket_id, fence.epoch
            ))),
            Written::Taken => Err(CheckpointError::Conflict {
                thread_id: thread_id.to_string(),
                step,
            }),
        }
    }

    async fn latest(&self, thread_id: &str) -> Result<Option<Checkpoint>, CheckpointError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM workflow_checkpoints WHERE thread_id = $1 ORDER BY step DESC LIMIT 1"
        )))
        .bind(thread_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    async fn history(&self, thread_id: &str, limit: usize) -> Result<Vec<Checkpoint>, CheckpointError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM workflow_checkpoints WHERE thread_id = $1 ORDER BY step DESC LIMIT $2"
        )))
        .bind(thread_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    async fn delete_thread(&self, thread_id: &str) -> Result<u64, CheckpointError> {
        let done = sqlx::query("DELETE FROM workflow_checkpoints WHERE thread_id = $1")
            .bind(thread_id)
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected())
    }

    async fn prune(&self, thread_id: &str, keep_last: usize) -> Result<u64, CheckpointError> {
        let keep = i64::try_from(keep_last.max(1)).unwrap_or(i64::MAX);
        let done = sqlx::query(
            "DELETE FROM workflow_checkpoints WHERE thread_id = $1 AND step < ( \
                 SELECT step FROM workflow_checkpoints WHERE thread_id = $1 ORDER BY step DESC OFFSET $2 - 1 LIMIT 1)",
        )
        .bind(thread_id)
        .bind(keep)
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str, env: bool) -> PgSslMode {
        let options = PgConnectOptions::from_str(url).unwrap();
        without_tls_on_loopback(url, options, env).get_ssl_mode()
    }

    #[test]
    fn loopback_goes_without_tls_unless_sslmode_is_given() {
        assert!(matches!(
            mode("postgres://u@127.0.0.1:5432/db", false),
            PgSslMode::Disable
        ));
        assert!(matches!(mode("postgres://u@localhost/db", false), PgSslMode::Disable));
        assert!(matches!(mode("postgres://u@[::1]/db", false), PgSslMode::Disable));
        assert!(matches!(mode("postgres://u@127.0.0.2/db", false), PgSslMode::Disable));
        assert!(!matches!(
            mode("postgres://u@127.0.0.1/db?sslrootcert=ca.pem", false),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://u@127.0.0.1/db?sslmode=require", false),
            PgSslMode::Require
        ));
        assert!(!matches!(mode("postgres://u@127.0.0.1/db", true), PgSslMode::Disable));
        assert!(!matches!(
            mode("postgres://u@db.example.com/db", false),
            PgSslMode::Disable
        ));
    }
}
