//! The HTTP API's request and response bodies (what the OpenAPI document describes).

use chrono::{DateTime, Utc};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult};
use poem_openapi::{Enum, NewType, Object};
use ticketflow_core::store::{
    ApiKey, Approval, ApprovalStatus, ConversationMessage, DeskStats, EventType, Role, Ticket, TicketEvent,
    TicketStatus, User, WebhookDelivery, WebhookStatus,
};
use uuid::Uuid;

/// A JSON string, strictly. poem-openapi's `String` also takes numbers and booleans and turns
/// them into text, so `{"subject": 1}` would pass; the document says string, so only a string
/// does.
#[derive(Debug, Clone, PartialEq, Eq, NewType, serde::Deserialize)]
#[oai(from_json = false)]
#[serde(transparent)]
pub struct Text(pub String);

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            serde_json::Value::String(text) => Ok(Self(text)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A new ticket. Text fields may hold any characters but NUL (PostgreSQL cannot store it), and
/// the required ones must not be blank; the schema says both with patterns, so clients and
/// fuzzers know before they send. "Blank" is Unicode White_Space, spelled out so that every
/// regex dialect reading the schema agrees with the server's check.
#[derive(Debug, Clone, Object)]
pub struct CreateTicket {
    /// 1 to 500 characters, not all white space.
    #[oai(validator(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    ))]
    pub subject: Text,
    /// 1 to 10,000 characters, not all white space.
    #[oai(validator(
        min_length = 1,
        max_length = 10000,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    ))]
    pub body: Text,
    /// 1 to 100 characters, not all white space.
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    ))]
    pub customer_id: Text,
    /// Where it came from (default `api`; null means the same).
    #[oai(nullable, validator(max_length = 50, pattern = r"^[^\x00]*$"))]
    pub channel: Option<Text>,
    /// Free-form metadata, stored as given (null: none).
    #[oai(nullable)]
    pub metadata: Option<serde_json::Value>,
}

/// The id and status of a created (or re-queued) ticket.
#[derive(Debug, Clone, Object)]
pub struct TicketAccepted {
    /// The ticket's id (the same for a duplicate submission).
    pub ticket_id: Uuid,
    /// Its status.
    pub status: Status,
}

/// The order of a ticket list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum SortOrder {
    /// Newest first.
    CreatedDesc,
    /// Oldest first.
    CreatedAsc,
    /// Most recently changed first.
    UpdatedDesc,
    /// Least recently changed first.
    UpdatedAsc,
}

impl From<SortOrder> for ticketflow_core::store::ListSort {
    fn from(sort: SortOrder) -> Self {
        use ticketflow_core::store::ListSort;
        match sort {
            SortOrder::CreatedDesc => ListSort::CreatedDesc,
            SortOrder::CreatedAsc => ListSort::CreatedAsc,
            SortOrder::UpdatedDesc => ListSort::UpdatedDesc,
            SortOrder::UpdatedAsc => ListSort::UpdatedAsc,
        }
    }
}

/// Ticket statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for a worker.
    Pending,
    /// A worker holds it.
    Processing,
    /// Done; `result` holds the answer.
    Completed,
    /// Given up on; `result` holds the error.
    FailedPermanent,
    /// Paused for a human decision.
    AwaitingApproval,
    /// Handed to a person; no automatic reply.
    Escalated,
}

impl From<TicketStatus> for Status {
    fn from(status: TicketStatus) -> Self {
        match status {
            TicketStatus::Pending => Status::Pending,
            TicketStatus::Processing => Status::Processing,
            TicketStatus::Completed => Status::Completed,
            TicketStatus::FailedPermanent => Status::FailedPermanent,
            TicketStatus::AwaitingApproval => Status::AwaitingApproval,
            TicketStatus::Escalated => Status::Escalated,
        }
    }
}

