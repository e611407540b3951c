//! The tools on a company's own order service: `HttpCommerce` against the reference server of
//! the commerce contract (a real HTTP server on loopback), which checks what ticketflow sends.
//! The journal is a real SQLite store.

use std::sync::Arc;
use std::time::Duration;

use examples::commerce::CommerceServer;
use serde_json::json;
use ticketflow_core::KnowledgeBase;
use ticketflow_core::commerce::{Commerce, CommerceError, HttpCommerce, RefundRequest};
use ticketflow_core::money::Money;
use ticketflow_core::store::{CallStatus, NewTicket, Store};
use ticketflow_core::tools::{ApprovalRules, Proposal, TicketScope, ToolEnv, ToolError, Tools};

async fn setup(token: Option<&str>, timeout: Duration) -> (CommerceServer, Arc<dyn Store>, Tools, TicketScope) {
    let server = CommerceServer::start("127.0.0.1:0", Some("shop-token")).await.unwrap();
    let commerce = HttpCommerce::new(&server.base_url, token.map(Into::into), timeout).unwrap();
    let store = ticketflow_core::testing::database::sqlite_store().await;
    let (ticket, _) = store
        .create(NewTicket {
            customer_id: "cust_john_doe".into(),
            subject: "Where is my order?".into(),
            body: "My order ord_12345 has not arrived.".into(),
            ..NewTicket::default()
        })
        .await
        .unwrap();
    let tools = Tools::new(ToolEnv {
        store: store.clone(),
        commerce: Arc::new(commerce),
        kb: Arc::new(KnowledgeBase::bundled().unwrap()),
        github: None,
        rules: ApprovalRules {
            auto_approve_refund_below: Money::from_cents(100_000),
            ..ApprovalRules::default()
        },
        reset_url: "https://shop.example/reset".into(),
    });
    let scope = TicketScope {
        ticket_id: ticket.id,
        customer: "cust_john_doe".into(),
        fence: None,
        turn: 1,
    };
    (server, store, tools, scope)
}

