//! Property: crash a run at any point — before or after any checkpoint commits, any number of
//! times — and recovery by `run_once` (or `invoke`, for crashes before the run finished)
//! finishes it with every committed node run exactly once, the
//! node in flight at each crash run once more, and the same final state as an uninterrupted run.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use ticketflow_graph::{
    Checkpoint, CheckpointError, Checkpointer, END, Graph, MemoryCheckpointer, NodeContext, NodeOutput, START, node_fn,
};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Trail {
    visited: Vec<String>,
    loops: u32,
}

/// (step, node) of every node execution, crashed or not.
type Executions = Arc<Mutex<Vec<(u64, String)>>>;

fn graph(executions: Executions) -> Graph<Trail> {
    let node = |name: &'static str| {
        let executions = executions.clone();
        node_fn(move |mut t: Trail, ctx: NodeContext| {
            executions.lock().unwrap().push((ctx.step(), name.to_owned()));
            async move {
                t.visited.push(name.to_owned());
                if name == "check" {
                    t.loops += 1;
                }
                Ok(NodeOutput::Continue(t))
            }
        })
    };
    // start -> work -> check -(again)-> work ... -(done)-> finish
    Graph::builder()
        .node("start", node("start"))
        .node("work", node("work"))
        .node("check", node("check"))
        .node("finish", node("finish"))
        .edge(START, "start")
        .edge("start", "work")
        .edge("work", "check")
        .route("check", [("again", "work"), ("done", "finish")], |t: &Trail| {
            if t.loops < 3 { "again" } else { "done" }
        })
        .edge("finish", END)
        .compile()
        .unwrap()
}

/// A crash point: the n-th `put` overall, failing before or after the write commits.
#[derive(Debug, Clone, Copy)]
struct Crash {
    put: usize,
    after_commit: bool,
}

/// Wraps the memory checkpointer and "crashes" (fails the run) at the planned puts.
struct CrashingCheckpointer {
    inner: MemoryCheckpointer,
    plan: Vec<Crash>,
    puts: AtomicUsize,
    /// Steps whose write was lost to a crash before commit.
    lost_steps: Mutex<Vec<u64>>,
}

#[async_trait]
impl Checkpointer for CrashingCheckpointer {
    async fn put(&self, checkpoint: Checkpoint) -> Result<(), CheckpointError> {
        let n = self.puts.fetch_add(1, Ordering::SeqCst);
        match self.plan.iter().find(|c| c.put == n) {
            None => self.inner.put(checkpoint).await,
            Some(crash) if crash.after_commit => {
                self.inner.put(checkpoint).await?;
                Err(CheckpointError::storage("crash after commit"))
            }
            Some(_) => {
                self.lost_steps.lock().unwrap().push(checkpoint.step);
                Err(CheckpointError::storage("crash before commit"))
            }
        }
    }
    async fn latest(&self, thread_id: &str) -> Result<Option<Checkpoint>, CheckpointError> {
        self.inner.latest(thread_id).await
    }
    async fn history(&self, thread_id: &str, limit: usize) -> Result<Vec<Checkpoint>, CheckpointError> {
        self.inner.history(thread_id, limit).await
    }
    async fn delete_thread(&self, thread_id: &str) -> Result<u64, CheckpointError> {
        self.inner.delete_thread(thread_id).await
    }
    async fn prune(&self, thread_id: &str, keep_last: usize) -> Result<u64, CheckpointError> {
        self.inner.prune(thread_id, keep_last).await
    }
}

fn crash_plan() -> impl Strategy<Value = Vec<Crash>> {
    // An uninterrupted run makes 9 puts (input + 8 nodes); every crash adds at most one.
    prop::collection::vec((0usize..12, any::<bool>()), 1..4).prop_map(|points| {
        let mut seen = HashSet::new();
        points
            .into_iter()
            .filter(|(put, _)| seen.insert(*put))
            .map(|(put, after_commit)| Crash { put, after_commit })
            .collect()
    })
}

async fn uninterrupted() -> Trail {
    let graph = graph(Executions::default());
    graph.invoke("clean", Trail::default()).await.unwrap().into_state()
}

async fn crash_and_recover(plan: Vec<Crash>, recover_with_invoke: bool) -> Result<(), TestCaseError> {
    let expected = uninterrupted().await;
    let executions = Executions::default();
    let graph = graph(executions.clone());
    let checkpointer = Arc::new(CrashingCheckpointer {
        inner: MemoryCheckpointer::new(),
        plan: plan.clone(),
        puts: AtomicUsize::new(0),
        lost_steps: Mutex::default(),
    });
    let runner = graph.with_checkpointer(checkpointer.clone());

    // Recover the way a worker does after a crash: run again with the same input.
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        prop_assert!(attempts <= plan.len() + 1, "recovery does not converge");
        let run = if recover_with_invoke {
            runner.invoke("t", Trail::default()).await
        } else {
            runner.run_once("t", Trail::default()).await
        };
        match run {
            Ok(outcome) => break outcome,
            Err(err) => prop_assert!(err.to_string().contains("crash"), "unexpected error {err}"),
        }
    };

    prop_assert!(outcome.is_finished());
    prop_assert_eq!(outcome.state(), &expected, "final state equals an uninterrupted run's");

    let history = checkpointer.inner.history("t", 100).await.unwrap();
    let steps: Vec<u64> = history.iter().rev().map(|c| c.step).collect();
    prop_assert_eq!(
        steps,
        (0..=8).collect::<Vec<u64>>(),
        "one committed checkpoint per step"
    );

    let mut runs: BTreeMap<u64, usize> = BTreeMap::new();
    for (step, _) in executions.lock().unwrap().iter() {
        *runs.entry(*step).or_default() += 1;
    }
    let lost = checkpointer.lost_steps.lock().unwrap().clone();
    for step in 1..=8u64 {
        let in_flight_at_crashes = lost.iter().filter(|&&s| s == step).count();
        prop_assert_eq!(
            runs.get(&step).copied().unwrap_or(0),
            1 + in_flight_at_crashes,
            "step {} ran once, plus once per crash that caught it in flight (plan {:?})",
            step,
            &plan
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn crashes_anywhere_never_rerun_committed_nodes(plan in crash_plan()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(crash_and_recover(plan, false))?;
    }
}

/// The same property, exhaustively over every single crash point.
#[tokio::test]
async fn every_single_crash_point() {
    for put in 0..9 {
        for after_commit in [false, true] {
            crash_and_recover(vec![Crash { put, after_commit }], false)
                .await
                .unwrap();
        }
    }
}

/// `invoke` resumes an unfinished thread instead of starting it over.
#[tokio::test]
async fn invoke_resumes_an_unfinished_thread() {
    // Put 8 is the final checkpoint: after it commits the thread is finished, and `invoke`
    // would rightly start a new run, so only the earlier points apply.
    for put in 0..8 {
        for after_commit in [false, true] {
            crash_and_recover(vec![Crash { put, after_commit }], true)
                .await
                .unwrap();
        }
    }
}
