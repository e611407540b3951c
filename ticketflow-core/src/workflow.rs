//! The six steps wired into a graph.

use std::sync::Arc;

use ticketflow_graph::{END, Graph, GraphError, START};

use crate::steps::{Classify, DraftReply, Extract, Finalize, Research, ReviewDraft, names};
use crate::{Engine, HistorySource, KbError, KnowledgeBase, OfflineEngine, TicketInput, TicketResult, TicketState};

/// The version recorded in checkpoints; bump it when the graph changes shape or meaning, so a
/// worker never resumes a checkpoint written by another version blindly.
pub const WORKFLOW_VERSION: &str = "support-v1";

/// The support workflow: classify -> extract -> research -> draft -> review -(revise)-> draft
/// ... -(approve)-> finalize.
#[derive(Debug, Clone)]
pub struct Workflow {
    graph: Arc<Graph<TicketState>>,
}

impl Workflow {
    /// Builds the workflow on `engine`, searching `kb`, with the customer's history from
    /// `history` when given.
    pub fn new(engine: Arc<dyn Engine>, kb: Arc<KnowledgeBase>, history: Option<Arc<dyn HistorySource>>) -> Self {
        let graph = Graph::builder()
            .node(names::CLASSIFY, Classify(engine.clone()))
            .node(names::EXTRACT, Extract(engine.clone()))
            .node(names::RESEARCH, Research { kb, history })
            .node(names::DRAFT, DraftReply(engine.clone()))
            .node(names::REVIEW, ReviewDraft(engine))
            .node(names::FINALIZE, Finalize)
            .edge(START, names::CLASSIFY)
            .edge(names::CLASSIFY, names::EXTRACT)
            .edge(names::EXTRACT, names::RESEARCH)
            .edge(names::RESEARCH, names::DRAFT)
            .edge(names::DRAFT, names::REVIEW)
            .route(
                names::REVIEW,
                [("revise", names::DRAFT), ("approve", names::FINALIZE)],
                |s: &TicketState| if s.needs_revision() { "revise" } else { "approve" },
            )
            .edge(names::FINALIZE, END)
            .version(WORKFLOW_VERSION)
            .compile();
        match graph {
            Ok(graph) => Self { graph: Arc::new(graph) },
            // The topology above is fixed; the unit tests compile it.
            Err(err) => unreachable!("the support workflow graph is valid: {err}"),
        }
    }

    /// The offline engine over the bundled knowledge base, no history.
    pub fn offline() -> Result<Self, KbError> {
        Ok(Self::new(
            Arc::new(OfflineEngine),
            Arc::new(KnowledgeBase::bundled()?),
            None,
        ))
    }

    /// The graph, to run with a checkpointer or to draw.
    pub fn graph(&self) -> &Graph<TicketState> {
        &self.graph
    }

    /// Runs a ticket through all steps in memory (no checkpoints) and returns its result.
    pub async fn run(&self, ticket: TicketInput) -> Result<TicketResult, GraphError> {
        let thread = ticket.id.clone();
        let state = self.graph.invoke(&thread, TicketState::new(ticket)).await?.into_state();
        Ok(TicketResult::from_state(&state))
    }
}
