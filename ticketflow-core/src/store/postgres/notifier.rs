//! Telling listeners that events may have committed, without slowing the commits.
//!
//! A transaction that runs NOTIFY takes a database-wide lock at commit and holds it through its
//! WAL flush, so notifying from the event-writing transactions themselves (a trigger) would
//! serialize every commit and undo group commit. Instead each connection going back to the
//! store's pools — after every statement or transaction, so after every commit — pings this
//! notifier, which sends one `pg_notify` of its own at most every `spacing`, on a connection
//! of its own, after the commits that pinged it.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Pinged by the pools; stops its task when the last clone of its store is dropped.
#[derive(Debug, Clone)]
pub(super) struct Notifier {
    /// Pinged after each use of a pooled connection.
    pub(super) ping: Arc<Notify>,
    /// Cancels the sending task when the store goes.
    _stop: Arc<DropGuard>,
}

/// At most one notice this often, however many commits.
const SPACING: Duration = Duration::from_millis(5);

impl Notifier {
    /// A notifier sending on `channel` over a connection from `options`; needs a Tokio
    /// runtime.
    pub(super) fn start(options: PgConnectOptions, channel: String) -> Self {
        let ping = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        // Its own small pool, without the ping: its own notices must not ping it.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(Duration::from_secs(30))
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options);
        tokio::spawn(send(pool, channel, ping.clone(), stop.clone()));
        Self {
            ping,
            _stop: Arc::new(stop.drop_guard()),
        }
    }
}

async fn send(pool: PgPool, channel: String, ping: Arc<Notify>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = ping.notified() => {}
        }
        // Unnamed, and in a transaction: behind a transaction pooler both exchanges of the
        // statement then reach the same server connection (see `db`).
        let sent = async {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(&channel)
                .persistent(false)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        .await;
        if let Err(error) = sent {
            // Listeners poll as well; a lost notice costs latency, not events.
            tracing::debug!(%error, "cannot notify the event feed");
        }
        tokio::time::sleep(SPACING).await;
    }
}
