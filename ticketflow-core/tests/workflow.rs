//! The six-step workflow end to end on the offline engine, the review loop, checkpoints and
//! customer history.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use ticketflow_core::steps::names;
use ticketflow_core::{
    Category, Classification, Draft, Engine, EngineError, Entities, HistorySource, KnowledgeBase, OfflineEngine,
    Opinion, PastTicket, Produced, TicketInput, TicketResult, TicketState, Urgency, WORKFLOW_VERSION, Workflow,
};
use ticketflow_graph::{Checkpointer, MemoryCheckpointer};

fn ticket(subject: &str, body: &str) -> TicketInput {
    TicketInput {
        id: "ticket-1".into(),
        customer_id: "cust_42".into(),
        subject: subject.into(),
        body: body.into(),
    }
}

fn kb() -> Arc<KnowledgeBase> {
    Arc::new(KnowledgeBase::bundled().unwrap())
}

#[tokio::test]
async fn a_billing_ticket_gets_a_complete_result() {
    let workflow = Workflow::offline().unwrap();
    let result = workflow
        .run(ticket(
            "Charged twice this month",
            "Hi, my card shows two identical charges of $49 for order #48817. Please fix this!",
        ))
        .await
        .unwrap();
    assert_eq!(result.classification, Some(Category::Billing));
    let entities = result.entities.clone().unwrap();
    assert_eq!(entities.order_id.as_deref(), Some("48817"));
    assert_eq!(entities.issue_type.as_deref(), Some("double_charge"));
    let research = result.research.clone().unwrap();
    assert_eq!(research.articles[0].id, "billing-duplicate-charges");
    assert!(research.history.is_empty(), "no history source configured");
    let review = result.review.clone().unwrap();
    assert!(
        review.notes.is_empty(),
        "the offline draft passes review: {:?}",
        review.notes
    );
    assert_eq!(result.revisions, 0);
    let reply = result.final_response.clone().unwrap();
    assert!(reply.contains("48817"), "the reply cites the order id:\n{reply}");
    assert!(!ticketflow_core::policy::promises_reserved_action(&reply));
    let engines: Vec<_> = result.engine.keys().map(String::as_str).collect();
    let mut all = names::ALL.to_vec();
    all.sort_unstable();
    assert_eq!(engines, all, "every step records its engine");
    assert!(result.engine.values().all(|e| e.engine == "offline" && !e.fallback));

    // The result serializes with the fields the API promises.
    let json = serde_json::to_value(&result).unwrap();
    for field in [
        "classification",
        "entities",
        "research",
        "draft",
        "review",
        "final_response",
        "engine",
    ] {
        assert!(!json[field].is_null(), "result.{field} is set");
    }
    assert_eq!(json["classification"], "billing");
}

#[tokio::test]
async fn every_category_is_reachable() {
    let workflow = Workflow::offline().unwrap();
    for (subject, body, category) in [
        (
            "App crashes on startup",
            "The desktop app crashes right after the splash screen since v2.3.",
            Category::Technical,
        ),
        (
            "Locked out",
            "I forgot my password and the reset link never arrives.",
            Category::Account,
        ),
        (
            "Where is my package?",
            "My hub was shipped a week ago and the tracking has not moved.",
            Category::General,
        ),
    ] {
        let result = workflow.run(ticket(subject, body)).await.unwrap();
        assert_eq!(result.classification, Some(category), "{subject}");
        assert!(result.final_response.is_some());
    }
}

/// Wraps the offline engine; its first `bad_drafts` drafts promise a refund, as a careless
/// model might.
struct PromisingEngine {
    bad_drafts: u32,
    drafts: AtomicU32,
}

#[async_trait]
impl Engine for PromisingEngine {
    async fn classify(&self, state: &TicketState) -> Result<Produced<Classification>, EngineError> {
        OfflineEngine.classify(state).await
    }
    async fn extract(&self, state: &TicketState) -> Result<Produced<Entities>, EngineError> {
        OfflineEngine.extract(state).await
    }
    async fn draft(&self, state: &TicketState) -> Result<Produced<String>, EngineError> {
        let mut produced = OfflineEngine.draft(state).await?;
        if self.drafts.fetch_add(1, Ordering::SeqCst) < self.bad_drafts {
            produced
                .value
                .push_str("\nDon't worry: we will refund the full amount today.");
        }
        Ok(produced)
    }
    async fn review(&self, state: &TicketState, draft: &Draft) -> Result<Produced<Opinion>, EngineError> {
        OfflineEngine.review(state, draft).await
    }
}

async fn run_with(engine: PromisingEngine) -> (TicketResult, TicketState) {
    let workflow = Workflow::new(Arc::new(engine), kb(), None);
    let input = ticket(
        "Refund please",
        "I want a refund for order ORD-55812, I never used the Pro plan.",
    );
    let state = workflow
        .graph()
        .invoke("t", TicketState::new(input))
        .await
        .unwrap()
        .into_state();
    (TicketResult::from_state(&state), state)
}

