use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use uuid::Uuid;

use crate::store::{Approval, ApprovalStatus, Store, StoreError, ToolCall};
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

/// What a paused run waits for: the interrupt's payload the gates write, from which the
/// processor writes the approval request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldCall {
    /// The held call.
    pub call_id: Uuid,
    /// Its tool, or `send_reply`.
    pub action_type: String,
    /// Its arguments.
    pub action_params: serde_json::Value,
}

impl HeldCall {
    /// The pause's payload for `held`.
    pub(super) fn payload(held: &ActionTaken) -> serde_json::Value {
        serde_json::to_value(HeldCall {
            call_id: held.call_id,
            action_type: held.tool.clone(),
            action_params: held.args.clone(),
        })
        .unwrap_or_default()
    }

    /// The held call a pause's payload names, if it is a gate's.
    pub fn of(payload: &serde_json::Value) -> Option<Self> {
        serde_json::from_value(payload.clone()).ok()
    }
}

/// The journal row of a decided call, recorded in `state` with the approval that decided it.
pub(super) async fn record_decided(
    store: &dyn Store,
    state: &mut TicketState,
    call_id: Uuid,
    approval: &Approval,
) -> Result<(), NodeError> {
    let call = store
        .tool_call(call_id)
        .await
        .map_err(NodeError::new)?
        .ok_or_else(|| NodeError::new(StoreError::UnknownCall(call_id)))?;
    record_with_approval(state, &call, approval);
    Ok(())
}

/// Records `call` in `state` as decided by `approval`.
pub(super) fn record_with_approval(state: &mut TicketState, call: &ToolCall, approval: &Approval) {
    state.record_call(call);
    if let Some(action) = state.actions.iter_mut().find(|a| a.call_id == call.call_id) {
        action.approval_id = Some(approval.id);
    }
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
            let payload = HeldCall::payload(&held);
            return Ok(NodeOutput::Interrupt { state, payload });
        };
        // The decision moved the journal row (approved, or rejected with why) in its own
        // transaction: the row is what the call came to.
        record_decided(self.store.as_ref(), &mut state, held.call_id, &approval).await?;
        Ok(NodeOutput::Continue(state))
    }
}
