//! The webhook outbox in SQLite (the trigger of migration 0009 fills it).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, Row};
use uuid::fmt::Hyphenated;

use super::{SqliteStore, after, now, timestamp};
use crate::store::webhooks::already_delivered;
use crate::store::{
    StoreError, WebhookAttempt, WebhookDelivery, WebhookOutcome, WebhookPage, WebhookQuery, WebhookStatus, WebhookStore,
};

const COLUMNS: &str = "id, event_id, endpoint, event_type, ticket_id, body, status, attempts, available_at, \
                       retry_from, last_error, last_status, created_at, delivered_at";

/// The filters of a list, as parameters ?1 (status), ?2 (event type), ?3 (ticket).
const FILTER: &str =
    "(?1 IS NULL OR status = ?1) AND (?2 IS NULL OR event_type = ?2) AND (?3 IS NULL OR ticket_id = ?3)";

#[derive(FromRow)]
struct WebhookRow {
    id: i64,
    event_id: Hyphenated,
    endpoint: String,
    event_type: String,
    ticket_id: Hyphenated,
    body: serde_json::Value,
    status: WebhookStatus,
    attempts: i32,
    available_at: DateTime<Utc>,
    retry_from: DateTime<Utc>,
    last_error: Option<String>,
    last_status: Option<i32>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

impl From<WebhookRow> for WebhookDelivery {
    fn from(r: WebhookRow) -> Self {
        WebhookDelivery {
            id: r.id,
            event_id: r.event_id.into_uuid(),
            endpoint: r.endpoint,
            event_type: r.event_type,
            ticket_id: r.ticket_id.into_uuid(),
            body: r.body,
            status: r.status,
            attempts: r.attempts,
            available_at: r.available_at,
            retry_from: r.retry_from,
            last_error: r.last_error,
            last_status: r.last_status,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
        }
    }
}

fn deliveries(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<WebhookDelivery>, StoreError> {
    Ok(rows
        .iter()
        .map(|r| WebhookRow::from_row(r).map(WebhookDelivery::from))
        .collect::<Result<_, _>>()?)
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn register_webhook_endpoints(&self, urls: &[String]) -> Result<(), StoreError> {
        let at = now();
        let mut tx = self.begin().await?;
        let listed = serde_json::to_string(urls).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "UPDATE webhook_endpoints SET active = 0, updated_at = ?2 \
             WHERE active = 1 AND url NOT IN (SELECT value FROM json_each(?1))",
        )
        .bind(&listed)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        for url in urls {
            sqlx::query(
                "INSERT INTO webhook_endpoints (url, active, updated_at) VALUES (?1, 1, ?2) \
                 ON CONFLICT (url) DO UPDATE SET active = 1, updated_at = ?2 WHERE active = 0",
            )
            .bind(url)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_webhooks(
        &self,
        limit: u32,
        visibility: Duration,
        resting: &[String],
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let at = Utc::now();
        let resting = serde_json::to_string(resting).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // A read first: most rounds find nothing, and need not queue for the one writer.
        let due: bool = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND available_at <= ?1 \
                 AND endpoint NOT IN (SELECT value FROM json_each(?2)))",
        )
        .bind(timestamp(at))
        .bind(&resting)
        .fetch_one(&self.read)
        .await?
        .try_get(0)?;
        if !due {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, available_at = ?1 \
             WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND available_at <= ?2 \
                 AND endpoint NOT IN (SELECT value FROM json_each(?4)) \
                 ORDER BY available_at, id LIMIT ?3) \
             RETURNING {COLUMNS}"
        )))
        .bind(after(at, visibility))
        .bind(timestamp(at))
        .bind(i64::from(limit))
        .bind(&resting)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut claimed = deliveries(&rows)?;
        claimed.sort_by_key(|d| d.id);
        Ok(claimed)
    }

    async fn record_webhooks(&self, attempts: &[WebhookAttempt]) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let recorded_at = now();
        let mut tx = self.begin().await?;
        for WebhookAttempt { delivery, outcome } in attempts {
            let (error, status) = outcome.error_and_status();
            let retry_at = match outcome {
                WebhookOutcome::Retry { retry_at, .. } => Some(timestamp(*retry_at)),
                _ => None,
            };
            sqlx::query(
                "UPDATE webhook_deliveries SET status = ?2, last_error = ?3, last_status = ?4, \
                     available_at = coalesce(?5, available_at), \
                     delivered_at = CASE WHEN ?2 = 'delivered' THEN ?6 END \
                 WHERE id = ?1 AND status = 'pending' AND attempts = ?7",
            )
            .bind(delivery.id)
            .bind(outcome.status().as_str())
            .bind(error)
            .bind(status)
            .bind(retry_at)
            .bind(recorded_at.clone())
            .bind(delivery.attempts)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn webhook_deliveries(&self, query: &WebhookQuery) -> Result<WebhookPage, StoreError> {
        let page_size = query.page_size.clamp(1, 100);
        let page = query.page.max(1);
        let status = query.status.map(WebhookStatus::as_str);
        let ticket = query.ticket_id.map(|t| t.hyphenated().to_string());
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM webhook_deliveries WHERE {FILTER} ORDER BY id DESC LIMIT ?4 OFFSET ?5"
        )))
        .bind(status)
        .bind(query.event_type.as_deref())
        .bind(ticket.as_deref())
        .bind(i64::from(page_size))
        .bind(i64::from(page - 1) * i64::from(page_size))
        .fetch_all(&self.read)
        .await?;
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM webhook_deliveries WHERE {FILTER}"
        )))
        .bind(status)
        .bind(query.event_type.as_deref())
        .bind(ticket.as_deref())
        .fetch_one(&self.read)
        .await?
        .try_get(0)?;
        Ok(WebhookPage {
            deliveries: deliveries(&rows)?,
            total,
            page,
            page_size,
        })
    }

    async fn retry_webhook(&self, id: i64) -> Result<Option<WebhookDelivery>, StoreError> {
        let at = now();
        let mut tx = self.begin().await?;
        let retried = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_deliveries SET status = 'pending', available_at = ?2, retry_from = ?2 \
             WHERE id = ?1 AND status <> 'delivered' RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(&at)
        .fetch_optional(&mut *tx)
        .await?;
        let existing = match retried {
            Some(_) => None,
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM webhook_deliveries WHERE id = ?"
                )))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        tx.commit().await?;
        match (retried, existing) {
            (Some(row), _) => Ok(Some(WebhookRow::from_row(&row)?.into())),
            (None, Some(row)) => Err(already_delivered(&WebhookRow::from_row(&row)?.into())),
            (None, None) => Ok(None),
        }
    }
}
