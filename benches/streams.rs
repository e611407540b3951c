//! Benchmark: live progress under load. The real release binaries — `ticketflow-api` and a
//! worker on PostgreSQL and RabbitMQ — process tickets offered at a fixed rate while many
//! clients hold Server-Sent Events streams open on the one API process: a few follow every
//! event (`/events/stream`), the rest watch completions (`/events/stream?status=completed`),
//! and one never reads at all (a stalled client, which must slow nobody). Reports, per kind of
//! subscriber, the lag from an event's transaction to its arrival (p50/p99/max), whether every
//! subscriber got every event it should have, once and in order, and the API's resident
//! memory. The goal is p99 < 1 s with 1,000 subscribers at 200 tickets/s.
//!
//! ```text
//! cargo bench -p benches --bench streams                    # 1,000 subscribers, 200 tickets/s for 30 s
//! cargo bench -p benches --bench streams -- --subscribers 200 --firehose 5 --rate 100 --seconds 20
//! ```
//!
//! The lag is measured from the event's `created_at`, which PostgreSQL sets when the
//! transaction that wrote it began: it overstates commit-to-arrival by that transaction's
//! length. Each subscriber is a connection of its own (mind `ulimit -n`). Writes
//! `target/bench-results/streams.json`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

#[path = "deployment.rs"]
mod deployment;

use deployment::{
    build_release_binaries, drop_database, free_port, fresh_database, percentile, release_binary, resident_mib, spawn,
    wait_healthy,
};

struct Args {
    subscribers: usize,
    firehose: usize,
    rate: f64,
    seconds: u64,
    workers: usize,
}

