//! `POST /webhooks/email/inbound/{sendgrid|mailgun|postmark|generic|raw}`: e-mail in, from
//! each provider's own payload, authenticated, threaded into conversations.
//!
//! Every provider's payload becomes one [`InboundEmail`]; a payload that cannot be read is a
//! 400 or 422 naming the part, never a 500; a database that is down is a 503, so the
//! provider delivers again (and the same Message-ID again adds nothing).

mod auth;
mod fields;
mod generic;
mod mailgun;
mod postmark;
mod raw;
mod sendgrid;

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response};
use secrecy::SecretString;
use serde::Serialize;
use ticketflow_core::email::{EmailError, InboundEmail, receive};
use ticketflow_core::processing::OutboxRelay;
use ticketflow_core::store::{Arrival, Store, StoreError};
use uuid::Uuid;

use crate::ApiError;
use crate::error::body;

/// `EMAIL_MAX_BYTES`' default: 10 MB.
pub const DEFAULT_EMAIL_MAX_BYTES: usize = 10 * 1024 * 1024;

/// How inbound e-mail is accepted: the providers' secrets and the support domain.
#[derive(Clone, Default)]
pub struct EmailIntake {
    /// The basic-auth password of the SendGrid, Postmark, generic and raw webhooks
    /// (`EMAIL_WEBHOOK_TOKEN`; unset: they answer 503).
    pub webhook_token: Option<SecretString>,
    /// Mailgun's webhook signing key (`MAILGUN_WEBHOOK_SIGNING_KEY`; unset: 503).
    pub mailgun_signing_key: Option<SecretString>,
    /// The support address's domain, for plus-addresses (`EMAIL_DOMAIN`).
    pub domain: Option<String>,
}

impl std::fmt::Debug for EmailIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailIntake")
            .field("webhook_token", &self.webhook_token.as_ref().map(|_| "***"))
            .field("mailgun_signing_key", &self.mailgun_signing_key.as_ref().map(|_| "***"))
            .field("domain", &self.domain)
            .finish()
    }
}

/// The providers, by the path segment that names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    SendGrid,
    Mailgun,
    Postmark,
    Generic,
    Raw,
}

impl Provider {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "sendgrid" => Provider::SendGrid,
            "mailgun" => Provider::Mailgun,
            "postmark" => Provider::Postmark,
            "generic" => Provider::Generic,
            "raw" => Provider::Raw,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Provider::SendGrid => "sendgrid",
            Provider::Mailgun => "mailgun",
            Provider::Postmark => "postmark",
            Provider::Generic => "generic",
            Provider::Raw => "raw",
        }
    }
}

/// What a webhook answers once the message is stored.
#[derive(Debug, Serialize)]
struct Accepted {
    ticket_id: Uuid,
    status: &'static str,
    message_id: String,
    /// True when the message joined an existing conversation.
    threaded: bool,
    /// What it did: `created`, `reopened`, `retried`, `appended`, `duplicate` or `automatic`.
    arrival: Arrival,
}

/// The webhook endpoint (mounted at `/webhooks/email/inbound/:provider`).
pub(crate) struct InboundEndpoint {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) relay: Option<OutboxRelay>,
    pub(crate) intake: EmailIntake,
}

impl Endpoint for InboundEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if req.method() != poem::http::Method::POST {
            return Err(poem::Error::from_status(poem::http::StatusCode::METHOD_NOT_ALLOWED));
        }
        let name = req.uri().path().rsplit('/').next().unwrap_or_default().to_owned();
        let mut response = match self.accept(&name, req).await {
            Ok(accepted) => poem::web::Json(accepted).into_response(),
            Err(error) => error.into_response(),
        };
        // The metrics' route label, as the OpenAPI operations name theirs.
        response.set_data(poem_openapi::OperationId("receive_email"));
        Ok(response)
    }
}

fn email_error(error: EmailError) -> ApiError {
    let code = if error.malformed {
        "malformed_email"
    } else {
        "invalid_email"
    };
    let json = body(code, error.to_string(), Some(error.field.clone()));
    if error.malformed {
        ApiError::BadRequest(json)
    } else {
        ApiError::Unprocessable(json)
    }
}

