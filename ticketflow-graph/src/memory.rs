//! An in-memory checkpointer: for tests, examples and runs that need no durability across
//! processes.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::{Checkpoint, CheckpointError, Checkpointer};

/// Keeps every thread's checkpoints in a map, sorted by step.
///
/// The lock is a plain `std` mutex: every critical section is a few vector operations and never
/// awaits, which is cheaper than an async mutex.
#[derive(Debug, Default)]
pub struct MemoryCheckpointer {
    threads: Mutex<HashMap<String, Vec<Checkpoint>>>,
}

impl MemoryCheckpointer {
    /// An empty checkpointer.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many checkpoints are held, over all threads.
    pub fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// True when no checkpoint is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Checkpoint>>> {
        // A panic while holding the lock cannot leave a half-written entry (every mutation is a
        // single Vec operation), so a poisoned lock is safe to keep using.
        self.threads.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Checkpointer for MemoryCheckpointer {
    async fn put(&self, checkpoint: Checkpoint) -> Result<(), CheckpointError> {
        let mut threads = self.lock();
        let history = match threads.get_mut(&*checkpoint.thread_id) {
            Some(history) => history,
            None => threads.entry(checkpoint.thread_id.to_string()).or_default(),
        };
        // Runs append in step order, so the common case is a push at the end.
        match history.last() {
            Some(last) if last.step >= checkpoint.step => {
                match history.binary_search_by_key(&checkpoint.step, |c| c.step) {
                    Ok(_) => {
                        return Err(CheckpointError::Conflict {
                            thread_id: checkpoint.thread_id.to_string(),
                            step: checkpoint.step,
                        });
                    }
                    Err(at) => history.insert(at, checkpoint),
                }
            }
            _ => history.push(checkpoint),
        }
        Ok(())
    }

    async fn latest(&self, thread_id: &str) -> Result<Option<Checkpoint>, CheckpointError> {
        Ok(self.lock().get(thread_id).and_then(|h| h.last().cloned()))
    }

    async fn history(&self, thread_id: &str, limit: usize) -> Result<Vec<Checkpoint>, CheckpointError> {
        Ok(self
            .lock()
            .get(thread_id)
            .map(|h| h.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn delete_thread(&self, thread_id: &str) -> Result<u64, CheckpointError> {
        Ok(self.lock().remove(thread_id).map_or(0, |h| h.len() as u64))
    }

    async fn prune(&self, thread_id: &str, keep_last: usize) -> Result<u64, CheckpointError> {
        let keep_last = keep_last.max(1);
        let mut threads = self.lock();
        let Some(history) = threads.get_mut(thread_id) else {
            return Ok(0);
        };
        let remove = history.len().saturating_sub(keep_last);
        history.drain(..remove);
        Ok(remove as u64)
    }
}
