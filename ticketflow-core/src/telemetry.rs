//! Logs and metrics set-up shared by the binaries (and available to embedders).
//!
//! Library code only emits: `tracing` events and spans, and `metrics` counters, gauges and
//! histograms. Whoever runs it decides where they go; [`init_logging`] and [`install_metrics`]
//! are the choices the bundled binaries make.

use std::sync::Arc;
use std::time::Duration;

pub use metrics_exporter_prometheus::PrometheusHandle as MetricsHandle;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio_util::sync::CancellationToken;

use crate::queue::Queue;
use crate::store::OutboxStore;

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (the default; for log shippers).
    #[default]
    Json,
    /// Human-readable, for terminals.
    #[serde(alias = "text")]
    Pretty,
}

/// Why logging or metrics could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter (`RUST_LOG`) does not parse.
    #[error("RUST_LOG is not a valid filter: {0}")]
    Filter(String),
    /// The OTLP exporter could not be built (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT: cannot export traces: {0}")]
    Exporter(String),
    /// The Prometheus recorder could not be installed.
    #[error("cannot install the metrics recorder: {0}")]
    Metrics(String),
}

/// Where logs and traces go.
#[derive(Debug, Clone)]
pub struct LoggingOptions {
    /// How log lines look (`LOG_FORMAT`).
    pub format: LogFormat,
    /// `tracing` filter directives (`RUST_LOG`), such as `info` or `ticketflow_core=debug`.
    pub filter: String,
    /// An OTLP/HTTP collector's base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`); spans go to
    /// `<endpoint>/v1/traces`. `None`: no export.
    pub otlp_endpoint: Option<String>,
    /// The service name spans are exported under.
    pub service_name: &'static str,
}

/// Installs rustls' ring crypto provider as the process default, if none is installed yet. Every
/// HTTPS client in the process (the LLM client, the OTLP exporter, sqlx and lapin over TLS)
/// needs one: ring is the only TLS backend compiled in.
#[cfg(feature = "tls")]
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Installs the global `tracing` subscriber: `options.filter` filters, spans' fields
/// (request_id, ticket_id) are included in every line. With an OTLP endpoint, spans are also
/// exported over OTLP/HTTP; the returned provider must be shut down before exit to flush
/// them. Does nothing if a subscriber is installed.
pub fn init_logging(options: &LoggingOptions) -> Result<Option<SdkTracerProvider>, TelemetryError> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter =
        tracing_subscriber::EnvFilter::try_new(&options.filter).map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match options.format {
        LogFormat::Json => fmt.json().with_current_span(true).with_span_list(false).boxed(),
        LogFormat::Pretty => fmt.boxed(),
    };
    let provider = match &options.otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(endpoint, options.service_name)?),
        None => None,
    };
    let otel = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(p.tracer(options.service_name))
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
    Ok(provider)
}

#[cfg(feature = "otlp")]
fn tracer_provider(endpoint: &str, service_name: &'static str) -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;
    install_crypto_provider();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name)
                .build(),
        )
        .build())
}

#[cfg(not(feature = "otlp"))]
fn tracer_provider(_endpoint: &str, _service_name: &'static str) -> Result<SdkTracerProvider, TelemetryError> {
    Err(TelemetryError::Exporter(
        "this build of ticketflow-core has no OTLP exporter (feature `otlp`)".into(),
    ))
}

/// Installs the global Prometheus recorder and returns the handle that renders `/metrics`.
/// Histograms use buckets suited to request and step latencies.
pub fn install_metrics() -> Result<PrometheusHandle, TelemetryError> {
    let buckets = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets(&buckets)
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?
        .install_recorder()
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
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
        "Writes (checkpoints, claims, transitions) per group-commit transaction (PostgreSQL)"
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
    store: Arc<dyn OutboxStore>,
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
