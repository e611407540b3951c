//! A ticket's events, and the typed payloads of the events ticketflow writes.
//!
//! Every payload has one Rust type, built once and bound as a parameter by both stores; the
//! one payload a statement has to build from the row it changes (a claim's: which status it
//! left and the epoch it reached) is built by PostgreSQL to the same type, and the store
//! conformance suite decodes every event strictly into its type on both backends.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TicketStatus;

/// Kinds of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// The ticket was created.
    Created,
    /// The status changed.
    StatusChange,
    /// A workflow step completed (its checkpoint committed).
    StepComplete,
    /// Processing failed and will be retried later.
    Retry,
    /// Something went wrong.
    Error,
    /// A tool call was journaled, or settled.
    ToolCall,
    /// A call (or the reply) waits for a person's decision.
    ApprovalRequested,
    /// A person decided.
    ApprovalDecided,
    /// A message came in on the ticket's conversation.
    EmailReceived,
    /// The workflow starts a new turn of the conversation.
    TurnStarted,
    /// An outbound e-mail was accepted by the mail provider.
    EmailSent,
    /// An outbound e-mail was given up on.
    EmailFailed,
}

impl EventType {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "created",
            EventType::StatusChange => "status_change",
            EventType::StepComplete => "step_complete",
            EventType::Retry => "retry",
            EventType::Error => "error",
            EventType::ToolCall => "tool_call",
            EventType::ApprovalRequested => "approval_requested",
            EventType::ApprovalDecided => "approval_decided",
            EventType::EmailReceived => "email_received",
            EventType::TurnStarted => "turn_started",
            EventType::EmailSent => "email_sent",
            EventType::EmailFailed => "email_failed",
        }
    }
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Its kind.
    pub event_type: EventType,
    /// The workflow step it concerns.
    pub step_name: Option<String>,
    /// Details.
    pub payload: serde_json::Value,
    /// The request id it traces back to.
    pub request_id: Option<String>,
}

impl NewEvent {
    /// An event of `event_type` with a payload and nothing else.
    pub fn new(event_type: EventType, payload: serde_json::Value) -> Self {
        Self {
            event_type,
            step_name: None,
            payload,
            request_id: None,
        }
    }

    /// The event a typed payload describes.
    pub fn of<P: Payload>(payload: &P) -> Self {
        // A payload is a struct of strings, numbers and JSON values: it always serializes.
        Self::new(P::EVENT_TYPE, serde_json::to_value(payload).unwrap_or_default())
    }

    /// Also names the workflow step.
    pub fn in_step(mut self, step: impl Into<String>) -> Self {
        self.step_name = Some(step.into());
        self
    }

    /// Also records the request id.
    pub fn for_request(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketEvent {
    /// Its id.
    pub id: Uuid,
    /// Its ticket.
    pub ticket_id: Uuid,
    /// Its position among all events (orders events that share a timestamp).
    pub seq: i64,
    /// `created`, `status_change`, `step_complete`, `retry`, `error`, ...
    pub event_type: String,
    /// The workflow step, for step events.
    pub step_name: Option<String>,
    /// Details.
    pub payload: serde_json::Value,
    /// The request id it traces back to.
    pub request_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl TicketEvent {
    /// The payload as `P`, if this is an event of `P`'s type and its payload has exactly
    /// `P`'s fields.
    pub fn decode<P: Payload>(&self) -> Option<P> {
        (self.event_type == P::EVENT_TYPE.as_str())
            .then(|| serde_json::from_value(self.payload.clone()).ok())
            .flatten()
    }
}

/// A typed event payload.
pub trait Payload: Serialize + DeserializeOwned {
    /// The kind of event it is the payload of.
    const EVENT_TYPE: EventType;
}

/// `created`: the ticket's first event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Created {
    /// Always `pending`.
    pub status: TicketStatus,
    /// The ticket's channel.
    pub channel: String,
    /// Who created it (see [`NewTicket::actor`](super::NewTicket::actor)); absent when
    /// anonymous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// `status_change` of a [`Transition`](super::Transition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moved {
    /// The status left.
    pub from: TicketStatus,
    /// The status reached.
    pub to: TicketStatus,
    /// The attempt count after the change.
    pub attempt_count: i32,
    /// Who made the change, when a person or key did (see
    /// [`Transition::actor`](super::Transition::actor)); absent for the workflow's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// `status_change` of a claim: a worker took the ticket under a new lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claimed {
    /// `pending`, or `processing` for a takeover.
    pub from: TicketStatus,
    /// Always `processing`.
    pub to: TicketStatus,
    /// The worker now holding it.
    pub worker_id: String,
    /// The lease epoch granted.
    pub lease_epoch: i64,
    /// True when the ticket was taken from a worker whose lease expired.
    pub takeover: bool,
}

/// `status_change` of a release: a run handed its ticket back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Released {
    /// Always `processing`.
    pub from: TicketStatus,
    /// Always `pending`.
    pub to: TicketStatus,
    /// Why.
    pub released: String,
}

/// `status_change` beside a pause: the run stopped at a node for a human decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interrupted {
    /// The node that paused.
    pub interrupted_at: String,
    /// What it asked.
    pub payload: serde_json::Value,
}

