//! One conformance suite, run against real PostgreSQL and real SQLite: both stores behave the
//! same, the graph's checkpointer suite included.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use ticketflow_core::store::{
    EventType, ListQuery, NewEvent, NewTicket, StoreError, TicketStatus, TicketStore, Transition,
};
use ticketflow_core::{KnowledgeBase, OfflineEngine, TicketInput, TicketState, Workflow};
use ticketflow_graph::{CheckpointError, Checkpointer};

fn new_ticket(customer: &str, subject: &str) -> NewTicket {
    NewTicket {
        customer_id: customer.into(),
        subject: subject.into(),
        body: "My card was charged twice for order ORD-55812.".into(),
        request_id: Some("req-1".into()),
        ..Default::default()
    }
}

/// Runs each check against both stores, as tests named `<check>_postgres` and `<check>_sqlite`.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test] async fn $check() { super::$check(crate::support::postgres_store().await).await; })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $check() { super::$check(crate::support::sqlite_store().await).await; })*
        }
    };
}

conformance!(
    create_then_get,
    duplicate_create_returns_the_same_ticket,
    idempotency_keys_are_scoped_and_checked,
    invalid_input_is_rejected_by_field,
    list_pages_and_filters,
    events_are_ordered_and_unknown_tickets_not_found,
    transitions_are_guarded_by_version,
    claims_lease_and_fence,
    checkpointer_passes_the_graph_suite,
    fenced_checkpoints_write_step_events_once,
    concurrent_runs_checkpoint_independently,
    fifty_concurrent_identical_creates_make_one_row,
    customer_history_is_newest_first,
    workflow_runs_on_the_store_checkpointer,
    outbox_relays_once_and_the_sweeper_rescues_stranded_tickets,
    heartbeats_and_releases_respect_the_fence,
    retry_transitions_charge_and_reset_the_budget,
);

async fn create_then_get(store: Arc<dyn TicketStore>) {
    let mut new = new_ticket("cust_1", "Charged twice");
    new.metadata = json!({ "source": "test" });
    let (ticket, created) = store.create(new).await.unwrap();
    assert!(created);
    assert_eq!(ticket.status, TicketStatus::Pending);
    assert_eq!(ticket.version, 1);
    assert_eq!(ticket.attempt_count, 0);
    assert_eq!(ticket.channel, "api");
    let got = store.get(ticket.id).await.unwrap().expect("stored");
    assert_eq!(got, ticket);
    assert_eq!(got.metadata["source"], "test");
    let events = store.events(ticket.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "created");
    assert_eq!(events[0].request_id.as_deref(), Some("req-1"));
    assert!(store.get(uuid::Uuid::new_v4()).await.unwrap().is_none());
}

async fn duplicate_create_returns_the_same_ticket(store: Arc<dyn TicketStore>) {
    let (first, created) = store.create(new_ticket("cust_1", "Same")).await.unwrap();
    assert!(created);
    let (second, created) = store.create(new_ticket("cust_1", "Same")).await.unwrap();
    assert!(!created);
    assert_eq!(first.id, second.id);
    let (other, _) = store.create(new_ticket("cust_2", "Same")).await.unwrap();
    assert_ne!(
        other.id, first.id,
        "another customer's identical text is another ticket"
    );
    assert_eq!(store.events(first.id).await.unwrap().len(), 1, "one created event");
}

async fn idempotency_keys_are_scoped_and_checked(store: Arc<dyn TicketStore>) {
    let keyed = |customer: &str, subject: &str| NewTicket {
        idempotency_key: Some("key-1".into()),
        ..new_ticket(customer, subject)
    };
    let (first, _) = store.create(keyed("cust_1", "A")).await.unwrap();
    let (again, created) = store.create(keyed("cust_1", "A")).await.unwrap();
    assert!(!created);
    assert_eq!(again.id, first.id);
    match store.create(keyed("cust_1", "B")).await {
        Err(StoreError::IdempotencyConflict(id)) => assert_eq!(id, first.id),
        other => panic!("same key, other content must conflict: {other:?}"),
    }
    let (theirs, created) = store.create(keyed("cust_2", "B")).await.unwrap();
    assert!(created, "keys are scoped to the customer");
    assert_ne!(theirs.id, first.id);
}

