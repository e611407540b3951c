//! Time per step of a 6-node linear graph over a 2 KB state, with no checkpointer and with the
//! in-memory one (which serializes the state after every node, as a durable store would).
//!
//! ```text
//! cargo bench -p benches --bench graph_step
//! ```
//!
//! Criterion reports the time of one 6-step run; "thrpt" is steps per second.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use ticketflow_graph::{END, Graph, MemoryCheckpointer, NodeOutput, START, node_fn};

const STEPS: usize = 6;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Ticket {
    id: String,
    subject: String,
    body: String,
    tags: Vec<String>,
    visits: [u32; STEPS],
}

fn ticket() -> Ticket {
    let ticket = Ticket {
        id: "0b7c2c6e-8f9d-4c47-9a51-2f0d5f0ad0a1".into(),
        subject: "I was charged twice for order ORD-55812".into(),
        body: "Hello, I noticed two identical charges on my card statement this morning. ".repeat(24),
        tags: (0..8).map(|i| format!("tag-{i}")).collect(),
        visits: [0; STEPS],
    };
    let size = serde_json::to_vec(&ticket).map(|v| v.len()).unwrap_or_default();
    assert!(
        (1900..2300).contains(&size),
        "state should be about 2 KB, is {size} bytes"
    );
    ticket
}

fn linear_graph() -> Graph<Ticket> {
    let mut builder = Graph::builder();
    let names = ["classify", "extract", "research", "draft", "review", "finalize"];
    for (i, name) in names.iter().enumerate() {
        builder = builder.node(
            name,
            node_fn(move |mut t: Ticket, _ctx| async move {
                t.visits[i] += 1;
                Ok(NodeOutput::Continue(t))
            }),
        );
    }
    builder = builder.edge(START, names[0]);
    for pair in names.windows(2) {
        builder = builder.edge(pair[0], pair[1]);
    }
    builder.edge(names[STEPS - 1], END).compile().expect("valid graph")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let graph = linear_graph();
    let input = ticket();

    let mut group = c.benchmark_group("graph_step");
    group.throughput(Throughput::Elements(STEPS as u64));
    group.bench_function("no_checkpointer", |b| {
        b.to_async(&rt).iter_batched(
            || input.clone(),
            |t| async { black_box(graph.invoke("t", t).await.expect("run")) },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("memory_checkpointer", |b| {
        b.to_async(&rt).iter_batched(
            // A fresh checkpointer per run, so history does not pile up across iterations.
            || (Arc::new(MemoryCheckpointer::new()), input.clone()),
            |(checkpoints, t)| async {
                let outcome = graph.with_checkpointer(checkpoints.clone()).invoke("t", t).await;
                black_box(outcome.expect("run"));
                checkpoints
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