#[tokio::test]
async fn orders_customers_and_products_come_from_the_service_scoped_to_the_ticket() {
    let (server, _store, tools, scope) = setup(Some("shop-token"), Duration::from_secs(5)).await;
    let order = tools
        .call(
            &scope,
            Proposal::new(
                scope.ticket_id,
                "a",
                "check_order_status",
                json!({ "order_id": "ORD-12345" }),
            ),
        )
        .await
        .unwrap();
    assert_eq!(order.status, CallStatus::Executed, "{order:?}");
    let result = order.result.unwrap();
    assert_eq!(result["order_id"], "ord_12345");
    assert!(result["tracking_number"].as_str().unwrap().starts_with("1Z999AA1"));
    let theirs = tools
        .call(
            &scope,
            Proposal::new(
                scope.ticket_id,
                "b",
                "check_order_status",
                json!({ "order_id": "ord_22222" }),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        theirs.result.unwrap()["error"],
        "not_found",
        "Jane's order, from John's ticket"
    );
    let history = tools
        .call(
            &scope,
            Proposal::new(
                scope.ticket_id,
                "c",
                "get_customer_history",
                json!({ "customer_id": "john.doe@email.com" }),
            ),
        )
        .await
        .unwrap();
    assert_eq!(history.result.unwrap()["recent_orders"].as_array().unwrap().len(), 2);
    let products = tools
        .call(
            &scope,
            Proposal::new(
                scope.ticket_id,
                "d",
                "lookup_product",
                json!({ "product_id": null, "name_search": "mouse" }),
            ),
        )
        .await
        .unwrap();
    assert_eq!(products.result.unwrap()["products"].as_array().unwrap().len(), 2);
    let received = server.received();
    assert!(
        received
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer shop-token"))
    );
    assert!(received.iter().any(|r| r.path == "/customers/cust_john_doe"));
    assert!(received.iter().any(|r| r.path == "/orders/ord_12345"));
    assert!(received.iter().any(|r| r.path == "/customers/cust_john_doe/orders"));
}

#[tokio::test]
async fn a_refund_carries_its_call_id_as_the_idempotency_key_and_is_made_once() {
    let (server, store, tools, scope) = setup(Some("shop-token"), Duration::from_secs(5)).await;
    let proposal = Proposal::new(
        scope.ticket_id,
        "step-4/0",
        "process_refund",
        json!({ "order_id": "12345", "amount": 45.99, "reason": "the hub never arrived" }),
    );
    let made = tools.call(&scope, proposal.clone()).await.unwrap();
    assert_eq!(made.status, CallStatus::Executed, "{made:?}");
    let result = made.result.clone().unwrap();
    assert_eq!(result["order_status"], "partially_refunded");
    assert_eq!(result["refundable_remaining"], 149.99);
    let posts: Vec<_> = server.received().into_iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].path, "/orders/ord_12345/refunds");
    assert_eq!(
        posts[0].idempotency_key.as_deref(),
        Some(made.call_id.to_string().as_str())
    );
    assert_eq!(posts[0].body.as_ref().unwrap()["amount"], 45.99);
    // Asked again: the journaled result, and the service is not asked again.
    assert_eq!(tools.call(&scope, proposal).await.unwrap(), made);
    assert_eq!(server.received().iter().filter(|r| r.method == "POST").count(), 1);
    // A run that crashed after the service made the refund, before the journal: the same key
    // again, and the service makes nothing new.
    let commerce = HttpCommerce::new(&server.base_url, Some("shop-token".into()), Duration::from_secs(5)).unwrap();
    let again = commerce
        .refund(&RefundRequest {
            call_id: made.call_id,
            ticket_id: scope.ticket_id,
            order_id: "ord_12345".into(),
            amount: Money::from_cents(4_599),
            reason: "the hub never arrived".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(server.refunds().len(), 1, "one refund at the service");
    assert_eq!(again.id, server.refunds()[0].id);
    let recorded = store.refunds("ord_12345").await.unwrap();
    assert_eq!(recorded.len(), 1, "and one in ticketflow's records");
    assert_eq!(result["refund_id"], recorded[0].id.as_str());
}

#[tokio::test]
async fn outages_are_transient_and_refusals_are_answers() {
    let (server, _store, tools, scope) = setup(Some("shop-token"), Duration::from_millis(300)).await;
    let proposal = Proposal::new(
        scope.ticket_id,
        "x",
        "check_order_status",
        json!({ "order_id": "ord_12345" }),
    );
    server.fail_next(&[503]);
    let down = tools.call(&scope, proposal.clone()).await;
    assert!(matches!(down, Err(ToolError::Unavailable(_))), "{down:?}");
    server.delay(Some(Duration::from_secs(1)));
    let slow = tools.call(&scope, proposal.clone()).await;
    assert!(
        matches!(slow, Err(ToolError::Unavailable(_))),
        "a timeout is transient: {slow:?}"
    );
    server.delay(None);
    let later = tools.call(&scope, proposal).await.unwrap();
    assert_eq!(later.status, CallStatus::Executed, "tried again later, it works");
    // More than is refundable, asked of the service directly: its 409 is a refusal.
    let commerce = HttpCommerce::new(&server.base_url, Some("shop-token".into()), Duration::from_secs(5)).unwrap();
    let refused = commerce
        .refund(&RefundRequest {
            call_id: uuid::Uuid::new_v4(),
            ticket_id: scope.ticket_id,
            order_id: "ord_12345".into(),
            amount: Money::from_cents(999_999),
            reason: "too much".into(),
        })
        .await;
    assert!(
        matches!(&refused, Err(CommerceError::Refused(m)) if m.contains("409")),
        "{refused:?}"
    );
    // A wrong token: 401, a refusal, never retried as if it were an outage.
    let (_server, _store, tools, scope) = setup(Some("wrong"), Duration::from_secs(5)).await;
    let unauthorized = tools
        .call(
            &scope,
            Proposal::new(
                scope.ticket_id,
                "y",
                "check_order_status",
                json!({ "order_id": "ord_12345" }),
            ),
        )
        .await;
    assert!(matches!(unauthorized, Err(ToolError::Refused(_))), "{unauthorized:?}");
}
