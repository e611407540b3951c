//! Tickets and their events in PostgreSQL.

use async_trait::async_trait;
use sqlx::{FromRow, QueryBuilder, Row, SqlStr};
use uuid::Uuid;

use super::PgStore;
use super::claims::fill;
use super::db::Statement;
use super::group_commit::{Answer, Job};
use super::messages::{MESSAGE_INSERT_COLUMNS, bind_message};
use super::rows::{EVENT_COLUMNS, EventRow, PastTicketRow, TICKET_COLUMNS, TicketRow};
use super::sql::statement;
use crate::store::{
    Created, ListQuery, Moved, NewEvent, NewTicket, StoreError, Ticket, TicketEvent, TicketPage, TicketStatus,
    TicketStore, Transition, content_hash, ticket_id,
};
use crate::{HistorySource, PastTicket};

/// What a transition sets on ticket `t`: status `{to}`, result `{result}` (JSON text, or NULL
/// to keep it), attempt count `{attempts}`; the lease is kept only in `processing`, and the
/// timestamps follow the status.
const TRANSITION_SET: &str = "status = {to}, version = t.version + 1, result = COALESCE({result}::jsonb, t.result), \
    attempt_count = {attempts}, \
    worker_id = CASE WHEN {to} = 'processing' THEN t.worker_id END, \
    lease_expires_at = CASE WHEN {to} = 'processing' THEN t.lease_expires_at END, \
    started_at = CASE WHEN {to} = 'processing' THEN COALESCE(t.started_at, now()) ELSE t.started_at END, \
    completed_at = CASE WHEN {to} IN ('completed', 'failed_permanent') THEN now() \
                        WHEN {to} IN ('pending', 'processing') THEN NULL ELSE t.completed_at END, \
    updated_at = now()";

/// The outbox row a transition asks for, after `{delay}` seconds, for ticket `{ticket}` and
/// request `{request}`: it carries the trace context of the ticket's latest row on, so that a
/// retry's spans join the trace that created the ticket.
const TRANSITION_ENQUEUE: &str = "INSERT INTO {schema}.outbox (ticket_id, request_id, traceparent, available_at) \
    SELECT {ticket}, {request}, \
        (SELECT o.traceparent FROM {schema}.outbox o WHERE o.ticket_id = {ticket} ORDER BY o.id DESC LIMIT 1), \
        now() + make_interval(secs => {delay})";

/// Transitions of any number of tickets (numbered from `$1`, 15 parameters; see
/// [`TransitionColumns`]), for group-commit batches: each ticket still at its expected version
/// gets [`TRANSITION_SET`], its `status_change` event and its own events after it, in order,
/// and the outbox row it asks for ([`TRANSITION_ENQUEUE`]).
pub(super) fn transition_ctes() -> String {
    format!(
        "moving AS (SELECT * FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::text[], $5::int4[], $6::float8[], \
                 $7::text[], $8::uuid[], $9::text[]) \
             WITH ORDINALITY AS m(ticket_id, version, to_status, result, attempt_count, enqueue_after, request_id, \
                 event_id, payload, ord)), \
         moving_lock AS (SELECT id, version FROM {{schema}}.tickets WHERE id = ANY($1::uuid[]) \
             ORDER BY id FOR NO KEY UPDATE{{nowait}}), \
         moved AS (UPDATE {{schema}}.tickets t SET {set} \
             FROM moving m JOIN moving_lock l ON l.id = m.ticket_id AND l.version = m.version \
             WHERE t.id = m.ticket_id AND t.id = ANY($1::uuid[]) \
             RETURNING m.ord, m.ticket_id, m.event_id, m.payload, m.request_id, m.enqueue_after), \
         moved_recorded AS (INSERT INTO {{schema}}.ticket_events (id, ticket_id, event_type, step_name, payload, \
                 request_id) \
             SELECT e.id, e.ticket_id, e.event_type, e.step_name, e.payload::jsonb, e.request_id FROM ( \
                 SELECT d.ord, 0::int8 AS sub, d.event_id AS id, d.ticket_id, 'status_change'::text AS event_type, \
                     NULL::text AS step_name, d.payload, d.request_id \
                 FROM moved d \
                 UNION ALL \
                 SELECT x.of_ord, x.sub, x.id, d.ticket_id, x.event_type, x.step_name, x.payload, x.request_id \
                 FROM unnest($10::int8[], $11::uuid[], $12::text[], $13::text[], $14::text[], $15::text[]) \
                     WITH ORDINALITY AS x(of_ord, id, event_type, step_name, payload, request_id, sub) \
                 JOIN moved d ON d.ord = x.of_ord \
             ) e ORDER BY e.ord, e.sub), \
         moved_queued AS ({enqueue} FROM moved d WHERE d.enqueue_after IS NOT NULL)",
        set = fill(
            TRANSITION_SET,
            &[
                ("{to}", "m.to_status"),
                ("{result}", "m.result"),
                ("{attempts}", "m.attempt_count")
            ]
        ),
        enqueue = fill(
            TRANSITION_ENQUEUE,
            &[
                ("{ticket}", "d.ticket_id"),
                ("{request}", "d.request_id"),
                ("{delay}", "d.enqueue_after")
            ]
        ),
    )
}

