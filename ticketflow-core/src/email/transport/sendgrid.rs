//! `EMAIL_PROVIDER=sendgrid`: SendGrid's v3 mail send (`POST {base}/v3/mail/send`, a bearer
//! API key, a JSON body; 202 when accepted).

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::{DeliveryError, Handed, MailTransport, http_client, http_outcome, unanswered};
use crate::email::OutgoingEmail;

/// SendGrid's public API.
pub const SENDGRID_BASE_URL: &str = "https://api.sendgrid.com";

/// A SendGrid client.
#[derive(Debug, Clone)]
pub struct SendgridTransport {
    client: reqwest::Client,
    url: String,
    api_key: SecretString,
}

impl SendgridTransport {
    /// A client for the API at `base_url` (`SENDGRID_BASE_URL`), each request within `timeout`.
    pub fn new(base_url: &str, api_key: SecretString, timeout: Duration) -> Result<Self, DeliveryError> {
        Ok(Self {
            client: http_client(timeout)?,
            url: format!("{}/v3/mail/send", base_url.trim_end_matches('/')),
            api_key,
        })
    }

    /// The request body, as SendGrid documents it: threading and `Auto-Submitted` go in
    /// `headers`; the text part comes before the HTML one, as SendGrid requires.
    pub fn body(email: &OutgoingEmail) -> Value {
        let mut headers = Map::new();
        headers.insert("Message-ID".into(), json!(email.message_id));
        if let Some(id) = &email.in_reply_to {
            headers.insert("In-Reply-To".into(), json!(id));
        }
        if let Some(references) = email.references_header() {
            headers.insert("References".into(), json!(references));
        }
        if email.auto_submitted {
            headers.insert("Auto-Submitted".into(), json!("auto-replied"));
        }
        let mut from = json!({ "email": email.from });
        if let Some(name) = &email.from_name {
            from["name"] = json!(name);
        }
        json!({
            "personalizations": [{ "to": [{ "email": email.to }] }],
            "from": from,
            "reply_to": { "email": email.reply_to },
            "subject": email.subject,
            "content": [
                { "type": "text/plain", "value": email.text },
                { "type": "text/html", "value": email.html },
            ],
            "headers": headers,
        })
    }
}

#[async_trait]
impl MailTransport for SendgridTransport {
    fn provider(&self) -> &'static str {
        "sendgrid"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<Handed, DeliveryError> {
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(self.api_key.expose_secret())
            .json(&Self::body(email))
            .send()
            .await
            .map_err(|e| unanswered("SendGrid", &e))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        http_outcome("SendGrid", status, &body)
    }
}
