//! The HTTP operations (README's API table), over the library's store and processing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use ticketflow_core::health::Health as HealthCheck;
use ticketflow_core::processing::{OutboxRelay, requeue_failed};
use ticketflow_core::queue::Queue;
use ticketflow_core::store::{ListQuery, NewMessage, NewTicket, Role, Store, StoreError};
use uuid::Uuid;

use crate::RequestId;
use crate::audit;
use crate::auth::{Access, Caller};
use crate::create_limit::CreateLimit;
use crate::error::{ApiError, body};
use crate::model::{
    CreateTicket, EventView, Health, HealthView, MessageView, SortOrder, StaffReplyRequest, StaffReplyView, Status,
    TicketAccepted, TicketList, TicketView,
};

/// The ticket and health operations.
pub struct TicketsApi {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) queue: Arc<dyn Queue>,
    pub(crate) relay: Option<OutboxRelay>,
    pub(crate) access: Access,
    pub(crate) create_limit: Option<CreateLimit>,
}

#[derive(Debug, ApiResponse)]
enum Created {
    /// Created, or the existing ticket for a duplicate submission.
    #[oai(status = 201)]
    Created(Json<TicketAccepted>),
}

#[derive(Debug, ApiResponse)]
enum Accepted {
    /// Re-queued; it resumes from its last checkpoint.
    #[oai(status = 202)]
    Accepted(Json<TicketAccepted>),
}

#[derive(Debug, ApiResponse)]
enum HealthResponse {
    /// The database is reachable (the queue's state is reported, not decisive: tickets wait in
    /// the outbox while the broker is down).
    #[oai(status = 200)]
    Ok(Json<HealthView>),
    /// The database is unreachable.
    #[oai(status = 503)]
    Unavailable(Json<HealthView>),
}

#[OpenApi]
impl TicketsApi {
    /// Create a ticket.
    ///
    /// Idempotent: the same customer, subject and body (or the same `Idempotency-Key` for the
    /// customer) give the same ticket id. Reusing a key with other content is a 409.
    ///
    /// Role: agent.
    #[oai(path = "/tickets", method = "post", operation_id = "create_ticket")]
    async fn create_ticket(
        &self,
        ticket: Json<CreateTicket>,
        /// A key of the caller's choice (scoped to the customer) that replaces the content hash
        /// as the ticket's identity.
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<Option<String>>,
        /// W3C trace context, carried to the worker.
        traceparent: Header<Option<String>>,
        request_id: Data<&RequestId>,
        caller: Caller,
        remote: &poem::web::RemoteAddr,
    ) -> Result<Created, ApiError> {
        let actor = caller.require(&self.access, Role::Agent).await?;
        if let Some(limit) = &self.create_limit
            && let Err(wait) = limit.check(&actor.client(remote.as_socket_addr().map(|a| a.ip())))
        {
            return Err(ApiError::TooManyRequests(
                body(
                    "rate_limited",
                    format!("too many tickets created; retry in {wait} s"),
                    None,
                ),
                wait,
            ));
        }
        let Json(ticket) = ticket;
        let new = NewTicket {
            customer_id: ticket.customer_id.0,
            subject: ticket.subject.0,
            body: ticket.body.0,
            channel: ticket.channel.map(|c| c.0).unwrap_or_default(),
            metadata: ticket.metadata.unwrap_or(serde_json::Value::Null),
            idempotency_key: idempotency_key.0,
            request_id: Some(request_id.0.0.clone()),
            // This request's span, so the worker's spans join the same trace; without
            // OpenTelemetry, the caller's header is passed on as is.
            traceparent: ticketflow_core::tracing_context::current_traceparent()
                .or_else(|| traceparent.0.filter(|t| t.len() <= 128)),
            first_message: None,
            actor: actor.0.clone(),
        };
        let (ticket, created) = self.store.create(new).await?;
        if created {
            metrics::counter!("tickets_created_total").increment(1);
            tracing::info!(ticket_id = %ticket.id, "ticket created");
            audit::record(
                self.store.as_ref(),
                &actor,
                "ticket.created",
                Some(ticket.id.to_string()),
                serde_json::json!({}),
            )
            .await;
            if let Some(relay) = &self.relay {
                relay.wake();
            }
        }
        Ok(Created::Created(Json(TicketAccepted {
            ticket_id: ticket.id,
            status: ticket.status.into(),
        })))
    }

