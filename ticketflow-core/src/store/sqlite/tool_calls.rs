//! The tool-call journal and the calls' effects in SQLite. A settlement is one `BEGIN
//! IMMEDIATE` transaction: no other writer can change the ticket's epoch, the call or the
//! order between the checks and the writes.

use async_trait::async_trait;
use sqlx::{FromRow, Row, SqliteConnection};
use uuid::Uuid;

use super::rows::{
    BugReportRow, EscalationRow, PasswordResetRow, REFUND_COLUMNS, RefundRow, TOOL_CALL_COLUMNS, ToolCallRow,
};
use super::tickets::insert_event;
use super::{SqliteStore, now, timestamp};
use crate::commerce::{OrderStatus, Refund};
use crate::money::Money;
use crate::store::{
    Applied, CallEffects, CallStatus, Effect, Fence, NewEvent, NewToolCall, Render, StoreError, ToolCall, ToolCalled,
    ToolStore, effect_id,
};

/// The `tool_call` event of `call` as it is now.
fn tool_call_event(call: &ToolCall) -> NewEvent {
    NewEvent::of(&ToolCalled {
        call_id: call.call_id,
        tool: call.tool.clone(),
        status: call.status,
    })
}

async fn fetch_call(conn: &mut SqliteConnection, call_id: Uuid) -> Result<Option<ToolCall>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE call_id = ?"
    )))
    .bind(call_id.hyphenated())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| ToolCallRow::from_row(&r).map(ToolCall::from)).transpose()?)
}

/// Applies `effect` of `call` in `conn`'s transaction.
async fn apply(conn: &mut SqliteConnection, call: &ToolCall, effect: Effect) -> Result<Applied, StoreError> {
    let stamp = now();
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
                    let refunded = sqlx::query(
                        "UPDATE orders SET refunded_cents = refunded_cents + ?2, \
                             status = CASE WHEN refunded_cents + ?2 = total_cents THEN 'refunded' \
                                           ELSE 'partially_refunded' END, \
                             updated_at = ?3 \
                         WHERE id = ?1 AND refunded_cents + ?2 <= total_cents \
                         RETURNING id, status, total_cents - refunded_cents AS refundable",
                    )
                    .bind(&order_id)
                    .bind(amount.cents())
                    .bind(&stamp)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some(row) = refunded else {
                        let left: Option<i64> =
                            sqlx::query_scalar("SELECT total_cents - refunded_cents FROM orders WHERE id = ?")
                                .bind(&order_id)
                                .fetch_optional(&mut *conn)
                                .await?;
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
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO refunds (id, order_id, ticket_id, call_id, amount_cents, reason, external_id, created_at, \
                     approval_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, (SELECT a.id FROM approval_requests a WHERE a.call_id = ?4)) \
                 RETURNING {REFUND_COLUMNS}"
            )))
            .bind(effect_id("RF", call.call_id))
            .bind(&order_id)
            .bind(call.ticket_id.hyphenated())
            .bind(call.call_id.hyphenated())
            .bind(amount.cents())
            .bind(&reason)
            .bind(external_id)
            .bind(&stamp)
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
            sqlx::query(
                "INSERT INTO escalations (id, ticket_id, call_id, reason, suggested_action, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(call.ticket_id.hyphenated())
            .bind(call.call_id.hyphenated())
            .bind(&reason)
            .bind(&suggested_action)
            .bind(&stamp)
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
            sqlx::query(
                "INSERT INTO bug_reports (id, ticket_id, call_id, title, description, priority, external_url, \
                 created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(call.ticket_id.hyphenated())
            .bind(call.call_id.hyphenated())
            .bind(&title)
            .bind(&description)
            .bind(&priority)
            .bind(&external_url)
            .bind(&stamp)
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
            sqlx::query(
                "INSERT INTO password_resets (id, ticket_id, call_id, customer_id, email, token_hash, expires_at, \
                 message, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(call.ticket_id.hyphenated())
            .bind(call.call_id.hyphenated())
            .bind(&customer_id)
            .bind(&email)
            .bind(&token_hash)
            .bind(timestamp(expires_at))
            .bind(message.to_string())
            .bind(&stamp)
            .execute(&mut *conn)
            .await?;
            // The link goes out through the e-mail outbox, written with the reset.
            let turn: i32 = sqlx::query("SELECT turn FROM tickets WHERE id = ?")
                .bind(call.ticket_id.hyphenated())
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            let mail = crate::store::NewMessage::password_reset(&id, &message);
            super::messages::insert_message(call.ticket_id, turn, &mail)
                .execute(&mut *conn)
                .await?;
            Applied::ResetRequested { id, expires_at }
        }
    })
}

impl SqliteStore {
    async fn rows_of<T: for<'r> FromRow<'r, sqlx::sqlite::SqliteRow>>(
        &self,
        sql: &str,
        key: String,
    ) -> Result<Vec<T>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(key)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(T::from_row).collect::<Result<_, _>>()?)
    }
}

