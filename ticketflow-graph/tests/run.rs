//! Running graphs: routing, loops, limits, retries, timeouts, interrupts, observers,
//! cancellation and durability modes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use ticketflow_graph::{
    CancellationToken, Checkpointer, Durability, END, Event, Graph, GraphError, MemoryCheckpointer, NodeContext,
    NodeError, NodeOutput, Outcome, RetryPolicy, START, node_fn,
};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Doc {
    trail: Vec<String>,
    revisions: u32,
}

fn visit(name: &'static str) -> impl ticketflow_graph::Node<Doc> {
    node_fn(move |mut d: Doc, _ctx| async move {
        d.trail.push(name.to_owned());
        Ok(NodeOutput::Continue(d))
    })
}

/// draft -> review -(revise)-> draft ... -(accept)-> publish
fn review_loop(revisions: u32) -> Graph<Doc> {
    Graph::builder()
        .node(
            "draft",
            node_fn(|mut d: Doc, _| async move {
                d.trail.push("draft".into());
                d.revisions += 1;
                Ok(NodeOutput::Continue(d))
            }),
        )
        .node("review", visit("review"))
        .node("publish", visit("publish"))
        .edge(START, "draft")
        .edge("draft", "review")
        .route(
            "review",
            [("revise", "draft"), ("accept", "publish")],
            move |d: &Doc| {
                if d.revisions < revisions { "revise" } else { "accept" }
            },
        )
        .edge("publish", END)
        .compile()
        .unwrap()
}

#[tokio::test]
async fn a_conditional_loop_runs_until_its_route_leaves() {
    let outcome = review_loop(3).invoke("t", Doc::default()).await.unwrap();
    let Outcome::Finished { state, step } = outcome else {
        panic!("finished")
    };
    assert_eq!(
        state.trail,
        ["draft", "review", "draft", "review", "draft", "review", "publish"]
    );
    assert_eq!(step, 7);
}

#[tokio::test]
async fn a_cycle_that_never_ends_hits_the_step_limit() {
    let graph = Graph::<Doc>::builder()
        .node("spin", visit("spin"))
        .edge(START, "spin")
        .route("spin", ["spin", END], |_| "spin")
        .step_limit(10)
        .compile()
        .unwrap();
    let err = graph.invoke("t", Doc::default()).await.unwrap_err();
    assert!(
        matches!(err, GraphError::StepLimit { limit: 10, ref node } if node == "spin"),
        "{err}"
    );
}

#[tokio::test]
async fn a_route_to_an_undeclared_key_is_an_error() {
    let graph = Graph::<Doc>::builder()
        .node("a", visit("a"))
        .edge(START, "a")
        .route("a", [END], |_| "elsewhere")
        .compile()
        .unwrap();
    let err = graph.invoke("t", Doc::default()).await.unwrap_err();
    assert!(matches!(err, GraphError::InvalidRoute { ref to, .. } if to == "elsewhere"));
}

#[tokio::test]
async fn a_node_may_choose_among_its_declared_targets() {
    let chooser = |target: &'static str| {
        node_fn(move |d: Doc, _| async move {
            Ok(NodeOutput::Goto {
                state: d,
                node: target.to_owned(),
            })
        })
    };
    let build = |target| {
        Graph::<Doc>::builder()
            .node("choose", chooser(target))
            .node("left", visit("left"))
            .node("right", visit("right"))
            .edge(START, "choose")
            .route("choose", ["left", "right"], |_| "left")
            .edge("left", END)
            .edge("right", END)
            .compile()
            .unwrap()
    };
    let state = build("right").invoke("t", Doc::default()).await.unwrap().into_state();
    assert_eq!(state.trail, ["right"]);
    let err = build(END).invoke("t", Doc::default()).await.unwrap_err();
    assert!(
        matches!(err, GraphError::InvalidRoute { .. }),
        "END is not a declared target here"
    );
}

#[tokio::test]
async fn the_context_tells_the_node_where_it_is() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let graph = Graph::<Doc>::builder()
        .node("a", visit("a"))
        .node(
            "b",
            node_fn(move |d: Doc, ctx: NodeContext| {
                record.lock().unwrap().push((
                    ctx.thread_id().to_owned(),
                    ctx.node().to_owned(),
                    ctx.step(),
                    ctx.attempt(),
                ));
                async move { Ok(NodeOutput::Continue(d)) }
            }),
        )
        .edge(START, "a")
        .edge("a", "b")
        .edge("b", END)
        .compile()
        .unwrap();
    graph.invoke("thread-9", Doc::default()).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [("thread-9".to_owned(), "b".to_owned(), 2, 1)]);
}

