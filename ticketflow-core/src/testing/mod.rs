//! Test support (feature `testing`): a stand-in LLM server.

mod fake_llm;

pub use fake_llm::{FakeLlm, LlmCall, Reply};
