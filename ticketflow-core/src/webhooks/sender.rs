//! Posting one delivery: signed afresh at each attempt, redirects not followed, cut off after
//! the timeout, and the answer's body never read (a 10 MB answer costs nothing).

use std::time::Duration;

use super::WebhookSecret;
use crate::store::WebhookDelivery;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The receiver answered 2xx.
    Accepted(u16),
    /// The receiver answered something else (a redirect included: it is not followed).
    Refused(u16),
    /// No answer: the connection failed, or the receiver was slower than the timeout.
    Unreachable(String),
}

/// Checks a `WEBHOOK_URLS` entry: an absolute http(s) URL with a host.
pub fn endpoint_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` is not an http(s) URL"));
    }
    Ok(url)
}

/// Posts deliveries.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    http: reqwest::Client,
    secret: WebhookSecret,
    timeout: Duration,
}

impl WebhookSender {
    /// A sender signing with `secret`, giving each attempt at most `timeout`.
    pub fn new(secret: WebhookSecret, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("ticketflow/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, secret, timeout })
    }

    /// One attempt.
    pub async fn send(&self, delivery: &WebhookDelivery) -> Answer {
        let body = serde_json::to_vec(&delivery.body).unwrap_or_default();
        let id = delivery.webhook_id();
        let timestamp = chrono::Utc::now().timestamp();
        let signature = self.secret.sign(&id, timestamp, &body);
        let sent = self
            .http
            .post(&delivery.endpoint)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => Answer::Accepted(response.status().as_u16()),
            Ok(response) => Answer::Refused(response.status().as_u16()),
            Err(error) if error.is_timeout() => {
                Answer::Unreachable(format!("no answer within {} s", self.timeout.as_secs_f64()))
            }
            Err(error) => Answer::Unreachable(format!("cannot reach the receiver: {error}")),
        }
    }
}