impl From<Status> for TicketStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => TicketStatus::Pending,
            Status::Processing => TicketStatus::Processing,
            Status::Completed => TicketStatus::Completed,
            Status::FailedPermanent => TicketStatus::FailedPermanent,
            Status::AwaitingApproval => TicketStatus::AwaitingApproval,
            Status::Escalated => TicketStatus::Escalated,
        }
    }
}

/// A ticket.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TicketView {
    /// Id.
    pub id: Uuid,
    /// Customer.
    pub customer_id: String,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Status.
    pub status: Status,
    /// The workflow's result once completed (classification, entities, research, draft, review,
    /// final_response, engine, tokens), or the error once failed.
    pub result: Option<serde_json::Value>,
    /// Failed attempts charged to the retry budget.
    pub attempt_count: i32,
    /// Optimistic-lock version.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Processing first started.
    pub started_at: Option<DateTime<Utc>>,
    /// Completed or failed for good.
    pub completed_at: Option<DateTime<Utc>>,
    /// Where it came from.
    pub channel: String,
    /// Metadata given at creation.
    pub metadata: serde_json::Value,
    /// The workflow's turn over the conversation: 1, one more for each reopen.
    pub turn: i32,
}

impl From<Ticket> for TicketView {
    fn from(t: Ticket) -> Self {
        Self {
            id: t.id,
            customer_id: t.customer_id,
            subject: t.subject,
            body: t.body,
            status: t.status.into(),
            result: t.result,
            attempt_count: t.attempt_count,
            version: t.version,
            created_at: t.created_at,
            started_at: t.started_at,
            completed_at: t.completed_at,
            channel: t.channel,
            metadata: t.metadata,
            turn: t.turn,
        }
    }
}

/// A page of tickets.
#[derive(Debug, Clone, Object)]
pub struct TicketList {
    /// Newest first.
    pub tickets: Vec<TicketView>,
    /// Matching tickets in all.
    pub total: i64,
    /// The page (1-based).
    pub page: u32,
    /// The page size.
    pub page_size: u32,
}

/// Something that happened to a ticket.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventView {
    /// Id.
    pub id: Uuid,
    /// The ticket.
    pub ticket_id: Uuid,
    /// Its position among all tickets' events: the order they are streamed in, and the
    /// `Last-Event-ID` (or `after`) to resume a stream from.
    pub seq: i64,
    /// `created`, `status_change`, `step_complete`, `retry`, `error`, ...
    pub event_type: String,
    /// The workflow step, for step events.
    pub step_name: Option<String>,
    /// Details.
    pub payload: serde_json::Value,
    /// The request that led to it.
    pub request_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<TicketEvent> for EventView {
    fn from(e: TicketEvent) -> Self {
        Self {
            id: e.id,
            ticket_id: e.ticket_id,
            seq: e.seq,
            event_type: e.event_type,
            step_name: e.step_name,
            payload: e.payload,
            request_id: e.request_id,
            created_at: e.created_at,
        }
    }
}

/// Kinds of events, for filtering a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum EventKind {
    /// The ticket was created.
    Created,
    /// Its status changed.
    StatusChange,
    /// A workflow step completed.
    StepComplete,
    /// Processing failed and is retried later.
    Retry,
    /// It failed for good.
    Error,
    /// A tool call was journaled or settled.
    ToolCall,
    /// A call (or the reply) waits for a person.
    ApprovalRequested,
    /// A person decided.
    ApprovalDecided,
    /// A message came in.
    EmailReceived,
    /// A new turn of the conversation started.
    TurnStarted,
    /// An e-mail was accepted by the mail provider.
    EmailSent,
    /// An e-mail was given up on.
    EmailFailed,
}

impl From<EventKind> for EventType {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Created => EventType::Created,
            EventKind::StatusChange => EventType::StatusChange,
            EventKind::StepComplete => EventType::StepComplete,
            EventKind::Retry => EventType::Retry,
            EventKind::Error => EventType::Error,
            EventKind::ToolCall => EventType::ToolCall,
            EventKind::ApprovalRequested => EventType::ApprovalRequested,
            EventKind::ApprovalDecided => EventType::ApprovalDecided,
            EventKind::EmailReceived => EventType::EmailReceived,
            EventKind::TurnStarted => EventType::TurnStarted,
            EventKind::EmailSent => EventType::EmailSent,
            EventKind::EmailFailed => EventType::EmailFailed,
        }
    }
}

