//! The binaries' settings, one typed [`Settings`] shared by `ticketflow-api` and
//! `ticketflow-worker` (feature `settings`).
//!
//! Each setting has one name, the environment variable's (`DATABASE_URL`), and is accepted
//! from every source: defaults < a TOML file (`--config` or `TICKETFLOW_CONFIG`; keys in
//! either case) < the environment < command-line flags (`--database-url`). One file can serve
//! both binaries: each uses what is its own, and a key no setting has is an error naming it.
//! Secrets are [`SecretString`]s, printed as `[REDACTED]`. This module never reads the
//! process environment itself: the binaries hand it in.
//!
//! ```
//! use ticketflow_core::settings::{Settings, Sources};
//!
//! let settings = Settings::load(Sources {
//!     env: vec![("MAX_RETRIES".into(), "5".into())],
//!     ..Sources::default()
//! })?;
//! assert_eq!(settings.max_retries, 5);
//! assert_eq!(settings.queue_name, "ticket_processing");
//! # Ok::<(), ticketflow_core::settings::SettingsError>(())
//! ```

mod catalog;
mod flags;
mod load;
mod open;
mod seconds;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use catalog::{Kind, Setting, catalog};
pub use flags::SettingsArgs;
pub use load::{SettingsError, Sources};
pub use open::StartError;
pub use seconds::{Seconds, SecondsError};

use crate::agent::{OfflinePlanner, Planner};
use crate::commerce::{Commerce, StoreCommerce};
use crate::email::transport::EmailProvider;
use crate::money::Money;
use crate::processing::{BackgroundOptions, ProcessorConfig, default_worker_id};
use crate::queue::QueueType;
use crate::steps::ReplyApproval;
use crate::store::Store;
use crate::store::StoreOptions;
use crate::telemetry::{LogFormat, LoggingOptions};
use crate::tools::{ApprovalRules, ToolEnv, Tools};
use crate::{Engine, HistorySource, KbError, KnowledgeBase, OfflineEngine, Workflow, WorkflowKind};

