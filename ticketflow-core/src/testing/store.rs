//! The conformance suite every [`Store`] must pass, as the graph's `testing` module is for
//! checkpointers.
//!
//! [`store_conformance!`](crate::store_conformance) turns every check into a test of its own
//! for a backend; [`conformance`] runs them all in turn; [`same_behaviour`] runs one scenario
//! on two stores and compares everything they return, field by field (a value's format
//! included: a timestamp written as `Z` by one and `+00:00` by the other differs). Each check
//! wants a fresh store.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use ticketflow_core::testing::{database, store};
//! store::conformance(database::sqlite_store).await;
//! # }
//! ```
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use ticketflow_graph::{CheckpointError, Checkpointer};
use uuid::Uuid;

use crate::commerce::{OrderStatus, ProductQuery};
use crate::money::Money;
use crate::store::{
    AUTO_SUBMITTED, Arrival, DeliveryOutcome, Direction, EmailReceived, MessageStatus, NewMessage, TurnStarted,
};
use crate::store::{
    Applied, Approval, ApprovalDecided, ApprovalQuery, ApprovalRequested, ApprovalStatus, CallStatus, Claimed, Created,
    Decision, Effect, EventType, Failed, Fence, Interrupted, ListQuery, ManualRetry, Moved, NewApproval, NewEvent,
    NewTicket, NewToolCall, Released, RetryScheduled, Settlement, StepCompleted, Store, StoreError, Ticket,
    TicketEvent, TicketStatus, ToolCall, ToolCalled, Transition, rejection_result,
};
use crate::{KnowledgeBase, OfflineEngine, TicketInput, TicketState, Workflow};

/// A check of the suite.
pub type Check = fn(Arc<dyn Store>) -> futures::future::BoxFuture<'static, ()>;

macro_rules! checks {
    ($($check:ident),* $(,)?) => {
        /// Every check, by name.
        pub const CHECKS: &[(&str, Check)] = &[$((stringify!($check), |store| Box::pin($check(store)))),*];

        /// One `#[tokio::test]` per check of the suite, on the store `$store` (an expression,
        /// evaluated afresh in each test, that may `.await`).
        #[macro_export]
        macro_rules! store_conformance {
            ($store:expr) => {
                $(
                    #[tokio::test]
                    async fn $check() {
                        $crate::testing::store::$check($store).await;
                    }
                )*
            };
        }
    };
}

checks!(
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
    every_event_the_store_writes_has_its_typed_payload,
    the_health_check_reads_the_tables,
    demo_data_loads_once_and_reads_back,
    products_are_found_by_id_or_by_a_literal_piece_of_the_name,
    tool_calls_are_journaled_once_and_decided_once,
    a_call_settles_once_with_its_effect_however_many_ask,
    refunds_are_capped_by_what_is_still_refundable,
    settlements_are_fenced_by_the_lease,
    every_effect_is_recorded_with_its_call,
    a_hold_and_a_decision_are_one_transaction_each,
    of_fifty_concurrent_deciders_exactly_one_wins,
    a_decision_needs_its_ticket_to_wait_for_it,
    conversations_follow_the_status_rules,
    outbound_mail_is_claimed_retried_and_recorded_once,
    a_staff_reply_is_threaded_and_completes_an_escalated_ticket,
    tickets_are_found_by_their_words_and_filtered_and_sorted,
    the_live_feed_reads_between_seqs_and_hears_of_commits,
    webhooks_are_queued_with_their_events_and_delivered_once,
    people_sign_in_and_sessions_expire,
    keys_are_found_by_prefix_and_revoked_once,
    the_audit_trail_pages_newest_first,
);

/// Runs every check, each on a fresh store from `fresh`.
pub async fn conformance<F, Fut>(mut fresh: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    for (_, check) in CHECKS {
        check(fresh().await).await;
    }
}

/// A ticket of `customer` about `subject`, with an order id in its body and a request id.
pub fn new_ticket(customer: &str, subject: &str) -> NewTicket {
    NewTicket {
        customer_id: customer.into(),
        subject: subject.into(),
        body: "My card was charged twice for order ORD-55812.".into(),
        request_id: Some("req-1".into()),
        ..Default::default()
    }
}

