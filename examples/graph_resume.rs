//! A durable graph in thirty lines: a draft/review loop that "crashes" halfway, then resumes
//! from its last checkpoint without redoing finished work.
//!
//! ```text
//! cargo run -p examples --example graph_resume
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use ticketflow_graph::{END, Graph, MemoryCheckpointer, NodeError, NodeOutput, START, node_fn};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Essay {
    drafts: u32,
    log: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The second review "crashes" the process once, as a power cut would.
    let crashed = Arc::new(AtomicBool::new(false));
    let crash_once = crashed.clone();

    let graph = Graph::<Essay>::builder()
        .node(
            "draft",
            node_fn(|mut e: Essay, ctx| async move {
                e.drafts += 1;
                e.log.push(format!("step {}: wrote draft {}", ctx.step(), e.drafts));
                Ok(NodeOutput::Continue(e))
            }),
        )
        .node(
            "review",
            node_fn(move |mut e: Essay, ctx| {
                let crash_once = crash_once.clone();
                async move {
                    if e.drafts == 2 && !crash_once.swap(true, Ordering::SeqCst) {
                        return Err(NodeError::new("simulated crash during review"));
                    }
                    e.log.push(format!("step {}: reviewed draft {}", ctx.step(), e.drafts));
                    Ok(NodeOutput::Continue(e))
                }
            }),
        )
        .node(
            "publish",
            node_fn(|mut e: Essay, ctx| async move {
                e.log.push(format!("step {}: published", ctx.step()));
                Ok(NodeOutput::Continue(e))
            }),
        )
        .edge(START, "draft")
        .edge("draft", "review")
        .route("review", [("revise", "draft"), ("accept", "publish")], |e: &Essay| {
            if e.drafts < 3 { "revise" } else { "accept" }
        })
        .edge("publish", END)
        .compile()?;

    println!("{}", graph.to_mermaid());

    let checkpoints = Arc::new(MemoryCheckpointer::new());
    let runner = graph.with_checkpointer(checkpoints.clone());
    match runner.invoke("essay-1", Essay::default()).await {
        Err(err) => println!("run stopped: {err}"),
        Ok(_) => anyhow::bail!("expected the simulated crash"),
    }
    println!("checkpoints kept before the crash: {}", checkpoints.len());

    let essay = runner.resume("essay-1").await?.into_state();
    println!("resumed and finished after {} drafts:", essay.drafts);
    for line in &essay.log {
        println!("  {line}");
    }
    assert!(crashed.load(Ordering::SeqCst));
    Ok(())
}
