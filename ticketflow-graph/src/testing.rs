//! The conformance suite every [`Checkpointer`] implementation must pass.
//!
//! Call [`conformance`] from a test with a fresh (or shared) checkpointer; every check uses its
//! own thread ids, so one instance may serve the whole suite. Failures panic with a message
//! saying which rule was broken.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use ticketflow_graph::{testing, MemoryCheckpointer};
//! testing::conformance(Arc::new(MemoryCheckpointer::new())).await;
//! # }
//! ```
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::{
    Checkpoint, CheckpointError, Checkpointer, END, Graph, GraphError, NodeError, NodeOutput, Outcome, START, node_fn,
};

/// Runs every check against `checkpointer`.
pub async fn conformance(checkpointer: Arc<dyn Checkpointer>) {
    let prefix = Uuid::new_v4().to_string();
    let cp = checkpointer.as_ref();
    empty_thread(cp, &format!("{prefix}-empty")).await;
    round_trip(cp, &format!("{prefix}-round-trip")).await;
    history_newest_first(cp, &format!("{prefix}-history")).await;
    duplicate_step_conflicts(cp, &format!("{prefix}-duplicate")).await;
    threads_are_isolated(cp, &format!("{prefix}-isolated")).await;
    prune_keeps_newest(cp, &format!("{prefix}-prune")).await;
    delete_thread_removes_all(cp, &format!("{prefix}-delete")).await;
    concurrent_writers_one_wins(checkpointer.clone(), &format!("{prefix}-race")).await;
    graph_resumes_after_crash(checkpointer.clone(), &format!("{prefix}-resume")).await;
}