/// Fails its first `failures` calls; records the attempt number each call saw.
fn flaky(failures: u32, calls: Arc<Mutex<Vec<u32>>>) -> impl ticketflow_graph::Node<Doc> {
    node_fn(move |mut d: Doc, ctx: NodeContext| {
        let calls = calls.clone();
        async move {
            let n = {
                let mut calls = calls.lock().unwrap();
                calls.push(ctx.attempt());
                calls.len() as u32
            };
            if n <= failures {
                return Err(NodeError::new(format!("failure {n}")));
            }
            d.trail.push("flaky".into());
            Ok(NodeOutput::Continue(d))
        }
    })
}

fn one_node(node: impl ticketflow_graph::Node<Doc>) -> ticketflow_graph::GraphBuilder<Doc> {
    Graph::<Doc>::builder().node("n", node).edge(START, "n").edge("n", END)
}

#[tokio::test(start_paused = true)]
async fn a_retry_policy_reruns_a_failing_node_with_backoff() {
    let calls: Arc<Mutex<Vec<u32>>> = Arc::default();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let graph = one_node(flaky(2, calls.clone()))
        .retry("n", RetryPolicy::default().jitter(false))
        .compile()
        .unwrap();
    let started = tokio::time::Instant::now();
    let outcome = graph
        .runner()
        .observer(Arc::new(move |e: &Event<'_>| {
            if let Event::Retrying { attempt, delay, .. } = e {
                sink.lock().unwrap().push((*attempt, *delay));
            }
        }))
        .invoke("t", Doc::default())
        .await
        .unwrap();
    assert_eq!(outcome.state().trail, ["flaky"]);
    assert_eq!(
        *calls.lock().unwrap(),
        [1, 2, 3],
        "3 attempts in all by default, counted in the context"
    );
    assert_eq!(
        *events.lock().unwrap(),
        [(1, Duration::from_millis(500)), (2, Duration::from_secs(1))],
        "LangGraph's defaults: 0.5 s, doubling"
    );
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn retries_give_up_after_max_attempts() {
    let calls: Arc<Mutex<Vec<u32>>> = Arc::default();
    let graph = one_node(flaky(10, calls.clone()))
        .retry("n", RetryPolicy::default().max_attempts(4))
        .compile()
        .unwrap();
    let err = graph.invoke("t", Doc::default()).await.unwrap_err();
    assert!(matches!(err, GraphError::NodeFailed { attempts: 4, .. }), "{err}");
    assert_eq!(calls.lock().unwrap().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn errors_the_predicate_rejects_are_not_retried() {
    let calls: Arc<Mutex<Vec<u32>>> = Arc::default();
    let graph = one_node(flaky(10, calls.clone()))
        .retry("n", RetryPolicy::default().retry_on(NodeError::is_timeout))
        .compile()
        .unwrap();
    graph.invoke("t", Doc::default()).await.unwrap_err();
    assert_eq!(calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn nodes_without_a_policy_are_not_retried() {
    let calls: Arc<Mutex<Vec<u32>>> = Arc::default();
    let graph = one_node(flaky(1, calls.clone())).compile().unwrap();
    let err = graph.invoke("t", Doc::default()).await.unwrap_err();
    assert!(matches!(err, GraphError::NodeFailed { attempts: 1, ref source, .. } if source.to_string() == "failure 1"));
    assert_eq!(calls.lock().unwrap().len(), 1);
}

fn sleeper(first: Duration, calls: Arc<AtomicU32>) -> impl ticketflow_graph::Node<Doc> {
    node_fn(move |d: Doc, _| {
        let calls = calls.clone();
        async move {
            // Only the first attempt is slow.
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::time::sleep(first).await;
            }
            Ok(NodeOutput::Continue(d))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_timeout_fails_the_attempt_and_can_be_retried() {
    let calls = Arc::new(AtomicU32::new(0));
    let graph = one_node(sleeper(Duration::from_secs(60), calls.clone()))
        .timeout("n", Duration::from_secs(1))
        .compile()
        .unwrap();
    let err = graph.invoke("t", Doc::default()).await.unwrap_err();
    assert!(matches!(err, GraphError::NodeFailed { ref source, .. } if source.is_timeout()));

    let calls = Arc::new(AtomicU32::new(0));
    let graph = one_node(sleeper(Duration::from_secs(60), calls.clone()))
        .timeout("n", Duration::from_secs(1))
        .retry("n", RetryPolicy::default().retry_on(NodeError::is_timeout))
        .compile()
        .unwrap();
    graph.invoke("t", Doc::default()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// approve pauses until a human says yes.
fn approval_graph() -> Graph<Doc> {
    Graph::<Doc>::builder()
        .node("prepare", visit("prepare"))
        .node(
            "approve",
            node_fn(|mut d: Doc, ctx: NodeContext| async move {
                match ctx.resume_value() {
                    None => Ok(NodeOutput::Interrupt {
                        state: d,
                        payload: json!({ "question": "refund 40 EUR?" }),
                    }),
                    Some(answer) => {
                        d.trail.push(format!("approved={answer}"));
                        Ok(NodeOutput::Continue(d))
                    }
                }
            }),
        )
        .node("act", visit("act"))
        .edge(START, "prepare")
        .edge("prepare", "approve")
        .edge("approve", "act")
        .edge("act", END)
        .compile()
        .unwrap()
}

#[tokio::test]
async fn an_interrupt_pauses_and_resume_with_passes_the_answer() {
    let graph = approval_graph();
    let checkpoints = Arc::new(MemoryCheckpointer::new());
    let runner = graph.with_checkpointer(checkpoints.clone());
    let paused = runner.invoke("t", Doc::default()).await.unwrap();
    let Outcome::Interrupted {
        node, payload, state, ..
    } = paused
    else {
        panic!("paused")
    };
    assert_eq!(node, "approve");
    assert_eq!(payload["question"], "refund 40 EUR?");
    assert_eq!(state.trail, ["prepare"]);
    let latest = checkpoints.latest("t").await.unwrap().unwrap();
    assert_eq!(latest.next_node.as_deref(), Some("approve"));
    assert!(latest.interrupt.is_some(), "the pause is persisted");

    // Resuming without an answer pauses again; with one, the run finishes.
    assert!(!runner.resume("t").await.unwrap().is_finished());
    let done = runner.resume_with("t", json!(true)).await.unwrap();
    assert_eq!(done.into_state().trail, ["prepare", "approved=true", "act"]);
}

#[tokio::test]
async fn the_observer_sees_every_step() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    review_loop(2)
        .runner()
        .observer(Arc::new(move |e: &Event<'_>| {
            let line = match e {
                Event::Started { node, step, .. } => format!("start {node} {step}"),
                Event::Completed { node, step, .. } => format!("done {node} {step}"),
                Event::Finished { step, .. } => format!("finished {step}"),
                other => format!("{other:?}"),
            };
            sink.lock().unwrap().push(line);
        }))
        .invoke("t", Doc::default())
        .await
        .unwrap();
    assert_eq!(
        *events.lock().unwrap(),
        [
            "start draft 1",
            "done draft 1",
            "start review 2",
            "done review 2",
            "start draft 3",
            "done draft 3",
            "start review 4",
            "done review 4",
            "start publish 5",
            "done publish 5",
            "finished 5"
        ]
    );
}

#[tokio::test]
async fn a_failed_node_is_reported_to_the_observer() {
    let failed = Arc::new(Mutex::new(None));
    let sink = failed.clone();
    let graph = one_node(flaky(1, Arc::default())).compile().unwrap();
    graph
        .runner()
        .observer(Arc::new(move |e: &Event<'_>| {
            if let Event::Failed { node, error, .. } = e {
                *sink.lock().unwrap() = Some(format!("{node}: {error}"));
            }
        }))
        .invoke("t", Doc::default())
        .await
        .unwrap_err();
    assert_eq!(failed.lock().unwrap().as_deref(), Some("n: failure 1"));
}

#[tokio::test(start_paused = true)]
async fn cancellation_stops_a_running_node() {
    let token = CancellationToken::new();
    let graph = one_node(sleeper(Duration::from_secs(3600), Arc::new(AtomicU32::new(0))))
        .compile()
        .unwrap();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        cancel.cancel();
    });
    let err = graph
        .runner()
        .cancellation(token)
        .invoke("t", Doc::default())
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Cancelled));
}

#[tokio::test]
async fn every_durability_mode_ends_in_the_same_checkpointed_state() {
    for (mode, kept) in [(Durability::Sync, 8), (Durability::Async, 8), (Durability::Exit, 1)] {
        let checkpoints = Arc::new(MemoryCheckpointer::new());
        let graph = review_loop(3);
        let outcome = graph
            .with_checkpointer(checkpoints.clone())
            .durability(mode)
            .invoke("t", Doc::default())
            .await
            .unwrap();
        let latest = checkpoints.latest("t").await.unwrap().unwrap();
        assert!(latest.is_finished(), "{mode:?}");
        assert_eq!(latest.state::<Doc>().unwrap(), *outcome.state(), "{mode:?}");
        assert_eq!(
            checkpoints.len(),
            kept,
            "{mode:?} keeps input + 7 steps, or only the last"
        );
    }
}

#[tokio::test]
async fn exit_durability_saves_the_last_good_state_when_a_node_fails() {
    let checkpoints = Arc::new(MemoryCheckpointer::new());
    let graph = Graph::<Doc>::builder()
        .node("a", visit("a"))
        .node("b", flaky(1, Arc::default()))
        .edge(START, "a")
        .edge("a", "b")
        .edge("b", END)
        .compile()
        .unwrap();
    let runner = graph
        .with_checkpointer(checkpoints.clone())
        .durability(Durability::Exit);
    runner.invoke("t", Doc::default()).await.unwrap_err();
    let latest = checkpoints.latest("t").await.unwrap().unwrap();
    assert_eq!(latest.next_node.as_deref(), Some("b"));
    let state = runner.resume("t").await.unwrap().into_state();
    assert_eq!(state.trail, ["a", "flaky"]);
}

#[tokio::test]
async fn checkpoints_chain_and_record_what_completed() {
    let checkpoints = Arc::new(MemoryCheckpointer::new());
    let graph = review_loop(1);
    graph
        .with_checkpointer(checkpoints.clone())
        .metadata(json!({ "ticket": 42 }))
        .invoke("t", Doc::default())
        .await
        .unwrap();
    let mut history = checkpoints.history("t", 100).await.unwrap();
    history.reverse();
    let completed: Vec<_> = history.iter().map(|c| c.completed_node.as_deref()).collect();
    assert_eq!(completed, [None, Some("draft"), Some("review"), Some("publish")]);
    let next: Vec<_> = history.iter().map(|c| c.next_node.as_deref()).collect();
    assert_eq!(next, [Some("draft"), Some("review"), Some("publish"), None]);
    assert_eq!(history[0].parent_id, None);
    for pair in history.windows(2) {
        assert_eq!(
            pair[1].parent_id,
            Some(pair[0].id),
            "each checkpoint points at its parent"
        );
        assert_eq!(pair[1].step, pair[0].step + 1);
    }
    assert!(
        history
            .iter()
            .all(|c| c.metadata["ticket"] == 42 && *c.graph_version == *graph.version())
    );
}

#[tokio::test]
async fn invoke_on_a_finished_thread_starts_a_new_run_after_it() {
    let checkpoints = Arc::new(MemoryCheckpointer::new());
    let graph = review_loop(1);
    let runner = graph.with_checkpointer(checkpoints.clone());
    let first = runner.invoke("t", Doc::default()).await.unwrap();
    assert!(matches!(first, Outcome::Finished { step: 3, .. }));
    // resume on a finished thread runs nothing.
    assert_eq!(runner.resume("t").await.unwrap(), first);
    let second = runner.invoke("t", Doc::default()).await.unwrap();
    assert!(matches!(second, Outcome::Finished { step: 7, .. }), "{second:?}");
}

#[tokio::test]
async fn a_checkpoint_of_another_graph_version_is_refused() {
    let checkpoints = Arc::new(MemoryCheckpointer::new());
    let v1 = approval_graph();
    v1.with_checkpointer(checkpoints.clone())
        .invoke("t", Doc::default())
        .await
        .unwrap();
    let v2 = Graph::<Doc>::builder()
        .node("prepare", visit("prepare"))
        .node("approve", visit("approve"))
        .edge(START, "prepare")
        .edge("prepare", "approve")
        .edge("approve", END)
        .compile()
        .unwrap();
    let err = v2.with_checkpointer(checkpoints.clone()).resume("t").await.unwrap_err();
    assert!(matches!(err, GraphError::VersionMismatch { .. }), "{err}");
}

/// The approval graph's next version: a `notify` step after `act`, and it continues the
/// threads the first version paused.
fn approval_graph_v2() -> Graph<Doc> {
    Graph::<Doc>::builder()
        .node("prepare", visit("prepare"))
        .node(
            "approve",
            node_fn(|mut d: Doc, ctx: NodeContext| async move {
                match ctx.resume_value() {
                    None => Ok(NodeOutput::Interrupt {
                        state: d,
                        payload: json!({ "question": "refund 40 EUR?" }),
                    }),
                    Some(answer) => {
                        d.trail.push(format!("v2 approved={answer}"));
                        Ok(NodeOutput::Continue(d))
                    }
                }
            }),
        )
        .node("act", visit("act"))
        .node("notify", visit("notify"))
        .edge(START, "prepare")
        .edge("prepare", "approve")
        .edge("approve", "act")
        .edge("act", "notify")
        .edge("notify", END)
        .version("approval-v2")
        .resumes_from(approval_graph().version())
        .compile()
        .unwrap()
}

#[tokio::test]
async fn a_newer_version_that_declares_it_resumes_a_paused_thread() {
    let checkpoints = Arc::new(MemoryCheckpointer::new());
    let v1 = approval_graph();
    let paused = v1
        .with_checkpointer(checkpoints.clone())
        .invoke("t", Doc::default())
        .await
        .unwrap();
    assert!(!paused.is_finished());
    let v2 = approval_graph_v2();
    assert!(v2.continues(v1.version()) && v2.continues("approval-v2") && !v2.continues("other"));
    let done = v2
        .with_checkpointer(checkpoints.clone())
        .resume_with("t", json!(true))
        .await
        .unwrap();
    // Nothing before the pause ran again; the new version's nodes ran after it.
    assert_eq!(
        done.into_state().trail,
        ["prepare", "v2 approved=true", "act", "notify"]
    );
    let latest = checkpoints.latest("t").await.unwrap().unwrap();
    assert_eq!(
        &*latest.graph_version, "approval-v2",
        "the new checkpoints carry the new version"
    );
    // The old version does not declare the new one: it refuses the thread now.
    let err = v1.with_checkpointer(checkpoints.clone()).resume("t").await.unwrap_err();
    assert!(matches!(err, GraphError::VersionMismatch { .. }), "{err}");
}

#[tokio::test]
async fn nodes_see_the_run_metadata() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let graph = one_node(node_fn(move |d: Doc, ctx: NodeContext| {
        record.lock().unwrap().push(ctx.metadata().clone());
        async move { Ok(NodeOutput::Continue(d)) }
    }))
    .compile()
    .unwrap();
    let checkpoints = Arc::new(MemoryCheckpointer::new());
    graph
        .with_checkpointer(checkpoints.clone())
        .metadata(json!({ "lease_epoch": 3 }))
        .invoke("t", Doc::default())
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [json!({ "lease_epoch": 3 })]);
    let latest = checkpoints.latest("t").await.unwrap().unwrap();
    assert_eq!(latest.metadata, json!({ "lease_epoch": 3 }));
    assert_eq!(NodeContext::new("t", "n", 1).metadata(), &serde_json::Value::Null);
}

