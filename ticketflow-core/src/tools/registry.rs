//! The registry of tools, and the protocol every call goes through: propose (check, journal,
//! hold for approval if the rules say so), then execute (once: an executed call returns its
//! journaled result).

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use super::tool::{DynTool, Run};
use super::{
    CheckOrderStatus, CreateBugReport, EscalateToHuman, GetCustomerHistory, LookupProduct, ProcessRefund,
    QueryHelpArticles, ResetPassword, Scoped, TicketScope, ToolEnv, ToolError,
};
use crate::store::{CallStatus, Effect, NewToolCall, Settlement, ToolCall};

/// A call a workflow proposes.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// ticketflow's id for the call (see [`ToolCall::id_for`]).
    pub call_id: Uuid,
    /// The tool's name.
    pub tool: String,
    /// Its arguments.
    pub args: serde_json::Value,
    /// The LLM's own id for the call, when an LLM proposed it.
    pub llm_call_id: Option<String>,
}

impl Proposal {
    /// A call of `tool` with `args` proposed at `key` in `scope`'s turn (see
    /// [`TicketScope::call_id`](super::TicketScope::call_id)).
    pub fn in_scope(scope: &super::TicketScope, key: &str, tool: &str, args: serde_json::Value) -> Self {
        Self {
            call_id: scope.call_id(key),
            tool: tool.to_owned(),
            args,
            llm_call_id: None,
        }
    }

    /// A call of `tool` with `args`, its id made from the ticket and `key` (the place it is
    /// proposed at, the same when that place runs again).
    pub fn new(ticket_id: Uuid, key: &str, tool: &str, args: serde_json::Value) -> Self {
        Self {
            call_id: ToolCall::id_for(ticket_id, key),
            tool: tool.to_owned(),
            args,
            llm_call_id: None,
        }
    }
}

/// A tool as an LLM and the API's documentation see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    /// Its name.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Its arguments' strict JSON Schema.
    pub parameters: serde_json::Value,
    /// Its output's JSON Schema.
    pub output: serde_json::Value,
    /// Whether its calls wait for a person (under the registry's rules; a refund under the
    /// automatic-approval amount does not).
    pub needs_approval: bool,
}

/// The tools, over one environment.
#[derive(Clone)]
pub struct Tools {
    env: ToolEnv,
    tools: Vec<Arc<dyn DynTool>>,
}

impl std::fmt::Debug for Tools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tools")
            .field("tools", &self.tools.iter().map(|t| t.name()).collect::<Vec<_>>())
            .field("rules", &self.env.rules)
            .finish_non_exhaustive()
    }
}

impl Tools {
    /// The seed's eight tools over `env`.
    pub fn new(env: ToolEnv) -> Self {
        let tools: Vec<Arc<dyn DynTool>> = vec![
            Arc::new(QueryHelpArticles),
            Arc::new(CheckOrderStatus),
            Arc::new(GetCustomerHistory),
            Arc::new(LookupProduct),
            Arc::new(ResetPassword),
            Arc::new(ProcessRefund),
            Arc::new(CreateBugReport),
            Arc::new(EscalateToHuman),
        ];
        Self { env, tools }
    }

    /// The environment.
    pub fn env(&self) -> &ToolEnv {
        &self.env
    }

