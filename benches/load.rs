//! Benchmarks 3 and 4: end to end, with an open-loop load generator. It starts the real
//! release binaries — `ticketflow-api` and N `ticketflow-worker`s on PostgreSQL and RabbitMQ
//! (distributed), or `ticketflow-api` alone on SQLite with its in-process queue and workers
//! (embedded) — with the offline engine, offers POST /tickets at a fixed rate over at most 64
//! connections, and reports create latency, completion throughput, submit-to-completed
//! latency, the backlog over time, errors and the workers' peak resident memory.
//!
//! ```text
//! cargo bench -p benches --bench load -- --mode distributed --rate 500 --seconds 60 --workers 1
//! cargo bench -p benches --bench load -- --mode embedded --rate 300 --seconds 60
//! cargo bench -p benches --bench load -- --mode distributed --rate 300 --seconds 30 --webhooks dead
//! ```
//!
//! `--webhooks dead` points `WEBHOOK_URLS` at a port nobody listens on, so that every
//! completion's webhook fails and is retried throughout: the throughput should not move.
//!
//! Open loop: requests are sent on schedule whether or not earlier ones answered, and each
//! latency is measured from the moment its request was due, so a stall shows up in the
//! figures instead of silently slowing the offer (no coordinated omission).
//! Builds the release binaries first (`cargo build --release --bins`; a no-op when fresh).
//! Writes `target/bench-results/load-<mode>.json`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sqlx::Connection;
use tokio::sync::Semaphore;

#[path = "deployment.rs"]
mod deployment;

use deployment::{
    build_release_binaries, drop_database, free_port, fresh_database, percentile, release_binary, resident_mib, spawn,
    wait_healthy,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Distributed,
    Embedded,
}

struct Args {
    mode: Mode,
    rate: f64,
    seconds: u64,
    workers: usize,
    connections: usize,
    prefetch: usize,
    /// Webhooks to a receiver that is down for the whole run (`--webhooks dead`).
    dead_webhooks: bool,
}