async fn invalid_input_is_rejected_by_field(store: Arc<dyn TicketStore>) {
    let cases = [
        (
            NewTicket {
                subject: String::new(),
                ..new_ticket("c", "x")
            },
            "subject",
        ),
        (
            NewTicket {
                subject: "s".repeat(501),
                ..new_ticket("c", "x")
            },
            "subject",
        ),
        (
            NewTicket {
                body: "b".repeat(10_001),
                ..new_ticket("c", "x")
            },
            "body",
        ),
        (
            NewTicket {
                body: "nul \0 here".into(),
                ..new_ticket("c", "x")
            },
            "body",
        ),
        (new_ticket(&"c".repeat(101), "x"), "customer_id"),
        (new_ticket("", "x"), "customer_id"),
        (
            NewTicket {
                metadata: json!({ "k": "\u{0}" }),
                ..new_ticket("c", "x")
            },
            "metadata",
        ),
    ];
    for (ticket, expected) in cases {
        match store.create(ticket).await {
            Err(StoreError::Validation { field, .. }) => assert_eq!(field, expected),
            other => panic!("expected a validation error on {expected}, got {other:?}"),
        }
    }
    // At the limits, and with multi-byte text, it is accepted and stored verbatim.
    let edge = NewTicket {
        subject: "é".repeat(500),
        body: "'; DROP TABLE tickets; -- ✓".into(),
        ..new_ticket("c", "x")
    };
    let (ticket, _) = store.create(edge.clone()).await.unwrap();
    assert_eq!(ticket.subject, edge.subject);
    assert_eq!(ticket.body, edge.body);
}

