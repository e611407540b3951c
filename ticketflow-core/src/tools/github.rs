//! GitHub's issues API, for bug reports (`GITHUB_TOKEN`, `GITHUB_REPO`, `GITHUB_API_URL`).

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use super::{Priority, ToolError};
use crate::store::ToolCall;

/// A repository's issues.
#[derive(Debug, Clone)]
pub struct GitHub {
    client: reqwest::Client,
    api_url: String,
    repo: String,
    token: SecretString,
}

impl GitHub {
    /// Issues of `repo` (`owner/name`) through the API at `api_url` (`https://api.github.com`).
    pub fn new(api_url: &str, repo: &str, token: SecretString) -> Result<Self, ToolError> {
        if repo.split('/').filter(|part| !part.is_empty()).count() != 2 {
            return Err(ToolError::Invalid(format!(
                "GITHUB_REPO must be owner/name, not {repo:?}"
            )));
        }
        crate::telemetry::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("ticketflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ToolError::Invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            api_url: api_url.trim_end_matches('/').to_owned(),
            repo: repo.to_owned(),
            token,
        })
    }

    /// Opens an issue for `call`; returns its address. The body names the ticket and the
    /// call, the issue's stable identity.
    pub async fn open_issue(
        &self,
        call: &ToolCall,
        title: &str,
        description: &str,
        priority: Priority,
    ) -> Result<String, ToolError> {
        let body = serde_json::json!({
            "title": title,
            "body": format!(
                "{description}\n\n---\nReported by ticketflow for ticket `{}` (tool call `{}`).",
                call.ticket_id, call.call_id
            ),
            "labels": ["bug", format!("priority: {}", priority.as_str())],
        });
        let response = self
            .client
            .post(format!("{}/repos/{}/issues", self.api_url, self.repo))
            .bearer_auth(self.token.expose_secret())
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .json(&body)
            .send()
            .await
            .map_err(|e| ToolError::Unavailable(format!("GitHub did not answer: {e}")))?;
        let status = response.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ToolError::Unavailable(format!("GitHub answered {status}")));
        }
        if !status.is_success() {
            return Err(ToolError::Refused(format!("GitHub refused the issue: {status}")));
        }
        let issue: serde_json::Value = response
            .json()
            .await
            .map_err(|e| ToolError::Refused(format!("GitHub answered what ticketflow cannot read: {e}")))?;
        issue["html_url"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ToolError::Refused("GitHub's answer has no html_url".into()))
    }
}
