//! The e-mail outbox in SQLite.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, Row};

use super::rows::{MESSAGE_COLUMNS, MessageRow};
use super::tickets::insert_event;
use super::{SqliteStore, after, now, timestamp};
use crate::store::deliveries::DELIVERED_SECRET;
use crate::store::deliveries::{delivery_event, delivery_status};
use crate::store::{AUTO_SUBMITTED, ConversationMessage, DeliveryOutcome, DeliveryStore, PASSWORD_RESET, StoreError};

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn claim_deliveries(&self, limit: u32, visibility: Duration) -> Result<Vec<ConversationMessage>, StoreError> {
        let at = Utc::now();
        // A read first: most rounds find nothing, and need not queue for the one writer.
        let due: bool = {
            let mut conn = self.read.acquire().await?;
            sqlx::query(
                "SELECT EXISTS (SELECT 1 FROM ticket_messages WHERE status = 'queued' AND channel = 'email' \
                     AND (available_at IS NULL OR available_at <= ?))",
            )
            .bind(timestamp(at))
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?
        };
        if !due {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        // The one writer's transaction: no other relay claims these rows meanwhile.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE ticket_messages SET attempts = attempts + 1, available_at = ?1 \
             WHERE id IN (SELECT id FROM ticket_messages WHERE status = 'queued' AND channel = 'email' \
                 AND (available_at IS NULL OR available_at <= ?2) ORDER BY id LIMIT ?3) \
             RETURNING {MESSAGE_COLUMNS}"
        )))
        .bind(after(at, visibility))
        .bind(timestamp(at))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut claimed = rows
            .iter()
            .map(|row| Ok(MessageRow::from_row(row)?.into()))
            .collect::<Result<Vec<ConversationMessage>, StoreError>>()?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    async fn record_delivery(&self, message: &ConversationMessage, outcome: DeliveryOutcome) -> Result<(), StoreError> {
        let (status, error) = delivery_status(&outcome);
        let provider = match &outcome {
            DeliveryOutcome::Sent { provider } => Some(provider.as_str()),
            _ => None,
        };
        let retry_at = match &outcome {
            DeliveryOutcome::Retry { retry_at, .. } => Some(timestamp(*retry_at)),
            _ => None,
        };
        let mut tx = self.begin().await?;
        let updated = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE ticket_messages SET status = ?2, last_error = ?3, provider = coalesce(?4, provider), \
                 available_at = ?5, sent_at = CASE WHEN ?2 = 'sent' THEN ?6 ELSE sent_at END, \
                 text = CASE WHEN ?2 <> 'queued' AND json_extract(metadata, '$.kind') = '{PASSWORD_RESET}' \
                     THEN '{DELIVERED_SECRET}' ELSE text END, \
                 reply_text = CASE WHEN ?2 <> 'queued' AND json_extract(metadata, '$.kind') = '{PASSWORD_RESET}' \
                     THEN '{DELIVERED_SECRET}' ELSE reply_text END \
             WHERE id = ?1 AND status = 'queued' AND attempts = ?7 RETURNING json_extract(metadata, '$.reset_id')"
        )))
        .bind(message.id)
        .bind(status.as_str())
        .bind(error)
        .bind(provider)
        .bind(retry_at)
        .bind(now())
        .bind(message.attempts)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(updated) = updated else {
            return Ok(());
        };
        if let Some(reset_id) = updated.try_get::<Option<String>, _>(0)? {
            sqlx::query(
                "UPDATE password_resets SET email_status = ?2, message = CASE WHEN ?2 = 'queued' THEN message END \
                 WHERE id = ?1",
            )
            .bind(reset_id)
            .bind(status.as_str())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(event) = delivery_event(message, &outcome) {
            insert_event(&mut tx, message.ticket_id, &event, None).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn automatic_replies_to(&self, address: &str, since: DateTime<Utc>) -> Result<u32, StoreError> {
        let mut conn = self.read.acquire().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM ticket_messages WHERE direction = 'outbound' \
             AND lower(to_address) = lower(?1) AND created_at > ?2 AND status IN ('queued', 'sent') \
             AND json_extract(metadata, '$.{AUTO_SUBMITTED}') = 1"
        )))
        .bind(address)
        .bind(timestamp(since))
        .fetch_one(&mut *conn)
        .await?;
        Ok(u32::try_from(row.try_get::<i64, _>(0)?).unwrap_or(u32::MAX))
    }
}
