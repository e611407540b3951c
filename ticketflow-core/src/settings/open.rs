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
