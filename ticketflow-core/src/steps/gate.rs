use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use crate::store::{Approval, ApprovalStatus, Store, StoreError};
use crate::{ActionTaken, TicketState};

/// Pauses the run on a call that waits for a person: no LLM call and no effect before the
/// pause, so re-running this step on resume repeats nothing. The call was proposed and
/// journaled by an earlier step whose checkpoint committed; the decision is read from the
/// store's approval request (passed in by whoever resumed the run, or read here), and the call's
/// journal row says what it came to.
pub struct Gate {
    /// Where the decisions are.
    pub store: Arc<dyn Store>,
}

/// What the run waits for: the interrupt's payload, from which the processor writes the
/// approval request.
pub(super) fn held_payload(held: &ActionTaken) -> serde_json::Value {
    json!({
        "call_id": held.call_id,
        "action_type": held.tool,
        "action_params": held.args,
    })
}

/// The decision on `held`: the approval passed in on resume when it is this call's, else the
/// store's; `None` while nobody has decided.
pub(super) async fn decision(
    store: &dyn Store,
    held: &ActionTaken,
    ctx: &NodeContext,
) -> Result<Option<Approval>, NodeError> {
    let passed = ctx
        .resume_value()
        .and_then(|value| serde_json::from_value::<Approval>(value.clone()).ok())
        .filter(|approval| approval.call_id == held.call_id);
    let approval = match passed {
        Some(approval) => Some(approval),
        None => store.approval_for_call(held.call_id).await.map_err(NodeError::new)?,
    };
    Ok(approval.filter(|a| a.status != ApprovalStatus::Pending))
}

#[async_trait]
impl Node<TicketState> for Gate {
    async fn run(&self, mut state: TicketState, ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
        let Some(held) = state.held_call().cloned() else {
            return Ok(NodeOutput::Continue(state));
        };
        let Some(approval) = decision(self.store.as_ref(), &held, ctx).await? else {
            let payload = held_payload(&held);
            return Ok(NodeOutput::Interrupt { state, payload });
        };
        // The decision moved the journal row (approved, or rejected with why) in its own
        // transaction: the row is what the call came to.
        let call = self
            .store
            .tool_call(held.call_id)
            .await
            .map_err(NodeError::new)?
            .ok_or_else(|| NodeError::new(StoreError::UnknownCall(held.call_id)))?;
        state.record_call(&call);
        if let Some(action) = state.actions.iter_mut().find(|a| a.call_id == held.call_id) {
            action.approval_id = Some(approval.id);
        }
        Ok(NodeOutput::Continue(state))
    }
}
