//! The agent's planner on an OpenAI-compatible service: tool calling with strict function
//! schemas generated from the tools' argument types, one call at a time
//! (`parallel_tool_calls: false`), the conversation carried as the assistant's `tool_calls` and
//! `tool` messages answering them by `tool_call_id`. The engine's one retry layer applies; an
//! unusable reply gets one corrective retry, and a second one the offline planner's move,
//! marked as a fallback.

use async_openai::types::chat::{ChatCompletionMessageToolCalls, CreateChatCompletionRequest};
use async_trait::async_trait;
use serde_json::{Value, json};

use super::engine::failed_call;
use super::{LlmConfig, LlmEngine, prompts, transport};
use crate::agent::{Move, OfflinePlanner, PlannedCall, Planner};
use crate::engine::{EngineError, Produced};
use crate::tools::ToolSpec;
use crate::{ActionTaken, TicketState, TokenUsage};

/// The tool-calling planner.
#[derive(Debug, Clone)]
pub struct LlmPlanner {
    engine: LlmEngine,
}

/// The step name in metrics and results.
const STEP: &str = "agent";

/// A model reply that cannot be used, and why.
struct Unusable(String);

impl LlmPlanner {
    /// The planner on the service `config` names.
    pub fn new(config: LlmConfig) -> Result<Self, EngineError> {
        Ok(Self {
            engine: LlmEngine::new(config)?,
        })
    }

    /// The conversation so far: the instructions, the ticket, and each call the agent made
    /// with what it came to.
    fn messages(state: &TicketState) -> Vec<Value> {
        let mut messages = vec![
            json!({ "role": "system", "content": prompts::AGENT_SYSTEM }),
            json!({ "role": "user", "content": prompts::agent(state) }),
        ];
        for turn in &state.agent {
            let Some(action) = state.actions.iter().find(|a| a.call_id == turn.call_id) else {
                continue;
            };
            let id = turn.llm_call_id.clone().unwrap_or_else(|| turn.call_id.to_string());
            messages.push(json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": id,
                    "type": "function",
                    "function": { "name": action.tool, "arguments": action.args.to_string() },
                }],
            }));
            messages.push(json!({ "role": "tool", "tool_call_id": id, "content": outcome(action) }));
        }
        messages
    }

    fn tools(tools: &[ToolSpec]) -> Vec<Value> {
        tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                        "strict": true,
                    },
                })
            })
            .collect()
    }

    /// The move in a reply, or why there is none.
    fn read(
        message: async_openai::types::chat::ChatCompletionResponseMessage,
        tools: &[ToolSpec],
    ) -> Result<Move, Unusable> {
        if let Some(refusal) = message.refusal {
            return Err(Unusable(format!("the model refused: {refusal}")));
        }
        let call = message.tool_calls.into_iter().flatten().find_map(|call| match call {
            ChatCompletionMessageToolCalls::Function(call) => Some(call),
            ChatCompletionMessageToolCalls::Custom(_) => None,
        });
        if let Some(call) = call {
            if !tools.iter().any(|t| t.name == call.function.name) {
                return Err(Unusable(format!("there is no tool named `{}`", call.function.name)));
            }
            let args: Value = serde_json::from_str(&without_nul(&call.function.arguments))
                .map_err(|e| Unusable(format!("the arguments are not JSON: {e}")))?;
            if !args.is_object() {
                return Err(Unusable("the arguments are not a JSON object".into()));
            }
            return Ok(Move::Call(PlannedCall {
                tool: call.function.name,
                args,
                llm_call_id: Some(call.id.chars().take(200).collect()),
            }));
        }
        let reply = without_nul(message.content.as_deref().unwrap_or_default())
            .trim()
            .to_owned();
        if reply.is_empty() {
            return Err(Unusable("neither a tool call nor a reply".into()));
        }
        Ok(Move::Reply(reply))
    }

    async fn ask(&self, state: &TicketState, tools: &[ToolSpec]) -> Result<(Option<Move>, TokenUsage), EngineError> {
        let mut messages = Self::messages(state);
        let mut tokens = TokenUsage::default();
        for round in 0..2 {
            let mut body = json!({
                "model": self.engine.config.model,
                "messages": messages,
                "temperature": 0.0,
            });
            if !tools.is_empty() {
                body["tools"] = Value::Array(Self::tools(tools));
                body["tool_choice"] = json!("auto");
                body["parallel_tool_calls"] = json!(false);
            }
            let request: CreateChatCompletionRequest = serde_json::from_value(body)
                .map_err(|e| EngineError::Permanent(format!("cannot build the agent's request: {e}")))?;
            let response = self
                .engine
                .client
                .chat()
                .create(request)
                .await
                .map_err(|error| failed_call(STEP, error))?;
            if let Some(usage) = &response.usage {
                tokens.prompt += u64::from(usage.prompt_tokens);
                tokens.completion += u64::from(usage.completion_tokens);
            }
            let Some(message) = response.choices.into_iter().next().map(|c| c.message) else {
                return Err(EngineError::Transient("the LLM service answered with no choice".into()));
            };
            match Self::read(message, tools) {
                Ok(next) => {
                    metrics::counter!("llm_calls_total", "step" => STEP, "status" => "ok").increment(1);
                    return Ok((Some(next), tokens));
                }
                Err(Unusable(problem)) => {
                    metrics::counter!("llm_calls_total", "step" => STEP, "status" => "unparsable").increment(1);
                    tracing::warn!(step = STEP, round, problem = %problem, "LLM reply could not be used");
                    messages.push(json!({ "role": "user", "content": prompts::agent_corrective(&problem) }));
                }
            }
        }
        Ok((None, tokens))
    }
}

/// What a call came to, as the model reads it in the `tool` message.
fn outcome(action: &ActionTaken) -> String {
    json!({ "status": action.status, "result": action.result }).to_string()
}

/// NUL characters (raw or escaped) are dropped: PostgreSQL cannot store them.
fn without_nul(text: &str) -> String {
    text.replace("\\u0000", "").replace('\0', "")
}

#[async_trait]
impl Planner for LlmPlanner {
    async fn next(&self, state: &TicketState, tools: &[ToolSpec]) -> Result<Produced<Move>, EngineError> {
        let (asked, retries) = transport::counting_retries(self.ask(state, tools)).await;
        let (next, tokens) = asked?;
        match next {
            Some(value) => Ok(Produced {
                value,
                engine: self.engine.engine_use(false, tokens, retries),
            }),
            None => {
                metrics::counter!("llm_fallbacks_total", "step" => STEP).increment(1);
                let offline = OfflinePlanner.next(state, tools).await?;
                Ok(Produced {
                    value: offline.value,
                    engine: self.engine.engine_use(true, tokens, retries),
                })
            }
        }
    }
}
