use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use super::{names, scope, tool_failure};
use crate::facts::Facts;
use crate::tools::{Proposal, TicketScope, Tools};
use crate::{HistorySource, KnowledgeBase, OfflineEngine, TicketState, plan};

/// How many articles and past tickets research keeps.
const ARTICLES: usize = 3;
const HISTORY: usize = 5;

/// Step 3: the best knowledge-base articles, the customer's recent tickets when a history
/// source is configured, and, with tools, the facts of the ticket's order and customer from
/// the read-only tools (for a customer with an account), and the action the ticket asks for,
/// proposed (checked and journaled: a held call's id is in this step's checkpoint before any
/// gate pauses on it).
pub struct Research {
    /// The articles.
    pub kb: Arc<KnowledgeBase>,
    /// The customer's earlier tickets, if available.
    pub history: Option<Arc<dyn HistorySource>>,
    /// The tools, if the workflow has them.
    pub tools: Option<Tools>,
}

impl Research {
    /// The ticket's order (when it names one) and the customer's history, from the lookups.
    async fn look_up(&self, tools: &Tools, scope: &TicketScope, state: &mut TicketState) -> Result<(), NodeError> {
        if let Some(order_id) = state.entities.as_ref().and_then(|e| e.order_id.clone()) {
            let lookup = Proposal::in_scope(
                scope,
                "research/check_order_status",
                "check_order_status",
                json!({ "order_id": order_id }),
            );
            let call = tools.call(scope, lookup).await.map_err(tool_failure)?;
            state.record_call(&call);
        }
        let lookup = Proposal::in_scope(
            scope,
            "research/get_customer_history",
            "get_customer_history",
            json!({ "customer_id": scope.customer }),
        );
        let call = tools.call(scope, lookup).await.map_err(tool_failure)?;
        state.record_call(&call);
        Ok(())
    }

    /// Looks the ticket's order and customer up, and proposes the action it asks for. Each call
    /// has an id made from the ticket and its place here, so a re-run of this step (after a
    /// crash) finds its calls journaled and proposes nothing twice.
    async fn consult(&self, tools: &Tools, state: &mut TicketState, ctx: &NodeContext) -> Result<(), NodeError> {
        let Some(scope) = scope(state, ctx) else {
            return Ok(());
        };
        // Every lookup is scoped to the customer's account: without one there is nothing to
        // find, so none is made (and nothing journaled).
        let has_account = tools
            .env()
            .commerce
            .customer(&scope.customer)
            .await
            .map_err(|e| tool_failure(e.into()))?
            .is_some();
        if has_account {
            self.look_up(tools, &scope, state).await?;
        }
        if let Some(planned) = plan::plan(state, &Facts::of(state)) {
            let proposal = Proposal::in_scope(&scope, "research/action", planned.tool, planned.args);
            let call = tools.propose(&scope, proposal).await.map_err(tool_failure)?;
            state.record_call(&call);
        }
        Ok(())
    }
}

#[async_trait]
impl Node<TicketState> for Research {
    async fn run(&self, mut state: TicketState, ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
        let mut query = state.ticket.text();
        if let Some(entities) = &state.entities {
            for word in [&entities.product, &entities.issue_type].into_iter().flatten() {
                query.push(' ');
                query.push_str(&word.replace('_', " "));
            }
        }
        let category = state.classification.as_ref().map(|c| c.category);
        let articles = self.kb.search(&query, category, ARTICLES);
        let history = match &self.history {
            Some(source) => source
                .recent_tickets(&state.ticket.customer_id, &state.ticket.id, HISTORY)
                .await
                .map_err(|e| NodeError::Failed(Box::new(e)))?,
            None => Vec::new(),
        };
        state.research = Some(crate::Research { articles, history });
        if let Some(tools) = &self.tools {
            self.consult(tools, &mut state, ctx).await?;
        }
        state
            .engine
            .insert(names::RESEARCH.to_owned(), OfflineEngine::engine_use());
        Ok(NodeOutput::Continue(state))
    }
}
