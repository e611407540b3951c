//! The engine itself: one chat-completions call per step, asking for JSON that matches the
//! step's output type.

use std::sync::Arc;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, ResponseFormat, ResponseFormatJsonSchema,
};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{LlmConfig, prompts, transport};
use crate::engine::{Engine, EngineError, Opinion, Produced};
use crate::schema;
use crate::{Category, Classification, Draft, EngineUse, Entities, OfflineEngine, TicketState, TokenUsage, Urgency};

/// What the classify step asks the model for.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ClassifyOutput {
    /// billing, technical, account or general.
    pub category: Category,
    /// 0 to 1.
    pub confidence: f32,
    /// One sentence.
    pub rationale: String,
}

/// What the extract step asks the model for.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ExtractOutput {
    /// As written, without `#` or "order"; null when absent.
    pub order_id: Option<String>,
    /// The product, or null.
    pub product: Option<String>,
    /// A snake_case label, or null.
    pub issue_type: Option<String>,
    /// low, medium or high.
    pub urgency: Urgency,
}

/// What the draft step asks the model for.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DraftOutput {
    /// The reply to send.
    pub reply: String,
}

/// What the review step asks the model for.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ReviewOutput {
    /// True when the reply can be sent as is.
    pub approved: bool,
    /// What must change (empty when approved).
    pub notes: Vec<String>,
}

/// An OpenAI-compatible chat-completions engine.
#[derive(Clone)]
pub struct LlmEngine {
    pub(super) client: Client<OpenAIConfig>,
    pub(super) config: Arc<LlmConfig>,
}

impl std::fmt::Debug for LlmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmEngine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A step's reply: the parsed value, or `None` when the model's answer could not be used even
/// after the corrective retry; and the tokens spent either way.
struct Asked<T> {
    value: Option<T>,
    tokens: TokenUsage,
    /// Transient failures the transport retried on the way.
    retries: u32,
}

fn engine_error(error: OpenAIError) -> EngineError {
    match error {
        OpenAIError::ApiError(response) => {
            let status = response.status_code;
            match status.as_u16() {
                // The service's own message may echo part of the key: say only what happened.
                401 | 403 => EngineError::Permanent(format!("the LLM service refused the credentials (HTTP {status})")),
                400 | 404 | 422 => EngineError::Permanent(format!("the LLM service rejected the request: {response}")),
                _ => EngineError::Transient(format!("the LLM service failed: {response}")),
            }
        }
        OpenAIError::InvalidArgument(message) => EngineError::Permanent(format!("invalid LLM request: {message}")),
        OpenAIError::Reqwest(error) => EngineError::Transient(format!("the LLM service is unreachable: {error}")),
        other => EngineError::Transient(format!("the LLM call failed: {other}")),
    }
}

/// A call that got no usable response, counted in `llm_calls_total` as unavailable or rejected.
pub(super) fn failed_call(step: &str, error: OpenAIError) -> EngineError {
    let error = engine_error(error);
    let status = if error.is_transient() {
        "unavailable"
    } else {
        "rejected"
    };
    metrics::counter!("llm_calls_total", "step" => step.to_owned(), "status" => status).increment(1);
    error
}

