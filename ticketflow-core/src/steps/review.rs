use std::sync::Arc;

use async_trait::async_trait;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use super::{engine_error, names, record_engine, step_span};
use crate::{Engine, Review, TicketState, Verdict, policy};
use tracing::Instrument;

/// How many times review may send a draft back before the best one is finalized anyway.
pub const MAX_REVISIONS: u32 = 2;

/// Step 5: the policy rules plus the engine's opinion. Sends the draft back with notes at most
/// [`MAX_REVISIONS`] times.
pub struct ReviewDraft(pub Arc<dyn Engine>);

#[async_trait]
impl Node<TicketState> for ReviewDraft {
    async fn run(&self, mut state: TicketState, _ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
        let Some(draft) = state.draft.clone() else {
            return Err(NodeError::new("review ran before any draft was written"));
        };
        let mut notes = policy::check(&state, &draft.text);
        let span = step_span(names::REVIEW);
        let opinion = self
            .0
            .review(&state, &draft)
            .instrument(span.clone())
            .await
            .map_err(engine_error)?;
        record_engine(&span, &opinion.engine);
        notes.extend(opinion.value.notes);
        state.record_engine(names::REVIEW, opinion.engine);
        state.reviewed_drafts.push((draft.clone(), notes.len()));
        let out_of_revisions = draft.revision >= MAX_REVISIONS;
        state.review = Some(Review {
            verdict: if notes.is_empty() || out_of_revisions {
                Verdict::Approved
            } else {
                Verdict::NeedsRevision
            },
            revision_limit_reached: !notes.is_empty() && out_of_revisions,
            notes,
            revision: draft.revision,
        });
        Ok(NodeOutput::Continue(state))
    }
}
