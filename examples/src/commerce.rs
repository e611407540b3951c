//! A reference server of ticketflow's commerce contract (README: "The commerce contract"): the
//! demo customers, products and orders, in memory. A company can read it as the contract's
//! specification; `cargo run -p examples --example commerce_server` runs it, and the tests
//! start it in-process to check what ticketflow sends (paths, the bearer token, each refund's
//! `Idempotency-Key`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::http::{HeaderMap, StatusCode};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json, Path, Query};
use poem::{EndpointExt, IntoResponse, Response, Route, Server, get, handler, post};
use serde::Deserialize;
use serde_json::{Value, json};
use ticketflow_core::commerce::{Order, OrderStatus};
use ticketflow_core::demo;
use ticketflow_core::money::Money;

/// A request the server received.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// `GET` or `POST`.
    pub method: String,
    /// The path.
    pub path: String,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The JSON body, for a POST.
    pub body: Option<Value>,
}

/// A refund the server made.
#[derive(Debug, Clone, PartialEq)]
pub struct MadeRefund {
    /// Its id.
    pub id: String,
    /// The order.
    pub order_id: String,
    /// How much.
    pub amount: Money,
    /// The key it was made under.
    pub idempotency_key: String,
}

struct State {
    token: Option<String>,
    orders: Mutex<Vec<Order>>,
    refunds: Mutex<Vec<MadeRefund>>,
    /// Answers by idempotency key: a repeat gets the first answer.
    answered: Mutex<HashMap<String, Value>>,
    received: Mutex<Vec<Received>>,
    failures: Mutex<VecDeque<u16>>,
    delay: Mutex<Option<Duration>>,
}

/// The running server; stops when dropped.
pub struct CommerceServer {
    /// Its base URL (give it as `COMMERCE_API_URL`).
    pub base_url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CommerceServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CommerceServer {
    /// Starts on `addr` (`127.0.0.1:0` for a free port), requiring `token` as a bearer token if
    /// given.
    pub async fn start(addr: &str, token: Option<&str>) -> std::io::Result<Self> {
        let state = Arc::new(State {
            token: token.map(str::to_owned),
            orders: Mutex::new(demo::orders(chrono::Utc::now())),
            refunds: Mutex::new(Vec::new()),
            answered: Mutex::new(HashMap::new()),
            received: Mutex::new(Vec::new()),
            failures: Mutex::new(VecDeque::new()),
            delay: Mutex::new(None),
        });
        let acceptor = TcpListener::bind(addr.to_owned()).into_acceptor().await?;
        let local = acceptor.local_addr()[0]
            .as_socket_addr()
            .copied()
            .ok_or_else(|| std::io::Error::other("not a TCP address"))?;
        let app = Route::new()
            .at("/customers/:reference", get(get_customer))
            .at("/customers/:id/orders", get(list_customer_orders))
            .at("/orders/:id", get(get_order))
            .at("/orders/:id/refunds", post(create_refund))
            .at("/products", get(search_products))
            .at("/products/:id", get(get_product))
            .data(state.clone());
        let task = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        Ok(Self {
            base_url: format!("http://{local}"),
            state,
            task,
        })
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }

    /// Every refund made.
    pub fn refunds(&self) -> Vec<MadeRefund> {
        lock(&self.state.refunds).clone()
    }

    /// The next requests answer these statuses, in order.
    pub fn fail_next(&self, statuses: &[u16]) {
        lock(&self.state.failures).extend(statuses);
    }

    /// Every answer waits this long (to trip a client's timeout); `None` to stop.
    pub fn delay(&self, delay: Option<Duration>) {
        *lock(&self.state.delay) = delay;
    }

    /// Serves until the process is stopped.
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": status.as_u16(), "message": message }))).into_response()
}

/// Records the request; answers a scripted failure, a missing token, or nothing (go on).
async fn admit(
    state: &State,
    method: &str,
    path: String,
    headers: &HeaderMap,
    body: Option<Value>,
) -> Option<Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    lock(&state.received).push(Received {
        method: method.into(),
        path,
        idempotency_key: header("idempotency-key"),
        authorization: header("authorization"),
        body,
    });
    let delay = *lock(&state.delay);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = lock(&state.failures).pop_front() {
        return Some(error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "scripted failure",
        ));
    }
    if let Some(token) = &state.token
        && header("authorization").as_deref() != Some(&format!("Bearer {token}"))
    {
        return Some(error(StatusCode::UNAUTHORIZED, "a valid bearer token is required"));
    }
    None
}

