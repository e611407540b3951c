use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use super::gate::{HeldCall, decision, record_decided, record_with_approval};
use super::{scope, tool_failure};
use crate::TicketState;
use crate::state::Handoff;
use crate::store::{ApprovalStatus, CallStatus, Effect, Settlement, Store};

/// Pauses the run until a person decides on the held reply (no LLM call, no effect before the
/// pause). Approved: the reply, or the approver's edited text, is the final response, and the
/// `send_reply` call is settled with it. Rejected: no reply is sent and the ticket goes to a
/// person.
pub struct ReplyGate {
    /// Where the decisions are.
    pub store: Arc<dyn Store>,
}

#[async_trait]
impl Node<TicketState> for ReplyGate {
    async fn run(&self, mut state: TicketState, ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
        let Some(held) = state.held_reply().cloned() else {
            return Ok(NodeOutput::Continue(state));
        };
        let Some(approval) = decision(self.store.as_ref(), &held, ctx).await? else {
            let payload = HeldCall::payload(&held);
            return Ok(NodeOutput::Interrupt { state, payload });
        };
        if approval.status == ApprovalStatus::Approved {
            let reply = approval
                .edited_response
                .clone()
                .or_else(|| state.final_response.clone())
                .unwrap_or_default();
            let fence = scope(&state, ctx).and_then(|s| s.fence);
            let result = json!({ "response": reply, "edited": approval.edited_response.is_some() });
            let settle = move |_: &crate::store::Applied| Settlement {
                status: CallStatus::Executed,
                result: result.clone(),
            };
            let call = self
                .store
                .settle_call(held.call_id, fence, Effect::None, &settle)
                .await
                .map_err(|e| tool_failure(e.into()))?;
            state.final_response = Some(reply);
            record_with_approval(&mut state, &call, &approval);
        } else {
            state.final_response = None;
            state.handoff = Some(Handoff {
                reason: match &approval.decision_reason {
                    Some(reason) => format!("the reply was not approved: {reason}"),
                    None => "the reply was not approved".into(),
                },
                escalation_id: None,
            });
            record_decided(self.store.as_ref(), &mut state, held.call_id, &approval).await?;
        }
        Ok(NodeOutput::Continue(state))
    }
}
