//! Benchmark 2: the durable workflow — the processor with the PostgreSQL store and fenced
//! checkpointer (a checkpoint committed after every step, `synchronous_commit` as the server
//! has it), the offline engine, at several concurrencies. Reports tickets/s, PostgreSQL
//! transactions per ticket, and per-ticket latency.
//!
//! ```text
//! cargo bench -p benches --bench durable                       # 1, 4, 16, 64; 400 tickets each
//! cargo bench -p benches --bench durable -- --tickets 1000 --concurrency 16,64
//! ```
//!
//! Writes `target/bench-results/durable.json`. Needs the PostgreSQL of `TEST_POSTGRES_URL`
//! (default postgres://postgres@127.0.0.1:5432/postgres); each run uses a fresh database.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sqlx::Connection;
use ticketflow_core::Workflow;
use ticketflow_core::processing::{Processed, Processor, ProcessorConfig};
use ticketflow_core::queue::TicketMessage;
use ticketflow_core::store::{NewTicket, PgOptions, PgStore, Store};
use uuid::Uuid;

struct Args {
    tickets: usize,
    concurrency: Vec<usize>,
    /// Most checkpoints per transaction (group commit); 1 = every checkpoint on its own.
    batch: usize,
    /// Most bytes per batched statement.
    batch_bytes: usize,
    /// Runs per concurrency (the median is reported).
    repeat: usize,
    /// Checkpoint writer tasks.
    writers: usize,
}

