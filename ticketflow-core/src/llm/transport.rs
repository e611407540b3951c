//! The HTTP transport under async-openai, and the one retry layer.
//!
//! async-openai's default executor retries 429s by itself; replacing it with this service keeps
//! exactly one retry layer, the one here, which sees status codes and `Retry-After` headers
//! (the client's error type does not carry headers).

use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use backon::BackoffBuilder;
use reqwest::StatusCode;

use super::LlmConfig;

tokio::task_local! {
    /// Retries made by [`send`] within a [`counting_retries`] scope.
    static RETRIES: std::cell::Cell<u32>;
}

/// Runs `work`, counting the transient failures [`send`] retried inside it (the client calls
/// the transport within the same task, so a task-local reaches it without new plumbing).
pub(crate) async fn counting_retries<F: std::future::Future>(work: F) -> (F::Output, u32) {
    RETRIES
        .scope(std::cell::Cell::new(0), async {
            let output = work.await;
            (output, RETRIES.with(std::cell::Cell::get))
        })
        .await
}

/// Whether a status is worth another attempt: timeouts, rate limits and server errors.
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Whether a transport error is worth another attempt: it never reached a response.
fn retryable_error(error: &reqwest::Error) -> bool {
    error.is_timeout() || error.is_connect() || error.is_request() || error.is_body()
}

/// `Retry-After` in seconds (the HTTP-date form is rare from LLM services and ignored).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Sends a request, retrying transient failures with exponential backoff (jittered, capped),
/// or after the server's `Retry-After` (capped by the same limit) when it gives one. The last
/// response or error is returned as is when attempts run out.
pub(crate) async fn send(
    client: &reqwest::Client,
    config: &LlmConfig,
    factory: HttpRequestFactory,
) -> Result<reqwest::Response, OpenAIError> {
    let mut delays = backon::ExponentialBuilder::default()
        .with_min_delay(config.initial_backoff)
        .with_max_delay(config.max_backoff)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(config.max_attempts.saturating_sub(1) as usize)
        .build();
    let mut attempt = 1;
    loop {
        let request = factory.build().await?;
        let outcome = client.execute(request).await;
        let wait = match &outcome {
            Ok(response) if retryable_status(response.status()) => {
                let server = retry_after(response);
                delays
                    .next()
                    .map(|backoff| server.map_or(backoff, |s| s.min(config.max_backoff)))
            }
            Err(error) if retryable_error(error) => delays.next(),
            _ => None,
        };
        match wait {
            Some(delay) => {
                tracing::warn!(
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    outcome = %outcome.as_ref().map_or_else(|e| e.to_string(), |r| r.status().to_string()),
                    "LLM call failed, retrying"
                );
                attempt += 1;
                let _ = RETRIES.try_with(|retries| retries.set(retries.get() + 1));
                tokio::time::sleep(delay).await;
            }
            None => return outcome.map_err(OpenAIError::Reqwest),
        }
    }
}