/// A file that came with an e-mail (recorded, not kept).
#[derive(Debug, Clone, Object)]
pub struct AttachmentView {
    /// Its file name.
    pub name: Option<String>,
    /// Its MIME type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One message of a ticket's conversation.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MessageView {
    /// Its position (ascending in arrival order).
    pub id: i64,
    /// The ticket.
    pub ticket_id: Uuid,
    /// The workflow turn that answers it (inbound) or wrote it (outbound).
    pub turn: i32,
    /// `inbound` (from the customer) or `outbound`.
    pub direction: String,
    /// `api`, `email`, ...
    pub channel: String,
    /// The sender.
    pub from: Option<String>,
    /// The recipient.
    pub to: Option<String>,
    /// The subject.
    pub subject: String,
    /// The whole text, quoted history included.
    pub text: String,
    /// The text the workflow reads, without quoted history.
    pub reply_text: String,
    /// The HTML part.
    pub html: Option<String>,
    /// The RFC 5322 Message-ID.
    pub message_id: String,
    /// The Message-ID it answers.
    pub in_reply_to: Option<String>,
    /// The thread's Message-IDs, oldest first.
    pub references: Vec<String>,
    /// The mail provider it came through.
    pub provider: Option<String>,
    /// `received`, `recorded` (kept, not sent: an `api` ticket, `EMAIL_PROVIDER=log`, or a
    /// reply withheld, with why in `metadata.withheld`), `queued`, `sent` or `failed`.
    pub status: String,
    /// The files it carried.
    pub attachments: Vec<AttachmentView>,
    /// The sender's name, why it is automatic mail when it is, why a reply was withheld.
    pub metadata: serde_json::Value,
    /// Stored.
    pub created_at: DateTime<Utc>,
    /// Delivered.
    pub sent_at: Option<DateTime<Utc>>,
    /// Delivery attempts made (outbound e-mail).
    pub attempts: i32,
    /// Why the last delivery attempt failed: while it waits to be retried, or once it failed.
    pub last_error: Option<String>,
}

/// What a password reset e-mail shows instead of its text: the link is a secret.
const SECRET_TEXT: &str = "(a password reset link: not shown)";

impl From<ConversationMessage> for MessageView {
    fn from(mut m: ConversationMessage) -> Self {
        if m.is_secret() {
            SECRET_TEXT.clone_into(&mut m.text);
            SECRET_TEXT.clone_into(&mut m.reply_text);
            m.html = None;
        }
        Self {
            id: m.id,
            ticket_id: m.ticket_id,
            turn: m.turn,
            direction: m.direction.as_str().to_owned(),
            channel: m.channel,
            from: m.from_address,
            to: m.to_address,
            subject: m.subject,
            text: m.text,
            reply_text: m.reply_text,
            html: m.html,
            message_id: m.message_id,
            in_reply_to: m.in_reply_to,
            references: m.references,
            provider: m.provider,
            status: m.status.as_str().to_owned(),
            attachments: m
                .attachments
                .into_iter()
                .map(|a| AttachmentView {
                    name: a.name,
                    content_type: a.content_type,
                    size: a.size,
                })
                .collect(),
            metadata: m.metadata,
            created_at: m.created_at,
            sent_at: m.sent_at,
            attempts: m.attempts,
            last_error: m.last_error,
        }
    }
}

/// `healthy` or `unhealthy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum Health {
    /// Working.
    Healthy,
    /// Not working.
    Unhealthy,
}

/// The service's health.
#[derive(Debug, Clone, Object)]
pub struct HealthView {
    /// `healthy` only when both the database and the queue are.
    pub status: Health,
    /// The database.
    pub database: Health,
    /// The queue.
    pub queue: Health,
}

