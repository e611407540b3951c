use std::sync::Arc;

use async_trait::async_trait;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use super::{engine_error, names, record_engine, step_span};
use crate::{Engine, TicketState};
use tracing::Instrument;

/// Step 1: billing, technical, account or general.
pub struct Classify(pub Arc<dyn Engine>);

#[async_trait]
impl Node<TicketState> for Classify {
    async fn run(&self, mut state: TicketState, _ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
        let span = step_span(names::CLASSIFY);
        let produced = self
            .0
            .classify(&state)
            .instrument(span.clone())
            .await
            .map_err(engine_error)?;
        record_engine(&span, &produced.engine);
        state.classification = Some(produced.value);
        state.record_engine(names::CLASSIFY, produced.engine);
        Ok(NodeOutput::Continue(state))
    }
}
