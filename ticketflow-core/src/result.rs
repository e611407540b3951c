//! What a completed ticket's `result` holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ActionTaken, Category, Draft, EngineUse, Entities, Handoff, Research, Review, TicketState, TokenUsage};

/// The outcome of the workflow for one ticket, as stored in the ticket's `result` column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketResult {
    /// The category.
    pub classification: Option<Category>,
    /// The classifier's confidence, 0..=1.
    pub confidence: Option<f32>,
    /// Order id, product, issue type, urgency.
    pub entities: Option<Entities>,
    /// Articles and history found.
    pub research: Option<Research>,
    /// The last draft.
    pub draft: Option<Draft>,
    /// The last review.
    pub review: Option<Review>,
    /// How many times review sent a draft back.
    pub revisions: u32,
    /// The reply to send.
    pub final_response: Option<String>,
    /// Which engine (and model) produced each step.
    pub engine: BTreeMap<String, EngineUse>,
    /// Tokens used over all steps.
    pub tokens: TokenUsage,
    /// Every tool call of the run, in order, read-only lookups included.
    #[serde(default)]
    pub actions_taken: Vec<ActionTaken>,
    /// Set when the ticket went to a person instead of being answered (it ends `escalated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Handoff>,
    /// Which workflow and graph version ran the ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<crate::WorkflowRun>,
}

impl TicketResult {
    /// Builds the result from a (finished) workflow state.
    pub fn from_state(state: &TicketState) -> Self {
        Self {
            classification: state.classification.as_ref().map(|c| c.category),
            confidence: state.classification.as_ref().map(|c| c.confidence),
            entities: state.entities.clone(),
            research: state.research.clone(),
            draft: state.draft.clone(),
            review: state.review.clone(),
            revisions: state.draft.as_ref().map_or(0, |d| d.revision),
            final_response: state.final_response.clone(),
            engine: state.engine.clone(),
            tokens: state.total_tokens(),
            actions_taken: state.actions.clone(),
            handoff: state.handoff.clone(),
            workflow: None,
        }
    }
}
