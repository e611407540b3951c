//! Leases on tickets in PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Row, SqlStr};
use uuid::Uuid;

use super::PgStore;
use super::db::Statement;
use super::group_commit::{Answer, Job, writer_lost};
use super::rows::ticket_from_json;
use super::sql::{Lock, fragment, statement, statement_of};
use crate::store::{ClaimStore, Fence, Released, StoreError, Ticket, TicketStatus};

/// Claims of any number of tickets (numbered from `$1`, 4 parameters; see [`ClaimColumns`]):
/// a `pending` ticket with no delayed retry still due, or a `processing` one whose lease
/// expired, goes to `processing` under a new lease and epoch, with its `status_change` event
/// ([`Claimed`](crate::store::Claimed), built here from the row it describes, with the
/// request id of the ticket's latest outbox row). Used alone by [`ClaimStore::claim`] and in
/// group-commit batches.
///
/// Tickets are locked by `id = ANY(..)` and checked after, and the retry check reads the
/// ticket's own outbox rows (its conditions wrapped in `IS TRUE`, which keeps
/// `outbox_due_idx` out of reach), so that any plan, even a generic one made on near-empty
/// tables, reaches a ticket by its id and an outbox row by its ticket.
pub(super) const CLAIM_CTES: &str = "\
    claiming AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::uuid[]) \
        WITH ORDINALITY AS k(ticket_id, worker_id, lease, event_id, ord)), \
    claiming_lock AS (SELECT id, status, lease_expires_at FROM {schema}.tickets WHERE id = ANY($1::uuid[]) \
        ORDER BY id FOR NO KEY UPDATE{nowait}), \
    claimable AS (SELECT l.id, l.status AS from_status FROM claiming_lock l \
        LEFT JOIN LATERAL (SELECT 1 AS later FROM {schema}.outbox o WHERE o.ticket_id = l.id \
                AND (o.sent_at IS NULL AND o.claimed_at IS NULL AND o.available_at > now()) IS TRUE \
                ORDER BY o.ticket_id, o.id LIMIT 1) retry ON TRUE \
        WHERE (l.status = 'pending' AND retry.later IS NULL) \
           OR (l.status = 'processing' AND (l.lease_expires_at IS NULL OR l.lease_expires_at < now()))), \
    claimed AS (UPDATE {schema}.tickets t SET status = 'processing', worker_id = k.worker_id, \
            lease_epoch = t.lease_epoch + 1, lease_expires_at = now() + make_interval(secs => k.lease), \
            heartbeat_at = now(), version = t.version + 1, started_at = COALESCE(t.started_at, now()), \
            completed_at = NULL, updated_at = now() \
        FROM claiming k JOIN claimable l ON l.id = k.ticket_id \
        WHERE t.id = k.ticket_id AND t.id = ANY($1::uuid[]) \
        RETURNING k.ord, k.event_id, k.worker_id, t.id, t.lease_epoch, l.from_status, to_json(t) AS ticket), \
    claimed_recorded AS (INSERT INTO {schema}.ticket_events (id, ticket_id, event_type, payload, request_id) \
        SELECT m.event_id, m.id, 'status_change', jsonb_build_object('from', m.from_status, 'to', 'processing', \
            'worker_id', m.worker_id, 'lease_epoch', m.lease_epoch, 'takeover', m.from_status = 'processing'), \
            (SELECT o.request_id FROM {schema}.outbox o WHERE o.ticket_id = m.id AND o.request_id IS NOT NULL \
             ORDER BY o.id DESC LIMIT 1) \
        FROM claimed m ORDER BY m.ord)";

/// How many parameters [`CLAIM_CTES`] takes.
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
            claim: statement_of(format!(
                "WITH {} SELECT k.ord, m.ticket, m.from_status FROM claiming k LEFT JOIN claimed m USING (ord)",
                fragment(schema, CLAIM_CTES, 1, Lock::Wait)
            )),
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

/// The parameters of [`CLAIM_CTES`], one array per column.
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
        let query = ClaimColumns::of(std::slice::from_ref(claim)).bind(sqlx::query(self.sql.claims.claim.clone()));
        let row = self.db.fetch_one(query).await?;
        Ok(claimed(&row)?)
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
