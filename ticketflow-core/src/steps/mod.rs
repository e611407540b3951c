//! The six steps as graph nodes, one per file; the three a ticket visits only when it proposes
//! a call or its reply is held: the gate (pauses for a person's decision), act (runs the calls
//! that may run) and the reply gate; and the agent workflow's own step, the agent.

mod act;
mod agent;
mod classify;
mod draft;
mod extract;
mod finalize;
mod gate;
mod reply_gate;
mod research;
mod review;

pub use act::Act;
pub use agent::Agent;
pub use classify::Classify;
pub use draft::DraftReply;
pub use extract::Extract;
pub use finalize::{Finalize, ReplyApproval};
pub use gate::{Gate, HeldCall};
pub use reply_gate::ReplyGate;
pub use research::Research;
pub use review::{MAX_REVISIONS, ReviewDraft};

/// Step names, as they appear in checkpoints, events and metrics.
pub mod names {
    /// Picks the category.
    pub const CLASSIFY: &str = "classify";
    /// Extracts the entities.
    pub const EXTRACT: &str = "extract";
    /// Searches the knowledge base and the customer's history.
    pub const RESEARCH: &str = "research";
    /// Writes a reply.
    pub const DRAFT: &str = "draft";
    /// Checks the reply; may send it back.
    pub const REVIEW: &str = "review";
    /// Produces the final response.
    pub const FINALIZE: &str = "finalize";
    /// All six, in order.
    pub const ALL: [&str; 6] = [CLASSIFY, EXTRACT, RESEARCH, DRAFT, REVIEW, FINALIZE];
    /// Pauses the run until a person decides on a held call.
    pub const GATE: &str = "gate";
    /// Runs the calls that may run (requested, or approved).
    pub const ACT: &str = "act";
    /// Pauses the run until a person approves (or edits, or rejects) the reply.
    pub const REPLY_GATE: &str = "reply_gate";
    /// The agent workflow's thinking step: the next tool call, or the reply.
    pub const AGENT: &str = "agent";
}

use ticketflow_graph::{NodeContext, NodeError};
use uuid::Uuid;

use crate::store::{Fence, StoreError};
use crate::tools::{TicketScope, ToolError};
use crate::{EngineError, TicketState};

fn engine_error(error: EngineError) -> NodeError {
    NodeError::new(error)
}

/// A tool failure as the processor tells failures apart: the database (an outage is never
/// charged to the ticket), a lost lease (the run stops), an outside service that is down (the
/// engine's transient failure: retried later within the budget), anything else (a bug: the
/// ticket fails visibly).
fn tool_failure(error: ToolError) -> NodeError {
    match error {
        ToolError::Store(store) => NodeError::new(store),
        ToolError::Fenced(message) => NodeError::new(StoreError::Fenced(message)),
        ToolError::Unavailable(message) => NodeError::new(EngineError::Transient(message)),
        other => NodeError::new(other),
    }
}

/// The scope of the ticket's tool calls: the ticket (when its id is a stored ticket's), its
/// customer, and the run's lease from the run's metadata (`lease_epoch`), which fences every
/// effect the run makes.
fn scope(state: &TicketState, ctx: &NodeContext) -> Option<TicketScope> {
    let ticket_id = Uuid::parse_str(&state.ticket.id).ok()?;
    let fence = ctx
        .metadata()
        .get("lease_epoch")
        .and_then(serde_json::Value::as_i64)
        .map(|epoch| Fence { ticket_id, epoch });
    Some(TicketScope {
        ticket_id,
        customer: state.ticket.customer_id.clone(),
        fence,
        turn: state.turn(),
    })
}

/// A span for a step's engine call; [`record_engine`] fills in which engine answered.
fn step_span(step: &'static str) -> tracing::Span {
    tracing::info_span!(
        "step",
        step,
        engine = tracing::field::Empty,
        model = tracing::field::Empty,
        fallback = tracing::field::Empty,
        prompt_tokens = tracing::field::Empty,
        completion_tokens = tracing::field::Empty,
    )
}

/// Records the engine, model and tokens of a step on its span (OpenTelemetry attributes).
fn record_engine(span: &tracing::Span, used: &crate::EngineUse) {
    span.record("engine", used.engine.as_str());
    if let Some(model) = &used.model {
        span.record("model", model.as_str());
    }
    span.record("fallback", used.fallback);
    if let Some(tokens) = used.tokens {
        span.record("prompt_tokens", tokens.prompt);
        span.record("completion_tokens", tokens.completion);
    }
}
