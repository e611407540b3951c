//! The tool-call aggregate: the journal of every call a ticket's workflow proposes, and the
//! effects a call has on the store (refunds, escalations, bug reports, password resets), each
//! committed in the same transaction as its call moving to `executed`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Fence, StoreError};
use crate::commerce::{OrderStatus, Refund};
use crate::money::Money;

/// Where a tool call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Proposed and checked; may run.
    Requested,
    /// Proposed and checked; waits for a person's decision.
    AwaitingApproval,
    /// A person approved it; may run.
    Approved,
    /// A person rejected it; never runs.
    Rejected,
    /// It ran; its result is final.
    Executed,
    /// It was refused (when proposed, or by its effect); its result says why.
    Failed,
}

impl CallStatus {
    /// Every status.
    pub const ALL: [CallStatus; 6] = [
        CallStatus::Requested,
        CallStatus::AwaitingApproval,
        CallStatus::Approved,
        CallStatus::Rejected,
        CallStatus::Executed,
        CallStatus::Failed,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Requested => "requested",
            CallStatus::AwaitingApproval => "awaiting_approval",
            CallStatus::Approved => "approved",
            CallStatus::Rejected => "rejected",
            CallStatus::Executed => "executed",
            CallStatus::Failed => "failed",
        }
    }

    /// True when the call may run now.
    pub fn runnable(self) -> bool {
        matches!(self, CallStatus::Requested | CallStatus::Approved)
    }

    /// True when the call is over (its result will not change).
    pub fn settled(self) -> bool {
        matches!(self, CallStatus::Executed | CallStatus::Failed | CallStatus::Rejected)
    }
}

stored_as_text!(CallStatus, UnknownCallStatus, "tool call status");

/// A call to journal when it is proposed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewToolCall {
    /// The ticket whose workflow proposes it.
    pub ticket_id: Uuid,
    /// ticketflow's id for it (see [`ToolCall::id_for`]).
    pub call_id: Uuid,
    /// The tool's name.
    pub tool: String,
    /// The arguments, as proposed.
    pub args: serde_json::Value,
    /// `requested`, `awaiting_approval`, `failed` (its checks refused it), or `executed` (a
    /// lookup, journaled once with its result).
    pub status: CallStatus,
    /// For a call refused when proposed: why; for a lookup: what it found.
    pub result: Option<serde_json::Value>,
    /// The LLM's own id for the call, when an LLM proposed it (it repeats across
    /// conversations, so it is not the call's identity).
    pub llm_call_id: Option<String>,
}

/// A journaled call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// ticketflow's id for it.
    pub call_id: Uuid,
    /// The ticket.
    pub ticket_id: Uuid,
    /// The tool.
    pub tool: String,
    /// The arguments.
    pub args: serde_json::Value,
    /// Where it is.
    pub status: CallStatus,
    /// What it returned (or why it was refused), once settled.
    pub result: Option<serde_json::Value>,
    /// The LLM's id for it.
    pub llm_call_id: Option<String>,
    /// When it was proposed.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it ran.
    pub executed_at: Option<DateTime<Utc>>,
}

impl ToolCall {
    /// A call's id made from the ticket and the place the call was proposed at (`key`, such
    /// as the proposing step and the call's position there): a step that runs again after a
    /// crash proposes the same calls under the same ids, so nothing is journaled twice.
    pub fn id_for(ticket_id: Uuid, key: &str) -> Uuid {
        Uuid::new_v5(&ticket_id, key.as_bytes())
    }
}

/// What a call does to the store, in the transaction that journals it as executed.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Nothing (a read, or an effect outside the store, such as a GitHub issue).
    None,
    /// A refund: recorded; and, when the orders are the store's own, applied to the order if
    /// the amount is still refundable then.
    Refund {
        /// The order.
        order_id: String,
        /// How much.
        amount: Money,
        /// Why.
        reason: String,
        /// The refund the order service made, when it is not the store's own.
        remote: Option<crate::commerce::RemoteRefund>,
    },
    /// The ticket handed to a person.
    Escalation {
        /// Why.
        reason: String,
        /// What the person should do.
        suggested_action: String,
    },
    /// A bug report, local or an issue elsewhere.
    BugReport {
        /// Its title.
        title: String,
        /// What happens.
        description: String,
        /// `low`, `medium`, `high` or `critical`.
        priority: String,
        /// The address, when one was opened elsewhere.
        external_url: Option<String>,
    },
    /// A password reset: the token's hash, its expiry, and the e-mail that carries it, queued.
    PasswordReset {
        /// The customer.
        customer_id: String,
        /// Where the e-mail goes.
        email: String,
        /// SHA-256 of the token, hex.
        token_hash: String,
        /// When the token stops working.
        expires_at: DateTime<Utc>,
        /// The e-mail, `{to, subject, text}`, kept until it is delivered.
        message: serde_json::Value,
    },
}

