use std::sync::Arc;

use async_trait::async_trait;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use super::{engine_error, names};
use crate::{Engine, TicketState};

/// Step 1: billing, technical, account or general.
pub struct Classify(pub Arc<dyn Engine>);

#[async_trait]
impl Node<TicketState> for Classify {
    async fn run(&self, mut state: TicketState, _ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
        let produced = self.0.classify(&state).await.map_err(engine_error)?;
        state.classification = Some(produced.value);
        state.record_engine(names::CLASSIFY, produced.engine);
        Ok(NodeOutput::Continue(state))
    }
}
