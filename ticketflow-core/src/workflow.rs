//! The support steps wired into a graph.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ticketflow_graph::{END, Graph, GraphBuilder, GraphError, START};

use crate::agent::{OfflinePlanner, Planner};
use crate::steps::{
    Act, Agent, Classify, DraftReply, Extract, Finalize, Gate, ReplyApproval, ReplyGate, Research, ReviewDraft, names,
};
use crate::tools::Tools;
use crate::{Engine, HistorySource, KbError, KnowledgeBase, OfflineEngine, TicketInput, TicketResult, TicketState};

/// The version recorded in checkpoints; bump it when the graph changes shape or meaning, so a
/// worker never resumes a checkpoint written by another version blindly.
pub const WORKFLOW_VERSION: &str = "support-v2";

/// The agent workflow's version, recorded in its checkpoints.
pub const AGENT_VERSION: &str = "agent-v1";

/// How many tool calls an agent run makes, by default, before it is handed to a person.
pub const DEFAULT_AGENT_MAX_CALLS: usize = 8;

/// Which workflow runs the tickets (`WORKFLOW`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowKind {
    /// The six steps, with the tools consulted by research and one proposed action.
    #[default]
    Pipeline,
    /// The seed's tool-using agent: agent -> tools -> agent ... -> review -> finalize.
    Agent,
}

impl WorkflowKind {
    /// The name in settings and results.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowKind::Pipeline => "pipeline",
            WorkflowKind::Agent => "agent",
        }
    }

    /// The graph version this kind's checkpoints record.
    pub fn version(self) -> &'static str {
        match self {
            WorkflowKind::Pipeline => WORKFLOW_VERSION,
            WorkflowKind::Agent => AGENT_VERSION,
        }
    }
}

impl fmt::Display for WorkflowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkflowKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [WorkflowKind::Pipeline, WorkflowKind::Agent]
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("`{s}` is not one of pipeline, agent"))
    }
}

/// Which workflow, and which version of its graph, ran a ticket: in its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRun {
    /// `pipeline` or `agent`.
    pub name: WorkflowKind,
    /// The graph version (`support-v2`, `agent-v1`).
    pub version: String,
}

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
    kind: WorkflowKind,
    /// The graph new tickets run on.
    graph: Arc<Graph<TicketState>>,
    /// The other workflow's graph, when both can be built (with tools): a ticket that started
    /// or paused under it before `WORKFLOW` changed finishes on it.
    other: Option<Arc<Graph<TicketState>>>,
}

/// Builds a [`Workflow`]: [`Workflow::builder`].
pub struct WorkflowBuilder {
    engine: Arc<dyn Engine>,
    kb: Arc<KnowledgeBase>,
    history: Option<Arc<dyn HistorySource>>,
    tools: Option<Tools>,
    reply_approval: ReplyApproval,
    kind: WorkflowKind,
    planner: Arc<dyn Planner>,
    agent_max_calls: usize,
}

impl WorkflowBuilder {
    /// Which workflow new tickets run on (the pipeline by default).
    pub fn kind(mut self, kind: WorkflowKind) -> Self {
        self.kind = kind;
        self
    }

    /// What picks the agent's moves (the offline planner by default).
    pub fn planner(mut self, planner: Arc<dyn Planner>) -> Self {
        self.planner = planner;
        self
    }

    /// The most tool calls an agent run makes before it is handed to a person.
    pub fn agent_max_calls(mut self, max_calls: usize) -> Self {
        self.agent_max_calls = max_calls.max(1);
        self
    }
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
        let pipeline = self.pipeline();
        let agent = self.agent();
        let (graph, other) = match (self.kind, self.tools.is_some()) {
            (WorkflowKind::Pipeline, true) => (pipeline, Some(agent)),
            (WorkflowKind::Pipeline, false) => (pipeline, None),
            (WorkflowKind::Agent, true) => (agent, Some(pipeline)),
            (WorkflowKind::Agent, false) => (agent, None),
        };
        let compile = |builder: GraphBuilder<TicketState>| match builder.compile() {
            Ok(graph) => Arc::new(graph),
            // Every topology here is fixed; the unit tests compile them.
            Err(err) => unreachable!("the support workflow graphs are valid: {err}"),
        };
        Workflow {
            kind: self.kind,
            graph: compile(graph),
            other: other.map(compile),
        }
    }

    /// The agent's graph: agent -> gate -> act -> agent ... -> review -(revise)-> draft ...
    /// -(approve)-> finalize.
    fn agent(&self) -> GraphBuilder<TicketState> {
        // Each call costs three steps (agent, gate, act); the limit call, the revisions and the
        // last steps fit in the rest.
        let step_limit = 3 * (self.agent_max_calls + 2) + 2 * (crate::steps::MAX_REVISIONS as usize + 1) + 4;
        let agent = Agent {
            planner: self.planner.clone(),
            tools: self.tools.clone(),
            max_calls: self.agent_max_calls,
        };
        let builder = self
            .replying(Graph::builder().node(names::AGENT, agent))
            .edge(START, names::AGENT)
            .step_limit(step_limit)
            .version(AGENT_VERSION);
        match self.gated(builder) {
            (builder, true) => builder
                .route(
                    names::AGENT,
                    [
                        ("reply", names::REVIEW),
                        ("hand_off", names::FINALIZE),
                        ("act", names::GATE),
                    ],
                    |s: &TicketState| {
                        if s.draft.is_some() {
                            "reply"
                        } else if s.handoff.is_some() {
                            "hand_off"
                        } else {
                            "act"
                        }
                    },
                )
                .route(
                    names::ACT,
                    [("hand_off", names::FINALIZE), ("think", names::AGENT)],
                    |s: &TicketState| if s.handoff.is_some() { "hand_off" } else { "think" },
                ),
            (builder, false) => builder.edge(names::AGENT, names::REVIEW),
        }
    }

    /// The pipeline's graph.
    fn pipeline(&self) -> GraphBuilder<TicketState> {
        let research = Research {
            kb: self.kb.clone(),
            history: self.history.clone(),
            tools: self.tools.clone(),
        };
        let builder = Graph::builder()
            .node(names::CLASSIFY, Classify(self.engine.clone()))
            .node(names::EXTRACT, Extract(self.engine.clone()))
            .node(names::RESEARCH, research)
            .edge(START, names::CLASSIFY)
            .edge(names::CLASSIFY, names::EXTRACT)
            .edge(names::EXTRACT, names::RESEARCH);
        let builder = match self.gated(self.replying(builder)) {
            (builder, true) => builder
                .route(
                    names::RESEARCH,
                    [("act", names::GATE), ("reply", names::DRAFT)],
                    |s: &TicketState| if s.has_unsettled_calls() { "act" } else { "reply" },
                )
                .route(
                    names::ACT,
                    [("hand_off", names::FINALIZE), ("reply", names::DRAFT)],
                    |s: &TicketState| if s.handoff.is_some() { "hand_off" } else { "reply" },
                ),
            (builder, false) => builder.edge(names::RESEARCH, names::DRAFT),
        };
        RESUMES_FROM
            .into_iter()
            .fold(builder.version(WORKFLOW_VERSION), |b, old| b.resumes_from(old))
    }
}

