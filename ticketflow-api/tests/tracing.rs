//! One OpenTelemetry trace from `POST /tickets`, through the outbox relay and the queue, to
//! the last workflow step, collected with the SDK's in-memory exporter.

mod support;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::{Value, json};
use ticketflow_api::{AppState, app};
use ticketflow_core::Workflow;
use ticketflow_core::processing::{Background, BackgroundOptions, Processor, ProcessorConfig};
use ticketflow_core::queue::{InProcessQueue, Queue};
use tracing_subscriber::layer::SubscriberExt;

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_the_request_the_relay_the_worker_and_every_step() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).expect("this test process's only subscriber");

    let store = ticketflow_core::testing::database::sqlite_store().await;
    let queue: Arc<dyn Queue> = Arc::new(InProcessQueue::new());
    let processor = Processor::new(store.clone(), Workflow::offline().unwrap(), ProcessorConfig::default());
    let background = Background::start(
        store.clone(),
        queue.clone(),
        Some(processor),
        BackgroundOptions {
            concurrency: 2,
            ..BackgroundOptions::default()
        },
    );
    let state = AppState::new(store, queue).with_relay(background.relay().clone());
    let port = support::free_port();
    let server =
        tokio::spawn(poem::Server::new(poem::listener::TcpListener::bind(format!("127.0.0.1:{port}"))).run(app(state)));
    let client = support::client();
    let base = format!("http://127.0.0.1:{port}");
    let mut created = None;
    for _ in 0..50 {
        if let Ok(response) = client
            .post(format!("{base}/tickets"))
            .json(
                &json!({ "subject": "Charged twice", "body": "Order ORD-55812 was billed twice.", "customer_id": "c" }),
            )
            .send()
            .await
        {
            created = Some(response.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = created.expect("API reachable")["ticket_id"]
        .as_str()
        .unwrap()
        .to_owned();
    support::wait_for_status(&client, &base, &id, "completed").await;
    assert!(background.stop(Duration::from_secs(10)).await);
    server.abort();
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let post = spans
        .iter()
        .find(|s| s.name == "http" && attribute(s, "method").as_deref() == Some("POST"))
        .expect("a span for the POST");
    let trace = post.span_context.trace_id();
    let in_trace = |name: &str| {
        spans
            .iter()
            .filter(|s| s.name == name && s.span_context.trace_id() == trace)
            .count()
    };
    assert_eq!(
        in_trace("outbox.publish"),
        1,
        "the relay's publish joins the request's trace"
    );
    assert_eq!(
        in_trace("queue.process"),
        1,
        "the worker's processing joins it across the queue"
    );
    let steps: Vec<String> = spans
        .iter()
        .filter(|s| s.name == "graph.node" && s.span_context.trace_id() == trace)
        .filter_map(|s| attribute(s, "node"))
        .collect();
    assert_eq!(
        steps,
        ["classify", "extract", "research", "draft", "review", "finalize"],
        "every step, in one trace"
    );
    let classify = spans
        .iter()
        .find(|s| {
            s.name == "step"
                && s.span_context.trace_id() == trace
                && attribute(s, "step").as_deref() == Some("classify")
        })
        .expect("the classify step's engine span");
    assert_eq!(
        attribute(classify, "engine").as_deref(),
        Some("offline"),
        "engine recorded as an attribute"
    );
}

/// The binary exports its spans over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: a
/// loopback stand-in collector (a plain TCP server on its own thread) receives them, flushed at
/// shutdown.
#[tokio::test]
async fn the_binary_exports_spans_over_otlp() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let received = Arc::new(AtomicUsize::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let collector_port = listener.local_addr().unwrap().port();
    let count = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buffer = vec![0u8; 64 * 1024];
            let read = stream.read(&mut buffer).unwrap_or(0);
            if String::from_utf8_lossy(&buffer[..read]).starts_with("POST /v1/traces") {
                count.fetch_add(1, Ordering::SeqCst);
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    let api = support::spawn_api(&[
        ("DATABASE_URL", support::temp_sqlite()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{collector_port}"),
        ),
    ])
    .await;
    let client = support::client();
    let response = client
        .post(format!("{}/tickets", api.base))
        .json(&json!({ "subject": "Traced", "body": "Please trace me", "customer_id": "c" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert!(api.terminate().success());
    assert!(received.load(Ordering::SeqCst) > 0, "the collector received spans");
}
