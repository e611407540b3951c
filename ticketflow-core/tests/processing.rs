//! The crash-safe pipeline against real PostgreSQL, SQLite and RabbitMQ: outbox, relay,
//! workers, leases with fencing, resume without re-running steps, dead-lettering, failures.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::*;
use ticketflow_core::llm::{LlmConfig, LlmEngine};
use ticketflow_core::processing::requeue_failed;
use ticketflow_core::queue::{InProcessQueue, Queue, TicketMessage};
use ticketflow_core::store::{Store, TicketStatus};
use ticketflow_core::testing::{FakeLlm, Reply};
use ticketflow_core::{KnowledgeBase, Workflow};

fn offline() -> Workflow {
    Workflow::offline().unwrap()
}

fn llm_workflow(fake: &FakeLlm, max_attempts: u32) -> Workflow {
    let engine = LlmEngine::new(LlmConfig {
        base_url: fake.base_url.clone(),
        api_key: "sk-test".into(),
        model: "gpt-test".into(),
        timeout: Duration::from_secs(10),
        max_attempts,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
    })
    .unwrap();
    Workflow::new(Arc::new(engine), Arc::new(KnowledgeBase::bundled().unwrap()), None)
}

async fn create(store: &dyn Store, n: usize, prefix: &str) -> Vec<uuid::Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            store
                .create(ticket_named("cust_p", &format!("{prefix} {i}")))
                .await
                .unwrap()
                .0
                .id,
        );
    }
    ids
}

#[tokio::test]
async fn the_embedded_pipeline_completes_tickets() {
    let store = sqlite_store().await;
    let queue: Arc<dyn Queue> = Arc::new(InProcessQueue::new());
    let pipeline = Pipeline::start(store.clone(), queue, offline(), fast_config("w1"), 4);
    let ids = create(store.as_ref(), 5, "embedded").await;
    pipeline.relay.wake();
    let tickets = wait_until_final(store.as_ref(), &ids, Duration::from_secs(20)).await;
    for ticket in &tickets {
        assert_steps_once(store.as_ref(), ticket.id).await;
        let result = ticket.result.as_ref().unwrap();
        assert_eq!(result["classification"], "billing");
        assert_eq!(result["entities"]["order_id"], "ORD-55812");
        assert!(result["final_response"].as_str().unwrap().contains("ORD-55812"));
    }
    let events = store.events(ids[0]).await.unwrap();
    assert!(
        events
            .iter()
            .filter(|e| e.event_type == "step_complete")
            .all(|e| e.request_id.as_deref() == Some("req-embedded 0")),
        "the request id travels from creation into every step event"
    );
    pipeline.stop().await;
}

#[tokio::test]
async fn the_distributed_pipeline_completes_tickets() {
    let store = postgres_store().await;
    let options = rabbit_options();
    let queue = rabbit_queue(&options).await;
    let pipeline = Pipeline::start(store.clone(), queue.clone(), offline(), fast_config("w1"), 4);
    let ids = create(store.as_ref(), 5, "distributed").await;
    for ticket in wait_until_final(store.as_ref(), &ids, Duration::from_secs(30)).await {
        assert_steps_once(store.as_ref(), ticket.id).await;
    }
    pipeline.stop().await;
}

