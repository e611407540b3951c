//! Tickets' conversations in PostgreSQL.

use async_trait::async_trait;
use sqlx::{FromRow, Row, SqlStr};
use uuid::Uuid;

use super::PgStore;
use super::rows::{MESSAGE_COLUMNS, MessageRow};
use super::sql::statement;
use crate::store::messages::{duplicate_of, next_turn, received_event};
use crate::store::{
    Arrival, ConversationMessage, MessageStore, NewMessage, Received, StaffReplied, StoreError, Ticket, TicketStatus,
    TicketStore, Transition,
};

/// The columns an insert into `ticket_messages` names, in the order [`bind_message`] binds
/// them after the ticket and the turn.
pub(super) const MESSAGE_INSERT_COLUMNS: &str = "ticket_id, turn, direction, channel, from_address, to_address, \
    subject, text, reply_text, html, message_id, in_reply_to, thread_references, provider, status, attachments, \
    metadata";

/// Binds a message's fields, from `direction` to `metadata` (15 parameters).
pub(super) fn bind_message<'q>(query: super::db::Statement<'q>, message: &'q NewMessage) -> super::db::Statement<'q> {
    query
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
        .bind(sqlx::types::Json(&message.references))
        .bind(message.provider.as_deref())
        .bind(message.status().as_str())
        .bind(sqlx::types::Json(&message.attachments))
        .bind(message.metadata_or_default())
}

/// The `VALUES` placeholders of an insert whose ticket and turn are `$1` and `$2`.
const MESSAGE_VALUES: &str = "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17";

/// The conversation statements.
#[derive(Debug)]
pub(super) struct MessageSql {
    list: SqlStr,
    by_message_id: SqlStr,
    threads: SqlStr,
    pub(super) insert: SqlStr,
    raise_turn: SqlStr,
    unanswered: SqlStr,
    remember_token: SqlStr,
    forget_tokens: SqlStr,
}

impl MessageSql {
    pub(super) fn new(schema: &str) -> Self {
        Self {
            list: statement(
                schema,
                &format!("SELECT {MESSAGE_COLUMNS} FROM {{schema}}.ticket_messages WHERE ticket_id = $1 ORDER BY id"),
            ),
            by_message_id: statement(
                schema,
                &format!("SELECT {MESSAGE_COLUMNS} FROM {{schema}}.ticket_messages WHERE message_id = $1"),
            ),
            threads: statement(
                schema,
                "SELECT ticket_id FROM {schema}.ticket_messages WHERE message_id = ANY($1) \
                 GROUP BY ticket_id ORDER BY max(id) DESC",
            ),
            insert: statement(
                schema,
                &format!(
                    "INSERT INTO {{schema}}.ticket_messages ({MESSAGE_INSERT_COLUMNS}) VALUES ({MESSAGE_VALUES}) \
                     ON CONFLICT (message_id) DO NOTHING"
                ),
            ),
            raise_turn: statement(schema, "UPDATE {schema}.tickets SET turn = $2 WHERE id = $1"),
            unanswered: statement(
                schema,
                "SELECT EXISTS (SELECT 1 FROM {schema}.ticket_messages WHERE ticket_id = $1 \
                     AND direction = 'inbound' AND turn > $2)",
            ),
            remember_token: statement(
                schema,
                "INSERT INTO {schema}.webhook_tokens (provider, token) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            ),
            forget_tokens: statement(
                schema,
                "DELETE FROM {schema}.webhook_tokens WHERE seen_at < now() - make_interval(secs => $1)",
            ),
        }
    }
}

impl PgStore {
    /// Raises `ticket`'s turn and applies `change` (see [`next_turn`]), in `tx`.
    async fn start_turn(
        &self,
        tx: &mut sqlx::PgConnection,
        ticket: &Ticket,
        turn: i32,
        change: crate::store::Transition,
    ) -> Result<Ticket, StoreError> {
        let persistent = self.db.persistent();
        sqlx::query(self.sql.messages.raise_turn.clone())
            .persistent(persistent)
            .bind(ticket.id)
            .bind(turn)
            .execute(&mut *tx)
            .await?;
        self.transition_in(tx, ticket, change)
            .await?
            .ok_or_else(|| StoreError::Conflict {
                id: ticket.id,
                message: format!("ticket {} changed while its turn was starting", ticket.id),
            })
    }
}

#[async_trait]
impl MessageStore for PgStore {
    async fn messages(&self, ticket_id: Uuid) -> Result<Vec<ConversationMessage>, StoreError> {
        let sql = &self.sql.messages;
        let rows = self.db.fetch_all(sqlx::query(sql.list.clone()).bind(ticket_id)).await?;
        if rows.is_empty() && self.get(ticket_id).await?.is_none() {
            return Err(StoreError::NotFound(ticket_id));
        }
        rows.iter().map(|row| Ok(MessageRow::from_row(row)?.into())).collect()
    }

