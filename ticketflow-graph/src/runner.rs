//! Running a graph: the step loop, checkpointing, retries, interrupts and resumption.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use backon::Retryable;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::graph::{Dest, NodeEntry};
use crate::{
    Checkpoint, CheckpointError, Checkpointer, Event, Graph, GraphError, NodeContext, NodeError, NodeOutput, Observer,
    State,
};

/// When checkpoints are written, LangGraph's three durability modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Each node's checkpoint is durable before the next node starts. A crash re-runs at most
    /// the node that was in flight. The default.
    #[default]
    Sync,
    /// Each node's checkpoint is written while the next node runs; the run waits for it before
    /// writing the next one and before returning. Faster with a slow store; a crash may re-run
    /// one node more than `Sync` would.
    Async,
    /// Only the last checkpoint is written, when the run finishes, pauses or fails. Nothing to
    /// resume from after a crash mid-run.
    Exit,
}

/// How a run that did not fail ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<S> {
    /// The run reached END.
    Finished {
        /// The final state.
        state: S,
        /// The step of the final checkpoint.
        step: u64,
    },
    /// A node paused the run; [`Runner::resume_with`] continues it.
    Interrupted {
        /// The state at the pause.
        state: S,
        /// The node that paused, which runs again on resume.
        node: String,
        /// What the node asked for.
        payload: serde_json::Value,
        /// The step of the pause checkpoint.
        step: u64,
    },
}

impl<S> Outcome<S> {
    /// The state at the end of the run or at the pause.
    pub fn state(&self) -> &S {
        match self {
            Outcome::Finished { state, .. } | Outcome::Interrupted { state, .. } => state,
        }
    }

    /// Takes the state.
    pub fn into_state(self) -> S {
        match self {
            Outcome::Finished { state, .. } | Outcome::Interrupted { state, .. } => state,
        }
    }

    /// True when the run reached END.
    pub fn is_finished(&self) -> bool {
        matches!(self, Outcome::Finished { .. })
    }
}

type PendingWrite = Pin<Box<dyn Future<Output = Result<(), CheckpointError>> + Send>>;

/// A configured way to run one [`Graph`]: which checkpointer, observer, durability and
/// cancellation token to use. Cheap to build; build one per run if runs need different settings.
pub struct Runner<'g, S> {
    graph: &'g Graph<S>,
    checkpointer: Option<Arc<dyn Checkpointer>>,
    observer: Option<Arc<dyn Observer>>,
    durability: Durability,
    cancel: Option<CancellationToken>,
    metadata: Arc<serde_json::Value>,
    retain: Option<usize>,
    input_checkpoint: bool,
}

/// Where a run stands between nodes (the state travels beside it, since nodes take it by value).
struct Cursor {
    thread: Arc<str>,
    next: Dest,
    /// The step of the newest checkpoint (written or not).
    step: u64,
    parent: Option<Uuid>,
    resume: Option<serde_json::Value>,
}

/// Why a checkpoint is taken.
enum Taken<'a> {
    /// A run starts on its input.
    Input,
    /// A node completed.
    Completed(&'a Arc<str>),
    /// A node paused the run with this payload.
    Paused(serde_json::Value),
}

/// Checkpoints handed over but not yet durable, depending on the durability mode.
#[derive(Default)]
struct Writes {
    pending: Option<PendingWrite>,
    unsaved: Option<Checkpoint>,
}

impl<'g, S: State> Runner<'g, S> {
    pub(crate) fn new(graph: &'g Graph<S>) -> Self {
        Self {
            graph,
            checkpointer: None,
            observer: None,
            durability: Durability::Sync,
            cancel: None,
            metadata: Arc::new(serde_json::Value::Null),
            retain: None,
            input_checkpoint: true,
        }
    }

    /// Checkpoints the run to `checkpointer`.
    pub fn checkpointer(mut self, checkpointer: Arc<dyn Checkpointer>) -> Self {
        self.checkpointer = Some(checkpointer);
        self
    }

