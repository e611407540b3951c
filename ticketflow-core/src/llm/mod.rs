//! The OpenAI-compatible engine: structured outputs over async-openai, one retry layer, and a
//! graceful fallback to the offline engine when a reply cannot be used; and the agent's planner
//! on the same client, with OpenAI tool calling.

mod config;
mod engine;
mod planner;
mod prompts;
mod transport;

pub use config::LlmConfig;
pub use engine::{ClassifyOutput, DraftOutput, ExtractOutput, LlmEngine, ReviewOutput};
pub use planner::LlmPlanner;