fn args() -> Args {
    let mut args = Args {
        mode: Mode::Distributed,
        rate: 500.0,
        seconds: 60,
        workers: 1,
        connections: 64,
        prefetch: 32,
        dead_webhooks: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match arg.as_str() {
            "--mode" => {
                args.mode = match value().as_str() {
                    "embedded" => Mode::Embedded,
                    _ => Mode::Distributed,
                }
            }
            "--rate" => args.rate = value().parse().unwrap_or(args.rate),
            "--seconds" => args.seconds = value().parse().unwrap_or(args.seconds),
            "--workers" => args.workers = value().parse().unwrap_or(args.workers),
            "--connections" => args.connections = value().parse().unwrap_or(args.connections),
            "--prefetch" => args.prefetch = value().parse().unwrap_or(args.prefetch),
            "--webhooks" => args.dead_webhooks = value() == "dead",
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

/// Reads the database the services share (the source of truth).
enum Db {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Db {
    async fn open(mode: Mode, url: &str) -> Self {
        match mode {
            Mode::Distributed => {
                // The services keep their tables in the `ticketflow` schema.
                let options = url
                    .parse::<sqlx::postgres::PgConnectOptions>()
                    .expect("a PostgreSQL URL")
                    .options([("search_path", "ticketflow")]);
                Db::Postgres(sqlx::PgConnection::connect_with(&options).await.expect("connect"))
            }
            Mode::Embedded => Db::Sqlite(sqlx::SqliteConnection::connect(url).await.expect("open")),
        }
    }

    /// (tickets not yet completed or failed, completed).
    async fn counts(&mut self) -> (i64, i64) {
        let sql = "SELECT (SELECT count(*) FROM tickets WHERE status IN ('pending', 'processing')), \
                          (SELECT count(*) FROM tickets WHERE status = 'completed')";
        match self {
            Db::Postgres(c) => sqlx::query_as(sql).fetch_one(c).await.expect("count tickets"),
            Db::Sqlite(c) => sqlx::query_as(sql).fetch_one(c).await.expect("count tickets"),
        }
    }

    /// Seconds from creation to completion of every completed ticket, and the span from the
    /// first creation to the last completion.
    async fn completion(&mut self) -> (Vec<f64>, f64) {
        match self {
            Db::Postgres(c) => {
                let rows: Vec<(f64,)> = sqlx::query_as(
                    "SELECT EXTRACT(EPOCH FROM completed_at - created_at)::float8 FROM tickets WHERE status = 'completed'",
                )
                .fetch_all(&mut *c)
                .await
                .unwrap_or_default();
                let span: (Option<f64>,) = sqlx::query_as(
                    "SELECT EXTRACT(EPOCH FROM max(completed_at) - min(created_at))::float8 FROM tickets",
                )
                .fetch_one(&mut *c)
                .await
                .unwrap_or((None,));
                (rows.into_iter().map(|r| r.0).collect(), span.0.unwrap_or(0.0))
            }
            Db::Sqlite(c) => {
                let rows: Vec<(f64,)> = sqlx::query_as(
                    "SELECT (julianday(completed_at) - julianday(created_at)) * 86400.0 FROM tickets WHERE status = 'completed'",
                )
                .fetch_all(&mut *c)
                .await
                .unwrap_or_default();
                let span: (Option<f64>,) = sqlx::query_as(
                    "SELECT (julianday(max(completed_at)) - julianday(min(created_at))) * 86400.0 FROM tickets",
                )
                .fetch_one(&mut *c)
                .await
                .unwrap_or((None,));
                (rows.into_iter().map(|r| r.0).collect(), span.0.unwrap_or(0.0))
            }
        }
    }
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
    let mode_name = match args.mode {
        Mode::Distributed => "distributed",
        Mode::Embedded => "embedded",
    };
    let log = results.join(format!("load-{mode_name}.log"));
    let _ = std::fs::remove_file(&log);

    // The deployment under test.
    let api_port = free_port();
    let base = format!("http://127.0.0.1:{api_port}");
    let mut env = vec![
        ("BIND_ADDR", format!("127.0.0.1:{api_port}")),
        ("LOG_FORMAT", "json".into()),
    ];
    let database_url = match args.mode {
        Mode::Distributed => fresh_database().await,
        Mode::Embedded => {
            let path = std::env::temp_dir().join(format!("tf_bench_{}.db", uuid::Uuid::new_v4().simple()));
            format!("sqlite://{}", path.display())
        }
    };
    env.push(("DATABASE_URL", database_url.clone()));
    let queue = format!("tf_bench_{}", uuid::Uuid::new_v4().simple());
    if args.mode == Mode::Distributed {
        env.push((
            "RABBITMQ_URL",
            std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        ));
        env.push(("QUEUE_NAME", queue.clone()));
    } else {
        env.push(("WORKER_CONCURRENCY", args.prefetch.to_string()));
    }
    if args.dead_webhooks {
        // Every event of every ticket becomes a delivery that keeps failing.
        env.push(("WEBHOOK_URLS", format!("http://127.0.0.1:{}/hooks", free_port())));
        env.push(("WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()));
        env.push(("WEBHOOK_RETRY_SECONDS", "1".into()));
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");
    let api = spawn(&release_binary("ticketflow-api"), &env, &log);
    wait_healthy(&http, &base).await;
    let mut workers = Vec::new();
    if args.mode == Mode::Distributed {
        for _ in 0..args.workers {
            let port = free_port();
            let mut worker_env = env.clone();
            worker_env.push(("WORKER_BIND_ADDR", format!("127.0.0.1:{port}")));
            worker_env.push(("PREFETCH_COUNT", args.prefetch.to_string()));
            workers.push(spawn(&release_binary("ticketflow-worker"), &worker_env, &log));
            wait_healthy(&http, &format!("http://127.0.0.1:{port}")).await;
        }
    }
    // The processes that process tickets: the workers, or the embedded API.
    let processing_pids: Vec<u32> = if workers.is_empty() {
        vec![api.0.id()]
    } else {
        workers.iter().map(|w| w.0.id()).collect()
    };
    let mut db = Db::open(args.mode, &database_url).await;

    // The open loop.
    let total = (args.rate * args.seconds as f64) as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} offered, {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{mode_name} {} /s", args.rate));
    let connections = Arc::new(Semaphore::new(args.connections));
    let started = tokio::time::Instant::now();
    // Once a second, on its own connection: the backlog and the processing processes' memory.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let mut sample_db = Db::open(args.mode, &database_url).await;
        let bar = bar.clone();
        let pids = processing_pids.clone();
        let stop = sampling.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut peak_rss = 0.0_f64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (open, completed) = sample_db.counts().await;
                let rss: f64 = pids.iter().map(|pid| resident_mib(*pid)).sum();
                peak_rss = peak_rss.max(rss);
                samples.push(
                    json!({ "t": started.elapsed().as_secs(), "open": open, "completed": completed, "rss_mib": rss }),
                );
                bar.set_message(format!("{completed} completed, backlog {open}, RSS {rss:.1} MiB"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            (samples, peak_rss)
        })
    };
    let mut requests = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = started + Duration::from_secs_f64(n as f64 / args.rate);
        tokio::time::sleep_until(due).await;
        let http = http.clone();
        let url = format!("{base}/tickets");
        let connections = connections.clone();
        requests.push(tokio::spawn(async move {
            let _permit = connections.acquire_owned().await.expect("the semaphore is never closed");
            let body = json!({
                "customer_id": format!("cust_{}", n % 1000),
                "subject": format!("Charged twice ({n})"),
                "body": format!("My card was charged twice for order ORD-{}. Please refund the duplicate.", 100_000 + n),
            });
            let status = http.post(url).json(&body).send().await.map(|r| r.status().as_u16());
            (status, due.elapsed())
        }));
        bar.inc(1);
    }
    let offered_for = started.elapsed();
    let mut latencies = Vec::with_capacity(requests.len());
    let mut errors = 0u64;
    for request in requests {
        match request.await {
            Ok((Ok(201 | 200), took)) => latencies.push(took.as_secs_f64() * 1000.0),
            _ => errors += 1,
        }
    }
    // Drain: wait for the backlog to clear (or give up after two minutes).
    let drain_started = Instant::now();
    loop {
        let (open, _) = db.counts().await;
        if open == 0 || drain_started.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    sampling.store(true, std::sync::atomic::Ordering::Relaxed);
    let (backlog, peak_rss) = sampler.await.expect("the sampler");
    bar.finish();
    let (_, completed) = db.counts().await;
    let (mut to_complete, span) = db.completion().await;
    latencies.sort_by(f64::total_cmp);
    to_complete.sort_by(f64::total_cmp);
    let max_backlog = backlog.iter().filter_map(|b| b["open"].as_i64()).max().unwrap_or(0);

    let report = json!({
        "mode": mode_name,
        "offered_per_second": args.rate,
        "seconds": args.seconds,
        "offered": total,
        "offered_for_seconds": offered_for.as_secs_f64(),
        "workers": if args.mode == Mode::Distributed { args.workers } else { 0 },
        "prefetch_or_concurrency": args.prefetch,
        "connections": args.connections,
        "dead_webhooks": args.dead_webhooks,
        "create_ms": { "p50": percentile(&latencies, 0.5), "p99": percentile(&latencies, 0.99), "max": latencies.last().copied().unwrap_or(0.0) },
        "errors": errors,
        "completed": completed,
        "completed_per_second": if span > 0.0 { completed as f64 / span } else { 0.0 },
        "submit_to_completed_ms": {
            "p50": percentile(&to_complete, 0.5) * 1000.0,
            "p99": percentile(&to_complete, 0.99) * 1000.0,
            "max": to_complete.last().copied().unwrap_or(0.0) * 1000.0,
        },
        "max_backlog": max_backlog,
        "peak_rss_mib_of_processing_processes": peak_rss,
        "backlog_over_time": backlog,
    });
    println!(
        "\n| mode | offered/s | offered | errors | create p50 ms | p99 ms | max ms | completed | completed/s | submit→completed p50 ms | p99 ms | max backlog | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {mode_name} | {} | {total} | {errors} | {:.2} | {:.2} | {:.1} | {completed} | {:.0} | {:.0} | {:.0} | {max_backlog} | {:.1} |",
        args.rate,
        report["create_ms"]["p50"].as_f64().unwrap_or(0.0),
        report["create_ms"]["p99"].as_f64().unwrap_or(0.0),
        report["create_ms"]["max"].as_f64().unwrap_or(0.0),
        report["completed_per_second"].as_f64().unwrap_or(0.0),
        report["submit_to_completed_ms"]["p50"].as_f64().unwrap_or(0.0),
        report["submit_to_completed_ms"]["p99"].as_f64().unwrap_or(0.0),
        peak_rss,
    );
    let file = results.join(format!("load-{mode_name}.json"));
    std::fs::write(&file, serde_json::to_string_pretty(&report).expect("JSON")).expect("write the results");
    println!("written to {}", file.display());
    drop(workers);
    drop(api);
    // Leave nothing behind: the run's database or SQLite file.
    drop(db);
    match args.mode {
        Mode::Distributed => drop_database(&database_url).await,
        Mode::Embedded => {
            if let Some(path) = database_url.strip_prefix("sqlite://") {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
        }
    }
}