/// `step_complete`: a workflow step's checkpoint committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepCompleted {
    /// The checkpoint's step number.
    pub step: u64,
    /// The checkpoint.
    pub checkpoint_id: Uuid,
    /// Time since the run's previous checkpoint (node time plus the write).
    pub duration_ms: Option<f64>,
}

/// `retry`: the engine gave up on a step, and the ticket is tried again later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryScheduled {
    /// The engine's error.
    pub error: String,
    /// Failed attempts so far.
    pub attempt: i32,
    /// Until the retry.
    pub delay_seconds: f64,
}

/// `retry`: a person re-queued a failed ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualRetry {
    /// Always true.
    pub manual: bool,
    /// Who re-queued it: a person's e-mail, `key:<name>`, `api-key-<n>`; absent when
    /// anonymous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// `error`: the ticket failed for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failed {
    /// Why.
    pub error: String,
    /// True when the retry budget ran out; absent when the outcome itself could not be stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries_exhausted: Option<bool>,
}

/// `tool_call`: a call was journaled (proposed) or settled (executed or failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCalled {
    /// The call.
    pub call_id: Uuid,
    /// Its tool.
    pub tool: String,
    /// Where it is now.
    pub status: super::CallStatus,
}

/// `approval_requested`: the run paused until a person decides on a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequested {
    /// The approval request.
    pub approval_id: Uuid,
    /// The held call.
    pub call_id: Uuid,
    /// Its tool, or `send_reply`.
    pub action_type: String,
    /// The workflow step that paused.
    pub interrupted_at: String,
}

/// `approval_decided`: a person approved or rejected a held call; the run resumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDecided {
    /// The approval request.
    pub approval_id: Uuid,
    /// The call decided on.
    pub call_id: Uuid,
    /// The decision.
    pub approved: bool,
    /// Who decided.
    pub decided_by: Option<String>,
    /// Why, if they said.
    pub reason: Option<String>,
}

/// `email_received`: an inbound message was added to the ticket's conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailReceived {
    /// Its Message-ID.
    pub message_id: String,
    /// Its sender.
    pub from: Option<String>,
    /// What it did to the ticket.
    pub arrival: super::Arrival,
    /// The turn that answers it.
    pub turn: i32,
}

/// `turn_started`: the workflow answers the conversation again, in turn `turn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnStarted {
    /// The new turn.
    pub turn: i32,
}

/// `email_sent`: the mail provider accepted an outbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSent {
    /// Its Message-ID (the same for every attempt).
    pub message_id: String,
    /// Its recipient.
    pub to: Option<String>,
    /// The provider that took it (`smtp`, `sendgrid`, `mailgun`).
    pub provider: String,
    /// The attempt that succeeded (1 for the first).
    pub attempts: i32,
}

/// `email_failed`: an outbound message was given up on, after `attempts` attempts, or at once
/// when it could never be sent (a rejected address, a request the provider refuses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailFailed {
    /// Its Message-ID.
    pub message_id: String,
    /// Its recipient.
    pub to: Option<String>,
    /// Why.
    pub error: String,
    /// Attempts made.
    pub attempts: i32,
}

macro_rules! payload_of {
    ($($payload:ty => $event_type:ident),* $(,)?) => {
        $(impl Payload for $payload {
            const EVENT_TYPE: EventType = EventType::$event_type;
        })*
    };
}

payload_of!(
    Created => Created,
    Moved => StatusChange,
    Claimed => StatusChange,
    Released => StatusChange,
    Interrupted => StatusChange,
    StepCompleted => StepComplete,
    RetryScheduled => Retry,
    ManualRetry => Retry,
    Failed => Error,
    ToolCalled => ToolCall,
    ApprovalRequested => ApprovalRequested,
    ApprovalDecided => ApprovalDecided,
    EmailReceived => EmailReceived,
    TurnStarted => TurnStarted,
    EmailSent => EmailSent,
    EmailFailed => EmailFailed,
);

/// The `step_complete` event a fenced checkpoint writes beside itself, in the same transaction,
/// with the request id the run carries in its metadata.
pub fn step_complete_event(
    checkpoint: &ticketflow_graph::Checkpoint,
    node: &str,
    since_previous: Option<std::time::Duration>,
) -> NewEvent {
    let payload = StepCompleted {
        step: checkpoint.step,
        checkpoint_id: checkpoint.id,
        duration_ms: since_previous.map(|d| d.as_secs_f64() * 1000.0),
    };
    NewEvent::of(&payload).in_step(node).for_request(
        checkpoint
            .metadata
            .get("request_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
    )
}
