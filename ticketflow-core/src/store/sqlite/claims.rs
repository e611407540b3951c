//! Leases on tickets in SQLite.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::{FromRow, SqliteConnection};
use uuid::Uuid;

use super::rows::{TICKET_COLUMNS, TicketRow};
use super::tickets::{enqueue, fetch_ticket, insert_event};
use super::{SqliteStore, after, now, timestamp};
use crate::store::{ClaimStore, Claimed, Fence, NewEvent, Released, StoreError, Ticket, TicketStatus};

/// The request id of the most recent outbox row of a ticket: the request that last woke it,
/// carried onto claim and release events and onto re-enqueued rows.
async fn latest_request_id(conn: &mut SqliteConnection, ticket_id: Uuid) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT request_id FROM outbox WHERE ticket_id = ? AND request_id IS NOT NULL ORDER BY id DESC LIMIT 1",
    )
    .bind(ticket_id.hyphenated())
    .fetch_optional(&mut *conn)
    .await?)
}

#[async_trait]
impl ClaimStore for SqliteStore {
    async fn claim(&self, id: Uuid, worker_id: &str, lease: Duration) -> Result<Option<(Ticket, Fence)>, StoreError> {
        let mut tx = self.begin().await?;
        let at = Utc::now();
        let Some((current, _)) = fetch_ticket(&mut tx, id).await? else {
            return Err(StoreError::NotFound(id));
        };
        // The claim condition: pending with no delayed retry still due, or processing with an
        // expired lease.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE tickets SET status = 'processing', worker_id = ?2, lease_epoch = lease_epoch + 1, \
                 lease_expires_at = ?3, heartbeat_at = ?4, version = version + 1, \
                 started_at = COALESCE(started_at, ?4), completed_at = NULL, updated_at = ?4 \
             WHERE id = ?1 AND ((status = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox o \
                     WHERE o.ticket_id = ?1 AND o.sent_at IS NULL AND o.claimed_at IS NULL AND o.available_at > ?4)) OR \
                 (status = 'processing' AND (lease_expires_at IS NULL OR lease_expires_at < ?4))) \
             RETURNING {TICKET_COLUMNS}"
        )))
        .bind(id.hyphenated())
        .bind(worker_id)
        .bind(after(at, lease))
        .bind(timestamp(at))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let ticket: Ticket = TicketRow::from_row(&row)?.into();
        let takeover = current.status == TicketStatus::Processing;
        if takeover {
            metrics::counter!("lease_takeovers_total").increment(1);
        }
        let claimed = Claimed {
            from: current.status,
            to: TicketStatus::Processing,
            worker_id: worker_id.to_owned(),
            lease_epoch: ticket.lease_epoch,
            takeover,
        };
        let request_id = latest_request_id(&mut tx, id).await?;
        insert_event(&mut tx, id, &NewEvent::of(&claimed).for_request(request_id), None).await?;
        tx.commit().await?;
        let fence = Fence {
            ticket_id: id,
            epoch: ticket.lease_epoch,
        };
        Ok(Some((ticket, fence)))
    }

    async fn heartbeat(&self, fence: Fence, lease: Duration) -> Result<bool, StoreError> {
        let at = Utc::now();
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE tickets SET lease_expires_at = ?3, heartbeat_at = ?4 \
             WHERE id = ?1 AND lease_epoch = ?2 AND status = 'processing'",
        )
        .bind(fence.ticket_id.hyphenated())
        .bind(fence.epoch)
        .bind(after(at, lease))
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
        .bind(fence.ticket_id.hyphenated())
        .bind(fence.epoch)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let request_id = latest_request_id(&mut tx, fence.ticket_id).await?;
        let released = Released {
            from: TicketStatus::Processing,
            to: TicketStatus::Pending,
            released: reason.to_owned(),
        };
        insert_event(
            &mut tx,
            fence.ticket_id,
            &NewEvent::of(&released).for_request(request_id.clone()),
            None,
        )
        .await?;
        enqueue(&mut tx, fence.ticket_id, request_id.as_deref(), delay).await?;
        tx.commit().await?;
        Ok(true)
    }
}
