//! `EMAIL_PROVIDER=mailgun`: Mailgun's messages API (`POST {base}/v3/{domain}/messages`, basic
//! auth `api:<key>`, a form; 200 when queued). Custom headers go as `h:` fields.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::{DeliveryError, Handed, MailTransport, http_client, http_outcome, unanswered};
use crate::email::OutgoingEmail;

/// Mailgun's public API (its EU region is `https://api.eu.mailgun.net`).
pub const MAILGUN_BASE_URL: &str = "https://api.mailgun.net";

/// A Mailgun client for one sending domain.
#[derive(Debug, Clone)]
pub struct MailgunTransport {
    client: reqwest::Client,
    url: String,
    api_key: SecretString,
}

impl MailgunTransport {
    /// A client for `domain` at `base_url` (`MAILGUN_BASE_URL`), each request within
    /// `timeout`.
    pub fn new(base_url: &str, domain: &str, api_key: SecretString, timeout: Duration) -> Result<Self, DeliveryError> {
        let mut url = reqwest::Url::parse(base_url.trim_end_matches('/'))
            .map_err(|e| DeliveryError::Permanent(format!("MAILGUN_BASE_URL is not a URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| DeliveryError::Permanent("MAILGUN_BASE_URL cannot have paths".into()))?
            .pop_if_empty()
            .extend(["v3", domain, "messages"]);
        Ok(Self {
            client: http_client(timeout)?,
            url: url.to_string(),
            api_key,
        })
    }

    /// The form fields, as Mailgun documents them.
    pub fn fields(email: &OutgoingEmail) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("from", email.from_header()),
            ("to", email.to.clone()),
            ("subject", email.subject.clone()),
            ("text", email.text.clone()),
            ("html", email.html.clone()),
            ("h:Reply-To", email.reply_to.clone()),
            ("h:Message-Id", email.message_id.clone()),
        ];
        if let Some(id) = &email.in_reply_to {
            fields.push(("h:In-Reply-To", id.clone()));
        }
        if let Some(references) = email.references_header() {
            fields.push(("h:References", references));
        }
        if email.auto_submitted {
            fields.push(("h:Auto-Submitted", "auto-replied".into()));
        }
        fields
    }
}

#[async_trait]
impl MailTransport for MailgunTransport {
    fn provider(&self) -> &'static str {
        "mailgun"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<Handed, DeliveryError> {
        let response = self
            .client
            .post(&self.url)
            .basic_auth("api", Some(self.api_key.expose_secret()))
            .form(&Self::fields(email))
            .send()
            .await
            .map_err(|e| unanswered("Mailgun", &e))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        http_outcome("Mailgun", status, &body)
    }
}