#[tokio::test]
async fn review_sends_a_bad_draft_back_to_drafting() {
    let (result, state) = run_with(PromisingEngine {
        bad_drafts: 1,
        drafts: AtomicU32::new(0),
    })
    .await;
    assert_eq!(result.revisions, 1, "one revision");
    assert_eq!(state.reviewed_drafts.len(), 2);
    assert!(state.reviewed_drafts[0].1 > 0, "the first draft had problems");
    assert_eq!(state.reviewed_drafts[1].1, 0, "the second passed");
    let review = result.review.unwrap();
    assert!(review.notes.is_empty() && !review.revision_limit_reached);
    assert!(!result.final_response.unwrap().contains("we will refund"));
}

#[tokio::test]
async fn after_two_revisions_the_best_draft_is_finalized_and_made_safe() {
    let (result, state) = run_with(PromisingEngine {
        bad_drafts: u32::MAX,
        drafts: AtomicU32::new(0),
    })
    .await;
    assert_eq!(result.revisions, 2, "at most two revisions");
    assert_eq!(state.reviewed_drafts.len(), 3);
    let review = result.review.unwrap();
    assert!(
        review.revision_limit_reached,
        "the result records that the budget ran out"
    );
    assert!(review.notes.iter().any(|n| n.contains("promises")));
    let reply = result.final_response.unwrap();
    assert!(
        !reply.contains("we will refund"),
        "finalize strips the promise:\n{reply}"
    );
    assert!(reply.contains("ORD-55812"));
}

#[tokio::test]
async fn a_checkpointed_run_records_each_step_once_with_the_workflow_version() {
    let workflow = Workflow::offline().unwrap();
    let checkpoints = Arc::new(MemoryCheckpointer::new());
    let input = ticket(
        "Hub won't pair",
        "My Northwind Hub keeps blinking amber and won't connect to wifi.",
    );
    workflow
        .graph()
        .with_checkpointer(checkpoints.clone())
        .invoke("t-hub", TicketState::new(input))
        .await
        .unwrap();
    let mut history = checkpoints.history("t-hub", 100).await.unwrap();
    history.reverse();
    let completed: Vec<_> = history.iter().filter_map(|c| c.completed_node.as_deref()).collect();
    assert_eq!(completed, names::ALL);
    assert!(history.iter().all(|c| &*c.graph_version == WORKFLOW_VERSION));
    let last: TicketState = history.last().unwrap().state().unwrap();
    assert_eq!(last.classification.unwrap().category, Category::Technical);
}

struct FixedHistory;

#[async_trait]
impl HistorySource for FixedHistory {
    async fn recent_tickets(
        &self,
        customer_id: &str,
        except_ticket: &str,
        limit: usize,
    ) -> Result<Vec<PastTicket>, ticketflow_core::store::StoreError> {
        assert_eq!(customer_id, "cust_42");
        assert_eq!(except_ticket, "ticket-1");
        assert_eq!(limit, 5);
        Ok(vec![PastTicket {
            id: "old-1".into(),
            subject: "Charged twice in May".into(),
            status: "completed".into(),
            created_at: "2026-05-02T10:00:00Z".parse().unwrap(),
        }])
    }
}

#[tokio::test]
async fn research_includes_the_customers_history_when_a_source_is_given() {
    let workflow = Workflow::new(Arc::new(OfflineEngine), kb(), Some(Arc::new(FixedHistory)));
    let result = workflow
        .run(ticket("Charged twice again", "Same problem as last time: two charges."))
        .await
        .unwrap();
    let research = result.research.unwrap();
    assert_eq!(research.history.len(), 1);
    assert_eq!(research.history[0].id, "old-1");
}

#[tokio::test]
async fn extraction_leaves_unknown_values_empty() {
    let result = Workflow::offline()
        .unwrap()
        .run(ticket(
            "Quick question",
            "Do you offer a discount for nonprofits? We have 12 staff.",
        ))
        .await
        .unwrap();
    let entities = result.entities.unwrap();
    assert_eq!(entities.order_id, None, "12 is not an order id");
    assert_eq!(entities.urgency, Urgency::Low);
}

#[test]
fn the_graph_draws_its_review_loop() {
    let workflow = Workflow::offline().unwrap();
    let mermaid = workflow.graph().to_mermaid();
    assert!(mermaid.contains("review -.->|revise| draft"));
    assert!(mermaid.contains("review -.->|approve| finalize"));
    assert_eq!(workflow.graph().node_names().collect::<Vec<_>>(), names::ALL);
}

#[tokio::test]
async fn with_tools_the_graph_has_the_gate_and_continues_the_previous_version() {
    let store = ticketflow_core::testing::database::sqlite_store().await;
    let workflow = ticketflow_core::settings::Settings::default()
        .workflow(Some(store))
        .unwrap();
    let mermaid = workflow.graph().to_mermaid();
    for edge in [
        "research -.->|act| gate",
        "research -.->|reply| draft",
        "act -.->|hand_off| finalize",
        "finalize -.->|hold| reply_gate",
    ] {
        assert!(mermaid.contains(edge), "{edge} missing from:\n{mermaid}");
    }
    let graph = workflow.graph();
    assert!(graph.continues(WORKFLOW_VERSION) && graph.continues("support-v1"));
    assert!(!graph.continues("support-v0"));
}