#[tokio::test]
async fn malformed_messages_are_dead_lettered_and_the_consumer_keeps_going() {
    let store = postgres_store().await;
    let options = rabbit_options();
    let queue = rabbit_queue(&options).await;
    queue.publish_raw(b"this is not json").await.unwrap();
    queue.publish_raw(&vec![b'x'; 1024 * 1024]).await.unwrap();
    queue.publish(&TicketMessage::new(uuid::Uuid::new_v4())).await.unwrap();
    let pipeline = Pipeline::start(store.clone(), queue.clone(), offline(), fast_config("w1"), 2);
    let ids = create(store.as_ref(), 1, "after poison").await;
    wait_until_final(store.as_ref(), &ids, Duration::from_secs(30)).await;
    assert_steps_once(store.as_ref(), ids[0]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let depth = queue.depth().await.unwrap();
        if depth.dead == 2 {
            assert_eq!(
                depth.ready, 0,
                "the unknown ticket's message was acknowledged, not left behind"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected 2 dead-lettered messages, have {depth:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pipeline.stop().await;
}

#[tokio::test]
async fn a_worker_cut_off_mid_workflow_is_resumed_without_rerunning_committed_steps() {
    let store = postgres_store().await;
    let fake = FakeLlm::start().await;
    // Worker A hangs in the draft step.
    fake.script("draft", [Reply::Delay(Duration::from_secs(8))]);
    let options = rabbit_options();
    let queue_a = rabbit_queue(&options).await;
    let a = Pipeline::start(
        store.clone(),
        queue_a.clone(),
        llm_workflow(&fake, 1),
        fast_config("worker-a"),
        1,
    );
    let ids = create(store.as_ref(), 1, "cut off").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fake.calls_for("draft") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker A never reached the draft step"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Crash A: its tasks die and its connection closes, so RabbitMQ redelivers.
    a.abort();
    queue_a.close().await;

    let queue_b = rabbit_queue(&options).await;
    let b = Pipeline::start(
        store.clone(),
        queue_b,
        llm_workflow(&fake, 1),
        fast_config("worker-b"),
        1,
    );
    wait_until_final(store.as_ref(), &ids, Duration::from_secs(30)).await;
    assert_steps_once(store.as_ref(), ids[0]).await;
    assert_eq!(fake.calls_for("classify"), 1, "committed steps never re-run");
    assert_eq!(fake.calls_for("extract"), 1, "committed steps never re-run");
    assert_eq!(fake.calls_for("draft"), 2, "only the step in flight ran again");
    assert_eq!(fake.calls_for("review"), 1);
    let events = store.events(ids[0]).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.payload["takeover"] == true || e.payload["worker_id"] == "worker-b"),
        "worker B took the ticket over"
    );
    b.stop().await;
}

#[tokio::test]
async fn two_workers_racing_on_one_ticket_complete_it_once() {
    let store = postgres_store().await;
    let fake = FakeLlm::start().await;
    fake.script("classify", [Reply::Delay(Duration::from_millis(300))]);
    let options = rabbit_options();
    let queue_a = rabbit_queue(&options).await;
    let queue_b = rabbit_queue(&options).await;
    let ids = create(store.as_ref(), 1, "race").await;
    // Duplicate wake-ups for the same ticket, as redeliveries or the sweeper would make.
    for _ in 0..4 {
        queue_a.publish(&TicketMessage::new(ids[0])).await.unwrap();
    }
    let a = Pipeline::start(
        store.clone(),
        queue_a,
        llm_workflow(&fake, 1),
        fast_config("worker-a"),
        2,
    );
    let b = Pipeline::start(
        store.clone(),
        queue_b,
        llm_workflow(&fake, 1),
        fast_config("worker-b"),
        2,
    );
    wait_until_final(store.as_ref(), &ids, Duration::from_secs(30)).await;
    assert_steps_once(store.as_ref(), ids[0]).await;
    assert_eq!(fake.calls_for("classify"), 1, "one workflow run");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn llm_failures_retry_then_fail_permanently_and_a_manual_retry_completes() {
    let store = sqlite_store().await;
    let fake = FakeLlm::start().await;
    // max_retries 2: three attempts, each failing at classify after the engine's one attempt.
    fake.script(
        "classify",
        [
            Reply::Status(500, None),
            Reply::Status(503, None),
            Reply::Status(502, None),
        ],
    );
    let queue: Arc<dyn Queue> = Arc::new(InProcessQueue::new());
    let pipeline = Pipeline::start(store.clone(), queue, llm_workflow(&fake, 1), fast_config("w1"), 2);
    let ids = create(store.as_ref(), 1, "flaky llm").await;
    let tickets = wait_until_final(store.as_ref(), &ids, Duration::from_secs(30)).await;
    assert_eq!(tickets[0].status, TicketStatus::FailedPermanent);
    assert_eq!(tickets[0].attempt_count, 3);
    assert!(
        tickets[0].result.as_ref().unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("temporarily")
    );
    let events = store.events(ids[0]).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "retry").count(),
        2,
        "two retries, recorded: {kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| **k == "error").count(), 1);

    // The manual retry resumes and completes (the stand-in answers normally now).
    requeue_failed(
        store.as_ref(),
        ids[0],
        Some("req-retry".into()),
        Some("agent@example.com".into()),
    )
    .await
    .unwrap();
    let manual = store
        .events(ids[0])
        .await
        .unwrap()
        .iter()
        .rev()
        .find_map(|e| e.decode::<ticketflow_core::store::ManualRetry>());
    assert_eq!(
        manual.and_then(|m| m.actor).as_deref(),
        Some("agent@example.com"),
        "the retry event names who asked"
    );
    pipeline.relay.wake();
    let tickets = wait_until_final(store.as_ref(), &ids, Duration::from_secs(30)).await;
    assert_eq!(tickets[0].status, TicketStatus::Completed);
    assert!(matches!(
        requeue_failed(store.as_ref(), ids[0], None, None).await,
        Err(ticketflow_core::store::StoreError::Conflict { .. })
    ));
    pipeline.stop().await;
}

#[tokio::test]
async fn rejected_llm_credentials_fail_the_ticket_at_once() {
    let store = sqlite_store().await;
    let fake = FakeLlm::start().await;
    fake.script("classify", [Reply::Status(401, None)]);
    let queue: Arc<dyn Queue> = Arc::new(InProcessQueue::new());
    let pipeline = Pipeline::start(store.clone(), queue, llm_workflow(&fake, 3), fast_config("w1"), 1);
    let ids = create(store.as_ref(), 1, "bad key").await;
    let tickets = wait_until_final(store.as_ref(), &ids, Duration::from_secs(20)).await;
    assert_eq!(tickets[0].status, TicketStatus::FailedPermanent);
    assert_eq!(fake.calls_for("classify"), 1, "no retry at any layer");
    let events = store.events(ids[0]).await.unwrap();
    assert!(!events.iter().any(|e| e.event_type == "retry"));
    let error = events.iter().find(|e| e.event_type == "error").unwrap();
    assert_eq!(error.step_name.as_deref(), Some("classify"));
    assert_eq!(error.payload["retries_exhausted"], json!(false));
    pipeline.stop().await;
}

#[tokio::test]
async fn the_embedded_mode_survives_a_restart_with_tickets_in_flight() {
    let store = sqlite_store().await;
    let fake = FakeLlm::start().await;
    fake.script("draft", (0..3).map(|_| Reply::Delay(Duration::from_secs(30))));
    let first_queue: Arc<dyn Queue> = Arc::new(InProcessQueue::new());
    let first = Pipeline::start(
        store.clone(),
        first_queue,
        llm_workflow(&fake, 1),
        fast_config("before"),
        3,
    );
    let ids = create(store.as_ref(), 3, "restart").await;
    first.relay.wake();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fake.calls_for("draft") < 3 {
        assert!(tokio::time::Instant::now() < deadline, "tickets never got in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The process dies: tasks gone, the in-process queue and its messages lost.
    first.abort();
    drop(first);

    let second_queue: Arc<dyn Queue> = Arc::new(InProcessQueue::new());
    let second = Pipeline::start(
        store.clone(),
        second_queue,
        llm_workflow(&fake, 1),
        fast_config("after"),
        3,
    );
    for ticket in wait_until_final(store.as_ref(), &ids, Duration::from_secs(30)).await {
        assert_steps_once(store.as_ref(), ticket.id).await;
    }
    assert_eq!(fake.calls_for("classify"), 3, "nothing committed ran twice");
    second.stop().await;
}

/// Restarts the broker: run alone (nextest group `serial`).
#[tokio::test]
async fn serial_broker_restart_loses_no_ticket() {
    let store = postgres_store().await;
    let options = rabbit_options();
    let queue = rabbit_queue(&options).await;
    let pipeline = Pipeline::start(store.clone(), queue, offline(), fast_config("w1"), 4);
    let before = create(store.as_ref(), 3, "before restart").await;
    wait_until_final(store.as_ref(), &before, Duration::from_secs(30)).await;

    rabbitmqctl("stop_app");
    // Tickets keep being accepted while the broker is down: they wait in the outbox.
    let during = create(store.as_ref(), 3, "during outage").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    rabbitmqctl("start_app");

    for ticket in wait_until_final(store.as_ref(), &during, Duration::from_secs(60)).await {
        assert_steps_once(store.as_ref(), ticket.id).await;
    }
    pipeline.stop().await;
}

fn rabbitmqctl(command: &str) {
    let status = std::process::Command::new("rabbitmqctl")
        .arg(command)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run rabbitmqctl");
    assert!(status.success(), "rabbitmqctl {command} failed");
}

#[tokio::test]
async fn nul_characters_in_llm_output_do_not_poison_the_ticket_on_postgres() {
    let store = postgres_store().await;
    let fake = FakeLlm::start().await;
    // A model talked into emitting NUL characters (PostgreSQL cannot store them in JSON).
    fake.script(
        "classify",
        [Reply::Json(
            json!({ "category": "billing", "confidence": 0.9, "rationale": "nul\u{0}here" }),
        )],
    );
    fake.script(
        "draft",
        [Reply::Json(json!({ "reply": "Hello,\u{0} thank you for writing about order ORD-55812. I have passed it to our billing specialists, who will look at it within 3 business days.\n\nBest regards,\nNorthwind Support" }))],
    );
    let queue: Arc<dyn Queue> = Arc::new(InProcessQueue::new());
    let pipeline = Pipeline::start(store.clone(), queue, llm_workflow(&fake, 1), fast_config("w1"), 1);
    let ids = create(store.as_ref(), 1, "nul output").await;
    pipeline.relay.wake();
    let tickets = wait_until_final(store.as_ref(), &ids, Duration::from_secs(30)).await;
    assert_eq!(tickets[0].status, TicketStatus::Completed, "{:?}", tickets[0].result);
    let reply = tickets[0].result.as_ref().unwrap()["final_response"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!reply.contains('\u{0}') && reply.contains("ORD-55812"), "{reply:?}");
    assert!(
        reply.contains("Hello, thank you"),
        "the scripted reply was used, cleaned: {reply:?}"
    );
    let events = store.events(ids[0]).await.unwrap();
    assert!(
        !events.iter().any(|e| e.payload.get("released").is_some()),
        "completed in one run, with no failed checkpoint write"
    );
    pipeline.stop().await;
}

/// A run that paused on a held refund and crashed before its hold was written: whoever takes
/// the ticket over finds the pause and no decision, and holds the ticket again without running
/// anything; once decided, the next delivery resumes the run and the refund is made once.
#[tokio::test]
async fn a_pause_whose_hold_was_lost_waits_again_and_never_runs_on() {
    use ticketflow_core::processing::{Processed, Processor};
    use ticketflow_core::store::{ApprovalQuery, ApprovalStatus, Decision, NewTicket};
    use ticketflow_core::{TicketInput, TicketState};

    let store = sqlite_store().await;
    store.load_demo_data(chrono::Utc::now()).await.unwrap();
    let workflow = ticketflow_core::settings::Settings::default()
        .workflow(Some(store.clone()))
        .unwrap();
    let (ticket, _) = store
        .create(NewTicket {
            customer_id: "cust_john_doe".into(),
            subject: "Refund".into(),
            body: "Please refund the Wireless Headphones Pro from order ord_12345.".into(),
            ..NewTicket::default()
        })
        .await
        .unwrap();
    let (claimed, fence) = store
        .claim(ticket.id, "crashed", Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();
    let input = TicketState::new(TicketInput {
        id: ticket.id.to_string(),
        customer_id: claimed.customer_id.clone(),
        subject: claimed.subject.clone(),
        body: claimed.body.clone(),
    });
    let outcome = workflow
        .graph()
        .runner()
        .checkpointer(store.checkpointer(Some(fence)))
        .without_input_checkpoint()
        .metadata(json!({ "lease_epoch": fence.epoch }))
        .start(&ticket.id.to_string(), input)
        .await
        .unwrap();
    assert!(!outcome.is_finished(), "the run paused at the gate");
    // The worker dies here: the pause is checkpointed, the hold never written.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let processor = Processor::new(store.clone(), workflow, fast_config("w2"));
    let message = TicketMessage {
        ticket_id: ticket.id,
        request_id: None,
        traceparent: None,
        attempt: 0,
    };
    assert_eq!(processor.process(&message).await.unwrap(), Processed::AwaitingApproval);
    let held = store.get(ticket.id).await.unwrap().unwrap();
    assert_eq!(held.status, TicketStatus::AwaitingApproval);
    let page = store.approvals(&ApprovalQuery::default()).await.unwrap();
    assert_eq!(page.total, 1);
    let approval = page.approvals[0].clone();
    assert_eq!(
        (approval.action_type.as_str(), approval.status),
        ("process_refund", ApprovalStatus::Pending)
    );
    let steps = |events: &[ticketflow_core::store::TicketEvent]| {
        events
            .iter()
            .filter(|e| e.event_type == "step_complete")
            .filter_map(|e| e.step_name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        steps(&store.events(ticket.id).await.unwrap()),
        ["classify", "extract", "research"]
    );
    assert_eq!(
        processor.process(&message).await.unwrap(),
        Processed::Skipped("not waiting to be processed"),
        "a held ticket is not claimed"
    );

    store
        .decide(
            approval.id,
            Decision {
                approved: true,
                ..Decision::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(processor.process(&message).await.unwrap(), Processed::Completed);
    assert_eq!(store.refunds("ord_12345").await.unwrap().len(), 1);
    assert_eq!(
        steps(&store.events(ticket.id).await.unwrap()),
        [
            "classify", "extract", "research", "gate", "act", "draft", "review", "finalize"
        ]
    );
}
