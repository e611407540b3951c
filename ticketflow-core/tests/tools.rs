//! The eight tools on real data, on PostgreSQL and on SQLite: what each returns, that each is
//! scoped to the ticket's customer (another customer's ids read and change nothing), that bad
//! arguments get a clear error result, and that effects happen exactly once — across a crash
//! of the step that made them, and under twenty concurrent identical calls.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use ticketflow_core::KnowledgeBase;
use ticketflow_core::commerce::{OrderStatus, StoreCommerce};
use ticketflow_core::money::Money;
use ticketflow_core::store::{CallStatus, NewTicket, Store, ToolCall};
use ticketflow_core::testing::FakeGitHub;
use ticketflow_core::tools::{ApprovalRules, GitHub, Proposal, TicketScope, ToolEnv, ToolError, Tools};
use uuid::Uuid;

/// Runs each test against both stores, as `<test>_postgres` and `<test>_sqlite`.
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test] async fn $test() { super::$test(ticketflow_core::testing::database::postgres_store().await).await; })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $test() { super::$test(ticketflow_core::testing::database::sqlite_store().await).await; })*
        }
    };
}

on_both_stores!(
    check_order_status_finds_the_customers_own_order_in_any_form,
    another_customers_data_is_not_found_and_nothing_changes,
    get_customer_history_gives_the_customer_tickets_and_orders,
    lookup_product_and_help_articles_read_the_catalogue_and_the_knowledge_base,
    reset_password_records_a_hashed_token_and_queues_the_email,
    a_refund_is_checked_held_approved_and_made_once,
    bad_arguments_are_clear_error_results,
    twenty_concurrent_identical_calls_make_one_refund,
    a_step_that_crashed_after_its_refund_gets_the_journaled_result,
    bug_reports_and_escalations_are_recorded,
);

fn env(store: Arc<dyn Store>, rules: ApprovalRules, github: Option<GitHub>) -> ToolEnv {
    ToolEnv {
        commerce: Arc::new(StoreCommerce::new(store.clone())),
        store,
        kb: Arc::new(KnowledgeBase::bundled().unwrap()),
        github,
        rules,
        reset_url: "https://shop.example/reset".into(),
    }
}

/// Demo data loaded, the tools over it, and a ticket of `customer`.
async fn setup(store: &Arc<dyn Store>, customer: &str) -> (Tools, TicketScope) {
    store.load_demo_data(chrono::Utc::now()).await.unwrap();
    let tools = Tools::new(env(store.clone(), ApprovalRules::default(), None));
    (tools, scope_of(store, customer, "Help").await)
}

async fn scope_of(store: &Arc<dyn Store>, customer: &str, subject: &str) -> TicketScope {
    let (ticket, _) = store
        .create(NewTicket {
            customer_id: customer.into(),
            subject: subject.into(),
            body: "Hi, my order ord_12345 has not arrived yet. Can you check the tracking?".into(),
            ..NewTicket::default()
        })
        .await
        .unwrap();
    TicketScope {
        ticket_id: ticket.id,
        customer: customer.into(),
        fence: None,
        turn: 1,
    }
}

/// Calls `tool` with `args` under a fresh key.
async fn call(tools: &Tools, scope: &TicketScope, tool: &str, args: Value) -> ToolCall {
    let proposal = Proposal::new(scope.ticket_id, &Uuid::new_v4().to_string(), tool, args);
    tools.call(scope, proposal).await.unwrap()
}

fn error_of(call: &ToolCall) -> (&str, &str) {
    assert_eq!(call.status, CallStatus::Failed, "{call:?}");
    let result = call.result.as_ref().unwrap();
    (
        result["error"].as_str().unwrap_or_default(),
        result["message"].as_str().unwrap_or_default(),
    )
}

