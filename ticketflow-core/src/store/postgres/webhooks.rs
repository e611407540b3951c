//! The webhook outbox in PostgreSQL (the trigger of migration 0011 fills it).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, Row, SqlStr};
use uuid::Uuid;

use super::PgStore;
use super::sql::statement;
use crate::store::webhooks::already_delivered;
use crate::store::{
    StoreError, WebhookAttempt, WebhookDelivery, WebhookOutcome, WebhookPage, WebhookQuery, WebhookStatus, WebhookStore,
};

const COLUMNS: &str = "id, event_id, endpoint, event_type, ticket_id, body, status, attempts, available_at, \
                       retry_from, last_error, last_status, created_at, delivered_at";

#[derive(FromRow)]
struct WebhookRow {
    id: i64,
    event_id: Uuid,
    endpoint: String,
    event_type: String,
    ticket_id: Uuid,
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
            event_id: r.event_id,
            endpoint: r.endpoint,
            event_type: r.event_type,
            ticket_id: r.ticket_id,
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

fn deliveries(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<WebhookDelivery>, StoreError> {
    Ok(rows
        .iter()
        .map(|r| WebhookRow::from_row(r).map(WebhookDelivery::from))
        .collect::<Result<_, _>>()?)
}

/// The webhook statements.
#[derive(Debug)]
pub(super) struct WebhookSql {
    deactivate: SqlStr,
    activate: SqlStr,
    claim: SqlStr,
    record: SqlStr,
    list: SqlStr,
    count: SqlStr,
    get: SqlStr,
    retry: SqlStr,
}

/// The filters of a list, as parameters $1 (status), $2 (event type), $3 (ticket).
const FILTER: &str = "($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR event_type = $2) \
                      AND ($3::uuid IS NULL OR ticket_id = $3)";

impl WebhookSql {
    pub(super) fn new(schema: &str) -> Self {
        Self {
            deactivate: statement(
                schema,
                "UPDATE {schema}.webhook_endpoints SET active = false, updated_at = now() \
                 WHERE active AND url <> ALL($1)",
            ),
            activate: statement(
                schema,
                "INSERT INTO {schema}.webhook_endpoints (url) SELECT unnest($1::text[]) \
                 ON CONFLICT (url) DO UPDATE SET active = true, updated_at = now() \
                 WHERE NOT {schema}.webhook_endpoints.active",
            ),
            // SKIP LOCKED: relays in several processes share the outbox without waiting.
            claim: statement(
                schema,
                &format!(
                    "UPDATE {{schema}}.webhook_deliveries SET attempts = attempts + 1, \
                         available_at = now() + make_interval(secs => $2) \
                     WHERE id IN (SELECT id FROM {{schema}}.webhook_deliveries \
                         WHERE status = 'pending' AND available_at <= now() AND endpoint <> ALL($3::text[]) \
                         ORDER BY available_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
                     RETURNING {COLUMNS}"
                ),
            ),
            record: statement(
                schema,
                "UPDATE {schema}.webhook_deliveries d SET status = o.status, last_error = o.error, \
                     last_status = o.http_status, available_at = coalesce(o.retry_at, d.available_at), \
                     delivered_at = CASE WHEN o.status = 'delivered' THEN now() END \
                 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::integer[], $5::timestamptz[], \
                             $6::integer[]) AS o(id, status, error, http_status, retry_at, attempts) \
                 WHERE d.id = o.id AND d.status = 'pending' AND d.attempts = o.attempts",
            ),
            list: statement(
                schema,
                &format!(
                    "SELECT {COLUMNS} FROM {{schema}}.webhook_deliveries WHERE {FILTER} \
                     ORDER BY id DESC LIMIT $4 OFFSET $5"
                ),
            ),
            count: statement(
                schema,
                &format!("SELECT count(*) FROM {{schema}}.webhook_deliveries WHERE {FILTER}"),
            ),
            get: statement(
                schema,
                &format!("SELECT {COLUMNS} FROM {{schema}}.webhook_deliveries WHERE id = $1"),
            ),
            retry: statement(
                schema,
                &format!(
                    "UPDATE {{schema}}.webhook_deliveries SET status = 'pending', available_at = now(), \
                         retry_from = now() \
                     WHERE id = $1 AND status <> 'delivered' RETURNING {COLUMNS}"
                ),
            ),
        }
    }
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn register_webhook_endpoints(&self, urls: &[String]) -> Result<(), StoreError> {
        let persistent = self.db.persistent();
        let mut tx = self.db.begin().await?;
        sqlx::query(self.sql.webhooks.deactivate.clone())
            .bind(urls)
            .persistent(persistent)
            .execute(&mut *tx)
            .await?;
        sqlx::query(self.sql.webhooks.activate.clone())
            .bind(urls)
            .persistent(persistent)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_webhooks(
        &self,
        limit: u32,
        visibility: Duration,
        resting: &[String],
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let rows = self
            .db
            .fetch_all(
                sqlx::query(self.sql.webhooks.claim.clone())
                    .bind(i64::from(limit))
                    .bind(visibility.as_secs_f64())
                    .bind(resting),
            )
            .await?;
        let mut claimed = deliveries(&rows)?;
        claimed.sort_by_key(|d| d.id);
        Ok(claimed)
    }

    async fn record_webhooks(&self, attempts: &[WebhookAttempt]) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(attempts.len());
        let mut statuses = Vec::with_capacity(attempts.len());
        let mut errors = Vec::with_capacity(attempts.len());
        let mut http_statuses = Vec::with_capacity(attempts.len());
        let mut retry_ats = Vec::with_capacity(attempts.len());
        let mut counts = Vec::with_capacity(attempts.len());
        for WebhookAttempt { delivery, outcome } in attempts {
            let (error, status) = outcome.error_and_status();
            ids.push(delivery.id);
            statuses.push(outcome.status().as_str());
            errors.push(error);
            http_statuses.push(status);
            retry_ats.push(match outcome {
                WebhookOutcome::Retry { retry_at, .. } => Some(*retry_at),
                _ => None,
            });
            counts.push(delivery.attempts);
        }
        self.db
            .execute(
                sqlx::query(self.sql.webhooks.record.clone())
                    .bind(ids)
                    .bind(statuses)
                    .bind(errors)
                    .bind(http_statuses)
                    .bind(retry_ats)
                    .bind(counts),
            )
            .await?;
        Ok(())
    }

    async fn webhook_deliveries(&self, query: &WebhookQuery) -> Result<WebhookPage, StoreError> {
        let page_size = query.page_size.clamp(1, 100);
        let page = query.page.max(1);
        let status = query.status.map(WebhookStatus::as_str);
        let rows = self
            .db
            .fetch_all(
                sqlx::query(self.sql.webhooks.list.clone())
                    .bind(status)
                    .bind(query.event_type.as_deref())
                    .bind(query.ticket_id)
                    .bind(i64::from(page_size))
                    .bind(i64::from(page - 1) * i64::from(page_size)),
            )
            .await?;
        let total: i64 = self
            .db
            .fetch_one(
                sqlx::query(self.sql.webhooks.count.clone())
                    .bind(status)
                    .bind(query.event_type.as_deref())
                    .bind(query.ticket_id),
            )
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
        let retried = self
            .db
            .fetch_optional(sqlx::query(self.sql.webhooks.retry.clone()).bind(id))
            .await?;
        if let Some(row) = retried {
            return Ok(Some(WebhookRow::from_row(&row)?.into()));
        }
        match self
            .db
            .fetch_optional(sqlx::query(self.sql.webhooks.get.clone()).bind(id))
            .await?
        {
            Some(row) => Err(already_delivered(&WebhookRow::from_row(&row)?.into())),
            None => Ok(None),
        }
    }
}
