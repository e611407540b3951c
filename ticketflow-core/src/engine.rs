//! The seam between the workflow and whatever does the thinking: the offline engine, or an LLM.

use async_trait::async_trait;

use crate::{Classification, Draft, EngineUse, Entities, TicketState};

/// A step's output and the engine that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Produced<T> {
    /// The output.
    pub value: T,
    /// Who produced it.
    pub engine: EngineUse,
}

/// What an engine thinks of a draft, beyond the policy rules the review step always applies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Opinion {
    /// Problems found (empty: the engine approves).
    pub notes: Vec<String>,
}

/// Why an engine could not produce a step's output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Worth trying again later (timeouts, rate limits, server errors, after the engine's own
    /// retries ran out).
    #[error("engine temporarily unavailable: {0}")]
    Transient(String),
    /// Trying again will not help (rejected credentials, a request the service refuses).
    #[error("engine failed permanently: {0}")]
    Permanent(String),
}

impl EngineError {
    /// True for [`EngineError::Transient`].
    pub fn is_transient(&self) -> bool {
        matches!(self, EngineError::Transient(_))
    }
}

/// The four steps that need judgement. Research (a knowledge-base search) and finalize are the
/// same whatever the engine.
///
/// Each method gets the whole state, so an engine can use anything earlier steps produced.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Picks the ticket's category.
    async fn classify(&self, state: &TicketState) -> Result<Produced<Classification>, EngineError>;
    /// Extracts order id, product, issue type and urgency.
    async fn extract(&self, state: &TicketState) -> Result<Produced<Entities>, EngineError>;
    /// Writes a reply; on a revision, `state.review` holds the notes to address.
    async fn draft(&self, state: &TicketState) -> Result<Produced<String>, EngineError>;
    /// Judges a draft's quality.
    async fn review(&self, state: &TicketState, draft: &Draft) -> Result<Produced<Opinion>, EngineError>;
}