async fn check_order_status_finds_the_customers_own_order_in_any_form(store: Arc<dyn Store>) {
    let (tools, scope) = setup(&store, "cust_john_doe").await;
    for written in ["ord_12345", "ORD-12345", "order #12345", "12345", "#12345"] {
        let found = call(&tools, &scope, "check_order_status", json!({ "order_id": written })).await;
        assert_eq!(found.status, CallStatus::Executed, "{written}: {found:?}");
        let order = found.result.unwrap();
        assert_eq!(order["order_id"], "ord_12345", "{written}");
        assert_eq!(order["status"], "shipped");
        assert_eq!(order["carrier"], "UPS");
        assert!(order["tracking_number"].as_str().unwrap().starts_with("1Z999AA1"));
        assert!(order["estimated_delivery"].is_string());
        assert_eq!(order["shipping_address"]["city"], "San Francisco");
        assert_eq!(order["total"], 195.98);
        assert_eq!(order["items"].as_array().unwrap().len(), 2);
    }
    // The customer as an e-mail address, in another case, is the same customer.
    let by_email = scope_of(&store, "JOHN.DOE@EMAIL.COM", "By e-mail").await;
    let found = call(&tools, &by_email, "check_order_status", json!({ "order_id": "11111" })).await;
    assert_eq!(found.result.unwrap()["status"], "delivered");
}

async fn another_customers_data_is_not_found_and_nothing_changes(store: Arc<dyn Store>) {
    let (tools, john) = setup(&store, "cust_john_doe").await;
    let before = store.order("ord_22222").await.unwrap().unwrap();
    // Jane's order and Jane's account, from John's ticket: exactly as if they did not exist.
    let theirs = call(&tools, &john, "check_order_status", json!({ "order_id": "ord_22222" })).await;
    let missing = call(&tools, &john, "check_order_status", json!({ "order_id": "ord_77777" })).await;
    let (kind, message) = error_of(&theirs);
    assert_eq!(kind, "not_found");
    assert!(!message.contains("jane") && !message.contains("Jane"), "{message}");
    assert_eq!(error_of(&missing).0, "not_found");
    assert_eq!(
        message.replace("ord_22222", "X"),
        error_of(&missing).1.replace("ord_77777", "X"),
        "no hint that it exists"
    );
    let history = call(
        &tools,
        &john,
        "get_customer_history",
        json!({ "customer_id": "cust_jane_smith" }),
    )
    .await;
    assert_eq!(error_of(&history).0, "not_found");
    let history = call(
        &tools,
        &john,
        "get_customer_history",
        json!({ "customer_id": "jane.smith@email.com" }),
    )
    .await;
    assert_eq!(error_of(&history).0, "not_found");
    let refund = call(
        &tools,
        &john,
        "process_refund",
        json!({ "order_id": "ord_22222", "amount": 10.0, "reason": "please" }),
    )
    .await;
    assert_eq!(
        error_of(&refund).0,
        "not_found",
        "refused when proposed: never held for approval"
    );
    let reset = call(
        &tools,
        &john,
        "reset_password",
        json!({ "user_email": "jane.smith@email.com" }),
    )
    .await;
    assert_eq!(error_of(&reset).0, "refused");
    assert_eq!(store.order("ord_22222").await.unwrap().unwrap(), before, "unchanged");
    assert!(store.refunds("ord_22222").await.unwrap().is_empty());
    let effects = store.call_effects(john.ticket_id).await.unwrap();
    assert!(effects.password_resets.is_empty() && effects.refunds.is_empty());
    // A ticket whose customer has no account: every scoped tool says so.
    let stranger = scope_of(&store, "someone@else.example", "Stranger").await;
    let none = call(
        &tools,
        &stranger,
        "check_order_status",
        json!({ "order_id": "ord_12345" }),
    )
    .await;
    assert_eq!(error_of(&none).0, "not_found");
}