fn not_configured(provider: Provider, setting: &str) -> ApiError {
    ApiError::Unavailable(body(
        "email_not_configured",
        format!("the {} webhook is not configured: set {setting}", provider.as_str()),
        None,
    ))
}

impl InboundEndpoint {
    async fn accept(&self, name: &str, req: Request) -> Result<Accepted, ApiError> {
        let provider = Provider::named(name).ok_or_else(|| {
            ApiError::NotFound(body(
                "not_found",
                format!("no inbound e-mail provider `{name}`: use sendgrid, mailgun, postmark, generic or raw"),
                None,
            ))
        })?;
        let email = match provider {
            Provider::Mailgun => {
                let key = self
                    .intake
                    .mailgun_signing_key
                    .as_ref()
                    .ok_or_else(|| not_configured(provider, "MAILGUN_WEBHOOK_SIGNING_KEY"))?;
                let fields = fields::Fields::read(req).await.map_err(email_error)?;
                auth::mailgun_signature(self.store.as_ref(), key, &fields).await?;
                mailgun::parse(&fields)
            }
            _ => {
                let token = self
                    .intake
                    .webhook_token
                    .as_ref()
                    .ok_or_else(|| not_configured(provider, "EMAIL_WEBHOOK_TOKEN"))?;
                auth::basic(&req, token)?;
                match provider {
                    Provider::SendGrid => sendgrid::parse(&fields::Fields::read(req).await.map_err(email_error)?),
                    Provider::Postmark => postmark::parse(&read_bytes(req).await?),
                    Provider::Generic => generic::parse(&read_bytes(req).await?),
                    _ => raw::parse(&read_bytes(req).await?),
                }
            }
        }
        .map_err(email_error)?;
        self.store_email(email).await
    }

    async fn store_email(&self, email: InboundEmail) -> Result<Accepted, ApiError> {
        let email = email.sanitized();
        let received = receive(self.store.as_ref(), &email, self.intake.domain.as_deref())
            .await
            .map_err(stored_error)?;
        tracing::info!(
            ticket_id = %received.ticket.id,
            provider = %email.provider,
            arrival = ?received.arrival,
            "e-mail received"
        );
        metrics::counter!("emails_received_total", "provider" => email.provider.clone()).increment(1);
        if (matches!(received.arrival, Arrival::Created) || received.arrival.starts_turn())
            && let Some(relay) = &self.relay
        {
            relay.wake();
        }
        // Any message but the one that started the ticket joined a conversation.
        let threaded =
            received.ticket.metadata.get("message_id").and_then(|v| v.as_str()) != Some(received.message_id.as_str());
        Ok(Accepted {
            ticket_id: received.ticket.id,
            status: received.ticket.status.as_str(),
            message_id: received.message_id,
            threaded,
            arrival: received.arrival,
        })
    }
}

/// A store failure as a webhook answers it: a field the store refuses is a 422; anything
/// else is a 503, so that the provider delivers the message again rather than drop it.
fn stored_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Validation { .. } => error.into(),
        other => {
            tracing::warn!(error = %other, "inbound e-mail not stored: the provider will retry");
            ApiError::Unavailable(body(
                "database_unavailable",
                "the message could not be stored; deliver it again later",
                None,
            ))
        }
    }
}

/// The whole body (the edge has already held it to `EMAIL_MAX_BYTES`).
async fn read_bytes(mut req: Request) -> Result<Vec<u8>, ApiError> {
    req.take_body().into_vec().await.map_err(|e| {
        ApiError::BadRequest(body(
            "malformed_email",
            format!("the body could not be read: {e}"),
            None,
        ))
    })
}

/// The status a webhook answers for `error`, for tests of the mapping.
#[cfg(test)]
fn status_of(error: ApiError) -> poem::http::StatusCode {
    error.into_response().status()
}

#[cfg(test)]
mod tests {
    use poem::http::StatusCode;

    use super::*;

    #[test]
    fn unreadable_payloads_are_client_errors_and_outages_are_503() {
        assert_eq!(
            status_of(email_error(EmailError::malformed("message", "x"))),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of(email_error(EmailError::missing("from"))),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let down = StoreError::Unavailable(Box::new(std::io::Error::other("down")));
        assert_eq!(status_of(stored_error(down)), StatusCode::SERVICE_UNAVAILABLE);
    }
}
