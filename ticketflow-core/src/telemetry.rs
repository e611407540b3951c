//! Logs and metrics set-up shared by the binaries (and available to embedders).
//!
//! Library code only emits: `tracing` events and spans, and `metrics` counters, gauges and
//! histograms. Whoever runs it decides where they go; [`init_logging`] and [`install_metrics`]
//! are the choices the bundled binaries make.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use metrics_exporter_prometheus::PrometheusHandle as MetricsHandle;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio_util::sync::CancellationToken;

use crate::queue::Queue;
use crate::store::TicketStore;

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (the default; for log shippers).
    #[default]
    Json,
    /// Human-readable, for terminals.
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "pretty" | "text" => Ok(LogFormat::Pretty),
            other => Err(format!("LOG_FORMAT must be json or pretty, got {other:?}")),
        }
    }
}

/// Installs rustls' ring crypto provider as the process default, if none is installed yet. Every
/// HTTPS client in the process (the LLM client, the OTLP exporter, sqlx and lapin over TLS)
/// needs one: ring is the only TLS backend compiled in.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Installs the global `tracing` subscriber: `RUST_LOG` filters (default `info`), spans' fields
/// (request_id, ticket_id) are included in every line. When `OTEL_EXPORTER_OTLP_ENDPOINT` is
/// set, spans are also exported over OTLP/HTTP as `service_name`; the returned provider must be
/// shut down before exit to flush them. Does nothing if a subscriber is installed.
pub fn init_logging(format: LogFormat, service_name: &'static str) -> Option<SdkTracerProvider> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt.json().with_current_span(true).with_span_list(false).boxed(),
        LogFormat::Pretty => fmt.boxed(),
    };
    let provider = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").and_then(|_| {
        install_crypto_provider();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| eprintln!("OpenTelemetry export disabled: {e}"))
            .ok()?;
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(service_name)
                        .build(),
                )
                .build(),
        )
    });
    let otel = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(p.tracer(service_name))
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
    provider
}

/// Installs the global Prometheus recorder and returns the handle that renders `/metrics`.
/// Histograms use buckets suited to request and step latencies.
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    let buckets = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets(&buckets)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    describe_metrics();
    Ok(handle)
}

fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("tickets_created_total", "Tickets created");
    describe_counter!("tickets_processed_total", "Tickets processed, by outcome status");
    describe_histogram!("http_request_duration_seconds", "API request latency by route template");
    describe_histogram!("workflow_step_duration_seconds", "Time per workflow step");
    describe_histogram!(
        "ticket_processing_duration_seconds",
        "Time per processing run of a ticket"
    );
    describe_counter!("llm_calls_total", "LLM calls by step and outcome");
    describe_counter!("llm_fallbacks_total", "Steps that fell back to the offline engine");
    describe_counter!("llm_tokens_total", "LLM tokens by step, model and kind");
    describe_counter!("lease_takeovers_total", "Tickets taken over after a lease expired");
    describe_histogram!(
        "checkpoint_batch_size",
        "Writes (checkpoints, claims, completions) per group-commit transaction (PostgreSQL)"
    );
    describe_gauge!("queue_depth", "Messages ready in the work queue");
    describe_gauge!("dead_letter_depth", "Messages in the dead-letter queue");
    describe_gauge!("tickets_pending", "Tickets waiting for a worker");
    describe_gauge!("oldest_pending_ticket_age_seconds", "Age of the oldest pending ticket");
    describe_gauge!("outbox_due", "Outbox rows due and not yet published");
    describe_gauge!("outbox_lag_seconds", "How long the oldest due outbox row has waited");
}

/// Refreshes the backlog gauges every `every` until `shutdown`.
pub async fn report_backlog(
    store: Arc<dyn TicketStore>,
    queue: Option<Arc<dyn Queue>>,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        if let Ok(backlog) = store.backlog().await {
            metrics::gauge!("tickets_pending").set(backlog.pending as f64);
            metrics::gauge!("oldest_pending_ticket_age_seconds").set(backlog.oldest_pending_seconds);
            metrics::gauge!("outbox_due").set(backlog.outbox_due as f64);
            metrics::gauge!("outbox_lag_seconds").set(backlog.outbox_lag_seconds);
        }
        if let Some(queue) = &queue
            && let Ok(depth) = queue.depth().await
        {
            metrics::gauge!("queue_depth").set(depth.ready as f64);
            metrics::gauge!("dead_letter_depth").set(depth.dead as f64);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