async fn get_customer_history_gives_the_customer_tickets_and_orders(store: Arc<dyn Store>) {
    let (tools, scope) = setup(&store, "cust_john_doe").await;
    // An earlier ticket by e-mail counts too.
    scope_of(&store, "john.doe@email.com", "Earlier, by e-mail").await;
    let history = call(
        &tools,
        &scope,
        "get_customer_history",
        json!({ "customer_id": "John.Doe@Email.com" }),
    )
    .await;
    assert_eq!(history.status, CallStatus::Executed, "{history:?}");
    let result = history.result.unwrap();
    assert_eq!(result["name"], "John Doe");
    assert_eq!(result["tier"], "premium");
    assert_eq!(result["lifetime_value"], 1250.0);
    let orders: Vec<_> = result["recent_orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].clone())
        .collect();
    assert_eq!(orders, [json!("ord_12345"), json!("ord_11111")]);
    assert_eq!(result["recent_tickets"].as_array().unwrap().len(), 2);
}

async fn lookup_product_and_help_articles_read_the_catalogue_and_the_knowledge_base(store: Arc<dyn Store>) {
    let (tools, scope) = setup(&store, "cust_bob_wilson").await;
    let product = call(
        &tools,
        &scope,
        "lookup_product",
        json!({ "product_id": "prod_kb500", "name_search": null }),
    )
    .await;
    assert_eq!(product.result.unwrap()["products"][0]["price"], 89.99);
    let named = call(
        &tools,
        &scope,
        "lookup_product",
        json!({ "product_id": null, "name_search": "mouse" }),
    )
    .await;
    let names: Vec<_> = named.result.unwrap()["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Ergonomic Mouse", "Mouse Pad XL"]);
    let wildcard = call(
        &tools,
        &scope,
        "lookup_product",
        json!({ "product_id": null, "name_search": "%" }),
    )
    .await;
    assert_eq!(error_of(&wildcard).0, "not_found", "LIKE's % is a character");
    let articles = call(
        &tools,
        &scope,
        "query_help_articles",
        json!({ "category": "billing", "search_term": "refund" }),
    )
    .await;
    let found = articles.result.unwrap()["articles"].as_array().unwrap().clone();
    assert!(!found.is_empty() && found.len() <= 5);
    assert!(found.iter().all(|a| a["category"] == "billing"));
    let nothing = call(
        &tools,
        &scope,
        "query_help_articles",
        json!({ "category": null, "search_term": null }),
    )
    .await;
    assert_eq!(error_of(&nothing).0, "invalid_arguments");
}

async fn reset_password_records_a_hashed_token_and_queues_the_email(store: Arc<dyn Store>) {
    let (tools, scope) = setup(&store, "cust_alice_jones").await;
    let reset = call(
        &tools,
        &scope,
        "reset_password",
        json!({ "user_email": "ALICE.JONES@email.com" }),
    )
    .await;
    assert_eq!(reset.status, CallStatus::Executed, "{reset:?}");
    let result = reset.result.unwrap();
    assert_eq!(result["email_status"], "queued");
    assert_eq!(result["email"], "alice.jones@email.com");
    let effects = store.call_effects(scope.ticket_id).await.unwrap();
    let recorded = &effects.password_resets[0];
    assert_eq!(recorded.token_hash.len(), 64, "SHA-256, hex");
    let in_a_day = chrono::Utc::now() + chrono::Duration::hours(24);
    assert!((recorded.expires_at - in_a_day).num_seconds().abs() < 60);
    assert!(
        !result.to_string().contains(&recorded.token_hash),
        "the hash is not shown"
    );
}

