//! Benchmark: ticket search (`GET /tickets?q=`, i.e. `TicketStore::list` with `q`) over
//! 100,000 tickets, on PostgreSQL (full-text, GIN expression index) and on SQLite (FTS5).
//! Reports p50/p99/max per kind of query; the goal is p99 < 50 ms.
//!
//! ```text
//! cargo bench -p benches --bench search                    # 100,000 tickets, 200 queries of each kind
//! cargo bench -p benches --bench search -- --tickets 20000 --queries 50
//! ```
//!
//! Writes `target/bench-results/search.json`. Needs the PostgreSQL of `TEST_POSTGRES_URL`
//! (default postgres://postgres@127.0.0.1:5432/postgres); each run uses a fresh database and
//! a fresh SQLite file. The tickets are written in bulk by SQL (the stores' own insert path
//! is measured by the other benchmarks); SQLite's triggers index them as they are written.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Connection;
use ticketflow_core::store::{ListQuery, PgOptions, PgStore, SqliteStore, Store, TicketStatus};

const WORDS: [&str; 24] = [
    "refund",
    "charged",
    "twice",
    "order",
    "shipping",
    "parcel",
    "login",
    "password",
    "invoice",
    "subscription",
    "headphones",
    "monitor",
    "camera",
    "broken",
    "delayed",
    "address",
    "warranty",
    "discount",
    "export",
    "crash",
    "account",
    "billing",
    "tracking",
    "exchange",
];

struct Args {
    tickets: usize,
    queries: usize,
}

fn args() -> Args {
    let mut args = Args {
        tickets: 100_000,
        queries: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value: Option<usize> = it.next().and_then(|v| v.parse().ok());
        match flag.as_str() {
            "--tickets" => args.tickets = value.unwrap_or(args.tickets),
            "--queries" => args.queries = value.unwrap_or(args.queries),
            _ => {}
        }
    }
    args
}

/// The queries timed, by kind: a common word, a rare pair, a customer, a word with a status.
fn queries(n: usize) -> Vec<(&'static str, ListQuery)> {
    let mut all = Vec::new();
    for i in 0..n {
        let word = WORDS[i % WORDS.len()];
        let other = WORDS[(i * 7 + 3) % WORDS.len()];
        all.push(("one common word", search(word, None)));
        all.push(("two words", search(&format!("{word} {other}"), None)));
        all.push((
            "customer",
            search(&format!("customer{}@example.com", i * 37 % 5000), None),
        ));
        all.push(("word + status", search(word, Some(TicketStatus::Completed))));
    }
    all
}

fn search(q: &str, status: Option<TicketStatus>) -> ListQuery {
    ListQuery {
        q: Some(q.to_owned()),
        status,
        ..ListQuery::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

async fn measure(name: &str, store: &dyn Store, args: &Args) -> serde_json::Value {
    // One pass to warm caches, then the timed one.
    for (_, query) in queries(10) {
        store.list(&query).await.unwrap();
    }
    let mut by_kind: Vec<(&str, Vec<Duration>)> = Vec::new();
    for (kind, query) in queries(args.queries) {
        let started = Instant::now();
        let page = store.list(&query).await.unwrap();
        let took = started.elapsed();
        assert!(page.tickets.len() <= 20);
        match by_kind.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, times)) => times.push(took),
            None => by_kind.push((kind, vec![took])),
        }
    }
    let mut report = serde_json::Map::new();
    for (kind, mut times) in by_kind {
        times.sort();
        let (p50, p99, max) = (
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            percentile(&times, 1.0),
        );
        println!("{name:>10} {kind:<16} p50 {p50:7.2} ms  p99 {p99:7.2} ms  max {max:7.2} ms");
        report.insert(
            kind.into(),
            serde_json::json!({ "p50_ms": p50, "p99_ms": p99, "max_ms": max }),
        );
    }
    serde_json::Value::Object(report)
}

