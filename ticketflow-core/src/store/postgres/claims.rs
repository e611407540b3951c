//! Leases on tickets in PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Row, SqlStr};
use uuid::Uuid;

use super::PgStore;
use super::db::Statement;
use super::group_commit::{Answer, Job, writer_lost};
use super::rows::ticket_from_json;
use super::sql::statement;
use crate::store::{ClaimStore, Fence, Released, StoreError, Ticket, TicketStatus};

/// The claim condition, on a ticket row `l` beside the lateral `retry` lookup of
/// [`RETRY_DUE_LATER`]: a `pending` ticket with no delayed retry still due, or a `processing`
/// one whose lease expired.
const CLAIMABLE: &str = "(l.status = 'pending' AND retry.later IS NULL) \
    OR (l.status = 'processing' AND (l.lease_expires_at IS NULL OR l.lease_expires_at < now()))";

/// A delayed retry of ticket `l` not yet due: an unclaimed, unsent outbox row due later. Its
/// conditions are wrapped in `IS TRUE` and it reads the ticket's own rows in
/// `outbox_ticket_idx` order, so that any plan, even a generic one made on near-empty tables,
/// reaches outbox rows by their ticket and never scans every row due later.
const RETRY_DUE_LATER: &str = "LEFT JOIN LATERAL (SELECT 1 AS later FROM {schema}.outbox o WHERE o.ticket_id = l.id \
    AND (o.sent_at IS NULL AND o.claimed_at IS NULL AND o.available_at > now()) IS TRUE \
    ORDER BY o.ticket_id, o.id LIMIT 1) retry ON TRUE";

/// What a claim sets on ticket `t`, for `{worker}` with a lease of `{lease}` seconds.
const CLAIM_SET: &str = "status = 'processing', worker_id = {worker}, lease_epoch = t.lease_epoch + 1, \
    lease_expires_at = now() + make_interval(secs => {lease}), heartbeat_at = now(), version = t.version + 1, \
    started_at = COALESCE(t.started_at, now()), completed_at = NULL, updated_at = now()";

/// The claim's `status_change` payload ([`Claimed`](crate::store::Claimed)), from the status
/// the ticket left (`{from}`), the worker and the epoch reached; built here because it depends
/// on the row the claim changes.
const CLAIM_PAYLOAD: &str = "jsonb_build_object('from', {from}, 'to', 'processing', 'worker_id', {worker}, \
    'lease_epoch', {epoch}, 'takeover', {from} = 'processing')";

/// The request id of ticket `{ticket}`'s latest outbox row: the request that last woke it.
const LATEST_REQUEST_ID: &str = "(SELECT o.request_id FROM {schema}.outbox o WHERE o.ticket_id = {ticket} \
    AND o.request_id IS NOT NULL ORDER BY o.id DESC LIMIT 1)";

/// `text` with each placeholder replaced.
pub(super) fn fill(text: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(text.to_owned(), |text, (name, value)| text.replace(name, value))
}

/// Claims of any number of tickets (numbered from `$1`, 4 parameters; see [`ClaimColumns`]),
/// for group-commit batches: the claim condition, effect and event of [`CLAIMABLE`],
/// [`CLAIM_SET`] and [`CLAIM_PAYLOAD`], over arrays.
pub(super) fn claim_ctes() -> String {
    format!(
        "claiming AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::uuid[]) \
             WITH ORDINALITY AS k(ticket_id, worker_id, lease, event_id, ord)), \
         claiming_lock AS (SELECT id, status, lease_expires_at FROM {{schema}}.tickets WHERE id = ANY($1::uuid[]) \
             ORDER BY id FOR NO KEY UPDATE{{nowait}}), \
         claimable AS (SELECT l.id, l.status AS from_status FROM claiming_lock l {RETRY_DUE_LATER} WHERE {CLAIMABLE}), \
         claimed AS (UPDATE {{schema}}.tickets t SET {set} \
             FROM claiming k JOIN claimable l ON l.id = k.ticket_id \
             WHERE t.id = k.ticket_id AND t.id = ANY($1::uuid[]) \
             RETURNING k.ord, k.event_id, k.worker_id, t.id, t.lease_epoch, l.from_status, to_json(t) AS ticket), \
         claimed_recorded AS (INSERT INTO {{schema}}.ticket_events (id, ticket_id, event_type, payload, request_id) \
             SELECT m.event_id, m.id, 'status_change', {payload}, {request} FROM claimed m ORDER BY m.ord)",
        set = fill(CLAIM_SET, &[("{worker}", "k.worker_id"), ("{lease}", "k.lease")]),
        payload = fill(
            CLAIM_PAYLOAD,
            &[
                ("{from}", "m.from_status"),
                ("{worker}", "m.worker_id"),
                ("{epoch}", "m.lease_epoch")
            ]
        ),
        request = fill(LATEST_REQUEST_ID, &[("{ticket}", "m.id")]),
    )
}