/// A checkpoint with recognisable contents, for the checks and for stores' own tests.
pub fn sample_checkpoint(thread_id: &str, step: u64, parent_id: Option<Uuid>) -> Checkpoint {
    let state = json!({ "step": step, "text": "ünïcödé ✓ \"quoted\"", "nested": { "list": [1, 2, 3] } });
    Checkpoint {
        thread_id: thread_id.into(),
        id: Uuid::now_v7(),
        parent_id,
        step,
        completed_node: (step > 0).then(|| format!("node-{step}").into()),
        next_node: Some(format!("node-{}", step + 1).into()),
        state: serde_json::value::to_raw_value(&state).unwrap(),
        graph_version: "conformance-v1".into(),
        interrupt: (step == 2).then(|| json!({ "question": "approve refund?" })),
        metadata: json!({ "worker": "w1", "epoch": step }),
        created_at: Utc::now(),
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn assert_same(found: &Checkpoint, expected: &Checkpoint) {
    assert_eq!(found.thread_id, expected.thread_id, "thread_id round-trips");
    assert_eq!(found.id, expected.id, "id round-trips");
    assert_eq!(found.parent_id, expected.parent_id, "parent_id round-trips");
    assert_eq!(found.step, expected.step, "step round-trips");
    assert_eq!(
        found.completed_node, expected.completed_node,
        "completed_node round-trips"
    );
    assert_eq!(found.next_node, expected.next_node, "next_node round-trips");
    let found_state: serde_json::Value = serde_json::from_str(found.state.get()).unwrap();
    let expected_state: serde_json::Value = serde_json::from_str(expected.state.get()).unwrap();
    assert_eq!(found_state, expected_state, "state round-trips");
    assert_eq!(found.graph_version, expected.graph_version, "graph_version round-trips");
    assert_eq!(found.interrupt, expected.interrupt, "interrupt round-trips");
    assert_eq!(found.metadata, expected.metadata, "metadata round-trips");
    assert_eq!(
        millis(found.created_at),
        millis(expected.created_at),
        "created_at round-trips to the millisecond"
    );
}

/// An unknown thread has no latest checkpoint and no history.
pub async fn empty_thread(cp: &dyn Checkpointer, thread: &str) {
    assert!(
        cp.latest(thread).await.unwrap().is_none(),
        "unknown thread has no latest"
    );
    assert!(
        cp.history(thread, 10).await.unwrap().is_empty(),
        "unknown thread has no history"
    );
    assert_eq!(
        cp.prune(thread, 1).await.unwrap(),
        0,
        "pruning an unknown thread removes nothing"
    );
    assert_eq!(
        cp.delete_thread(thread).await.unwrap(),
        0,
        "deleting an unknown thread removes nothing"
    );
}

/// Every field comes back as it was written, and `latest` is the highest step.
pub async fn round_trip(cp: &dyn Checkpointer, thread: &str) {
    let first = sample_checkpoint(thread, 0, None);
    let second = sample_checkpoint(thread, 1, Some(first.id));
    let mut third = sample_checkpoint(thread, 2, Some(second.id));
    third.next_node = None;
    for c in [&first, &second, &third] {
        cp.put(c.clone()).await.unwrap();
    }
    let latest = cp.latest(thread).await.unwrap().expect("latest exists");
    assert_same(&latest, &third);
    assert!(latest.is_finished());
}

/// History is newest first and honours its limit.
pub async fn history_newest_first(cp: &dyn Checkpointer, thread: &str) {
    let mut parent = None;
    let mut written = Vec::new();
    for step in 0..5 {
        let c = sample_checkpoint(thread, step, parent);
        parent = Some(c.id);
        cp.put(c.clone()).await.unwrap();
        written.push(c);
    }
    let all = cp.history(thread, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.step).collect::<Vec<_>>(),
        [4, 3, 2, 1, 0],
        "history is newest first"
    );
    for (found, expected) in all.iter().zip(written.iter().rev()) {
        assert_same(found, expected);
    }
    let two = cp.history(thread, 2).await.unwrap();
    assert_eq!(
        two.iter().map(|c| c.step).collect::<Vec<_>>(),
        [4, 3],
        "history honours its limit"
    );
}

/// A second checkpoint for the same (thread, step) is refused and changes nothing.
pub async fn duplicate_step_conflicts(cp: &dyn Checkpointer, thread: &str) {
    let original = sample_checkpoint(thread, 0, None);
    cp.put(original.clone()).await.unwrap();
    let mut rival = sample_checkpoint(thread, 0, None);
    rival.metadata = json!({ "worker": "stale" });
    match cp.put(rival).await {
        Err(CheckpointError::Conflict { step, .. }) => assert_eq!(step, 0),
        other => panic!("a second write of (thread, step) must be a Conflict, got {other:?}"),
    }
    let latest = cp.latest(thread).await.unwrap().unwrap();
    assert_same(&latest, &original);
    assert_eq!(
        cp.history(thread, 10).await.unwrap().len(),
        1,
        "the loser left nothing behind"
    );
}

/// Writes to one thread never show in another.
pub async fn threads_are_isolated(cp: &dyn Checkpointer, thread: &str) {
    let a = format!("{thread}-a");
    let b = format!("{thread}-b");
    cp.put(sample_checkpoint(&a, 0, None)).await.unwrap();
    cp.put(sample_checkpoint(&a, 1, None)).await.unwrap();
    cp.put(sample_checkpoint(&b, 0, None)).await.unwrap();
    assert_eq!(cp.latest(&b).await.unwrap().unwrap().step, 0);
    assert_eq!(cp.history(&a, 10).await.unwrap().len(), 2);
    assert_eq!(cp.history(&b, 10).await.unwrap().len(), 1);
}

/// Pruning keeps the newest checkpoints (at least one) and reports what it removed.
pub async fn prune_keeps_newest(cp: &dyn Checkpointer, thread: &str) {
    for step in 0..6 {
        cp.put(sample_checkpoint(thread, step, None)).await.unwrap();
    }
    assert_eq!(cp.prune(thread, 2).await.unwrap(), 4, "prune reports what it removed");
    let left = cp.history(thread, 10).await.unwrap();
    assert_eq!(left.iter().map(|c| c.step).collect::<Vec<_>>(), [5, 4]);
    assert_eq!(
        cp.prune(thread, 0).await.unwrap(),
        1,
        "keep_last 0 still keeps the newest"
    );
    assert_eq!(cp.latest(thread).await.unwrap().unwrap().step, 5);
}

/// Deleting a thread removes all of its checkpoints and nothing else.
pub async fn delete_thread_removes_all(cp: &dyn Checkpointer, thread: &str) {
    let other = format!("{thread}-other");
    for step in 0..3 {
        cp.put(sample_checkpoint(thread, step, None)).await.unwrap();
    }
    cp.put(sample_checkpoint(&other, 0, None)).await.unwrap();
    assert_eq!(cp.delete_thread(thread).await.unwrap(), 3);
    assert!(cp.latest(thread).await.unwrap().is_none());
    assert!(
        cp.latest(&other).await.unwrap().is_some(),
        "other threads are untouched"
    );
    // The thread can start again after deletion.
    cp.put(sample_checkpoint(thread, 0, None)).await.unwrap();
}

/// Of many concurrent writers of the same step, exactly one wins.
pub async fn concurrent_writers_one_wins(cp: Arc<dyn Checkpointer>, thread: &str) {
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let cp = cp.clone();
            let c = sample_checkpoint(thread, 0, None);
            tokio::spawn(async move { cp.put(c).await })
        })
        .collect();
    let mut won = 0;
    for writer in writers {
        match writer.await.unwrap() {
            Ok(()) => won += 1,
            Err(CheckpointError::Conflict { .. }) => {}
            Err(other) => panic!("a losing concurrent writer must get Conflict, got {other}"),
        }
    }
    assert_eq!(won, 1, "exactly one concurrent writer of a step wins");
}