impl LlmEngine {
    /// Builds the engine. Installs rustls' ring crypto provider if none is installed yet.
    pub fn new(config: LlmConfig) -> Result<Self, EngineError> {
        crate::telemetry::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| EngineError::Permanent(format!("cannot build the HTTP client: {e}")))?;
        let config = Arc::new(config);
        let transport_config = config.clone();
        let service = tower::service_fn(move |factory: HttpRequestFactory| {
            let http = http.clone();
            let config = transport_config.clone();
            async move { transport::send(&http, &config, factory).await }
        });
        let client = Client::with_config(
            OpenAIConfig::new()
                .with_api_base(config.base_url.clone())
                .with_api_key(secrecy::ExposeSecret::expose_secret(&config.api_key)),
        )
        .with_http_service(service);
        Ok(Self { client, config })
    }

    pub(super) fn engine_use(&self, fallback: bool, tokens: TokenUsage, retries: u32) -> EngineUse {
        EngineUse {
            engine: "openai".into(),
            model: Some(self.config.model.clone()),
            fallback,
            tokens: Some(tokens),
            retries,
        }
    }

    /// Asks for a `T`; one corrective retry if the reply does not parse.
    async fn ask<T: DeserializeOwned + JsonSchema>(&self, step: &str, prompt: String) -> Result<Asked<T>, EngineError> {
        let (asked, retries) = transport::counting_retries(self.ask_uncounted(step, prompt)).await;
        asked.map(|asked| Asked { retries, ..asked })
    }

    async fn ask_uncounted<T: DeserializeOwned + JsonSchema>(
        &self,
        step: &str,
        prompt: String,
    ) -> Result<Asked<T>, EngineError> {
        let mut messages: Vec<ChatCompletionRequestMessage> = vec![
            ChatCompletionRequestSystemMessage::from(prompts::SYSTEM).into(),
            ChatCompletionRequestUserMessage::from(prompt).into(),
        ];
        let response_format = ResponseFormat::JsonSchema {
            json_schema: ResponseFormatJsonSchema {
                description: None,
                name: step.to_owned(),
                schema: schema::strict_schema::<T>(),
                strict: Some(true),
            },
        };
        let mut tokens = TokenUsage::default();
        for round in 0..2 {
            let request = CreateChatCompletionRequest {
                model: self.config.model.clone(),
                messages: messages.clone(),
                response_format: Some(response_format.clone()),
                temperature: Some(0.0),
                ..Default::default()
            };
            let response = self
                .client
                .chat()
                .create(request)
                .await
                .map_err(|error| failed_call(step, error))?;
            if let Some(usage) = &response.usage {
                tokens.prompt += u64::from(usage.prompt_tokens);
                tokens.completion += u64::from(usage.completion_tokens);
                let model = self.config.model.clone();
                metrics::counter!("llm_tokens_total", "step" => step.to_owned(), "model" => model.clone(), "kind" => "prompt")
                    .increment(u64::from(usage.prompt_tokens));
                metrics::counter!("llm_tokens_total", "step" => step.to_owned(), "model" => model, "kind" => "completion")
                    .increment(u64::from(usage.completion_tokens));
            }
            let message = response.choices.into_iter().next().map(|c| c.message);
            // NUL characters (raw or escaped) are dropped: a model can be talked into emitting
            // them, and PostgreSQL cannot store them in the checkpointed state.
            let content = message
                .as_ref()
                .and_then(|m| m.content.as_deref())
                .unwrap_or_default()
                .replace("\\u0000", "")
                .replace('\0', "");
            let refusal = message.and_then(|m| m.refusal);
            let problem = match (refusal, serde_json::from_str::<T>(&content)) {
                (Some(refusal), _) => format!("the model refused: {refusal}"),
                (None, Ok(value)) => {
                    metrics::counter!("llm_calls_total", "step" => step.to_owned(), "status" => "ok").increment(1);
                    return Ok(Asked {
                        value: Some(value),
                        tokens,
                        retries: 0,
                    });
                }
                (None, Err(error)) => error.to_string(),
            };
            metrics::counter!("llm_calls_total", "step" => step.to_owned(), "status" => "unparsable").increment(1);
            tracing::warn!(step, round, problem = %problem, "LLM reply did not match the schema");
            messages.push(ChatCompletionRequestAssistantMessage::from(content).into());
            messages.push(ChatCompletionRequestUserMessage::from(prompts::corrective(&problem)).into());
        }
        Ok(Asked {
            value: None,
            tokens,
            retries: 0,
        })
    }

    /// The offline engine's answer for a step whose LLM reply was unusable, marked as a
    /// fallback with the tokens the failed attempts cost.
    fn fallback<T>(&self, step: &'static str, offline: Produced<T>, tokens: TokenUsage, retries: u32) -> Produced<T> {
        metrics::counter!("llm_fallbacks_total", "step" => step).increment(1);
        Produced {
            value: offline.value,
            engine: self.engine_use(true, tokens, retries),
        }
    }
}

#[async_trait]
impl Engine for LlmEngine {
    async fn classify(&self, state: &TicketState) -> Result<Produced<Classification>, EngineError> {
        let asked = self.ask::<ClassifyOutput>("classify", prompts::classify(state)).await?;
        match asked.value {
            Some(out) => Ok(Produced {
                value: Classification {
                    category: out.category,
                    confidence: out.confidence.clamp(0.0, 1.0),
                    rationale: out.rationale,
                },
                engine: self.engine_use(false, asked.tokens, asked.retries),
            }),
            None => Ok(self.fallback(
                "classify",
                OfflineEngine.classify(state).await?,
                asked.tokens,
                asked.retries,
            )),
        }
    }

    async fn extract(&self, state: &TicketState) -> Result<Produced<Entities>, EngineError> {
        let asked = self.ask::<ExtractOutput>("extract", prompts::extract(state)).await?;
        match asked.value {
            Some(out) => Ok(Produced {
                value: Entities {
                    order_id: out
                        .order_id
                        .map(|id| id.trim_start_matches('#').to_owned())
                        .filter(|id| !id.is_empty()),
                    product: out.product,
                    issue_type: out.issue_type,
                    urgency: out.urgency,
                },
                engine: self.engine_use(false, asked.tokens, asked.retries),
            }),
            None => Ok(self.fallback(
                "extract",
                OfflineEngine.extract(state).await?,
                asked.tokens,
                asked.retries,
            )),
        }
    }

    async fn draft(&self, state: &TicketState) -> Result<Produced<String>, EngineError> {
        let asked = self.ask::<DraftOutput>("draft", prompts::draft(state)).await?;
        match asked.value {
            Some(out) => Ok(Produced {
                value: out.reply,
                engine: self.engine_use(false, asked.tokens, asked.retries),
            }),
            None => Ok(self.fallback("draft", OfflineEngine.draft(state).await?, asked.tokens, asked.retries)),
        }
    }

    async fn review(&self, state: &TicketState, draft: &Draft) -> Result<Produced<Opinion>, EngineError> {
        let asked = self
            .ask::<ReviewOutput>("review", prompts::review(state, &draft.text))
            .await?;
        match asked.value {
            Some(out) => Ok(Produced {
                value: Opinion {
                    notes: if out.approved { Vec::new() } else { out.notes },
                },
                engine: self.engine_use(false, asked.tokens, asked.retries),
            }),
            None => Ok(self.fallback(
                "review",
                OfflineEngine.review(state, draft).await?,
                asked.tokens,
                asked.retries,
            )),
        }
    }
}
