//! ticketflow's HTTP API (poem + poem-openapi), as a library so that another service can mount
//! it, and as the `ticketflow-api` binary.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ticketflow_api::{AppState, app};
//! use ticketflow_core::queue::InProcessQueue;
//! use ticketflow_core::store::{SqliteStore, Store};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(SqliteStore::connect("sqlite://tickets.db").await?);
//! store.migrate().await?;
//! let state = AppState::new(store, Arc::new(InProcessQueue::new()));
//! poem::Server::new(poem::listener::TcpListener::bind("127.0.0.1:8000")).run(app(state)).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

mod admin;
mod api;
mod approvals;
mod audit;
pub mod auth;
pub mod commands;
mod create_limit;
mod edge;
mod error;
mod inbound;
pub mod model;
pub mod people;
mod sign_in;
mod streams;
mod webhooks;

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use poem::web::Data;
use poem::{Endpoint, EndpointExt, Route, get, handler};
use poem_openapi::OpenApiService;
use ticketflow_core::live::EventFeed;
use ticketflow_core::processing::OutboxRelay;
use ticketflow_core::queue::Queue;
use ticketflow_core::settings::Settings;
use ticketflow_core::store::Store;

pub use auth::{Access, ApiKeys, LoginLimit, SessionPolicy};
pub use create_limit::CreateLimit;
pub use edge::REQUEST_ID_HEADER;
pub use error::ApiError;
pub use inbound::{DEFAULT_EMAIL_MAX_BYTES, EmailIntake};

/// The largest request body accepted (larger: 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The largest body of a decision (`POST /approvals/{id}/decide`), whose texts' own limits
/// (2,000 and 20,000 characters) are checked by name.
pub const MAX_DECISION_BODY_BYTES: usize = 256 * 1024;

/// The request id of the request being served (request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// What the API needs.
#[derive(Clone)]
pub struct AppState {
    /// Tickets and events.
    pub store: Arc<dyn Store>,
    /// Reported by /health.
    pub queue: Arc<dyn Queue>,
    /// Woken after a ticket is created or re-queued, so it is published at once.
    pub relay: Option<OutboxRelay>,
    /// Renders /metrics (absent: /metrics answers 404).
    pub metrics: Option<PrometheusHandle>,
    /// Who may call: people, named keys, `API_KEYS` (none of them: open).
    pub access: Access,
    /// Per-client limit on ticket creation (`RATE_LIMIT_PER_MINUTE`; `None`: unlimited).
    pub create_limit: Option<CreateLimit>,
    /// Origins allowed by CORS (`CORS_ORIGINS`; empty: no CORS headers).
    pub cors_origins: Vec<String>,
    /// The inbound e-mail webhooks' secrets and support domain (unset secrets: 503).
    pub email: EmailIntake,
    /// The largest inbound e-mail webhook body (`EMAIL_MAX_BYTES`).
    pub email_max_bytes: usize,
    /// The live event feed behind the streams (started by their first subscriber).
    pub feed: EventFeed,
}

impl AppState {
    /// An open API over `store` (reporting `queue` in /health): no keys, no limits, no CORS,
    /// no relay to wake and no /metrics.
    pub fn new(store: Arc<dyn Store>, queue: Arc<dyn Queue>) -> Self {
        Self {
            store: store.clone(),
            queue,
            relay: None,
            metrics: None,
            access: Access::new(
                store.clone(),
                ApiKeys::default(),
                SessionPolicy::default(),
                LoginLimit::per_minute(std::num::NonZeroU32::MIN.saturating_add(9)),
            ),
            create_limit: None,
            cors_origins: Vec::new(),
            email: EmailIntake::default(),
            email_max_bytes: DEFAULT_EMAIL_MAX_BYTES,
            feed: EventFeed::new(store.clone()),
        }
    }

