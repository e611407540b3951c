//! Tickets' conversations in SQLite.

use async_trait::async_trait;
use sqlx::sqlite::SqliteArguments;
use sqlx::{FromRow, Row, Sqlite, SqliteConnection};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use super::rows::{MESSAGE_COLUMNS, MessageRow};
use super::tickets::{fetch_ticket, insert_event, transition_in};
use super::{SqliteStore, now};
use crate::store::messages::{duplicate_of, next_turn, received_event};
use crate::store::{
    Arrival, ConversationMessage, MessageStore, NewMessage, Received, StaffReplied, StoreError, Ticket, TicketStatus,
    Transition,
};

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// Inserts a message of `ticket_id`'s turn `turn`; a Message-ID stored before inserts nothing.
pub(super) fn insert_message<'q>(ticket_id: Uuid, turn: i32, message: &'q NewMessage) -> Query<'q> {
    sqlx::query(
        "INSERT INTO ticket_messages (ticket_id, turn, direction, channel, from_address, to_address, subject, text, \
         reply_text, html, message_id, in_reply_to, thread_references, provider, status, attachments, metadata, \
         created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(ticket_id.hyphenated().to_string())
    .bind(turn)
    .bind(message.direction.as_str())
    .bind(&message.channel)
    .bind(message.from_address.as_deref())
    .bind(message.to_address.as_deref())
    .bind(&message.subject)
    .bind(&message.text)
    .bind(&message.reply_text)
    .bind(message.html.as_deref())
    .bind(&message.message_id)
    .bind(message.in_reply_to.as_deref())
    .bind(serde_json::to_string(&message.references).unwrap_or_else(|_| "[]".into()))
    .bind(message.provider.as_deref())
    .bind(message.status().as_str())
    .bind(serde_json::to_string(&message.attachments).unwrap_or_else(|_| "[]".into()))
    .bind(message.metadata_or_default().to_string())
    .bind(now())
}

/// Whether `ticket_id` has inbound messages for a turn after `answered`.
async fn unanswered(conn: &mut SqliteConnection, ticket_id: Uuid, answered: i32) -> Result<bool, StoreError> {
    let row = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM ticket_messages WHERE ticket_id = ? AND direction = 'inbound' AND turn > ?)",
    )
    .bind(ticket_id.hyphenated())
    .bind(answered)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get::<bool, _>(0)?)
}

