//! The workflow's state: everything the six steps produce, checkpointed after each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::CallStatus;
use crate::{Category, TicketInput, Urgency};

/// The output of the classify step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// The category.
    pub category: Category,
    /// How sure the engine is, 0..=1.
    pub confidence: f32,
    /// Why, in a few words.
    pub rationale: String,
}

/// The output of the extract step. Absent values are `None`, never guessed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entities {
    /// The order id as written, without `#` or the word "order".
    pub order_id: Option<String>,
    /// The product concerned.
    pub product: Option<String>,
    /// What kind of problem or request this is (e.g. `double_charge`, `crash`).
    pub issue_type: Option<String>,
    /// How urgent it is.
    pub urgency: Urgency,
}

/// One knowledge-base article found for the ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleHit {
    /// The article's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its category.
    pub category: Category,
    /// The relevance score (BM25).
    pub score: f32,
    /// The passage of the article that matched best.
    pub passage: String,
}

/// One of the customer's earlier tickets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastTicket {
    /// Its id.
    pub id: String,
    /// Its subject.
    pub subject: String,
    /// Its status.
    pub status: String,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The output of the research step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Research {
    /// The best articles, best first.
    pub articles: Vec<ArticleHit>,
    /// The customer's recent tickets, newest first (empty without a history source).
    pub history: Vec<PastTicket>,
}

/// A reply draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// The reply text.
    pub text: String,
    /// 0 for the first draft, 1 for the first revision, ...
    pub revision: u32,
}

/// The review's verdict on a draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Good to send.
    Approved,
    /// Send back to drafting with the notes.
    NeedsRevision,
}

/// The output of the review step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// The verdict.
    pub verdict: Verdict,
    /// What is wrong (empty when approved).
    pub notes: Vec<String>,
    /// Which draft revision was reviewed.
    pub revision: u32,
    /// Set when the revision budget ran out and the best draft so far was finalized anyway.
    pub revision_limit_reached: bool,
}

/// Which engine produced a step's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineUse {
    /// `offline` or `openai`.
    pub engine: String,
    /// The model, for an LLM engine.
    pub model: Option<String>,
    /// True when an LLM engine gave up on this step and the offline engine answered instead.
    pub fallback: bool,
    /// Tokens used, for an LLM engine.
    pub tokens: Option<TokenUsage>,
    /// Transient LLM failures (timeouts, 429, 5xx) retried within this step before it got its
    /// answer: a fault the ticket rode out, kept visible.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Token counts of LLM calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub prompt: u64,
    /// Completion tokens.
    pub completion: u64,
}

impl TokenUsage {
    /// Both counts added.
    pub fn total(self) -> u64 {
        self.prompt + self.completion
    }
}

/// A tool call the run made, in the order it was proposed: what `actions_taken` lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionTaken {
    /// ticketflow's id for the call.
    pub call_id: uuid::Uuid,
    /// The tool (or `send_reply`, a held reply).
    pub tool: String,
    /// Its arguments.
    pub args: serde_json::Value,
    /// Where it is.
    pub status: CallStatus,
    /// What it returned, or why it was refused or rejected.
    pub result: Option<serde_json::Value>,
    /// The approval request, when the call waited for a person.
    pub approval_id: Option<uuid::Uuid>,
}

impl ActionTaken {
    /// The record of a journaled call.
    pub fn of(call: &crate::store::ToolCall) -> Self {
        Self {
            call_id: call.call_id,
            tool: call.tool.clone(),
            args: call.args.clone(),
            status: call.status,
            result: call.result.clone(),
            approval_id: None,
        }
    }

    /// True for a call that only reads (its result is a fact, not an action).
    pub fn is_lookup(&self) -> bool {
        crate::tools::is_lookup(&self.tool)
    }

    /// The result as `T`, when the call executed and its result is one.
    pub fn output<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        if self.status != CallStatus::Executed {
            return None;
        }
        serde_json::from_value(self.result.clone()?).ok()
    }
}

/// What came before this turn of a ticket's conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// This turn: 1 for the ticket's first message, one more for each reopen.
    pub turn: i32,
    /// The earlier messages, oldest first.
    pub earlier: Vec<Said>,
}

/// One earlier message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Said {
    /// True for the customer's, false for a reply.
    pub by_customer: bool,
    /// What was said (without quoted history).
    pub text: String,
}

/// Why a ticket was handed to a person instead of answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    /// Why.
    pub reason: String,
    /// The escalation record, when `escalate_to_human` made one.
    pub escalation_id: Option<String>,
}

