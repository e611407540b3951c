use std::sync::Arc;

use async_trait::async_trait;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use super::{engine_error, names};
use crate::{Engine, TicketState};

/// Step 2: order id, product, issue type, urgency.
pub struct Extract(pub Arc<dyn Engine>);

#[async_trait]
impl Node<TicketState> for Extract {
    async fn run(&self, mut state: TicketState, _ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
        let produced = self.0.extract(&state).await.map_err(engine_error)?;
        state.entities = Some(produced.value);
        state.record_engine(names::EXTRACT, produced.engine);
        Ok(NodeOutput::Continue(state))
    }
}
