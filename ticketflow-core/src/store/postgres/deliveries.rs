//! The e-mail outbox in PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, Row, SqlStr};

use super::PgStore;
use super::rows::{MESSAGE_COLUMNS, MessageRow};
use super::sql::statement;
use crate::store::deliveries::DELIVERED_SECRET;
use crate::store::deliveries::{delivery_event, delivery_status};
use crate::store::{AUTO_SUBMITTED, ConversationMessage, DeliveryOutcome, DeliveryStore, PASSWORD_RESET, StoreError};

/// The delivery statements.
#[derive(Debug)]
pub(super) struct DeliverySql {
    claim: SqlStr,
    record: SqlStr,
    reset_status: SqlStr,
    automatic_to: SqlStr,
}

impl DeliverySql {
    pub(super) fn new(schema: &str) -> Self {
        Self {
            // SKIP LOCKED: relays in several processes share the queue without waiting on each
            // other's rows.
            claim: statement(
                schema,
                &format!(
                    "UPDATE {{schema}}.ticket_messages SET attempts = attempts + 1, \
                         available_at = now() + make_interval(secs => $2) \
                     WHERE id IN (SELECT id FROM {{schema}}.ticket_messages \
                         WHERE status = 'queued' AND channel = 'email' \
                             AND (available_at IS NULL OR available_at <= now()) \
                         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
                     RETURNING {MESSAGE_COLUMNS}"
                ),
            ),
            record: statement(
                schema,
                &format!(
                    "UPDATE {{schema}}.ticket_messages SET status = $2, last_error = $3, \
                         provider = coalesce($4, provider), available_at = $5, \
                         sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END, \
                         text = CASE WHEN $2 <> 'queued' AND metadata->>'kind' = '{PASSWORD_RESET}' \
                             THEN '{DELIVERED_SECRET}' ELSE text END, \
                         reply_text = CASE WHEN $2 <> 'queued' AND metadata->>'kind' = '{PASSWORD_RESET}' \
                             THEN '{DELIVERED_SECRET}' ELSE reply_text END \
                     WHERE id = $1 AND status = 'queued' AND attempts = $6 RETURNING metadata->>'reset_id'"
                ),
            ),
            reset_status: statement(
                schema,
                "UPDATE {schema}.password_resets SET email_status = $2, \
                     message = CASE WHEN $2 = 'queued' THEN message END WHERE id = $1",
            ),
            automatic_to: statement(
                schema,
                &format!(
                    "SELECT count(*) FROM {{schema}}.ticket_messages WHERE direction = 'outbound' \
                     AND lower(to_address) = lower($1) AND created_at > $2 AND status IN ('queued', 'sent') \
                     AND (metadata->>'{AUTO_SUBMITTED}')::boolean IS TRUE"
                ),
            ),
        }
    }
}

#[async_trait]
impl DeliveryStore for PgStore {
    async fn claim_deliveries(&self, limit: u32, visibility: Duration) -> Result<Vec<ConversationMessage>, StoreError> {
        let rows = self
            .db
            .fetch_all(
                sqlx::query(self.sql.deliveries.claim.clone())
                    .bind(i64::from(limit))
                    .bind(visibility.as_secs_f64()),
            )
            .await?;
        let mut claimed = rows
            .iter()
            .map(|row| Ok(MessageRow::from_row(row)?.into()))
            .collect::<Result<Vec<ConversationMessage>, StoreError>>()?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    async fn record_delivery(&self, message: &ConversationMessage, outcome: DeliveryOutcome) -> Result<(), StoreError> {
        let persistent = self.db.persistent();
        let sql = &self.sql.deliveries;
        let (status, error) = delivery_status(&outcome);
        let provider = match &outcome {
            DeliveryOutcome::Sent { provider } => Some(provider.as_str()),
            _ => None,
        };
        let retry_at = match &outcome {
            DeliveryOutcome::Retry { retry_at, .. } => Some(*retry_at),
            _ => None,
        };
        let mut tx = self.db.begin().await?;
        let updated = sqlx::query(sql.record.clone())
            .persistent(persistent)
            .bind(message.id)
            .bind(status.as_str())
            .bind(error)
            .bind(provider)
            .bind(retry_at)
            .bind(message.attempts)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(updated) = updated else {
            return Ok(());
        };
        if let Some(reset_id) = updated.try_get::<Option<String>, _>(0)? {
            sqlx::query(sql.reset_status.clone())
                .persistent(persistent)
                .bind(reset_id)
                .bind(status.as_str())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(event) = delivery_event(message, &outcome) {
            self.append_event_statement(message.ticket_id, &event)
                .persistent(persistent)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn automatic_replies_to(&self, address: &str, since: DateTime<Utc>) -> Result<u32, StoreError> {
        let row = self
            .db
            .fetch_one(
                sqlx::query(self.sql.deliveries.automatic_to.clone())
                    .bind(address)
                    .bind(since),
            )
            .await?;
        Ok(u32::try_from(row.try_get::<i64, _>(0)?).unwrap_or(u32::MAX))
    }
}
