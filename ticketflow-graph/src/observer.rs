//! Step events, for logs, metrics, database event trails and spans.

use std::time::Duration;

use crate::NodeError;

/// Something that happened in a run. Borrowed, so that observing costs nothing when nobody
/// keeps the event.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A node is about to run (its first attempt).
    Started {
        /// The thread.
        thread_id: &'a str,
        /// The node.
        node: &'a str,
        /// The step its checkpoint will carry.
        step: u64,
    },
    /// A node completed and its checkpoint was handed to the checkpointer.
    Completed {
        /// The thread.
        thread_id: &'a str,
        /// The node.
        node: &'a str,
        /// Its checkpoint's step.
        step: u64,
        /// Wall time of the node, all attempts and waits included.
        duration: Duration,
    },
    /// An attempt failed and the node will run again after `delay`.
    Retrying {
        /// The thread.
        thread_id: &'a str,
        /// The node.
        node: &'a str,
        /// The step.
        step: u64,
        /// The attempt that failed (1 for the first).
        attempt: u32,
        /// Why it failed.
        error: &'a NodeError,
        /// The wait before the next attempt.
        delay: Duration,
    },
    /// A node failed for good; the run stops.
    Failed {
        /// The thread.
        thread_id: &'a str,
        /// The node.
        node: &'a str,
        /// The step.
        step: u64,
        /// Why.
        error: &'a NodeError,
    },
    /// A node paused the run.
    Interrupted {
        /// The thread.
        thread_id: &'a str,
        /// The node.
        node: &'a str,
        /// The step of the pause checkpoint.
        step: u64,
        /// What the node asked for.
        payload: &'a serde_json::Value,
    },
    /// The run reached END.
    Finished {
        /// The thread.
        thread_id: &'a str,
        /// The step of the final checkpoint.
        step: u64,
    },
}

/// Receives [`Event`]s as a run goes.
///
/// Called inline on the run's task: keep it quick, and hand slow work (database writes) to a
/// channel. The `Fn` closure impl makes `|event| println!("{event:?}")` an observer.
pub trait Observer: Send + Sync {
    /// Called once per event.
    fn on_event(&self, event: &Event<'_>);
}

impl<F> Observer for F
where
    F: Fn(&Event<'_>) + Send + Sync,
{
    fn on_event(&self, event: &Event<'_>) {
        self(event)
    }
}
