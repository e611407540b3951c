//! Turning queued tickets into results: the [`Processor`] (claim, run, finish), the
//! [`Worker`] that feeds it from a queue, the [`OutboxRelay`] that publishes what the database
//! says must be published, the [`Sweeper`] that rescues tickets nothing would wake, and the
//! [`MailRelay`] that delivers queued e-mail.
//! The binaries only wire these together; the embedded mode runs all four in one process.

mod background;
mod mail_relay;
mod processor;
mod relay;
mod reply;
mod sweeper;
mod worker;

pub use background::{Background, BackgroundOptions, shutdown_signal};
pub use mail_relay::MailRelay;
pub use processor::{ProcessError, Processed, Processor, ProcessorConfig, default_worker_id, requeue_failed};
pub use relay::{OutboxRelay, RelayError};
pub use sweeper::Sweeper;
pub use worker::Worker;

/// Sleeps for `duration` unless `shutdown` fires first; returns false if it fired.
pub(crate) async fn pause(duration: std::time::Duration, shutdown: &tokio_util::sync::CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(duration) => true,
    }
}