    /// List tickets, newest first unless `sort` says otherwise; `q` searches subject, body,
    /// customer and reply (every word must be found; PostgreSQL full-text with stemming, SQLite
    /// FTS5).
    ///
    /// Role: viewer.
    #[oai(path = "/tickets", method = "get", operation_id = "list_tickets")]
    // poem-openapi documents each query parameter from an argument of its own.
    #[allow(clippy::too_many_arguments)]
    async fn list_tickets(
        &self,
        /// 1-based page.
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<u32>,
        /// 1 to 100.
        #[oai(
            default = "default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<u32>,
        /// Only tickets in this status.
        status: Query<Option<Status>>,
        /// Only this customer's tickets.
        #[oai(validator(max_length = 100, pattern = r"^[^\x00]*$"))]
        customer_id: Query<Option<String>>,
        /// Words to find in the subject, body, customer or reply (1 to 500 characters, not
        /// blank).
        #[oai(validator(min_length = 1, max_length = 500, pattern = r"^[^\x00]*[^\x00\s][^\x00]*$"))]
        q: Query<Option<String>>,
        /// Only tickets of this channel (`api`, `email`, ...).
        #[oai(validator(max_length = 50, pattern = r"^[^\x00]*$"))]
        channel: Query<Option<String>>,
        /// Only tickets created at or after this instant (RFC 3339).
        created_after: Query<Option<DateTime<Utc>>>,
        /// Only tickets created before this instant (RFC 3339).
        created_before: Query<Option<DateTime<Utc>>>,
        /// `created_desc` (the default), `created_asc`, `updated_desc` or `updated_asc`.
        sort: Query<Option<SortOrder>>,
        caller: Caller,
    ) -> Result<Json<TicketList>, ApiError> {
        caller.require(&self.access, Role::Viewer).await?;
        let page_result = self
            .store
            .list(&ListQuery {
                page: page.0,
                page_size: page_size.0,
                status: status.0.map(Into::into),
                customer_id: customer_id.0,
                q: q.0,
                channel: channel.0,
                created_after: created_after.0,
                created_before: created_before.0,
                sort: sort.0.map(Into::into).unwrap_or_default(),
            })
            .await?;
        Ok(Json(TicketList {
            tickets: page_result.tickets.into_iter().map(Into::into).collect(),
            total: page_result.total,
            page: page_result.page,
            page_size: page_result.page_size,
        }))
    }

    /// Get a ticket, with its result once completed.
    ///
    /// Role: viewer.
    #[oai(path = "/tickets/:id", method = "get", operation_id = "get_ticket")]
    async fn get_ticket(&self, id: Path<Uuid>, caller: Caller) -> Result<Json<TicketView>, ApiError> {
        caller.require(&self.access, Role::Viewer).await?;
        let ticket = self.store.get(id.0).await?.ok_or(StoreError::NotFound(id.0))?;
        Ok(Json(ticket.into()))
    }

    /// A ticket's events, oldest first.
    ///
    /// Role: viewer.
    #[oai(path = "/tickets/:id/events", method = "get", operation_id = "get_ticket_events")]
    async fn get_ticket_events(&self, id: Path<Uuid>, caller: Caller) -> Result<Json<Vec<EventView>>, ApiError> {
        caller.require(&self.access, Role::Viewer).await?;
        let events = self.store.events(id.0).await?;
        Ok(Json(events.into_iter().map(Into::into).collect()))
    }

    /// A ticket's conversation, oldest first: its first message (subject and body), the
    /// customer's e-mails and every turn's reply.
    ///
    /// Role: viewer.
    #[oai(path = "/tickets/:id/messages", method = "get", operation_id = "get_ticket_messages")]
    async fn get_ticket_messages(&self, id: Path<Uuid>, caller: Caller) -> Result<Json<Vec<MessageView>>, ApiError> {
        caller.require(&self.access, Role::Viewer).await?;
        let messages = self.store.messages(id.0).await?;
        Ok(Json(messages.into_iter().map(Into::into).collect()))
    }