/// What an [`Effect`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Nothing was asked of the store.
    Nothing,
    /// The refund was made.
    Refunded {
        /// It.
        refund: Refund,
        /// The order's status after it (`None` when the order service keeps orders).
        order_status: Option<OrderStatus>,
        /// What is still refundable on the order.
        refundable: Option<Money>,
    },
    /// The refund was refused: the amount is more than is refundable now (another refund came
    /// first), or the order is gone.
    RefundRefused {
        /// What is refundable now (`None`: the order does not exist).
        refundable: Option<Money>,
    },
    /// The escalation was recorded.
    Escalated {
        /// Its id.
        id: String,
    },
    /// The bug report was recorded.
    BugReported {
        /// Its id.
        id: String,
    },
    /// The reset was recorded and its e-mail queued.
    ResetRequested {
        /// Its id.
        id: String,
        /// When the token stops working.
        expires_at: DateTime<Utc>,
    },
}

/// How a call settles: its final status (`executed` or `failed`) and its result.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    /// `Executed` or `Failed`.
    pub status: CallStatus,
    /// The result to journal.
    pub result: serde_json::Value,
}

/// Makes a call's settlement from what its effect did; called inside the transaction.
pub type Render<'a> = &'a (dyn Fn(&Applied) -> Settlement + Send + Sync);

/// An escalation to a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    /// `ESC-…`.
    pub id: String,
    /// The ticket.
    pub ticket_id: Uuid,
    /// The call that made it.
    pub call_id: Uuid,
    /// Why.
    pub reason: String,
    /// What the person should do.
    pub suggested_action: String,
    /// `open`.
    pub status: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A bug report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BugReport {
    /// `BUG-…`.
    pub id: String,
    /// The ticket.
    pub ticket_id: Uuid,
    /// The call that made it.
    pub call_id: Uuid,
    /// Its title.
    pub title: String,
    /// What happens.
    pub description: String,
    /// `low`, `medium`, `high` or `critical`.
    pub priority: String,
    /// The issue elsewhere, if one was opened.
    pub external_url: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A password reset request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordReset {
    /// `PR-…`.
    pub id: String,
    /// The ticket.
    pub ticket_id: Uuid,
    /// The call that made it.
    pub call_id: Uuid,
    /// The customer.
    pub customer_id: String,
    /// Where the e-mail goes.
    pub email: String,
    /// SHA-256 of the token, hex (the token itself is only in the e-mail).
    pub token_hash: String,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// `queued` until the e-mail is delivered.
    pub email_status: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// What a ticket's calls did to the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallEffects {
    /// Refunds.
    pub refunds: Vec<Refund>,
    /// Escalations.
    pub escalations: Vec<Escalation>,
    /// Bug reports.
    pub bug_reports: Vec<BugReport>,
    /// Password resets.
    pub password_resets: Vec<PasswordReset>,
}

/// An effect's id: `prefix` and ten characters made from the call id, so that the same call
/// always names the same record.
pub fn effect_id(prefix: &str, call_id: Uuid) -> String {
    let hex = Uuid::new_v5(&call_id, prefix.as_bytes())
        .simple()
        .to_string()
        .to_ascii_uppercase();
    format!("{prefix}-{}", &hex[..10])
}

/// The journal of tool calls and their effects.
#[async_trait]
pub trait ToolStore: Send + Sync {
    /// Journals a proposed call; a call already journaled under its id is returned as it is,
    /// with `false` (a re-run of the proposing step).
    async fn journal_call(&self, call: NewToolCall) -> Result<(ToolCall, bool), StoreError>;

    /// One call.
    async fn tool_call(&self, call_id: Uuid) -> Result<Option<ToolCall>, StoreError>;

    /// A ticket's calls, in the order they were proposed.
    async fn tool_calls(&self, ticket_id: Uuid) -> Result<Vec<ToolCall>, StoreError>;

    /// A person's decision on a call that awaits one: `approved` or `rejected` (with
    /// `result` saying why, for a rejection). `Conflict` when the call does not await one.
    async fn decide_call(
        &self,
        call_id: Uuid,
        approved: bool,
        result: Option<serde_json::Value>,
    ) -> Result<ToolCall, StoreError>;

    /// Settles a runnable call, in one transaction: with `fence`, only while the ticket is
    /// still at the fence's epoch (else `Fenced`); applies `effect`; journals what `render`
    /// makes of it. A call already settled is returned as it is, and nothing is applied again;
    /// one that is not runnable (awaiting approval, rejected) is a `Conflict`.
    async fn settle_call(
        &self,
        call_id: Uuid,
        fence: Option<Fence>,
        effect: Effect,
        render: Render<'_>,
    ) -> Result<ToolCall, StoreError>;

    /// What a ticket's calls did.
    async fn call_effects(&self, ticket_id: Uuid) -> Result<CallEffects, StoreError>;

    /// An order's refunds, oldest first.
    async fn refunds(&self, order_id: &str) -> Result<Vec<Refund>, StoreError>;
}
