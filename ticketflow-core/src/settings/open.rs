//! Starting up from settings: the store opened (and migrated), with errors that name the
//! setting and never show a password.

use std::sync::Arc;

use secrecy::ExposeSecret;

use super::{Settings, SettingsError};
use crate::KbError;
use crate::store::{self, Store, StoreError, redact_url};
use crate::telemetry::TelemetryError;

/// Why a binary could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The settings are invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The database could not be opened.
    #[error("cannot open the database (DATABASE_URL={url}): {source}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// Why.
        source: StoreError,
    },
    /// The migrations failed.
    #[error("migration failed (DATABASE_URL={url}): {source}")]
    Migrate {
        /// The URL, password redacted.
        url: String,
        /// Why.
        source: StoreError,
    },
    /// The knowledge base could not be loaded.
    #[error("cannot load the knowledge base (KB_DIR): {0}")]
    KnowledgeBase(#[source] KbError),
    /// The tools could not be set up (`COMMERCE_API_URL`, `GITHUB_*`).
    #[error("cannot set up the tools: {0}")]
    Tools(String),
    /// The engine could not be built.
    #[error("cannot start the LLM engine (OPENAI_*): {0}")]
    Engine(String),
    /// The mail provider could not be set up (`EMAIL_*`, `SMTP_URL`, `SENDGRID_*`,
    /// `MAILGUN_*`).
    #[error("cannot set up e-mail delivery: {0}")]
    Email(String),
    /// The webhooks could not be set up (`WEBHOOK_*`).
    #[error("cannot set up the webhooks: {0}")]
    Webhooks(String),
    /// Logging, tracing or metrics could not be set up.
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
}

impl Settings {
    /// Opens the store `DATABASE_URL` names (`default` when it is unset; `None`: required),
    /// applying the migrations first when `AUTO_MIGRATE` is on.
    pub async fn open_store(&self, default: Option<&str>) -> Result<Arc<dyn Store>, StartError> {
        let store = self.connect_store(default).await?;
        if self.auto_migrate {
            self.migrate(store.as_ref(), default).await?;
        }
        Ok(store)
    }

    /// Opens the store and applies the migrations, whatever `AUTO_MIGRATE` says.
    pub async fn migrate_store(&self, default: Option<&str>) -> Result<Arc<dyn Store>, StartError> {
        let store = self.connect_store(default).await?;
        self.migrate(store.as_ref(), default).await?;
        Ok(store)
    }

    async fn connect_store(&self, default: Option<&str>) -> Result<Arc<dyn Store>, StartError> {
        let url = self.required_database_url(default)?;
        store::connect(&url, &self.store_options())
            .await
            .map_err(|source| StartError::Connect {
                url: redact_url(&url),
                source,
            })
    }

    async fn migrate(&self, store: &dyn Store, default: Option<&str>) -> Result<(), StartError> {
        store.migrate().await.map_err(|source| StartError::Migrate {
            url: redact_url(&self.required_database_url(default).unwrap_or_default()),
            source,
        })
    }

    fn required_database_url(&self, default: Option<&str>) -> Result<String, SettingsError> {
        match (&self.database_url, default) {
            (Some(url), _) => Ok(url.expose_secret().to_owned()),
            (None, Some(default)) => Ok(default.to_owned()),
            (None, None) => Err(SettingsError::Missing("DATABASE_URL")),
        }
    }
}