/// Every setting of both binaries. Field names are the settings' names in lower case; the
/// doc comments are the `--help` texts.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// postgres://… (Supabase too) or sqlite://… (created if missing). Default for the API:
    /// sqlite://ticketflow.db; the worker requires it.
    #[schemars(with = "Option<String>")]
    pub database_url: Option<SecretString>,
    /// A direct or session connection for migrations, when DATABASE_URL is a transaction
    /// pooler (Supabase's port 6543, or a URL with pgbouncer=true).
    #[schemars(with = "Option<String>")]
    pub database_migration_url: Option<SecretString>,
    /// A direct or session connection for the live event streams' LISTEN, when DATABASE_URL is
    /// a transaction pooler (which keeps no LISTEN); unset there, the API polls for new events.
    #[schemars(with = "Option<String>")]
    pub database_listen_url: Option<SecretString>,
    /// The PostgreSQL schema the tables live in.
    pub database_schema: String,
    /// Apply migrations at start-up.
    pub auto_migrate: bool,
    /// amqp://user:pass@host:5672/vhost; unset: the embedded mode (in-process queue and
    /// workers).
    #[schemars(with = "Option<String>")]
    pub rabbitmq_url: Option<SecretString>,
    /// The RabbitMQ work queue (<name>.dlx and <name>.dead beside it).
    pub queue_name: String,
    /// quorum or classic (changing it needs a new QUEUE_NAME).
    pub queue_type: QueueType,
    /// Worker: tickets processed at once (and the broker prefetch).
    pub prefetch_count: usize,
    /// Embedded mode: tickets the API's in-process workers process at once.
    pub worker_concurrency: usize,
    /// Retries after the LLM gives up, before a ticket fails for good.
    pub max_retries: u32,
    /// This process's worker id, recorded on leases (default: host name and pid).
    pub worker_id: Option<String>,
    /// Seconds a claimed ticket stays leased without a heartbeat (1 to 3600; renewed every
    /// third).
    pub lease_seconds: u64,
    /// Seconds before a ticket the LLM gave up on is retried; doubles per attempt, up to
    /// 10 minutes.
    pub retry_backoff_seconds: Seconds,
    /// Seconds between sweeps for stranded tickets (pending with no message, or leased by a
    /// crashed worker).
    pub sweep_interval_seconds: Seconds,
    /// Checkpoints kept per ticket once it completes (unset: the whole history).
    pub checkpoint_retention: Option<usize>,
    /// Seconds to let tickets in flight finish after SIGTERM before handing them back.
    pub shutdown_grace_seconds: Seconds,
    /// Where the API listens.
    pub bind_addr: SocketAddr,
    /// Where the worker serves /metrics and /health.
    pub worker_bind_addr: SocketAddr,
    /// Comma-separated bearer keys required on the ticket routes (unset: open).
    #[schemars(with = "Option<String>")]
    pub api_keys: Option<SecretString>,
    /// Ticket creations allowed per client (API key, else IP) per minute (unset: unlimited).
    pub rate_limit_per_minute: Option<NonZeroU32>,
    /// Comma-separated origins allowed by CORS (unset: no CORS).
    pub cors_origins: Vec<String>,
    /// Minutes a sign-in session lasts without use.
    pub session_idle_minutes: NonZeroU32,
    /// Hours a sign-in session lasts at most, however much it is used.
    pub session_max_hours: NonZeroU32,
    /// Sign-in attempts allowed per client address, and per e-mail address, per minute.
    pub login_attempts_per_minute: NonZeroU32,
    /// Trust `X-Forwarded-Proto` from a proxy in front (session cookies are then `Secure`
    /// when it says `https`).
    pub trust_proxy: bool,
    /// The password of HTTP basic auth on the SendGrid, Postmark, generic and raw inbound
    /// e-mail webhooks, any user name (unset: those webhooks answer 503).
    #[schemars(with = "Option<String>")]
    pub email_webhook_token: Option<SecretString>,
    /// Mailgun's HTTP webhook signing key, which checks the Mailgun inbound webhook's
    /// signatures (unset: that webhook answers 503).
    #[schemars(with = "Option<String>")]
    pub mailgun_webhook_signing_key: Option<SecretString>,
    /// The largest inbound e-mail webhook body, in bytes (larger: 413).
    pub email_max_bytes: usize,
    /// The domain of the support address: replies to `support+<ticket id>@EMAIL_DOMAIN`
    /// thread onto that ticket (unset: a plus-address on any domain does).
    pub email_domain: Option<String>,
    /// Who delivers replies: `log` (kept as recorded, not delivered), `smtp`, `sendgrid` or
    /// `mailgun`.
    pub email_provider: EmailProvider,
    /// The From of outgoing mail (`Support <support@example.com>` or a bare address); its
    /// local part makes the Reply-To plus-address.
    pub email_from: String,
    /// The mail server, by lettre's URL rules: `smtp://host:port` plain, `?tls=required` or
    /// `?tls=opportunistic` for STARTTLS, `smtps://host:465` for implicit TLS; credentials as
    /// `smtp://user:password@host` (required by `EMAIL_PROVIDER=smtp`).
    #[schemars(with = "Option<String>")]
    pub smtp_url: Option<SecretString>,
    /// SendGrid's API key (required by `EMAIL_PROVIDER=sendgrid`).
    #[schemars(with = "Option<String>")]
    pub sendgrid_api_key: Option<SecretString>,
    /// SendGrid's API base URL.
    pub sendgrid_base_url: String,
    /// Mailgun's API key (required by `EMAIL_PROVIDER=mailgun`).
    #[schemars(with = "Option<String>")]
    pub mailgun_api_key: Option<SecretString>,
    /// Mailgun's sending domain (required by `EMAIL_PROVIDER=mailgun`).
    pub mailgun_domain: Option<String>,
    /// Mailgun's API base URL (`https://api.eu.mailgun.net` for its EU region).
    pub mailgun_base_url: String,
    /// Attempts to deliver an e-mail before it is marked failed (1 to 100).
    pub email_max_attempts: u32,
    /// Seconds before a failed delivery is tried again; doubles per attempt, up to an hour.
    pub email_retry_seconds: Seconds,
    /// Seconds one delivery attempt may take (connecting, sending, the server's answer).
    pub email_send_timeout_seconds: Seconds,
    /// Automatic replies one address gets per hour, at most; more are kept, not sent.
    pub email_max_replies_per_hour: u32,
    /// Comma-separated http(s) URLs that get the webhooks (ticket.completed, ticket.failed,
    /// ticket.escalated, ticket.awaiting_approval, approval.decided); give every process the
    /// same list.
    pub webhook_urls: Vec<String>,
    /// The webhooks' signing secret: whsec_ and a base64 key (Standard Webhooks). Required
    /// with WEBHOOK_URLS.
    #[schemars(with = "Option<String>")]
    pub webhook_secret: Option<SecretString>,
    /// Hours a webhook is retried before it is marked failed.
    pub webhook_retry_hours: f64,
    /// Seconds before a webhook the receiver did not accept is tried again; doubles per attempt
    /// (with jitter), up to an hour.
    pub webhook_retry_seconds: Seconds,
    /// The longest wait, in seconds, between two attempts of a webhook.
    pub webhook_max_retry_seconds: Seconds,
    /// Seconds a receiver has to answer a webhook.
    pub webhook_timeout_seconds: Seconds,
    /// The key of an OpenAI-compatible service; unset: the offline engine.
    #[schemars(with = "Option<String>")]
    pub openai_api_key: Option<SecretString>,
    /// The service's base URL, up to and including /v1.
    pub openai_base_url: String,
    /// The model.
    pub openai_model: String,
    /// Seconds one LLM HTTP attempt may take.
    pub llm_timeout_seconds: Seconds,
    /// A directory of knowledge-base Markdown articles (unset: the bundled ones).
    pub kb_dir: Option<PathBuf>,
    /// Embedded mode: load the demo customers, products and orders into an empty database at
    /// start-up (distributed mode never does by itself: run `ticketflow-api demo-data`).
    pub demo_data: bool,
    /// A company's own order service (README's commerce contract); unset: the store's own
    /// customers, products and orders.
    pub commerce_api_url: Option<String>,
    /// A bearer token for COMMERCE_API_URL.
    #[schemars(with = "Option<String>")]
    pub commerce_api_token: Option<SecretString>,
    /// A GitHub token that may open issues in GITHUB_REPO (unset: bug reports stay local).
    #[schemars(with = "Option<String>")]
    pub github_token: Option<SecretString>,
    /// The repository bug reports go to, owner/name.
    pub github_repo: Option<String>,
    /// GitHub's API (a GitHub Enterprise server's, say).
    pub github_api_url: String,
    /// Comma-separated tools whose calls always wait for a person (process_refund always
    /// does, unless under AUTO_APPROVE_REFUND_BELOW): reset_password, create_bug_report,
    /// escalate_to_human; the lookups only read and cannot be listed.
    pub approval_required: Vec<String>,
    /// Refunds below this many dollars run without a person's approval (0: every refund waits).
    pub auto_approve_refund_below: Money,
    /// Which replies wait for a person before they are sent: none, actions (those of tickets
    /// that proposed an action) or all.
    pub reply_approval: ReplyApproval,
    /// The company's password reset page; reset e-mails link to it with ?token=….
    pub password_reset_url: String,
    /// Which workflow runs new tickets: pipeline (the six steps) or agent (the tool-using
    /// agent loop).
    pub workflow: WorkflowKind,
    /// The seed's name for WORKFLOW: true is agent, false is pipeline (when both are given they
    /// must agree).
    pub use_agent_workflow: Option<bool>,
    /// The most tool calls one agent run makes before the ticket is handed to a person (1 to 50).
    pub agent_max_steps: u32,
    /// An OTLP/HTTP collector for traces, such as http://localhost:4318 (unset: no export).
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// The log filter (tracing directives, such as info or ticketflow_core=debug).
    pub rust_log: String,
    /// json (one object per line) or pretty.
    pub log_format: LogFormat,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: None,
            database_migration_url: None,
            database_listen_url: None,
            database_schema: StoreOptions::default().schema,
            auto_migrate: true,
            rabbitmq_url: None,
            queue_name: "ticket_processing".into(),
            queue_type: QueueType::Quorum,
            prefetch_count: 8,
            worker_concurrency: 4,
            max_retries: 3,
            worker_id: None,
            lease_seconds: 30,
            retry_backoff_seconds: Seconds::from_secs(5),
            sweep_interval_seconds: Seconds::from_secs(15),
            checkpoint_retention: None,
            shutdown_grace_seconds: Seconds::from_secs(20),
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            worker_bind_addr: SocketAddr::from(([127, 0, 0, 1], 9100)),
            api_keys: None,
            rate_limit_per_minute: None,
            cors_origins: Vec::new(),
            session_idle_minutes: NonZeroU32::MIN.saturating_add(59),
            session_max_hours: NonZeroU32::MIN.saturating_add(11),
            login_attempts_per_minute: NonZeroU32::MIN.saturating_add(9),
            trust_proxy: false,
            email_webhook_token: None,
            mailgun_webhook_signing_key: None,
            email_max_bytes: 10 * 1024 * 1024,
            email_domain: None,
            email_provider: EmailProvider::Log,
            email_from: "Support <support@example.com>".into(),
            smtp_url: None,
            sendgrid_api_key: None,
            sendgrid_base_url: crate::email::transport::SENDGRID_BASE_URL.into(),
            mailgun_api_key: None,
            mailgun_domain: None,
            mailgun_base_url: crate::email::transport::MAILGUN_BASE_URL.into(),
            email_max_attempts: 8,
            webhook_urls: Vec::new(),
            webhook_secret: None,
            webhook_retry_hours: 24.0,
            webhook_retry_seconds: Seconds::from_secs(5),
            webhook_max_retry_seconds: Seconds::from_secs(3600),
            webhook_timeout_seconds: Seconds::from_secs(10),
            email_retry_seconds: Seconds::from_secs(30),
            email_send_timeout_seconds: Seconds::from_secs(30),
            email_max_replies_per_hour: 5,
            openai_api_key: None,
            openai_base_url: "https://api.openai.com/v1".into(),
            openai_model: "gpt-4o-mini".into(),
            llm_timeout_seconds: Seconds::from_secs(30),
            kb_dir: None,
            demo_data: true,
            commerce_api_url: None,
            commerce_api_token: None,
            github_token: None,
            github_repo: None,
            github_api_url: "https://api.github.com".into(),
            approval_required: Vec::new(),
            auto_approve_refund_below: Money::ZERO,
            reply_approval: ReplyApproval::None,
            password_reset_url: "https://example.invalid/reset-password".into(),
            workflow: WorkflowKind::Pipeline,
            use_agent_workflow: None,
            agent_max_steps: crate::DEFAULT_AGENT_MAX_CALLS as u32,
            otel_exporter_otlp_endpoint: None,
            rust_log: "info".into(),
            log_format: LogFormat::Json,
        }
    }
}