/// The one error shape of every 4xx and 5xx response.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ErrorBody {
    /// A stable, machine-readable code (`validation_error`, `not_found`, ...).
    pub error: String,
    /// What went wrong, for humans.
    pub message: String,
    /// The offending field or parameter, when there is one.
    pub field: Option<String>,
    /// The request id (also in the `X-Request-ID` header).
    pub request_id: Option<String>,
}

/// Where an approval request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for a person.
    Pending,
    /// Approved: the call ran (or runs), or the reply was sent.
    Approved,
    /// Rejected: the call never runs.
    Rejected,
}

impl From<ApprovalStatus> for ApprovalState {
    fn from(status: ApprovalStatus) -> Self {
        match status {
            ApprovalStatus::Pending => ApprovalState::Pending,
            ApprovalStatus::Approved => ApprovalState::Approved,
            ApprovalStatus::Rejected => ApprovalState::Rejected,
        }
    }
}

/// Which approval requests to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ApprovalFilter {
    /// Waiting for a person (the default).
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
    /// Every request.
    All,
}

impl ApprovalFilter {
    /// The store's filter (`None`: all).
    pub fn status(self) -> Option<ApprovalStatus> {
        match self {
            ApprovalFilter::Pending => Some(ApprovalStatus::Pending),
            ApprovalFilter::Approved => Some(ApprovalStatus::Approved),
            ApprovalFilter::Rejected => Some(ApprovalStatus::Rejected),
            ApprovalFilter::All => None,
        }
    }
}

/// The ticket an approval request concerns.
#[derive(Debug, Clone, Object)]
pub struct ApprovalTicketView {
    /// Its subject.
    pub subject: String,
    /// Its customer.
    pub customer_id: String,
}

/// A request for a person's decision on a held call (or on the reply, `send_reply`).
#[derive(Debug, Clone, Object)]
pub struct ApprovalView {
    /// Id.
    pub id: Uuid,
    /// The ticket.
    pub ticket_id: Uuid,
    /// The held call (see the ticket's `actions_taken`).
    pub call_id: Uuid,
    /// The tool (`process_refund`, ...) or `send_reply`.
    pub action_type: String,
    /// The call's arguments (for `send_reply`: the reply, `response`).
    pub action_params: serde_json::Value,
    /// Where it is.
    pub status: ApprovalState,
    /// When the run paused.
    pub requested_at: DateTime<Utc>,
    /// When a person decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// Why, if they said.
    pub decision_reason: Option<String>,
    /// For a held reply: the text sent instead of the draft.
    pub edited_response: Option<String>,
    /// 1 when requested, 2 once decided.
    pub version: i32,
    /// The ticket's subject and customer.
    pub ticket: ApprovalTicketView,
}

impl From<Approval> for ApprovalView {
    fn from(a: Approval) -> Self {
        Self {
            id: a.id,
            ticket_id: a.ticket_id,
            call_id: a.call_id,
            action_type: a.action_type,
            action_params: a.action_params,
            status: a.status.into(),
            requested_at: a.requested_at,
            decided_at: a.decided_at,
            decided_by: a.decided_by,
            decision_reason: a.decision_reason,
            edited_response: a.edited_response,
            version: a.version,
            ticket: ApprovalTicketView {
                subject: a.ticket.subject,
                customer_id: a.ticket.customer_id,
            },
        }
    }
}

/// A page of approval requests.
#[derive(Debug, Clone, Object)]
pub struct ApprovalList {
    /// Oldest first.
    pub approvals: Vec<ApprovalView>,
    /// Matching requests in all.
    pub total: i64,
    /// The page (1-based).
    pub page: u32,
    /// The page size.
    pub page_size: u32,
}

/// A person's reply to the customer.
#[derive(Debug, Clone, Object)]
pub struct StaffReplyRequest {
    /// The reply (1 to 20,000 characters, not blank): e-mailed on an e-mail ticket, recorded
    /// on an `api` one.
    #[oai(validator(min_length = 1, max_length = 20000, pattern = r"^[^\x00]*$"))]
    pub text: Text,
}

