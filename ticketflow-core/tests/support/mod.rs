//! Helpers the core's integration tests share (the test databases come from
//! `ticketflow_core::testing::database`).
#![allow(dead_code, unused_imports)]

use std::sync::Arc;
use std::time::Duration;

use ticketflow_core::Workflow;
use ticketflow_core::processing::{OutboxRelay, Processor, ProcessorConfig, Sweeper, Worker};
use ticketflow_core::queue::{Queue, RabbitOptions, RabbitQueue};
use ticketflow_core::store::{NewTicket, Store, Ticket, TicketStatus};
pub use ticketflow_core::testing::database::{fresh_postgres_url, postgres_admin_url, postgres_store, sqlite_store};
pub use ticketflow_core::testing::store::claimed_runs;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
/// The broker the RabbitMQ tests use (`TEST_RABBITMQ_URL`, default the machine's local one).
pub fn rabbitmq_url() -> String {
    std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Options for a queue of the test's own.
pub fn rabbit_options() -> RabbitOptions {
    RabbitOptions {
        queue: format!("tf_test_{}", Uuid::new_v4().simple()),
        ..RabbitOptions::new(&rabbitmq_url())
    }
}

/// A connected RabbitMQ queue, failing clearly when the broker is down.
pub async fn rabbit_queue(options: &RabbitOptions) -> Arc<RabbitQueue> {
    let queue = Arc::new(RabbitQueue::new(options.clone()));
    queue.check().await.unwrap_or_else(|e| {
        panic!(
            "RabbitMQ is not reachable at {} ({e}); start it (see .ci/run)",
            options.url
        )
    });
    queue
}

/// Processor settings for tests: short leases and delays.
pub fn fast_config(worker_id: &str) -> ProcessorConfig {
    ProcessorConfig {
        worker_id: worker_id.into(),
        lease: Duration::from_secs(2),
        max_retries: 2,
        retry_backoff: Duration::from_millis(50),
        infrastructure_pause: Duration::from_millis(100),
        retain_checkpoints: None,
        ..ProcessorConfig::default()
    }
}

/// A running set of relay, sweeper and worker tasks.
pub struct Pipeline {
    pub relay: OutboxRelay,
    pub shutdown: CancellationToken,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Pipeline {
    /// Starts a relay, a sweeper (fast) and a worker with `concurrency`.
    pub fn start(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        workflow: Workflow,
        config: ProcessorConfig,
        concurrency: usize,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let mut relay = OutboxRelay::new(store.clone(), queue.clone());
        relay.idle = Duration::from_millis(50);
        let mut sweeper = Sweeper::new(store.clone(), Some(relay.clone()));
        sweeper.interval = Duration::from_millis(200);
        sweeper.quiet_for = Duration::from_millis(500);
        let worker = Worker::new(queue, Processor::new(store, workflow, config), concurrency);
        let tasks = vec![
            tokio::spawn(relay.clone().run(shutdown.clone())),
            tokio::spawn(sweeper.run(shutdown.clone())),
            tokio::spawn(worker.run(shutdown.clone())),
        ];
        Self { relay, shutdown, tasks }
    }

    /// Only a worker (no relay, no sweeper).
    pub fn worker_only(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        workflow: Workflow,
        config: ProcessorConfig,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let relay = OutboxRelay::new(store.clone(), queue.clone());
        let worker = Worker::new(queue, Processor::new(store, workflow, config), 4);
        Self {
            relay,
            shutdown: shutdown.clone(),
            tasks: vec![tokio::spawn(worker.run(shutdown))],
        }
    }

    /// Kills every task at once, as a crash would.
    pub fn abort(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }

    /// Stops gracefully.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// A ticket to submit.
pub fn ticket_named(customer: &str, subject: &str) -> NewTicket {
    NewTicket {
        customer_id: customer.into(),
        subject: subject.into(),
        body: "My card was charged twice for order ORD-55812 this morning.".into(),
        request_id: Some(format!("req-{subject}")),
        ..Default::default()
    }
}

/// Polls until every ticket reaches a final status, or panics after `timeout`.
pub async fn wait_until_final(store: &dyn Store, ids: &[Uuid], timeout: Duration) -> Vec<Ticket> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut tickets = Vec::new();
        for id in ids {
            tickets.push(store.get(*id).await.expect("store reachable").expect("ticket exists"));
        }
        if tickets.iter().all(|t| t.status.is_final()) {
            return tickets;
        }
        if tokio::time::Instant::now() > deadline {
            let states: Vec<_> = tickets.iter().map(|t| (t.id, t.status)).collect();
            panic!("tickets did not finish within {timeout:?}: {states:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts a completed ticket has exactly one step_complete per step, in order.
pub async fn assert_steps_once(store: &dyn Store, id: Uuid) {
    let steps: Vec<String> = store
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "step_complete")
        .filter_map(|e| e.step_name)
        .collect();
    assert_eq!(
        steps,
        ticketflow_core::steps::names::ALL,
        "one step_complete per step for {id}"
    );
    let completions = store
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "status_change" && e.payload["to"] == "completed")
        .count();
    assert_eq!(completions, 1, "completed exactly once");
    assert_eq!(store.get(id).await.unwrap().unwrap().status, TicketStatus::Completed);
}
