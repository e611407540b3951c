//! The ticketflow support domain on top of [`ticketflow_graph`]: the six steps (classify,
//! extract, research, draft, review, finalize), the [`Engine`] seam with a deterministic
//! [`OfflineEngine`] and an OpenAI-compatible [`llm`] engine, the BM25 [`KnowledgeBase`], the
//! review's policy rules, the [`store`]s (PostgreSQL/Supabase and SQLite) with their
//! checkpointers, the [`queue`]s, and the [`processing`] that ties them together.
//!
//! Features, all on by default: `postgres`, `sqlite`, `rabbitmq`, `openai` (the backends),
//! `otlp` (trace export), `settings` (the binaries' typed settings). Without them the crate is
//! the workflow, the offline engine and the traits, with none of sqlx, lapin or async-openai.
//!
//! ```
//! use ticketflow_core::{Category, TicketInput, Workflow};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let workflow = Workflow::offline()?;
//! let result = workflow
//!     .run(TicketInput {
//!         id: "t-1".into(),
//!         customer_id: "cust_1".into(),
//!         subject: "Charged twice".into(),
//!         body: "My card was charged twice for order ORD-55812 this month.".into(),
//!     })
//!     .await?;
//! assert_eq!(result.classification, Some(Category::Billing));
//! assert_eq!(result.entities.unwrap().order_id.as_deref(), Some("ORD-55812"));
//! println!("{}", result.final_response.unwrap());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod agent;
pub mod commerce;
pub mod demo;
pub mod email;
mod engine;
pub mod facts;
pub mod health;
mod history;
mod kb;
pub mod live;
#[cfg(feature = "openai")]
pub mod llm;
pub mod money;
mod offline;
pub mod plan;
pub mod policy;
pub mod processing;
pub mod queue;
mod result;
pub mod schema;
#[cfg(feature = "settings")]
pub mod settings;
mod state;
pub mod steps;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
mod ticket;
pub mod tools;
pub mod tracing_context;
pub mod webhooks;
mod workflow;

pub use engine::{Engine, EngineError, Opinion, Produced};
pub use history::HistorySource;
pub use kb::{Article, KbError, KnowledgeBase};
pub use offline::OfflineEngine;
pub use result::TicketResult;
pub use state::{
    ActionTaken, ArticleHit, Classification, Conversation, Draft, EngineUse, Entities, Handoff, PastTicket, Research,
    Review, Said, TicketState, TokenUsage, Verdict,
};
pub use ticket::{Category, TicketInput, Urgency};
pub use workflow::{
    AGENT_VERSION, DEFAULT_AGENT_MAX_CALLS, WORKFLOW_VERSION, Workflow, WorkflowBuilder, WorkflowKind, WorkflowRun,
};
