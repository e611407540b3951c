//! Tickets and their events in SQLite.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{FromRow, QueryBuilder, Row, SqliteConnection};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use super::rows::{EVENT_COLUMNS, EventRow, PastTicketRow, TICKET_COLUMNS, TicketRow};
use super::{SqliteStore, after, now};
use crate::store::{
    Created, ListQuery, NewEvent, NewTicket, StoreError, Ticket, TicketEvent, TicketPage, TicketStatus, TicketStore,
    Transition, content_hash, ticket_id,
};
use crate::{HistorySource, PastTicket};

/// A ticket and its content hash, read in `conn`.
pub(super) async fn fetch_ticket(conn: &mut SqliteConnection, id: Uuid) -> Result<Option<(Ticket, Uuid)>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TICKET_COLUMNS}, content_hash FROM tickets WHERE id = ?"
    )))
    .bind(id.hyphenated())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        let hash: Hyphenated = r.try_get("content_hash")?;
        Ok((TicketRow::from_row(&r)?.into(), hash.into_uuid()))
    })
    .transpose()
}

/// Appends `event` in `conn`'s transaction; a step's event names its checkpoint as (turn,
/// step).
pub(super) async fn insert_event(
    conn: &mut SqliteConnection,
    ticket_id: Uuid,
    event: &NewEvent,
    checkpoint: Option<(i32, i64)>,
) -> Result<TicketEvent, StoreError> {
    let (turn, checkpoint_step) = checkpoint.map_or((1, None), |(turn, step)| (turn, Some(step)));
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO ticket_events (id, ticket_id, event_type, step_name, checkpoint_step, payload, request_id, \
         created_at, turn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {EVENT_COLUMNS}"
    )))
    .bind(Uuid::now_v7().hyphenated())
    .bind(ticket_id.hyphenated())
    .bind(event.event_type.as_str())
    .bind(event.step_name.as_deref())
    .bind(checkpoint_step)
    .bind(event.payload.to_string())
    .bind(event.request_id.as_deref())
    .bind(now())
    .bind(turn)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| StoreError::for_ticket(e, ticket_id))?;
    Ok(EventRow::from_row(&row)?.into())
}

/// An outbox row for `ticket_id`, due after `delay`. The trace context of the ticket's latest
/// enqueue is carried on, so a retry's spans join the trace that created the ticket.
pub(super) async fn enqueue(
    conn: &mut SqliteConnection,
    ticket_id: Uuid,
    request_id: Option<&str>,
    delay: Duration,
) -> Result<(), StoreError> {
    let at = chrono::Utc::now();
    sqlx::query(
        "INSERT INTO outbox (ticket_id, request_id, traceparent, available_at, created_at) VALUES (?1, ?2, \
         (SELECT o.traceparent FROM outbox o WHERE o.ticket_id = ?1 ORDER BY o.id DESC LIMIT 1), ?3, ?4)",
    )
    .bind(ticket_id.hyphenated())
    .bind(request_id)
    .bind(after(at, delay))
    .bind(super::timestamp(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A transition in `conn`'s (write) transaction: the ticket at its expected version moves,
/// with its `status_change` event, its own events and the outbox row it asks for.
pub(super) async fn transition_in(
    conn: &mut SqliteConnection,
    ticket: &Ticket,
    change: Transition,
) -> Result<Ticket, StoreError> {
    let at = now();
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE tickets SET status = ?1, version = version + 1, result = COALESCE(?2, result), \
             attempt_count = ?3, \
             worker_id = CASE WHEN ?1 = 'processing' THEN worker_id END, \
             lease_expires_at = CASE WHEN ?1 = 'processing' THEN lease_expires_at END, \
             started_at = CASE WHEN ?1 = 'processing' THEN COALESCE(started_at, ?4) ELSE started_at END, \
             completed_at = CASE WHEN ?1 IN ('completed', 'failed_permanent') THEN ?4 \
                                 WHEN ?1 IN ('pending', 'processing') THEN NULL ELSE completed_at END, \
             updated_at = ?4 \
         WHERE id = ?5 AND version = ?6 RETURNING {TICKET_COLUMNS}"
    )))
    .bind(change.to.as_str())
    .bind(change.result.as_ref().map(ToString::to_string))
    .bind(change.attempt_count_after(ticket))
    .bind(&at)
    .bind(ticket.id.hyphenated())
    .bind(ticket.version)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Err(match fetch_ticket(&mut *conn, ticket.id).await? {
            None => StoreError::NotFound(ticket.id),
            Some((current, _)) => StoreError::Conflict {
                id: ticket.id,
                message: format!("expected version {}, found {}", ticket.version, current.version),
            },
        });
    };
    let moved: Ticket = TicketRow::from_row(&row)?.into();
    let status_change = NewEvent::of(&change.status_change(ticket)).for_request(change.request_id.clone());
    insert_event(&mut *conn, ticket.id, &status_change, None).await?;
    for event in &change.events {
        insert_event(&mut *conn, ticket.id, event, None).await?;
    }
    if let Some(delay) = change.enqueue_after {
        enqueue(&mut *conn, ticket.id, change.request_id.as_deref(), delay).await?;
    }
    Ok(moved)
}