#[tokio::test]
async fn resume_without_a_checkpoint_is_an_error() {
    let graph = review_loop(1);
    let err = graph
        .with_checkpointer(Arc::new(MemoryCheckpointer::new()))
        .resume("nobody")
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::NoCheckpoint(t) if t == "nobody"));
}

#[tokio::test]
async fn retain_history_prunes_after_a_run() {
    let checkpoints = Arc::new(MemoryCheckpointer::new());
    review_loop(3)
        .with_checkpointer(checkpoints.clone())
        .retain_history(2)
        .invoke("t", Doc::default())
        .await
        .unwrap();
    assert_eq!(checkpoints.len(), 2);
    assert!(checkpoints.latest("t").await.unwrap().unwrap().is_finished());
}

#[tokio::test]
async fn a_stale_run_loses_to_the_run_that_wrote_first() {
    let checkpoints = Arc::new(MemoryCheckpointer::new());
    let graph = review_loop(1);
    let runner = graph.with_checkpointer(checkpoints.clone());
    runner.invoke("t", Doc::default()).await.unwrap();
    // Replay a write at a step that already exists, as a run that lost its lease would.
    let mut stale = checkpoints.history("t", 10).await.unwrap().pop().unwrap();
    stale.metadata = json!("stale");
    let err = checkpoints.put(stale).await.unwrap_err();
    assert!(err.is_superseded());
}

