//! `ticketflow-worker`: consumes the RabbitMQ work queue and runs the processor, with its own
//! `/metrics` and `/health` on `WORKER_BIND_ADDR`. On SIGTERM it stops taking messages and
//! finishes (or, after the grace period, hands back) the tickets in flight.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use poem::listener::TcpListener;
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Route, get, handler};
use ticketflow_core::health::Health;
use ticketflow_core::processing::{Background, Processor, shutdown_signal};
use ticketflow_core::queue::{Queue, RabbitQueue};
use ticketflow_core::settings::{Settings, SettingsArgs, SettingsError};
use ticketflow_core::store::Store;
use ticketflow_core::telemetry::{self, MetricsHandle};

/// ticketflow worker: processes queued tickets.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
}

/// What the probe endpoints read.
#[derive(Clone)]
struct Probes {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    metrics: MetricsHandle,
}

#[handler]
async fn health(probes: Data<&Probes>) -> poem::Response {
    let health = Health::check(probes.store.as_ref(), probes.queue.as_ref()).await;
    let status = if health.serving() {
        poem::http::StatusCode::OK
    } else {
        poem::http::StatusCode::SERVICE_UNAVAILABLE
    };
    Json(health.to_json()).with_status(status).into_response()
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
    let settings = Cli::parse().settings.load(std::env::vars())?;
    let tracer = telemetry::init_logging(&settings.logging("ticketflow-worker"))?;
    let outcome = run(settings).await;
    if let Some(tracer) = tracer {
        let _ = tracer.shutdown();
    }
    outcome
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let metrics = telemetry::install_metrics()?;
    let rabbit = settings
        .rabbit_options()
        .ok_or(SettingsError::Missing("RABBITMQ_URL"))?;
    let store = settings.open_store(None).await?;
    let queue: Arc<dyn Queue> = Arc::new(RabbitQueue::new(rabbit));
    let workflow = settings.workflow(Some(store.clone()))?;
    let config = settings.processor_config();
    tracing::info!(worker_id = %config.worker_id, queue = %settings.queue_name, "worker starting");
    let mail = settings.mail_relay(store.clone())?;
    tracing::info!(?mail, "delivering e-mail");
    let mut background = Background::start(
        store.clone(),
        queue.clone(),
        Some(Processor::new(store.clone(), workflow, config)),
        settings.background_options(settings.prefetch_count),
    );
    background.deliver_mail(mail);
    if let Some(webhooks) = settings.webhook_relay(store.clone()).await? {
        tracing::info!(?webhooks, endpoints = ?settings.webhook_endpoints(), "delivering webhooks");
        background.deliver_webhooks(webhooks);
    }
    let probes = Route::new()
        .at("/health", get(health))
        .at("/metrics", get(render_metrics))
        .data(Probes { store, queue, metrics });
    println!(
        "ticketflow worker: /metrics and /health on http://{}",
        settings.worker_bind_addr
    );
    poem::Server::new(TcpListener::bind(settings.worker_bind_addr))
        .run_with_graceful_shutdown(probes, shutdown_signal(), Some(std::time::Duration::from_secs(2)))
        .await
        .context("the probe server failed")?;
    tracing::info!("SIGTERM: no new messages; finishing the tickets in flight");
    if !background.stop(settings.shutdown_grace()).await {
        tracing::warn!("grace period over; unfinished tickets go back to the queue and resume elsewhere");
    }
    Ok(())
}