#[async_trait]
impl TicketStore for SqliteStore {
    async fn create(&self, new: NewTicket) -> Result<(Ticket, bool), StoreError> {
        new.validate()?;
        let hash = content_hash(&new.customer_id, &new.subject, &new.body);
        let id = ticket_id(
            &new.customer_id,
            &new.subject,
            &new.body,
            new.idempotency_key.as_deref(),
        );
        let mut tx = self.begin().await?;
        let created_at = now();
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tickets (id, customer_id, subject, body, channel, metadata, content_hash, idempotency_key, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING RETURNING {TICKET_COLUMNS}"
        )))
        .bind(id.hyphenated())
        .bind(&new.customer_id)
        .bind(&new.subject)
        .bind(&new.body)
        .bind(new.channel_or_default())
        .bind(new.metadata_or_default().to_string())
        .bind(hash.hyphenated())
        .bind(new.idempotency_key.as_deref())
        .bind(&created_at)
        .bind(&created_at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            let (existing, existing_hash) = fetch_ticket(&mut tx, id).await?.ok_or(StoreError::NotFound(id))?;
            tx.rollback().await?;
            if existing_hash != hash {
                return Err(StoreError::IdempotencyConflict(id));
            }
            return Ok((existing, false));
        };
        let ticket: Ticket = TicketRow::from_row(&row)?.into();
        let created = Created {
            status: TicketStatus::Pending,
            channel: ticket.channel.clone(),
            actor: new.actor.clone(),
        };
        insert_event(
            &mut tx,
            id,
            &NewEvent::of(&created).for_request(new.request_id.clone()),
            None,
        )
        .await?;
        super::messages::insert_message(id, 1, &new.first_message_for(id))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO outbox (ticket_id, request_id, traceparent, available_at, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id.hyphenated())
        .bind(new.request_id.as_deref())
        .bind(new.traceparent.as_deref())
        .bind(&created_at)
        .bind(&created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((ticket, true))
    }

    async fn get(&self, id: Uuid) -> Result<Option<Ticket>, StoreError> {
        let mut conn = self.read.acquire().await?;
        Ok(fetch_ticket(&mut conn, id).await?.map(|(t, _)| t))
    }

    async fn list(&self, query: &ListQuery) -> Result<TicketPage, StoreError> {
        query.validate()?;
        let (page, page_size) = query.bounded();
        let words = query.q.as_deref().map(crate::store::search_words);
        if words.as_ref().is_some_and(Vec::is_empty) {
            // Punctuation alone: no ticket holds a word of it (as PostgreSQL finds none).
            return Ok(TicketPage {
                tickets: Vec::new(),
                total: 0,
                page,
                page_size,
            });
        }
        let filter = |builder: &mut QueryBuilder<sqlx::Sqlite>| {
            builder.push(" WHERE 1 = 1");
            if let Some(status) = query.status {
                builder.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(customer) = &query.customer_id {
                builder.push(" AND customer_id = ").push_bind(customer.clone());
            }
            if let Some(channel) = &query.channel {
                builder.push(" AND channel = ").push_bind(channel.clone());
            }
            if let Some(after) = query.created_after {
                builder.push(" AND created_at >= ").push_bind(super::timestamp(after));
            }
            if let Some(before) = query.created_before {
                builder.push(" AND created_at < ").push_bind(super::timestamp(before));
            }
            if let Some(words) = &words {
                builder
                    .push(
                        " AND id IN (SELECT s.ticket_id FROM ticket_search s JOIN tickets_fts f ON f.rowid = s.id \
                         WHERE tickets_fts MATCH ",
                    )
                    .push_bind(words.join(" "))
                    .push(")");
            }
        };
        let mut count = QueryBuilder::new("SELECT count(*) FROM tickets");
        filter(&mut count);
        let total: i64 = count.build().fetch_one(&self.read).await?.try_get(0)?;
        let mut select = QueryBuilder::new(format!("SELECT {TICKET_COLUMNS} FROM tickets"));
        filter(&mut select);
        select
            .push(query.sort.order_by())
            .push(" LIMIT ")
            .push_bind(i64::from(page_size))
            .push(" OFFSET ")
            .push_bind(query.offset());
        let rows = select.build().fetch_all(&self.read).await?;
        Ok(TicketPage {
            tickets: rows
                .iter()
                .map(|r| TicketRow::from_row(r).map(Ticket::from))
                .collect::<Result<_, _>>()?,
            total,
            page,
            page_size,
        })
    }

    async fn events(&self, id: Uuid) -> Result<Vec<TicketEvent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM ticket_events WHERE ticket_id = ? ORDER BY seq"
        )))
        .bind(id.hyphenated())
        .fetch_all(&self.read)
        .await?;
        if rows.is_empty() && self.get(id).await?.is_none() {
            return Err(StoreError::NotFound(id));
        }
        Ok(rows
            .iter()
            .map(|r| EventRow::from_row(r).map(TicketEvent::from))
            .collect::<Result<_, _>>()?)
    }

    async fn append_event(&self, ticket_id: Uuid, event: NewEvent) -> Result<TicketEvent, StoreError> {
        let mut tx = self.begin().await?;
        let appended = insert_event(&mut tx, ticket_id, &event, None).await?;
        tx.commit().await?;
        Ok(appended)
    }

    async fn transition(&self, ticket: &Ticket, change: Transition) -> Result<Ticket, StoreError> {
        let mut tx = self.begin().await?;
        let moved = transition_in(&mut tx, ticket, change).await?;
        tx.commit().await?;
        Ok(moved)
    }
}

#[async_trait]
impl HistorySource for SqliteStore {
    async fn recent_tickets(
        &self,
        customer_id: &str,
        except_ticket: &str,
        limit: usize,
    ) -> Result<Vec<PastTicket>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, subject, status, created_at FROM tickets WHERE customer_id = ? AND id <> ? \
             ORDER BY created_at DESC LIMIT ?",
        )
        .bind(customer_id)
        .bind(except_ticket)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| PastTicketRow::from_row(r).map(PastTicket::from))
            .collect::<Result<_, _>>()?)
    }
}
