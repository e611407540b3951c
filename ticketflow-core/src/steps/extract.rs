use std::sync::Arc;

use async_trait::async_trait;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use super::{engine_error, names, record_engine, step_span};
use crate::{Engine, TicketState};
use tracing::Instrument;

/// Step 2: order id, product, issue type, urgency.
pub struct Extract(pub Arc<dyn Engine>);

#[async_trait]
impl Node<TicketState> for Extract {
    async fn run(&self, mut state: TicketState, _ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
        let span = step_span(names::EXTRACT);
        let produced = self
            .0
            .extract(&state)
            .instrument(span.clone())
            .await
            .map_err(engine_error)?;
        record_engine(&span, &produced.engine);
        state.entities = Some(produced.value);
        state.record_engine(names::EXTRACT, produced.engine);
        Ok(NodeOutput::Continue(state))
    }
}