impl WorkflowBuilder {
    /// Draft, review (which may send the draft back) and finalize, as both workflows end.
    fn replying(&self, builder: GraphBuilder<TicketState>) -> GraphBuilder<TicketState> {
        let finalize = Finalize {
            reply_approval: self.reply_approval,
            store: self.tools.as_ref().map(|t| t.env().store.clone()),
        };
        builder
            .node(names::DRAFT, DraftReply(self.engine.clone()))
            .node(names::REVIEW, ReviewDraft(self.engine.clone()))
            .node(names::FINALIZE, finalize)
            .edge(names::DRAFT, names::REVIEW)
            .route(
                names::REVIEW,
                [("revise", names::DRAFT), ("approve", names::FINALIZE)],
                |s: &TicketState| if s.needs_revision() { "revise" } else { "approve" },
            )
    }

    /// With tools, the gate, act and the reply gate, with every edge but those into the gate
    /// and out of act (each workflow's own), and `true`; without, finalize ends the run, and
    /// `false` (the caller wires its steps straight to the reply).
    fn gated(&self, builder: GraphBuilder<TicketState>) -> (GraphBuilder<TicketState>, bool) {
        let Some(tools) = self.tools.clone() else {
            return (builder.edge(names::FINALIZE, END), false);
        };
        let store = tools.env().store.clone();
        let builder = builder
            .node(names::GATE, Gate { store: store.clone() })
            .node(names::ACT, Act { tools })
            .node(names::REPLY_GATE, ReplyGate { store })
            .edge(names::GATE, names::ACT)
            .route(
                names::FINALIZE,
                [("hold", names::REPLY_GATE), ("send", END)],
                |s: &TicketState| if s.held_reply().is_some() { "hold" } else { "send" },
            )
            .edge(names::REPLY_GATE, END);
        (builder, true)
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
            kind: WorkflowKind::Pipeline,
            planner: Arc::new(OfflinePlanner),
            agent_max_calls: DEFAULT_AGENT_MAX_CALLS,
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

    /// Which workflow new tickets run on.
    pub fn kind(&self) -> WorkflowKind {
        self.kind
    }

    /// The graph new tickets run on, to run with a checkpointer or to draw.
    pub fn graph(&self) -> &Graph<TicketState> {
        &self.graph
    }

    /// The graph that continues a thread checkpointed under `version`: this workflow's, or the
    /// other's when it is the other's (a ticket that started before `WORKFLOW` changed).
    pub fn graph_for(&self, version: Option<&str>) -> &Graph<TicketState> {
        match (version, &self.other) {
            (Some(version), Some(other)) if !self.graph.continues(version) && other.continues(version) => other,
            _ => &self.graph,
        }
    }

    /// The result of a finished run on `graph` (one of this workflow's), with which workflow
    /// and version ran it.
    pub fn result(&self, graph: &Graph<TicketState>, state: &TicketState) -> TicketResult {
        let name = if graph.version() == AGENT_VERSION {
            WorkflowKind::Agent
        } else {
            WorkflowKind::Pipeline
        };
        TicketResult {
            workflow: Some(WorkflowRun {
                name,
                version: graph.version().to_owned(),
            }),
            ..TicketResult::from_state(state)
        }
    }

    /// Runs a ticket through all steps in memory (no checkpoints) and returns its result.
    pub async fn run(&self, ticket: TicketInput) -> Result<TicketResult, GraphError> {
        let thread = ticket.id.clone();
        let state = self.graph.invoke(&thread, TicketState::new(ticket)).await?.into_state();
        Ok(self.result(&self.graph, &state))
    }
}
