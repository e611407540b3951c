//! Rows as PostgreSQL returns them, and the records they become.

use chrono::{DateTime, Utc};
use ticketflow_graph::{Checkpoint, CheckpointError};
use uuid::Uuid;

use crate::PastTicket;
use crate::commerce::{Address, Customer, Order, OrderItem, Product, Refund};
use crate::money::Money;
use crate::store::{
    Approval, ApprovalStatus, ApprovalTicket, Attachment, Backlog, BugReport, CallStatus, ConversationMessage,
    Direction, Escalation, MessageStatus, OutboxMessage, PasswordReset, StoreError, Ticket, TicketEvent, TicketStatus,
    ToolCall,
};

/// The columns of [`TicketRow`], for `SELECT` and `RETURNING`.
pub(super) const TICKET_COLUMNS: &str = "id, customer_id, subject, body, status, result, attempt_count, version, \
                                         channel, metadata, lease_epoch, turn, created_at, started_at, completed_at";

/// A `tickets` row.
#[derive(sqlx::FromRow)]
pub(super) struct TicketRow {
    id: Uuid,
    customer_id: String,
    subject: String,
    body: String,
    status: TicketStatus,
    result: Option<serde_json::Value>,
    attempt_count: i32,
    version: i64,
    channel: String,
    metadata: serde_json::Value,
    lease_epoch: i64,
    turn: i32,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
}

impl From<TicketRow> for Ticket {
    fn from(row: TicketRow) -> Self {
        Ticket {
            id: row.id,
            customer_id: row.customer_id,
            subject: row.subject,
            body: row.body,
            status: row.status,
            // A JSON `null` result is no result, as a ticket read back from `to_json` says.
            result: row.result.filter(|r| !r.is_null()),
            attempt_count: row.attempt_count,
            version: row.version,
            channel: row.channel,
            metadata: row.metadata,
            lease_epoch: row.lease_epoch,
            turn: row.turn,
            created_at: row.created_at,
            started_at: row.started_at,
            completed_at: row.completed_at,
        }
    }
}

