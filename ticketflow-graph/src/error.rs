//! The errors of building and running a graph.

use crate::{CheckpointError, NodeError};

/// Why [`GraphBuilder::compile`](crate::GraphBuilder::compile) refused a graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// Two nodes share a name.
    #[error("node `{0}` is defined twice")]
    DuplicateNode(String),
    /// A node uses a reserved name (START or END).
    #[error("`{0}` is reserved and cannot name a node")]
    ReservedName(String),
    /// An edge, route or setting names a node that does not exist.
    #[error("{context} names unknown node `{name}`")]
    UnknownNode {
        /// The missing name.
        name: String,
        /// Where it was named.
        context: String,
    },
    /// Nothing leaves START.
    #[error("the graph has no entry: add an edge from START")]
    NoEntry,
    /// A node (or START) has more than one way out; a node has exactly one static edge or one
    /// conditional route.
    #[error("node `{0}` has more than one outgoing edge or route")]
    ConflictingEdges(String),
    /// An edge leaves END or enters START.
    #[error("invalid edge `{from}` -> `{to}`")]
    InvalidEdge {
        /// Source.
        from: String,
        /// Target.
        to: String,
    },
    /// A route declares no targets.
    #[error("the route from `{0}` declares no targets")]
    EmptyRoute(String),
    /// No path leads from this node to END.
    #[error("node `{0}` cannot reach END")]
    CannotReachEnd(String),
    /// No path leads from START to this node.
    #[error("node `{0}` is unreachable from START")]
    Unreachable(String),
}

/// Why a run stopped without finishing.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A node failed, after all the attempts its retry policy allows.
    #[error("node `{node}` failed at step {step} after {attempts} attempt(s): {source}")]
    NodeFailed {
        /// The node.
        node: String,
        /// The step it was computing.
        step: u64,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: NodeError,
    },
    /// The run executed more steps than the graph's step limit (a cycle that does not end).
    #[error("step limit of {limit} reached at node `{node}`")]
    StepLimit {
        /// The limit.
        limit: usize,
        /// The node that would have run next.
        node: String,
    },
    /// A route function, or a node's [`Goto`](crate::NodeOutput::Goto), chose a target that was
    /// not declared for that node.
    #[error("`{from}` routed to `{to}`, which is not one of its declared targets")]
    InvalidRoute {
        /// The node routed from (or START).
        from: String,
        /// The undeclared target.
        to: String,
    },
    /// `resume` found no checkpoint for the thread.
    #[error("thread `{0}` has no checkpoint to resume from")]
    NoCheckpoint(String),
    /// The thread's checkpoint was written by another version of the graph.
    #[error("thread `{thread_id}` was checkpointed by graph version `{found}`, this graph is `{expected}`")]
    VersionMismatch {
        /// The thread.
        thread_id: String,
        /// The checkpoint's version.
        found: String,
        /// This graph's version.
        expected: String,
    },
    /// The run was cancelled through its cancellation token.
    #[error("run cancelled")]
    Cancelled,
    /// The checkpointer failed, or refused a write because another run superseded this one.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The state could not be serialized or deserialized.
    #[error("state serialization failed: {0}")]
    State(#[from] serde_json::Error),
}