#[handler]
async fn get_customer(Path(reference): Path<String>, headers: &HeaderMap, state: Data<&Arc<State>>) -> Response {
    if let Some(refused) = admit(&state, "GET", format!("/customers/{reference}"), headers, None).await {
        return refused;
    }
    match demo::customers().into_iter().find(|c| c.is(&reference)) {
        Some(customer) => Json(customer).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such customer"),
    }
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

#[handler]
async fn list_customer_orders(
    Path(id): Path<String>,
    Query(limit): Query<Limit>,
    headers: &HeaderMap,
    state: Data<&Arc<State>>,
) -> Response {
    if let Some(refused) = admit(&state, "GET", format!("/customers/{id}/orders"), headers, None).await {
        return refused;
    }
    let mut orders: Vec<Order> = lock(&state.orders)
        .iter()
        .filter(|o| o.customer_id.eq_ignore_ascii_case(&id))
        .cloned()
        .collect();
    orders.sort_by_key(|o| std::cmp::Reverse(o.placed_at));
    orders.truncate(limit.limit.unwrap_or(5));
    Json(orders).into_response()
}

#[handler]
async fn get_order(Path(id): Path<String>, headers: &HeaderMap, state: Data<&Arc<State>>) -> Response {
    if let Some(refused) = admit(&state, "GET", format!("/orders/{id}"), headers, None).await {
        return refused;
    }
    match lock(&state.orders).iter().find(|o| o.id.eq_ignore_ascii_case(&id)) {
        Some(order) => Json(order.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such order"),
    }
}

#[derive(Deserialize)]
struct RefundBody {
    amount: Money,
    reason: String,
}

#[handler]
async fn create_refund(
    Path(id): Path<String>,
    headers: &HeaderMap,
    body: Json<Value>,
    state: Data<&Arc<State>>,
) -> Response {
    if let Some(refused) = admit(
        &state,
        "POST",
        format!("/orders/{id}/refunds"),
        headers,
        Some(body.0.clone()),
    )
    .await
    {
        return refused;
    }
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return error(StatusCode::BAD_REQUEST, "Idempotency-Key is required");
    };
    if let Some(first) = lock(&state.answered).get(&key) {
        return (StatusCode::OK, Json(first.clone())).into_response();
    }
    let Ok(request) = serde_json::from_value::<RefundBody>(body.0) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount (dollars) and reason are required",
        );
    };
    if !request.amount.is_positive() || request.reason.trim().is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the amount must be more than 0, with a reason",
        );
    }
    let mut orders = lock(&state.orders);
    let Some(order) = orders.iter_mut().find(|o| o.id.eq_ignore_ascii_case(&id)) else {
        return error(StatusCode::NOT_FOUND, "no such order");
    };
    if request.amount > order.refundable() {
        return error(
            StatusCode::CONFLICT,
            &format!("only {} is refundable on {}", order.refundable(), order.id),
        );
    }
    order.refunded = order.refunded.checked_add(request.amount).unwrap_or(order.total);
    order.status = if order.refundable() == Money::ZERO {
        OrderStatus::Refunded
    } else {
        OrderStatus::PartiallyRefunded
    };
    let mut refunds = lock(&state.refunds);
    let made = MadeRefund {
        id: format!("re_{:04}", refunds.len() + 1),
        order_id: order.id.clone(),
        amount: request.amount,
        idempotency_key: key.clone(),
    };
    let answer = json!({
        "id": made.id,
        "order_id": made.order_id,
        "amount": made.amount,
        "order_status": order.status,
        "refundable": order.refundable(),
    });
    refunds.push(made);
    lock(&state.answered).insert(key, answer.clone());
    (StatusCode::CREATED, Json(answer)).into_response()
}

#[handler]
async fn get_product(Path(id): Path<String>, headers: &HeaderMap, state: Data<&Arc<State>>) -> Response {
    if let Some(refused) = admit(&state, "GET", format!("/products/{id}"), headers, None).await {
        return refused;
    }
    match demo::products().into_iter().find(|p| p.id.eq_ignore_ascii_case(&id)) {
        Some(product) => Json(product).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such product"),
    }
}

#[derive(Deserialize)]
struct Search {
    name_contains: Option<String>,
    limit: Option<usize>,
}

#[handler]
async fn search_products(Query(search): Query<Search>, headers: &HeaderMap, state: Data<&Arc<State>>) -> Response {
    if let Some(refused) = admit(&state, "GET", "/products".into(), headers, None).await {
        return refused;
    }
    let needle = search.name_contains.unwrap_or_default().to_lowercase();
    let found: Vec<_> = demo::products()
        .into_iter()
        .filter(|p| p.name.to_lowercase().contains(&needle))
        .take(search.limit.unwrap_or(5))
        .collect();
    Json(found).into_response()
}
