//! A typed, durable graph runtime for async workflows.
//!
//! A [`Graph`] is a set of named async [`Node`]s over one state type, joined by static edges
//! and conditional routes from [`START`] to [`END`]. Cycles are allowed and bounded by a step
//! limit. After every node the [`Runner`] hands a [`Checkpoint`] to a [`Checkpointer`], so a run
//! that crashes resumes after its last completed node: a node whose checkpoint was written never
//! runs again. Nodes may have a [`RetryPolicy`] and a timeout, may pause the run for a human
//! ([`NodeOutput::Interrupt`]), and report what happens to an [`Observer`].
//!
//! This crate knows nothing of any domain or database; durable checkpointers live with the
//! stores that back them and prove themselves with the shared suite in `testing` (feature
//! `testing`).
//!
//! ```
//! use std::sync::Arc;
//! use serde::{Deserialize, Serialize};
//! use ticketflow_graph::{node_fn, Graph, MemoryCheckpointer, NodeOutput, END, START};
//!
//! #[derive(Clone, Debug, Default, Serialize, Deserialize)]
//! struct Essay { drafts: u32, text: String }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let graph = Graph::<Essay>::builder()
//!     .node("draft", node_fn(|mut s: Essay, _ctx| async move {
//!         s.drafts += 1;
//!         s.text = format!("draft {}", s.drafts);
//!         Ok(NodeOutput::Continue(s))
//!     }))
//!     .node("publish", node_fn(|s: Essay, _ctx| async move { Ok(NodeOutput::Continue(s)) }))
//!     .edge(START, "draft")
//!     .route("draft", [("revise", "draft"), ("accept", "publish")], |s: &Essay| {
//!         if s.drafts < 2 { "revise" } else { "accept" }
//!     })
//!     .edge("publish", END)
//!     .compile()?;
//!
//! let checkpoints = Arc::new(MemoryCheckpointer::new());
//! let outcome = graph.with_checkpointer(checkpoints.clone()).invoke("essay-1", Essay::default()).await?;
//! assert_eq!(outcome.state().text, "draft 2");
//! // input, draft, draft, publish
//! assert_eq!(checkpoints.len(), 4);
//! println!("{}", graph.to_mermaid());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod builder;
mod checkpoint;
mod draw;
mod error;
mod graph;
mod memory;
mod node;
mod observer;
mod retry;
mod runner;
#[cfg(feature = "testing")]
pub mod testing;

pub use builder::{GraphBuilder, Target};
pub use checkpoint::{Checkpoint, CheckpointError, Checkpointer};
pub use error::{CompileError, GraphError};
pub use graph::Graph;
pub use memory::MemoryCheckpointer;
pub use node::{FnNode, Node, NodeContext, NodeError, NodeOutput, State, node_fn};
pub use observer::{Event, Observer};
pub use retry::RetryPolicy;
pub use runner::{Durability, Outcome, Runner};
pub use tokio_util::sync::CancellationToken;

/// The virtual node every run starts from; use it as the source of the entry edge.
pub const START: &str = "__start__";
/// The virtual node that ends a run; use it as the target of the last edges.
pub const END: &str = "__end__";
