//! The offline engine: deterministic, no network, microseconds per ticket. The default when no
//! LLM is configured, and the fallback when an LLM's answer cannot be used.

mod classify;
mod draft;
mod extract;
mod order_id;
mod text;

pub(crate) use draft::compose;

use async_trait::async_trait;

use crate::engine::{Engine, EngineError, Opinion, Produced};
use crate::{Category, Classification, Draft, EngineUse, Entities, TicketState};

/// Phrase-weighted classification and urgency, pattern-based order ids, template drafting.
/// Its review adds nothing to the policy rules the review step always applies.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineEngine;

impl OfflineEngine {
    /// The engine record for results.
    pub fn engine_use() -> EngineUse {
        EngineUse {
            engine: "offline".to_owned(),
            model: None,
            fallback: false,
            tokens: None,
            retries: 0,
        }
    }

    fn produced<T>(value: T) -> Result<Produced<T>, EngineError> {
        Ok(Produced {
            value,
            engine: Self::engine_use(),
        })
    }

    /// Classifies a ticket directly (no workflow state needed).
    pub fn classify_text(subject: &str, body: &str) -> Classification {
        let (category, confidence) = classify::classify(subject, body);
        Classification {
            category,
            confidence,
            rationale: format!("weighted phrases point to {category}"),
        }
    }

    /// Extracts entities directly, for a ticket of `category`.
    pub fn extract_text(subject: &str, body: &str, category: Category) -> Entities {
        extract::extract(subject, body, category)
    }
}

#[async_trait]
impl Engine for OfflineEngine {
    async fn classify(&self, state: &TicketState) -> Result<Produced<Classification>, EngineError> {
        Self::produced(Self::classify_text(&state.ticket.subject, &state.ticket.body))
    }

    async fn extract(&self, state: &TicketState) -> Result<Produced<Entities>, EngineError> {
        let category = match &state.classification {
            Some(c) => c.category,
            None => classify::classify(&state.ticket.subject, &state.ticket.body).0,
        };
        Self::produced(Self::extract_text(&state.ticket.subject, &state.ticket.body, category))
    }

    async fn draft(&self, state: &TicketState) -> Result<Produced<String>, EngineError> {
        Self::produced(draft::compose(state))
    }

    async fn review(&self, _state: &TicketState, _draft: &Draft) -> Result<Produced<Opinion>, EngineError> {
        Self::produced(Opinion::default())
    }
}
