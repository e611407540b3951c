//! The approval aggregate: a person's decision on a held tool call (or on the reply,
//! `send_reply`). A request is written in the same transaction as its ticket's move to
//! `awaiting_approval`; a decision, in one transaction, settles the request, moves the call to
//! `approved` or `rejected`, and hands the ticket back to the queue (`pending` and an outbox
//! row), so that the run resumes and no decision is lost to a crash.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(any(feature = "postgres", feature = "sqlite"))]
use super::{ApprovalDecided, ApprovalRequested, CallStatus, NewEvent, TicketStatus};
use super::{StoreError, Ticket, Transition};

/// The action type of a held reply.
pub const SEND_REPLY: &str = "send_reply";

/// The longest decision reason, in characters.
pub const MAX_REASON_CHARS: usize = 2_000;
/// The longest edited reply, in characters.
pub const MAX_EDITED_RESPONSE_CHARS: usize = 20_000;
/// The longest `decided_by`, in characters.
pub const MAX_DECIDED_BY_CHARS: usize = 200;

/// Where an approval request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for a person.
    Pending,
    /// Approved: the call runs (or the reply is sent).
    Approved,
    /// Rejected: the call never runs.
    Rejected,
}

impl ApprovalStatus {
    /// Every status.
    pub const ALL: [ApprovalStatus; 3] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Rejected,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
        }
    }
}

stored_as_text!(ApprovalStatus, UnknownApprovalStatus, "approval status");

/// A request to write when a run pauses on a call.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApproval {
    /// The call held (journaled as `awaiting_approval`).
    pub call_id: Uuid,
    /// Its tool, or [`SEND_REPLY`].
    pub action_type: String,
    /// Its arguments, as the approver sees them.
    pub action_params: serde_json::Value,
    /// The workflow step that paused.
    pub interrupted_at: String,
}

/// The ticket an approval concerns, as an approver sees it beside the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalTicket {
    /// Its subject.
    pub subject: String,
    /// Its customer.
    pub customer_id: String,
}

/// An approval request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Its id.
    pub id: Uuid,
    /// The ticket.
    pub ticket_id: Uuid,
    /// The held call.
    pub call_id: Uuid,
    /// The call's tool, or [`SEND_REPLY`].
    pub action_type: String,
    /// The call's arguments.
    pub action_params: serde_json::Value,
    /// Where it is.
    pub status: ApprovalStatus,
    /// When the run paused.
    pub requested_at: DateTime<Utc>,
    /// When a person decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// Why, if they said.
    pub decision_reason: Option<String>,
    /// For a held reply: the text the approver sent instead.
    pub edited_response: Option<String>,
    /// How many times the row changed (1 when requested, 2 once decided).
    pub version: i32,
    /// The ticket's subject and customer.
    pub ticket: ApprovalTicket,
}

/// A person's decision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// Approve (the call runs) or reject (it never runs).
    pub approved: bool,
    /// Why.
    pub reason: Option<String>,
    /// For a held reply: the text to send instead of the draft.
    pub edited_response: Option<String>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// The request that carried the decision, recorded on its events and outbox row.
    pub request_id: Option<String>,
}

impl Decision {
    /// Checks the lengths of the texts (and that an edited reply is not blank).
    pub fn validate(&self) -> Result<(), StoreError> {
        let too_long = |field: &'static str, text: &Option<String>, max: usize| match text {
            Some(text) if text.chars().count() > max => Err(StoreError::Validation {
                field,
                message: format!("at most {max} characters"),
            }),
            Some(text) if text.contains('\0') => Err(StoreError::Validation {
                field,
                message: "must not contain NUL characters".into(),
            }),
            _ => Ok(()),
        };
        too_long("reason", &self.reason, MAX_REASON_CHARS)?;
        too_long("edited_response", &self.edited_response, MAX_EDITED_RESPONSE_CHARS)?;
        too_long("decided_by", &self.decided_by, MAX_DECIDED_BY_CHARS)?;
        if self.edited_response.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(StoreError::Validation {
                field: "edited_response",
                message: "must not be blank".into(),
            });
        }
        Ok(())
    }
}

/// Filters and paging for [`ApprovalStore::approvals`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalQuery {
    /// Only requests in this status; `None`: all.
    pub status: Option<ApprovalStatus>,
    /// Only this ticket's requests.
    pub ticket_id: Option<Uuid>,
    /// 1-based page.
    pub page: u32,
    /// 1 to 100.
    pub page_size: u32,
}

impl Default for ApprovalQuery {
    fn default() -> Self {
        Self {
            status: Some(ApprovalStatus::Pending),
            ticket_id: None,
            page: 1,
            page_size: 20,
        }
    }
}

impl ApprovalQuery {
    /// The page and page size, clamped to 1.. and 1..=100.
    pub fn bounded(&self) -> (u32, u32) {
        (self.page.max(1), self.page_size.clamp(1, 100))
    }

    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        let (page, page_size) = self.bounded();
        i64::from(page - 1) * i64::from(page_size)
    }
}

/// One page of approval requests, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalPage {
    /// The requests.
    pub approvals: Vec<Approval>,
    /// How many match the filters in all.
    pub total: i64,
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// The request, decided.
    pub approval: Approval,
    /// The ticket, handed back to the queue (`pending`).
    pub ticket: Ticket,
}

