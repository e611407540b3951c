use std::sync::Arc;

use async_trait::async_trait;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use super::{engine_error, names, record_engine, step_span};
use crate::{Draft, Engine, TicketState};
use tracing::Instrument;

/// Step 4: a reply that uses the research and the entities (and, on a revision, the review's
/// notes).
pub struct DraftReply(pub Arc<dyn Engine>);

#[async_trait]
impl Node<TicketState> for DraftReply {
    async fn run(&self, mut state: TicketState, _ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
        let span = step_span(names::DRAFT);
        let produced = self
            .0
            .draft(&state)
            .instrument(span.clone())
            .await
            .map_err(engine_error)?;
        record_engine(&span, &produced.engine);
        let revision = state.draft.as_ref().map_or(0, |d| d.revision + 1);
        state.draft = Some(Draft {
            text: produced.value,
            revision,
        });
        state.record_engine(names::DRAFT, produced.engine);
        Ok(NodeOutput::Continue(state))
    }
}