fn args() -> Args {
    let mut args = Args {
        subscribers: 1000,
        firehose: 10,
        rate: 200.0,
        seconds: 30,
        workers: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match arg.as_str() {
            "--subscribers" => args.subscribers = value().parse().unwrap_or(args.subscribers),
            "--firehose" => args.firehose = value().parse().unwrap_or(args.firehose),
            "--rate" => args.rate = value().parse().unwrap_or(args.rate),
            "--seconds" => args.seconds = value().parse().unwrap_or(args.seconds),
            "--workers" => args.workers = value().parse().unwrap_or(args.workers),
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    /// Milliseconds from each event's transaction to its arrival.
    lags_ms: Vec<f64>,
    /// Its seqs, in arrival order.
    seqs: Vec<i64>,
}

/// Reads one stream until `stop`, timing each event.
async fn subscribe(http: reqwest::Client, url: String, stop: Arc<AtomicBool>, opened: Arc<AtomicU64>) -> Seen {
    let mut response = http
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("open a stream");
    assert_eq!(response.status(), 200, "{url}");
    opened.fetch_add(1, Ordering::Relaxed);
    let mut seen = Seen::default();
    let mut buffer = String::new();
    while !stop.load(Ordering::Relaxed) {
        let chunk = match tokio::time::timeout(Duration::from_millis(500), response.chunk()).await {
            Err(_) => continue,
            Ok(Ok(Some(chunk))) => chunk,
            Ok(_) => break,
        };
        let arrived = chrono::Utc::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue; // a keep-alive comment
            };
            let event: Value = serde_json::from_str(data).expect("an event");
            let created = event["created_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .expect("created_at");
            seen.lags_ms
                .push((arrived - created.to_utc()).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            seen.seqs.push(event["seq"].as_i64().expect("seq"));
        }
    }
    seen
}

fn summary(mut lags: Vec<f64>) -> Value {
    lags.sort_by(f64::total_cmp);
    json!({
        "events": lags.len(),
        "p50_ms": percentile(&lags, 0.5),
        "p99_ms": percentile(&lags, 0.99),
        "max_ms": lags.last().copied().unwrap_or(0.0),
    })
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = args();
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --all-targets` builds benches too; only `cargo bench` runs them.
    }
    build_release_binaries();
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    std::fs::create_dir_all(&results).expect("create target/bench-results");
    let log = results.join("streams.log");
    let _ = std::fs::remove_file(&log);

    let database_url = fresh_database().await;
    let api_port = free_port();
    let base = format!("http://127.0.0.1:{api_port}");
    let env = vec![
        ("BIND_ADDR", format!("127.0.0.1:{api_port}")),
        ("DATABASE_URL", database_url.clone()),
        (
            "RABBITMQ_URL",
            std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        ),
        ("QUEUE_NAME", format!("tf_bench_{}", uuid::Uuid::new_v4().simple())),
    ];
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.subscribers + 64)
        .build()
        .expect("an HTTP client");
    let api = spawn(&release_binary("ticketflow-api"), &env, &log);
    wait_healthy(&http, &base).await;
    let mut workers = Vec::new();
    for _ in 0..args.workers {
        let port = free_port();
        let mut worker_env = env.clone();
        worker_env.push(("WORKER_BIND_ADDR", format!("127.0.0.1:{port}")));
        workers.push(spawn(&release_binary("ticketflow-worker"), &worker_env, &log));
        wait_healthy(&http, &format!("http://127.0.0.1:{port}")).await;
    }
    let api_rss_idle = resident_mib(api.0.id());

    // The subscribers, and one that stalls: it opens a stream and never reads it.
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let mut firehose = Vec::new();
    let mut watchers = Vec::new();
    for i in 0..args.subscribers {
        let url = if i < args.firehose {
            format!("{base}/events/stream?after=0")
        } else {
            format!("{base}/events/stream?after=0&status=completed")
        };
        let task = tokio::spawn(subscribe(http.clone(), url, stop.clone(), opened.clone()));
        if i < args.firehose {
            firehose.push(task);
        } else {
            watchers.push(task);
        }
    }
    let stalled = http
        .get(format!("{base}/events/stream?after=0"))
        .send()
        .await
        .expect("the stalled stream");
    while opened.load(Ordering::Relaxed) < args.subscribers as u64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let api_rss_subscribed = resident_mib(api.0.id());
    println!(
        "{} streams open; offering {} tickets/s for {} s",
        args.subscribers + 1,
        args.rate,
        args.seconds
    );

    // The open loop, and the API's memory once a second.
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (pid, peak, stop) = (api.0.id(), peak_rss.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let rss = (resident_mib(pid) * 1024.0) as u64;
                peak.fetch_max(rss, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let total = (args.rate * args.seconds as f64) as u64;
    let started = tokio::time::Instant::now();
    let mut requests = Vec::with_capacity(total as usize);
    for n in 0..total {
        tokio::time::sleep_until(started + Duration::from_secs_f64(n as f64 / args.rate)).await;
        let (http, url) = (http.clone(), format!("{base}/tickets"));
        requests.push(tokio::spawn(async move {
            let body = json!({
                "customer_id": format!("cust_{}", n % 1000),
                "subject": format!("Where is my order ({n})"),
                "body": format!("Where is order ORD-{}? It has not arrived.", 100_000 + n),
            });
            http.post(url).json(&body).send().await.is_ok_and(|r| r.status() == 201)
        }));
    }
    let mut create_errors = 0;
    for request in requests {
        if !request.await.unwrap_or(false) {
            create_errors += 1;
        }
    }
    // Drain: every ticket done, then a moment for the last events to reach everyone.
    let mut db = sqlx::PgConnection::connect(&database_url).await.expect("connect");
    let drain = Instant::now();
    loop {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM ticketflow.tickets WHERE status IN ('pending', 'processing')")
                .fetch_one(&mut db)
                .await
                .expect("count");
        if open == 0 || drain.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    drop(stalled);

    // What every subscriber should have had: the database's events, all or completions.
    let all: Vec<i64> = sqlx::query_scalar("SELECT seq FROM ticketflow.ticket_events ORDER BY seq")
        .fetch_all(&mut db)
        .await
        .expect("events");
    let completions: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM ticketflow.ticket_events WHERE event_type = 'status_change' AND payload->>'to' = 'completed' \
         ORDER BY seq",
    )
    .fetch_all(&mut db)
    .await
    .expect("completions");
    let mut complete = [0usize; 2];
    let mut lags = [Vec::new(), Vec::new()];
    let mut shortfalls = [Vec::new(), Vec::new()];
    for (kind, tasks, expected) in [(0, firehose, &all), (1, watchers, &completions)] {
        for task in tasks {
            let seen = task.await.expect("a subscriber");
            if seen.seqs == *expected {
                complete[kind] += 1;
            } else {
                let got: std::collections::BTreeSet<i64> = seen.seqs.iter().copied().collect();
                let missing: Vec<i64> = expected.iter().copied().filter(|s| !got.contains(s)).collect();
                let ordered = seen.seqs.windows(2).all(|w| w[0] < w[1]);
                shortfalls[kind].push(json!({
                    "missing": missing.len(),
                    "first_missing": missing.first(),
                    "last_missing": missing.last(),
                    "last_expected": expected.last(),
                    "in_order_without_repeats": ordered,
                }));
            }
            lags[kind].extend(seen.lags_ms);
        }
    }
    let [firehose_shortfalls, watcher_shortfalls] = shortfalls;
    if let Some(first) = firehose_shortfalls.first() {
        let seq = first["first_missing"].as_i64().unwrap_or(0);
        let around: Vec<(i64, String, Option<String>, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT seq, event_type, step_name, created_at FROM ticketflow.ticket_events WHERE seq BETWEEN $1 - 3 AND $1 + 3 ORDER BY seq",
        )
        .bind(seq)
        .fetch_all(&mut db)
        .await
        .unwrap_or_default();
        println!("around the first missing event: {around:?}");
    }
    let [firehose_lags, watcher_lags] = lags;
    let report = json!({
        "subscribers": args.subscribers,
        "firehose_subscribers": args.firehose,
        "offered_per_second": args.rate,
        "seconds": args.seconds,
        "workers": args.workers,
        "create_errors": create_errors,
        "events": all.len(),
        "completions": completions.len(),
        "firehose": summary(firehose_lags),
        "firehose_complete_and_in_order": complete[0],
        "completion_watchers": summary(watcher_lags),
        "watchers_complete_and_in_order": complete[1],
        "firehose_shortfalls": firehose_shortfalls.into_iter().take(3).collect::<Vec<_>>(),
        "watcher_shortfalls": watcher_shortfalls.into_iter().take(3).collect::<Vec<_>>(),
        "api_rss_mib": { "idle": api_rss_idle, "subscribed": api_rss_subscribed, "peak": peak_rss.load(Ordering::Relaxed) as f64 / 1024.0 },
    });
    println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    let file = results.join("streams.json");
    std::fs::write(&file, serde_json::to_string_pretty(&report).expect("JSON")).expect("write the results");
    println!("written to {}", file.display());
    drop(workers);
    drop(api);
    drop(db);
    drop_database(&database_url).await;
}
