//! `ticketflow-api`: the HTTP front. With nothing configured it runs everything in one process
//! (the embedded mode): SQLite, an in-process queue and workers, the offline engine.

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use poem::listener::TcpListener;
use ticketflow_api::commands::{self, KeysCommand, UsersCommand};
use ticketflow_api::people::People;
use ticketflow_api::{AppState, app};
use ticketflow_core::processing::{Background, Processor, shutdown_signal};
use ticketflow_core::queue::{InProcessQueue, Queue, RabbitQueue};
use ticketflow_core::settings::{DEFAULT_DATABASE_URL, Settings, SettingsArgs};
use ticketflow_core::telemetry;

/// ticketflow API: customer-support tickets in, researched and reviewed answers out.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default). Without RABBITMQ_URL, also runs the workers in-process.
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Load the demo customers, products and orders (idempotent) and exit.
    DemoData,
    /// Manage staff accounts (README "People and access").
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Manage named API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::install_crypto_provider();
    let cli = Cli::parse();
    let settings = cli.settings.load(std::env::vars())?;
    let tracer = telemetry::init_logging(&settings.logging("ticketflow-api"))?;
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => migrate(&settings).await,
        Command::DemoData => demo_data(&settings).await,
        Command::Serve => serve(settings).await,
        Command::Users { command } => commands::users(&people(&settings).await?, command).await,
        Command::Keys { command } => commands::keys(&people(&settings).await?, command).await,
    };
    if let Some(tracer) = tracer {
        let _ = tracer.shutdown();
    }
    outcome
}

async fn people(settings: &Settings) -> anyhow::Result<People> {
    Ok(People::new(settings.open_store(Some(DEFAULT_DATABASE_URL)).await?))
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    settings.migrate_store(Some(DEFAULT_DATABASE_URL)).await?;
    println!("migrations applied");
    Ok(())
}

async fn demo_data(settings: &Settings) -> anyhow::Result<()> {
    let store = settings.open_store(Some(DEFAULT_DATABASE_URL)).await?;
    let loaded = store
        .load_demo_data(chrono::Utc::now())
        .await
        .context("cannot load the demo data")?;
    println!(
        "demo data: {} customers, {} products, {} orders added ({} were already there)",
        loaded.customers,
        loaded.products,
        loaded.orders,
        if loaded == Default::default() {
            "all"
        } else {
            "the rest"
        }
    );
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let metrics = telemetry::install_metrics()?;
    let store = settings.open_store(Some(DEFAULT_DATABASE_URL)).await?;
    let (queue, processor): (Arc<dyn Queue>, _) = match settings.rabbit_options() {
        Some(options) => (Arc::new(RabbitQueue::new(options)), None),
        None => {
            // The embedded default comes with the demo records, so that the seed's demo
            // tickets work at once.
            if settings.demo_data && store.has_no_customers().await.context("cannot read the customers")? {
                let loaded = store
                    .load_demo_data(chrono::Utc::now())
                    .await
                    .context("cannot load the demo data")?;
                tracing::info!(
                    customers = loaded.customers,
                    products = loaded.products,
                    orders = loaded.orders,
                    "empty database: demo data loaded (DEMO_DATA=false turns this off)"
                );
            }
            let workflow = settings.workflow(Some(store.clone()))?;
            let processor = Processor::new(store.clone(), workflow, settings.processor_config());
            (Arc::new(InProcessQueue::new()), Some(processor))
        }
    };
    let embedded = processor.is_some();
    let (mail, webhooks) = if embedded {
        (
            Some(settings.mail_relay(store.clone())?),
            settings.webhook_relay(store.clone()).await?,
        )
    } else {
        (None, None)
    };
    let mut background = Background::start(
        store.clone(),
        queue.clone(),
        processor,
        settings.background_options(settings.worker_concurrency),
    );
    // The workers deliver e-mail and webhooks; in embedded mode, this process is the worker.
    if let Some(mail) = mail {
        background.deliver_mail(mail);
    }
    if let Some(webhooks) = webhooks {
        background.deliver_webhooks(webhooks);
    }
    let state = AppState::from_settings(&settings, store, queue)
        .with_relay(background.relay().clone())
        .with_metrics(metrics);
    // The database may be down at start-up: the API then starts anyway (its /health says so),
    // closed to anonymous callers until it can tell.
    let open = state.access.is_open().await.unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot read the people and keys yet: anonymous calls are refused until it can");
        false
    });
    if open {
        if settings.bind_addr.ip().is_loopback() {
            tracing::info!(
                "open mode: no people, no keys, no API_KEYS — anyone who reaches this address may do anything \
                 (`ticketflow-api users add` closes it)"
            );
        } else {
            tracing::warn!(
                bind_addr = %settings.bind_addr,
                "OPEN MODE BEYOND LOOPBACK: no people, no keys, no API_KEYS — anyone on the network may read every \
                 ticket, approve refunds and manage people; add an admin with `ticketflow-api users add` or set API_KEYS"
            );
        }
    }
    let mode = if embedded {
        "embedded mode: SQLite/in-process queue/in-process workers unless configured otherwise"
    } else {
        "distributed mode: workers are separate ticketflow-worker processes"
    };
    println!(
        "ticketflow API on http://{addr} ({mode}); API docs at http://{addr}/docs",
        addr = settings.bind_addr
    );
    poem::Server::new(TcpListener::bind(settings.bind_addr))
        .run_with_graceful_shutdown(app(state), shutdown_signal(), Some(settings.shutdown_grace()))
        .await
        .context("the HTTP server failed")?;
    tracing::info!("shutting down: finishing tickets in flight");
    if !background.stop(settings.shutdown_grace()).await {
        tracing::warn!("grace period over; unfinished tickets go back to the queue and resume later");
    }
    Ok(())
}
