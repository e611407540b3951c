//! Where the LLM is and how patiently to talk to it.

use std::time::Duration;

use secrecy::SecretString;

/// Settings of the OpenAI-compatible engine (`OPENAI_*`, `LLM_TIMEOUT_SECONDS`).
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// The API's base URL, up to and including `/v1` (OpenAI, Azure-style gateways, vLLM,
    /// Ollama, llama.cpp servers...).
    pub base_url: String,
    /// The bearer token. Never printed: `Debug` redacts it.
    pub api_key: SecretString,
    /// The model name.
    pub model: String,
    /// The limit for one HTTP attempt.
    pub timeout: Duration,
    /// Attempts per call in all, counting the first (transient failures only).
    pub max_attempts: u32,
    /// The first wait between attempts; doubles each time.
    pub initial_backoff: Duration,
    /// The longest wait, whether from the backoff or from a `Retry-After` header.
    pub max_backoff: Duration,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".into(),
            api_key: SecretString::default(),
            model: "gpt-4o-mini".into(),
            timeout: Duration::from_secs(30),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
        }
    }
}
