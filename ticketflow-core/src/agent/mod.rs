//! The agent workflow's thinking: a [`Planner`] picks the run's next move — one tool call, or
//! the reply — from everything the run knows so far (the ticket, the calls made and what they
//! returned). What a move may do is not the planner's to decide: every call it asks for goes
//! through the tools' protocol (scoped to the ticket's customer, checked, journaled, held for a
//! person when the rules say so), and its reply through the review's policy rules.
//!
//! ```
//! use ticketflow_core::agent::{Move, OfflinePlanner, Planner};
//! use ticketflow_core::{TicketInput, TicketState};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut state = TicketState::new(TicketInput {
//!     id: "t-1".into(),
//!     customer_id: "cust_john_doe".into(),
//!     subject: "Where is my order?".into(),
//!     body: "My order ord_12345 has not arrived yet.".into(),
//! });
//! OfflinePlanner::analyse(&mut state);
//! let next = OfflinePlanner::default().next(&state, &[]).await?;
//! assert!(matches!(next.value, Move::Call(call) if call.tool == "check_order_status"));
//! # Ok(()) }
//! ```

mod offline;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use offline::OfflinePlanner;

use crate::TicketState;
use crate::engine::{EngineError, Produced};
use crate::tools::ToolSpec;

/// A tool call a planner asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCall {
    /// The tool's name.
    pub tool: String,
    /// Its arguments.
    pub args: serde_json::Value,
    /// The LLM's own id for the call (`tool_call.id`), when an LLM asked for it.
    pub llm_call_id: Option<String>,
}

/// A planner's next move.
#[derive(Debug, Clone, PartialEq)]
pub enum Move {
    /// Call a tool, then think again with its result.
    Call(PlannedCall),
    /// Answer the customer with this reply; the run moves on to the review.
    Reply(String),
}

/// One tool call the agent made, in order: what carries the conversation from step to step
/// (the call itself, its arguments and its result are the run's `actions`, under `call_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTurn {
    /// ticketflow's id for the call.
    pub call_id: Uuid,
    /// The id the LLM gave the call, which its conversation refers to; `None` for the offline
    /// planner's calls.
    pub llm_call_id: Option<String>,
}

/// Picks the agent's next move.
#[async_trait]
pub trait Planner: Send + Sync {
    /// The next move for `state`, told of `tools`. An error is the engine's: transient ones are
    /// retried later within the ticket's budget.
    async fn next(&self, state: &TicketState, tools: &[ToolSpec]) -> Result<Produced<Move>, EngineError>;
}