/// `count` tickets, each claimed by worker `w1`; run `stale` then loses its ticket to a takeover
/// by `w2` (its lease was short), so its fence is out of date. Returns each ticket and the
/// fence its `w1` run holds.
pub async fn claimed_runs(store: &dyn Store, count: usize, stale: usize) -> Vec<(Uuid, Fence)> {
    let mut runs = Vec::new();
    for i in 0..count {
        let new = NewTicket {
            customer_id: "c".into(),
            subject: format!("run {i}"),
            body: "Where is my order ORD-12345?".into(),
            ..Default::default()
        };
        let (ticket, _) = store.create(new).await.expect("create");
        let lease = if i == stale {
            Duration::from_millis(1)
        } else {
            Duration::from_secs(60)
        };
        let (_, fence) = store
            .claim(ticket.id, "w1", lease)
            .await
            .expect("claim")
            .expect("claimable");
        runs.push((ticket.id, fence));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (_, current) = store
        .claim(runs[stale].0, "w2", Duration::from_secs(60))
        .await
        .expect("claim")
        .expect("takeover");
    assert!(current.epoch > runs[stale].1.epoch);
    runs
}

/// The ticket as stored now.
async fn current(store: &dyn Store, id: Uuid) -> Ticket {
    store.get(id).await.unwrap().expect("the ticket exists")
}

/// A creation is read back as written.
pub async fn create_then_get(store: Arc<dyn Store>) {
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
    assert!(store.get(Uuid::new_v4()).await.unwrap().is_none());
}

/// The same submission twice is one ticket, whoever sent it; the `created` event names who
/// created it first.
pub async fn duplicate_create_returns_the_same_ticket(store: Arc<dyn Store>) {
    let by = |actor: &str| NewTicket {
        actor: Some(actor.into()),
        ..new_ticket("cust_1", "Same")
    };
    let (first, created) = store.create(by("ana@example.com")).await.unwrap();
    assert!(created);
    let (second, created) = store.create(by("key:ops")).await.unwrap();
    assert!(!created, "the actor is no part of a ticket's identity");
    assert_eq!(first.id, second.id);
    let (third, created) = store.create(new_ticket("cust_1", "Same")).await.unwrap();
    assert!(!created && third.id == first.id, "nor is being anonymous");
    assert_eq!(
        store.events(first.id).await.unwrap()[0].decode::<Created>(),
        Some(Created {
            status: TicketStatus::Pending,
            channel: "api".into(),
            actor: Some("ana@example.com".into()),
        })
    );
    let (other, _) = store.create(new_ticket("cust_2", "Same")).await.unwrap();
    assert_ne!(
        other.id, first.id,
        "another customer's identical text is another ticket"
    );
    assert_eq!(store.events(first.id).await.unwrap().len(), 1, "one created event");
}

/// An idempotency key is scoped to its customer and bound to its content.
pub async fn idempotency_keys_are_scoped_and_checked(store: Arc<dyn Store>) {
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

/// Bad input is refused by field; text at the limits is stored verbatim.
pub async fn invalid_input_is_rejected_by_field(store: Arc<dyn Store>) {
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
        (
            NewTicket {
                actor: Some("ana\0@example.com".into()),
                ..new_ticket("c", "x")
            },
            "actor",
        ),
        (
            NewTicket {
                actor: Some("a".repeat(crate::store::MAX_ACTOR_CHARS + 1)),
                ..new_ticket("c", "x")
            },
            "actor",
        ),
    ];
    for (ticket, expected) in cases {
        match store.create(ticket).await {
            Err(StoreError::Validation { field, .. }) => assert_eq!(field, expected),
            other => panic!("expected a validation error on {expected}, got {other:?}"),
        }
    }
    let edge = NewTicket {
        subject: "é".repeat(500),
        body: "'; DROP TABLE tickets; -- ✓".into(),
        ..new_ticket("c", "x")
    };
    let (ticket, _) = store.create(edge.clone()).await.unwrap();
    assert_eq!(ticket.subject, edge.subject);
    assert_eq!(ticket.body, edge.body);
}

/// Pages newest first; the total does not depend on the page; filters filter.
pub async fn list_pages_and_filters(store: Arc<dyn Store>) {
    let mut tickets = Vec::new();
    for i in 0..5 {
        let (t, _) = store
            .create(new_ticket("cust_list", &format!("ticket {i}")))
            .await
            .unwrap();
        tickets.push(t);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let page = |page, page_size| ListQuery {
        page,
        page_size,
        customer_id: Some("cust_list".into()),
        ..Default::default()
    };
    let first = store.list(&page(1, 2)).await.unwrap();
    assert_eq!(first.total, 5);
    assert_eq!(first.tickets.len(), 2);
    assert_eq!(first.tickets[0].id, tickets[4].id, "newest first");
    assert_eq!(store.list(&page(3, 2)).await.unwrap().tickets.len(), 1);
    let beyond = store.list(&page(9, 2)).await.unwrap();
    assert!(beyond.tickets.is_empty());
    assert_eq!(beyond.total, 5, "the total does not depend on the page");
    store
        .transition(&tickets[0], Transition::to(TicketStatus::Processing))
        .await
        .unwrap();
    let processing = store
        .list(&ListQuery {
            status: Some(TicketStatus::Processing),
            customer_id: Some("cust_list".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(processing.total, 1);
    assert_eq!(processing.tickets[0].id, tickets[0].id);
}

/// Events come back in the order written; an unknown ticket has none to give or take.
pub async fn events_are_ordered_and_unknown_tickets_not_found(store: Arc<dyn Store>) {
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
    let unknown = Uuid::new_v4();
    assert!(matches!(store.events(unknown).await, Err(StoreError::NotFound(id)) if id == unknown));
    assert!(matches!(
        store
            .append_event(unknown, NewEvent::new(EventType::Error, json!({})))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// A transition applies only to the version it was read at, with its events in order.
pub async fn transitions_are_guarded_by_version(store: Arc<dyn Store>) {
    let (t, _) = store.create(new_ticket("c", "transition")).await.unwrap();
    let processing = store
        .transition(
            &t,
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
    assert_eq!(processing, current(&*store, t.id).await, "returned as stored");
    match store.transition(&t, Transition::to(TicketStatus::Completed)).await {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("a stale version must conflict, got {other:?}"),
    }
    let done = store
        .transition(
            &processing,
            Transition::to(TicketStatus::Completed)
                .with_result(json!({ "final_response": "hi" }))
                .with_event(NewEvent::new(EventType::Retry, json!({ "note": "extra" }))),
        )
        .await
        .unwrap();
    assert_eq!(done.status, TicketStatus::Completed);
    assert_eq!(done.result.as_ref().unwrap()["final_response"], "hi");
    assert!(done.completed_at.is_some());
    assert_eq!(done, current(&*store, t.id).await, "returned as stored");
    let events = store.events(t.id).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["created", "status_change", "status_change", "retry"]);
    assert_eq!(
        events[2].decode::<Moved>(),
        Some(Moved {
            from: TicketStatus::Processing,
            to: TicketStatus::Completed,
            attempt_count: 1,
            actor: None,
        })
    );
    let gone = Ticket {
        id: Uuid::new_v4(),
        ..t.clone()
    };
    assert!(matches!(
        store.transition(&gone, Transition::to(TicketStatus::Completed)).await,
        Err(StoreError::NotFound(_))
    ));
    // A run's final write, which a store may commit with others: the same rules.
    assert!(matches!(
        store.finish(&processing, Transition::to(TicketStatus::Pending)).await,
        Err(StoreError::Conflict { .. })
    ));
    store
        .finish(&done, Transition::to(TicketStatus::FailedPermanent))
        .await
        .unwrap();
    assert_eq!(current(&*store, t.id).await.status, TicketStatus::FailedPermanent);
}

/// A claim leases the ticket to one worker; an expired lease is taken over with a higher
/// epoch, and the old holder's writes lose.
pub async fn claims_lease_and_fence(store: Arc<dyn Store>) {
    let (t, _) = store.create(new_ticket("c", "claim")).await.unwrap();
    let (claimed, fence) = store
        .claim(t.id, "w1", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("claimable");
    assert_eq!(claimed.status, TicketStatus::Processing);
    assert_eq!(claimed, current(&*store, t.id).await, "returned as stored");
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
    assert_eq!(
        events.last().unwrap().decode::<Claimed>(),
        Some(Claimed {
            from: TicketStatus::Processing,
            to: TicketStatus::Processing,
            worker_id: "w2".into(),
            lease_epoch: new.epoch,
            takeover: true,
        })
    );

    let stale = store.checkpointer(Some(old));
    let checkpoint = ticketflow_graph::testing::sample_checkpoint(&t2.id.to_string(), 0, None);
    assert!(matches!(
        stale.put(checkpoint.clone()).await,
        Err(CheckpointError::Fenced(_))
    ));
    store.checkpointer(Some(new)).put(checkpoint).await.unwrap();

    assert!(matches!(
        store.claim(Uuid::new_v4(), "w", Duration::from_secs(1)).await,
        Err(StoreError::NotFound(_))
    ));
}

/// The store's checkpointer passes the graph's own suite.
pub async fn checkpointer_passes_the_graph_suite(store: Arc<dyn Store>) {
    ticketflow_graph::testing::conformance(store.checkpointer(None)).await;
}

/// A fenced checkpoint of a completed node writes that node's `step_complete` event, once.
pub async fn fenced_checkpoints_write_step_events_once(store: Arc<dyn Store>) {
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
    assert!(matches!(
        cp.put(step.clone()).await,
        Err(CheckpointError::Conflict { .. })
    ));
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
    let payload = steps[0].decode::<StepCompleted>().expect("a step_complete payload");
    assert_eq!((payload.step, payload.checkpoint_id), (1, step.id));
    assert_eq!(steps[0].request_id.as_deref(), Some("req-42"));
}

/// Many runs write at once (a store may share transactions between them): each write still
/// gets its own answer, and every committed step has exactly one `step_complete` event.
pub async fn concurrent_runs_checkpoint_independently(store: Arc<dyn Store>) {
    let runs = claimed_runs(&*store, 12, 0).await;
    let writes = runs.iter().enumerate().map(|(i, &(id, fence))| {
        let store = store.clone();
        async move {
            let mut checkpoint = ticketflow_graph::testing::sample_checkpoint(&id.to_string(), 1, None);
            if i == 1 {
                // PostgreSQL cannot store a NUL in `jsonb` metadata.
                checkpoint.metadata = json!({ "note": "a\u{0}b" });
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

/// Fifty simultaneous identical submissions make one ticket, and tell one caller it created it.
pub async fn fifty_concurrent_identical_creates_make_one_row(store: Arc<dyn Store>) {
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

/// The research step's history: the customer's other tickets, newest first.
pub async fn customer_history_is_newest_first(store: Arc<dyn Store>) {
    let mut tickets = Vec::new();
    for i in 0..4 {
        tickets.push(store.create(new_ticket("cust_h", &format!("h{i}"))).await.unwrap().0);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    store.create(new_ticket("someone_else", "h")).await.unwrap();
    let history = store
        .recent_tickets("cust_h", &tickets[3].id.to_string(), 2)
        .await
        .unwrap();
    let got: Vec<_> = history.iter().map(|p| p.id.clone()).collect();
    assert_eq!(got, [tickets[2].id.to_string(), tickets[1].id.to_string()]);
    assert_eq!(history[0].status, "pending");
    assert_eq!(history[0].created_at, tickets[2].created_at, "the ticket's own time");
}

/// The six steps run on the store's fenced checkpointer, one event each.
pub async fn workflow_runs_on_the_store_checkpointer(store: Arc<dyn Store>) {
    let (t, _) = store.create(new_ticket("cust_wf", "Charged twice")).await.unwrap();
    let (_, fence) = store.claim(t.id, "w1", Duration::from_secs(60)).await.unwrap().unwrap();
    let workflow = Workflow::new(
        Arc::new(OfflineEngine),
        Arc::new(KnowledgeBase::bundled().unwrap()),
        Some(store.clone() as Arc<dyn crate::HistorySource>),
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
    assert_eq!(steps, crate::steps::names::ALL);
}

/// Claims its own outbox rows once; sends are marked; the sweep re-enqueues what nothing
/// will wake, and only that.
pub async fn outbox_relays_once_and_the_sweeper_rescues_stranded_tickets(store: Arc<dyn Store>) {
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

    // A processing ticket is stranded only once its lease expires, and then at once.
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

    // A row the relay claimed but has not marked sent is in flight: the ticket can be claimed
    // (only an unclaimed future row is a delayed retry that holds claims back).
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
    store
        .transition(
            &current(&*store, t2.id).await,
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

/// Heartbeats and releases work only for the run that holds the lease.
pub async fn heartbeats_and_releases_respect_the_fence(store: Arc<dyn Store>) {
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
    let released = current(&*store, t.id).await;
    assert_eq!(released.status, TicketStatus::Pending);
    assert!(
        !store.heartbeat(fence, Duration::from_secs(60)).await.unwrap(),
        "a released fence is stale"
    );
    assert!(!store.release(fence, "again", Duration::ZERO).await.unwrap());
    let events = store.events(t.id).await.unwrap();
    assert_eq!(
        events.last().unwrap().decode::<Released>(),
        Some(Released {
            from: TicketStatus::Processing,
            to: TicketStatus::Pending,
            released: "shutdown".into(),
        })
    );
    assert!(
        events.iter().all(|e| e.request_id.as_deref() == Some("req-1")),
        "claim and release events carry the ticket's request id"
    );
    let requeued = store.claim_outbox(100, Duration::from_secs(30)).await.unwrap();
    assert!(
        requeued
            .iter()
            .filter(|m| m.ticket_id == t.id)
            .all(|m| m.request_id.as_deref() == Some("req-1")),
        "and so does the re-enqueued row"
    );
    let (_, newer) = store.claim(t.id, "w2", Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(newer.epoch, fence.epoch + 1);
    assert!(
        !store.heartbeat(fence, Duration::from_secs(60)).await.unwrap(),
        "the old holder's heartbeat fails"
    );
}

/// A retry is charged to the budget and delayed; a manual retry resets it and carries the
/// trace on.
pub async fn retry_transitions_charge_and_reset_the_budget(store: Arc<dyn Store>) {
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (t, _) = store
        .create(NewTicket {
            traceparent: Some(traceparent.into()),
            ..new_ticket("c", "budget")
        })
        .await
        .unwrap();
    for sent in store.claim_outbox(100, Duration::from_secs(30)).await.unwrap() {
        store.mark_sent(&[sent.id]).await.unwrap();
    }
    let (claimed, _) = store.claim(t.id, "w1", Duration::from_secs(60)).await.unwrap().unwrap();
    let retried = store
        .transition(
            &claimed,
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
            &retried,
            Transition::to(TicketStatus::FailedPermanent).with_result(json!({ "error": "x" })),
        )
        .await
        .unwrap();
    let reset = store
        .transition(
            &failed,
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
    let requeued: Vec<_> = store
        .claim_outbox(100, Duration::from_secs(30))
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.ticket_id == t.id)
        .collect();
    assert_eq!(
        requeued.len(),
        1,
        "the delayed retry is not due; the reset's enqueue is"
    );
    assert_eq!(requeued[0].traceparent.as_deref(), Some(traceparent));
}

/// The payload of an event ticketflow writes, decoded strictly into its type.
fn typed_payload(event: &TicketEvent) -> Option<Value> {
    match event.event_type.as_str() {
        "created" => event.decode::<Created>().map(|p| json!(p)),
        "status_change" => event
            .decode::<Moved>()
            .map(|p| json!(p))
            .or_else(|| event.decode::<Claimed>().map(|p| json!(p)))
            .or_else(|| event.decode::<Released>().map(|p| json!(p)))
            .or_else(|| event.decode::<Interrupted>().map(|p| json!(p))),
        "step_complete" => event.decode::<StepCompleted>().map(|p| json!(p)),
        "retry" => event
            .decode::<RetryScheduled>()
            .map(|p| json!(p))
            .or_else(|| event.decode::<ManualRetry>().map(|p| json!(p))),
        "error" => event.decode::<Failed>().map(|p| json!(p)),
        "tool_call" => event.decode::<ToolCalled>().map(|p| json!(p)),
        "approval_requested" => event.decode::<ApprovalRequested>().map(|p| json!(p)),
        "approval_decided" => event.decode::<ApprovalDecided>().map(|p| json!(p)),
        "email_received" => event.decode::<EmailReceived>().map(|p| json!(p)),
        "turn_started" => event.decode::<TurnStarted>().map(|p| json!(p)),
        "email_sent" => event.decode::<crate::store::EmailSent>().map(|p| json!(p)),
        "email_failed" => event.decode::<crate::store::EmailFailed>().map(|p| json!(p)),
        _ => None,
    }
}

/// Every event the store writes itself (created, claims, transitions, releases, steps, a
/// manual retry) has exactly the fields of its payload type, the actor given included.
pub async fn every_event_the_store_writes_has_its_typed_payload(store: Arc<dyn Store>) {
    let (t, _) = store.create(new_ticket("c", "typed")).await.unwrap();
    let (claimed, fence) = store
        .claim(t.id, "w1", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (taken, fence2) = store.claim(t.id, "w2", Duration::from_secs(60)).await.unwrap().unwrap();
    assert!(fence2.epoch > fence.epoch && taken.version > claimed.version);
    let mut step = ticketflow_graph::testing::sample_checkpoint(&t.id.to_string(), 1, None);
    step.metadata = json!({ "request_id": "req-1" });
    store.checkpointer(Some(fence2)).put(step).await.unwrap();
    assert!(store.release(fence2, "shutdown", Duration::ZERO).await.unwrap());
    let (claimed, _) = store.claim(t.id, "w3", Duration::from_secs(60)).await.unwrap().unwrap();
    let retried = store
        .transition(
            &claimed,
            Transition {
                count_attempt: true,
                ..Transition::to(TicketStatus::Pending).with_event(NewEvent::of(&RetryScheduled {
                    error: "timeout".into(),
                    attempt: 1,
                    delay_seconds: 0.5,
                }))
            },
        )
        .await
        .unwrap();
    let (claimed, _) = store
        .claim(t.id, "w3", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap_or_else(|| {
            panic!("claimable: {retried:?}");
        });
    store
        .finish(
            &claimed,
            Transition::to(TicketStatus::Completed).with_result(json!({ "reply": "ok" })),
        )
        .await
        .unwrap();
    let events = store.events(t.id).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "status_change",
            "status_change",
            "step_complete",
            "status_change",
            "status_change",
            "status_change",
            "retry",
            "status_change",
            "status_change"
        ]
    );
    for event in &events {
        assert!(
            typed_payload(event).is_some(),
            "a {} event's payload is not of its type: {}",
            event.event_type,
            event.payload
        );
    }
    assert_eq!(
        events[1].decode::<Claimed>().map(|c| (c.from, c.takeover)),
        Some((TicketStatus::Pending, false))
    );
    assert_eq!(
        events.last().unwrap().decode::<Moved>(),
        Some(Moved {
            from: TicketStatus::Processing,
            to: TicketStatus::Completed,
            attempt_count: 1,
            actor: None,
        })
    );
    assert_eq!(events[0].decode::<Created>().and_then(|c| c.actor), None, "anonymous");

    // The same with actors: a person's creation, a key's manual retry.
    let (t, _) = store
        .create(NewTicket {
            actor: Some("ana@example.com".into()),
            ..new_ticket("c", "typed, by people")
        })
        .await
        .unwrap();
    let failed = store
        .transition(&t, Transition::to(TicketStatus::FailedPermanent))
        .await
        .unwrap();
    crate::processing::requeue_failed(store.as_ref(), failed.id, None, Some("key:ops".into()))
        .await
        .unwrap();
    let events = store.events(t.id).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["created", "status_change", "status_change", "retry"]);
    for event in &events {
        assert!(
            typed_payload(event).is_some(),
            "a {} event's payload is not of its type: {}",
            event.event_type,
            event.payload
        );
    }
    assert_eq!(
        events[0].decode::<Created>().and_then(|c| c.actor).as_deref(),
        Some("ana@example.com")
    );
    assert_eq!(
        events[1].payload.get("actor"),
        None,
        "the workflow's own change names nobody"
    );
    assert_eq!(
        events[2].decode::<Moved>(),
        Some(Moved {
            from: TicketStatus::FailedPermanent,
            to: TicketStatus::Pending,
            attempt_count: 0,
            actor: Some("key:ops".into()),
        })
    );
    assert_eq!(
        events[3].decode::<ManualRetry>(),
        Some(ManualRetry {
            manual: true,
            actor: Some("key:ops".into()),
        })
    );
}

/// The health check reads the store's tables.
pub async fn the_health_check_reads_the_tables(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
}

/// Runs one scenario on `a` and on `b` (fresh stores of two backends) and asserts that
/// everything they return is the same, field by field, after replacing what must differ (ids
/// the stores make, timing) with its shape.
pub async fn same_behaviour(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let (left, right) = (transcript(a).await, transcript(b).await);
    assert_eq!(left.len(), right.len(), "the scenario ran differently");
    for (step, (l, r)) in left.iter().zip(&right).enumerate() {
        assert_eq!(l, r, "the backends differ at step {step} of the scenario");
    }
}

/// Everything one scenario returns, each value normalized.
async fn transcript(store: Arc<dyn Store>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut push = |label: &str, value: Value| out.push(json!({ "step": label, "value": normalize(value) }));
    let mut new = new_ticket("cust_same", "Same everywhere");
    new.metadata = json!({ "source": "transcript", "nested": { "list": [1, "two", null] } });
    let (ticket, created) = store.create(new.clone()).await.unwrap();
    push("create", json!({ "ticket": ticket, "created": created }));
    let (again, created) = store.create(new).await.unwrap();
    push("create again", json!({ "ticket": again, "created": created }));
    push("get", json!(store.get(ticket.id).await.unwrap()));
    push(
        "list",
        json!(
            store
                .list(&ListQuery {
                    customer_id: Some("cust_same".into()),
                    ..Default::default()
                })
                .await
                .unwrap()
        ),
    );
    let outbox = store.claim_outbox(10, Duration::from_secs(30)).await.unwrap();
    push(
        "claim outbox",
        json!(outbox
            .iter()
            .map(|m| json!({ "ticket_id": m.ticket_id, "request_id": m.request_id, "traceparent": m.traceparent, "attempt": m.attempt }))
            .collect::<Vec<_>>()),
    );
    store
        .mark_sent(&outbox.iter().map(|m| m.id).collect::<Vec<_>>())
        .await
        .unwrap();
    let (claimed, fence) = store
        .claim(ticket.id, "w1", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    push("claim", json!({ "ticket": claimed, "epoch": fence.epoch }));
    let mut step = ticketflow_graph::testing::sample_checkpoint(&ticket.id.to_string(), 1, None);
    step.metadata = json!({ "request_id": "req-1" });
    let checkpointer = store.checkpointer(Some(fence));
    checkpointer.put(step).await.unwrap();
    push(
        "latest",
        json!(checkpointer.latest(&ticket.id.to_string()).await.unwrap()),
    );
    let done = store
        .transition(
            &claimed,
            Transition::to(TicketStatus::Completed)
                .with_result(json!({ "final_response": "done", "score": 0.5 }))
                .with_event(NewEvent::of(&Failed {
                    error: "a note".into(),
                    retries_exhausted: None,
                })),
        )
        .await
        .unwrap();
    push("transition", json!(done));
    let (other, _) = store.create(new_ticket("cust_same", "Second")).await.unwrap();
    push(
        "history",
        json!(
            store
                .recent_tickets("cust_same", &other.id.to_string(), 5)
                .await
                .unwrap()
        ),
    );
    let (_, fence) = store
        .claim(other.id, "w2", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    store.release(fence, "shutdown", Duration::ZERO).await.unwrap();
    push("released", json!(store.get(other.id).await.unwrap()));
    push("events", json!(store.events(ticket.id).await.unwrap()));
    push("events of the released", json!(store.events(other.id).await.unwrap()));
    let backlog = store.backlog().await.unwrap();
    push(
        "backlog",
        json!({ "pending": backlog.pending, "outbox_due": backlog.outbox_due }),
    );
    out
}

/// `value` with what must differ between stores replaced by its shape: uuids the stores make
/// (v7: events, checkpoints) by `<uuid>`, timestamps by `<time …>` keeping their zone suffix,
/// sequence numbers and durations by `<n>`.
fn normalize(value: Value) -> Value {
    fn walk(value: Value, key: Option<&str>) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let v = walk(v, Some(&k));
                        (k, v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| walk(v, key)).collect()),
            Value::Number(_) if matches!(key, Some("seq" | "duration_ms")) => Value::String("<n>".into()),
            Value::String(text) => {
                if Uuid::parse_str(&text).is_ok_and(|id| id.get_version_num() == 7) {
                    Value::String("<uuid>".into())
                } else if let Ok(time) = chrono::DateTime::parse_from_rfc3339(&text) {
                    let zone = if text.ends_with('Z') {
                        "Z".to_owned()
                    } else {
                        time.offset().to_string()
                    };
                    Value::String(format!("<time {zone}>"))
                } else {
                    Value::String(text)
                }
            }
            other => other,
        }
    }
    walk(value, None)
}

/// A refund of `amount` cents of `order`, proposed for `ticket` and approved, ready to settle.
async fn approved_refund(store: &dyn Store, ticket: Uuid, key: &str) -> ToolCall {
    let (call, created) = store
        .journal_call(NewToolCall {
            ticket_id: ticket,
            call_id: ToolCall::id_for(ticket, key),
            tool: "process_refund".into(),
            args: json!({ "order_id": "ord_12345", "amount": 10.0, "reason": "late" }),
            status: CallStatus::AwaitingApproval,
            result: None,
            llm_call_id: Some("call_abc".into()),
        })
        .await
        .unwrap();
    assert!(created);
    store.decide_call(call.call_id, true, None).await.unwrap()
}

/// A refund effect.
fn refund_of(cents: i64) -> Effect {
    Effect::Refund {
        order_id: "ORD_12345".into(),
        amount: Money::from_cents(cents),
        reason: "late".into(),
        remote: None,
    }
}

/// The settlement the journal records for what a refund did.
fn refund_settlement(applied: &Applied) -> Settlement {
    match applied {
        Applied::Refunded { refund, .. } => Settlement {
            status: CallStatus::Executed,
            result: json!({ "refund_id": refund.id, "amount": refund.amount }),
        },
        other => Settlement {
            status: CallStatus::Failed,
            result: json!({ "error": format!("{other:?}") }),
        },
    }
}

/// The demo records load once (a second load adds nothing) and read back: customers by id or
/// e-mail in any case, orders newest first with their items, money exact.
pub async fn demo_data_loads_once_and_reads_back(store: Arc<dyn Store>) {
    assert!(store.has_no_customers().await.unwrap());
    let now = chrono::Utc::now();
    let first = store.load_demo_data(now).await.unwrap();
    assert_eq!((first.customers, first.products, first.orders), (5, 10, 6));
    let again = store.load_demo_data(now).await.unwrap();
    assert_eq!(again, crate::store::DemoLoaded::default(), "twice is the same as once");
    assert!(!store.has_no_customers().await.unwrap());
    let john = store.customer("CUST_JOHN_DOE").await.unwrap().expect("by id, any case");
    assert_eq!(
        store.customer("John.Doe@Email.com").await.unwrap().as_ref(),
        Some(&john),
        "by e-mail"
    );
    assert_eq!(john.lifetime_value, Money::from_cents(125_000));
    assert_eq!(john.address.city, "San Francisco");
    assert!(store.customer("nobody@example.com").await.unwrap().is_none());
    let orders = store.customer_orders(&john.id, 5).await.unwrap();
    let ids: Vec<_> = orders.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["ord_12345", "ord_11111"], "newest first");
    let order = store.order("ORD_12345").await.unwrap().expect("any case");
    assert_eq!(order, orders[0]);
    assert_eq!(order.total, Money::from_cents(19_598));
    assert_eq!(order.items.len(), 2);
    assert_eq!(order.items[0].name, "USB-C Hub 7-in-1");
    assert_eq!(order.status, OrderStatus::Shipped);
    assert!(
        order
            .tracking_number
            .as_deref()
            .is_some_and(|t| t.starts_with("1Z999AA1"))
    );
    assert_eq!(
        order.estimated_delivery,
        Some(order.placed_at + chrono::Duration::days(7))
    );
    let refunded = store.order("ord_99999").await.unwrap().unwrap();
    assert_eq!(refunded.refundable(), Money::ZERO);
    assert!(store.order("ord_00000").await.unwrap().is_none());
}

/// Products by exact id, or by a piece of the name taken literally (`%` and `_` are
/// characters, not patterns).
pub async fn products_are_found_by_id_or_by_a_literal_piece_of_the_name(store: Arc<dyn Store>) {
    store.load_demo_data(chrono::Utc::now()).await.unwrap();
    let by = |id: Option<&str>, name: Option<&str>| ProductQuery {
        id: id.map(Into::into),
        name_contains: name.map(Into::into),
        limit: 5,
    };
    let found = store.products(&by(Some("prod_wh1000"), None)).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].price, Money::from_cents(14_999));
    let named = store.products(&by(None, Some("HEADPHONES"))).await.unwrap();
    assert_eq!(named.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["prod_wh1000"]);
    for pattern in ["%", "_", "%e%", "'; DROP TABLE products; --", "\\"] {
        assert!(
            store.products(&by(None, Some(pattern))).await.unwrap().is_empty(),
            "{pattern:?} is matched literally"
        );
    }
    assert_eq!(
        store.products(&by(None, Some("e"))).await.unwrap().len(),
        5,
        "at most the limit"
    );
}

/// A proposed call is journaled once under its id; a decision is made once.
pub async fn tool_calls_are_journaled_once_and_decided_once(store: Arc<dyn Store>) {
    let (t, _) = store.create(new_ticket("c", "journal")).await.unwrap();
    let call = NewToolCall {
        ticket_id: t.id,
        call_id: ToolCall::id_for(t.id, "step-3/0"),
        tool: "check_order_status".into(),
        args: json!({ "order_id": "ord_1" }),
        status: CallStatus::AwaitingApproval,
        result: None,
        llm_call_id: None,
    };
    let (first, created) = store.journal_call(call.clone()).await.unwrap();
    assert!(created);
    assert_eq!(first.status, CallStatus::AwaitingApproval);
    let (again, created) = store.journal_call(call.clone()).await.unwrap();
    assert!(!created, "the same id is the same call");
    assert_eq!(again, first);
    assert_eq!(store.tool_call(first.call_id).await.unwrap(), Some(first.clone()));
    let later = NewToolCall {
        call_id: ToolCall::id_for(t.id, "step-3/1"),
        status: CallStatus::Requested,
        ..call.clone()
    };
    store.journal_call(later.clone()).await.unwrap();
    let listed: Vec<_> = store
        .tool_calls(t.id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.call_id)
        .collect();
    assert_eq!(listed, [call.call_id, later.call_id], "in the order proposed");
    // Not runnable until decided.
    let settle = store
        .settle_call(first.call_id, None, Effect::None, &|_| Settlement {
            status: CallStatus::Executed,
            result: json!({}),
        })
        .await;
    assert!(matches!(settle, Err(StoreError::Conflict { .. })), "{settle:?}");
    let rejected = store
        .decide_call(first.call_id, false, Some(json!({ "rejected": "not allowed" })))
        .await
        .unwrap();
    assert_eq!(rejected.status, CallStatus::Rejected);
    assert_eq!(rejected.result, Some(json!({ "rejected": "not allowed" })));
    assert!(
        matches!(
            store.decide_call(first.call_id, true, None).await,
            Err(StoreError::Conflict { .. })
        ),
        "decided once"
    );
    assert!(matches!(
        store.decide_call(Uuid::new_v4(), true, None).await,
        Err(StoreError::UnknownCall(_))
    ));
    let unknown_ticket = NewToolCall {
        ticket_id: Uuid::new_v4(),
        call_id: Uuid::new_v4(),
        ..call
    };
    assert!(matches!(
        store.journal_call(unknown_ticket).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Twenty settlements of one call at once: its effect is made once, and every caller gets
/// the journaled result.
pub async fn a_call_settles_once_with_its_effect_however_many_ask(store: Arc<dyn Store>) {
    store.load_demo_data(chrono::Utc::now()).await.unwrap();
    let (t, _) = store.create(new_ticket("cust_john_doe", "refund once")).await.unwrap();
    let call = approved_refund(&*store, t.id, "refund").await;
    let settles = (0..20).map(|_| {
        let store = store.clone();
        async move {
            store
                .settle_call(call.call_id, None, refund_of(1000), &refund_settlement)
                .await
                .unwrap()
        }
    });
    let settled = futures::future::join_all(settles).await;
    assert!(settled.iter().all(|c| c.status == CallStatus::Executed));
    assert!(
        settled.windows(2).all(|w| w[0].result == w[1].result),
        "one result for all"
    );
    let refunds = store.refunds("ord_12345").await.unwrap();
    assert_eq!(refunds.len(), 1, "one refund");
    assert_eq!(refunds[0].call_id, call.call_id);
    assert_eq!(refunds[0].amount, Money::from_cents(1000));
    let order = store.order("ord_12345").await.unwrap().unwrap();
    assert_eq!(
        (order.refunded, order.status),
        (Money::from_cents(1000), OrderStatus::PartiallyRefunded)
    );
    let executed = store.tool_call(call.call_id).await.unwrap().unwrap();
    assert!(executed.executed_at.is_some());
}

/// Refunds of other calls are capped by what is refundable when each is made: two that each
/// fit, but not together, make one refund and one refusal; a full refund marks the order.
pub async fn refunds_are_capped_by_what_is_still_refundable(store: Arc<dyn Store>) {
    store.load_demo_data(chrono::Utc::now()).await.unwrap();
    let (t, _) = store.create(new_ticket("cust_john_doe", "two refunds")).await.unwrap();
    let first = approved_refund(&*store, t.id, "first").await;
    let second = approved_refund(&*store, t.id, "second").await;
    let (a, b) = tokio::join!(
        store.settle_call(first.call_id, None, refund_of(15_000), &refund_settlement),
        store.settle_call(second.call_id, None, refund_of(15_000), &refund_settlement),
    );
    let statuses = [a.unwrap().status, b.unwrap().status];
    assert!(
        statuses.contains(&CallStatus::Executed) && statuses.contains(&CallStatus::Failed),
        "{statuses:?}"
    );
    let order = store.order("ord_12345").await.unwrap().unwrap();
    assert_eq!(order.refunded, Money::from_cents(15_000));
    let rest = approved_refund(&*store, t.id, "rest").await;
    let settled = store
        .settle_call(rest.call_id, None, refund_of(4_598), &refund_settlement)
        .await
        .unwrap();
    assert_eq!(settled.status, CallStatus::Executed);
    let order = store.order("ord_12345").await.unwrap().unwrap();
    assert_eq!((order.refundable(), order.status), (Money::ZERO, OrderStatus::Refunded));
    assert_eq!(store.refunds("ORD_12345").await.unwrap().len(), 2);
}

/// A run that lost its lease settles nothing.
pub async fn settlements_are_fenced_by_the_lease(store: Arc<dyn Store>) {
    store.load_demo_data(chrono::Utc::now()).await.unwrap();
    let (t, _) = store
        .create(new_ticket("cust_john_doe", "fenced refund"))
        .await
        .unwrap();
    let (_, old) = store
        .claim(t.id, "w1", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (_, current) = store.claim(t.id, "w2", Duration::from_secs(60)).await.unwrap().unwrap();
    let call = approved_refund(&*store, t.id, "fenced").await;
    let stale = store
        .settle_call(call.call_id, Some(old), refund_of(1000), &refund_settlement)
        .await;
    assert!(matches!(stale, Err(StoreError::Fenced(_))), "{stale:?}");
    assert!(store.refunds("ord_12345").await.unwrap().is_empty(), "nothing refunded");
    assert_eq!(
        store.tool_call(call.call_id).await.unwrap().unwrap().status,
        CallStatus::Approved
    );
    let settled = store
        .settle_call(call.call_id, Some(current), refund_of(1000), &refund_settlement)
        .await
        .unwrap();
    assert_eq!(settled.status, CallStatus::Executed);
}

/// Escalations, bug reports and password resets are written with their call, and read back.
pub async fn every_effect_is_recorded_with_its_call(store: Arc<dyn Store>) {
    let (t, _) = store.create(new_ticket("cust_john_doe", "effects")).await.unwrap();
    let journal = |key: &str, tool: &str| {
        let store = store.clone();
        let call = NewToolCall {
            ticket_id: t.id,
            call_id: ToolCall::id_for(t.id, key),
            tool: tool.into(),
            args: json!({}),
            status: CallStatus::Requested,
            result: None,
            llm_call_id: None,
        };
        async move { store.journal_call(call).await.unwrap().0 }
    };
    let done = |applied: &Applied| Settlement {
        status: CallStatus::Executed,
        result: json!({ "applied": format!("{applied:?}") }),
    };
    let escalation = journal("e", "escalate_to_human").await;
    let effect = Effect::Escalation {
        reason: "angry".into(),
        suggested_action: "call back".into(),
    };
    store
        .settle_call(escalation.call_id, None, effect, &done)
        .await
        .unwrap();
    let bug = journal("b", "create_bug_report").await;
    let effect = Effect::BugReport {
        title: "Crash".into(),
        description: "on start".into(),
        priority: "high".into(),
        external_url: Some("https://github.example/o/r/issues/7".into()),
    };
    store.settle_call(bug.call_id, None, effect, &done).await.unwrap();
    let reset = journal("r", "reset_password").await;
    let expires_at = chrono::Utc::now() + chrono::Duration::hours(24);
    let effect = Effect::PasswordReset {
        customer_id: "cust_john_doe".into(),
        email: "john.doe@email.com".into(),
        token_hash: "ab".repeat(32),
        expires_at,
        message: json!({ "to": "john.doe@email.com", "subject": "Reset", "text": "link" }),
    };
    store.settle_call(reset.call_id, None, effect, &done).await.unwrap();
    let effects = store.call_effects(t.id).await.unwrap();
    assert_eq!(effects.escalations.len(), 1);
    assert_eq!(effects.escalations[0].call_id, escalation.call_id);
    assert_eq!(effects.escalations[0].status, "open");
    assert!(effects.escalations[0].id.starts_with("ESC-"));
    assert_eq!(effects.bug_reports[0].priority, "high");
    assert_eq!(
        effects.bug_reports[0].external_url.as_deref(),
        Some("https://github.example/o/r/issues/7")
    );
    assert_eq!(effects.password_resets[0].token_hash, "ab".repeat(32));
    assert_eq!(effects.password_resets[0].email_status, "queued");
    assert_eq!(
        effects.password_resets[0].expires_at.timestamp(),
        expires_at.timestamp()
    );
    assert!(effects.refunds.is_empty());
}

/// `ticket` claimed and paused on a held refund: the journaled call and its approval request.
async fn held_refund(store: &dyn Store, subject: &str) -> (Ticket, Approval) {
    let (t, _) = store.create(new_ticket("c", subject)).await.unwrap();
    let (claimed, _) = store
        .claim(t.id, "w1", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("claimable");
    let (call, _) = store
        .journal_call(NewToolCall {
            ticket_id: t.id,
            call_id: ToolCall::id_for(t.id, "research/action"),
            tool: "process_refund".into(),
            args: json!({ "order_id": "ord_12345", "amount": 10.0, "reason": "late" }),
            status: CallStatus::AwaitingApproval,
            result: None,
            llm_call_id: None,
        })
        .await
        .unwrap();
    let request = NewApproval {
        call_id: call.call_id,
        action_type: call.tool.clone(),
        action_params: call.args.clone(),
        interrupted_at: "gate".into(),
    };
    let approval = store
        .hold(&claimed, request, Transition::to(TicketStatus::AwaitingApproval))
        .await
        .unwrap();
    (current(store, t.id).await, approval)
}

/// A hold writes the request, the move to `awaiting_approval` and its event together; a
/// decision settles the request and its call, hands the ticket back (`pending`, an outbox
/// row) and records who decided; a second decision conflicts, an unknown one is named.
pub async fn a_hold_and_a_decision_are_one_transaction_each(store: Arc<dyn Store>) {
    let (ticket, approval) = held_refund(store.as_ref(), "hold").await;
    assert_eq!(ticket.status, TicketStatus::AwaitingApproval);
    assert_eq!(approval.status, ApprovalStatus::Pending);
    assert_eq!(
        (approval.ticket_id, approval.action_type.as_str()),
        (ticket.id, "process_refund")
    );
    assert_eq!(approval.ticket.subject, "hold");
    assert_eq!(approval.version, 1);
    assert_eq!(store.approval(approval.id).await.unwrap(), Some(approval.clone()));
    assert_eq!(
        store.approval_for_call(approval.call_id).await.unwrap(),
        Some(approval.clone())
    );
    let events = store.events(ticket.id).await.unwrap();
    let requested = events
        .iter()
        .find(|e| e.event_type == "approval_requested")
        .expect("an approval_requested event");
    let payload = requested.decode::<ApprovalRequested>().unwrap();
    assert_eq!((payload.approval_id, payload.call_id), (approval.id, approval.call_id));
    let stats = store.desk_stats().await.unwrap();
    assert_eq!((stats.awaiting_approval_tickets, stats.pending_approvals), (1, 1));
    let page = store.approvals(&ApprovalQuery::default()).await.unwrap();
    assert_eq!((page.total, page.approvals.len()), (1, 1));
    let other_ticket = ApprovalQuery {
        ticket_id: Some(Uuid::new_v4()),
        ..ApprovalQuery::default()
    };
    assert_eq!(store.approvals(&other_ticket).await.unwrap().total, 0);
    // Drain the creation's outbox row, so the decision's own row is what is left.
    let rows = store.claim_outbox(10, Duration::from_secs(30)).await.unwrap();
    store
        .mark_sent(&rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .await
        .unwrap();

    let decided = store
        .decide(
            approval.id,
            Decision {
                approved: true,
                reason: Some("goodwill".into()),
                decided_by: Some("alice".into()),
                request_id: Some("req-decide".into()),
                ..Decision::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(decided.approval.status, ApprovalStatus::Approved);
    assert_eq!(decided.approval.decided_by.as_deref(), Some("alice"));
    assert_eq!(decided.approval.decision_reason.as_deref(), Some("goodwill"));
    assert!(decided.approval.decided_at.is_some());
    assert_eq!(decided.approval.version, 2);
    assert_eq!(decided.ticket.status, TicketStatus::Pending);
    let call = store.tool_call(approval.call_id).await.unwrap().unwrap();
    assert_eq!(call.status, CallStatus::Approved);
    let woken = store.claim_outbox(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(woken.len(), 1, "the decision wakes the ticket through the outbox");
    assert_eq!(
        (woken[0].ticket_id, woken[0].request_id.as_deref()),
        (ticket.id, Some("req-decide"))
    );
    let events = store.events(ticket.id).await.unwrap();
    let decided_event = events
        .iter()
        .find(|e| e.event_type == "approval_decided")
        .expect("an approval_decided event")
        .decode::<ApprovalDecided>()
        .unwrap();
    assert!(decided_event.approved);
    assert_eq!(decided_event.decided_by.as_deref(), Some("alice"));
    let stats = store.desk_stats().await.unwrap();
    assert_eq!((stats.awaiting_approval_tickets, stats.pending_approvals), (0, 0));
    for event in &events {
        assert!(
            typed_payload(event).is_some(),
            "a {} event's payload is not of its type: {}",
            event.event_type,
            event.payload
        );
    }
    assert_eq!(
        events.iter().filter(|e| e.event_type == "tool_call").count(),
        1,
        "the call's journaling; its decision is the approval_decided event"
    );

    match store.decide(approval.id, Decision::default()).await {
        Err(StoreError::Conflict { message, .. }) => {
            assert!(message.contains("already approved by alice"), "{message}")
        }
        other => panic!("a second decision must conflict: {other:?}"),
    }
    assert!(matches!(
        store.decide(Uuid::new_v4(), Decision::default()).await,
        Err(StoreError::UnknownApproval(_))
    ));
    let approved = ApprovalQuery {
        status: Some(ApprovalStatus::Approved),
        ..ApprovalQuery::default()
    };
    assert_eq!(store.approvals(&approved).await.unwrap().total, 1);

    // A rejection's reason becomes the call's result.
    let (_, second) = held_refund(store.as_ref(), "rejected").await;
    let rejection = Decision {
        approved: false,
        reason: Some("outside the policy".into()),
        decided_by: Some("bob".into()),
        ..Decision::default()
    };
    store.decide(second.id, rejection.clone()).await.unwrap();
    let call = store.tool_call(second.call_id).await.unwrap().unwrap();
    assert_eq!(call.status, CallStatus::Rejected);
    assert_eq!(call.result, Some(rejection_result(&rejection)));
}

/// Fifty people decide one request at once: one decision wins, 49 conflict, none fails
/// otherwise, and the call is decided once.
pub async fn of_fifty_concurrent_deciders_exactly_one_wins(store: Arc<dyn Store>) {
    let (_, approval) = held_refund(store.as_ref(), "race").await;
    let deciders = (0..50).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let decision = Decision {
                approved: i % 2 == 0,
                decided_by: Some(format!("person-{i}")),
                ..Decision::default()
            };
            store.decide(approval.id, decision).await
        })
    });
    let outcomes = futures::future::join_all(deciders).await;
    let mut won = 0;
    for outcome in outcomes {
        match outcome.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(other) => panic!("a losing decider gets a conflict, not {other:?}"),
        }
    }
    assert_eq!(won, 1);
    let decided = store.approval(approval.id).await.unwrap().unwrap();
    assert_ne!(decided.status, ApprovalStatus::Pending);
    assert_eq!(decided.version, 2);
}

/// A request whose ticket moved on (failed, retried, taken over) cannot be decided: a conflict
/// that says so, and the request stays pending.
pub async fn a_decision_needs_its_ticket_to_wait_for_it(store: Arc<dyn Store>) {
    let (ticket, approval) = held_refund(store.as_ref(), "moved on").await;
    store
        .transition(&ticket, Transition::to(TicketStatus::FailedPermanent))
        .await
        .unwrap();
    match store.decide(approval.id, Decision::default()).await {
        Err(StoreError::Conflict { message, .. }) => assert!(message.contains("no longer waits"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let still = store.approval(approval.id).await.unwrap().unwrap();
    assert_eq!(still.status, ApprovalStatus::Pending);
    assert_eq!(
        store.tool_call(approval.call_id).await.unwrap().unwrap().status,
        CallStatus::AwaitingApproval
    );
}

/// An inbound e-mail from `jane@example.com` with Message-ID `id`.
fn inbound(id: &str, text: &str) -> NewMessage {
    NewMessage {
        channel: "email".into(),
        from_address: Some("jane@example.com".into()),
        subject: "Re: Order".into(),
        text: text.into(),
        reply_text: text.into(),
        message_id: id.into(),
        provider: Some("generic".into()),
        ..NewMessage::default()
    }
}

/// A ticket's first message is its subject and body; a message threaded onto it follows the
/// rule of its status (completed: reopened in a new turn; failed: retried in a new turn;
/// pending, processing, awaiting approval, escalated: appended for the next turn or the
/// person); a turn
/// that ends while newer messages wait starts the next; the same Message-ID adds nothing;
/// a webhook token is accepted once.
pub async fn conversations_follow_the_status_rules(store: Arc<dyn Store>) {
    let (t, _) = store.create(new_ticket("jane@example.com", "Order")).await.unwrap();
    let first = store.messages(t.id).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].direction, first[0].turn), (Direction::Inbound, 1));
    assert_eq!(
        (first[0].subject.as_str(), first[0].text.as_str()),
        (t.subject.as_str(), t.body.as_str())
    );
    assert_eq!(first[0].message_id, format!("<{}@ticketflow>", t.id));
    assert!(matches!(
        store.messages(Uuid::now_v7()).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(t.turn, 1);

    // Pending: appended for the next turn; the same Message-ID again adds nothing.
    let appended = store
        .append_inbound(t.id, inbound("<m1@x>", "one more thing"))
        .await
        .unwrap();
    assert_eq!(appended.arrival, Arrival::Appended);
    assert_eq!(
        (appended.ticket.status, appended.ticket.turn),
        (TicketStatus::Pending, 1)
    );
    let again = store
        .append_inbound(t.id, inbound("<m1@x>", "one more thing"))
        .await
        .unwrap();
    assert_eq!(again.arrival, Arrival::Duplicate);
    assert_eq!(store.messages(t.id).await.unwrap().len(), 2);
    assert_eq!(store.message("<m1@x>").await.unwrap().unwrap().turn, 2);
    assert_eq!(
        store.threads_of(&["<nope@x>".into(), "<m1@x>".into()]).await.unwrap(),
        vec![t.id]
    );
    assert!(store.threads_of(&[]).await.unwrap().is_empty());

    // Processing: appended too; the run in progress keeps its lease and version.
    let (claimed, _) = store.claim(t.id, "w1", Duration::from_secs(60)).await.unwrap().unwrap();
    let during = store
        .append_inbound(t.id, inbound("<m1b@x>", "and quickly"))
        .await
        .unwrap();
    assert_eq!(during.arrival, Arrival::Appended);
    assert_eq!(
        (during.ticket.status, during.ticket.version),
        (TicketStatus::Processing, claimed.version)
    );

    // Turn 1 ends with its reply recorded (once); the waiting messages start turn 2.
    let done = store
        .transition(
            &current(store.as_ref(), t.id).await,
            Transition::to(TicketStatus::Completed),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        store
            .record_reply(t.id, 1, NewMessage::reply_of(&done, 1, "Your order ships today."))
            .await
            .unwrap();
    }
    assert!(store.continue_conversation(t.id, 1).await.unwrap());
    let turn2 = current(store.as_ref(), t.id).await;
    assert_eq!((turn2.status, turn2.turn), (TicketStatus::Pending, 2));
    assert!(!store.continue_conversation(t.id, 1).await.unwrap(), "moved on already");
    let messages = store.messages(t.id).await.unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!((messages[3].direction, messages[3].turn), (Direction::Outbound, 1));
    assert_eq!(messages[3].subject, "Re: Order");
    assert_eq!(
        store.threads_of(&[messages[3].message_id.clone()]).await.unwrap(),
        vec![t.id]
    );

    // Completed with nothing waiting: it stays completed; a reply then reopens it.
    let done = store
        .transition(&turn2, Transition::to(TicketStatus::Completed))
        .await
        .unwrap();
    assert!(!store.continue_conversation(t.id, 2).await.unwrap());
    let reopened = store
        .append_inbound(t.id, inbound("<m2@x>", "and another"))
        .await
        .unwrap();
    assert_eq!(reopened.arrival, Arrival::Reopened);
    assert_eq!(
        (reopened.ticket.status, reopened.ticket.turn),
        (TicketStatus::Pending, 3)
    );
    assert!(reopened.ticket.version > done.version);

    // Failed: retried in a new turn, with a fresh budget.
    let failed = store
        .transition(&reopened.ticket, Transition::to(TicketStatus::FailedPermanent))
        .await
        .unwrap();
    let retried = store
        .append_inbound(t.id, inbound("<m3@x>", "still there?"))
        .await
        .unwrap();
    assert_eq!(retried.arrival, Arrival::Retried);
    assert_eq!((retried.ticket.status, retried.ticket.turn), (TicketStatus::Pending, 4));
    assert_eq!(retried.ticket.attempt_count, 0);
    assert!(retried.ticket.version > failed.version);

    // Awaiting a decision, escalated: appended, the status kept.
    for (status, id) in [
        (TicketStatus::AwaitingApproval, "<m4@x>"),
        (TicketStatus::Escalated, "<m5@x>"),
    ] {
        let held = store
            .transition(&current(store.as_ref(), t.id).await, Transition::to(status))
            .await
            .unwrap();
        let appended = store.append_inbound(t.id, inbound(id, "any news?")).await.unwrap();
        assert_eq!(appended.arrival, Arrival::Appended);
        assert_eq!((appended.ticket.status, appended.ticket.turn), (status, 4));
        assert_eq!(appended.ticket.version, held.version);
    }
    let events = store.events(t.id).await.unwrap();
    let count = |kind: &str| events.iter().filter(|e| e.event_type == kind).count();
    assert_eq!(count("email_received"), 6);
    assert_eq!(count("turn_started"), 3);
    for event in events
        .iter()
        .filter(|e| e.event_type == "email_received" || e.event_type == "turn_started")
    {
        assert!(typed_payload(event).is_some(), "{}", event.payload);
    }
    assert!(matches!(
        store.append_inbound(Uuid::now_v7(), inbound("<m6@x>", "?")).await,
        Err(StoreError::NotFound(_))
    ));

    assert!(
        store
            .remember_token("mailgun", "tok-1", Duration::from_secs(600))
            .await
            .unwrap()
    );
    assert!(
        !store
            .remember_token("mailgun", "tok-1", Duration::from_secs(600))
            .await
            .unwrap()
    );
    assert!(
        store
            .remember_token("other", "tok-1", Duration::from_secs(600))
            .await
            .unwrap()
    );
}

/// The reply of `ticket`'s turn 1 as an e-mail ticket would have it: queued and automatic.
fn queued_reply(ticket: &Ticket, turn: i32, text: &str) -> NewMessage {
    let mut email = ticket.clone();
    email.channel = "email".into();
    NewMessage {
        metadata: json!({ AUTO_SUBMITTED: true }),
        ..NewMessage::reply_of(&email, turn, text)
    }
}

/// A queued message is claimed once while its claim holds, again when the claim lapses (the
/// same Message-ID, one more attempt), hidden until its retry time after a failed attempt,
/// and recorded once: `sent` with an `email_sent` event, or `failed` with an `email_failed`
/// one; an outcome for a message no longer queued changes nothing. Automatic replies to an
/// address are counted while queued or sent.
pub async fn outbound_mail_is_claimed_retried_and_recorded_once(store: Arc<dyn Store>) {
    let (t, _) = store.create(new_ticket("Jane@Example.com", "Order")).await.unwrap();
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    assert!(
        store
            .claim_deliveries(10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    let reply = queued_reply(&t, 1, "Hello");
    store.record_reply(t.id, 1, reply.clone()).await.unwrap();
    assert_eq!(
        store.automatic_replies_to("jane@example.com", hour_ago).await.unwrap(),
        1
    );

    let claimed = store.claim_deliveries(10, Duration::from_millis(300)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].message_id.as_str(), claimed[0].attempts, claimed[0].status),
        (reply.message_id.as_str(), 1, MessageStatus::Queued)
    );
    assert!(
        store
            .claim_deliveries(10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let lapsed = store.claim_deliveries(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(lapsed.len(), 1, "a claim that lapsed comes due again");
    assert_eq!(
        (lapsed[0].message_id.as_str(), lapsed[0].attempts),
        (reply.message_id.as_str(), 2)
    );

    let retry_at = chrono::Utc::now() + chrono::Duration::milliseconds(800);
    store
        .record_delivery(
            &lapsed[0],
            DeliveryOutcome::Retry {
                error: "the mail server did not answer".into(),
                retry_at,
            },
        )
        .await
        .unwrap();
    let waiting = store.message(&reply.message_id).await.unwrap().unwrap();
    assert_eq!(waiting.status, MessageStatus::Queued);
    assert_eq!(waiting.last_error.as_deref(), Some("the mail server did not answer"));
    assert!(
        store
            .claim_deliveries(10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let due = store.claim_deliveries(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempts, 3);
    store
        .record_delivery(
            &due[0],
            DeliveryOutcome::Sent {
                provider: "smtp".into(),
            },
        )
        .await
        .unwrap();
    store
        .record_delivery(&due[0], DeliveryOutcome::Failed { error: "late".into() })
        .await
        .unwrap();
    let sent = store.message(&reply.message_id).await.unwrap().unwrap();
    assert_eq!(sent.status, MessageStatus::Sent);
    assert_eq!(
        (sent.provider.as_deref(), sent.last_error.as_deref()),
        (Some("smtp"), None)
    );
    assert!(sent.sent_at.is_some());
    assert!(
        store
            .claim_deliveries(10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.automatic_replies_to("JANE@EXAMPLE.COM", hour_ago).await.unwrap(),
        1
    );

    // A second message fails for good; an `api` reply and a person's are not automatic.
    let other = queued_reply(&t, 2, "Anything else?");
    store.record_reply(t.id, 2, other.clone()).await.unwrap();
    store
        .record_reply(t.id, 3, NewMessage::reply_of(&t, 3, "recorded only"))
        .await
        .unwrap();
    let claimed = store.claim_deliveries(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), 1, "a recorded message is never delivered");
    store
        .record_delivery(
            &claimed[0],
            DeliveryOutcome::Failed {
                error: "550 no such user".into(),
            },
        )
        .await
        .unwrap();
    let failed = store.message(&other.message_id).await.unwrap().unwrap();
    assert_eq!(failed.status, MessageStatus::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("550 no such user"));
    assert_eq!(
        store.automatic_replies_to("jane@example.com", hour_ago).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .automatic_replies_to("jane@example.com", chrono::Utc::now() + chrono::Duration::seconds(5))
            .await
            .unwrap(),
        0
    );

    let events = store.events(t.id).await.unwrap();
    let of = |kind: &str| events.iter().filter(|e| e.event_type == kind).collect::<Vec<_>>();
    assert_eq!(of("email_sent").len(), 1);
    assert_eq!(of("email_sent")[0].payload["attempts"], 3);
    assert_eq!(of("email_failed").len(), 1);
    assert_eq!(of("email_failed")[0].payload["message_id"], json!(other.message_id));
}

/// A person's reply lands in the ticket's current turn, threaded on its conversation; on an
/// `escalated` ticket it completes the ticket in the same transaction, on others it only
/// adds the message.
pub async fn a_staff_reply_is_threaded_and_completes_an_escalated_ticket(store: Arc<dyn Store>) {
    let (t, _) = store.create(new_ticket("jane@example.com", "Order")).await.unwrap();
    store.append_inbound(t.id, inbound("<s1@x>", "hello?")).await.unwrap();
    let conversation = store.messages(t.id).await.unwrap();
    let reply = NewMessage::staff_reply(&t, "We are on it.", None).threaded_on(&conversation);
    assert_eq!(reply.in_reply_to.as_deref(), Some("<s1@x>"));
    assert_eq!(
        reply.references,
        vec![format!("<{}@ticketflow>", t.id), "<s1@x>".to_owned()]
    );
    let pending = store.reply_by_staff(t.id, reply, None, None).await.unwrap();
    assert!(!pending.completed);
    assert_eq!(pending.ticket.status, TicketStatus::Pending);
    assert_eq!(
        (pending.message.direction, pending.message.turn, pending.message.status),
        (Direction::Outbound, 1, MessageStatus::Recorded)
    );

    let escalated = store
        .transition(
            &current(store.as_ref(), t.id).await,
            Transition::to(TicketStatus::Escalated),
        )
        .await
        .unwrap();
    let reply = NewMessage::staff_reply(&escalated, "Done: refunded.", Some("key-1"));
    let done = store
        .reply_by_staff(t.id, reply, Some("req-staff".into()), Some("ana@example.com".into()))
        .await
        .unwrap();
    assert!(done.completed && !done.duplicate);
    assert_eq!(done.ticket.status, TicketStatus::Completed);
    let completing = store.events(t.id).await.unwrap().pop().unwrap();
    assert_eq!(completing.request_id.as_deref(), Some("req-staff"));
    assert_eq!(
        completing.decode::<Moved>(),
        Some(Moved {
            from: TicketStatus::Escalated,
            to: TicketStatus::Completed,
            attempt_count: 0,
            actor: Some("ana@example.com".into()),
        }),
        "the reply's status_change names who replied"
    );
    let again = store
        .reply_by_staff(
            t.id,
            NewMessage::staff_reply(&escalated, "Done: refunded.", Some("key-1")),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(again.duplicate && !again.completed);
    assert_eq!(again.message.message_id, done.message.message_id);
    assert!(matches!(
        store
            .reply_by_staff(
                t.id,
                NewMessage::staff_reply(&escalated, "Other text", Some("key-1")),
                None,
                None
            )
            .await,
        Err(StoreError::IdempotencyConflict(_))
    ));
    assert_eq!(current(store.as_ref(), t.id).await.status, TicketStatus::Completed);
    assert_eq!(store.messages(t.id).await.unwrap().len(), 4);
    assert!(matches!(
        store
            .reply_by_staff(Uuid::now_v7(), NewMessage::staff_reply(&t, "x", None), None, None)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// `q` finds tickets holding every word in subject, body, customer or reply (the reply once a
/// ticket has one); hostile text finds something or nothing, never an error, except NUL, blank
/// and overlong text, which are named; channel, creation time and sort apply beside it.
pub async fn tickets_are_found_by_their_words_and_filtered_and_sorted(store: Arc<dyn Store>) {
    use crate::store::{ListSort, MAX_SEARCH_CHARS};
    let create = |customer: &str, subject: &str, body: &str, channel: &str| NewTicket {
        customer_id: customer.into(),
        subject: subject.into(),
        body: body.into(),
        channel: channel.into(),
        ..NewTicket::default()
    };
    let (refund, _) = store
        .create(create(
            "cust_a",
            "Refund for order ORD-55812",
            "I was charged twice.",
            "api",
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (login, _) = store
        .create(create(
            "jane@example.com",
            "Login problem",
            "I cannot reset my password.",
            "email",
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (parcel, _) = store
        .create(create("cust_b", "Shipping", "Where is my parcel?", "api"))
        .await
        .unwrap();
    store
        .transition(
            &parcel,
            Transition::to(TicketStatus::Completed)
                .with_result(json!({ "final_response": "Your parcel leaves our warehouse tomorrow." })),
        )
        .await
        .unwrap();
    let search = |q: &str| ListQuery {
        q: Some(q.into()),
        ..ListQuery::default()
    };
    let ids = |page: crate::store::TicketPage| page.tickets.iter().map(|t| t.id).collect::<Vec<_>>();
    for (q, found) in [
        ("refund", vec![refund.id]),
        ("REFUNDS", vec![refund.id]),
        ("charged twice", vec![refund.id]),
        ("charged parcel", vec![]),
        ("ORD-55812", vec![refund.id]),
        ("jane@example.com", vec![login.id]),
        ("password", vec![login.id]),
        ("warehouse tomorrow", vec![parcel.id]),
        ("nothing-like-this", vec![]),
    ] {
        let page = store.list(&search(q)).await.unwrap();
        assert_eq!(page.total, found.len() as i64, "{q}");
        assert_eq!(ids(page), found, "{q}");
    }
    let long_quotes = "\"".repeat(MAX_SEARCH_CHARS);
    for hostile in [
        "\"",
        "'",
        "*",
        "OR",
        "refund OR",
        "NEAR(refund parcel)",
        "subject:refund",
        "-refund",
        "refund*",
        "(((",
        "\\",
        "'; DROP TABLE tickets; --",
        "\u{202e}refund",
        long_quotes.as_str(),
    ] {
        store
            .list(&search(hostile))
            .await
            .unwrap_or_else(|e| panic!("{hostile:?}: {e}"));
    }
    for (bad, field) in [("a\0b", "q"), ("   ", "q")] {
        match store.list(&search(bad)).await {
            Err(StoreError::Validation { field: named, .. }) => assert_eq!(named, field, "{bad:?}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(matches!(
        store.list(&search(&"a".repeat(MAX_SEARCH_CHARS + 1))).await,
        Err(StoreError::Validation { field: "q", .. })
    ));

    let filtered = |query: ListQuery| {
        let store = store.clone();
        async move { ids(store.list(&query).await.unwrap()) }
    };
    assert_eq!(
        filtered(ListQuery {
            channel: Some("email".into()),
            ..ListQuery::default()
        })
        .await,
        vec![login.id]
    );
    assert_eq!(
        filtered(ListQuery {
            created_after: Some(login.created_at),
            ..ListQuery::default()
        })
        .await,
        vec![parcel.id, login.id]
    );
    assert_eq!(
        filtered(ListQuery {
            created_before: Some(login.created_at),
            ..ListQuery::default()
        })
        .await,
        vec![refund.id]
    );
    assert_eq!(
        filtered(ListQuery {
            sort: ListSort::CreatedAsc,
            ..ListQuery::default()
        })
        .await,
        vec![refund.id, login.id, parcel.id]
    );
    assert_eq!(
        filtered(ListQuery {
            sort: ListSort::UpdatedDesc,
            ..ListQuery::default()
        })
        .await[0],
        parcel.id
    );
    assert_eq!(
        filtered(ListQuery {
            q: Some("password".into()),
            channel: Some("api".into()),
            ..ListQuery::default()
        })
        .await,
        Vec::<Uuid>::new()
    );
}

/// The live feed's reads: events after a seq and between two, all tickets' or one's, with
/// the snapshot's newest seq; commit notices that wake a waiting reader; and an
/// [`EventFeed`](crate::live::EventFeed) subscription that gets history, then new events, and
/// ends when its ticket is done.
pub async fn the_live_feed_reads_between_seqs_and_hears_of_commits(store: Arc<dyn Store>) {
    use crate::live::{EventFeed, Filter};
    use crate::store::InFlight;

    let (a, _) = store.create(new_ticket("feed_a", "feed a")).await.unwrap();
    let (b, _) = store.create(new_ticket("feed_b", "feed b")).await.unwrap();
    for i in 0..3 {
        for t in [a.id, b.id] {
            store
                .append_event(t, NewEvent::new(EventType::Retry, json!({ "i": i })))
                .await
                .unwrap();
        }
    }
    let all = store.read_feed(0, 100, &[]).await.unwrap();
    assert_eq!(all.events.len(), 8);
    assert!(all.events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all.newest, all.events.last().unwrap().seq);
    assert!(all.waited_for_ended);
    if let InFlight::Writers(writers) = &all.in_flight {
        assert!(writers.is_empty(), "nobody writes: {writers:?}");
        let gone = vec!["999/999999".to_owned()];
        assert!(store.read_feed(0, 1, &gone).await.unwrap().waited_for_ended);
    }
    let limited = store.read_feed(all.events[1].seq, 3, &[]).await.unwrap();
    let seqs = |events: &[crate::store::TicketEvent]| events.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(&limited.events), seqs(&all.events[2..5]));
    assert_eq!(limited.newest, all.newest, "the newest seq, past the limit");
    let first = all.events[0].seq;
    let between = store.events_between(None, first, all.events[4].seq, 100).await.unwrap();
    assert_eq!(seqs(&between), seqs(&all.events[1..5]));
    let of_a = store.events_between(Some(a.id), 0, i64::MAX, 100).await.unwrap();
    assert_eq!(of_a.len(), 4);
    assert!(of_a.iter().all(|e| e.ticket_id == a.id));
    assert_eq!(store.events_between(Some(a.id), 0, i64::MAX, 2).await.unwrap().len(), 2);
    assert!(
        store
            .events_between(Some(Uuid::new_v4()), 0, i64::MAX, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A commit wakes a waiting reader of notices.
    if let Some(mut notices) = store.commit_notices().await.unwrap() {
        // Drain what earlier writes left, then wait for the next one.
        while tokio::time::timeout(std::time::Duration::from_millis(200), notices.next())
            .await
            .is_ok()
        {}
        let writer = store.clone();
        let write = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            writer
                .append_event(b.id, NewEvent::new(EventType::Retry, json!({ "i": 9 })))
                .await
                .unwrap();
        });
        tokio::time::timeout(std::time::Duration::from_secs(10), notices.next())
            .await
            .expect("a notice within 10 s of a commit")
            .unwrap();
        write.await.unwrap();
    }

    // A subscription: history, then what comes next, in order; it ends once the ticket is done.
    let feed = EventFeed::new(store.clone());
    let mut followed = feed.subscribe(Filter::ticket(a.id), 0).await.unwrap();
    for expected in &of_a {
        assert_eq!(followed.next().await.unwrap().seq, expected.seq);
    }
    let current = current(&*store, a.id).await;
    let done = store
        .transition(&current, crate::store::Transition::to(TicketStatus::FailedPermanent))
        .await
        .unwrap();
    assert_eq!(done.status, TicketStatus::FailedPermanent);
    let last = tokio::time::timeout(std::time::Duration::from_secs(10), followed.next())
        .await
        .expect("the new event within 10 s")
        .unwrap();
    assert_eq!(last.event_type, "status_change");
    assert_eq!(last.payload["to"], "failed_permanent");
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(10), followed.next())
            .await
            .expect("the subscription ends")
            .is_none(),
        "done once the ticket is"
    );
    let resumed = feed.subscribe(Filter::ticket(a.id), of_a[1].seq).await.unwrap();
    let rest: Vec<_> = futures::StreamExt::collect::<Vec<_>>(resumed.into_stream()).await;
    assert_eq!(
        rest.len(),
        of_a.len() - 1,
        "after the seq asked for, and the final status_change"
    );
}

/// The webhook outbox: a delivery per (event, endpoint) written with the event, with the ticket
/// as the event left it; claims count attempts and hide deliveries; outcomes are fenced by the
/// attempt; a person's retry; endpoints that stop getting new events.
pub async fn webhooks_are_queued_with_their_events_and_delivered_once(store: Arc<dyn Store>) {
    use crate::store::{Transition, WebhookAttempt, WebhookOutcome, WebhookQuery, WebhookStatus};
    use std::time::Duration;

    let (quiet, _) = store.create(new_ticket("hooks", "before any endpoint")).await.unwrap();
    store
        .transition(&quiet, Transition::to(TicketStatus::Completed))
        .await
        .unwrap();
    let all = |status: Option<WebhookStatus>| WebhookQuery {
        status,
        page: 1,
        page_size: 100,
        ..WebhookQuery::default()
    };
    assert_eq!(
        store.webhook_deliveries(&all(None)).await.unwrap().total,
        0,
        "no endpoint, no delivery"
    );

    let endpoints = ["http://a.example/hook".to_owned(), "http://b.example/hook".to_owned()];
    store.register_webhook_endpoints(&endpoints).await.unwrap();
    store.register_webhook_endpoints(&endpoints).await.unwrap();
    let (t, _) = store.create(new_ticket("hooks", "hooked")).await.unwrap();
    let (claimed, _) = store.claim(t.id, "w1", Duration::from_secs(30)).await.unwrap().unwrap();
    assert!(
        store.webhook_deliveries(&all(None)).await.unwrap().total == 0,
        "processing is not an event type"
    );
    let done = store
        .transition(
            &claimed,
            Transition::to(TicketStatus::Completed).with_result(json!({ "final_response": "Done." })),
        )
        .await
        .unwrap();
    assert_eq!(done.status, TicketStatus::Completed);
    let page = store
        .webhook_deliveries(&all(Some(WebhookStatus::Pending)))
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    for delivery in &page.deliveries {
        assert_eq!(delivery.event_type, "ticket.completed");
        assert_eq!(delivery.ticket_id, t.id);
        assert_eq!(delivery.body["type"], "ticket.completed");
        assert_eq!(delivery.body["data"]["id"], t.id.to_string());
        assert_eq!(
            delivery.body["data"]["status"], "completed",
            "the ticket as the event left it"
        );
        assert_eq!(delivery.body["data"]["result"]["final_response"], "Done.");
        assert!(delivery.body["timestamp"].is_string());
    }
    let [first, second] = [&page.deliveries[0], &page.deliveries[1]];
    assert_eq!(first.event_id, second.event_id);
    assert_ne!(first.webhook_id(), second.webhook_id(), "one webhook-id per endpoint");
    let stored_events = store.events(t.id).await.unwrap();
    assert!(
        stored_events
            .iter()
            .any(|e| e.id == first.event_id && e.event_type == "status_change")
    );

    // Claims: each delivery once, an attempt counted, hidden while claimed.
    let batch = store.claim_webhooks(10, Duration::from_secs(60), &[]).await.unwrap();
    assert_eq!(batch.len(), 2);
    assert!(batch.iter().all(|d| d.attempts == 1));
    assert!(
        store
            .claim_webhooks(10, Duration::from_secs(60), &[])
            .await
            .unwrap()
            .is_empty()
    );
    let soon = chrono::Utc::now() - chrono::Duration::seconds(1);
    // One batch records several outcomes.
    store
        .record_webhooks(&[
            WebhookAttempt {
                delivery: batch[0].clone(),
                outcome: WebhookOutcome::Delivered { status: 204 },
            },
            WebhookAttempt {
                delivery: batch[1].clone(),
                outcome: WebhookOutcome::Retry {
                    error: "the receiver answered 500".into(),
                    status: Some(500),
                    retry_at: soon,
                },
            },
        ])
        .await
        .unwrap();
    let delivered = store
        .webhook_deliveries(&all(Some(WebhookStatus::Delivered)))
        .await
        .unwrap();
    assert_eq!(delivered.total, 1);
    assert_eq!(delivered.deliveries[0].last_status, Some(204));
    assert!(delivered.deliveries[0].delivered_at.is_some());
    // A resting endpoint's deliveries are left alone: not claimed, no attempt counted.
    let resting = [batch[1].endpoint.clone()];
    assert!(
        store
            .claim_webhooks(10, Duration::from_secs(60), &resting)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_webhooks(10, Duration::from_secs(60), &[]).await.unwrap();
    assert_eq!(again.len(), 1, "the retry is due");
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("the receiver answered 500"));
    // A stale claim's outcome is ignored: the delivery was claimed again since.
    store
        .record_webhooks(&[
            WebhookAttempt {
                delivery: batch[1].clone(),
                outcome: WebhookOutcome::Failed {
                    error: "stale".into(),
                    status: None,
                },
            },
            WebhookAttempt {
                delivery: again[0].clone(),
                outcome: WebhookOutcome::Failed {
                    error: "gave up".into(),
                    status: Some(503),
                },
            },
        ])
        .await
        .unwrap();
    let failed = store
        .webhook_deliveries(&all(Some(WebhookStatus::Failed)))
        .await
        .unwrap();
    assert_eq!(failed.total, 1);
    assert_eq!(failed.deliveries[0].last_error.as_deref(), Some("gave up"));

    // A person's retry makes a failed delivery due; a delivered one is a conflict.
    let retried = store.retry_webhook(failed.deliveries[0].id).await.unwrap().unwrap();
    assert_eq!(retried.status, WebhookStatus::Pending);
    assert_eq!(
        store
            .claim_webhooks(10, Duration::from_secs(60), &[])
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        store.retry_webhook(delivered.deliveries[0].id).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(store.retry_webhook(i64::MAX).await.unwrap().is_none());

    // Filters, and an endpoint that stops getting new events.
    let by_ticket = WebhookQuery {
        ticket_id: Some(t.id),
        event_type: Some("ticket.completed".into()),
        ..all(None)
    };
    assert_eq!(store.webhook_deliveries(&by_ticket).await.unwrap().total, 2);
    let other_type = WebhookQuery {
        event_type: Some("ticket.failed".into()),
        ..all(None)
    };
    assert_eq!(store.webhook_deliveries(&other_type).await.unwrap().total, 0);
    store.register_webhook_endpoints(&endpoints[..1]).await.unwrap();
    let (u, _) = store.create(new_ticket("hooks", "one endpoint left")).await.unwrap();
    store
        .transition(&u, Transition::to(TicketStatus::FailedPermanent))
        .await
        .unwrap();
    let of_u = store
        .webhook_deliveries(&WebhookQuery {
            ticket_id: Some(u.id),
            ..all(None)
        })
        .await
        .unwrap();
    assert_eq!(of_u.total, 1);
    assert_eq!(of_u.deliveries[0].endpoint, endpoints[0]);
    assert_eq!(of_u.deliveries[0].event_type, "ticket.failed");
}

/// A password hash in PHC form (any text does for the store: it only keeps it).
const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

/// People: addresses lower-cased and unique, names checked, roles changed; sessions found
/// only while live (absolute expiry, idle expiry, a person not disabled), kept alive by use,
/// ended by sign-out, by disabling the person and by a new password.
pub async fn people_sign_in_and_sessions_expire(store: Arc<dyn Store>) {
    use crate::store::{MAX_EMAIL_CHARS, MAX_NAME_CHARS, NewSession, NewUser, Role};

    assert!(!store.has_people().await.unwrap(), "a fresh store has nobody");
    let person = |email: &str, name: &str, role: Role| NewUser {
        email: email.into(),
        name: name.into(),
        role,
        password_hash: PHC.into(),
    };
    let ana = store
        .add_user(person("  Ana@Example.COM ", "Ana", Role::Agent))
        .await
        .unwrap();
    assert_eq!(
        (ana.email.as_str(), ana.name.as_str(), ana.role, ana.disabled_at),
        ("ana@example.com", "Ana", Role::Agent, None)
    );
    assert!(store.has_people().await.unwrap());
    match store
        .add_user(person("ANA@example.com ", "Another Ana", Role::Viewer))
        .await
    {
        Err(StoreError::Taken { field, message }) => {
            assert_eq!(field, "email");
            assert!(message.contains("already has an account"), "{message}");
        }
        other => panic!("a taken address must be refused, got {other:?}"),
    }
    let long_email = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS));
    let long_name = "n".repeat(MAX_NAME_CHARS + 1);
    for (email, name, expected) in [
        ("not-an-address", "X", "email"),
        ("", "X", "email"),
        (long_email.as_str(), "X", "email"),
        ("x@example.com", "", "name"),
        ("x@example.com", "   ", "name"),
        ("x@example.com", long_name.as_str(), "name"),
        ("x@example.com", "nul \0 here", "name"),
    ] {
        match store.add_user(person(email, name, Role::Viewer)).await {
            Err(StoreError::Validation { field, .. }) => assert_eq!(field, expected, "{email:?} {name:?}"),
            other => panic!("expected a validation error on {expected}, got {other:?}"),
        }
    }
    let bo = store
        .add_user(person("bo@example.com", "Bo", Role::Viewer))
        .await
        .unwrap();
    let everyone: Vec<_> = store.users().await.unwrap().into_iter().map(|u| u.id).collect();
    assert_eq!(everyone, [ana.id, bo.id], "oldest first, the refused ones not stored");
    let (found, hash) = store.user_by_email(" ANA@example.COM").await.unwrap().expect("found");
    assert_eq!((found, hash.as_str()), (ana.clone(), PHC));
    assert!(store.user_by_email("nobody@example.com").await.unwrap().is_none());
    assert_eq!(store.user(ana.id).await.unwrap(), Some(ana.clone()));
    assert!(store.user(Uuid::now_v7()).await.unwrap().is_none());
    let promoted = store.set_user_role(ana.id, Role::Admin).await.unwrap().unwrap();
    assert_eq!(promoted.role, Role::Admin);
    assert_eq!(store.user(ana.id).await.unwrap().unwrap().role, Role::Admin);
    assert!(
        store
            .set_user_role(Uuid::now_v7(), Role::Admin)
            .await
            .unwrap()
            .is_none()
    );

    let idle = Duration::from_secs(600);
    let in_an_hour = chrono::Utc::now() + chrono::Duration::hours(1);
    let begin = |id_hash: &str, user_id: Uuid, expires_at| NewSession {
        id_hash: id_hash.into(),
        user_id,
        csrf_token: format!("csrf-{id_hash}"),
        expires_at,
    };
    store.start_session(begin("s1", ana.id, in_an_hour)).await.unwrap();
    let session = store.session("s1", idle).await.unwrap().expect("a live session");
    assert_eq!(session.user, promoted, "the person as they are now");
    assert_eq!(session.csrf_token, "csrf-s1");
    assert!((session.expires_at - in_an_hour).num_milliseconds().abs() <= 1);
    assert!(store.session("unknown", idle).await.unwrap().is_none());
    store.set_user_role(ana.id, Role::Agent).await.unwrap();
    assert_eq!(
        store.session("s1", idle).await.unwrap().unwrap().user.role,
        Role::Agent,
        "a new role applies to the sessions already begun"
    );
    match store.start_session(begin("s1", ana.id, in_an_hour)).await {
        Err(StoreError::Validation { field: "id_hash", .. }) => {}
        other => panic!("a session id is one session's, got {other:?}"),
    }
    match store.start_session(begin("s-nobody", Uuid::now_v7(), in_an_hour)).await {
        Err(StoreError::Validation { field: "user_id", .. }) => {}
        other => panic!("a session needs its person, got {other:?}"),
    }

    // Absolute expiry.
    store
        .start_session(begin(
            "s-past",
            ana.id,
            chrono::Utc::now() - chrono::Duration::seconds(1),
        ))
        .await
        .unwrap();
    assert!(
        store.session("s-past", idle).await.unwrap().is_none(),
        "past its absolute expiry"
    );
    // Idle expiry, and use keeping a session alive.
    store.start_session(begin("s-idle", ana.id, in_an_hour)).await.unwrap();
    assert!(
        store
            .session("s-idle", Duration::from_millis(300))
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        store
            .session("s-idle", Duration::from_millis(300))
            .await
            .unwrap()
            .is_none(),
        "unused for longer than the idle time"
    );
    store.start_session(begin("s-used", ana.id, in_an_hour)).await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            store.session("s-used", Duration::from_secs(1)).await.unwrap().is_some(),
            "each use starts the idle time again"
        );
    }
    // Sign-out.
    store.end_session("s-used").await.unwrap();
    store.end_session("s-used").await.unwrap();
    assert!(store.session("s-used", idle).await.unwrap().is_none());

    // A disabled person's sessions end, and they begin no other.
    store.start_session(begin("s2", ana.id, in_an_hour)).await.unwrap();
    let disabled = store.disable_user(ana.id).await.unwrap().unwrap();
    let when = disabled.disabled_at.expect("disabled");
    assert!(store.session("s1", idle).await.unwrap().is_none());
    assert!(store.session("s2", idle).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        store.disable_user(ana.id).await.unwrap().unwrap().disabled_at,
        Some(when),
        "a second disabling keeps the first time"
    );
    match store.start_session(begin("s3", ana.id, in_an_hour)).await {
        Err(StoreError::Validation { field: "user_id", .. }) => {}
        other => panic!("a disabled person begins no session, got {other:?}"),
    }
    let (still, _) = store.user_by_email("ana@example.com").await.unwrap().unwrap();
    assert_eq!(still.disabled_at, Some(when), "found, for the caller to refuse");
    assert!(store.disable_user(Uuid::now_v7()).await.unwrap().is_none());

    // A new password ends the person's sessions (and only theirs); they may sign in again.
    store.start_session(begin("b1", bo.id, in_an_hour)).await.unwrap();
    let reset = store.set_password(bo.id, "$argon2id$new").await.unwrap().unwrap();
    assert_eq!(reset.disabled_at, None);
    assert!(store.session("b1", idle).await.unwrap().is_none());
    assert_eq!(
        store.user_by_email("bo@example.com").await.unwrap().unwrap().1,
        "$argon2id$new"
    );
    store.start_session(begin("b2", bo.id, in_an_hour)).await.unwrap();
    assert_eq!(store.session("b2", idle).await.unwrap().unwrap().user.id, bo.id);
    assert!(store.set_password(Uuid::now_v7(), "x").await.unwrap().is_none());
    assert!(store.has_people().await.unwrap());
}

/// Named keys: found by their prefix with their digest, live or not; names and prefixes
/// unique; a revocation keeps its first time; a key alone closes the API.
pub async fn keys_are_found_by_prefix_and_revoked_once(store: Arc<dyn Store>) {
    use crate::store::{MAX_NAME_CHARS, NewApiKey, Role};

    assert!(!store.has_people().await.unwrap(), "a fresh store has no key");
    let key = |name: &str, prefix: &str, role: Role, expires_at| NewApiKey {
        name: name.into(),
        prefix: prefix.into(),
        hash: format!("digest-of-{prefix}"),
        role,
        expires_at,
    };
    let ops = store
        .add_api_key(key(" ops ", "tf_ops1", Role::Agent, None))
        .await
        .unwrap();
    assert_eq!(
        (
            ops.name.as_str(),
            ops.prefix.as_str(),
            ops.role,
            ops.expires_at,
            ops.revoked_at
        ),
        ("ops", "tf_ops1", Role::Agent, None, None)
    );
    assert!(store.has_people().await.unwrap(), "a key alone closes the API");
    let long_name = "k".repeat(MAX_NAME_CHARS + 1);
    for (name, prefix, expected) in [
        ("ops", "tf_other", "name"),
        ("", "tf_empty", "name"),
        (long_name.as_str(), "tf_long", "name"),
        ("other", "tf_ops1", "prefix"),
    ] {
        match store.add_api_key(key(name, prefix, Role::Viewer, None)).await {
            Err(StoreError::Validation { field, .. } | StoreError::Taken { field, .. }) => {
                assert_eq!(field, expected, "{name:?} {prefix:?}")
            }
            other => panic!("expected a refusal of {expected}, got {other:?}"),
        }
    }
    let in_an_hour = chrono::Utc::now() + chrono::Duration::hours(1);
    let ci = store
        .add_api_key(key("ci", "tf_ci1", Role::Admin, Some(in_an_hour)))
        .await
        .unwrap();
    let expires = ci.expires_at.expect("an expiry");
    assert!((expires - in_an_hour).num_milliseconds().abs() <= 1);
    let now = chrono::Utc::now();
    assert!(ci.is_live(now) && !ci.is_live(now + chrono::Duration::hours(2)));
    assert_eq!(
        store.api_keys().await.unwrap(),
        [ops.clone(), ci.clone()],
        "oldest first"
    );
    assert_eq!(
        store.api_key_by_prefix("tf_ops1").await.unwrap(),
        Some((ops.clone(), "digest-of-tf_ops1".to_owned()))
    );
    assert!(store.api_key_by_prefix("tf_nope").await.unwrap().is_none());
    assert!(
        store.api_key_by_prefix("tf_OPS1").await.unwrap().is_none(),
        "prefixes are exact"
    );

    let revoked = store.revoke_api_key(ops.id).await.unwrap().unwrap();
    let when = revoked.revoked_at.expect("revoked");
    assert!(!revoked.is_live(chrono::Utc::now()));
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        store.revoke_api_key(ops.id).await.unwrap().unwrap().revoked_at,
        Some(when),
        "a second revocation keeps the first time"
    );
    let (found, digest) = store.api_key_by_prefix("tf_ops1").await.unwrap().unwrap();
    assert_eq!(
        (found.revoked_at, digest.as_str()),
        (Some(when), "digest-of-tf_ops1"),
        "found revoked, for the caller to refuse"
    );
    assert!(store.revoke_api_key(Uuid::now_v7()).await.unwrap().is_none());
    assert_eq!(store.api_key_by_prefix("tf_ci1").await.unwrap().unwrap().0, ci);
    assert!(store.has_people().await.unwrap(), "revoked keys still count");
}

/// The audit trail: newest first, in pages clamped to 1–100, with its total; lines as
/// written (hostile text included); a line without an actor or an action is refused.
pub async fn the_audit_trail_pages_newest_first(store: Arc<dyn Store>) {
    use crate::store::NewAuditEntry;

    let empty = store.audit_log(1, 20).await.unwrap();
    assert_eq!((empty.entries.len(), empty.total), (0, 0));
    for i in 0..5 {
        store
            .audit(NewAuditEntry {
                actor: "ana@example.com".into(),
                action: "user.role_changed".into(),
                target: Some(format!("user-{i}")),
                detail: json!({ "role": "agent", "i": i }),
            })
            .await
            .unwrap();
    }
    let hostile = json!({ "reason": "'; DROP TABLE audit_log; -- é✓", "nested": [1, null, { "a": true }] });
    store
        .audit(NewAuditEntry {
            actor: "key:ops".into(),
            action: "key.revoked".into(),
            target: None,
            detail: hostile.clone(),
        })
        .await
        .unwrap();
    let first = store.audit_log(1, 4).await.unwrap();
    assert_eq!((first.total, first.page, first.page_size), (6, 1, 4));
    assert_eq!(first.entries.len(), 4);
    let newest = &first.entries[0];
    assert_eq!(
        (newest.actor.as_str(), newest.action.as_str(), newest.target.as_deref()),
        ("key:ops", "key.revoked", None)
    );
    assert_eq!(newest.detail, hostile);
    assert_eq!(first.entries[1].target.as_deref(), Some("user-4"));
    assert_eq!(first.entries[1].detail, json!({ "role": "agent", "i": 4 }));
    assert!(
        first
            .entries
            .windows(2)
            .all(|w| w[0].id > w[1].id && w[0].at >= w[1].at),
        "newest first"
    );
    let second = store.audit_log(2, 4).await.unwrap();
    assert_eq!((second.entries.len(), second.total), (2, 6));
    assert_eq!(second.entries[1].target.as_deref(), Some("user-0"));
    let beyond = store.audit_log(9, 4).await.unwrap();
    assert_eq!((beyond.entries.len(), beyond.total), (0, 6));
    let clamped = store.audit_log(0, 0).await.unwrap();
    assert_eq!((clamped.page, clamped.page_size, clamped.entries.len()), (1, 1, 1));
    let clamped = store.audit_log(1, 1000).await.unwrap();
    assert_eq!((clamped.page_size, clamped.entries.len()), (100, 6));
    for (entry, expected) in [
        (
            NewAuditEntry {
                actor: String::new(),
                action: "ticket.created".into(),
                target: None,
                detail: json!({}),
            },
            "actor",
        ),
        (
            NewAuditEntry {
                actor: "ana@example.com".into(),
                action: String::new(),
                target: None,
                detail: json!({}),
            },
            "action",
        ),
        (
            NewAuditEntry {
                actor: "ana@example.com".into(),
                action: "ticket.created".into(),
                target: None,
                detail: json!({ "k": "\u{0}" }),
            },
            "detail",
        ),
    ] {
        match store.audit(entry).await {
            Err(StoreError::Validation { field, .. }) => assert_eq!(field, expected),
            other => panic!("expected a validation error on {expected}, got {other:?}"),
        }
    }
    assert_eq!(store.audit_log(1, 100).await.unwrap().total, 6);
}
