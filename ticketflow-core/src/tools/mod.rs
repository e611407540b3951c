//! The tools a ticket's workflow may call — the seed's eight, on real data — and the protocol
//! that makes each call safe: **scoped** to the ticket's customer (another customer's order is
//! "not found"), **checked when proposed** (a call that fails its checks is journaled as
//! failed, never held or run), **journaled before it runs**, and **executed at most once**
//! (an executed call asked again returns its journaled result; a store-backed effect commits
//! in the same transaction as the call's move to `executed`, only while the run's lease holds).
//!
//! ```no_run
//! # async fn demo(tools: ticketflow_core::tools::Tools, ticket_id: uuid::Uuid) -> Result<(), Box<dyn std::error::Error>> {
//! use ticketflow_core::tools::{Proposal, TicketScope};
//!
//! let scope = TicketScope { ticket_id, customer: "cust_john_doe".into(), fence: None, turn: 1 };
//! let call = tools
//!     .call(&scope, Proposal::new(ticket_id, "step-3/0", "check_order_status", serde_json::json!({ "order_id": "ORD-12345" })))
//!     .await?;
//! println!("{} -> {:?}", call.status, call.result);
//! # Ok(()) }
//! ```

mod check_order_status;
mod create_bug_report;
mod escalate_to_human;
mod get_customer_history;
#[cfg(feature = "http")]
mod github;
mod lookup_product;
mod process_refund;
mod query_help_articles;
mod registry;
mod reset_password;
mod tool;

use std::collections::BTreeSet;
use std::sync::Arc;

use uuid::Uuid;

pub use check_order_status::{CheckOrderStatus, OrderStatusArgs, OrderView};
pub use create_bug_report::{BugReportArgs, BugReportView, CreateBugReport, Priority};
pub use escalate_to_human::{EscalateToHuman, EscalationArgs, EscalationView};
pub use get_customer_history::{CustomerHistory, GetCustomerHistory, HistoryArgs};
#[cfg(feature = "http")]
pub use github::GitHub;
pub use lookup_product::{LookupProduct, ProductArgs, Products};
pub use process_refund::{ProcessRefund, RefundArgs, RefundView};
pub use query_help_articles::{Articles, HelpArticlesArgs, QueryHelpArticles};
pub use registry::{Proposal, ToolSpec, Tools};
pub use reset_password::{ResetArgs, ResetPassword, ResetView};
pub use tool::{RenderOutput, Run, Tool};

use crate::KnowledgeBase;
use crate::commerce::{Commerce, CommerceError, Customer};
use crate::money::Money;
use crate::store::{Fence, Store, StoreError};

/// Why a tool call could not be proposed or run.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments break the tool's schema or its limits.
    #[error("invalid arguments: {0}")]
    Invalid(String),
    /// Nothing of that name in the ticket's customer's data (whether it exists elsewhere is
    /// not said).
    #[error("not found: {0}")]
    NotFound(String),
    /// The tool will not do it (more than is refundable, another account's address, ...).
    #[error("refused: {0}")]
    Refused(String),
    /// Worth trying again later: the order service (or GitHub) is unavailable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// No tool of that name.
    #[error("no tool named `{0}`")]
    UnknownTool(String),
    /// The call waits for a person's decision (or was rejected); it does not run.
    #[error("tool call {0} is {1}: it does not run")]
    NotRunnable(Uuid, crate::store::CallStatus),
    /// The run lost its lease; its writes are refused and it should stop.
    #[error("fenced off: {0}")]
    Fenced(String),
    /// The store failed: the database is unavailable (worth trying again later), or it
    /// refused something it should not have (a bug or a corrupt row).
    #[error("store: {0}")]
    Store(StoreError),
}

impl ToolError {
    /// True when the error is the call's answer (journaled as its result, so that the caller,
    /// or an LLM, can show or reason about it), not a reason to try again later.
    pub fn is_result(&self) -> bool {
        matches!(
            self,
            ToolError::Invalid(_) | ToolError::NotFound(_) | ToolError::Refused(_) | ToolError::UnknownTool(_)
        )
    }

    /// True when trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ToolError::Unavailable(_) => true,
            ToolError::Store(error) => error.is_outage(),
            _ => false,
        }
    }

    /// The result journaled for an error that is the call's answer.
    pub fn to_result(&self) -> serde_json::Value {
        let (kind, message) = match self {
            ToolError::Invalid(m) => ("invalid_arguments", m.clone()),
            ToolError::NotFound(m) => ("not_found", m.clone()),
            ToolError::Refused(m) => ("refused", m.clone()),
            ToolError::UnknownTool(name) => ("unknown_tool", format!("no tool named `{name}`")),
            other => ("error", other.to_string()),
        };
        serde_json::json!({ "error": kind, "message": message })
    }
}