#[tokio::test]
async fn the_memory_checkpointer_passes_the_conformance_suite() {
    ticketflow_graph::testing::conformance(Arc::new(MemoryCheckpointer::new())).await;
}

#[test]
fn drawings_show_nodes_and_labelled_routes() {
    let graph = review_loop(2);
    let mermaid = graph.to_mermaid();
    assert!(mermaid.starts_with("flowchart TD"));
    assert!(mermaid.contains("__start__ --> draft"));
    assert!(mermaid.contains("review -.->|revise| draft"));
    assert!(mermaid.contains("review -.->|accept| publish"));
    assert!(mermaid.contains("publish --> __end__"));
    let dot = graph.to_dot();
    assert!(dot.contains("\"review\" -> \"draft\" [style=dashed, label=\"revise\"];"));
    assert!(dot.contains("\"draft\" -> \"review\";"));
    let ascii = graph.to_ascii();
    for expected in [
        "| draft |",
        "| review |",
        "+..[revise]..> draft",
        "+--> review",
        "| __end__ |",
    ] {
        assert!(ascii.contains(expected), "ascii drawing lacks {expected:?}:\n{ascii}");
    }
}

/// `start` skips the read of the thread's checkpoints; on a thread that has some after all it
/// overwrites nothing: the first write conflicts, and `run_once` takes over from there.
#[tokio::test]
async fn start_runs_a_new_thread_and_refuses_to_restart_an_old_one() {
    let checkpoints = Arc::new(MemoryCheckpointer::new());
    let graph = review_loop(1);
    let runner = graph.with_checkpointer(checkpoints.clone());
    let state = runner.start("t", Doc::default()).await.unwrap().into_state();
    assert_eq!(state.trail, ["draft", "review", "publish"]);
    let before = checkpoints.history("t", 100).await.unwrap();

    let error = runner.start("t", Doc::default()).await.unwrap_err();
    assert!(
        matches!(&error, GraphError::Checkpoint(e) if e.is_superseded()),
        "{error:?}"
    );
    let after = checkpoints.history("t", 100).await.unwrap();
    let ids = |h: &[ticketflow_graph::Checkpoint]| h.iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(&after), ids(&before), "history untouched");
    let again = runner.run_once("t", Doc::default()).await.unwrap().into_state();
    assert_eq!(again, state, "run_once returns the finished thread's state");
}

