//! The six steps as graph nodes, one per file.

mod classify;
mod draft;
mod extract;
mod finalize;
mod research;
mod review;

pub use classify::Classify;
pub use draft::DraftReply;
pub use extract::Extract;
pub use finalize::Finalize;
pub use research::Research;
pub use review::ReviewDraft;

/// Step names, as they appear in checkpoints, events and metrics.
pub mod names {
    /// Picks the category.
    pub const CLASSIFY: &str = "classify";
    /// Extracts the entities.
    pub const EXTRACT: &str = "extract";
    /// Searches the knowledge base and the customer's history.
    pub const RESEARCH: &str = "research";
    /// Writes a reply.
    pub const DRAFT: &str = "draft";
    /// Checks the reply; may send it back.
    pub const REVIEW: &str = "review";
    /// Produces the final response.
    pub const FINALIZE: &str = "finalize";
    /// All six, in order.
    pub const ALL: [&str; 6] = [CLASSIFY, EXTRACT, RESEARCH, DRAFT, REVIEW, FINALIZE];
}

use ticketflow_graph::NodeError;

use crate::EngineError;

fn engine_error(error: EngineError) -> NodeError {
    NodeError::new(error)
}

/// A span for a step's engine call; [`record_engine`] fills in which engine answered.
fn step_span(step: &'static str) -> tracing::Span {
    tracing::info_span!(
        "step",
        step,
        engine = tracing::field::Empty,
        model = tracing::field::Empty,
        fallback = tracing::field::Empty,
        prompt_tokens = tracing::field::Empty,
        completion_tokens = tracing::field::Empty,
    )
}

/// Records the engine, model and tokens of a step on its span (OpenTelemetry attributes).
fn record_engine(span: &tracing::Span, used: &crate::EngineUse) {
    span.record("engine", used.engine.as_str());
    if let Some(model) = &used.model {
        span.record("model", model.as_str());
    }
    span.record("fallback", used.fallback);
    if let Some(tokens) = used.tokens {
        span.record("prompt_tokens", tokens.prompt);
        span.record("completion_tokens", tokens.completion);
    }
}
