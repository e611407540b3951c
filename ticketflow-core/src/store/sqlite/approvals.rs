//! Approval requests and decisions in SQLite. Every write transaction takes the database's
//! write lock first (`BEGIN IMMEDIATE`), so concurrent deciders run one after another and each
//! after the first finds the request decided.

use async_trait::async_trait;
use sqlx::{FromRow, QueryBuilder, Row, SqliteConnection};
use uuid::Uuid;

use super::rows::{APPROVAL_COLUMNS, ApprovalRow};
use super::tickets::{fetch_ticket, transition_in};
use super::{SqliteStore, now};
use crate::store::{
    Approval, ApprovalPage, ApprovalQuery, ApprovalStatus, ApprovalStore, Decided, Decision, DeskStats, NewApproval,
    StoreError, Ticket, TicketStatus, Transition, already_decided, call_not_held, not_waiting,
};

const FROM: &str = "FROM approval_requests a JOIN tickets t ON t.id = a.ticket_id";

async fn approval_where(conn: &mut SqliteConnection, column: &str, key: Uuid) -> Result<Option<Approval>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {APPROVAL_COLUMNS} {FROM} WHERE a.{column} = ?"
    )))
    .bind(key.hyphenated())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| ApprovalRow::from_row(&r).map(Approval::from)).transpose()?)
}

#[async_trait]
impl ApprovalStore for SqliteStore {
    async fn hold(&self, ticket: &Ticket, request: NewApproval, change: Transition) -> Result<Approval, StoreError> {
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO approval_requests (id, ticket_id, call_id, action_type, action_params, requested_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO NOTHING",
        )
        .bind(Uuid::now_v7().hyphenated())
        .bind(ticket.id.hyphenated())
        .bind(request.call_id.hyphenated())
        .bind(&request.action_type)
        .bind(request.action_params.to_string())
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::for_ticket(e, ticket.id))?
        .rows_affected();
        let approval = approval_where(&mut tx, "call_id", request.call_id)
            .await?
            .ok_or(StoreError::UnknownCall(request.call_id))?;
        request.may_use(ticket, &approval, inserted > 0)?;
        transition_in(&mut tx, ticket, request.requested(&approval, change)).await?;
        tx.commit().await?;
        Ok(approval)
    }

    async fn approval(&self, id: Uuid) -> Result<Option<Approval>, StoreError> {
        let mut conn = self.read.acquire().await?;
        approval_where(&mut conn, "id", id).await
    }

    async fn approval_for_call(&self, call_id: Uuid) -> Result<Option<Approval>, StoreError> {
        let mut conn = self.read.acquire().await?;
        approval_where(&mut conn, "call_id", call_id).await
    }

    async fn approvals(&self, query: &ApprovalQuery) -> Result<ApprovalPage, StoreError> {
        let (_, page_size) = query.bounded();
        let filter = |builder: &mut QueryBuilder<sqlx::Sqlite>| {
            builder.push(" WHERE 1 = 1");
            if let Some(status) = query.status {
                builder.push(" AND a.status = ").push_bind(status.as_str());
            }
            if let Some(ticket) = query.ticket_id {
                builder
                    .push(" AND a.ticket_id = ")
                    .push_bind(ticket.hyphenated().to_string());
            }
        };
        let mut count = QueryBuilder::new(format!("SELECT count(*) {FROM}"));
        filter(&mut count);
        let total: i64 = count.build().fetch_one(&self.read).await?.try_get(0)?;
        let mut select = QueryBuilder::new(format!("SELECT {APPROVAL_COLUMNS} {FROM}"));
        filter(&mut select);
        select
            .push(" ORDER BY a.requested_at, a.id LIMIT ")
            .push_bind(i64::from(page_size))
            .push(" OFFSET ")
            .push_bind(query.offset());
        let rows = select.build().fetch_all(&self.read).await?;
        Ok(ApprovalPage {
            approvals: rows
                .iter()
                .map(|r| ApprovalRow::from_row(r).map(Approval::from))
                .collect::<Result<_, _>>()?,
            total,
        })
    }

    async fn decide(&self, id: Uuid, decision: Decision) -> Result<Decided, StoreError> {
        decision.validate()?;
        let mut tx = self.begin().await?;
        let before = approval_where(&mut tx, "id", id)
            .await?
            .ok_or(StoreError::UnknownApproval(id))?;
        if before.status != ApprovalStatus::Pending {
            return Err(already_decided(&before));
        }
        let (ticket, _) = fetch_ticket(&mut tx, before.ticket_id)
            .await?
            .ok_or(StoreError::NotFound(before.ticket_id))?;
        if ticket.status != TicketStatus::AwaitingApproval {
            return Err(not_waiting(&ticket));
        }
        let stamp = now();
        sqlx::query(
            "UPDATE approval_requests SET status = ?2, decided_at = ?3, decided_by = ?4, decision_reason = ?5, \
                 edited_response = ?6, version = version + 1 \
             WHERE id = ?1 AND status = 'pending'",
        )
        .bind(id.hyphenated())
        .bind(decision.status().as_str())
        .bind(&stamp)
        .bind(&decision.decided_by)
        .bind(&decision.reason)
        .bind(&decision.edited_response)
        .execute(&mut *tx)
        .await?;
        let call_result = decision.call_result().map(|result| result.to_string());
        let call_moved = sqlx::query(
            "UPDATE tool_calls SET status = ?2, result = COALESCE(?3, result), updated_at = ?4 \
             WHERE call_id = ?1 AND status = 'awaiting_approval'",
        )
        .bind(before.call_id.hyphenated())
        .bind(decision.call_status().as_str())
        .bind(call_result)
        .bind(&stamp)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if call_moved == 0 {
            return Err(call_not_held(ticket.id, before.call_id));
        }
        let change = decision.resumption(id, before.call_id);
        let moved = transition_in(&mut tx, &ticket, change).await?;
        let approval = approval_where(&mut tx, "id", id)
            .await?
            .ok_or(StoreError::UnknownApproval(id))?;
        tx.commit().await?;
        Ok(Decided {
            approval,
            ticket: moved,
        })
    }

    async fn desk_stats(&self) -> Result<DeskStats, StoreError> {
        let row = sqlx::query(
            "SELECT count(*) AS total, \
                 coalesce(sum(status = 'pending'), 0) AS pending, \
                 coalesce(sum(status = 'processing'), 0) AS processing, \
                 coalesce(sum(status = 'awaiting_approval'), 0) AS awaiting_approval, \
                 coalesce(sum(status = 'completed'), 0) AS completed, \
                 coalesce(sum(status = 'failed_permanent'), 0) AS failed, \
                 coalesce(sum(status = 'escalated'), 0) AS escalated, \
                 (SELECT count(*) FROM approval_requests WHERE status = 'pending') AS pending_approvals \
             FROM tickets",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(DeskStats {
            total_tickets: row.try_get("total")?,
            pending_tickets: row.try_get("pending")?,
            processing_tickets: row.try_get("processing")?,
            awaiting_approval_tickets: row.try_get("awaiting_approval")?,
            completed_tickets: row.try_get("completed")?,
            failed_tickets: row.try_get("failed")?,
            escalated_tickets: row.try_get("escalated")?,
            pending_approvals: row.try_get("pending_approvals")?,
        })
    }
}