async fn a_refund_is_checked_held_approved_and_made_once(store: Arc<dyn Store>) {
    let (tools, scope) = setup(&store, "cust_john_doe").await;
    let proposal = Proposal::new(
        scope.ticket_id,
        "step-4/0",
        "process_refund",
        json!({ "order_id": "ORD-12345", "amount": 45.99, "reason": "the hub never arrived" }),
    );
    let held = tools.call(&scope, proposal.clone()).await.unwrap();
    assert_eq!(held.status, CallStatus::AwaitingApproval, "a refund waits for a person");
    assert!(matches!(
        tools.execute(&scope, held.call_id).await,
        Err(ToolError::NotRunnable(_, CallStatus::AwaitingApproval))
    ));
    assert!(
        store.refunds("ord_12345").await.unwrap().is_empty(),
        "nothing before the decision"
    );
    store.decide_call(held.call_id, true, None).await.unwrap();
    let made = tools.execute(&scope, held.call_id).await.unwrap();
    assert_eq!(made.status, CallStatus::Executed, "{made:?}");
    let result = made.result.clone().unwrap();
    assert_eq!(result["amount"], 45.99);
    assert_eq!(result["order_status"], "partially_refunded");
    assert_eq!(result["refundable_remaining"], 149.99);
    assert!(result["refund_id"].as_str().unwrap().starts_with("RF-"));
    // Asked again, by the same proposal or by id: the journaled result, no second refund.
    assert_eq!(tools.call(&scope, proposal).await.unwrap(), made);
    assert_eq!(tools.execute(&scope, held.call_id).await.unwrap(), made);
    assert_eq!(store.refunds("ord_12345").await.unwrap().len(), 1);
    let order = store.order("ord_12345").await.unwrap().unwrap();
    assert_eq!(
        (order.refunded, order.status),
        (Money::from_cents(4_599), OrderStatus::PartiallyRefunded)
    );
    // More than is refundable, and an order refunded in full before: refused when proposed.
    let too_much = call(
        &tools,
        &scope,
        "process_refund",
        json!({ "order_id": "ord_12345", "amount": 150.0, "reason": "x" }),
    )
    .await;
    let (kind, message) = error_of(&too_much);
    assert_eq!(kind, "refused");
    assert!(message.contains("$150.00") && message.contains("$149.99"), "{message}");
    let charlie = scope_of(&store, "cust_charlie_brown", "Refund again").await;
    let refunded = call(
        &tools,
        &charlie,
        "process_refund",
        json!({ "order_id": "ord_99999", "amount": 1.0, "reason": "x" }),
    )
    .await;
    assert!(error_of(&refunded).1.contains("nothing left to refund"), "{refunded:?}");
    // A rejected refund never runs.
    let rejected = call(
        &tools,
        &scope,
        "process_refund",
        json!({ "order_id": "ord_11111", "amount": 5.0, "reason": "x" }),
    )
    .await;
    store
        .decide_call(rejected.call_id, false, Some(json!({ "rejected": "not eligible" })))
        .await
        .unwrap();
    assert!(matches!(
        tools.execute(&scope, rejected.call_id).await,
        Err(ToolError::NotRunnable(_, CallStatus::Rejected))
    ));
    assert!(store.refunds("ord_11111").await.unwrap().is_empty());
    // Under the automatic-approval amount a refund runs at once.
    let small = Tools::new(env(
        store.clone(),
        ApprovalRules {
            auto_approve_refund_below: Money::from_cents(1000),
            ..ApprovalRules::default()
        },
        None,
    ));
    let made = call(
        &small,
        &scope,
        "process_refund",
        json!({ "order_id": "ord_11111", "amount": 9.99, "reason": "x" }),
    )
    .await;
    assert_eq!(made.status, CallStatus::Executed, "{made:?}");
    let held = call(
        &small,
        &scope,
        "process_refund",
        json!({ "order_id": "ord_11111", "amount": 10.0, "reason": "x" }),
    )
    .await;
    assert_eq!(held.status, CallStatus::AwaitingApproval);
}

async fn bad_arguments_are_clear_error_results(store: Arc<dyn Store>) {
    let (tools, scope) = setup(&store, "cust_john_doe").await;
    let long = "x".repeat(10_240);
    for (tool, args, kind) in [
        (
            "process_refund",
            json!({ "order_id": "ord_12345", "amount": -5.0, "reason": "x" }),
            "invalid_arguments",
        ),
        (
            "process_refund",
            json!({ "order_id": "ord_12345", "amount": 0, "reason": "x" }),
            "invalid_arguments",
        ),
        (
            "process_refund",
            json!({ "order_id": "ord_12345", "amount": 1e12, "reason": "x" }),
            "invalid_arguments",
        ),
        (
            "process_refund",
            json!({ "order_id": "ord_12345", "amount": 0.001, "reason": "x" }),
            "invalid_arguments",
        ),
        (
            "process_refund",
            json!({ "order_id": "ord_12345", "amount": "10", "reason": "x" }),
            "invalid_arguments",
        ),
        (
            "process_refund",
            json!({ "order_id": "ord_12345", "reason": "x" }),
            "invalid_arguments",
        ),
        (
            "process_refund",
            json!({ "order_id": "ord_12345", "amount": 5, "reason": long }),
            "invalid_arguments",
        ),
        (
            "create_bug_report",
            json!({ "title": "t", "description": "d", "priority": "urgent" }),
            "invalid_arguments",
        ),
        (
            "create_bug_report",
            json!({ "title": long, "description": "d", "priority": "low" }),
            "invalid_arguments",
        ),
        ("check_order_status", json!({ "order_id": long }), "invalid_arguments"),
        ("check_order_status", json!({ "order_id": "' OR 1=1 --" }), "not_found"),
        (
            "check_order_status",
            json!({ "order_id": "ord_12345", "extra": 1 }),
            "invalid_arguments",
        ),
        (
            "lookup_product",
            json!({ "product_id": null, "name_search": long }),
            "invalid_arguments",
        ),
        (
            "escalate_to_human",
            json!({ "reason": "", "suggested_action": "x" }),
            "invalid_arguments",
        ),
        ("no_such_tool", json!({}), "unknown_tool"),
    ] {
        let answered = call(&tools, &scope, tool, args.clone()).await;
        let (got, message) = error_of(&answered);
        assert_eq!(got, kind, "{tool} {args}: {message}");
        assert!(!message.is_empty());
    }
    assert!(store.refunds("ord_12345").await.unwrap().is_empty(), "nothing changed");
    assert_eq!(
        store.order("ord_12345").await.unwrap().unwrap().status,
        OrderStatus::Shipped
    );
}