/// Raises `ticket`'s turn to `turn` and applies `change`, in `conn`'s transaction.
async fn start_turn(
    conn: &mut SqliteConnection,
    ticket: &Ticket,
    turn: i32,
    change: Transition,
) -> Result<Ticket, StoreError> {
    sqlx::query("UPDATE tickets SET turn = ? WHERE id = ?")
        .bind(turn)
        .bind(ticket.id.hyphenated())
        .execute(&mut *conn)
        .await?;
    transition_in(conn, &Ticket { turn, ..ticket.clone() }, change).await
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn messages(&self, ticket_id: Uuid) -> Result<Vec<ConversationMessage>, StoreError> {
        let mut conn = self.read.acquire().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM ticket_messages WHERE ticket_id = ? ORDER BY id"
        )))
        .bind(ticket_id.hyphenated())
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() && fetch_ticket(&mut conn, ticket_id).await?.is_none() {
            return Err(StoreError::NotFound(ticket_id));
        }
        rows.iter().map(|row| Ok(MessageRow::from_row(row)?.into())).collect()
    }

    async fn message(&self, message_id: &str) -> Result<Option<ConversationMessage>, StoreError> {
        let mut conn = self.read.acquire().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM ticket_messages WHERE message_id = ?"
        )))
        .bind(message_id)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.map(|row| MessageRow::from_row(&row)).transpose()?.map(Into::into))
    }

    async fn threads_of(&self, message_ids: &[String]) -> Result<Vec<Uuid>, StoreError> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.read.acquire().await?;
        let mut query =
            sqlx::QueryBuilder::<Sqlite>::new("SELECT ticket_id FROM ticket_messages WHERE message_id IN (");
        let mut ids = query.separated(", ");
        for id in message_ids {
            ids.push_bind(id);
        }
        query.push(") GROUP BY ticket_id ORDER BY max(id) DESC");
        let rows = query.build().fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<Hyphenated, _>(0)?.into_uuid()))
            .collect()
    }

    async fn append_inbound(&self, ticket_id: Uuid, message: NewMessage) -> Result<Received, StoreError> {
        let mut tx = self.begin().await?;
        let (ticket, _) = fetch_ticket(&mut tx, ticket_id)
            .await?
            .ok_or(StoreError::NotFound(ticket_id))?;
        let arrival = Arrival::of(ticket.status, &message);
        let turn = arrival.turn(ticket.turn);
        let inserted = insert_message(ticket.id, turn, &message)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if inserted == 0 {
            drop(tx);
            return duplicate_of(self, &message.message_id).await;
        }
        let event = received_event(&message, arrival, turn);
        let ticket = if arrival.starts_turn() {
            start_turn(&mut tx, &ticket, turn, next_turn(turn, vec![event])).await?
        } else {
            insert_event(&mut tx, ticket.id, &event, None).await?;
            ticket
        };
        tx.commit().await?;
        Ok(Received {
            ticket,
            message_id: message.message_id,
            arrival,
        })
    }

    async fn record_reply(&self, ticket_id: Uuid, turn: i32, message: NewMessage) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_message(ticket_id, turn, &message)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::for_ticket(e, ticket_id))?;
        tx.commit().await?;
        Ok(())
    }

    async fn continue_conversation(&self, ticket_id: Uuid, answered: i32) -> Result<bool, StoreError> {
        {
            let mut conn = self.read.acquire().await?;
            if !unanswered(&mut conn, ticket_id, answered).await? {
                return Ok(false);
            }
        }
        let mut tx = self.begin().await?;
        let Some((ticket, _)) = fetch_ticket(&mut tx, ticket_id).await? else {
            return Ok(false);
        };
        // Someone else moved it on (a message that reopened it, a person): their turn answers.
        if ticket.status != TicketStatus::Completed || ticket.turn != answered {
            return Ok(false);
        }
        let turn = answered + 1;
        start_turn(&mut tx, &ticket, turn, next_turn(turn, Vec::new())).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn reply_by_staff(
        &self,
        ticket_id: Uuid,
        message: NewMessage,
        request_id: Option<String>,
        actor: Option<String>,
    ) -> Result<StaffReplied, StoreError> {
        let mut tx = self.begin().await?;
        let (ticket, _) = fetch_ticket(&mut tx, ticket_id)
            .await?
            .ok_or(StoreError::NotFound(ticket_id))?;
        let inserted = insert_message(ticket.id, ticket.turn, &message)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let duplicate = inserted == 0;
        let completed = !duplicate && ticket.status == TicketStatus::Escalated;
        let ticket = if completed {
            let mut change = Transition::to(TicketStatus::Completed);
            change.request_id = request_id;
            change.actor = actor;
            transition_in(&mut tx, &ticket, change).await?
        } else {
            ticket
        };
        let stored = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM ticket_messages WHERE message_id = ?"
        )))
        .bind(&message.message_id)
        .fetch_one(&mut *tx)
        .await?;
        let stored: ConversationMessage = MessageRow::from_row(&stored)?.into();
        if duplicate && (stored.ticket_id != ticket_id || stored.text != message.text) {
            return Err(StoreError::IdempotencyConflict(stored.ticket_id));
        }
        tx.commit().await?;
        Ok(StaffReplied {
            ticket,
            message: stored,
            completed,
            duplicate,
        })
    }

    async fn remember_token(&self, provider: &str, token: &str, keep: std::time::Duration) -> Result<bool, StoreError> {
        let at = chrono::Utc::now();
        let forget_before = at - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM webhook_tokens WHERE seen_at < ?")
            .bind(super::timestamp(forget_before))
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO webhook_tokens (provider, token, seen_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(provider)
        .bind(token)
        .bind(super::timestamp(at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted > 0)
    }
}
