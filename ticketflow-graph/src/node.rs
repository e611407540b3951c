//! Nodes: the units of work a graph runs, and what they see and return.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// What a graph's state must be: owned, cloneable, and serializable so that it can be
/// checkpointed after every node.
///
/// Implemented automatically for every type that qualifies.
pub trait State: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T> State for T where T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

/// One step of a workflow.
///
/// A node receives the current state by value and returns the next one. Taking the state by
/// value lets a node update it in place without copying; the runtime only keeps a copy when
/// the node has a retry policy and might need to run again.
#[async_trait]
pub trait Node<S: State>: Send + Sync + 'static {
    /// Runs the node once.
    async fn run(&self, state: S, ctx: &NodeContext) -> Result<NodeOutput<S>, NodeError>;
}

/// What a node returns.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeOutput<S> {
    /// The updated state; the graph's edges pick the next node.
    Continue(S),
    /// The updated state, and the next node chosen by the node itself. The target must be one
    /// of this node's declared successors, so that validation and drawings stay truthful.
    Goto {
        /// The updated state.
        state: S,
        /// The name of the next node (or [`END`](crate::END)).
        node: String,
    },
    /// Pause the run (for example for a human approval). The run is checkpointed with `state`
    /// (usually the state the node received, handed back unchanged) and with this node as the
    /// next one; a later [`Runner::resume_with`](crate::Runner::resume_with) runs the node
    /// again with the value available as [`NodeContext::resume_value`].
    Interrupt {
        /// The state to checkpoint.
        state: S,
        /// What the run waits for (shown to whoever resumes it).
        payload: serde_json::Value,
    },
}

/// Everything a node may want to know about the run it is part of.
#[derive(Debug, Clone)]
pub struct NodeContext {
    pub(crate) thread_id: Arc<str>,
    pub(crate) node: Arc<str>,
    pub(crate) step: u64,
    pub(crate) attempt: u32,
    pub(crate) cancel: CancellationToken,
    pub(crate) resume: Option<serde_json::Value>,
    pub(crate) metadata: Arc<serde_json::Value>,
}

impl NodeContext {
    /// Builds a context by hand, for calling a node outside a graph (in its unit tests, say).
    pub fn new(thread_id: &str, node: &str, step: u64) -> Self {
        Self {
            thread_id: thread_id.into(),
            node: node.into(),
            step,
            attempt: 1,
            cancel: CancellationToken::new(),
            resume: None,
            metadata: Arc::new(serde_json::Value::Null),
        }
    }

    /// Sets the value returned by [`metadata`](Self::metadata).
    pub fn with_metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Arc::new(metadata);
        self
    }

    /// The run's metadata ([`Runner::metadata`](crate::Runner::metadata)); `Null` when none
    /// was given.
    pub fn metadata(&self) -> &serde_json::Value {
        &self.metadata
    }

    /// Sets the value returned by [`resume_value`](Self::resume_value).
    pub fn with_resume_value(mut self, value: serde_json::Value) -> Self {
        self.resume = Some(value);
        self
    }

    /// The thread (durable run) this node belongs to.
    pub fn thread_id(&self) -> &str {
        &self.thread_id
    }

    /// The name this node was registered under.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The step number the node's checkpoint will carry (the input checkpoint is step 0 of the
    /// thread's first run).
    pub fn step(&self) -> u64 {
        self.step
    }

    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Fires when the run is cancelled; long-running nodes should watch it.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The value passed to [`Runner::resume_with`](crate::Runner::resume_with) when this node
    /// is re-run after it interrupted the run; `None` on an ordinary run.
    pub fn resume_value(&self) -> Option<&serde_json::Value> {
        self.resume.as_ref()
    }
}

/// Why a node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node did not finish within its configured timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The node's own error.
    #[error(transparent)]
    Failed(Box<dyn StdError + Send + Sync>),
}

impl NodeError {
    /// Wraps any error (or a `String`/`&str` message).
    pub fn new(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Failed(error.into())
    }

    /// The node's own error as a concrete type, if it is one; retry predicates use this.
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        match self {
            Self::Failed(inner) => inner.downcast_ref::<E>(),
            Self::Timeout(_) => None,
        }
    }

    /// True for [`NodeError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }
}

/// A node made from an async function or closure; see [`node_fn`].
pub struct FnNode<F, S> {
    f: F,
    _state: PhantomData<fn(S) -> S>,
}

impl<F, S> fmt::Debug for FnNode<F, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnNode")
    }
}

/// Turns an async closure `|state, ctx| async move { ... }` into a [`Node`].
///
/// The closure gets its own copy of the context so that the future it returns can own it.
///
/// ```
/// use ticketflow_graph::{node_fn, NodeOutput};
/// let double = node_fn(|n: u64, _ctx| async move { Ok(NodeOutput::Continue(n * 2)) });
/// # let _ = double;
/// ```
pub fn node_fn<S, F, Fut>(f: F) -> FnNode<F, S>
where
    S: State,
    F: Fn(S, NodeContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<NodeOutput<S>, NodeError>> + Send + 'static,
{
    FnNode { f, _state: PhantomData }
}

#[async_trait]
impl<S, F, Fut> Node<S> for FnNode<F, S>
where
    S: State,
    F: Fn(S, NodeContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<NodeOutput<S>, NodeError>> + Send + 'static,
{
    async fn run(&self, state: S, ctx: &NodeContext) -> Result<NodeOutput<S>, NodeError> {
        (self.f)(state, ctx.clone()).await
    }
}