/// A graph run through this checkpointer resumes after a failed node without re-running the
/// nodes that completed, and ends as an uninterrupted run would.
pub async fn graph_resumes_after_crash(cp: Arc<dyn Checkpointer>, thread: &str) {
    let runs = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)]);
    let fail_once = Arc::new(AtomicUsize::new(1));
    let node = |i: usize| {
        let runs = runs.clone();
        let fail_once = fail_once.clone();
        node_fn(move |mut s: Vec<u32>, _ctx| {
            let runs = runs.clone();
            let fail_once = fail_once.clone();
            async move {
                runs[i].fetch_add(1, Ordering::SeqCst);
                if i == 2 && fail_once.fetch_sub(1, Ordering::SeqCst) == 1 {
                    return Err(NodeError::new("injected crash"));
                }
                s.push(i as u32);
                Ok(NodeOutput::Continue(s))
            }
        })
    };
    let graph = Graph::<Vec<u32>>::builder()
        .node("a", node(0))
        .node("b", node(1))
        .node("c", node(2))
        .edge(START, "a")
        .edge("a", "b")
        .edge("b", "c")
        .edge("c", END)
        .compile()
        .unwrap();
    let runner = graph.with_checkpointer(cp.clone());
    match runner.invoke(thread, vec![]).await {
        Err(GraphError::NodeFailed { node, .. }) => assert_eq!(node, "c"),
        other => panic!("expected the injected failure, got {other:?}"),
    }
    let outcome = runner.resume(thread).await.unwrap();
    assert!(matches!(&outcome, Outcome::Finished { state, .. } if state == &vec![0, 1, 2]));
    let counts: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
    assert_eq!(
        counts,
        [1, 1, 2],
        "completed nodes never re-run; the failed one runs again"
    );
    let history = cp.history(thread, 100).await.unwrap();
    assert_eq!(history.len(), 4, "input + one checkpoint per completed node");
    assert_eq!(history[0].completed_node.as_deref(), Some("c"));
    assert!(history[0].is_finished());
}
