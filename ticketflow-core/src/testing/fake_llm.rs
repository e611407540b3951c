//! A real HTTP server on loopback that speaks the OpenAI chat-completions protocol, so tests
//! run the real client, transport and retry code. Like the real service it answers 400 to a
//! `json_schema` or a function's parameters that break strict mode's rules, and to a `tool`
//! message that answers no tool call of the conversation. Replies are scripted per step (the
//! schema name; `agent` for tool-calling requests); unscripted calls get a plausible default
//! answer. Every call is recorded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::web::{Data, Json};
use poem::{EndpointExt, Response, Route, handler, http::HeaderMap, http::StatusCode, post};
use serde_json::{Value, json};

use crate::schema::strict_violations;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A well-formed completion whose content is this JSON.
    Json(Value),
    /// A completion whose content is this text as is (unparsable replies).
    Content(String),
    /// An error status with an OpenAI-style error body, and a `Retry-After` (seconds) if given.
    Status(u16, Option<u64>),
    /// Waits this long before answering with the default (to trip client timeouts).
    Delay(Duration),
    /// An assistant message calling the tool `name` with these arguments, as the real API
    /// sends it (`tool_calls`, `finish_reason: "tool_calls"`, the arguments as a JSON string);
    /// the call's id is `call_<n>`, counted within the conversation, so ids repeat across
    /// conversations as they may with the real service.
    ToolCall(String, Value),
    /// A tool call whose arguments are this text as is (unparsable arguments).
    ToolCallText(String, String),
}

/// A recorded call.
#[derive(Debug, Clone)]
pub struct LlmCall {
    /// The step (the `json_schema` name).
    pub step: String,
    /// The request body.
    pub body: Value,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Shared {
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    calls: Mutex<Vec<LlmCall>>,
    /// Added to every answer, like a real model's latency.
    latency: Mutex<Duration>,
}

/// The running server; stops when dropped.
pub struct FakeLlm {
    /// The base URL to give the client (ends in `/v1`).
    pub base_url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLlm {
    /// Starts a server on a free loopback port.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Route::new()
            .at("/v1/chat/completions", post(completions))
            .data(shared.clone());
        let (address, task) = super::loopback::serve(app).await;
        Self {
            base_url: format!("{address}/v1"),
            shared,
            task,
        }
    }

    /// Queues replies for `step`; they are used in order, then defaults resume.
    pub fn script(&self, step: &str, replies: impl IntoIterator<Item = Reply>) {
        self.shared
            .scripts
            .lock()
            .unwrap()
            .entry(step.to_owned())
            .or_default()
            .extend(replies);
    }