/// The next argument parsed, or `default` when it is missing or does not parse.
fn parse_next<T: std::str::FromStr>(it: &mut impl Iterator<Item = String>, default: T) -> T {
    it.next().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn args() -> Args {
    let mut args = Args {
        tickets: 400,
        concurrency: vec![1, 4, 16, 64],
        batch: PgOptions::default().checkpoint_batch,
        batch_bytes: PgOptions::default().checkpoint_batch_bytes,
        repeat: 1,
        writers: PgOptions::default().checkpoint_writers,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--tickets" => args.tickets = parse_next(&mut it, args.tickets),
            "--batch-bytes" => args.batch_bytes = parse_next(&mut it, args.batch_bytes),
            "--writers" => args.writers = parse_next(&mut it, args.writers),
            "--repeat" => args.repeat = parse_next(&mut it, args.repeat).max(1),
            "--batch" => args.batch = parse_next(&mut it, args.batch),
            "--concurrency" => {
                args.concurrency = it
                    .next()
                    .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
                    .unwrap_or(args.concurrency)
            }
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

async fn commits(admin: &str, database: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(admin).await.expect("admin connection");
    // The statistics collector lags a little; force a fresh snapshot.
    let _ = sqlx::query("SELECT pg_stat_clear_snapshot()").execute(&mut conn).await;
    sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
        .bind(database)
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_database")
}

/// One run on a fresh database: creates the tickets, then processes them all at
/// `concurrency`, and reports throughput, commits per ticket and latency.
async fn run(args: &Args, admin: &str, concurrency: usize) -> serde_json::Value {
    let base = admin.rsplit_once('/').expect("URL with a database").0.to_owned();
    let database = format!("tf_bench_{}", Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is not reachable at {admin}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = format!("{base}/{database}");
    let options = PgOptions {
        max_connections: (concurrency as u32 + 4).min(90),
        checkpoint_batch: args.batch,
        checkpoint_batch_bytes: args.batch_bytes,
        checkpoint_writers: args.writers,
        ..PgOptions::default()
    };
    let connect = || async { PgStore::connect(&url, options.clone()).await.unwrap() };
    let pg = connect().await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    store.migrate().await.unwrap();
    let mut ids = VecDeque::with_capacity(args.tickets);
    for i in 0..args.tickets {
        let ticket = NewTicket {
            customer_id: format!("cust_{}", i % 50),
            subject: format!("Charged twice ({i})"),
            body: "My card was charged twice for order ORD-55812 this morning; please fix it.".into(),
            ..Default::default()
        };
        ids.push_back(store.create(ticket).await.unwrap().0.id);
    }
    let queue = Arc::new(Mutex::new(ids));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(args.tickets)));
    let bar = ProgressBar::new(args.tickets as u64).with_style(
        ProgressStyle::with_template("  concurrency {msg:>3} [{bar:40}] {pos}/{len} {per_sec}")
            .unwrap()
            .progress_chars("=> "),
    );
    bar.set_message(concurrency.to_string());
    // Backends report their statistics when they exit: close the pool that created the
    // tickets, and count commits from a clean slate.
    pg.pool().close().await;
    drop((store, pg));
    let pg = connect().await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let processor = Processor::new(
        store.clone(),
        Workflow::new(
            Arc::new(ticketflow_core::OfflineEngine),
            Arc::new(ticketflow_core::KnowledgeBase::bundled().unwrap()),
            Some(store.clone()),
        ),
        ProcessorConfig {
            worker_id: "bench".into(),
            ..ProcessorConfig::default()
        },
    );
    let before = commits(admin, &database).await;
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (queue, latencies, processor, bar) = (queue.clone(), latencies.clone(), processor.clone(), bar.clone());
            tokio::spawn(async move {
                loop {
                    let Some(id) = queue.lock().unwrap().pop_front() else {
                        return;
                    };
                    let t = Instant::now();
                    let outcome = processor.process(&TicketMessage::new(id)).await.expect("processed");
                    assert_eq!(outcome, Processed::Completed);
                    latencies.lock().unwrap().push(t.elapsed());
                    bar.inc(1);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed();
    bar.finish();
    pg.pool().close().await;
    drop((processor, store, pg));
    let after = commits(admin, &database).await;
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await;
    json!({
        "concurrency": concurrency,
        "tickets": args.tickets,
        "seconds": elapsed.as_secs_f64(),
        "tickets_per_second": args.tickets as f64 / elapsed.as_secs_f64(),
        "transactions_per_ticket": (after - before) as f64 / args.tickets as f64,
        "p50_ms": percentile(&latencies, 0.50),
        "p99_ms": percentile(&latencies, 0.99),
    })
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; test runners (nextest, `cargo test --benches`) do not:
    // they only check that the target builds and runs, like criterion's own targets.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let args = args();
    let admin =
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    println!(
        "durable workflow: {} tickets per run, {} run(s) per concurrency, offline engine, PostgreSQL checkpoint \
         after every step (group commit: up to {} per transaction)",
        args.tickets, args.repeat, args.batch
    );
    let mut rows = Vec::new();
    for &concurrency in &args.concurrency {
        let mut runs = Vec::new();
        for _ in 0..args.repeat {
            runs.push(run(&args, &admin, concurrency).await);
        }
        // The median run by throughput stands for the concurrency; all runs are kept.
        let mut order: Vec<usize> = (0..runs.len()).collect();
        let rate = |run: &serde_json::Value| run["tickets_per_second"].as_f64().unwrap_or(0.0);
        order.sort_by(|&a, &b| rate(&runs[a]).total_cmp(&rate(&runs[b])));
        let mut row = runs[order[order.len() / 2]].clone();
        row["all_tickets_per_second"] = json!(runs.iter().map(|r| r["tickets_per_second"].clone()).collect::<Vec<_>>());
        rows.push(row);
    }
    println!("\n| concurrency | tickets/s (median) | all runs | transactions/ticket | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let all: Vec<String> = r["all_tickets_per_second"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| format!("{:.0}", v.as_f64().unwrap()))
            .collect();
        println!(
            "| {} | {:.0} | {} | {:.1} | {:.1} | {:.1} |",
            r["concurrency"],
            r["tickets_per_second"].as_f64().unwrap(),
            all.join(", "),
            r["transactions_per_ticket"].as_f64().unwrap(),
            r["p50_ms"].as_f64().unwrap(),
            r["p99_ms"].as_f64().unwrap()
        );
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("durable.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json!({
            "benchmark": "durable",
            "checkpoint_batch": args.batch,
            "checkpoint_batch_bytes": args.batch_bytes,
            "checkpoint_writers": args.writers,
            "runs": rows,
        }))
        .unwrap(),
    )
    .unwrap();
    println!("\nJSON: {}", path.display());
}
