use async_trait::async_trait;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use super::names;
use crate::{OfflineEngine, TicketState, policy};

/// Step 6: the final response: the approved draft, or, when the revision budget ran out, the
/// draft with the fewest problems, with any sentence promising a reserved action removed.
pub struct Finalize;

#[async_trait]
impl Node<TicketState> for Finalize {
    async fn run(&self, mut state: TicketState, _ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
        let best = state
            .reviewed_drafts
            .iter()
            .enumerate()
            .min_by_key(|(i, (_, problems))| (*problems, *i))
            .map(|(_, (draft, _))| draft.text.clone())
            .or_else(|| state.draft.as_ref().map(|d| d.text.clone()))
            .ok_or_else(|| NodeError::new("finalize ran before any draft was written"))?;
        // Whatever happened upstream, a reply never promises what only a specialist may grant.
        let safe: Vec<&str> = best
            .split_inclusive(['.', '!', '?', '\n'])
            .filter(|sentence| !policy::promises_reserved_action(sentence))
            .collect();
        state.final_response = Some(safe.concat().trim().to_owned());
        state
            .engine
            .insert(names::FINALIZE.to_owned(), OfflineEngine::engine_use());
        Ok(NodeOutput::Continue(state))
    }
}