/// Without the input checkpoint the first checkpoint is the first node's, numbered as before;
/// a run that fails in its first node leaves nothing, and `run_once` starts it over.
#[tokio::test]
async fn a_run_without_input_checkpoint_starts_with_its_first_node() {
    let checkpoints = Arc::new(MemoryCheckpointer::new());
    let graph = review_loop(1);
    let runner = graph.with_checkpointer(checkpoints.clone()).without_input_checkpoint();
    runner.start("t", Doc::default()).await.unwrap();
    let mut history = checkpoints.history("t", 100).await.unwrap();
    history.reverse();
    let steps: Vec<_> = history.iter().map(|c| (c.step, c.completed_node.as_deref())).collect();
    assert_eq!(steps, [(1, Some("draft")), (2, Some("review")), (3, Some("publish"))]);
    assert_eq!(history[0].parent_id, None);

    let failing = Graph::<Doc>::builder()
        .node("b", flaky(1, Arc::default()))
        .edge(START, "b")
        .edge("b", END)
        .compile()
        .unwrap();
    let runner = failing
        .with_checkpointer(checkpoints.clone())
        .without_input_checkpoint();
    runner.run_once("u", Doc::default()).await.unwrap_err();
    assert!(checkpoints.latest("u").await.unwrap().is_none(), "nothing written");
    let state = runner.run_once("u", Doc::default()).await.unwrap().into_state();
    assert_eq!(state.trail, ["flaky"]);
}