impl Settings {
    /// The mail relay `EMAIL_PROVIDER` asks for, delivering `store`'s queued e-mail.
    pub fn mail_relay(&self, store: Arc<dyn store::DeliveryStore>) -> Result<crate::processing::MailRelay, StartError> {
        use crate::email::transport::{self, EmailProvider, MailTransport};
        let timeout = self.email_send_timeout_seconds.duration();
        let unusable = |e: transport::DeliveryError| StartError::Email(e.to_string());
        let missing = |name: &str| StartError::Email(format!("{name} is required by EMAIL_PROVIDER"));
        let transport: Arc<dyn MailTransport> = match self.email_provider {
            EmailProvider::Log => Arc::new(transport::LogTransport),
            #[cfg(feature = "smtp")]
            EmailProvider::Smtp => {
                let url = self.smtp_url.as_ref().ok_or_else(|| missing("SMTP_URL"))?;
                Arc::new(transport::SmtpTransport::new(url.expose_secret(), timeout).map_err(unusable)?)
            }
            #[cfg(feature = "http")]
            EmailProvider::Sendgrid => {
                let key = self
                    .sendgrid_api_key
                    .clone()
                    .ok_or_else(|| missing("SENDGRID_API_KEY"))?;
                Arc::new(transport::SendgridTransport::new(&self.sendgrid_base_url, key, timeout).map_err(unusable)?)
            }
            #[cfg(feature = "http")]
            EmailProvider::Mailgun => {
                let key = self.mailgun_api_key.clone().ok_or_else(|| missing("MAILGUN_API_KEY"))?;
                let domain = self
                    .mailgun_domain
                    .as_deref()
                    .ok_or_else(|| missing("MAILGUN_DOMAIN"))?;
                Arc::new(
                    transport::MailgunTransport::new(&self.mailgun_base_url, domain, key, timeout).map_err(unusable)?,
                )
            }
            #[allow(unreachable_patterns)]
            other => {
                return Err(StartError::Email(format!(
                    "EMAIL_PROVIDER={other:?} is not built into this binary"
                )));
            }
        };
        let sender = crate::email::Sender::parse(&self.email_from, self.email_domain.as_deref())
            .map_err(|e| StartError::Email(format!("EMAIL_FROM {}", e.message)))?;
        let mut relay = crate::processing::MailRelay::new(store, transport, sender);
        relay.max_attempts = self.email_max_attempts;
        relay.backoff = self.email_retry_seconds.duration();
        relay.attempt_timeout = timeout;
        Ok(relay)
    }

    /// Registers `WEBHOOK_URLS` as the endpoints that get new events, and returns the relay
    /// that delivers them (`None` when there are none; what is already queued then waits).
    #[cfg(feature = "http")]
    pub async fn webhook_relay(
        &self,
        store: Arc<dyn store::Store>,
    ) -> Result<Option<crate::processing::WebhookRelay>, StartError> {
        let endpoints = self.webhook_endpoints();
        for url in &endpoints {
            crate::webhooks::endpoint_url(url).map_err(|e| StartError::Webhooks(format!("WEBHOOK_URLS: {e}")))?;
        }
        store
            .register_webhook_endpoints(&endpoints)
            .await
            .map_err(|e| StartError::Webhooks(format!("cannot register WEBHOOK_URLS: {e}")))?;
        if endpoints.is_empty() {
            return Ok(None);
        }
        let secret = self
            .webhook_secret
            .as_ref()
            .ok_or_else(|| StartError::Webhooks("WEBHOOK_SECRET is required with WEBHOOK_URLS".into()))?;
        let secret = crate::webhooks::WebhookSecret::parse(secret.expose_secret())
            .map_err(|e| StartError::Webhooks(e.to_string()))?;
        let timeout = self.webhook_timeout_seconds.duration();
        let sender = crate::webhooks::WebhookSender::new(secret, timeout)
            .map_err(|e| StartError::Webhooks(format!("cannot build the HTTP client: {e}")))?;
        let store: Arc<dyn store::WebhookStore> = store;
        let mut relay = crate::processing::WebhookRelay::new(store, sender, timeout);
        relay.retry_window = std::time::Duration::from_secs_f64(self.webhook_retry_hours * 3600.0);
        relay.backoff = self.webhook_retry_seconds.duration();
        relay.max_backoff = self.webhook_max_retry_seconds.duration().max(relay.backoff);
        Ok(Some(relay))
    }
}