    /// Every tool, as an LLM is told of them.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .map(|tool| ToolSpec {
                name: tool.name(),
                description: tool.description(),
                parameters: tool.parameters(),
                output: tool.output(),
                needs_approval: tool.always_needs_approval() || self.env.rules.required.contains(tool.name()),
            })
            .collect()
    }

    fn tool(&self, name: &str) -> Option<&Arc<dyn DynTool>> {
        self.tools.iter().find(|t| t.name() == name)
    }

    /// Journals `proposal` for `scope`'s ticket as `status` (with `result`), or finds it
    /// journaled already: the same call id is the same call.
    async fn journal(
        &self,
        scope: &TicketScope,
        proposal: Proposal,
        status: CallStatus,
        result: Option<serde_json::Value>,
    ) -> Result<ToolCall, ToolError> {
        let (call, _) = self
            .env
            .store
            .journal_call(NewToolCall {
                ticket_id: scope.ticket_id,
                call_id: proposal.call_id,
                tool: proposal.tool,
                args: proposal.args,
                status,
                result,
                llm_call_id: proposal.llm_call_id,
            })
            .await?;
        Ok(call)
    }

    /// The ticket's scope with its customer looked up.
    async fn scoped(&self, scope: &TicketScope) -> Result<Scoped, ToolError> {
        Ok(Scoped {
            ticket_id: scope.ticket_id,
            customer: self.env.commerce.customer(&scope.customer).await?,
            reference: scope.customer.clone(),
        })
    }

    /// Whether a call of `tool` with `args` waits for a person.
    fn needs_approval(&self, tool: &dyn DynTool, args: &serde_json::Value) -> Result<bool, ToolError> {
        if self.env.rules.required.contains(tool.name()) {
            return Ok(true);
        }
        if !tool.always_needs_approval() {
            return Ok(false);
        }
        Ok(match tool.amount(args)? {
            Some(amount) => amount >= self.env.rules.auto_approve_refund_below,
            None => true,
        })
    }

    /// Proposes a call: its tool, arguments, scope and limits are checked, and it is journaled
    /// as `requested`, `awaiting_approval` (its rule needs a person) or `failed` (with why as
    /// its result; it never runs). A call already journaled under the proposal's id is
    /// returned as it is. `Err` only when nothing could be journaled (the database or the
    /// order service is unavailable: propose again later).
    pub async fn propose(&self, scope: &TicketScope, proposal: Proposal) -> Result<ToolCall, ToolError> {
        if let Some(existing) = self.env.store.tool_call(proposal.call_id).await? {
            return Ok(existing);
        }
        let verdict = match self.tool(&proposal.tool) {
            None => Err(ToolError::UnknownTool(proposal.tool.clone())),
            Some(tool) => {
                let scoped = self.scoped(scope).await?;
                match tool.check(&self.env, &scoped, &proposal.args).await {
                    Ok(()) => self.needs_approval(tool.as_ref(), &proposal.args),
                    Err(error) => Err(error),
                }
            }
        };
        let (status, result) = match verdict {
            Ok(true) => (CallStatus::AwaitingApproval, None),
            Ok(false) => (CallStatus::Requested, None),
            Err(error) if error.is_result() => (CallStatus::Failed, Some(error.to_result())),
            Err(error) => return Err(error),
        };
        self.journal(scope, proposal, status, result).await
    }

    /// Runs a journaled call that may run (`requested` or `approved`), once: a call already
    /// executed or failed is returned as journaled, and its effect is not made again. A call
    /// awaiting approval or rejected is [`ToolError::NotRunnable`]. An error the call answers
    /// with (not found, refused, ...) is journaled as its result; `Err` means nothing was
    /// settled (run it again later).
    pub async fn execute(&self, scope: &TicketScope, call_id: Uuid) -> Result<ToolCall, ToolError> {
        let call = self
            .env
            .store
            .tool_call(call_id)
            .await?
            .ok_or(ToolError::Store(crate::store::StoreError::UnknownCall(call_id)))?;
        match call.status {
            CallStatus::Executed | CallStatus::Failed => return Ok(call),
            status if !status.runnable() => return Err(ToolError::NotRunnable(call_id, status)),
            _ => {}
        }
        if call.ticket_id != scope.ticket_id {
            return Err(ToolError::Refused(format!("call {call_id} is not this ticket's")));
        }
        let settle = |effect: Effect, render: Box<dyn Fn(&crate::store::Applied) -> Settlement + Send + Sync>| async move {
            self.env
                .store
                .settle_call(call_id, scope.fence, effect, render.as_ref())
                .await
                .map_err(ToolError::from)
        };
        let failed = |error: &ToolError| Settlement {
            status: CallStatus::Failed,
            result: error.to_result(),
        };
        let Some(tool) = self.tool(&call.tool) else {
            let error = ToolError::UnknownTool(call.tool.clone());
            return settle(Effect::None, Box::new(move |_| failed(&error))).await;
        };
        let scoped = self.scoped(scope).await?;
        match tool.run(&self.env, &scoped, &call).await {
            Ok(Run::Done(output)) => {
                settle(
                    Effect::None,
                    Box::new(move |_| Settlement {
                        status: CallStatus::Executed,
                        result: output.clone(),
                    }),
                )
                .await
            }
            Ok(Run::Effect(effect, render)) => {
                settle(
                    effect,
                    Box::new(move |applied| match render(applied) {
                        Ok(output) => Settlement {
                            status: CallStatus::Executed,
                            result: output,
                        },
                        Err(error) => failed(&error),
                    }),
                )
                .await
            }
            Err(error) if error.is_result() => settle(Effect::None, Box::new(move |_| failed(&error))).await,
            Err(error) => Err(error),
        }
    }

    /// Runs a lookup (a tool of [`LOOKUPS`](super::LOOKUPS)) and journals it once, executed
    /// with its output or failed with why: a read has no effect to guard, so it needs no
    /// separate settlement. A lookup journaled already returns its journaled result.
    async fn look_up(&self, scope: &TicketScope, proposal: Proposal) -> Result<ToolCall, ToolError> {
        if let Some(existing) = self.env.store.tool_call(proposal.call_id).await? {
            return Ok(existing);
        }
        let outcome = match self.tool(&proposal.tool) {
            None => Err(ToolError::UnknownTool(proposal.tool.clone())),
            Some(tool) => {
                let scoped = self.scoped(scope).await?;
                match tool.check(&self.env, &scoped, &proposal.args).await {
                    Err(error) => Err(error),
                    Ok(()) => {
                        let call = ToolCall {
                            call_id: proposal.call_id,
                            ticket_id: scope.ticket_id,
                            tool: proposal.tool.clone(),
                            args: proposal.args.clone(),
                            status: CallStatus::Requested,
                            result: None,
                            llm_call_id: proposal.llm_call_id.clone(),
                            created_at: chrono::Utc::now(),
                            updated_at: chrono::Utc::now(),
                            executed_at: None,
                        };
                        match tool.run(&self.env, &scoped, &call).await {
                            Ok(Run::Done(output)) => Ok(output),
                            Ok(Run::Effect(..)) => Err(ToolError::Invalid(format!(
                                "`{}` is not a lookup: it has an effect",
                                proposal.tool
                            ))),
                            Err(error) => Err(error),
                        }
                    }
                }
            }
        };
        let (status, result) = match outcome {
            Ok(output) => (CallStatus::Executed, Some(output)),
            Err(error) if error.is_result() => (CallStatus::Failed, Some(error.to_result())),
            Err(error) => return Err(error),
        };
        self.journal(scope, proposal, status, result).await
    }

    /// Proposes a call and, when it may run at once, runs it. A lookup runs first and is
    /// journaled once with its result.
    pub async fn call(&self, scope: &TicketScope, proposal: Proposal) -> Result<ToolCall, ToolError> {
        if super::is_lookup(&proposal.tool) {
            return self.look_up(scope, proposal).await;
        }
        let call = self.propose(scope, proposal).await?;
        if call.status.runnable() {
            self.execute(scope, call.call_id).await
        } else {
            Ok(call)
        }
    }
}