impl From<CommerceError> for ToolError {
    fn from(error: CommerceError) -> Self {
        match error {
            CommerceError::Unavailable(m) => ToolError::Unavailable(m),
            CommerceError::Refused(m) => ToolError::Refused(m),
        }
    }
}

impl From<StoreError> for ToolError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Fenced(m) => ToolError::Fenced(m),
            other => ToolError::Store(other),
        }
    }
}

/// The ticket a call is for: what scopes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketScope {
    /// The ticket.
    pub ticket_id: Uuid,
    /// The ticket's customer as the ticket names it: an id or an e-mail address.
    pub customer: String,
    /// The run's lease, when a processing run makes the call: an effect commits only while it
    /// holds.
    pub fence: Option<Fence>,
    /// The conversation's turn (1 for the first): each turn's calls have ids of their own.
    pub turn: i32,
}

impl TicketScope {
    /// The id of the call proposed at `key` in this turn: the same each time that place runs
    /// again, another in the next turn.
    pub fn call_id(&self, key: &str) -> Uuid {
        if self.turn <= 1 {
            crate::store::ToolCall::id_for(self.ticket_id, key)
        } else {
            crate::store::ToolCall::id_for(self.ticket_id, &format!("turn-{}/{key}", self.turn))
        }
    }
}

/// When a call needs a person's approval before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRules {
    /// Tools whose calls always wait for a person (`APPROVAL_REQUIRED`), besides
    /// `process_refund`.
    pub required: BTreeSet<String>,
    /// Refunds below this amount run without approval (`AUTO_APPROVE_REFUND_BELOW`; 0: every
    /// refund waits).
    pub auto_approve_refund_below: Money,
}

impl Default for ApprovalRules {
    fn default() -> Self {
        Self {
            required: BTreeSet::new(),
            auto_approve_refund_below: Money::ZERO,
        }
    }
}

/// What the tools work with, shared by every ticket.
#[derive(Clone)]
pub struct ToolEnv {
    /// The journal, and the store-backed effects.
    pub store: Arc<dyn Store>,
    /// Customers, orders, products and remote refunds.
    pub commerce: Arc<dyn Commerce>,
    /// The help articles.
    pub kb: Arc<KnowledgeBase>,
    /// Where bug reports go besides the store (`GITHUB_TOKEN`, `GITHUB_REPO`).
    #[cfg(feature = "http")]
    pub github: Option<GitHub>,
    /// Which calls wait for a person.
    pub rules: ApprovalRules,
    /// The company's password reset page; reset links are `<it>?token=…`.
    pub reset_url: String,
}

/// Every tool's name, for settings that name tools.
pub const TOOL_NAMES: [&str; 8] = [
    "query_help_articles",
    "check_order_status",
    "get_customer_history",
    "lookup_product",
    "reset_password",
    "process_refund",
    "create_bug_report",
    "escalate_to_human",
];

/// The tools that only read: a call of one has no effect, so it runs as soon as it is
/// proposed and is journaled once, with its result.
pub const LOOKUPS: [&str; 4] = [
    "query_help_articles",
    "check_order_status",
    "get_customer_history",
    "lookup_product",
];

/// True for a tool that only reads ([`LOOKUPS`]).
pub fn is_lookup(tool: &str) -> bool {
    LOOKUPS.contains(&tool)
}

/// A ticket's scope with its customer resolved: what a tool's checks and execution see.
#[derive(Debug, Clone)]
pub struct Scoped {
    /// The ticket.
    pub ticket_id: Uuid,
    /// The ticket's customer's record, when there is one.
    pub customer: Option<Customer>,
    /// How the ticket names its customer.
    pub reference: String,
}

impl Scoped {
    /// The ticket's customer, or the error every scoped tool gives when it has none.
    pub fn customer(&self) -> Result<&Customer, ToolError> {
        self.customer
            .as_ref()
            .ok_or_else(|| ToolError::NotFound("no customer account matches this ticket's customer".into()))
    }
}

/// A text argument's length, checked: at most `max` characters, and not blank when required.
pub(crate) fn bounded(field: &str, text: &str, max: usize, required: bool) -> Result<(), ToolError> {
    if required && text.trim().is_empty() {
        return Err(ToolError::Invalid(format!("`{field}` must not be empty")));
    }
    let length = text.chars().count();
    if length > max {
        return Err(ToolError::Invalid(format!(
            "`{field}` is {length} characters long, at most {max} allowed"
        )));
    }
    if text.contains('\0') {
        return Err(ToolError::Invalid(format!("`{field}` must not contain NUL characters")));
    }
    Ok(())
}
