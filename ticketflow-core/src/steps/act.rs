use async_trait::async_trait;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use super::{scope, tool_failure};
use crate::state::Handoff;
use crate::tools::{EscalationView, Tools};
use crate::{ActionTaken, TicketState};

/// Runs the run's calls that may run (requested, or approved by a person), each exactly once:
/// its effect commits with its journal row's move to `executed`, under the run's lease, and a
/// re-run of this step after a crash finds it executed and returns its journaled result. An
/// escalation hands the ticket to a person.
pub struct Act {
    /// The tools.
    pub tools: Tools,
}

#[async_trait]
impl Node<TicketState> for Act {
    async fn run(&self, mut state: TicketState, ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
        let Some(scope) = scope(&state, ctx) else {
            return Ok(NodeOutput::Continue(state));
        };
        let runnable: Vec<ActionTaken> = state
            .actions
            .iter()
            .filter(|a| a.status.runnable() && a.tool != crate::store::SEND_REPLY)
            .cloned()
            .collect();
        for action in runnable {
            let call = self.tools.execute(&scope, action.call_id).await.map_err(tool_failure)?;
            state.record_call(&call);
        }
        let escalated = state
            .actions
            .iter()
            .filter(|a| a.tool == "escalate_to_human")
            .find_map(|a| a.output::<EscalationView>().map(|view| (a, view)));
        if let Some((action, view)) = escalated {
            let reason = action
                .args
                .get("reason")
                .and_then(|r| r.as_str())
                .unwrap_or("handed to a person")
                .to_owned();
            state.handoff = Some(Handoff {
                reason,
                escalation_id: Some(view.escalation_id),
            });
        }
        Ok(NodeOutput::Continue(state))
    }
}
