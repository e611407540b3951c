//! The support steps wired into a graph.

use std::sync::Arc;

use ticketflow_graph::{END, Graph, GraphError, START};

use crate::steps::{
    Act, Classify, DraftReply, Extract, Finalize, Gate, ReplyApproval, ReplyGate, Research, ReviewDraft, names,
};
use crate::tools::Tools;
use crate::{Engine, HistorySource, KbError, KnowledgeBase, OfflineEngine, TicketInput, TicketResult, TicketState};

/// The version recorded in checkpoints; bump it when the graph changes shape or meaning, so a
/// worker never resumes a checkpoint written by another version blindly.
pub const WORKFLOW_VERSION: &str = "support-v2";

/// The versions whose checkpoints this one continues: `support-v1` had the six steps only,
/// whose names and meaning are unchanged, and its state reads as this one's.
const RESUMES_FROM: [&str; 1] = ["support-v1"];

/// The support workflow: classify -> extract -> research -> draft -> review -(revise)-> draft
/// ... -(approve)-> finalize. With tools, research also looks the ticket's order and customer
/// up and proposes the action the ticket asks for; a proposed action goes through the gate
/// (which pauses while it waits for a person) and act (which runs it) before the draft, and a
/// held reply through the reply gate after finalize.
#[derive(Debug, Clone)]
pub struct Workflow {
    graph: Arc<Graph<TicketState>>,
}

/// Builds a [`Workflow`]: [`Workflow::builder`].
pub struct WorkflowBuilder {
    engine: Arc<dyn Engine>,
    kb: Arc<KnowledgeBase>,
    history: Option<Arc<dyn HistorySource>>,
    tools: Option<Tools>,
    reply_approval: ReplyApproval,
}

impl WorkflowBuilder {
    /// The customer's earlier tickets, for research.
    pub fn history(mut self, history: Option<Arc<dyn HistorySource>>) -> Self {
        self.history = history;
        self
    }

    /// The tools: research consults them and the workflow proposes, holds and runs actions.
    pub fn tools(mut self, tools: Tools) -> Self {
        self.tools = Some(tools);
        self
    }

    /// Which replies wait for a person (needs [`tools`](Self::tools): a held reply is
    /// journaled in the tools' store).
    pub fn reply_approval(mut self, reply_approval: ReplyApproval) -> Self {
        self.reply_approval = reply_approval;
        self
    }

    /// The workflow.
    pub fn build(self) -> Workflow {
        let store = self.tools.as_ref().map(|t| t.env().store.clone());
        let mut builder = Graph::builder()
            .node(names::CLASSIFY, Classify(self.engine.clone()))
            .node(names::EXTRACT, Extract(self.engine.clone()))
            .node(
                names::RESEARCH,
                Research {
                    kb: self.kb,
                    history: self.history,
                    tools: self.tools.clone(),
                },
            )
            .node(names::DRAFT, DraftReply(self.engine.clone()))
            .node(names::REVIEW, ReviewDraft(self.engine))
            .node(
                names::FINALIZE,
                Finalize {
                    reply_approval: self.reply_approval,
                    store: store.clone(),
                },
            )
            .edge(START, names::CLASSIFY)
            .edge(names::CLASSIFY, names::EXTRACT)
            .edge(names::EXTRACT, names::RESEARCH)
            .edge(names::DRAFT, names::REVIEW)
            .route(
                names::REVIEW,
                [("revise", names::DRAFT), ("approve", names::FINALIZE)],
                |s: &TicketState| if s.needs_revision() { "revise" } else { "approve" },
            );
        builder = match (self.tools, store) {
            (Some(tools), Some(store)) => builder
                .node(names::GATE, Gate { store: store.clone() })
                .node(names::ACT, Act { tools })
                .node(names::REPLY_GATE, ReplyGate { store })
                .route(
                    names::RESEARCH,
                    [("act", names::GATE), ("reply", names::DRAFT)],
                    |s: &TicketState| if s.has_unsettled_calls() { "act" } else { "reply" },
                )
                .edge(names::GATE, names::ACT)
                .route(
                    names::ACT,
                    [("hand_off", names::FINALIZE), ("reply", names::DRAFT)],
                    |s: &TicketState| if s.handoff.is_some() { "hand_off" } else { "reply" },
                )
                .route(
                    names::FINALIZE,
                    [("hold", names::REPLY_GATE), ("send", END)],
                    |s: &TicketState| if s.held_reply().is_some() { "hold" } else { "send" },
                )
                .edge(names::REPLY_GATE, END),
            _ => builder.edge(names::RESEARCH, names::DRAFT).edge(names::FINALIZE, END),
        };
        let graph = RESUMES_FROM
            .into_iter()
            .fold(builder.version(WORKFLOW_VERSION), |b, old| b.resumes_from(old))
            .compile();
        match graph {
            Ok(graph) => Workflow { graph: Arc::new(graph) },
            // Both topologies above are fixed; the unit tests compile them.
            Err(err) => unreachable!("the support workflow graph is valid: {err}"),
        }
    }
}

impl Workflow {
    /// A builder of the workflow on `engine`, searching `kb`.
    pub fn builder(engine: Arc<dyn Engine>, kb: Arc<KnowledgeBase>) -> WorkflowBuilder {
        WorkflowBuilder {
            engine,
            kb,
            history: None,
            tools: None,
            reply_approval: ReplyApproval::None,
        }
    }

    /// Builds the workflow on `engine`, searching `kb`, with the customer's history from
    /// `history` when given, and no tools.
    pub fn new(engine: Arc<dyn Engine>, kb: Arc<KnowledgeBase>, history: Option<Arc<dyn HistorySource>>) -> Self {
        Self::builder(engine, kb).history(history).build()
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