#[async_trait]
impl ToolStore for SqliteStore {
    async fn journal_call(&self, call: NewToolCall) -> Result<(ToolCall, bool), StoreError> {
        let mut tx = self.begin().await?;
        let stamp = now();
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tool_calls (call_id, ticket_id, tool, args, status, result, llm_call_id, created_at, updated_at, \
                 executed_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, CASE WHEN ?5 = 'executed' THEN ?8 END) \
             ON CONFLICT (call_id) DO NOTHING RETURNING {TOOL_CALL_COLUMNS}"
        )))
        .bind(call.call_id.hyphenated())
        .bind(call.ticket_id.hyphenated())
        .bind(&call.tool)
        .bind(call.args.to_string())
        .bind(call.status.as_str())
        .bind(call.result.as_ref().map(ToString::to_string))
        .bind(&call.llm_call_id)
        .bind(&stamp)
        .bind(&stamp)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| StoreError::for_ticket(e, call.ticket_id))?;
        let outcome = match inserted {
            Some(row) => {
                let journaled: ToolCall = ToolCallRow::from_row(&row)?.into();
                insert_event(&mut tx, journaled.ticket_id, &tool_call_event(&journaled), None).await?;
                (journaled, true)
            }
            None => {
                let existing = fetch_call(&mut tx, call.call_id)
                    .await?
                    .ok_or(StoreError::UnknownCall(call.call_id))?;
                if existing.ticket_id != call.ticket_id {
                    return Err(StoreError::Conflict {
                        id: call.ticket_id,
                        message: format!("call {} belongs to another ticket", call.call_id),
                    });
                }
                (existing, false)
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn tool_call(&self, call_id: Uuid) -> Result<Option<ToolCall>, StoreError> {
        let mut conn = self.read.acquire().await?;
        fetch_call(&mut conn, call_id).await
    }

    async fn tool_calls(&self, ticket_id: Uuid) -> Result<Vec<ToolCall>, StoreError> {
        let rows: Vec<ToolCallRow> = self
            .rows_of(
                &format!("SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE ticket_id = ? ORDER BY seq"),
                ticket_id.hyphenated().to_string(),
            )
            .await?;
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
        let mut tx = self.begin().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE tool_calls SET status = ?2, result = COALESCE(?3, result), updated_at = ?4 \
             WHERE call_id = ?1 AND status = 'awaiting_approval' RETURNING {TOOL_CALL_COLUMNS}"
        )))
        .bind(call_id.hyphenated())
        .bind(to.as_str())
        .bind(result.as_ref().map(ToString::to_string))
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match row {
            Some(row) => Ok(ToolCallRow::from_row(&row)?.into()),
            None => Err(match fetch_call(&mut tx, call_id).await? {
                None => StoreError::UnknownCall(call_id),
                Some(call) => StoreError::Conflict {
                    id: call.ticket_id,
                    message: format!("call {call_id} is {}, not awaiting approval", call.status),
                },
            }),
        };
        tx.commit().await?;
        outcome
    }

    async fn settle_call(
        &self,
        call_id: Uuid,
        fence: Option<Fence>,
        effect: Effect,
        render: Render<'_>,
    ) -> Result<ToolCall, StoreError> {
        let mut tx = self.begin().await?;
        let call = fetch_call(&mut tx, call_id)
            .await?
            .ok_or(StoreError::UnknownCall(call_id))?;
        if let Some(fence) = fence {
            let epoch: Option<i64> = sqlx::query_scalar("SELECT lease_epoch FROM tickets WHERE id = ?")
                .bind(call.ticket_id.hyphenated())
                .fetch_optional(&mut *tx)
                .await?;
            if fence.ticket_id != call.ticket_id || epoch != Some(fence.epoch) {
                return Err(StoreError::Fenced(format!(
                    "ticket {} is at lease epoch {epoch:?}, this run holds {}",
                    call.ticket_id, fence.epoch
                )));
            }
        }
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
        let applied = apply(&mut tx, &call, effect).await?;
        let settlement = render(&applied);
        let stamp = now();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE tool_calls SET status = ?2, result = ?3, updated_at = ?4, \
                 executed_at = CASE WHEN ?2 = 'executed' THEN ?4 END \
             WHERE call_id = ?1 RETURNING {TOOL_CALL_COLUMNS}"
        )))
        .bind(call_id.hyphenated())
        .bind(settlement.status.as_str())
        .bind(settlement.result.to_string())
        .bind(&stamp)
        .fetch_one(&mut *tx)
        .await?;
        let settled: ToolCall = ToolCallRow::from_row(&row)?.into();
        insert_event(&mut tx, settled.ticket_id, &tool_call_event(&settled), None).await?;
        tx.commit().await?;
        Ok(settled)
    }

    async fn call_effects(&self, ticket_id: Uuid) -> Result<CallEffects, StoreError> {
        let key = ticket_id.hyphenated().to_string();
        let of = |table: &str, columns: &str| {
            format!("SELECT {columns} FROM {table} WHERE ticket_id = ? ORDER BY created_at, id")
        };
        let refunds: Vec<RefundRow> = self.rows_of(&of("refunds", REFUND_COLUMNS), key.clone()).await?;
        let escalations: Vec<EscalationRow> = self
            .rows_of(
                &of(
                    "escalations",
                    "id, ticket_id, call_id, reason, suggested_action, status, created_at",
                ),
                key.clone(),
            )
            .await?;
        let bug_reports: Vec<BugReportRow> = self
            .rows_of(
                &of(
                    "bug_reports",
                    "id, ticket_id, call_id, title, description, priority, external_url, created_at",
                ),
                key.clone(),
            )
            .await?;
        let resets: Vec<PasswordResetRow> = self
            .rows_of(
                &of(
                    "password_resets",
                    "id, ticket_id, call_id, customer_id, email, token_hash, expires_at, email_status, created_at",
                ),
                key,
            )
            .await?;
        Ok(CallEffects {
            refunds: refunds.into_iter().map(Into::into).collect(),
            escalations: escalations.into_iter().map(Into::into).collect(),
            bug_reports: bug_reports.into_iter().map(Into::into).collect(),
            password_resets: resets.into_iter().map(Into::into).collect(),
        })
    }

    async fn refunds(&self, order_id: &str) -> Result<Vec<Refund>, StoreError> {
        let rows: Vec<RefundRow> = self
            .rows_of(
                &format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE order_id = ? ORDER BY created_at, id"),
                order_id.to_owned(),
            )
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