async fn twenty_concurrent_identical_calls_make_one_refund(store: Arc<dyn Store>) {
    store.load_demo_data(chrono::Utc::now()).await.unwrap();
    let rules = ApprovalRules {
        auto_approve_refund_below: Money::from_cents(100_000),
        ..ApprovalRules::default()
    };
    let tools = Tools::new(env(store.clone(), rules, None));
    let scope = scope_of(&store, "cust_alice_jones", "Refund").await;
    let proposal = Proposal::new(
        scope.ticket_id,
        "step-4/0",
        "process_refund",
        json!({ "order_id": "ord_44444", "amount": 59.99, "reason": "damaged backpack" }),
    );
    let calls = (0..20).map(|_| {
        let (tools, scope, proposal) = (tools.clone(), scope.clone(), proposal.clone());
        tokio::spawn(async move { tools.call(&scope, proposal).await })
    });
    let mut results = Vec::new();
    for handle in calls {
        results.push(handle.await.unwrap().unwrap());
    }
    assert!(results.iter().all(|c| c.status == CallStatus::Executed), "{results:?}");
    assert!(results.windows(2).all(|w| w[0].result == w[1].result));
    let refunds = store.refunds("ord_44444").await.unwrap();
    assert_eq!(refunds.len(), 1, "one refund for twenty calls");
    assert_eq!(
        store.order("ord_44444").await.unwrap().unwrap().refunded,
        Money::from_cents(5_999)
    );
    assert_eq!(
        store.tool_calls(scope.ticket_id).await.unwrap().len(),
        1,
        "one journal row"
    );
}