async fn postgres(args: &Args) -> serde_json::Value {
    let admin =
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let base = admin.rsplit_once('/').expect("URL with a database").0.to_owned();
    let database = format!("tf_bench_search_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is not reachable at {admin}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let store = PgStore::connect(&format!("{base}/{database}"), PgOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let words = WORDS.map(|w| format!("'{w}'")).join(", ");
    let started = Instant::now();
    let mut db = sqlx::PgConnection::connect(&format!("{base}/{database}"))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH w AS (SELECT ARRAY[{words}] AS a) \
         INSERT INTO ticketflow.tickets (id, customer_id, subject, body, status, result, content_hash, created_at) \
         SELECT gen_random_uuid(), 'customer' || (i % 5000) || '@example.com', \
             initcap(a[1 + i % 24]) || ' ' || a[1 + (i / 24) % 24] || ' ' || i, \
             'My ' || a[1 + (i / 7) % 24] || ' is ' || a[1 + (i / 3) % 24] || ', order ORD-' || (10000 + i) \
                 || '. Please help with the ' || a[1 + (i / 11) % 24] || '.', \
             CASE WHEN i % 3 = 0 THEN 'completed' ELSE 'pending' END, \
             CASE WHEN i % 3 = 0 THEN jsonb_build_object('final_response', \
                 'We sorted out your ' || a[1 + (i / 13) % 24] || ' today.') END, \
             gen_random_uuid(), now() - make_interval(secs => i) \
         FROM w, generate_series(1, {}) AS i",
        args.tickets
    )))
    .execute(&mut db)
    .await
    .unwrap();
    // Every table: the words are in `ticket_search` (filled by a trigger), whose statistics
    // decide the plan as much as the tickets'.
    sqlx::query("ANALYZE").execute(&mut db).await.unwrap();
    println!(
        "PostgreSQL: {} tickets written and indexed in {:.1} s",
        args.tickets,
        started.elapsed().as_secs_f64()
    );
    let store: Arc<dyn Store> = Arc::new(store);
    let report = measure("PostgreSQL", store.as_ref(), args).await;
    drop(store);
    drop(db);
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {database} WITH (FORCE)")))
        .execute(&mut conn)
        .await;
    report
}

async fn sqlite(args: &Args) -> serde_json::Value {
    let path = std::env::temp_dir().join(format!("tf_bench_search_{}.db", uuid::Uuid::now_v7().simple()));
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let started = Instant::now();
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let words = WORDS.map(|w| format!("('{w}')")).join(", ");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {tickets}), \
             w(k, word) AS (SELECT row_number() OVER () - 1, column1 FROM (VALUES {words})) \
         INSERT INTO tickets (id, customer_id, subject, body, status, result, content_hash, created_at, updated_at) \
         SELECT lower(hex(randomblob(16))), 'customer' || (i % 5000) || '@example.com', \
             (SELECT word FROM w WHERE k = i % 24) || ' ' || (SELECT word FROM w WHERE k = (i / 24) % 24) || ' ' || i, \
             'My ' || (SELECT word FROM w WHERE k = (i / 7) % 24) || ' is ' || (SELECT word FROM w WHERE k = (i / 3) % 24) \
                 || ', order ORD-' || (10000 + i) || '. Please help with the ' \
                 || (SELECT word FROM w WHERE k = (i / 11) % 24) || '.', \
             CASE WHEN i % 3 = 0 THEN 'completed' ELSE 'pending' END, \
             CASE WHEN i % 3 = 0 THEN json_object('final_response', \
                 'We sorted out your ' || (SELECT word FROM w WHERE k = (i / 13) % 24) || ' today.') END, \
             lower(hex(randomblob(16))), \
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || i || ' seconds'), \
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || i || ' seconds') \
         FROM n",
        tickets = args.tickets
    )))
    .execute(&mut db)
    .await
    .unwrap();
    sqlx::query("ANALYZE").execute(&mut db).await.unwrap();
    println!(
        "SQLite: {} tickets written and indexed in {:.1} s",
        args.tickets,
        started.elapsed().as_secs_f64()
    );
    let report = measure("SQLite", &store, args).await;
    drop(db);
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    report
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --all-targets` builds benches too; only `cargo bench` runs them.
    }
    let args = args();
    let pg = postgres(&args).await;
    let lite = sqlite(&args).await;
    let report = serde_json::json!({
        "tickets": args.tickets,
        "queries_per_kind": args.queries,
        "postgres": pg,
        "sqlite": lite,
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("search.json"), serde_json::to_string_pretty(&report).unwrap()).unwrap();
}