/// Everything the workflow knows about one ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketState {
    /// The input.
    pub ticket: TicketInput,
    /// Set by classify.
    pub classification: Option<Classification>,
    /// Set by extract.
    pub entities: Option<Entities>,
    /// Set by research.
    pub research: Option<Research>,
    /// The current draft.
    pub draft: Option<Draft>,
    /// The latest review.
    pub review: Option<Review>,
    /// Every draft reviewed so far with the number of problems found, so finalize can pick the
    /// best when the revision budget runs out.
    pub reviewed_drafts: Vec<(Draft, usize)>,
    /// Set by finalize.
    pub final_response: Option<String>,
    /// Which engine produced each step, by step name.
    pub engine: BTreeMap<String, EngineUse>,
    /// Every tool call of the run, in order (lookups included).
    #[serde(default)]
    pub actions: Vec<ActionTaken>,
    /// Set when the ticket goes to a person: no automatic reply is sent.
    #[serde(default)]
    pub handoff: Option<Handoff>,
    /// The agent workflow's tool calls, in order, with the LLM's ids for them (empty in the
    /// pipeline).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent: Vec<crate::agent::AgentTurn>,
    /// The turn and what came before it, for a ticket's second and later turns (`None` in
    /// its first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
}

impl TicketState {
    /// A fresh state for `ticket`.
    pub fn new(ticket: TicketInput) -> Self {
        Self {
            ticket,
            classification: None,
            entities: None,
            research: None,
            draft: None,
            review: None,
            reviewed_drafts: Vec::new(),
            final_response: None,
            engine: BTreeMap::new(),
            actions: Vec::new(),
            handoff: None,
            agent: Vec::new(),
            conversation: None,
        }
    }

    /// The conversation's turn this state answers.
    pub fn turn(&self) -> i32 {
        self.conversation.as_ref().map_or(1, |c| c.turn)
    }

    /// True when the latest review sent the draft back.
    pub fn needs_revision(&self) -> bool {
        self.review
            .as_ref()
            .is_some_and(|r| r.verdict == Verdict::NeedsRevision)
    }

    /// The call awaiting a person's decision, if any.
    pub fn held_call(&self) -> Option<&ActionTaken> {
        self.actions.iter().find(|a| a.status == CallStatus::AwaitingApproval)
    }

    /// The reply waiting for a person's approval (a `send_reply` call), if any.
    pub fn held_reply(&self) -> Option<&ActionTaken> {
        self.actions
            .iter()
            .find(|a| a.tool == crate::store::SEND_REPLY && a.status == CallStatus::AwaitingApproval)
    }

    /// True when a call waits for a decision or may run now.
    pub fn has_unsettled_calls(&self) -> bool {
        self.actions
            .iter()
            .any(|a| a.status == CallStatus::AwaitingApproval || a.status.runnable())
    }

    /// The action the run proposed (not a lookup, not the reply), if any.
    pub fn action(&self) -> Option<&ActionTaken> {
        self.actions
            .iter()
            .find(|a| !a.is_lookup() && a.tool != crate::store::SEND_REPLY)
    }

    /// Records a call's latest journal row, appending it if it is new to the run.
    pub fn record_call(&mut self, call: &crate::store::ToolCall) {
        match self.actions.iter_mut().find(|a| a.call_id == call.call_id) {
            Some(known) => {
                known.status = call.status;
                known.result = call.result.clone();
            }
            None => self.actions.push(ActionTaken::of(call)),
        }
    }

    /// Records which engine produced `step`. A step that ran more than once (a draft that was
    /// revised) keeps the sum of its tokens, and stays marked as a fallback if any run fell back.
    pub fn record_engine(&mut self, step: &str, mut used: EngineUse) {
        if let Some(previous) = self.engine.get(step) {
            used.fallback |= previous.fallback;
            used.tokens = match (previous.tokens, used.tokens) {
                (Some(a), Some(b)) => Some(TokenUsage {
                    prompt: a.prompt + b.prompt,
                    completion: a.completion + b.completion,
                }),
                (a, b) => a.or(b),
            };
        }
        self.engine.insert(step.to_owned(), used);
    }

    /// Tokens used over all steps.
    pub fn total_tokens(&self) -> TokenUsage {
        self.engine
            .values()
            .filter_map(|e| e.tokens)
            .fold(TokenUsage::default(), |sum, t| TokenUsage {
                prompt: sum.prompt + t.prompt,
                completion: sum.completion + t.completion,
            })
    }
}
