//! Where the LLM is and how patiently to talk to it.

use std::fmt;
use std::time::Duration;

/// Settings of the OpenAI-compatible engine (`OPENAI_*`, `LLM_TIMEOUT_SECONDS`).
#[derive(Clone)]
pub struct LlmConfig {
    /// The API's base URL, up to and including `/v1` (OpenAI, Azure-style gateways, vLLM,
    /// Ollama, llama.cpp servers...).
    pub base_url: String,
    /// The bearer token. Never printed: `Debug` redacts it.
    pub api_key: String,
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
            api_key: String::new(),
            model: "gpt-4o-mini".into(),
            timeout: Duration::from_secs(30),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"[redacted]")
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl LlmConfig {
    /// The engine's settings from the environment, or `None` when `OPENAI_API_KEY` is unset or
    /// empty (the offline engine is then the default). A malformed `LLM_TIMEOUT_SECONDS` is an
    /// error naming it.
    pub fn from_env() -> Result<Option<Self>, String> {
        let Some(api_key) = std::env::var("OPENAI_API_KEY").ok().filter(|k| !k.trim().is_empty()) else {
            return Ok(None);
        };
        let mut config = Self {
            api_key,
            ..Self::default()
        };
        if let Ok(url) = std::env::var("OPENAI_BASE_URL") {
            config.base_url = url.trim_end_matches('/').to_owned();
        }
        if let Ok(model) = std::env::var("OPENAI_MODEL") {
            config.model = model;
        }
        if let Ok(seconds) = std::env::var("LLM_TIMEOUT_SECONDS") {
            let seconds: f64 = seconds
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or_else(|| format!("LLM_TIMEOUT_SECONDS must be a positive number of seconds, got {seconds:?}"))?;
            config.timeout = Duration::from_secs_f64(seconds);
        }
        Ok(Some(config))
    }
}