/// What a person's reply did.
#[derive(Debug, Clone, Object)]
pub struct StaffReplyView {
    /// The reply, as stored (`queued` until it is delivered, `recorded` on an `api` ticket).
    pub message: MessageView,
    /// The ticket's status now.
    pub ticket_status: Status,
    /// True when the reply completed an `escalated` ticket.
    pub completed: bool,
    /// True when this `Idempotency-Key` was used before: the stored reply, nothing sent again.
    pub duplicate: bool,
}

/// A person's decision on a held call.
#[derive(Debug, Clone, Object)]
pub struct DecideRequest {
    /// Approve (the call runs, or the reply is sent) or reject (it never does).
    pub approved: bool,
    /// Why (at most 2,000 characters).
    #[oai(nullable, validator(max_length = 2000, pattern = r"^[^\x00]*$"))]
    pub reason: Option<Text>,
    /// Only for a held reply (`send_reply`): the text to send instead of the draft (1 to 20,000
    /// characters, not blank).
    #[oai(nullable, validator(min_length = 1, max_length = 20000, pattern = r"^[^\x00]*$"))]
    pub edited_response: Option<Text>,
    /// Who decides: recorded only when the API is open (no `API_KEYS`); with keys, the key's
    /// name is recorded instead.
    #[oai(nullable, validator(max_length = 200, pattern = r"^[^\x00]*$"))]
    pub decided_by: Option<Text>,
}

/// What a decision did.
#[derive(Debug, Clone, Object)]
pub struct DecisionView {
    /// The request.
    pub approval_id: Uuid,
    /// Its ticket.
    pub ticket_id: Uuid,
    /// The request's status now.
    pub status: ApprovalState,
    /// True: the ticket is back in the queue and its run resumes from the gate.
    pub resumed: bool,
    /// What happens next, for humans.
    pub message: String,
}

/// The support desk's counts.
#[derive(Debug, Clone, Object)]
pub struct DeskStatsView {
    /// Every ticket.
    pub total_tickets: i64,
    /// Waiting to be processed.
    pub pending_tickets: i64,
    /// Being processed.
    pub processing_tickets: i64,
    /// Waiting for a person's decision.
    pub awaiting_approval_tickets: i64,
    /// Answered.
    pub completed_tickets: i64,
    /// Failed for good.
    pub failed_tickets: i64,
    /// Approval requests waiting.
    pub pending_approvals: i64,
    /// Handed to a person.
    pub escalated_tickets: i64,
}

impl From<DeskStats> for DeskStatsView {
    fn from(s: DeskStats) -> Self {
        Self {
            total_tickets: s.total_tickets,
            pending_tickets: s.pending_tickets,
            processing_tickets: s.processing_tickets,
            awaiting_approval_tickets: s.awaiting_approval_tickets,
            completed_tickets: s.completed_tickets,
            failed_tickets: s.failed_tickets,
            pending_approvals: s.pending_approvals,
            escalated_tickets: s.escalated_tickets,
        }
    }
}

/// Where a webhook delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet accepted; due at `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up on after `WEBHOOK_RETRY_HOURS`; `POST /webhooks/deliveries/{id}/retry` tries again.
    Failed,
}

impl From<WebhookStatus> for DeliveryStatus {
    fn from(status: WebhookStatus) -> Self {
        match status {
            WebhookStatus::Pending => DeliveryStatus::Pending,
            WebhookStatus::Delivered => DeliveryStatus::Delivered,
            WebhookStatus::Failed => DeliveryStatus::Failed,
        }
    }
}

impl From<DeliveryStatus> for WebhookStatus {
    fn from(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Pending => WebhookStatus::Pending,
            DeliveryStatus::Delivered => WebhookStatus::Delivered,
            DeliveryStatus::Failed => WebhookStatus::Failed,
        }
    }
}

