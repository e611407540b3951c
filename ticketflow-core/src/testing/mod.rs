//! Test support (feature `testing`): the store conformance suite, fresh test databases, and
//! stand-ins for outside services that speak their real protocols on loopback (an LLM,
//! GitHub).

pub mod database;
mod fake_github;
mod fake_llm;
mod loopback;
pub mod store;

pub use fake_github::{FakeGitHub, IssueRequest};
pub use fake_llm::{FakeLlm, LlmCall, Reply};
