//! Whether a process's database and queue answer: what both binaries' `/health` report.

use std::time::Duration;

use crate::queue::Queue;
use crate::store::Store;

/// How long each check may take before it counts as a failure.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The outcome of a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The store answered and could read its own tables.
    pub database: bool,
    /// The queue answered.
    pub queue: bool,
}

impl Health {
    /// Checks the store and the queue, at once, each within two seconds.
    pub async fn check(store: &dyn Store, queue: &dyn Queue) -> Self {
        let (database, queue) = tokio::join!(
            tokio::time::timeout(CHECK_TIMEOUT, store.ping()),
            tokio::time::timeout(CHECK_TIMEOUT, queue.check()),
        );
        Self {
            database: matches!(database, Ok(Ok(()))),
            queue: matches!(queue, Ok(Ok(()))),
        }
    }

    /// Both answered.
    pub fn healthy(&self) -> bool {
        self.database && self.queue
    }

    /// Whether the process can serve: the database is what matters (while the broker is down,
    /// tickets wait in the outbox).
    pub fn serving(&self) -> bool {
        self.database
    }

    /// `{status, database, queue}`, each `healthy` or `unhealthy`.
    pub fn to_json(&self) -> serde_json::Value {
        let word = |ok: bool| if ok { "healthy" } else { "unhealthy" };
        serde_json::json!({
            "status": word(self.healthy()),
            "database": word(self.database),
            "queue": word(self.queue),
        })
    }
}