/// Webhook event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum WebhookEventType {
    /// A ticket completed.
    #[oai(rename = "ticket.completed")]
    TicketCompleted,
    /// A ticket failed for good.
    #[oai(rename = "ticket.failed")]
    TicketFailed,
    /// A ticket was handed to a person.
    #[oai(rename = "ticket.escalated")]
    TicketEscalated,
    /// A ticket waits for a person's decision.
    #[oai(rename = "ticket.awaiting_approval")]
    TicketAwaitingApproval,
    /// A person decided on a held call.
    #[oai(rename = "approval.decided")]
    ApprovalDecided,
}

impl WebhookEventType {
    /// The name sent as the body's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventType::TicketCompleted => "ticket.completed",
            WebhookEventType::TicketFailed => "ticket.failed",
            WebhookEventType::TicketEscalated => "ticket.escalated",
            WebhookEventType::TicketAwaitingApproval => "ticket.awaiting_approval",
            WebhookEventType::ApprovalDecided => "approval.decided",
        }
    }
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DeliveryView {
    /// Its id.
    pub id: i64,
    /// The `webhook-id` header it is sent with (the same at every attempt).
    pub webhook_id: String,
    /// The ticket event it announces.
    pub event_id: Uuid,
    /// The receiver.
    pub endpoint: String,
    /// `ticket.completed`, `ticket.failed`, `ticket.escalated`, `ticket.awaiting_approval`,
    /// `approval.decided`.
    pub event_type: String,
    /// The ticket.
    pub ticket_id: Uuid,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: i32,
    /// When it is next tried (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The HTTP status of the last answer.
    pub last_status: Option<i32>,
    /// What is posted: `{type, timestamp, data}`.
    pub body: serde_json::Value,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<WebhookDelivery> for DeliveryView {
    fn from(d: WebhookDelivery) -> Self {
        Self {
            webhook_id: d.webhook_id(),
            id: d.id,
            event_id: d.event_id,
            endpoint: d.endpoint,
            event_type: d.event_type,
            ticket_id: d.ticket_id,
            status: d.status.into(),
            attempts: d.attempts,
            next_attempt_at: (d.status == WebhookStatus::Pending).then_some(d.available_at),
            last_error: d.last_error,
            last_status: d.last_status,
            body: d.body,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// A page of webhook deliveries, newest first.
#[derive(Debug, Clone, Object)]
pub struct DeliveryList {
    /// The deliveries.
    pub deliveries: Vec<DeliveryView>,
    /// How many match.
    pub total: i64,
    /// The page (1-based).
    pub page: u32,
    /// The page size.
    pub page_size: u32,
}

/// What a person or key may do (each includes the ones before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RoleName {
    /// Reads tickets, events, messages, approvals, stats and streams.
    Viewer,
    /// Also creates tickets, decides approvals, replies and retries.
    Agent,
    /// Also manages people and keys.
    Admin,
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::Viewer => RoleName::Viewer,
            Role::Agent => RoleName::Agent,
            Role::Admin => RoleName::Admin,
        }
    }
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Viewer => Role::Viewer,
            RoleName::Agent => Role::Agent,
            RoleName::Admin => Role::Admin,
        }
    }
}

/// A staff account.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserView {
    /// Its id.
    pub id: Uuid,
    /// The sign-in address.
    pub email: String,
    /// The name shown.
    pub name: String,
    /// What they may do.
    pub role: RoleName,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
    /// When it was disabled.
    pub disabled_at: Option<DateTime<Utc>>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            name: user.name,
            role: user.role.into(),
            created_at: user.created_at,
            disabled_at: user.disabled_at,
        }
    }
}

/// A named API key (never the key itself).
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiKeyView {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The clear part of the key that identifies it: the key starts `tfk_<prefix>_`.
    pub prefix: String,
    /// What it may do.
    pub role: RoleName,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id,
            name: key.name,
            prefix: key.prefix,
            role: key.role.into(),
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
        }
    }
}