/// One transition in a statement of its own (see [`TicketStore::transition`]), waiting for
/// the ticket's row if need be: [`TRANSITION_SET`] and [`TRANSITION_ENQUEUE`], as in the
/// batches, without arrays for the ticket (a lone transition costs half as much this way).
fn transition_alone_sql() -> String {
    format!(
        "WITH old AS (SELECT id FROM {{schema}}.tickets WHERE id = $1 AND version = $5 FOR NO KEY UPDATE), \
         moved AS (UPDATE {{schema}}.tickets t SET {set} FROM old WHERE t.id = $1 AND t.version = $5 \
             RETURNING {columns}), \
         recorded AS (INSERT INTO {{schema}}.ticket_events (id, ticket_id, event_type, step_name, payload, request_id) \
             SELECT e.id, $1, e.event_type, e.step_name, e.payload, e.request_id FROM ( \
                 SELECT 0::int8 AS ord, $6::uuid AS id, 'status_change'::text AS event_type, NULL::text AS step_name, \
                     $7::jsonb AS payload, $8::text AS request_id FROM moved \
                 UNION ALL \
                 SELECT x.ord, x.id, x.event_type, x.step_name, x.payload::jsonb, x.request_id \
                 FROM moved, unnest($9::uuid[], $10::text[], $11::text[], $12::text[], $13::text[]) \
                     WITH ORDINALITY AS x(id, event_type, step_name, payload, request_id, ord) \
             ) e ORDER BY e.ord), \
         queued AS ({enqueue} FROM moved WHERE $14::float8 IS NOT NULL) \
         SELECT * FROM moved",
        columns = &*TICKET_COLUMNS_OF_T,
        set = fill(
            TRANSITION_SET,
            &[("{to}", "$2"), ("{result}", "$3"), ("{attempts}", "$4")]
        ),
        enqueue = fill(
            TRANSITION_ENQUEUE,
            &[("{ticket}", "$1"), ("{request}", "$8"), ("{delay}", "$14")]
        ),
    )
}

/// How many parameters [`transition_ctes`] takes.
pub(super) const TRANSITION_PARAMETERS: usize = 15;

/// [`TICKET_COLUMNS`] qualified with `t.`, for statements that update `tickets t`.
static TICKET_COLUMNS_OF_T: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    TICKET_COLUMNS
        .split(", ")
        .map(|c| format!("t.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
});

/// The ticket statements.
#[derive(Debug)]
pub(super) struct TicketSql {
    create: SqlStr,
    get: SqlStr,
    events: SqlStr,
    pub(super) append_event: SqlStr,
    /// The ticket's row, locked for a transaction that changes it.
    lock: SqlStr,
    transition: SqlStr,
    history: SqlStr,
    /// `SELECT … FROM <schema>.tickets`, for `list`'s filters to follow.
    list: String,
    count: String,
}

