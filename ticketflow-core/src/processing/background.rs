//! The background tasks of a process, started and stopped together: the outbox relay, the
//! sweeper, optionally workers, and the backlog gauges. Both binaries and the embedded mode
//! use this; an embedding service can too.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{MailRelay, OutboxRelay, Processor, Sweeper, Worker};
use crate::queue::Queue;
use crate::store::Store;

/// Running background tasks.
pub struct Background {
    relay: OutboxRelay,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// How the background tasks run.
#[derive(Debug, Clone)]
pub struct BackgroundOptions {
    /// Tickets a worker processes at once (when there is a worker).
    pub concurrency: usize,
    /// Time between sweeps for stranded tickets (`SWEEP_INTERVAL_SECONDS`): the longest a
    /// crashed worker's ticket waits after its lease expired.
    pub sweep_interval: Duration,
}

impl Default for BackgroundOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            sweep_interval: Duration::from_secs(15),
        }
    }
}

impl Background {
    /// Starts the relay, the sweeper and the backlog gauges, and, when `processor` is given,
    /// a worker.
    pub fn start(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        processor: Option<Processor>,
        options: BackgroundOptions,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let relay = OutboxRelay::new(store.clone(), queue.clone());
        let mut sweeper = Sweeper::new(store.clone(), Some(relay.clone()));
        sweeper.interval = options.sweep_interval;
        let mut tasks = vec![
            tokio::spawn(relay.clone().run(shutdown.clone())),
            tokio::spawn(sweeper.run(shutdown.clone())),
            tokio::spawn(crate::telemetry::report_backlog(
                store,
                Some(queue.clone()),
                Duration::from_secs(5),
                shutdown.clone(),
            )),
        ];
        if let Some(processor) = processor {
            tasks.push(tokio::spawn(
                Worker::new(queue, processor, options.concurrency).run(shutdown.clone()),
            ));
        }
        Self { relay, shutdown, tasks }
    }

    /// Also delivers queued e-mail through `mail`, until the others stop.
    pub fn deliver_mail(&mut self, mail: MailRelay) {
        self.tasks.push(tokio::spawn(mail.run(self.shutdown.clone())));
    }

    /// Also delivers webhooks through `webhooks`, until the others stop.
    #[cfg(feature = "http")]
    pub fn deliver_webhooks(&mut self, webhooks: super::WebhookRelay) {
        self.tasks.push(tokio::spawn(webhooks.run(self.shutdown.clone())));
    }

    /// The relay, to wake after creating tickets.
    pub fn relay(&self) -> &OutboxRelay {
        &self.relay
    }

    /// Stops taking work, lets tickets in flight finish for up to `grace`, then stops.
    /// Returns false if something was still running when the grace period ended (its
    /// deliveries go back to the queue and its leases expire: nothing is lost).
    pub async fn stop(self, grace: Duration) -> bool {
        self.shutdown.cancel();
        let all = futures::future::join_all(self.tasks);
        tokio::time::timeout(grace, all).await.is_ok()
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
