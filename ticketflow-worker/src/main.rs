//! `ticketflow-worker`: consumes the RabbitMQ work queue and runs the processor, with its own
//! `/metrics` and `/health` on `WORKER_BIND_ADDR`. On SIGTERM it stops taking messages and
//! finishes (or, after the grace period, hands back) the tickets in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use poem::listener::TcpListener;
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Route, get, handler};
use ticketflow_core::processing::{
    Background, BackgroundOptions, Processor, ProcessorConfig, default_worker_id, shutdown_signal,
};
use ticketflow_core::queue::{Queue, QueueType, RabbitOptions, RabbitQueue};
use ticketflow_core::store::{self, TicketStore};
use ticketflow_core::telemetry::{self, LogFormat};
use ticketflow_core::{KnowledgeBase, Workflow};

/// ticketflow worker: processes queued tickets.
#[derive(Debug, Parser)]
#[command(version, about, args_override_self = true)]
struct Settings {
    /// A TOML file of settings (same names as the environment variables); the environment
    /// and flags override it.
    #[arg(long, env = "TICKETFLOW_CONFIG", global = true)]
    config: Option<std::path::PathBuf>,
    /// postgres://… (or Supabase) — shared with the API.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// amqp://user:pass@host:5672/vhost
    #[arg(long, env = "RABBITMQ_URL", hide_env_values = true)]
    rabbitmq_url: String,
    /// The work queue.
    #[arg(long, env = "QUEUE_NAME", default_value = "ticket_processing")]
    queue_name: String,
    /// quorum or classic (must match the API's).
    #[arg(long, env = "QUEUE_TYPE", default_value = "quorum")]
    queue_type: QueueType,
    /// Tickets processed at once (also the broker prefetch).
    #[arg(long, env = "PREFETCH_COUNT", default_value_t = 8)]
    prefetch_count: usize,
    /// Retries after the LLM gives up, before a ticket fails for good.
    #[arg(long, env = "MAX_RETRIES", default_value_t = 3)]
    max_retries: u32,
    /// This worker's id (default host name and pid).
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
    /// Where /metrics and /health listen.
    #[arg(long, env = "WORKER_BIND_ADDR", default_value = "127.0.0.1:9100")]
    worker_bind_addr: SocketAddr,
    /// Apply migrations at start-up (safe beside other processes: migrations take a lock).
    #[arg(long, env = "AUTO_MIGRATE", default_value_t = true, action = clap::ArgAction::Set)]
    auto_migrate: bool,
    /// Seconds to let tickets in flight finish after SIGTERM.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    shutdown_grace_seconds: u64,
    /// json or pretty.
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    log_format: LogFormat,
}

#[derive(Clone)]
struct Probes {
    store: Arc<dyn TicketStore>,
    queue: Arc<dyn Queue>,
    metrics: telemetry::MetricsHandle,
}

#[handler]
async fn health(probes: Data<&Probes>) -> poem::Response {
    let check = Duration::from_secs(2);
    let database = matches!(tokio::time::timeout(check, probes.store.ping()).await, Ok(Ok(())));
    let queue = matches!(tokio::time::timeout(check, probes.queue.check()).await, Ok(Ok(())));
    let word = |ok: bool| if ok { "healthy" } else { "unhealthy" };
    let body = Json(serde_json::json!({
        "status": word(database && queue),
        "database": word(database),
        "queue": word(queue),
    }));
    let status = if database {
        poem::http::StatusCode::OK
    } else {
        poem::http::StatusCode::SERVICE_UNAVAILABLE
    };
    body.with_status(status).into_response()
}

#[handler]
fn render_metrics(probes: Data<&Probes>) -> poem::Response {
    poem::Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(probes.metrics.render())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::install_crypto_provider();
    let args = ticketflow_core::config_file::args_with_config_file(std::env::args_os().collect())
        .map_err(anyhow::Error::msg)?;
    let settings = Settings::parse_from(args);
    let tracer = telemetry::init_logging(settings.log_format, "ticketflow-worker");
    let metrics = telemetry::install_metrics().map_err(anyhow::Error::msg)?;
    let store = store::connect(&settings.database_url).await.with_context(|| {
        format!(
            "cannot open the database (DATABASE_URL={})",
            store::redact_url(&settings.database_url)
        )
    })?;
    if settings.auto_migrate {
        store.migrate().await.with_context(|| {
            format!(
                "migration failed (DATABASE_URL={})",
                store::redact_url(&settings.database_url)
            )
        })?;
    }
    let queue: Arc<dyn Queue> = Arc::new(RabbitQueue::new(RabbitOptions {
        queue: settings.queue_name.clone(),
        queue_type: settings.queue_type,
        ..RabbitOptions::new(&settings.rabbitmq_url)
    }));
    let workflow = Workflow::new(
        Workflow::engine_from_env().map_err(anyhow::Error::msg)?,
        Arc::new(KnowledgeBase::from_env().context("cannot load the knowledge base (KB_DIR)")?),
        Some(store.history()),
    );
    let config = ProcessorConfig {
        worker_id: settings.worker_id.clone().unwrap_or_else(default_worker_id),
        lease: Duration::from_secs(settings.lease_seconds.max(1)),
        max_retries: settings.max_retries,
        retain_checkpoints: settings.checkpoint_retention,
        retry_backoff: settings.retry_backoff,
        ..ProcessorConfig::default()
    };
    tracing::info!(worker_id = %config.worker_id, queue = %settings.queue_name, "worker starting");
    let processor = Processor::new(store.clone(), workflow, config);
    let background = Background::start(
        store.clone(),
        queue.clone(),
        Some(processor),
        BackgroundOptions {
            concurrency: settings.prefetch_count,
            sweep_interval: settings.sweep_interval,
        },
    );

    let probes = Probes { store, queue, metrics };
    let app = Route::new()
        .at("/health", get(health))
        .at("/metrics", get(render_metrics))
        .data(probes);
    println!(
        "ticketflow worker: /metrics and /health on http://{}",
        settings.worker_bind_addr
    );
    poem::Server::new(TcpListener::bind(settings.worker_bind_addr))
        .run_with_graceful_shutdown(app, shutdown_signal(), Some(Duration::from_secs(2)))
        .await
        .context("the probe server failed")?;
    tracing::info!("SIGTERM: no new messages; finishing the tickets in flight");
    if !background
        .stop(Duration::from_secs(settings.shutdown_grace_seconds))
        .await
    {
        tracing::warn!("grace period over; unfinished tickets go back to the queue and resume elsewhere");
    }
    if let Some(tracer) = tracer {
        let _ = tracer.shutdown();
    }
    Ok(())
}
