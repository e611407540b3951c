//! `ticketflow-api`: the HTTP front. With nothing configured it runs everything in one process
//! (the embedded mode): SQLite, an in-process queue and workers, the offline engine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use poem::listener::TcpListener;
use ticketflow_api::{ApiKeys, AppState, CreateLimit, app};
use ticketflow_core::Workflow;
use ticketflow_core::processing::{
    Background, BackgroundOptions, Processor, ProcessorConfig, default_worker_id, shutdown_signal,
};
use ticketflow_core::queue::{InProcessQueue, Queue, QueueType, RabbitOptions, RabbitQueue};
use ticketflow_core::store::{self, TicketStore};
use ticketflow_core::telemetry::{self, LogFormat};

/// ticketflow API: customer-support tickets in, researched and reviewed answers out.
#[derive(Debug, Parser)]
#[command(version, about, args_override_self = true)]
struct Cli {
    /// A TOML file of settings (same names as the environment variables); the environment
    /// and flags override it.
    #[arg(long, env = "TICKETFLOW_CONFIG", global = true)]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default). Without RABBITMQ_URL, also runs the workers in-process.
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

#[derive(Debug, clap::Args)]
struct Settings {
    /// postgres://… (or a Supabase connection string) or sqlite://… (created if missing).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://ticketflow.db",
        global = true,
        hide_env_values = true
    )]
    database_url: String,
    /// amqp://… ; unset: the embedded mode (in-process queue and workers).
    #[arg(long, env = "RABBITMQ_URL", hide_env_values = true)]
    rabbitmq_url: Option<String>,
    /// The RabbitMQ work queue.
    #[arg(long, env = "QUEUE_NAME", default_value = "ticket_processing")]
    queue_name: String,
    /// quorum or classic (changing it needs a new QUEUE_NAME).
    #[arg(long, env = "QUEUE_TYPE", default_value = "quorum")]
    queue_type: QueueType,
    /// Where the API listens.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8000")]
    bind_addr: SocketAddr,
    /// Embedded mode: tickets processed at once by the in-process workers.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 4)]
    worker_concurrency: usize,
    /// Retries after the LLM gives up, before a ticket fails for good.
    #[arg(long, env = "MAX_RETRIES", default_value_t = 3)]
    max_retries: u32,
    /// Embedded mode: this process's worker id (default host name and pid).
    #[arg(long, env = "WORKER_ID")]
    worker_id: Option<String>,
    /// Seconds a claimed ticket stays leased without a heartbeat (1 to 3600).
    #[arg(long, env = "LEASE_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease_seconds: u64,
    /// Checkpoints kept per ticket once it completes (unset: the whole history is kept).
    #[arg(long, env = "CHECKPOINT_RETENTION")]
    checkpoint_retention: Option<usize>,
    /// Seconds before a ticket the LLM gave up on is retried; doubles per attempt, up to 10 min.
    #[arg(long, env = "RETRY_BACKOFF_SECONDS", default_value = "5", value_parser = ticketflow_core::config_file::parse_seconds)]
    retry_backoff: Duration,
    /// Seconds between sweeps for stranded tickets (pending with no message, or leased by a
    /// crashed worker).
    #[arg(long, env = "SWEEP_INTERVAL_SECONDS", default_value = "15", value_parser = ticketflow_core::config_file::parse_seconds)]
    sweep_interval: Duration,
    /// Apply migrations at start-up.
    #[arg(long, env = "AUTO_MIGRATE", default_value_t = true, action = clap::ArgAction::Set)]
    auto_migrate: bool,
    /// json or pretty.
    #[arg(long, env = "LOG_FORMAT", default_value = "json", global = true)]
    log_format: LogFormat,
    /// Comma-separated bearer keys required on the ticket routes (unset: open).
    #[arg(long, env = "API_KEYS", hide_env_values = true)]
    api_keys: Option<String>,
    /// Ticket creations allowed per client (API key, else IP) per minute (unset: unlimited).
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE")]
    rate_limit_per_minute: Option<std::num::NonZeroU32>,
    /// Comma-separated origins allowed by CORS (unset: no CORS).
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
}