/// One claim in a statement of its own ($1 ticket, $2 worker, $3 lease seconds, $4 event id),
/// waiting for the ticket's row if need be: the same condition, effect and event as
/// [`claim_ctes`], without arrays (a lone claim costs half as much this way).
fn claim_alone_sql() -> String {
    format!(
        "WITH old AS (SELECT l.id, l.status AS from_status FROM {{schema}}.tickets l {RETRY_DUE_LATER} \
             WHERE l.id = $1 AND ({CLAIMABLE}) FOR NO KEY UPDATE OF l), \
         claimed AS (UPDATE {{schema}}.tickets t SET {set} FROM old WHERE t.id = $1 \
             RETURNING t.id, t.lease_epoch, old.from_status, to_json(t) AS ticket), \
         recorded AS (INSERT INTO {{schema}}.ticket_events (id, ticket_id, event_type, payload, request_id) \
             SELECT $4, $1, 'status_change', {payload}, {request} FROM claimed) \
         SELECT ticket, from_status FROM claimed",
        set = fill(CLAIM_SET, &[("{worker}", "$2"), ("{lease}", "$3")]),
        payload = fill(
            CLAIM_PAYLOAD,
            &[
                ("{from}", "from_status"),
                ("{worker}", "$2::text"),
                ("{epoch}", "lease_epoch")
            ]
        ),
        request = fill(LATEST_REQUEST_ID, &[("{ticket}", "$1")]),
    )
}

/// How many parameters [`claim_ctes`] takes.
pub(super) const CLAIM_PARAMETERS: usize = 4;

/// The lease statements.
#[derive(Debug)]
pub(super) struct ClaimSql {
    claim: SqlStr,
    heartbeat: SqlStr,
    release: SqlStr,
    release_event: SqlStr,
    enqueue: SqlStr,
}

impl ClaimSql {
    pub(super) fn new(schema: &str) -> Self {
        Self {
            claim: statement(schema, &claim_alone_sql()),
            heartbeat: statement(
                schema,
                "UPDATE {schema}.tickets SET lease_expires_at = now() + make_interval(secs => $3), \
                 heartbeat_at = now() WHERE id = $1 AND lease_epoch = $2 AND status = 'processing'",
            ),
            release: statement(
                schema,
                "UPDATE {schema}.tickets SET status = 'pending', worker_id = NULL, lease_expires_at = NULL, \
                 version = version + 1, updated_at = now() \
                 WHERE id = $1 AND lease_epoch = $2 AND status = 'processing' \
                 RETURNING (SELECT request_id FROM {schema}.outbox WHERE ticket_id = $1 AND request_id IS NOT NULL \
                            ORDER BY id DESC LIMIT 1) AS request_id",
            ),
            release_event: statement(
                schema,
                "INSERT INTO {schema}.ticket_events (id, ticket_id, event_type, payload, request_id) \
                 VALUES ($1, $2, 'status_change', $3, $4)",
            ),
            // The trace context of the ticket's latest enqueue is carried on, so a retry's
            // spans join the trace that created the ticket.
            enqueue: statement(
                schema,
                "INSERT INTO {schema}.outbox (ticket_id, request_id, traceparent, available_at) VALUES ($1, $2, \
                 (SELECT o.traceparent FROM {schema}.outbox o WHERE o.ticket_id = $1 ORDER BY o.id DESC LIMIT 1), \
                 now() + make_interval(secs => $3))",
            ),
        }
    }
}

/// A claim to write.
pub(super) struct ClaimWrite {
    pub ticket_id: Uuid,
    pub worker_id: String,
    pub lease: Duration,
}

/// The parameters of [`claim_ctes`], one array per column.
pub(super) struct ClaimColumns {
    ticket_id: Vec<Uuid>,
    worker_id: Vec<String>,
    lease: Vec<f64>,
    event_id: Vec<Uuid>,
}