/// A ticket a statement returned as `to_json(t)`: its columns, by name, as JSON.
pub(super) fn ticket_from_json(json: serde_json::Value) -> Result<Ticket, sqlx::Error> {
    serde_json::from_value(json).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The columns of [`MessageRow`].
pub(super) const MESSAGE_COLUMNS: &str = "id, ticket_id, turn, direction, channel, from_address, to_address, subject, \
    text, reply_text, html, message_id, in_reply_to, thread_references, provider, status, attachments, metadata, \
    created_at, sent_at, attempts, last_error";

/// A `ticket_messages` row.
#[derive(sqlx::FromRow)]
pub(super) struct MessageRow {
    id: i64,
    ticket_id: Uuid,
    turn: i32,
    direction: Direction,
    channel: String,
    from_address: Option<String>,
    to_address: Option<String>,
    subject: String,
    text: String,
    reply_text: String,
    html: Option<String>,
    message_id: String,
    in_reply_to: Option<String>,
    thread_references: sqlx::types::Json<Vec<String>>,
    provider: Option<String>,
    status: MessageStatus,
    attachments: sqlx::types::Json<Vec<Attachment>>,
    metadata: serde_json::Value,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    attempts: i32,
    last_error: Option<String>,
}

impl From<MessageRow> for ConversationMessage {
    fn from(row: MessageRow) -> Self {
        ConversationMessage {
            id: row.id,
            ticket_id: row.ticket_id,
            turn: row.turn,
            direction: row.direction,
            channel: row.channel,
            from_address: row.from_address,
            to_address: row.to_address,
            subject: row.subject,
            text: row.text,
            reply_text: row.reply_text,
            html: row.html,
            message_id: row.message_id,
            in_reply_to: row.in_reply_to,
            references: row.thread_references.0,
            provider: row.provider,
            status: row.status,
            attachments: row.attachments.0,
            metadata: row.metadata,
            created_at: row.created_at,
            sent_at: row.sent_at,
            attempts: row.attempts,
            last_error: row.last_error,
        }
    }
}

/// The columns of [`EventRow`].
pub(super) const EVENT_COLUMNS: &str = "id, ticket_id, seq, event_type, step_name, payload, request_id, created_at";

/// A `ticket_events` row.
#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    id: Uuid,
    ticket_id: Uuid,
    seq: i64,
    event_type: String,
    step_name: Option<String>,
    payload: serde_json::Value,
    request_id: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<EventRow> for TicketEvent {
    fn from(row: EventRow) -> Self {
        TicketEvent {
            id: row.id,
            ticket_id: row.ticket_id,
            seq: row.seq,
            event_type: row.event_type,
            step_name: row.step_name,
            payload: row.payload,
            request_id: row.request_id,
            created_at: row.created_at,
        }
    }
}

/// An outbox row claimed for publishing, with its ticket's attempt count.
#[derive(sqlx::FromRow)]
pub(super) struct OutboxRow {
    id: i64,
    ticket_id: Uuid,
    request_id: Option<String>,
    traceparent: Option<String>,
    attempt_count: i32,
}

impl From<OutboxRow> for OutboxMessage {
    fn from(row: OutboxRow) -> Self {
        OutboxMessage {
            id: row.id,
            ticket_id: row.ticket_id,
            request_id: row.request_id,
            traceparent: row.traceparent,
            attempt: row.attempt_count,
        }
    }
}

/// One of a customer's earlier tickets.
#[derive(sqlx::FromRow)]
pub(super) struct PastTicketRow {
    id: Uuid,
    subject: String,
    status: TicketStatus,
    created_at: DateTime<Utc>,
}

impl From<PastTicketRow> for PastTicket {
    fn from(row: PastTicketRow) -> Self {
        PastTicket {
            id: row.id.to_string(),
            subject: row.subject,
            status: row.status.as_str().to_owned(),
            created_at: row.created_at,
        }
    }
}

/// The columns of [`CheckpointRow`] (the state as the text it was written as).
pub(super) const CHECKPOINT_COLUMNS: &str = "thread_id, step, checkpoint_id, parent_id, completed_node, next_node, \
                                             state::text AS state, graph_version, interrupt, metadata, created_at";

/// A `workflow_checkpoints` row.
#[derive(sqlx::FromRow)]
pub(super) struct CheckpointRow {
    thread_id: String,
    step: i64,
    checkpoint_id: Uuid,
    parent_id: Option<Uuid>,
    completed_node: Option<String>,
    next_node: Option<String>,
    state: String,
    graph_version: String,
    interrupt: Option<serde_json::Value>,
    metadata: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl TryFrom<CheckpointRow> for Checkpoint {
    type Error = CheckpointError;

    fn try_from(row: CheckpointRow) -> Result<Self, CheckpointError> {
        Ok(Checkpoint {
            thread_id: row.thread_id.into(),
            id: row.checkpoint_id,
            parent_id: row.parent_id,
            step: u64::try_from(row.step).map_err(CheckpointError::storage)?,
            completed_node: row.completed_node.map(Into::into),
            next_node: row.next_node.map(Into::into),
            state: serde_json::value::RawValue::from_string(row.state).map_err(CheckpointError::storage)?,
            graph_version: row.graph_version.into(),
            interrupt: row.interrupt,
            metadata: row.metadata,
            created_at: row.created_at,
        })
    }
}

/// The backlog gauges.
#[derive(sqlx::FromRow)]
pub(super) struct BacklogRow {
    pending: i64,
    oldest: f64,
    due: i64,
    lag: f64,
}

impl From<BacklogRow> for Backlog {
    fn from(row: BacklogRow) -> Self {
        Backlog {
            pending: row.pending,
            oldest_pending_seconds: row.oldest,
            outbox_due: row.due,
            outbox_lag_seconds: row.lag,
        }
    }
}

/// The columns of [`CustomerRow`].
pub(super) const CUSTOMER_COLUMNS: &str =
    "id, email, name, phone, tier, lifetime_value_cents, address_line, city, region, postal_code, country";

/// A `customers` row.
#[derive(sqlx::FromRow)]
pub(super) struct CustomerRow {
    id: String,
    email: String,
    name: String,
    phone: Option<String>,
    tier: String,
    lifetime_value_cents: i64,
    address_line: String,
    city: String,
    region: String,
    postal_code: String,
    country: String,
}

impl From<CustomerRow> for Customer {
    fn from(row: CustomerRow) -> Self {
        Customer {
            id: row.id,
            email: row.email,
            name: row.name,
            phone: row.phone,
            tier: row.tier,
            lifetime_value: Money::from_cents(row.lifetime_value_cents),
            address: Address {
                line: row.address_line,
                city: row.city,
                region: row.region,
                postal_code: row.postal_code,
                country: row.country,
            },
        }
    }
}

/// The columns of [`ProductRow`].
pub(super) const PRODUCT_COLUMNS: &str = "id, name, description, price_cents, category, in_stock";

/// A `products` row.
#[derive(sqlx::FromRow)]
pub(super) struct ProductRow {
    id: String,
    name: String,
    description: String,
    price_cents: i64,
    category: String,
    in_stock: bool,
}

impl From<ProductRow> for Product {
    fn from(row: ProductRow) -> Self {
        Product {
            id: row.id,
            name: row.name,
            description: row.description,
            price: Money::from_cents(row.price_cents),
            category: row.category,
            in_stock: row.in_stock,
        }
    }
}

/// The columns of [`OrderRow`].
pub(super) const ORDER_COLUMNS: &str = "id, customer_id, status, total_cents, refunded_cents, carrier, tracking_number, \
     placed_at, shipped_at, delivered_at, estimated_delivery, ship_address_line, ship_city, ship_region, \
     ship_postal_code, ship_country";

/// An `orders` row.
#[derive(sqlx::FromRow)]
pub(super) struct OrderRow {
    pub id: String,
    customer_id: String,
    status: String,
    total_cents: i64,
    refunded_cents: i64,
    carrier: Option<String>,
    tracking_number: Option<String>,
    placed_at: DateTime<Utc>,
    shipped_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    estimated_delivery: Option<DateTime<Utc>>,
    ship_address_line: String,
    ship_city: String,
    ship_region: String,
    ship_postal_code: String,
    ship_country: String,
}

impl OrderRow {
    /// The order, with `items`.
    pub(super) fn into_order(self, items: Vec<OrderItemRow>) -> Result<Order, StoreError> {
        Ok(Order {
            status: self
                .status
                .parse()
                .map_err(|e: crate::commerce::UnknownOrderStatus| StoreError::Corrupt(e.to_string()))?,
            id: self.id,
            customer_id: self.customer_id,
            items: items.into_iter().map(OrderItem::from).collect(),
            total: Money::from_cents(self.total_cents),
            refunded: Money::from_cents(self.refunded_cents),
            carrier: self.carrier,
            tracking_number: self.tracking_number,
            placed_at: self.placed_at,
            shipped_at: self.shipped_at,
            delivered_at: self.delivered_at,
            estimated_delivery: self.estimated_delivery,
            ship_to: Address {
                line: self.ship_address_line,
                city: self.ship_city,
                region: self.ship_region,
                postal_code: self.ship_postal_code,
                country: self.ship_country,
            },
        })
    }
}

/// An `order_items` row with its product's name.
#[derive(Clone, sqlx::FromRow)]
pub(super) struct OrderItemRow {
    pub order_id: String,
    product_id: String,
    name: String,
    quantity: i32,
    unit_price_cents: i64,
}

impl From<OrderItemRow> for OrderItem {
    fn from(row: OrderItemRow) -> Self {
        OrderItem {
            product_id: row.product_id,
            name: row.name,
            quantity: u32::try_from(row.quantity).unwrap_or(0),
            unit_price: Money::from_cents(row.unit_price_cents),
        }
    }
}

/// The columns of [`ToolCallRow`].
pub(super) const TOOL_CALL_COLUMNS: &str =
    "call_id, ticket_id, tool, args, status, result, llm_call_id, created_at, updated_at, executed_at";

/// A `tool_calls` row.
#[derive(sqlx::FromRow)]
pub(super) struct ToolCallRow {
    call_id: Uuid,
    ticket_id: Uuid,
    tool: String,
    args: serde_json::Value,
    status: CallStatus,
    result: Option<serde_json::Value>,
    llm_call_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    executed_at: Option<DateTime<Utc>>,
}

impl From<ToolCallRow> for ToolCall {
    fn from(row: ToolCallRow) -> Self {
        ToolCall {
            call_id: row.call_id,
            ticket_id: row.ticket_id,
            tool: row.tool,
            args: row.args,
            status: row.status,
            result: row.result,
            llm_call_id: row.llm_call_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
            executed_at: row.executed_at,
        }
    }
}

/// The columns of [`RefundRow`].
pub(super) const REFUND_COLUMNS: &str =
    "id, order_id, ticket_id, call_id, amount_cents, reason, status, approval_id, created_at";

/// A `refunds` row.
#[derive(sqlx::FromRow)]
pub(super) struct RefundRow {
    id: String,
    order_id: String,
    ticket_id: Uuid,
    call_id: Uuid,
    amount_cents: i64,
    reason: String,
    status: String,
    approval_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

impl From<RefundRow> for Refund {
    fn from(row: RefundRow) -> Self {
        Refund {
            id: row.id,
            order_id: row.order_id,
            ticket_id: row.ticket_id,
            call_id: row.call_id,
            amount: Money::from_cents(row.amount_cents),
            reason: row.reason,
            status: row.status,
            approval_id: row.approval_id,
            created_at: row.created_at,
        }
    }
}

/// An `escalations` row.
#[derive(sqlx::FromRow)]
pub(super) struct EscalationRow {
    id: String,
    ticket_id: Uuid,
    call_id: Uuid,
    reason: String,
    suggested_action: String,
    status: String,
    created_at: DateTime<Utc>,
}

impl From<EscalationRow> for Escalation {
    fn from(row: EscalationRow) -> Self {
        Escalation {
            id: row.id,
            ticket_id: row.ticket_id,
            call_id: row.call_id,
            reason: row.reason,
            suggested_action: row.suggested_action,
            status: row.status,
            created_at: row.created_at,
        }
    }
}

/// A `bug_reports` row.
#[derive(sqlx::FromRow)]
pub(super) struct BugReportRow {
    id: String,
    ticket_id: Uuid,
    call_id: Uuid,
    title: String,
    description: String,
    priority: String,
    external_url: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<BugReportRow> for BugReport {
    fn from(row: BugReportRow) -> Self {
        BugReport {
            id: row.id,
            ticket_id: row.ticket_id,
            call_id: row.call_id,
            title: row.title,
            description: row.description,
            priority: row.priority,
            external_url: row.external_url,
            created_at: row.created_at,
        }
    }
}

/// A `password_resets` row.
#[derive(sqlx::FromRow)]
pub(super) struct PasswordResetRow {
    id: String,
    ticket_id: Uuid,
    call_id: Uuid,
    customer_id: String,
    email: String,
    token_hash: String,
    expires_at: DateTime<Utc>,
    email_status: String,
    created_at: DateTime<Utc>,
}

impl From<PasswordResetRow> for PasswordReset {
    fn from(row: PasswordResetRow) -> Self {
        PasswordReset {
            id: row.id,
            ticket_id: row.ticket_id,
            call_id: row.call_id,
            customer_id: row.customer_id,
            email: row.email,
            token_hash: row.token_hash,
            expires_at: row.expires_at,
            email_status: row.email_status,
            created_at: row.created_at,
        }
    }
}

/// The columns of [`ApprovalRow`]: an `approval_requests` row `a` and its ticket `t`.
pub(super) const APPROVAL_COLUMNS: &str = "a.id, a.ticket_id, a.call_id, a.action_type, a.action_params, a.status, \
     a.requested_at, a.decided_at, a.decided_by, a.decision_reason, a.edited_response, a.version, t.subject, \
     t.customer_id";

/// An `approval_requests` row with its ticket's subject and customer.
#[derive(sqlx::FromRow)]
pub(super) struct ApprovalRow {
    id: Uuid,
    ticket_id: Uuid,
    call_id: Uuid,
    action_type: String,
    action_params: serde_json::Value,
    status: ApprovalStatus,
    requested_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    decided_by: Option<String>,
    decision_reason: Option<String>,
    edited_response: Option<String>,
    version: i32,
    subject: String,
    customer_id: String,
}

impl From<ApprovalRow> for Approval {
    fn from(row: ApprovalRow) -> Self {
        Approval {
            id: row.id,
            ticket_id: row.ticket_id,
            call_id: row.call_id,
            action_type: row.action_type,
            action_params: row.action_params,
            status: row.status,
            requested_at: row.requested_at,
            decided_at: row.decided_at,
            decided_by: row.decided_by,
            decision_reason: row.decision_reason,
            edited_response: row.edited_response,
            version: row.version,
            ticket: ApprovalTicket {
                subject: row.subject,
                customer_id: row.customer_id,
            },
        }
    }
}