/// A workflow step that refunds, then dies before its checkpoint commits (the process is
/// killed): the run resumes, the step runs again, proposes the same call under the same id,
/// and gets the journaled result; there is one refund.
async fn a_step_that_crashed_after_its_refund_gets_the_journaled_result(store: Arc<dyn Store>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use ticketflow_graph::{END, Graph, NodeError, NodeOutput, START, node_fn};

    store.load_demo_data(chrono::Utc::now()).await.unwrap();
    let rules = ApprovalRules {
        auto_approve_refund_below: Money::from_cents(100_000),
        ..ApprovalRules::default()
    };
    let tools = Tools::new(env(store.clone(), rules, None));
    let scope = scope_of(&store, "cust_jane_smith", "Crash").await;
    let (_, fence) = store
        .claim(scope.ticket_id, "w1", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let scope = TicketScope {
        fence: Some(fence),
        ..scope
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let graph = {
        let (tools, scope, runs) = (tools.clone(), scope.clone(), runs.clone());
        Graph::<Value>::builder()
            .node(
                "refund",
                node_fn(move |_state: Value, ctx| {
                    let (tools, scope, runs) = (tools.clone(), scope.clone(), runs.clone());
                    async move {
                        let key = format!("step-{}/0", ctx.step());
                        let proposal = Proposal::new(
                            scope.ticket_id,
                            &key,
                            "process_refund",
                            json!({ "order_id": "ord_22222", "amount": 35.99, "reason": "stand missing" }),
                        );
                        let call = tools
                            .call(&scope, proposal)
                            .await
                            .map_err(|e| NodeError::Failed(Box::new(e)))?;
                        if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                            // Dies after the effect committed, before the step's checkpoint.
                            return Err(NodeError::Failed("killed".into()));
                        }
                        Ok(NodeOutput::Continue(json!({ "refund": call.result })))
                    }
                }),
            )
            .edge(START, "refund")
            .edge("refund", END)
            .compile()
            .unwrap()
    };
    let checkpointer = store.checkpointer(Some(fence));
    let thread = scope.ticket_id.to_string();
    let first = graph
        .with_checkpointer(checkpointer.clone())
        .invoke(&thread, json!({}))
        .await;
    assert!(first.is_err(), "the first run dies");
    assert_eq!(
        store.refunds("ord_22222").await.unwrap().len(),
        1,
        "the effect had committed"
    );
    let resumed = graph
        .with_checkpointer(checkpointer)
        .invoke(&thread, json!({}))
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the step ran again");
    let refund = &resumed.state()["refund"];
    assert_eq!(refund["amount"], 35.99, "{refund}");
    let refunds = store.refunds("ord_22222").await.unwrap();
    assert_eq!(refunds.len(), 1, "one refund");
    assert_eq!(refund["refund_id"], refunds[0].id.as_str(), "the journaled result");
}

async fn bug_reports_and_escalations_are_recorded(store: Arc<dyn Store>) {
    let (tools, scope) = setup(&store, "cust_bob_wilson").await;
    let local = call(
        &tools,
        &scope,
        "create_bug_report",
        json!({ "title": "Mouse DPI resets", "description": "After sleep the DPI goes back to 800", "priority": "medium" }),
    )
    .await;
    assert_eq!(local.status, CallStatus::Executed, "{local:?}");
    assert!(
        local.result.as_ref().unwrap()["url"].is_null(),
        "no GitHub configured: local"
    );
    // With GitHub: an issue through its API, the ticket and the call in its body.
    let github = FakeGitHub::start("ghp_test").await;
    let client = GitHub::new(&github.api_url, "acme/widgets", "ghp_test".into()).unwrap();
    let with_github = Tools::new(env(store.clone(), ApprovalRules::default(), Some(client)));
    let opened = call(
        &with_github,
        &scope,
        "create_bug_report",
        json!({ "title": "Crash on start", "description": "Segfault in 2.3.1", "priority": "critical" }),
    )
    .await;
    assert_eq!(opened.status, CallStatus::Executed, "{opened:?}");
    assert_eq!(
        opened.result.as_ref().unwrap()["url"],
        "https://github.com/acme/widgets/issues/1"
    );
    let requests = github.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].repo, "acme/widgets");
    assert_eq!(requests[0].authorization.as_deref(), Some("Bearer ghp_test"));
    let body = requests[0].body["body"].as_str().unwrap();
    assert!(body.contains(&scope.ticket_id.to_string()) && body.contains(&opened.call_id.to_string()));
    assert_eq!(requests[0].body["labels"], json!(["bug", "priority: critical"]));
    // GitHub down: the call is not settled (tried again later), nothing recorded.
    github.fail_next(&[503]);
    let proposal = Proposal::new(
        scope.ticket_id,
        "down",
        "create_bug_report",
        json!({ "title": "Later", "description": "d", "priority": "low" }),
    );
    let down = with_github.call(&scope, proposal.clone()).await;
    assert!(matches!(down, Err(ToolError::Unavailable(_))), "{down:?}");
    assert_eq!(
        store.tool_call(proposal.call_id).await.unwrap().unwrap().status,
        CallStatus::Requested
    );
    let later = with_github.call(&scope, proposal).await.unwrap();
    assert_eq!(later.status, CallStatus::Executed);
    let escalated = call(
        &tools,
        &scope,
        "escalate_to_human",
        json!({ "reason": "Threatens legal action", "suggested_action": "Call the customer today" }),
    )
    .await;
    assert_eq!(escalated.result.as_ref().unwrap()["status"], "escalated");
    let effects = store.call_effects(scope.ticket_id).await.unwrap();
    assert_eq!(effects.bug_reports.len(), 3);
    assert_eq!(effects.escalations.len(), 1);
    assert_eq!(effects.escalations[0].reason, "Threatens legal action");
}
