//! Embedding ticketflow in another Rust service: your own poem app mounts the ticketflow API
//! under `/support`, next to its own routes, with the store, queue and in-process workers it
//! chooses.
//!
//! ```text
//! cargo run -p examples --example embed
//! curl -s localhost:8080/hello
//! curl -s -X POST localhost:8080/support/tickets -H 'content-type: application/json' \
//!   -d '{"subject":"Locked out","body":"I forgot my password","customer_id":"c1"}'
//! ```

use std::sync::Arc;
use std::time::Duration;

use poem::listener::TcpListener;
use poem::{Route, get, handler};
use ticketflow_api::{AppState, app};
use ticketflow_core::processing::{Background, BackgroundOptions, Processor, ProcessorConfig, shutdown_signal};
use ticketflow_core::queue::{InProcessQueue, Queue};
use ticketflow_core::store::{SqliteStore, Store};
use ticketflow_core::{KnowledgeBase, OfflineEngine, Workflow};

#[handler]
fn hello() -> &'static str {
    "my own service, with ticketflow mounted under /support\n"
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect("sqlite://embedded-example.db").await?);
    store.migrate().await?;
    let queue: Arc<dyn Queue> = Arc::new(InProcessQueue::new());
    let workflow = Workflow::new(
        Arc::new(OfflineEngine),
        Arc::new(KnowledgeBase::bundled()?),
        Some(store.clone()),
    );
    let processor = Processor::new(store.clone(), workflow, ProcessorConfig::default());
    let background = Background::start(
        store.clone(),
        queue.clone(),
        Some(processor),
        BackgroundOptions::default(),
    );

    let state = AppState::new(store, queue).with_relay(background.relay().clone());
    let service = Route::new().at("/hello", get(hello)).nest("/support", app(state));
    println!("listening on http://127.0.0.1:8080 (ticketflow under /support, docs at /support/docs)");
    poem::Server::new(TcpListener::bind("127.0.0.1:8080"))
        .run_with_graceful_shutdown(service, shutdown_signal(), Some(Duration::from_secs(5)))
        .await?;
    background.stop(Duration::from_secs(10)).await;
    Ok(())
}