    /// Reports step events to `observer`.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// When checkpoints are written (default [`Durability::Sync`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Stops the run when `token` is cancelled: between nodes, or at once if a node is running
    /// (the node's work is dropped, as in a crash; its checkpoint was not written).
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Metadata copied into every checkpoint of the run, and shown to its nodes
    /// ([`NodeContext::metadata`]): who runs it, under which lease.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Arc::new(metadata);
        self
    }

    /// After a run finishes, keeps only the thread's newest `keep_last` checkpoints.
    pub fn retain_history(mut self, keep_last: usize) -> Self {
        self.retain = Some(keep_last);
        self
    }

    /// Does not checkpoint a new run's input: its first checkpoint is then its first node's.
    /// For callers that keep the input themselves (a worker has the ticket's row) and would
    /// rather save the write: a run that stops before its first node's checkpoint leaves
    /// nothing, and starts again from the input it is given. Steps are numbered as if the input
    /// had been checkpointed, and with [`Durability::Exit`] a first node that fails leaves
    /// nothing to resume from.
    pub fn without_input_checkpoint(mut self) -> Self {
        self.input_checkpoint = false;
        self
    }

    /// Runs the graph on `input`. If the thread has an unfinished checkpoint, the run resumes
    /// from it instead and `input` is not used; if its last run finished, a new run starts and
    /// its steps continue the thread's numbering.
    pub async fn invoke(&self, thread_id: &str, input: S) -> Result<Outcome<S>, GraphError> {
        let mut step = 0;
        let mut parent = None;
        if let Some(checkpointer) = &self.checkpointer
            && let Some(latest) = checkpointer.latest(thread_id).await?
        {
            if !latest.is_finished() {
                return self.continue_from(latest, None).await;
            }
            step = latest.step + 1;
            parent = Some(latest.id);
        }
        self.start_at(thread_id, input, step, parent).await
    }

    /// Starts a thread the caller knows is new, without reading the checkpointer first (one
    /// read saved per run: for callers that can tell, such as a worker holding the first lease
    /// ever granted on a ticket). If the thread does have checkpoints after all, nothing is
    /// overwritten: the first write fails with [`CheckpointError::Conflict`], and
    /// [`run_once`](Self::run_once) is the call to retry with.
    pub async fn start(&self, thread_id: &str, input: S) -> Result<Outcome<S>, GraphError> {
        self.start_at(thread_id, input, 0, None).await
    }

    async fn start_at(
        &self,
        thread_id: &str,
        input: S,
        step: u64,
        parent: Option<Uuid>,
    ) -> Result<Outcome<S>, GraphError> {
        let next = self.graph.next(None, &input)?;
        let mut cursor = Cursor {
            thread: thread_id.into(),
            next,
            step,
            parent,
            resume: None,
        };
        let mut writes = Writes::default();
        // The input checkpoint: without it, a crash in the first node would lose the input
        // (unless the caller keeps it, and said so).
        if self.input_checkpoint {
            self.checkpoint(&mut cursor, &input, Taken::Input, &mut writes).await?;
        }
        self.drive(cursor, input, writes).await
    }

    /// Runs the thread to END once and for all: starts it on `input` if it has no checkpoint,
    /// resumes it if it is unfinished, and returns its final state without running anything if
    /// it already finished. This is the call for at-least-once deliveries (a queue message
    /// redelivered after a crash), where `invoke` would start a finished thread over.
    pub async fn run_once(&self, thread_id: &str, input: S) -> Result<Outcome<S>, GraphError> {
        if let Some(checkpointer) = &self.checkpointer
            && let Some(latest) = checkpointer.latest(thread_id).await?
        {
            return self.continue_from(latest, None).await;
        }
        self.invoke(thread_id, input).await
    }

    /// Continues the thread from its newest checkpoint: a node whose checkpoint was written is
    /// never run again. A finished thread returns its final state without running anything.
    pub async fn resume(&self, thread_id: &str) -> Result<Outcome<S>, GraphError> {
        let latest = self.latest(thread_id).await?;
        self.continue_from(latest, None).await
    }

    /// Continues a paused thread, passing `value` to the node that paused it
    /// (see [`NodeContext::resume_value`]).
    pub async fn resume_with(&self, thread_id: &str, value: serde_json::Value) -> Result<Outcome<S>, GraphError> {
        let latest = self.latest(thread_id).await?;
        self.continue_from(latest, Some(value)).await
    }

    async fn latest(&self, thread_id: &str) -> Result<Checkpoint, GraphError> {
        let checkpointer = self
            .checkpointer
            .as_ref()
            .ok_or_else(|| GraphError::NoCheckpoint(thread_id.to_owned()))?;
        checkpointer
            .latest(thread_id)
            .await?
            .ok_or_else(|| GraphError::NoCheckpoint(thread_id.to_owned()))
    }

    async fn continue_from(
        &self,
        latest: Checkpoint,
        resume: Option<serde_json::Value>,
    ) -> Result<Outcome<S>, GraphError> {
        if !self.graph.continues(&latest.graph_version) {
            return Err(GraphError::VersionMismatch {
                thread_id: latest.thread_id.to_string(),
                found: latest.graph_version.to_string(),
                expected: self.graph.version.to_string(),
            });
        }
        let state: S = latest.state()?;
        let next = match &latest.next_node {
            None => {
                return Ok(Outcome::Finished {
                    state,
                    step: latest.step,
                });
            }
            Some(name) => self
                .graph
                .index_of(name)
                .map(Dest::Node)
                .ok_or_else(|| GraphError::VersionMismatch {
                    thread_id: latest.thread_id.to_string(),
                    found: format!("{} (with node `{name}`)", latest.graph_version),
                    expected: self.graph.version.to_string(),
                })?,
        };
        let cursor = Cursor {
            thread: latest.thread_id,
            next,
            step: latest.step,
            parent: Some(latest.id),
            resume,
        };
        self.drive(cursor, state, Writes::default()).await
    }

    /// The step loop.
    async fn drive(&self, mut cur: Cursor, mut state: S, mut writes: Writes) -> Result<Outcome<S>, GraphError> {
        let mut executed = 0;
        while let Dest::Node(index) = cur.next {
            let entry = &self.graph.nodes[index];
            if executed == self.graph.step_limit {
                self.flush(&mut writes).await?;
                return Err(GraphError::StepLimit {
                    limit: self.graph.step_limit,
                    node: entry.name.to_string(),
                });
            }
            if self.cancel.as_ref().is_some_and(CancellationToken::is_cancelled) {
                self.flush(&mut writes).await?;
                return Err(GraphError::Cancelled);
            }
            executed += 1;
            let step = cur.step + 1;
            self.emit(|| Event::Started {
                thread_id: &cur.thread,
                node: &entry.name,
                step,
            });
            let started = Instant::now();
            let run = self.run_node(entry, &cur.thread, step, state, cur.resume.take());
            // In async mode the previous checkpoint is written while this node runs.
            let result = match writes.pending.take() {
                Some(write) => {
                    let (written, result) = tokio::join!(write, run);
                    written?;
                    result
                }
                None => run.await,
            };
            let output = match result {
                Ok(output) => output,
                Err(error) => {
                    self.flush(&mut writes).await?;
                    return Err(error);
                }
            };
            match output {
                NodeOutput::Continue(next_state) => {
                    cur.next = self.graph.next(Some(index), &next_state)?;
                    state = next_state;
                }
                NodeOutput::Goto {
                    state: next_state,
                    node,
                } => {
                    cur.next = self.graph.goto(index, &node)?;
                    state = next_state;
                }
                NodeOutput::Interrupt { state, payload } => {
                    self.checkpoint(&mut cur, &state, Taken::Paused(payload.clone()), &mut writes)
                        .await?;
                    self.flush(&mut writes).await?;
                    self.emit(|| Event::Interrupted {
                        thread_id: &cur.thread,
                        node: &entry.name,
                        step: cur.step,
                        payload: &payload,
                    });
                    return Ok(Outcome::Interrupted {
                        state,
                        node: entry.name.to_string(),
                        payload,
                        step: cur.step,
                    });
                }
            }
            self.checkpoint(&mut cur, &state, Taken::Completed(&entry.name), &mut writes)
                .await?;
            self.emit(|| Event::Completed {
                thread_id: &cur.thread,
                node: &entry.name,
                step,
                duration: started.elapsed(),
            });
        }
        self.flush(&mut writes).await?;
        if let (Some(checkpointer), Some(keep)) = (&self.checkpointer, self.retain) {
            // The run is complete and durable; failing to trim its history must not undo that.
            if let Err(error) = checkpointer.prune(&cur.thread, keep).await {
                tracing::warn!(thread_id = &*cur.thread, %error, "pruning checkpoint history failed");
            }
        }
        self.emit(|| Event::Finished {
            thread_id: &cur.thread,
            step: cur.step,
        });
        Ok(Outcome::Finished { state, step: cur.step })
    }

    /// Runs one node with its timeout and retry policy, inside a tracing span.
    async fn run_node(
        &self,
        entry: &NodeEntry<S>,
        thread: &Arc<str>,
        step: u64,
        state: S,
        resume: Option<serde_json::Value>,
    ) -> Result<NodeOutput<S>, GraphError> {
        let ctx = NodeContext {
            thread_id: thread.clone(),
            node: entry.name.clone(),
            step,
            attempt: 1,
            cancel: self.cancel.clone().unwrap_or_default(),
            resume,
            metadata: self.metadata.clone(),
        };
        let attempt_once = |state: S, ctx: NodeContext| async move {
            let run = entry.node.run(state, &ctx);
            match entry.timeout {
                Some(limit) => tokio::time::timeout(limit, run)
                    .await
                    .unwrap_or(Err(NodeError::Timeout(limit))),
                None => run.await,
            }
        };
        let attempts = AtomicU32::new(1);
        let outcome = async {
            match &entry.retry {
                None => attempt_once(state, ctx).await,
                Some(policy) => {
                    (|| {
                        let mut ctx = ctx.clone();
                        ctx.attempt = attempts.load(Ordering::Relaxed);
                        attempt_once(state.clone(), ctx)
                    })
                    .retry(policy.backoff())
                    .when(|error| policy.should_retry(error))
                    .notify(|error, delay| {
                        let attempt = attempts.fetch_add(1, Ordering::Relaxed);
                        self.emit(|| Event::Retrying {
                            thread_id: thread,
                            node: &entry.name,
                            step,
                            attempt,
                            error,
                            delay,
                        });
                    })
                    .await
                }
            }
        }
        .instrument(tracing::info_span!(
            "graph.node",
            node = &*entry.name,
            step,
            thread_id = &**thread
        ));
        let result = match &self.cancel {
            Some(token) => tokio::select! {
                biased;
                () = token.cancelled() => return Err(GraphError::Cancelled),
                result = outcome => result,
            },
            None => outcome.await,
        };
        result.map_err(|error| {
            self.emit(|| Event::Failed {
                thread_id: thread,
                node: &entry.name,
                step,
                error: &error,
            });
            GraphError::NodeFailed {
                node: entry.name.to_string(),
                step,
                attempts: attempts.load(Ordering::Relaxed),
                source: error,
            }
        })
    }

    /// Takes the next checkpoint of the run and hands it over as the durability mode says.
    async fn checkpoint(
        &self,
        cur: &mut Cursor,
        state: &S,
        taken: Taken<'_>,
        writes: &mut Writes,
    ) -> Result<(), GraphError> {
        // The input checkpoint takes the step the cursor starts at; the others the one after.
        let step = match taken {
            Taken::Input => cur.step,
            Taken::Completed(_) | Taken::Paused(_) => cur.step + 1,
        };
        let Some(checkpointer) = &self.checkpointer else {
            cur.step = step;
            return Ok(());
        };
        // A paused run's next node is the one that paused, still `cur.next`.
        let (completed_node, interrupt) = match taken {
            Taken::Input => (None, None),
            Taken::Completed(name) => (Some(name.clone()), None),
            Taken::Paused(payload) => (None, Some(payload)),
        };
        let checkpoint = Checkpoint {
            thread_id: cur.thread.clone(),
            id: Uuid::now_v7(),
            parent_id: cur.parent,
            step,
            completed_node,
            next_node: self.graph.dest_name(cur.next).cloned(),
            state: serde_json::value::to_raw_value(state)?,
            graph_version: self.graph.version.clone(),
            interrupt,
            metadata: (*self.metadata).clone(),
            created_at: Utc::now(),
        };
        cur.step = step;
        cur.parent = Some(checkpoint.id);
        match self.durability {
            Durability::Sync => checkpointer.put(checkpoint).await?,
            Durability::Async => {
                if let Some(previous) = writes.pending.take() {
                    previous.await?;
                }
                let checkpointer = checkpointer.clone();
                writes.pending = Some(Box::pin(async move { checkpointer.put(checkpoint).await }));
            }
            Durability::Exit => writes.unsaved = Some(checkpoint),
        }
        Ok(())
    }

    /// Makes every checkpoint handed over so far durable.
    async fn flush(&self, writes: &mut Writes) -> Result<(), GraphError> {
        if let Some(pending) = writes.pending.take() {
            pending.await?;
        }
        if let (Some(checkpointer), Some(checkpoint)) = (&self.checkpointer, writes.unsaved.take()) {
            checkpointer.put(checkpoint).await?;
        }
        Ok(())
    }

    fn emit<'e>(&self, event: impl FnOnce() -> Event<'e>) {
        if let Some(observer) = &self.observer {
            observer.on_event(&event());
        }
    }
}