impl ClaimColumns {
    pub(super) fn of(claims: &[ClaimWrite]) -> Self {
        Self {
            ticket_id: claims.iter().map(|c| c.ticket_id).collect(),
            worker_id: claims.iter().map(|c| c.worker_id.clone()).collect(),
            lease: claims.iter().map(|c| c.lease.as_secs_f64()).collect(),
            event_id: claims.iter().map(|_| Uuid::now_v7()).collect(),
        }
    }

    pub(super) fn bind(self, query: Statement<'_>) -> Statement<'_> {
        query
            .bind(self.ticket_id)
            .bind(self.worker_id)
            .bind(self.lease)
            .bind(self.event_id)
    }
}

/// What a claim's row (`ticket`, `from_status`) says: the ticket as claimed and whether it
/// was a takeover, or `None` when nothing could be claimed.
pub(super) fn claimed(row: &sqlx::postgres::PgRow) -> Result<Option<(Ticket, bool)>, sqlx::Error> {
    let Some(ticket) = row.try_get::<Option<serde_json::Value>, _>("ticket")? else {
        return Ok(None);
    };
    let from: TicketStatus = row.try_get("from_status")?;
    Ok(Some((ticket_from_json(ticket)?, from == TicketStatus::Processing)))
}

impl PgStore {
    /// A claim in a statement of its own, waiting for the ticket's row if need be.
    async fn claim_alone(&self, claim: &ClaimWrite) -> Result<Option<(Ticket, bool)>, StoreError> {
        let row = self
            .db
            .fetch_optional(
                sqlx::query(self.sql.claims.claim.clone())
                    .bind(claim.ticket_id)
                    .bind(&claim.worker_id)
                    .bind(claim.lease.as_secs_f64())
                    .bind(Uuid::now_v7()),
            )
            .await?;
        Ok(match row {
            Some(row) => claimed(&row)?,
            None => None,
        })
    }
}

#[async_trait]
impl ClaimStore for PgStore {
    async fn claim(&self, id: Uuid, worker_id: &str, lease: Duration) -> Result<Option<(Ticket, Fence)>, StoreError> {
        // The claim commits with the checkpoints that concurrent runs have queued: one
        // transaction fewer per ticket under load.
        let claim = ClaimWrite {
            ticket_id: id,
            worker_id: worker_id.to_owned(),
            lease,
        };
        let claimed = match self.checkpoints.ride_along(Job::Claim(claim)).await {
            Answer::Claimed(ticket, takeover) => Some((*ticket, takeover)),
            Answer::Refused => None,
            Answer::Alone(Job::Claim(claim)) => self.claim_alone(&claim).await?,
            Answer::Moved | Answer::Alone(Job::Transition(_)) | Answer::Lost => return Err(writer_lost()),
        };
        let Some((ticket, takeover)) = claimed else {
            return if crate::store::TicketStore::get(self, id).await?.is_some() {
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

    async fn heartbeat(&self, fence: Fence, lease: Duration) -> Result<bool, StoreError> {
        let done = self
            .db
            .execute(
                sqlx::query(self.sql.claims.heartbeat.clone())
                    .bind(fence.ticket_id)
                    .bind(fence.epoch)
                    .bind(lease.as_secs_f64()),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, fence: Fence, reason: &str, delay: Duration) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let released = sqlx::query(self.sql.claims.release.clone())
            .persistent(self.db.persistent())
            .bind(fence.ticket_id)
            .bind(fence.epoch)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = released else {
            return Ok(false);
        };
        let request_id: Option<String> = row.try_get("request_id")?;
        let payload = Released {
            from: TicketStatus::Processing,
            to: TicketStatus::Pending,
            released: reason.to_owned(),
        };
        sqlx::query(self.sql.claims.release_event.clone())
            .persistent(self.db.persistent())
            .bind(Uuid::now_v7())
            .bind(fence.ticket_id)
            .bind(sqlx::types::Json(&payload))
            .bind(request_id.as_deref())
            .execute(&mut *tx)
            .await?;
        sqlx::query(self.sql.claims.enqueue.clone())
            .persistent(self.db.persistent())
            .bind(fence.ticket_id)
            .bind(request_id.as_deref())
            .bind(delay.as_secs_f64())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