impl Settings {
    fn processor_config(&self) -> ProcessorConfig {
        ProcessorConfig {
            worker_id: self.worker_id.clone().unwrap_or_else(default_worker_id),
            lease: Duration::from_secs(self.lease_seconds.max(1)),
            max_retries: self.max_retries,
            retain_checkpoints: self.checkpoint_retention,
            retry_backoff: self.retry_backoff,
            ..ProcessorConfig::default()
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::install_crypto_provider();
    let args = ticketflow_core::config_file::args_with_config_file(std::env::args_os().collect())
        .map_err(anyhow::Error::msg)?;
    let cli = Cli::parse_from(args);
    let tracer = telemetry::init_logging(cli.settings.log_format, "ticketflow-api");
    let settings = cli.settings;
    let store = store::connect(&settings.database_url).await.with_context(|| {
        format!(
            "cannot open the database (DATABASE_URL={})",
            store::redact_url(&settings.database_url)
        )
    })?;
    let outcome = run(cli.command.unwrap_or(Command::Serve), settings, store).await;
    if let Some(tracer) = tracer {
        let _ = tracer.shutdown();
    }
    outcome
}

async fn run(command: Command, settings: Settings, store: Arc<dyn TicketStore>) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            store.migrate().await.with_context(|| {
                format!(
                    "migration failed (DATABASE_URL={})",
                    store::redact_url(&settings.database_url)
                )
            })?;
            println!("migrations applied");
            Ok(())
        }
        Command::Serve => serve(settings, store).await,
    }
}

async fn serve(settings: Settings, store: Arc<dyn TicketStore>) -> anyhow::Result<()> {
    let metrics = telemetry::install_metrics().map_err(anyhow::Error::msg)?;
    if settings.auto_migrate {
        store.migrate().await.with_context(|| {
            format!(
                "migration failed (DATABASE_URL={})",
                store::redact_url(&settings.database_url)
            )
        })?;
    }
    let embedded = settings.rabbitmq_url.is_none();
    let queue: Arc<dyn Queue> = match &settings.rabbitmq_url {
        Some(url) => Arc::new(RabbitQueue::new(RabbitOptions {
            queue: settings.queue_name.clone(),
            queue_type: settings.queue_type,
            ..RabbitOptions::new(url)
        })),
        None => Arc::new(InProcessQueue::new()),
    };
    let processor = if embedded {
        let workflow = Workflow::new(
            Workflow::engine_from_env().map_err(anyhow::Error::msg)?,
            Arc::new(ticketflow_core::KnowledgeBase::from_env().context("cannot load the knowledge base (KB_DIR)")?),
            Some(store.history()),
        );
        Some(Processor::new(store.clone(), workflow, settings.processor_config()))
    } else {
        None
    };
    let background = Background::start(
        store.clone(),
        queue.clone(),
        processor,
        BackgroundOptions {
            concurrency: settings.worker_concurrency,
            sweep_interval: settings.sweep_interval,
        },
    );
    let state = AppState {
        store,
        queue,
        relay: Some(background.relay().clone()),
        metrics: Some(metrics),
        api_keys: ApiKeys::parse(settings.api_keys.as_deref().unwrap_or("")),
        create_limit: settings.rate_limit_per_minute.map(CreateLimit::per_minute),
        cors_origins: settings
            .cors_origins
            .iter()
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect(),
    };
    let listener = TcpListener::bind(settings.bind_addr);
    let mode = if embedded {
        "embedded mode: SQLite/in-process queue/in-process workers unless configured otherwise"
    } else {
        "distributed mode: workers are separate ticketflow-worker processes"
    };
    println!(
        "ticketflow API on http://{addr} ({mode}); API docs at http://{addr}/docs",
        addr = settings.bind_addr
    );
    poem::Server::new(listener)
        .run_with_graceful_shutdown(app(state), shutdown_signal(), Some(Duration::from_secs(10)))
        .await
        .context("the HTTP server failed")?;
    tracing::info!("shutting down: finishing tickets in flight");
    if !background.stop(Duration::from_secs(20)).await {
        tracing::warn!("background tasks still running after 20 s; their tickets will be resumed later");
    }
    Ok(())
}