    async fn message(&self, message_id: &str) -> Result<Option<ConversationMessage>, StoreError> {
        let row = self
            .db
            .fetch_optional(sqlx::query(self.sql.messages.by_message_id.clone()).bind(message_id))
            .await?;
        Ok(row.map(|row| MessageRow::from_row(&row)).transpose()?.map(Into::into))
    }

    async fn threads_of(&self, message_ids: &[String]) -> Result<Vec<Uuid>, StoreError> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .db
            .fetch_all(sqlx::query(self.sql.messages.threads.clone()).bind(message_ids))
            .await?;
        rows.iter().map(|row| Ok(row.try_get::<Uuid, _>(0)?)).collect()
    }

    async fn append_inbound(&self, ticket_id: Uuid, message: NewMessage) -> Result<Received, StoreError> {
        let persistent = self.db.persistent();
        let mut tx = self.db.begin().await?;
        let ticket = self.lock_ticket_in(&mut tx, ticket_id).await?;
        let arrival = Arrival::of(ticket.status, &message);
        let turn = arrival.turn(ticket.turn);
        let inserted = bind_message(
            sqlx::query(self.sql.messages.insert.clone())
                .persistent(persistent)
                .bind(ticket.id)
                .bind(turn),
            &message,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            drop(tx);
            return duplicate_of(self, &message.message_id).await;
        }
        let event = received_event(&message, arrival, turn);
        let ticket = if arrival.starts_turn() {
            self.start_turn(&mut tx, &ticket, turn, next_turn(turn, vec![event]))
                .await?
        } else {
            self.append_event_statement(ticket.id, &event)
                .persistent(persistent)
                .execute(&mut *tx)
                .await?;
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
        self.db
            .execute(bind_message(
                sqlx::query(self.sql.messages.insert.clone()).bind(ticket_id).bind(turn),
                &message,
            ))
            .await
            .map_err(|e| StoreError::for_ticket(e, ticket_id))?;
        Ok(())
    }

    async fn continue_conversation(&self, ticket_id: Uuid, answered: i32) -> Result<bool, StoreError> {
        let waiting: bool = self
            .db
            .fetch_one(
                sqlx::query(self.sql.messages.unanswered.clone())
                    .bind(ticket_id)
                    .bind(answered),
            )
            .await?
            .try_get(0)?;
        // Messages are never deleted: what waits now still waits under the lock.
        if !waiting {
            return Ok(false);
        }
        let mut tx = self.db.begin().await?;
        let ticket = self.lock_ticket_in(&mut tx, ticket_id).await?;
        // Someone else moved it on (a message that reopened it, a person): their turn answers.
        if ticket.status != TicketStatus::Completed || ticket.turn != answered {
            return Ok(false);
        }
        let turn = answered + 1;
        self.start_turn(&mut tx, &ticket, turn, next_turn(turn, Vec::new()))
            .await?;
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
        let persistent = self.db.persistent();
        let mut tx = self.db.begin().await?;
        let ticket = self.lock_ticket_in(&mut tx, ticket_id).await?;
        let inserted = bind_message(
            sqlx::query(self.sql.messages.insert.clone())
                .persistent(persistent)
                .bind(ticket.id)
                .bind(ticket.turn),
            &message,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let duplicate = inserted == 0;
        let completed = !duplicate && ticket.status == TicketStatus::Escalated;
        let ticket = if completed {
            let mut change = Transition::to(TicketStatus::Completed);
            change.request_id = request_id;
            change.actor = actor;
            self.transition_in(&mut tx, &ticket, change)
                .await?
                .ok_or_else(|| StoreError::Conflict {
                    id: ticket.id,
                    message: format!("ticket {} changed while a reply was stored", ticket.id),
                })?
        } else {
            ticket
        };
        let stored = sqlx::query(self.sql.messages.by_message_id.clone())
            .persistent(persistent)
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
        let sql = &self.sql.messages;
        self.db
            .execute(sqlx::query(sql.forget_tokens.clone()).bind(keep.as_secs_f64()))
            .await?;
        let inserted = self
            .db
            .execute(sqlx::query(sql.remember_token.clone()).bind(provider).bind(token))
            .await?
            .rows_affected();
        Ok(inserted > 0)
    }
}
