//! The OpenAI-compatible engine: structured outputs over async-openai, one retry layer, and a
//! graceful fallback to the offline engine when a reply cannot be used.

mod config;
mod engine;
mod prompts;
mod transport;

pub use config::LlmConfig;
pub use engine::{ClassifyOutput, DraftOutput, ExtractOutput, LlmEngine, ReviewOutput};
