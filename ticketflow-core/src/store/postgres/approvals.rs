//! Approval requests and decisions in PostgreSQL.

use async_trait::async_trait;
use sqlx::{FromRow, QueryBuilder, Row, SqlStr};
use uuid::Uuid;

use super::PgStore;
use super::rows::{APPROVAL_COLUMNS, ApprovalRow, TicketRow};
use super::sql::statement;
use super::tickets::TransitionWrite;
use crate::store::{
    Approval, ApprovalPage, ApprovalQuery, ApprovalStore, Decided, Decision, DeskStats, NewApproval, StoreError,
    Ticket, TicketStatus, Transition, already_decided, call_not_held, not_waiting,
};

/// The approval statements.
#[derive(Debug)]
pub(super) struct ApprovalSql {
    insert: SqlStr,
    by_id: SqlStr,
    by_call: SqlStr,
    decide: SqlStr,
    decide_call: SqlStr,
    stats: SqlStr,
    /// `SELECT … FROM approval_requests a JOIN tickets t`, for `approvals`' filters to follow.
    list: String,
    count: String,
}

impl ApprovalSql {
    pub(super) fn new(schema: &str) -> Self {
        let select = format!(
            "SELECT {APPROVAL_COLUMNS} FROM {schema}.approval_requests a JOIN {schema}.tickets t ON t.id = a.ticket_id"
        );
        Self {
            insert: statement(
                schema,
                "INSERT INTO {schema}.approval_requests (id, ticket_id, call_id, action_type, action_params) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (call_id) DO NOTHING",
            ),
            by_id: statement(schema, &format!("{select} WHERE a.id = $1")),
            by_call: statement(schema, &format!("{select} WHERE a.call_id = $1")),
            decide: statement(
                schema,
                "UPDATE {schema}.approval_requests SET status = $2, decided_at = now(), decided_by = $3, \
                     decision_reason = $4, edited_response = $5, version = version + 1 \
                 WHERE id = $1 AND status = 'pending'",
            ),
            decide_call: statement(
                schema,
                "UPDATE {schema}.tool_calls SET status = $2, result = COALESCE($3, result), updated_at = now() \
                 WHERE call_id = $1 AND status = 'awaiting_approval'",
            ),
            stats: statement(
                schema,
                "SELECT count(*) AS total, \
                     count(*) FILTER (WHERE status = 'pending') AS pending, \
                     count(*) FILTER (WHERE status = 'processing') AS processing, \
                     count(*) FILTER (WHERE status = 'awaiting_approval') AS awaiting_approval, \
                     count(*) FILTER (WHERE status = 'completed') AS completed, \
                     count(*) FILTER (WHERE status = 'failed_permanent') AS failed, \
                     count(*) FILTER (WHERE status = 'escalated') AS escalated, \
                     (SELECT count(*) FROM {schema}.approval_requests WHERE status = 'pending') AS pending_approvals \
                 FROM {schema}.tickets",
            ),
            list: select,
            count: format!(
                "SELECT count(*) FROM {schema}.approval_requests a JOIN {schema}.tickets t ON t.id = a.ticket_id"
            ),
        }
    }
}

impl PgStore {
    async fn approval_by(&self, text: &SqlStr, key: Uuid) -> Result<Option<Approval>, StoreError> {
        let row = self.db.fetch_optional(sqlx::query(text.clone()).bind(key)).await?;
        Ok(row.map(|r| ApprovalRow::from_row(&r).map(Approval::from)).transpose()?)
    }
}