impl TicketSql {
    pub(super) fn new(schema: &str) -> Self {
        Self {
            // One statement, so one round trip: the ticket, its `created` event and its outbox
            // row commit together, or nothing is written when the id exists already.
            create: statement(
                schema,
                &format!(
                    "WITH created AS (INSERT INTO {{schema}}.tickets (id, customer_id, subject, body, channel, \
                         metadata, content_hash, idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (id) DO NOTHING RETURNING {TICKET_COLUMNS}), \
                     recorded AS (INSERT INTO {{schema}}.ticket_events (id, ticket_id, event_type, payload, \
                         request_id) SELECT $9, id, 'created', $10, $11 FROM created), \
                     queued AS (INSERT INTO {{schema}}.outbox (ticket_id, request_id, traceparent) \
                         SELECT id, $11, $12 FROM created), \
                     messaged AS (INSERT INTO {{schema}}.ticket_messages ({MESSAGE_INSERT_COLUMNS}) \
                         SELECT id, 1, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27 \
                         FROM created ON CONFLICT (message_id) DO NOTHING) \
                     SELECT * FROM created"
                ),
            ),
            get: statement(
                schema,
                &format!("SELECT {TICKET_COLUMNS}, content_hash FROM {{schema}}.tickets WHERE id = $1"),
            ),
            events: statement(
                schema,
                &format!("SELECT {EVENT_COLUMNS} FROM {{schema}}.ticket_events WHERE ticket_id = $1 ORDER BY seq"),
            ),
            append_event: statement(
                schema,
                &format!(
                    "INSERT INTO {{schema}}.ticket_events (id, ticket_id, event_type, step_name, payload, \
                     request_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {EVENT_COLUMNS}"
                ),
            ),
            lock: statement(
                schema,
                &format!("SELECT {TICKET_COLUMNS} FROM {{schema}}.tickets WHERE id = $1 FOR NO KEY UPDATE"),
            ),
            transition: statement(schema, &transition_alone_sql()),
            history: statement(
                schema,
                "SELECT id, subject, status, created_at FROM {schema}.tickets WHERE customer_id = $1 AND id <> $2 \
                 ORDER BY created_at DESC LIMIT $3",
            ),
            list: format!("SELECT {TICKET_COLUMNS} FROM {schema}.tickets"),
            count: format!("SELECT count(*) FROM {schema}.tickets"),
        }
    }
}

/// A transition to write: the ticket as its caller read it, and the change.
pub(super) struct TransitionWrite {
    pub ticket_id: Uuid,
    /// The version the change is guarded by.
    pub version: i64,
    /// The `status_change` event's payload.
    pub status_change: Moved,
    pub attempt_count: i32,
    pub change: Transition,
}

impl TransitionWrite {
    pub(super) fn new(ticket: &Ticket, change: Transition) -> Self {
        Self {
            ticket_id: ticket.id,
            version: ticket.version,
            status_change: change.status_change(ticket),
            attempt_count: change.attempt_count_after(ticket),
            change,
        }
    }
}

/// The parameters of [`transition_ctes`], one array per column.
#[derive(Default)]
pub(super) struct TransitionColumns {
    ticket_id: Vec<Uuid>,
    version: Vec<i64>,
    to: Vec<&'static str>,
    result: Vec<Option<String>>,
    attempt_count: Vec<i32>,
    enqueue_after: Vec<Option<f64>>,
    request_id: Vec<Option<String>>,
    event_id: Vec<Uuid>,
    payload: Vec<String>,
    /// The transitions' own events: which transition (1-based) each belongs to, then its
    /// columns.
    event_of: Vec<i64>,
    extra_id: Vec<Uuid>,
    extra_type: Vec<&'static str>,
    extra_step: Vec<Option<String>>,
    extra_payload: Vec<String>,
    extra_request: Vec<Option<String>>,
}

impl TransitionColumns {
    pub(super) fn of(writes: &[TransitionWrite]) -> Self {
        let mut c = Self::default();
        for (ord, write) in (1_i64..).zip(writes) {
            let change = &write.change;
            c.ticket_id.push(write.ticket_id);
            c.version.push(write.version);
            c.to.push(change.to.as_str());
            c.result.push(change.result.as_ref().map(ToString::to_string));
            c.attempt_count.push(write.attempt_count);
            c.enqueue_after.push(change.enqueue_after.map(|d| d.as_secs_f64()));
            c.request_id.push(change.request_id.clone());
            c.event_id.push(Uuid::now_v7());
            c.payload.push(json_text(&write.status_change));
            for event in &change.events {
                c.event_of.push(ord);
                c.extra_id.push(Uuid::now_v7());
                c.extra_type.push(event.event_type.as_str());
                c.extra_step.push(event.step_name.clone());
                c.extra_payload.push(event.payload.to_string());
                c.extra_request.push(event.request_id.clone());
            }
        }
        c
    }

    pub(super) fn bind(self, query: Statement<'_>) -> Statement<'_> {
        query
            .bind(self.ticket_id)
            .bind(self.version)
            .bind(self.to)
            .bind(self.result)
            .bind(self.attempt_count)
            .bind(self.enqueue_after)
            .bind(self.request_id)
            .bind(self.event_id)
            .bind(self.payload)
            .bind(self.event_of)
            .bind(self.extra_id)
            .bind(self.extra_type)
            .bind(self.extra_step)
            .bind(self.extra_payload)
            .bind(self.extra_request)
    }
}

/// A typed payload as the JSON text a statement binds.
pub(super) fn json_text(payload: &impl serde::Serialize) -> String {
    // Payloads are structs of strings, numbers and JSON values: they always serialize.
    serde_json::to_string(payload).unwrap_or_default()
}

impl PgStore {
    pub(super) async fn fetch_ticket(&self, id: Uuid) -> Result<Option<(Ticket, Uuid)>, StoreError> {
        let row = self
            .db
            .fetch_optional(sqlx::query(self.sql.tickets.get.clone()).bind(id))
            .await?;
        row.map(|r| {
            let hash: Uuid = r.try_get("content_hash")?;
            Ok((TicketRow::from_row(&r)?.into(), hash))
        })
        .transpose()
    }