/// The embedded default's database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://ticketflow.db";

impl Settings {
    /// Checks what the types alone do not.
    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key: &'static str, message: &str| {
            Err(SettingsError::Invalid {
                key: key.to_owned(),
                source_name: "settings".into(),
                message: message.to_owned(),
            })
        };
        if !(1..=3600).contains(&self.lease_seconds) {
            return invalid("LEASE_SECONDS", "must be 1 to 3600");
        }
        if self.prefetch_count == 0 || self.worker_concurrency == 0 {
            return invalid(
                if self.prefetch_count == 0 {
                    "PREFETCH_COUNT"
                } else {
                    "WORKER_CONCURRENCY"
                },
                "must be at least 1",
            );
        }
        if !(1024..=100 * 1024 * 1024).contains(&self.email_max_bytes) {
            return invalid("EMAIL_MAX_BYTES", "must be 1024 to 104857600");
        }
        if !(1..=100).contains(&self.email_max_attempts) {
            return invalid("EMAIL_MAX_ATTEMPTS", "must be 1 to 100");
        }
        for url in self.webhook_endpoints() {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .unwrap_or("");
            if rest.is_empty() || rest.starts_with(['/', '?', '#']) || url.chars().any(char::is_whitespace) {
                return invalid("WEBHOOK_URLS", &format!("`{url}` is not an http(s) URL"));
            }
        }
        if !self.webhook_endpoints().is_empty() && self.webhook_secret.is_none() {
            return invalid(
                "WEBHOOK_SECRET",
                "is required with WEBHOOK_URLS (whsec_ and a base64 key)",
            );
        }
        if let Some(secret) = &self.webhook_secret
            && let Err(error) = crate::webhooks::WebhookSecret::parse(secret.expose_secret())
        {
            return invalid("WEBHOOK_SECRET", error.0);
        }
        if !(self.webhook_retry_hours > 0.0 && self.webhook_retry_hours <= 24.0 * 30.0) {
            return invalid("WEBHOOK_RETRY_HOURS", "must be more than 0 and at most 720");
        }
        if let Err(error) = crate::email::Sender::parse(&self.email_from, self.email_domain.as_deref()) {
            let key = if error.field == "EMAIL_DOMAIN" {
                "EMAIL_DOMAIN"
            } else {
                "EMAIL_FROM"
            };
            return invalid(key, &error.message);
        }
        let missing = match self.email_provider {
            EmailProvider::Smtp if self.smtp_url.is_none() => Some("SMTP_URL"),
            EmailProvider::Sendgrid if self.sendgrid_api_key.is_none() => Some("SENDGRID_API_KEY"),
            EmailProvider::Mailgun if self.mailgun_api_key.is_none() => Some("MAILGUN_API_KEY"),
            EmailProvider::Mailgun if self.mailgun_domain.is_none() => Some("MAILGUN_DOMAIN"),
            _ => None,
        };
        if let Some(missing) = missing {
            return invalid(missing, "is required by this EMAIL_PROVIDER");
        }
        if self.queue_name.trim().is_empty() {
            return invalid("QUEUE_NAME", "must not be empty");
        }
        if let Some(unknown) = self
            .approval_required
            .iter()
            .find(|tool| !crate::tools::TOOL_NAMES.contains(&tool.as_str()))
        {
            return invalid("APPROVAL_REQUIRED", &format!("`{unknown}` is not a tool"));
        }
        if let Some(lookup) = self.approval_required.iter().find(|tool| crate::tools::is_lookup(tool)) {
            return invalid(
                "APPROVAL_REQUIRED",
                &format!("`{lookup}` only reads; only the tools that act can wait for a person"),
            );
        }
        if self.use_agent_workflow == Some(false) && self.workflow == WorkflowKind::Agent {
            return invalid("USE_AGENT_WORKFLOW", "is false but WORKFLOW is agent: give one of them");
        }
        if !(1..=50).contains(&self.agent_max_steps) {
            return invalid("AGENT_MAX_STEPS", "must be 1 to 50");
        }
        if self.auto_approve_refund_below < Money::ZERO {
            return invalid("AUTO_APPROVE_REFUND_BELOW", "must not be negative");
        }
        if self.github_token.is_some() != self.github_repo.is_some() {
            return invalid("GITHUB_REPO", "GITHUB_TOKEN and GITHUB_REPO go together");
        }
        Ok(())
    }

    /// The webhook endpoints: `WEBHOOK_URLS`, trimmed, blanks dropped.
    pub fn webhook_endpoints(&self) -> Vec<String> {
        self.webhook_urls
            .iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// How [`store::connect`](crate::store::connect) opens the database.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            schema: self.database_schema.clone(),
            migration_url: self
                .database_migration_url
                .as_ref()
                .map(|url| url.expose_secret().to_owned()),
            listen_url: self
                .database_listen_url
                .as_ref()
                .map(|url| url.expose_secret().to_owned()),
        }
    }

    /// The processor's configuration.
    pub fn processor_config(&self) -> ProcessorConfig {
        ProcessorConfig {
            worker_id: self.worker_id.clone().unwrap_or_else(default_worker_id),
            lease: std::time::Duration::from_secs(self.lease_seconds),
            max_retries: self.max_retries,
            retain_checkpoints: self.checkpoint_retention,
            retry_backoff: self.retry_backoff_seconds.duration(),
            max_replies_per_hour: self.email_max_replies_per_hour,
            ..ProcessorConfig::default()
        }
    }

    /// The background tasks' options, with workers processing `concurrency` tickets at once.
    pub fn background_options(&self, concurrency: usize) -> BackgroundOptions {
        BackgroundOptions {
            concurrency,
            sweep_interval: self.sweep_interval_seconds.duration(),
        }
    }

    /// How long tickets in flight may take to finish after a shutdown signal.
    pub fn shutdown_grace(&self) -> std::time::Duration {
        self.shutdown_grace_seconds.duration()
    }

    /// Logs and traces for `service_name`.
    pub fn logging(&self, service_name: &'static str) -> LoggingOptions {
        LoggingOptions {
            format: self.log_format,
            filter: self.rust_log.clone(),
            otlp_endpoint: self
                .otel_exporter_otlp_endpoint
                .clone()
                .filter(|e| !e.trim().is_empty()),
            service_name,
        }
    }

    /// The LLM engine's settings, when `OPENAI_API_KEY` is set.
    #[cfg(feature = "openai")]
    pub fn llm_config(&self) -> Option<crate::llm::LlmConfig> {
        let api_key = self.openai_api_key.clone()?;
        Some(crate::llm::LlmConfig {
            base_url: self.openai_base_url.trim_end_matches('/').to_owned(),
            api_key,
            model: self.openai_model.clone(),
            timeout: self.llm_timeout_seconds.duration(),
            ..crate::llm::LlmConfig::default()
        })
    }

    /// The engine: the LLM when `OPENAI_API_KEY` is set, else the offline engine.
    pub fn engine(&self) -> Result<Arc<dyn Engine>, StartError> {
        if self.openai_api_key.is_none() {
            return Ok(Arc::new(OfflineEngine));
        }
        #[cfg(feature = "openai")]
        {
            let config = self
                .llm_config()
                .ok_or(StartError::Engine("OPENAI_API_KEY is empty".into()))?;
            let engine = crate::llm::LlmEngine::new(config).map_err(|e| StartError::Engine(e.to_string()))?;
            Ok(Arc::new(engine))
        }
        #[cfg(not(feature = "openai"))]
        Err(StartError::Engine(
            "OPENAI_API_KEY is set, but this build has no LLM engine (feature `openai`)".into(),
        ))
    }

    /// The knowledge base: `KB_DIR`'s articles, or the bundled ones.
    pub fn knowledge_base(&self) -> Result<KnowledgeBase, KbError> {
        match &self.kb_dir {
            Some(dir) => KnowledgeBase::from_dir(dir),
            None => KnowledgeBase::bundled(),
        }
    }

    /// The workflow new tickets run on: `WORKFLOW`, or the seed's `USE_AGENT_WORKFLOW`.
    pub fn workflow_kind(&self) -> WorkflowKind {
        match self.use_agent_workflow {
            Some(true) => WorkflowKind::Agent,
            Some(false) => WorkflowKind::Pipeline,
            None => self.workflow,
        }
    }

    /// What picks the agent's moves: the LLM (tool calling) when `OPENAI_API_KEY` is set, else
    /// the offline planner.
    pub fn planner(&self) -> Result<Arc<dyn Planner>, StartError> {
        if self.openai_api_key.is_none() {
            return Ok(Arc::new(OfflinePlanner));
        }
        #[cfg(feature = "openai")]
        {
            let config = self
                .llm_config()
                .ok_or(StartError::Engine("OPENAI_API_KEY is empty".into()))?;
            let planner = crate::llm::LlmPlanner::new(config).map_err(|e| StartError::Engine(e.to_string()))?;
            Ok(Arc::new(planner))
        }
        #[cfg(not(feature = "openai"))]
        Err(StartError::Engine(
            "OPENAI_API_KEY is set, but this build has no LLM engine (feature `openai`)".into(),
        ))
    }

    /// The support workflow on [`engine`](Self::engine) and
    /// [`knowledge_base`](Self::knowledge_base). Over a `store`: with the customer's history
    /// from it, the [`tools`](Self::tools) on it and `REPLY_APPROVAL`; without one, the steps
    /// alone (no history, no tools).
    pub fn workflow(&self, store: Option<Arc<dyn Store>>) -> Result<Workflow, StartError> {
        let kb = Arc::new(self.knowledge_base().map_err(StartError::KnowledgeBase)?);
        let builder = Workflow::builder(self.engine()?, kb.clone())
            .kind(self.workflow_kind())
            .planner(self.planner()?)
            .agent_max_calls(self.agent_max_steps as usize);
        Ok(match store {
            Some(store) => {
                let history: Arc<dyn HistorySource> = store.clone();
                builder
                    .history(Some(history))
                    .tools(self.tools(store, kb)?)
                    .reply_approval(self.reply_approval)
                    .build()
            }
            None => builder.build(),
        })
    }

    /// The tools over `store` and `kb`: support data from `COMMERCE_API_URL` or the store's
    /// tables, bug reports to GitHub when configured, the approval rules.
    pub fn tools(&self, store: Arc<dyn Store>, kb: Arc<KnowledgeBase>) -> Result<Tools, StartError> {
        let commerce: Arc<dyn Commerce> = match &self.commerce_api_url {
            #[cfg(feature = "http")]
            Some(url) => Arc::new(
                crate::commerce::HttpCommerce::new(
                    url,
                    self.commerce_api_token.clone(),
                    std::time::Duration::from_secs(10),
                )
                .map_err(|e| StartError::Tools(format!("COMMERCE_API_URL: {e}")))?,
            ),
            #[cfg(not(feature = "http"))]
            Some(_) => return Err(StartError::Tools("COMMERCE_API_URL needs the `http` feature".into())),
            None => Arc::new(StoreCommerce::new(store.clone())),
        };
        #[cfg(feature = "http")]
        let github = match (&self.github_token, &self.github_repo) {
            (Some(token), Some(repo)) => Some(
                crate::tools::GitHub::new(&self.github_api_url, repo, token.clone())
                    .map_err(|e| StartError::Tools(e.to_string()))?,
            ),
            _ => None,
        };
        Ok(Tools::new(ToolEnv {
            store,
            commerce,
            kb,
            #[cfg(feature = "http")]
            github,
            rules: ApprovalRules {
                required: self.approval_required.iter().cloned().collect(),
                auto_approve_refund_below: self.auto_approve_refund_below,
            },
            reset_url: self.password_reset_url.clone(),
        }))
    }

    /// RabbitMQ's options, when `RABBITMQ_URL` is set.
    #[cfg(feature = "rabbitmq")]
    pub fn rabbit_options(&self) -> Option<crate::queue::RabbitOptions> {
        let url = self.rabbitmq_url.as_ref()?;
        Some(crate::queue::RabbitOptions {
            queue: self.queue_name.clone(),
            queue_type: self.queue_type,
            ..crate::queue::RabbitOptions::new(url.expose_secret())
        })
    }
}
