use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use ticketflow_graph::{Node, NodeContext, NodeError, NodeOutput};

use super::{names, scope, tool_failure};
use crate::facts::Facts;
use crate::store::{CallStatus, NewToolCall, SEND_REPLY, Store};
use crate::{OfflineEngine, TicketState, policy};

/// Which replies wait for a person before they are sent (`REPLY_APPROVAL`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplyApproval {
    /// None: replies go out as the review approved them.
    #[default]
    None,
    /// The replies of tickets that proposed an action (a refund, a reset, ...).
    Actions,
    /// Every reply.
    All,
}

impl ReplyApproval {
    /// The name in settings.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyApproval::None => "none",
            ReplyApproval::Actions => "actions",
            ReplyApproval::All => "all",
        }
    }
}

impl fmt::Display for ReplyApproval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReplyApproval {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [ReplyApproval::None, ReplyApproval::Actions, ReplyApproval::All]
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("`{s}` is not one of none, actions, all"))
    }
}

/// Step 6: the final response: the approved draft, or, when the revision budget ran out, the
/// draft with the fewest problems, with any sentence removed that promises an action that did
/// not happen or states what the facts do not. A ticket handed to a person gets none. When the
/// reply must wait for a person ([`ReplyApproval`]), it is journaled as a `send_reply` call
/// awaiting approval, and the reply gate pauses on it.
#[derive(Default)]
pub struct Finalize {
    /// Which replies wait for a person.
    pub reply_approval: ReplyApproval,
    /// Where a held reply is journaled (no store: replies are never held).
    pub store: Option<Arc<dyn Store>>,
}

impl Finalize {
    fn holds(&self, state: &TicketState) -> bool {
        match self.reply_approval {
            ReplyApproval::None => false,
            ReplyApproval::Actions => state.action().is_some(),
            ReplyApproval::All => true,
        }
    }

    async fn hold_reply(
        &self,
        store: &dyn Store,
        state: &mut TicketState,
        ctx: &NodeContext,
        reply: &str,
    ) -> Result<(), NodeError> {
        let Some(scope) = scope(state, ctx) else {
            return Ok(());
        };
        let (call, _) = store
            .journal_call(NewToolCall {
                ticket_id: scope.ticket_id,
                call_id: scope.call_id("finalize/send_reply"),
                tool: SEND_REPLY.into(),
                args: json!({ "response": reply }),
                status: CallStatus::AwaitingApproval,
                result: None,
                llm_call_id: None,
            })
            .await
            .map_err(|e| tool_failure(e.into()))?;
        state.record_call(&call);
        Ok(())
    }
}

/// The reply: the best draft, without a sentence that promises what did not happen or states
/// what the facts do not.
fn best_reply(state: &TicketState) -> Result<String, NodeError> {
    let best = state
        .reviewed_drafts
        .iter()
        .enumerate()
        .min_by_key(|(i, (_, problems))| (*problems, *i))
        .map(|(_, (draft, _))| draft.text.clone())
        .or_else(|| state.draft.as_ref().map(|d| d.text.clone()))
        .ok_or_else(|| NodeError::new("finalize ran before any draft was written"))?;
    let facts = Facts::of(state);
    let safe: Vec<&str> = policy::sentences(&best)
        .filter(|sentence| {
            !policy::promises_what_did_not_happen(&facts, sentence)
                && !policy::strays_from_facts(state, &facts, sentence)
        })
        .collect();
    Ok(safe.concat().trim().to_owned())
}

#[async_trait]
impl Node<TicketState> for Finalize {
    async fn run(&self, mut state: TicketState, ctx: &NodeContext) -> Result<NodeOutput<TicketState>, NodeError> {
        state
            .engine
            .insert(names::FINALIZE.to_owned(), OfflineEngine::engine_use());
        if state.handoff.is_some() {
            state.final_response = None;
            return Ok(NodeOutput::Continue(state));
        }
        let reply = best_reply(&state)?;
        if let (true, Some(store)) = (self.holds(&state), &self.store) {
            self.hold_reply(store.as_ref(), &mut state, ctx, &reply).await?;
        }
        state.final_response = Some(reply);
        Ok(NodeOutput::Continue(state))
    }
}
