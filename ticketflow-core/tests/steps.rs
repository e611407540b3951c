//! Each of the six steps on its own, called as a graph node with a hand-made context.

use std::sync::Arc;

use ticketflow_core::steps::{Classify, DraftReply, Extract, Finalize, Research, ReviewDraft};
use ticketflow_core::{
    Category, Draft, KnowledgeBase, OfflineEngine, TicketInput, TicketState, Urgency, Verdict, policy,
};
use ticketflow_graph::{Node, NodeContext, NodeOutput};

fn state(subject: &str, body: &str) -> TicketState {
    TicketState::new(TicketInput {
        id: "t".into(),
        customer_id: "c".into(),
        subject: subject.into(),
        body: body.into(),
    })
}

async fn run(node: &impl Node<TicketState>, s: TicketState) -> TicketState {
    match node.run(s, &NodeContext::new("t", "step", 1)).await.unwrap() {
        NodeOutput::Continue(s) => s,
        other => panic!("steps continue: {other:?}"),
    }
}

async fn through_research(subject: &str, body: &str) -> TicketState {
    let engine = Arc::new(OfflineEngine);
    let s = run(&Classify(engine.clone()), state(subject, body)).await;
    let s = run(&Extract(engine), s).await;
    run(
        &Research {
            kb: Arc::new(KnowledgeBase::bundled().unwrap()),
            history: None,
            tools: None,
        },
        s,
    )
    .await
}

#[tokio::test]
async fn classify_sets_exactly_one_category_and_its_engine() {
    let s = run(
        &Classify(Arc::new(OfflineEngine)),
        state("Can't log in", "My password reset link expired."),
    )
    .await;
    let c = s.classification.unwrap();
    assert_eq!(c.category, Category::Account);
    assert!((0.0..=1.0).contains(&c.confidence));
    assert_eq!(s.engine["classify"].engine, "offline");
}

#[tokio::test]
async fn extract_finds_entities_and_invents_none() {
    let engine = Arc::new(OfflineEngine);
    let s = run(
        &Classify(engine.clone()),
        state(
            "URGENT: double charge",
            "Order #40512 was charged twice, $49.99 each, on 2024-03-15.",
        ),
    )
    .await;
    let s = run(&Extract(engine.clone()), s).await;
    let e = s.entities.unwrap();
    assert_eq!(e.order_id.as_deref(), Some("40512"));
    assert_eq!(e.issue_type.as_deref(), Some("double_charge"));
    assert_eq!(e.urgency, Urgency::High);
    let s = run(
        &Classify(engine.clone()),
        state("Question", "Do you ship to Canada? I paid $20 last year."),
    )
    .await;
    let s = run(&Extract(engine), s).await;
    assert_eq!(s.entities.unwrap().order_id, None);
}

#[tokio::test]
async fn research_returns_ranked_articles_with_passages() {
    let s = through_research("App crashes", "The desktop app crashes on startup after the update.").await;
    let research = s.research.unwrap();
    assert!(!research.articles.is_empty() && research.articles.len() <= 3);
    assert_eq!(research.articles[0].id, "technical-app-crashes");
    assert!(
        research.articles.windows(2).all(|w| w[0].score >= w[1].score),
        "best first"
    );
    assert!(research.articles.iter().all(|a| !a.passage.is_empty()));
}

#[tokio::test]
async fn draft_uses_the_research_and_counts_revisions() {
    let s = through_research("Charged twice", "Two charges for order ORD-55812.").await;
    let s = run(&DraftReply(Arc::new(OfflineEngine)), s).await;
    let draft = s.draft.clone().unwrap();
    assert_eq!(draft.revision, 0);
    assert!(draft.text.contains("ORD-55812"));
    assert!(draft.text.contains(&s.research.as_ref().unwrap().articles[0].title));
    let s = run(&DraftReply(Arc::new(OfflineEngine)), s).await;
    assert_eq!(s.draft.unwrap().revision, 1);
}

#[tokio::test]
async fn review_applies_the_policy_and_bounds_revisions() {
    let mut s = through_research("Refund", "I want a refund for order ORD-1234.").await;
    let review = ReviewDraft(Arc::new(OfflineEngine));
    s.draft = Some(Draft {
        text: "Hi! We will refund you today. ".repeat(10),
        revision: 0,
    });
    let s2 = run(&review, s.clone()).await;
    let r = s2.review.clone().unwrap();
    assert_eq!(r.verdict, Verdict::NeedsRevision);
    assert!(r.notes.iter().any(|n| n.contains("promises")));
    assert!(
        r.notes.iter().any(|n| n.contains("ORD-1234")),
        "the missing order id is noted: {:?}",
        r.notes
    );
    s.draft = Some(Draft {
        text: "Hi! We will refund you today. ".repeat(10),
        revision: 2,
    });
    let s3 = run(&review, s).await;
    let r = s3.review.unwrap();
    assert_eq!(r.verdict, Verdict::Approved, "out of revisions: finalized anyway");
    assert!(r.revision_limit_reached);
}

#[tokio::test]
async fn finalize_picks_the_best_draft_and_strips_promises() {
    let mut s = state("Refund", "Refund order ORD-1234 please.");
    let good = Draft {
        text: "Hello, I passed order ORD-1234 to billing. Best regards".into(),
        revision: 1,
    };
    let bad = Draft {
        text: "Hello. We will refund order ORD-1234 today. Best regards".into(),
        revision: 0,
    };
    s.reviewed_drafts = vec![(bad.clone(), 2), (good.clone(), 0)];
    s.draft = Some(bad);
    let s = run(&Finalize::default(), s).await;
    assert_eq!(s.final_response.as_deref(), Some(good.text.as_str()));

    let mut s = state("Refund", "x");
    s.draft = Some(Draft {
        text: "Hello. We will refund the charge. Your order is noted.".into(),
        revision: 2,
    });
    s.reviewed_drafts = vec![(s.draft.clone().unwrap(), 1)];
    let s = run(&Finalize::default(), s).await;
    let reply = s.final_response.unwrap();
    assert!(!policy::promises_reserved_action(&reply), "{reply}");
    assert!(reply.contains("Your order is noted."));
}