    /// A person's reply to the customer, threaded onto the conversation: e-mailed (through
    /// the outbox) on an e-mail ticket, recorded on an `api` one. It completes an `escalated`
    /// ticket.
    ///
    /// Role: agent.
    #[oai(path = "/tickets/:id/messages", method = "post", operation_id = "reply_to_ticket")]
    async fn reply_to_ticket(
        &self,
        id: Path<Uuid>,
        reply: Json<StaffReplyRequest>,
        /// A key of the caller's choice: the same key again returns the stored reply and sends
        /// nothing twice.
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<Option<String>>,
        request_id: Data<&RequestId>,
        caller: Caller,
    ) -> Result<Json<StaffReplyView>, ApiError> {
        let actor = caller.require(&self.access, Role::Agent).await?;
        let text = reply.0.text.0;
        if text.trim().is_empty() {
            return Err(ApiError::Unprocessable(body(
                "validation_error",
                "`text` must not be blank",
                Some("text".into()),
            )));
        }
        let ticket = self.store.get(id.0).await?.ok_or(StoreError::NotFound(id.0))?;
        let conversation = self.store.messages(ticket.id).await?;
        let message = NewMessage::staff_reply(&ticket, &text, idempotency_key.0.as_deref()).threaded_on(&conversation);
        let replied = self
            .store
            .reply_by_staff(ticket.id, message, Some(request_id.0.0.clone()), actor.0.clone())
            .await?;
        if !replied.duplicate {
            let detail =
                serde_json::json!({ "message_id": replied.message.message_id, "completed": replied.completed });
            audit::record(
                self.store.as_ref(),
                &actor,
                "ticket.replied",
                Some(ticket.id.to_string()),
                detail,
            )
            .await;
        }
        tracing::info!(
            ticket_id = %replied.ticket.id,
            message_id = %replied.message.message_id,
            completed = replied.completed,
            duplicate = replied.duplicate,
            "staff reply stored"
        );
        Ok(Json(StaffReplyView {
            message: replied.message.into(),
            ticket_status: replied.ticket.status.into(),
            completed: replied.completed,
            duplicate: replied.duplicate,
        }))
    }

    /// Retry a `failed_permanent` ticket; it resumes from its last checkpoint.
    ///
    /// Role: agent.
    #[oai(path = "/tickets/:id/retry", method = "post", operation_id = "retry_ticket")]
    async fn retry_ticket(
        &self,
        id: Path<Uuid>,
        request_id: Data<&RequestId>,
        caller: Caller,
    ) -> Result<Accepted, ApiError> {
        let actor = caller.require(&self.access, Role::Agent).await?;
        let ticket = requeue_failed(self.store.as_ref(), id.0, Some(request_id.0.0.clone()), actor.0.clone()).await?;
        audit::record(
            self.store.as_ref(),
            &actor,
            "ticket.retried",
            Some(ticket.id.to_string()),
            serde_json::json!({}),
        )
        .await;
        if let Some(relay) = &self.relay {
            relay.wake();
        }
        Ok(Accepted::Accepted(Json(TicketAccepted {
            ticket_id: ticket.id,
            status: ticket.status.into(),
        })))
    }

    /// Health of the service and its dependencies.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> HealthResponse {
        let check = HealthCheck::check(self.store.as_ref(), self.queue.as_ref()).await;
        let word = |ok: bool| if ok { Health::Healthy } else { Health::Unhealthy };
        let view = Json(HealthView {
            status: word(check.healthy()),
            database: word(check.database),
            queue: word(check.queue),
        });
        if check.serving() {
            HealthResponse::Ok(view)
        } else {
            HealthResponse::Unavailable(view)
        }
    }
}

/// The first page, when a list request names none.
pub(crate) fn default_page() -> u32 {
    1
}

/// A list's page size, when a request names none.
pub(crate) fn default_page_size() -> u32 {
    20
}