async fn list_pages_and_filters(store: Arc<dyn TicketStore>) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let (t, _) = store
            .create(new_ticket("cust_list", &format!("ticket {i}")))
            .await
            .unwrap();
        ids.push(t);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let page = store
        .list(&ListQuery {
            page: 1,
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(page.tickets.len(), 2);
    assert_eq!(page.tickets[0].id, ids[4].id, "newest first");
    let last = store
        .list(&ListQuery {
            page: 3,
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(last.tickets.len(), 1);
    let beyond = store
        .list(&ListQuery {
            page: 9,
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(beyond.tickets.is_empty());
    assert_eq!(beyond.total, 5, "the total does not depend on the page");
    store
        .transition(ids[0].id, 1, Transition::to(TicketStatus::Processing))
        .await
        .unwrap();
    let processing = store
        .list(&ListQuery {
            status: Some(TicketStatus::Processing),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(processing.total, 1);
    assert_eq!(processing.tickets[0].id, ids[0].id);
}

async fn events_are_ordered_and_unknown_tickets_not_found(store: Arc<dyn TicketStore>) {
    let (t, _) = store.create(new_ticket("c", "events")).await.unwrap();
    for i in 0..5 {
        store
            .append_event(t.id, NewEvent::new(EventType::Retry, json!({ "i": i })))
            .await
            .unwrap();
    }
    let events = store.events(t.id).await.unwrap();
    assert_eq!(events.len(), 6);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq), "ordered by sequence");
    let order: Vec<_> = events[1..].iter().map(|e| e.payload["i"].as_i64().unwrap()).collect();
    assert_eq!(order, [0, 1, 2, 3, 4]);
    let unknown = uuid::Uuid::new_v4();
    assert!(matches!(store.events(unknown).await, Err(StoreError::NotFound(id)) if id == unknown));
    assert!(matches!(
        store
            .append_event(unknown, NewEvent::new(EventType::Error, json!({})))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn transitions_are_guarded_by_version(store: Arc<dyn TicketStore>) {
    let (t, _) = store.create(new_ticket("c", "transition")).await.unwrap();
    let processing = store
        .transition(
            t.id,
            1,
            Transition {
                count_attempt: true,
                ..Transition::to(TicketStatus::Processing)
            },
        )
        .await
        .unwrap();
    assert_eq!(processing.version, 2);
    assert_eq!(processing.attempt_count, 1);
    assert!(processing.started_at.is_some());
    match store.transition(t.id, 1, Transition::to(TicketStatus::Completed)).await {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("a stale version must conflict, got {other:?}"),
    }
    let done = store
        .transition(
            t.id,
            2,
            Transition::to(TicketStatus::Completed)
                .with_result(json!({ "final_response": "hi" }))
                .with_event(NewEvent::new(EventType::Retry, json!({ "note": "extra" }))),
        )
        .await
        .unwrap();
    assert_eq!(done.status, TicketStatus::Completed);
    assert_eq!(done.result.as_ref().unwrap()["final_response"], "hi");
    assert!(done.completed_at.is_some());
    let events = store.events(t.id).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["created", "status_change", "status_change", "retry"]);
    assert_eq!(events[2].payload["from"], "processing");
    assert_eq!(events[2].payload["to"], "completed");
    assert!(matches!(
        store
            .transition(uuid::Uuid::new_v4(), 1, Transition::to(TicketStatus::Completed))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn claims_lease_and_fence(store: Arc<dyn TicketStore>) {
    let (t, _) = store.create(new_ticket("c", "claim")).await.unwrap();
    let (claimed, fence) = store
        .claim(t.id, "w1", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("claimable");
    assert_eq!(claimed.status, TicketStatus::Processing);
    assert_eq!(
        claimed.attempt_count, 0,
        "a claim is not a failure: the retry budget is untouched"
    );
    assert_eq!(fence.epoch, 1);
    assert!(
        store
            .claim(t.id, "w2", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none(),
        "a live lease is held"
    );

    // A short lease expires and another worker takes over with a higher epoch.
    let (t2, _) = store.create(new_ticket("c", "takeover")).await.unwrap();
    let (_, old) = store
        .claim(t2.id, "w1", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (_, new) = store
        .claim(t2.id, "w2", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("takeover");
    assert_eq!(new.epoch, old.epoch + 1);
    let events = store.events(t2.id).await.unwrap();
    assert_eq!(events.last().unwrap().payload["takeover"], true);

    // The old holder's checkpoint writes now lose.
    let stale = store.checkpointer(Some(old));
    let checkpoint = ticketflow_graph::testing::sample_checkpoint(&t2.id.to_string(), 0, None);
    assert!(matches!(
        stale.put(checkpoint.clone()).await,
        Err(CheckpointError::Fenced(_))
    ));
    store.checkpointer(Some(new)).put(checkpoint).await.unwrap();

    assert!(matches!(
        store.claim(uuid::Uuid::new_v4(), "w", Duration::from_secs(1)).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn checkpointer_passes_the_graph_suite(store: Arc<dyn TicketStore>) {
    ticketflow_graph::testing::conformance(store.checkpointer(None)).await;
}

async fn fenced_checkpoints_write_step_events_once(store: Arc<dyn TicketStore>) {
    let (t, _) = store.create(new_ticket("c", "fenced")).await.unwrap();
    let (_, fence) = store.claim(t.id, "w1", Duration::from_secs(60)).await.unwrap().unwrap();
    let cp = store.checkpointer(Some(fence));
    let thread = t.id.to_string();
    let mut input = ticketflow_graph::testing::sample_checkpoint(&thread, 0, None);
    input.completed_node = None;
    cp.put(input).await.unwrap();
    let mut step = ticketflow_graph::testing::sample_checkpoint(&thread, 1, None);
    step.metadata = json!({ "request_id": "req-42" });
    cp.put(step.clone()).await.unwrap();
    assert!(matches!(cp.put(step).await, Err(CheckpointError::Conflict { .. })));
    let steps: Vec<_> = store
        .events(t.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "step_complete")
        .collect();
    assert_eq!(
        steps.len(),
        1,
        "one step_complete per committed step, the duplicate lost"
    );
    assert_eq!(steps[0].step_name.as_deref(), Some("node-1"));
    assert_eq!(steps[0].payload["step"], 1);
    assert_eq!(steps[0].request_id.as_deref(), Some("req-42"));
}

/// Many runs write at once (on PostgreSQL they share transactions): each write still gets its
/// own answer — a stale run is fenced off alone, a checkpoint the database cannot store fails
/// alone — and every committed step has exactly one `step_complete` event.
async fn concurrent_runs_checkpoint_independently(store: Arc<dyn TicketStore>) {
    // Run 0 is stale: its ticket was taken over.
    let runs = crate::support::claimed_runs(&*store, 12, 0).await;

    let writes = runs.iter().enumerate().map(|(i, &(id, fence))| {
        let store = store.clone();
        async move {
            let mut checkpoint = ticketflow_graph::testing::sample_checkpoint(&id.to_string(), 1, None);
            if i == 1 {
                // PostgreSQL cannot store a NUL in `jsonb` (states are `json`, metadata is not).
                checkpoint.metadata = serde_json::json!({ "note": "a\u{0}b" });
            }
            store.checkpointer(Some(fence)).put(checkpoint).await
        }
    });
    let outcomes = futures::future::join_all(writes).await;
    assert!(
        matches!(outcomes[0], Err(CheckpointError::Fenced(_))),
        "{:?}",
        outcomes[0]
    );
    assert!(
        matches!(outcomes[1], Ok(()) | Err(CheckpointError::Storage(_))),
        "{:?}",
        outcomes[1]
    );
    for (i, outcome) in outcomes.iter().enumerate().skip(2) {
        assert!(outcome.is_ok(), "run {i}: {outcome:?}");
    }
    for (i, &(id, _)) in runs.iter().enumerate() {
        let committed = store
            .checkpointer(None)
            .latest(&id.to_string())
            .await
            .unwrap()
            .is_some();
        let steps = store
            .events(id)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.event_type == "step_complete")
            .count();
        assert_eq!(steps, usize::from(committed), "run {i}: one event per committed step");
        match i {
            0 => assert!(!committed, "the stale run wrote nothing"),
            1 => assert_eq!(committed, outcomes[1].is_ok()),
            _ => assert!(committed, "run {i}"),
        }
    }
}

async fn fifty_concurrent_identical_creates_make_one_row(store: Arc<dyn TicketStore>) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.create(new_ticket("cust_storm", "Storm")).await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for task in tasks {
        let (ticket, was_created) = task.await.unwrap().unwrap();
        ids.insert(ticket.id);
        created += usize::from(was_created);
    }
    assert_eq!(ids.len(), 1, "every caller got the same id");
    assert_eq!(created, 1, "exactly one caller created it");
    let page = store
        .list(&ListQuery {
            customer_id: Some("cust_storm".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 1, "one row");
    let id = *ids.iter().next().unwrap();
    assert_eq!(store.events(id).await.unwrap().len(), 1, "one created event");
}

async fn customer_history_is_newest_first(store: Arc<dyn TicketStore>) {
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(store.create(new_ticket("cust_h", &format!("h{i}"))).await.unwrap().0.id);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    store.create(new_ticket("someone_else", "h")).await.unwrap();
    let history = store
        .history()
        .recent_tickets("cust_h", &ids[3].to_string(), 2)
        .await
        .unwrap();
    let got: Vec<_> = history.iter().map(|p| p.id.clone()).collect();
    assert_eq!(got, [ids[2].to_string(), ids[1].to_string()]);
    assert_eq!(history[0].status, "pending");
}

async fn workflow_runs_on_the_store_checkpointer(store: Arc<dyn TicketStore>) {
    let (t, _) = store.create(new_ticket("cust_wf", "Charged twice")).await.unwrap();
    let (_, fence) = store.claim(t.id, "w1", Duration::from_secs(60)).await.unwrap().unwrap();
    let workflow = Workflow::new(
        Arc::new(OfflineEngine),
        Arc::new(KnowledgeBase::bundled().unwrap()),
        Some(store.history()),
    );
    let input = TicketInput {
        id: t.id.to_string(),
        customer_id: t.customer_id.clone(),
        subject: t.subject.clone(),
        body: t.body.clone(),
    };
    let outcome = workflow
        .graph()
        .with_checkpointer(store.checkpointer(Some(fence)))
        .run_once(&t.id.to_string(), TicketState::new(input))
        .await
        .unwrap();
    assert!(outcome.is_finished());
    let steps: Vec<_> = store
        .events(t.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "step_complete")
        .map(|e| e.step_name.unwrap())
        .collect();
    assert_eq!(steps, ticketflow_core::steps::names::ALL);
}

async fn outbox_relays_once_and_the_sweeper_rescues_stranded_tickets(store: Arc<dyn TicketStore>) {
    let (t, _) = store.create(new_ticket("c", "outbox")).await.unwrap();
    let backlog = store.backlog().await.unwrap();
    assert_eq!((backlog.pending, backlog.outbox_due), (1, 1));
    let claimed = store.claim_outbox(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].ticket_id, t.id);
    assert_eq!(claimed[0].request_id.as_deref(), Some("req-1"));
    assert!(
        store
            .claim_outbox(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty(),
        "claimed rows are hidden"
    );
    store.mark_sent(&[claimed[0].id]).await.unwrap();
    assert_eq!(store.backlog().await.unwrap().outbox_due, 0);

    // Recently enqueued: the sweeper leaves it alone; once quiet long enough, it re-enqueues it.
    assert_eq!(store.sweep(Duration::from_secs(3600), 100).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.sweep(Duration::from_millis(10), 100).await.unwrap(), 1);
    assert_eq!(
        store.sweep(Duration::from_millis(10), 100).await.unwrap(),
        0,
        "one unsent row is enough"
    );
    let again = store.claim_outbox(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(again.len(), 1);
    store.mark_sent(&[again[0].id]).await.unwrap();

    // A processing ticket is stranded only once its lease expires, and then at once: a crashed
    // worker's ticket does not wait out `quiet_for` since its last enqueue.
    // (A lease long enough that a loaded machine still checks it while it is live.)
    store.claim(t.id, "w1", Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(
        store.sweep(Duration::from_millis(1), 100).await.unwrap(),
        0,
        "lease still live"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        store.sweep(Duration::from_secs(3600), 100).await.unwrap(),
        1,
        "lease expired"
    );
    assert_eq!(
        store.sweep(Duration::from_secs(3600), 100).await.unwrap(),
        0,
        "one enqueue per expiry"
    );
    let rescued = store.claim_outbox(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(rescued.len(), 1);
    store.mark_sent(&[rescued[0].id]).await.unwrap();
    assert_eq!(
        store.sweep(Duration::from_secs(3600), 100).await.unwrap(),
        0,
        "sent since the lease expired"
    );

    // A row the relay claimed but has not marked sent is in flight: its message may arrive
    // first, and the ticket can still be claimed (only an unclaimed future row is a delayed
    // retry that holds claims back).
    let (t3, _) = store.create(new_ticket("c", "in flight")).await.unwrap();
    let in_flight = store.claim_outbox(10, Duration::from_secs(30)).await.unwrap();
    assert!(in_flight.iter().any(|m| m.ticket_id == t3.id));
    assert!(
        store
            .claim(t3.id, "w1", Duration::from_secs(60))
            .await
            .unwrap()
            .is_some()
    );
    let ids: Vec<i64> = in_flight.iter().map(|m| m.id).collect();
    store.mark_sent(&ids).await.unwrap();

    // A delayed enqueue is not due yet.
    let (t2, _) = store.create(new_ticket("c", "delayed")).await.unwrap();
    for m in store.claim_outbox(10, Duration::from_secs(30)).await.unwrap() {
        store.mark_sent(&[m.id]).await.unwrap();
    }
    let current = store.get(t2.id).await.unwrap().unwrap();
    store
        .transition(
            t2.id,
            current.version,
            Transition::to(TicketStatus::Pending).enqueue_after(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_outbox(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn heartbeats_and_releases_respect_the_fence(store: Arc<dyn TicketStore>) {
    let (t, _) = store.create(new_ticket("c", "heartbeat")).await.unwrap();
    let (_, fence) = store
        .claim(t.id, "w1", Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();
    assert!(store.heartbeat(fence, Duration::from_secs(60)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(
        store
            .claim(t.id, "w2", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none(),
        "the heartbeat extended the lease"
    );
    assert!(store.release(fence, "shutdown", Duration::ZERO).await.unwrap());
    let released = store.get(t.id).await.unwrap().unwrap();
    assert_eq!(released.status, TicketStatus::Pending);
    assert!(
        !store.heartbeat(fence, Duration::from_secs(60)).await.unwrap(),
        "a released fence is stale"
    );
    assert!(!store.release(fence, "again", Duration::ZERO).await.unwrap());
    let events = store.events(t.id).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.payload["released"], "shutdown");
    assert!(
        events.iter().all(|e| e.request_id.as_deref() == Some("req-1")),
        "claim and release events carry the ticket's request id"
    );
    let requeued = store.claim_outbox(100, Duration::from_secs(30)).await.unwrap();
    assert!(
        requeued.iter().all(|m| m.request_id.as_deref() == Some("req-1")),
        "and so does the re-enqueued row"
    );
    let (_, newer) = store.claim(t.id, "w2", Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(newer.epoch, fence.epoch + 1);
    assert!(
        !store.heartbeat(fence, Duration::from_secs(60)).await.unwrap(),
        "the old holder's heartbeat fails"
    );
}

async fn retry_transitions_charge_and_reset_the_budget(store: Arc<dyn TicketStore>) {
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (t, _) = store
        .create(NewTicket {
            traceparent: Some(traceparent.into()),
            ..new_ticket("c", "budget")
        })
        .await
        .unwrap();
    for sent in store.claim_outbox(10, Duration::from_secs(30)).await.unwrap() {
        store.mark_sent(&[sent.id]).await.unwrap();
    }
    let (claimed, _) = store.claim(t.id, "w1", Duration::from_secs(60)).await.unwrap().unwrap();
    let retried = store
        .transition(
            t.id,
            claimed.version,
            Transition {
                count_attempt: true,
                ..Transition::to(TicketStatus::Pending)
            }
            .enqueue_after(Duration::from_secs(3600))
            .with_event(NewEvent::new(EventType::Retry, json!({ "error": "LLM timeout" }))),
        )
        .await
        .unwrap();
    assert_eq!(retried.attempt_count, 1);
    assert!(
        store
            .claim(t.id, "w2", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none(),
        "an early duplicate delivery cannot skip the retry's backoff"
    );
    let failed = store
        .transition(
            t.id,
            retried.version,
            Transition::to(TicketStatus::FailedPermanent).with_result(json!({ "error": "x" })),
        )
        .await
        .unwrap();
    let reset = store
        .transition(
            t.id,
            failed.version,
            Transition {
                reset_attempts: true,
                ..Transition::to(TicketStatus::Pending)
            }
            .enqueue_after(Duration::ZERO),
        )
        .await
        .unwrap();
    assert_eq!(reset.attempt_count, 0);
    assert_eq!(reset.completed_at, None);
    // The re-enqueue carries the creating request's trace on, so the retry joins its trace.
    let requeued = store.claim_outbox(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        requeued.len(),
        1,
        "the delayed retry is not due; the reset's enqueue is"
    );
    assert_eq!(requeued[0].traceparent.as_deref(), Some(traceparent));
}
