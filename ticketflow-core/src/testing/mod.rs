//! Test support (feature `testing`): the store conformance suite, fresh test databases, and a
//! stand-in LLM server.

pub mod database;
mod fake_llm;
pub mod store;

pub use fake_llm::{FakeLlm, LlmCall, Reply};