/// The support desk's counts, for the dashboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeskStats {
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
    /// Handed to a person.
    pub escalated_tickets: i64,
    /// Approval requests waiting.
    pub pending_approvals: i64,
}

/// Approval requests and decisions.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Pauses `ticket` on a held call, in one transaction: writes the request (or finds the
    /// one its call already has), applies `change` (to `awaiting_approval`, guarded by the
    /// ticket's version) and an `approval_requested` event. `Conflict` when the ticket moved
    /// meanwhile, or when the call's request was decided already.
    async fn hold(&self, ticket: &Ticket, request: NewApproval, change: Transition) -> Result<Approval, StoreError>;

    /// One request.
    async fn approval(&self, id: Uuid) -> Result<Option<Approval>, StoreError>;

    /// The request of a held call.
    async fn approval_for_call(&self, call_id: Uuid) -> Result<Option<Approval>, StoreError>;

    /// Requests by status and ticket, oldest first.
    async fn approvals(&self, query: &ApprovalQuery) -> Result<ApprovalPage, StoreError>;

    /// Decides a pending request, in one transaction: the request and its call move to
    /// approved or rejected (a rejection's reason becomes the call's result), and the ticket
    /// goes from `awaiting_approval` back to `pending` with an `approval_decided` event and an
    /// outbox row. Of concurrent deciders exactly one wins. `UnknownApproval`; `Conflict` when
    /// it was decided already or its ticket no longer waits for it (retried or superseded).
    async fn decide(&self, id: Uuid, decision: Decision) -> Result<Decided, StoreError>;

    /// The desk's counts.
    async fn desk_stats(&self) -> Result<DeskStats, StoreError>;
}

/// The result a rejected call carries: the rejection, its reason and who decided.
pub fn rejection_result(decision: &Decision) -> serde_json::Value {
    serde_json::json!({
        "error": "rejected",
        "message": "the request was reviewed and not approved",
        "reason": decision.reason,
        "decided_by": decision.decided_by,
    })
}

/// What both backends write for a hold and a decision, so that they write the same.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
impl NewApproval {
    /// Whether a hold may use `existing`, the request its call has: one it just wrote
    /// (`inserted`), or a pending one of the same ticket (a hold written again after a crash).
    pub(crate) fn may_use(&self, ticket: &Ticket, existing: &Approval, inserted: bool) -> Result<(), StoreError> {
        if inserted || (existing.ticket_id == ticket.id && existing.status == ApprovalStatus::Pending) {
            return Ok(());
        }
        Err(StoreError::Conflict {
            id: ticket.id,
            message: format!("the approval of call {} is {} already", self.call_id, existing.status),
        })
    }

    /// `change` with the `approval_requested` event of `approval`.
    pub(crate) fn requested(self, approval: &Approval, change: Transition) -> Transition {
        let event = NewEvent::of(&ApprovalRequested {
            approval_id: approval.id,
            call_id: self.call_id,
            action_type: self.action_type,
            interrupted_at: self.interrupted_at.clone(),
        })
        .in_step(self.interrupted_at)
        .for_request(change.request_id.clone());
        change.with_event(event)
    }
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
impl Decision {
    /// The request's status after it.
    pub(crate) fn status(&self) -> ApprovalStatus {
        if self.approved {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Rejected
        }
    }

    /// The held call's status after it.
    pub(crate) fn call_status(&self) -> CallStatus {
        if self.approved {
            CallStatus::Approved
        } else {
            CallStatus::Rejected
        }
    }

    /// The held call's result after it: a rejection's ([`rejection_result`]); none when approved.
    pub(crate) fn call_result(&self) -> Option<serde_json::Value> {
        (!self.approved).then(|| rejection_result(self))
    }

    /// The ticket's move back to the queue: `pending`, the `approval_decided` event and an
    /// outbox row, all for the decision's request.
    pub(crate) fn resumption(&self, approval_id: Uuid, call_id: Uuid) -> Transition {
        let event = NewEvent::of(&ApprovalDecided {
            approval_id,
            call_id,
            approved: self.approved,
            decided_by: self.decided_by.clone(),
            reason: self.reason.clone(),
        })
        .for_request(self.request_id.clone());
        Transition {
            request_id: self.request_id.clone(),
            ..Transition::to(TicketStatus::Pending)
                .with_event(event)
                .enqueue_after(std::time::Duration::ZERO)
        }
    }
}

/// The conflict of a decision whose call no longer waits for it.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn call_not_held(ticket_id: Uuid, call_id: Uuid) -> StoreError {
    StoreError::Conflict {
        id: ticket_id,
        message: format!("call {call_id} no longer awaits approval"),
    }
}

/// The conflict of a decision on a request decided already.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn already_decided(approval: &Approval) -> StoreError {
    StoreError::Conflict {
        id: approval.ticket_id,
        message: format!(
            "approval {} was already {}{}",
            approval.id,
            approval.status,
            approval
                .decided_by
                .as_deref()
                .map(|who| format!(" by {who}"))
                .unwrap_or_default()
        ),
    }
}

/// The conflict of a decision whose ticket no longer waits for it.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn not_waiting(ticket: &Ticket) -> StoreError {
    StoreError::Conflict {
        id: ticket.id,
        message: format!(
            "ticket {} is {} and no longer waits for this decision (retried or superseded since)",
            ticket.id, ticket.status
        ),
    }
}
