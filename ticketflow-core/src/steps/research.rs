use std::sync::Arc;

use async_trait::async_trait;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use super::names;
use crate::{HistorySource, KnowledgeBase, OfflineEngine, TicketState};

/// How many articles and past tickets research keeps.
const ARTICLES: usize = 3;
const HISTORY: usize = 5;

/// Step 3: the best knowledge-base articles, and the customer's recent tickets when a history
/// source is configured.
pub struct Research {
    /// The articles.
    pub kb: Arc<KnowledgeBase>,
    /// The customer's earlier tickets, if available.
    pub history: Option<Arc<dyn HistorySource>>,
}

#[async_trait]
impl Node<TicketState> for Research {
    async fn run(&self, mut state: TicketState, _ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
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
        state
            .engine
            .insert(names::RESEARCH.to_owned(), OfflineEngine::engine_use());
        Ok(NodeOutput::Continue(state))
    }
}
