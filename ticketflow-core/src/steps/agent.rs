use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};
use tracing::Instrument;

use super::{engine_error, names, record_engine, scope, step_span, tool_failure};
use crate::agent::{AgentTurn, Move, OfflinePlanner, Planner};
use crate::state::Handoff;
use crate::tools::{Proposal, TicketScope, Tools};
use crate::{Draft, TicketState};

/// The agent's step: asks the planner for the next move and carries it out as far as this step
/// may. A call is proposed — checked and journaled under an id made from the ticket and the
/// call's place in the run, so a re-run of this step after a crash proposes nothing twice —
/// and the gate and act hold and run it; a reply becomes the draft the review checks. At the
/// step limit the ticket is handed to a person instead of asking again.
pub struct Agent {
    /// What picks the moves.
    pub planner: Arc<dyn Planner>,
    /// The tools the planner may call.
    pub tools: Option<Tools>,
    /// The most tool calls one run makes before it is escalated.
    pub max_calls: usize,
}

impl Agent {
    /// Hands the ticket to a person: through `escalate_to_human` (a journaled call like any
    /// other, so it leaves an escalation record), or at once when that call was made already and
    /// did not hand the ticket off (it failed, or a person rejected it).
    async fn at_the_limit(&self, tools: &Tools, scope: &TicketScope, state: &mut TicketState) -> Result<(), NodeError> {
        let reason = format!(
            "The agent reached its limit of {} tool calls without an answer: {}",
            self.max_calls, state.ticket.subject
        );
        let call_id = scope.call_id("agent/limit");
        if state
            .actions
            .iter()
            .any(|a| a.call_id == call_id && !a.status.runnable())
        {
            state.handoff = Some(Handoff {
                reason,
                escalation_id: None,
            });
            return Ok(());
        }
        let proposal = Proposal {
            call_id,
            tool: "escalate_to_human".into(),
            args: json!({
                "reason": reason.chars().take(1_000).collect::<String>(),
                "suggested_action": "Read the conversation so far and answer the customer.",
            }),
            llm_call_id: None,
        };
        let call = tools.propose(scope, proposal).await.map_err(tool_failure)?;
        state.record_call(&call);
        Ok(())
    }
}

#[async_trait]
impl Node<TicketState> for Agent {
    async fn run(&self, mut state: TicketState, ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
        OfflinePlanner::analyse(&mut state);
        let scoped = self.tools.as_ref().zip(scope(&state, ctx));
        if let Some((tools, scope)) = &scoped
            && state.agent.len() >= self.max_calls
        {
            self.at_the_limit(tools, scope, &mut state).await?;
            return Ok(NodeOutput::Continue(state));
        }
        let specs = scoped.as_ref().map(|(tools, _)| tools.specs()).unwrap_or_default();
        let span = step_span(names::AGENT);
        let produced = self
            .planner
            .next(&state, &specs)
            .instrument(span.clone())
            .await
            .map_err(engine_error)?;
        record_engine(&span, &produced.engine);
        state.record_engine(names::AGENT, produced.engine);
        match (produced.value, &scoped) {
            (Move::Call(planned), Some((tools, scope))) => {
                let key = format!("agent/{}", state.agent.len());
                let proposal = Proposal {
                    call_id: scope.call_id(&key),
                    tool: planned.tool,
                    args: planned.args,
                    llm_call_id: planned.llm_call_id,
                };
                let call = tools.propose(scope, proposal).await.map_err(tool_failure)?;
                state.record_call(&call);
                state.agent.push(AgentTurn {
                    call_id: call.call_id,
                    llm_call_id: call.llm_call_id.clone(),
                });
            }
            // Without tools (or outside a stored ticket) nothing can be called: answer.
            (Move::Call(_), None) => {
                state.draft = Some(Draft {
                    text: OfflinePlanner::reply(&state),
                    revision: 0,
                });
            }
            (Move::Reply(text), _) => state.draft = Some(Draft { text, revision: 0 }),
        }
        Ok(NodeOutput::Continue(state))
    }
}
