//! The tool-call journal and the calls' effects in PostgreSQL.

use async_trait::async_trait;
use sqlx::{FromRow, PgConnection, Row, SqlStr};
use uuid::Uuid;

use super::PgStore;
use super::rows::{
    BugReportRow, EscalationRow, PasswordResetRow, REFUND_COLUMNS, RefundRow, TOOL_CALL_COLUMNS, ToolCallRow,
};
use super::sql::statement;
use crate::commerce::{OrderStatus, Refund};
use crate::money::Money;
use crate::store::{
    Applied, CallEffects, CallStatus, Effect, EventType, Fence, NewMessage, NewToolCall, Render, StoreError, ToolCall,
    ToolCalled, ToolStore, effect_id,
};

/// The journal's statements.
#[derive(Debug)]
pub(super) struct ToolCallSql {
    journal: SqlStr,
    get: SqlStr,
    get_for_update: SqlStr,
    of_ticket: SqlStr,
    decide: SqlStr,
    settle: SqlStr,
    fence: SqlStr,
    refund_order: SqlStr,
    refundable: SqlStr,
    insert_refund: SqlStr,
    insert_escalation: SqlStr,
    insert_bug_report: SqlStr,
    insert_reset: SqlStr,
    ticket_turn: SqlStr,
    refunds_of_ticket: SqlStr,
    refunds_of_order: SqlStr,
    escalations: SqlStr,
    bug_reports: SqlStr,
    resets: SqlStr,
}