    /// The API the settings ask for (`API_KEYS`, the sessions' settings,
    /// `LOGIN_ATTEMPTS_PER_MINUTE`, `RATE_LIMIT_PER_MINUTE`, `CORS_ORIGINS`, the e-mail
    /// webhooks' secrets).
    pub fn from_settings(settings: &Settings, store: Arc<dyn Store>, queue: Arc<dyn Queue>) -> Self {
        use secrecy::ExposeSecret;
        Self {
            access: Access::new(
                store.clone(),
                ApiKeys::parse(settings.api_keys.as_ref().map_or("", |keys| keys.expose_secret())),
                SessionPolicy {
                    // At most a year: longer is not a session, and would overflow the clock.
                    idle: std::time::Duration::from_secs(
                        u64::from(settings.session_idle_minutes.get().min(525_600)) * 60,
                    ),
                    max_age: std::time::Duration::from_secs(
                        u64::from(settings.session_max_hours.get().min(8_760)) * 3600,
                    ),
                    trust_proxy: settings.trust_proxy,
                },
                LoginLimit::per_minute(settings.login_attempts_per_minute),
            ),
            create_limit: settings.rate_limit_per_minute.map(CreateLimit::per_minute),
            cors_origins: settings
                .cors_origins
                .iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            email: EmailIntake {
                webhook_token: settings.email_webhook_token.clone(),
                mailgun_signing_key: settings.mailgun_webhook_signing_key.clone(),
                domain: settings.email_domain.clone().filter(|d| !d.trim().is_empty()),
            },
            email_max_bytes: settings.email_max_bytes,
            ..Self::new(store, queue)
        }
    }

    /// Also wakes `relay` after a ticket is created or re-queued.
    pub fn with_relay(mut self, relay: OutboxRelay) -> Self {
        self.relay = Some(relay);
        self
    }

    /// Also serves /metrics from `metrics`.
    pub fn with_metrics(mut self, metrics: PrometheusHandle) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

/// The OpenAPI service (for its document).
pub fn openapi(
    state: &AppState,
) -> OpenApiService<
    (
        api::TicketsApi,
        streams::StreamsApi,
        approvals::ApprovalsApi,
        webhooks::WebhooksApi,
        sign_in::SignInApi,
        admin::AdminApi,
    ),
    (),
> {
    OpenApiService::new(
        (
            api::TicketsApi {
                store: state.store.clone(),
                queue: state.queue.clone(),
                relay: state.relay.clone(),
                access: state.access.clone(),
                create_limit: state.create_limit.clone(),
            },
            streams::StreamsApi {
                store: state.store.clone(),
                feed: state.feed.clone(),
                access: state.access.clone(),
            },
            approvals::ApprovalsApi {
                store: state.store.clone(),
                relay: state.relay.clone(),
                access: state.access.clone(),
            },
            webhooks::WebhooksApi {
                store: state.store.clone(),
                access: state.access.clone(),
            },
            sign_in::SignInApi {
                access: state.access.clone(),
            },
            admin::AdminApi {
                access: state.access.clone(),
                people: people::People::new(state.store.clone()),
            },
        ),
        "ticketflow",
        env!("CARGO_PKG_VERSION"),
    )
    .description("Customer-support tickets in, researched and reviewed answers out.")
}

#[handler]
fn render_metrics(handle: Data<&Option<PrometheusHandle>>) -> poem::Result<poem::Response> {
    match handle.0 {
        Some(handle) => Ok(poem::Response::builder()
            .content_type("text/plain; version=0.0.4")
            .body(handle.render())),
        None => Err(poem::Error::from_status(poem::http::StatusCode::NOT_FOUND)),
    }
}

/// The whole HTTP application: the API, `/openapi.json`, the Swagger UI at `/docs` (assets
/// embedded: works offline), `/metrics`; every response carries `X-Request-ID`, every error is
/// JSON.
pub fn app(state: AppState) -> impl Endpoint {
    let api = openapi(&state);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let cors = (!state.cors_origins.is_empty()).then(|| {
        poem::middleware::Cors::new()
            .allow_origins(state.cors_origins.iter().map(String::as_str))
            .allow_headers(["authorization", "content-type", "idempotency-key", "x-request-id"])
            .expose_headers(["x-request-id", "retry-after"])
    });
    Route::new()
        .at("/metrics", get(render_metrics).data(state.metrics.clone()))
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .at(
            "/webhooks/email/inbound/:provider",
            inbound::InboundEndpoint {
                store: state.store.clone(),
                relay: state.relay.clone(),
                intake: state.email.clone(),
            },
        )
        .nest("/", api)
        .data(state.access.clone())
        // Parses the Cookie header for the session scheme (poem-openapi reads the jar).
        .with(poem::middleware::CookieJarManager::new())
        // A panic becomes a 500 that still passes through `edge` (JSON body, request id).
        .with(poem::middleware::CatchPanic::new())
        .around(edge::edge)
        // Outside `edge`, which reads it to size the e-mail webhooks' bodies.
        .data(edge::EmailBodyLimit(state.email_max_bytes))
        // Outside `edge`, so that error responses (already JSON) carry the CORS headers too.
        .with_if(cors.is_some(), cors.unwrap_or_default())
}