    /// Why a write guarded by `expected_version` changed nothing: the ticket is gone, or at
    /// another version (or, if even this read fails, the database is unavailable).
    pub(super) async fn refused(&self, id: Uuid, expected_version: i64) -> StoreError {
        match self.get(id).await {
            Ok(None) => StoreError::NotFound(id),
            Ok(Some(t)) => StoreError::Conflict {
                id,
                message: format!("expected version {expected_version}, found {}", t.version),
            },
            Err(error) => error,
        }
    }

    /// The statement of one transition, waiting for its ticket's row if need be: it returns
    /// the ticket moved, or no row when the ticket is not at the expected version.
    /// The statement that appends `event` to `ticket_id` (returning the stored event).
    pub(super) fn append_event_statement<'q>(&'q self, ticket_id: Uuid, event: &'q NewEvent) -> Statement<'q> {
        sqlx::query(self.sql.tickets.append_event.clone())
            .bind(Uuid::now_v7())
            .bind(ticket_id)
            .bind(event.event_type.as_str())
            .bind(event.step_name.as_deref())
            .bind(&event.payload)
            .bind(event.request_id.as_deref())
    }

    /// Applies `change` to `ticket` (as read under its lock) in `tx`; `None` when the ticket
    /// is no longer the version read (the caller names that conflict).
    pub(super) async fn transition_in(
        &self,
        tx: &mut sqlx::PgConnection,
        ticket: &Ticket,
        change: Transition,
    ) -> Result<Option<Ticket>, StoreError> {
        let write = TransitionWrite::new(ticket, change);
        let moved = self
            .transition_statement(&write)
            .persistent(self.db.persistent())
            .fetch_optional(&mut *tx)
            .await?;
        Ok(moved.map(|row| TicketRow::from_row(&row)).transpose()?.map(Into::into))
    }

    /// Locks `ticket_id`'s row in `tx` and reads it, as every writer of a ticket does first.
    pub(super) async fn lock_ticket_in(
        &self,
        tx: &mut sqlx::PgConnection,
        ticket_id: Uuid,
    ) -> Result<Ticket, StoreError> {
        let row = sqlx::query(self.sql.tickets.lock.clone())
            .persistent(self.db.persistent())
            .bind(ticket_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound(ticket_id))?;
        Ok(TicketRow::from_row(&row)?.into())
    }

    pub(super) fn transition_statement<'q>(&'q self, write: &'q TransitionWrite) -> Statement<'q> {
        let change = &write.change;
        let events = &change.events;
        sqlx::query(self.sql.tickets.transition.clone())
            .bind(write.ticket_id)
            .bind(change.to.as_str())
            .bind(change.result.as_ref())
            .bind(write.attempt_count)
            .bind(write.version)
            .bind(Uuid::now_v7())
            .bind(sqlx::types::Json(&write.status_change))
            .bind(change.request_id.as_deref())
            .bind(events.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.step_name.clone()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.payload.to_string()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.request_id.clone()).collect::<Vec<_>>())
            .bind(change.enqueue_after.map(|d| d.as_secs_f64()))
    }

    /// A transition in a statement of its own, waiting for its ticket's row if need be.
    pub(super) async fn transition_alone(&self, write: TransitionWrite) -> Result<Ticket, StoreError> {
        let row = self.db.fetch_optional(self.transition_statement(&write)).await?;
        match row {
            Some(row) => Ok(TicketRow::from_row(&row)?.into()),
            None => Err(self.refused(write.ticket_id, write.version).await),
        }
    }
}