#[async_trait]
impl ApprovalStore for PgStore {
    async fn hold(&self, ticket: &Ticket, request: NewApproval, change: Transition) -> Result<Approval, StoreError> {
        let sql = &self.sql.approvals;
        let persistent = self.db.persistent();
        let mut tx = self.db.begin().await?;
        let inserted = sqlx::query(sql.insert.clone())
            .persistent(persistent)
            .bind(Uuid::now_v7())
            .bind(ticket.id)
            .bind(request.call_id)
            .bind(&request.action_type)
            .bind(&request.action_params)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::for_ticket(e, ticket.id))?
            .rows_affected();
        let row = sqlx::query(sql.by_call.clone())
            .persistent(persistent)
            .bind(request.call_id)
            .fetch_one(&mut *tx)
            .await?;
        let approval: Approval = ApprovalRow::from_row(&row)?.into();
        request.may_use(ticket, &approval, inserted > 0)?;
        let write = TransitionWrite::new(ticket, request.requested(&approval, change));
        let moved = self
            .transition_statement(&write)
            .persistent(persistent)
            .fetch_optional(&mut *tx)
            .await?;
        if moved.is_none() {
            drop(tx);
            return Err(self.refused(ticket.id, ticket.version).await);
        }
        tx.commit().await?;
        Ok(approval)
    }

    async fn approval(&self, id: Uuid) -> Result<Option<Approval>, StoreError> {
        self.approval_by(&self.sql.approvals.by_id, id).await
    }

    async fn approval_for_call(&self, call_id: Uuid) -> Result<Option<Approval>, StoreError> {
        self.approval_by(&self.sql.approvals.by_call, call_id).await
    }

    async fn approvals(&self, query: &ApprovalQuery) -> Result<ApprovalPage, StoreError> {
        let (_, page_size) = query.bounded();
        let sql = &self.sql.approvals;
        let filter = |builder: &mut QueryBuilder<sqlx::Postgres>| {
            builder.push(" WHERE TRUE");
            if let Some(status) = query.status {
                builder.push(" AND a.status = ").push_bind(status.as_str());
            }
            if let Some(ticket) = query.ticket_id {
                builder.push(" AND a.ticket_id = ").push_bind(ticket);
            }
        };
        let mut count = QueryBuilder::new(sql.count.clone());
        filter(&mut count);
        let total: i64 = self.db.fetch_one(count.build()).await?.try_get(0)?;
        let mut select = QueryBuilder::new(sql.list.clone());
        filter(&mut select);
        select
            .push(" ORDER BY a.requested_at, a.id LIMIT ")
            .push_bind(i64::from(page_size))
            .push(" OFFSET ")
            .push_bind(query.offset());
        let rows = self.db.fetch_all(select.build()).await?;
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
        let sql = &self.sql.approvals;
        let persistent = self.db.persistent();
        let before = self.approval(id).await?.ok_or(StoreError::UnknownApproval(id))?;
        let mut tx = self.db.begin().await?;
        // The ticket first, as every writer of a ticket locks it; concurrent deciders queue
        // here, and each after the first finds the request decided.
        let ticket = self.lock_ticket_in(&mut tx, before.ticket_id).await?;
        let decided = sqlx::query(sql.decide.clone())
            .persistent(persistent)
            .bind(id)
            .bind(decision.status().as_str())
            .bind(&decision.decided_by)
            .bind(&decision.reason)
            .bind(&decision.edited_response)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if decided == 0 {
            drop(tx);
            let now = self.approval(id).await?.ok_or(StoreError::UnknownApproval(id))?;
            return Err(already_decided(&now));
        }
        if ticket.status != TicketStatus::AwaitingApproval {
            return Err(not_waiting(&ticket));
        }
        let call_moved = sqlx::query(sql.decide_call.clone())
            .persistent(persistent)
            .bind(before.call_id)
            .bind(decision.call_status().as_str())
            .bind(decision.call_result())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if call_moved == 0 {
            return Err(call_not_held(ticket.id, before.call_id));
        }
        let change = decision.resumption(id, before.call_id);
        let write = TransitionWrite::new(&ticket, change);
        let moved = self
            .transition_statement(&write)
            .persistent(persistent)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| not_waiting(&ticket))?;
        tx.commit().await?;
        let approval = self.approval(id).await?.ok_or(StoreError::UnknownApproval(id))?;
        Ok(Decided {
            approval,
            ticket: TicketRow::from_row(&moved)?.into(),
        })
    }

    async fn desk_stats(&self) -> Result<DeskStats, StoreError> {
        let row = self.db.fetch_one(sqlx::query(self.sql.approvals.stats.clone())).await?;
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