impl ToolCallSql {
    pub(super) fn new(schema: &str) -> Self {
        let of = |table: &str, columns: &str, filter: &str| {
            statement(
                schema,
                &format!("SELECT {columns} FROM {{schema}}.{table} WHERE {filter} ORDER BY created_at, id"),
            )
        };
        Self {
            journal: statement(
                schema,
                &format!(
                    "WITH journaled AS (INSERT INTO {{schema}}.tool_calls (call_id, ticket_id, tool, args, status, \
                         result, llm_call_id, executed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                         CASE WHEN $5 = 'executed' THEN now() END) ON CONFLICT (call_id) DO NOTHING \
                         RETURNING {TOOL_CALL_COLUMNS}), \
                     recorded AS (INSERT INTO {{schema}}.ticket_events (id, ticket_id, event_type, payload) \
                         SELECT $8, ticket_id, 'tool_call', $9 FROM journaled) \
                     SELECT * FROM journaled"
                ),
            ),
            get: statement(
                schema,
                &format!("SELECT {TOOL_CALL_COLUMNS} FROM {{schema}}.tool_calls WHERE call_id = $1"),
            ),
            get_for_update: statement(
                schema,
                &format!("SELECT {TOOL_CALL_COLUMNS} FROM {{schema}}.tool_calls WHERE call_id = $1 FOR UPDATE"),
            ),
            of_ticket: statement(
                schema,
                &format!("SELECT {TOOL_CALL_COLUMNS} FROM {{schema}}.tool_calls WHERE ticket_id = $1 ORDER BY seq"),
            ),
            decide: statement(
                schema,
                &format!(
                    "UPDATE {{schema}}.tool_calls SET status = $2, result = COALESCE($3, result), updated_at = now() \
                     WHERE call_id = $1 AND status = 'awaiting_approval' RETURNING {TOOL_CALL_COLUMNS}"
                ),
            ),
            settle: statement(
                schema,
                &format!(
                    "UPDATE {{schema}}.tool_calls SET status = $2, result = $3, updated_at = now(), \
                         executed_at = CASE WHEN $2 = 'executed' THEN now() END \
                     WHERE call_id = $1 RETURNING {TOOL_CALL_COLUMNS}"
                ),
            ),
            fence: statement(
                schema,
                "SELECT lease_epoch FROM {schema}.tickets WHERE id = $1 FOR SHARE",
            ),
            refund_order: statement(
                schema,
                "UPDATE {schema}.orders SET refunded_cents = refunded_cents + $2, \
                     status = CASE WHEN refunded_cents + $2 = total_cents THEN 'refunded' ELSE 'partially_refunded' END, \
                     updated_at = now() \
                 WHERE lower(id) = lower($1) AND refunded_cents + $2 <= total_cents \
                 RETURNING id, status, total_cents - refunded_cents AS refundable",
            ),
            refundable: statement(
                schema,
                "SELECT total_cents - refunded_cents FROM {schema}.orders WHERE lower(id) = lower($1)",
            ),
            insert_refund: statement(
                schema,
                &format!(
                    "INSERT INTO {{schema}}.refunds (id, order_id, ticket_id, call_id, amount_cents, reason, external_id, \
                         approval_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, \
                         (SELECT a.id FROM {{schema}}.approval_requests a WHERE a.call_id = $4)) \
                     RETURNING {REFUND_COLUMNS}"
                ),
            ),
            insert_escalation: statement(
                schema,
                "INSERT INTO {schema}.escalations (id, ticket_id, call_id, reason, suggested_action) \
                 VALUES ($1, $2, $3, $4, $5)",
            ),
            insert_bug_report: statement(
                schema,
                "INSERT INTO {schema}.bug_reports (id, ticket_id, call_id, title, description, priority, external_url) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            ),
            insert_reset: statement(
                schema,
                "INSERT INTO {schema}.password_resets (id, ticket_id, call_id, customer_id, email, token_hash, \
                     expires_at, message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            ),
            ticket_turn: statement(schema, "SELECT turn FROM {schema}.tickets WHERE id = $1"),
            refunds_of_ticket: of("refunds", REFUND_COLUMNS, "ticket_id = $1"),
            refunds_of_order: of("refunds", REFUND_COLUMNS, "lower(order_id) = lower($1)"),
            escalations: of(
                "escalations",
                "id, ticket_id, call_id, reason, suggested_action, status, created_at",
                "ticket_id = $1",
            ),
            bug_reports: of(
                "bug_reports",
                "id, ticket_id, call_id, title, description, priority, external_url, created_at",
                "ticket_id = $1",
            ),
            resets: of(
                "password_resets",
                "id, ticket_id, call_id, customer_id, email, token_hash, expires_at, email_status, created_at",
                "ticket_id = $1",
            ),
        }
    }
}

impl PgStore {
    /// Applies `effect` of `call` in `conn`'s transaction.
    async fn apply(&self, conn: &mut PgConnection, call: &ToolCall, effect: Effect) -> Result<Applied, StoreError> {
        let sql = &self.sql.tool_calls;
        let query = |text: &SqlStr| sqlx::query(text.clone()).persistent(self.db.persistent());
        Ok(match effect {
            Effect::None => Applied::Nothing,
            Effect::Refund {
                order_id,
                amount,
                reason,
                remote,
            } => {
                let (order_id, order_status, refundable, external_id) = match remote {
                    Some(remote) => (
                        order_id,
                        Some(remote.order_status),
                        Some(remote.refundable),
                        Some(remote.id),
                    ),
                    None => {
                        let refunded = query(&sql.refund_order)
                            .bind(&order_id)
                            .bind(amount.cents())
                            .fetch_optional(&mut *conn)
                            .await?;
                        let Some(row) = refunded else {
                            let left: Option<i64> = query(&sql.refundable)
                                .bind(&order_id)
                                .fetch_optional(&mut *conn)
                                .await?
                                .map(|row| row.try_get(0))
                                .transpose()?;
                            return Ok(Applied::RefundRefused {
                                refundable: left.map(Money::from_cents),
                            });
                        };
                        let status: String = row.try_get("status")?;
                        let status: OrderStatus = status
                            .parse()
                            .map_err(|e: crate::commerce::UnknownOrderStatus| StoreError::Corrupt(e.to_string()))?;
                        (
                            row.try_get("id")?,
                            Some(status),
                            Some(Money::from_cents(row.try_get("refundable")?)),
                            None,
                        )
                    }
                };
                let row = query(&sql.insert_refund)
                    .bind(effect_id("RF", call.call_id))
                    .bind(&order_id)
                    .bind(call.ticket_id)
                    .bind(call.call_id)
                    .bind(amount.cents())
                    .bind(&reason)
                    .bind(external_id)
                    .fetch_one(&mut *conn)
                    .await?;
                Applied::Refunded {
                    refund: RefundRow::from_row(&row)?.into(),
                    order_status,
                    refundable,
                }
            }
            Effect::Escalation {
                reason,
                suggested_action,
            } => {
                let id = effect_id("ESC", call.call_id);
                query(&sql.insert_escalation)
                    .bind(&id)
                    .bind(call.ticket_id)
                    .bind(call.call_id)
                    .bind(&reason)
                    .bind(&suggested_action)
                    .execute(&mut *conn)
                    .await?;
                Applied::Escalated { id }
            }
            Effect::BugReport {
                title,
                description,
                priority,
                external_url,
            } => {
                let id = effect_id("BUG", call.call_id);
                query(&sql.insert_bug_report)
                    .bind(&id)
                    .bind(call.ticket_id)
                    .bind(call.call_id)
                    .bind(&title)
                    .bind(&description)
                    .bind(&priority)
                    .bind(&external_url)
                    .execute(&mut *conn)
                    .await?;
                Applied::BugReported { id }
            }
            Effect::PasswordReset {
                customer_id,
                email,
                token_hash,
                expires_at,
                message,
            } => {
                let id = effect_id("PR", call.call_id);
                query(&sql.insert_reset)
                    .bind(&id)
                    .bind(call.ticket_id)
                    .bind(call.call_id)
                    .bind(&customer_id)
                    .bind(&email)
                    .bind(&token_hash)
                    .bind(expires_at)
                    .bind(&message)
                    .execute(&mut *conn)
                    .await?;
                // The link goes out through the e-mail outbox, written with the reset.
                let turn: i32 = query(&sql.ticket_turn)
                    .bind(call.ticket_id)
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get(0)?;
                let mail = NewMessage::password_reset(&id, &message);
                super::messages::bind_message(query(&self.sql.messages.insert).bind(call.ticket_id).bind(turn), &mail)
                    .execute(&mut *conn)
                    .await?;
                Applied::ResetRequested { id, expires_at }
            }
        })
    }

    async fn call_rows<T: for<'r> FromRow<'r, sqlx::postgres::PgRow>>(
        &self,
        text: &SqlStr,
        key: impl sqlx::Encode<'_, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    ) -> Result<Vec<T>, StoreError> {
        let rows = self.db.fetch_all(sqlx::query(text.clone()).bind(key)).await?;
        Ok(rows.iter().map(T::from_row).collect::<Result<_, _>>()?)
    }
}

#[async_trait]
impl ToolStore for PgStore {
    async fn journal_call(&self, call: NewToolCall) -> Result<(ToolCall, bool), StoreError> {
        let inserted = self
            .db
            .fetch_optional(
                sqlx::query(self.sql.tool_calls.journal.clone())
                    .bind(call.call_id)
                    .bind(call.ticket_id)
                    .bind(&call.tool)
                    .bind(&call.args)
                    .bind(call.status.as_str())
                    .bind(&call.result)
                    .bind(&call.llm_call_id)
                    .bind(Uuid::now_v7())
                    .bind(sqlx::types::Json(ToolCalled {
                        call_id: call.call_id,
                        tool: call.tool.clone(),
                        status: call.status,
                    })),
            )
            .await
            .map_err(|e| StoreError::for_ticket(e, call.ticket_id))?;
        if let Some(row) = inserted {
            return Ok((ToolCallRow::from_row(&row)?.into(), true));
        }
        let existing = self
            .tool_call(call.call_id)
            .await?
            .ok_or(StoreError::UnknownCall(call.call_id))?;
        if existing.ticket_id != call.ticket_id {
            return Err(StoreError::Conflict {
                id: call.ticket_id,
                message: format!("call {} belongs to another ticket", call.call_id),
            });
        }
        Ok((existing, false))
    }

    async fn tool_call(&self, call_id: Uuid) -> Result<Option<ToolCall>, StoreError> {
        let row = self
            .db
            .fetch_optional(sqlx::query(self.sql.tool_calls.get.clone()).bind(call_id))
            .await?;
        Ok(row.map(|r| ToolCallRow::from_row(&r).map(ToolCall::from)).transpose()?)
    }

    async fn tool_calls(&self, ticket_id: Uuid) -> Result<Vec<ToolCall>, StoreError> {
        let rows: Vec<ToolCallRow> = self.call_rows(&self.sql.tool_calls.of_ticket, ticket_id).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn decide_call(
        &self,
        call_id: Uuid,
        approved: bool,
        result: Option<serde_json::Value>,
    ) -> Result<ToolCall, StoreError> {
        let to = if approved {
            CallStatus::Approved
        } else {
            CallStatus::Rejected
        };
        let row = self
            .db
            .fetch_optional(
                sqlx::query(self.sql.tool_calls.decide.clone())
                    .bind(call_id)
                    .bind(to.as_str())
                    .bind(&result),
            )
            .await?;
        match row {
            Some(row) => Ok(ToolCallRow::from_row(&row)?.into()),
            None => Err(match self.tool_call(call_id).await? {
                None => StoreError::UnknownCall(call_id),
                Some(call) => StoreError::Conflict {
                    id: call.ticket_id,
                    message: format!("call {call_id} is {}, not awaiting approval", call.status),
                },
            }),
        }
    }

    async fn settle_call(
        &self,
        call_id: Uuid,
        fence: Option<Fence>,
        effect: Effect,
        render: Render<'_>,
    ) -> Result<ToolCall, StoreError> {
        let sql = &self.sql.tool_calls;
        let persistent = self.db.persistent();
        let unlocked = self.tool_call(call_id).await?.ok_or(StoreError::UnknownCall(call_id))?;
        let mut tx = self.db.begin().await?;
        // The ticket first, as every writer of a ticket locks it: the fence holds until commit.
        if let Some(fence) = fence {
            let epoch: Option<i64> = sqlx::query(sql.fence.clone())
                .persistent(persistent)
                .bind(unlocked.ticket_id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get(0))
                .transpose()?;
            if fence.ticket_id != unlocked.ticket_id || epoch != Some(fence.epoch) {
                return Err(StoreError::Fenced(format!(
                    "ticket {} is at lease epoch {epoch:?}, this run holds {}",
                    unlocked.ticket_id, fence.epoch
                )));
            }
        }
        let row = sqlx::query(sql.get_for_update.clone())
            .persistent(persistent)
            .bind(call_id)
            .fetch_one(&mut *tx)
            .await?;
        let call: ToolCall = ToolCallRow::from_row(&row)?.into();
        match call.status {
            CallStatus::Executed | CallStatus::Failed => return Ok(call),
            status if !status.runnable() => {
                return Err(StoreError::Conflict {
                    id: call.ticket_id,
                    message: format!("call {call_id} is {status} and cannot run"),
                });
            }
            _ => {}
        }
        let applied = self.apply(&mut tx, &call, effect).await?;
        let settlement = render(&applied);
        let row = sqlx::query(sql.settle.clone())
            .persistent(persistent)
            .bind(call_id)
            .bind(settlement.status.as_str())
            .bind(&settlement.result)
            .fetch_one(&mut *tx)
            .await?;
        let settled: ToolCall = ToolCallRow::from_row(&row)?.into();
        let event = ToolCalled {
            call_id,
            tool: settled.tool.clone(),
            status: settled.status,
        };
        sqlx::query(self.sql.tickets.append_event.clone())
            .persistent(persistent)
            .bind(Uuid::now_v7())
            .bind(settled.ticket_id)
            .bind(EventType::ToolCall.as_str())
            .bind(None::<String>)
            .bind(sqlx::types::Json(&event))
            .bind(None::<String>)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(settled)
    }

    async fn call_effects(&self, ticket_id: Uuid) -> Result<CallEffects, StoreError> {
        let sql = &self.sql.tool_calls;
        let refunds: Vec<RefundRow> = self.call_rows(&sql.refunds_of_ticket, ticket_id).await?;
        let escalations: Vec<EscalationRow> = self.call_rows(&sql.escalations, ticket_id).await?;
        let bug_reports: Vec<BugReportRow> = self.call_rows(&sql.bug_reports, ticket_id).await?;
        let resets: Vec<PasswordResetRow> = self.call_rows(&sql.resets, ticket_id).await?;
        Ok(CallEffects {
            refunds: refunds.into_iter().map(Into::into).collect(),
            escalations: escalations.into_iter().map(Into::into).collect(),
            bug_reports: bug_reports.into_iter().map(Into::into).collect(),
            password_resets: resets.into_iter().map(Into::into).collect(),
        })
    }

    async fn refunds(&self, order_id: &str) -> Result<Vec<Refund>, StoreError> {
        let rows: Vec<RefundRow> = self
            .call_rows(&self.sql.tool_calls.refunds_of_order, order_id.to_owned())
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