#[async_trait]
impl TicketStore for PgStore {
    async fn create(&self, new: NewTicket) -> Result<(Ticket, bool), StoreError> {
        new.validate()?;
        let hash = content_hash(&new.customer_id, &new.subject, &new.body);
        let id = ticket_id(
            &new.customer_id,
            &new.subject,
            &new.body,
            new.idempotency_key.as_deref(),
        );
        let created = Created {
            status: TicketStatus::Pending,
            channel: new.channel_or_default().to_owned(),
            actor: new.actor.clone(),
        };
        let first = new.first_message_for(id);
        let inserted = self
            .db
            .fetch_optional(bind_message(
                sqlx::query(self.sql.tickets.create.clone())
                    .bind(id)
                    .bind(&new.customer_id)
                    .bind(&new.subject)
                    .bind(&new.body)
                    .bind(new.channel_or_default())
                    .bind(new.metadata_or_default())
                    .bind(hash)
                    .bind(new.idempotency_key.as_deref())
                    .bind(Uuid::now_v7())
                    .bind(sqlx::types::Json(&created))
                    .bind(new.request_id.as_deref())
                    .bind(new.traceparent.as_deref()),
                &first,
            ))
            .await?;
        if let Some(row) = inserted {
            return Ok((TicketRow::from_row(&row)?.into(), true));
        }
        // A concurrent or earlier create won; it committed before our insert returned.
        let (existing, existing_hash) = self.fetch_ticket(id).await?.ok_or(StoreError::NotFound(id))?;
        if existing_hash != hash {
            return Err(StoreError::IdempotencyConflict(id));
        }
        Ok((existing, false))
    }

    async fn get(&self, id: Uuid) -> Result<Option<Ticket>, StoreError> {
        Ok(self.fetch_ticket(id).await?.map(|(t, _)| t))
    }

    async fn list(&self, query: &ListQuery) -> Result<TicketPage, StoreError> {
        query.validate()?;
        let (page, page_size) = query.bounded();
        let filter = |builder: &mut QueryBuilder<sqlx::Postgres>| {
            builder.push(" WHERE TRUE");
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
                builder.push(" AND created_at >= ").push_bind(after);
            }
            if let Some(before) = query.created_before {
                builder.push(" AND created_at < ").push_bind(before);
            }
            if let Some(q) = &query.q {
                // The indexed expression of migration 0010, word for word, so the GIN index
                // serves it; websearch_to_tsquery reads any text without a syntax error.
                builder
                    .push(
                        " AND to_tsvector('english'::regconfig, subject || ' ' || body || ' ' || customer_id || ' ' \
                         || coalesce(result->>'final_response', '')) @@ websearch_to_tsquery('english'::regconfig, ",
                    )
                    .push_bind(q.clone())
                    .push(")");
            }
        };
        let mut count = QueryBuilder::new(self.sql.tickets.count.clone());
        filter(&mut count);
        let total: i64 = self.db.fetch_one(count.build()).await?.try_get(0)?;
        let mut select = QueryBuilder::new(self.sql.tickets.list.clone());
        filter(&mut select);
        select
            .push(query.sort.order_by())
            .push(" LIMIT ")
            .push_bind(i64::from(page_size))
            .push(" OFFSET ")
            .push_bind(query.offset());
        let rows = self.db.fetch_all(select.build()).await?;
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
        let rows = self
            .db
            .fetch_all(sqlx::query(self.sql.tickets.events.clone()).bind(id))
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
        let row = self
            .db
            .fetch_one(self.append_event_statement(ticket_id, &event))
            .await
            .map_err(|e| StoreError::for_ticket(e, ticket_id))?;
        Ok(EventRow::from_row(&row)?.into())
    }

    async fn transition(&self, ticket: &Ticket, change: Transition) -> Result<Ticket, StoreError> {
        self.transition_alone(TransitionWrite::new(ticket, change)).await
    }

    async fn finish(&self, ticket: &Ticket, change: Transition) -> Result<(), StoreError> {
        // The run's final write commits with the checkpoints that concurrent runs have queued:
        // one transaction fewer per ticket under load.
        let write = TransitionWrite::new(ticket, change);
        let (id, version) = (write.ticket_id, write.version);
        match self.checkpoints.ride_along(Job::Transition(write)).await {
            Answer::Moved => Ok(()),
            Answer::Alone(Job::Transition(write)) => self.transition_alone(write).await.map(drop),
            Answer::Refused => Err(self.refused(id, version).await),
            Answer::Claimed(..) | Answer::Alone(Job::Claim(_)) | Answer::Lost => {
                Err(super::group_commit::writer_lost())
            }
        }
    }
}

#[async_trait]
impl HistorySource for PgStore {
    async fn recent_tickets(
        &self,
        customer_id: &str,
        except_ticket: &str,
        limit: usize,
    ) -> Result<Vec<PastTicket>, StoreError> {
        let except = Uuid::parse_str(except_ticket).unwrap_or(Uuid::nil());
        let rows = self
            .db
            .fetch_all(
                sqlx::query(self.sql.tickets.history.clone())
                    .bind(customer_id)
                    .bind(except)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX)),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| PastTicketRow::from_row(r).map(PastTicket::from))
            .collect::<Result<_, _>>()?)
    }
}
