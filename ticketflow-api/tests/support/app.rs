//! `spawn_app` for the API: the embedded mode built in-process exactly as the binary builds it
//! (settings, store, in-process queue and workers, `AppState::from_settings`), driven through
//! poem's `TestClient` without a socket.

use std::sync::Arc;
use std::time::Duration;

use poem::EndpointExt;
use poem::endpoint::BoxEndpoint;
use poem::http::{HeaderMap, Method};
use poem::test::TestClient;
use serde_json::Value;
use ticketflow_api::{AppState, app};
use ticketflow_core::processing::{Background, Processor};
use ticketflow_core::queue::{InProcessQueue, Queue};
use ticketflow_core::settings::{Settings, Sources};
use ticketflow_core::store::Store;

/// A running API, in-process.
pub struct TestApp {
    pub client: TestClient<BoxEndpoint<'static>>,
    pub store: Arc<dyn Store>,
    background: Option<Background>,
}

/// What a request got back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
    pub text: String,
}

impl TestApp {
    /// The embedded mode on settings given as environment variables; `DATABASE_URL` defaults
    /// to a fresh SQLite file.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let mut env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        if !env.iter().any(|(k, _)| k == "DATABASE_URL") {
            env.push((
                "DATABASE_URL".into(),
                ticketflow_core::testing::database::fresh_sqlite_url(),
            ));
        }
        let settings = Settings::load(Sources {
            env,
            ..Sources::default()
        })
        .expect("valid settings");
        let store = settings.open_store(None).await.expect("the store opens");
        let queue: Arc<dyn Queue> = Arc::new(InProcessQueue::new());
        let processor = Processor::new(
            store.clone(),
            settings.workflow(Some(store.clone())).expect("a workflow"),
            settings.processor_config(),
        );
        let mail = settings.mail_relay(store.clone()).expect("the mail relay");
        let mut background = Background::start(
            store.clone(),
            queue.clone(),
            Some(processor),
            settings.background_options(settings.worker_concurrency),
        );
        background.deliver_mail(mail);
        let mut state = AppState::from_settings(&settings, store.clone(), queue).with_relay(background.relay().clone());
        // One recorder per process: the first app of a test process gets /metrics.
        if let Ok(metrics) = ticketflow_core::telemetry::install_metrics() {
            state = state.with_metrics(metrics);
        }
        Self {
            client: TestClient::new(app(state).map_to_response().boxed()),
            store,
            background: Some(background),
        }
    }

    /// Sends `method path` with `headers` and `body`.
    pub async fn request(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Answer {
        let mut request = self.client.request(method, path);
        for (name, value) in headers {
            // From bytes: a test may send what no well-behaved client would (obs-text).
            let value = poem::http::HeaderValue::from_bytes(value.as_bytes()).expect("a header value");
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.0;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().into_bytes().await.unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, &[], None).await
    }

    /// POSTs `body` as JSON, with `headers`.
    pub async fn post_json(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.request(Method::POST, path, &all, Some(body.to_string().into_bytes()))
            .await
    }

    /// Creates a ticket of `customer` and returns its id.
    pub async fn create(&self, customer: &str, subject: &str, body: &str) -> String {
        let answer = self
            .post_json(
                "/tickets",
                &serde_json::json!({ "customer_id": customer, "subject": subject, "body": body }),
                &[],
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        answer.json["ticket_id"].as_str().unwrap().to_owned()
    }

    /// Polls a ticket until it has status `wanted` (30 s at most) and returns it.
    pub async fn wait_for_status(&self, id: &str, wanted: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ticket = self.get(&format!("/tickets/{id}")).await.json;
            if ticket["status"] == wanted {
                return ticket;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "ticket {id} never reached {wanted}: {ticket}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the background tasks.
    pub async fn stop(mut self) {
        if let Some(background) = self.background.take() {
            background.stop(Duration::from_secs(5)).await;
        }
    }
}