    /// Makes every answer from now on take `latency` first (scripted delays add to it).
    pub fn set_latency(&self, latency: Duration) {
        *self.shared.latency.lock().unwrap() = latency;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<LlmCall> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// How many calls `step` got.
    pub fn calls_for(&self, step: &str) -> usize {
        self.shared
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.step == step)
            .count()
    }
}

fn user_text(body: &Value) -> String {
    body["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter(|m| m["role"] == "user")
                .filter_map(|m| m["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// A plausible answer for each step, so that a whole workflow runs on defaults.
fn default_answer(step: &str, body: &Value) -> Value {
    let text = user_text(body);
    let order_id = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .find(|w| w.starts_with("ORD-"))
        .map(|w| w.trim_end_matches('.').to_owned());
    match step {
        "classify" => json!({ "category": "billing", "confidence": 0.93, "rationale": "a charge dispute" }),
        "extract" => {
            json!({ "order_id": order_id, "product": "subscription", "issue_type": "double_charge", "urgency": "medium" })
        }
        "draft" => {
            let order = order_id.map(|id| format!(" for order {id}")).unwrap_or_default();
            json!({ "reply": format!(
                "Hello,\n\nThank you for telling us about the duplicate charge{order}. I have passed it to our billing \
                 specialists, who review every charge correction, and you will hear back within 3 business days.\n\n\
                 Best regards,\nNorthwind Support"
            ) })
        }
        "review" => json!({ "approved": true, "notes": [] }),
        "agent" => json!({ "reply": "Hello,\n\nThank you for getting in touch. I have looked into your request and a \
             specialist will follow up within 3 business days if anything else is needed.\n\nBest regards,\nNorthwind Support" }),
        _ => json!({}),
    }
}

fn completion(model: &str, content: &str) -> Value {
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120 }
    })
}

fn error(status: u16, message: &str, retry_after: Option<u64>) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json")
        .body(
            json!({ "error": { "message": message, "type": "fake_error", "param": null, "code": null } }).to_string(),
        );
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    response
}

/// What the real API refuses in a tool-calling request: a function that is not strict or whose
/// parameters break strict mode, parallel calls, a `tool` message answering no earlier call.
fn tool_request_problems(body: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for tool in body["tools"].as_array().into_iter().flatten() {
        let name = tool["function"]["name"].as_str().unwrap_or("?");
        if tool["type"] != "function" || tool["function"]["strict"] != true {
            problems.push(format!("tool `{name}` is not a strict function"));
        }
        for violation in strict_violations(&tool["function"]["parameters"]) {
            problems.push(format!("Invalid schema for function '{name}': {violation}"));
        }
    }
    if body.get("tools").is_some() && body["parallel_tool_calls"] != false {
        problems.push("this stand-in expects parallel_tool_calls: false".into());
    }
    let mut asked: Vec<String> = Vec::new();
    for message in body["messages"].as_array().into_iter().flatten() {
        for call in message["tool_calls"].as_array().into_iter().flatten() {
            asked.extend(call["id"].as_str().map(str::to_owned));
        }
        if message["role"] == "tool" {
            let id = message["tool_call_id"].as_str().unwrap_or_default();
            if !asked.iter().any(|a| a == id) {
                problems.push(format!(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceding message with 'tool_calls' ({id})"
                ));
            }
        }
    }
    problems
}

/// A response proposing one call of `name` with `arguments` (JSON text).
fn tool_call_response(model: &str, body: &Value, name: &str, arguments: &str) -> Response {
    Response::builder()
        .content_type("application/json")
        .body(tool_call_completion(model, body, name, arguments).to_string())
}

/// The chat completion of such a response: `tool_calls` with an id `call_<n>` (repeating
/// across conversations, as providers' ids do) and `finish_reason: tool_calls`.
fn tool_call_completion(model: &str, body: &Value, name: &str, arguments: &str) -> Value {
    let earlier = body["messages"]
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m.get("tool_calls").is_some()).count());
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": format!("call_{}", earlier + 1),
                    "type": "function",
                    "function": { "name": name, "arguments": arguments },
                }],
            },
            "finish_reason": "tool_calls",
        }],
        "usage": { "prompt_tokens": 150, "completion_tokens": 15, "total_tokens": 165 }
    })
}

#[handler]
async fn completions(shared: Data<&Arc<Shared>>, headers: &HeaderMap, Json(body): Json<Value>) -> Response {
    let step = match body["response_format"]["json_schema"]["name"].as_str() {
        Some(name) => name.to_owned(),
        None if body.get("response_format").is_none() => "agent".to_owned(),
        None => String::new(),
    };
    shared.calls.lock().unwrap().push(LlmCall {
        step: step.clone(),
        body: body.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    let schema = &body["response_format"]["json_schema"];
    if step == "agent" {
        let problems = tool_request_problems(&body);
        if !problems.is_empty() {
            return error(400, &problems.join("; "), None);
        }
    } else if schema["strict"] != true {
        return error(400, "this stand-in expects strict structured outputs", None);
    }
    let violations = if step == "agent" {
        Vec::new()
    } else {
        strict_violations(&schema["schema"])
    };
    if !violations.is_empty() {
        return error(
            400,
            &format!("Invalid schema for response_format: {}", violations.join("; ")),
            None,
        );
    }
    let latency = *shared.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let model = body["model"].as_str().unwrap_or("unknown").to_owned();
    let scripted = shared
        .scripts
        .lock()
        .unwrap()
        .get_mut(&step)
        .and_then(VecDeque::pop_front);
    let content = match scripted {
        None => default_answer(&step, &body).to_string(),
        Some(Reply::Json(value)) => value.to_string(),
        Some(Reply::Content(text)) => text,
        Some(Reply::Status(status, retry_after)) => return error(status, "scripted failure", retry_after),
        Some(Reply::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            default_answer(&step, &body).to_string()
        }
        Some(Reply::ToolCall(name, arguments)) => {
            return tool_call_response(&model, &body, &name, &arguments.to_string());
        }
        Some(Reply::ToolCallText(name, arguments)) => return tool_call_response(&model, &body, &name, &arguments),
    };
    // The agent's default answer is its reply, as text.
    let content = match (step.as_str(), serde_json::from_str::<Value>(&content)) {
        ("agent", Ok(Value::Object(answer))) => answer
            .get("reply")
            .and_then(Value::as_str)
            .map_or(content.clone(), str::to_owned),
        _ => content,
    };
    Response::builder()
        .content_type("application/json")
        .body(completion(&model, &content).to_string())
}
