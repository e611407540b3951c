//! `ticketflow-api migrate` applies both migration sets to empty databases, and a second run
//! is a no-op; `ticketflow-api demo-data` loads the demo records once, on both; the embedded
//! default loads them into an empty database by itself, and distributed mode never does.

use std::process::Command;

use sqlx::Connection;

mod support;

fn migrate(database_url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ticketflow-api"))
        .arg("migrate")
        .env("DATABASE_URL", database_url)
        .output()
        .expect("run ticketflow-api")
}

fn demo_data(database_url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ticketflow-api"))
        .arg("demo-data")
        .env("DATABASE_URL", database_url)
        .output()
        .expect("run ticketflow-api")
}

fn assert_ok(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "migrate failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn migrates_an_empty_postgres_database() {
    let url = support::fresh_postgres().await;
    assert_ok(&migrate(&url));
    assert_ok(&migrate(&url));

    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'ticketflow' ORDER BY 1",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "api_keys",
            "approval_requests",
            "audit_log",
            "bug_reports",
            "customers",
            "escalations",
            "order_items",
            "orders",
            "outbox",
            "password_resets",
            "products",
            "refunds",
            "sessions",
            "ticket_events",
            "ticket_messages",
            "tickets",
            "tool_calls",
            "users",
            "webhook_deliveries",
            "webhook_endpoints",
            "webhook_tokens",
            "workflow_checkpoints"
        ]
    );
    let public: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(
        public, 0,
        "nothing lands in the public schema (Supabase exposes it over REST)"
    );
    let rls: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'ticketflow' AND c.relkind = 'r' AND c.relrowsecurity",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    let ours = tables.len() as i64 - 1; // all but sqlx's own
    assert_eq!(rls, ours, "row-level security is on for every ticketflow table");
}

#[test]
fn migrates_an_empty_sqlite_file() {
    let path = std::env::temp_dir().join(format!("tf_test_{}.db", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite://{}", path.display());
    assert_ok(&migrate(&url));
    assert_ok(&migrate(&url));
    assert!(path.exists());
}

#[test]
fn a_bad_database_url_fails_with_one_clear_line() {
    let output = migrate("mysql://nope");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

async fn demo_data_loads_once(url: &str) {
    let first = demo_data(url);
    assert_ok(&first);
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(said.contains("5 customers, 10 products, 6 orders"), "{said}");
    let second = demo_data(url);
    assert_ok(&second);
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(
        said.contains("0 customers, 0 products, 0 orders"),
        "twice is once: {said}"
    );
    let store = ticketflow_core::store::connect(url, &Default::default()).await.unwrap();
    let order = store.order("ord_12345").await.unwrap().expect("the demo order");
    assert_eq!(order.customer_id, "cust_john_doe");
    assert_eq!(store.customer_orders("cust_john_doe", 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn demo_data_loads_once_on_postgres() {
    demo_data_loads_once(&support::fresh_postgres().await).await;
}

#[tokio::test]
async fn demo_data_loads_once_on_sqlite() {
    demo_data_loads_once(&support::temp_sqlite()).await;
}

#[tokio::test]
async fn the_embedded_default_loads_the_demo_data_into_an_empty_database_and_distributed_mode_does_not() {
    let customers = |url: String| async move {
        let store = ticketflow_core::store::connect(&url, &Default::default())
            .await
            .unwrap();
        store.customer("cust_jane_smith").await.unwrap().is_some()
    };
    let embedded = support::temp_sqlite();
    let api = support::spawn_api(&[("DATABASE_URL", embedded.clone())]).await;
    assert!(api.terminate().success());
    assert!(customers(embedded).await, "loaded at start-up");
    let turned_off = support::temp_sqlite();
    let api = support::spawn_api(&[("DATABASE_URL", turned_off.clone()), ("DEMO_DATA", "false".into())]).await;
    assert!(api.terminate().success());
    assert!(!customers(turned_off).await, "DEMO_DATA=false");
    let distributed = support::fresh_postgres().await;
    let api = support::spawn_api(&[
        ("DATABASE_URL", distributed.clone()),
        ("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        ("QUEUE_NAME", format!("tf_test_{}", uuid::Uuid::new_v4().simple())),
    ])
    .await;
    assert!(api.terminate().success());
    assert!(
        !customers(distributed).await,
        "distributed mode never loads them by itself"
    );
}

/// A temporary folder holding the migrations of `set` (`postgres` or `sqlite`) before
/// conversations existed: those up to `last`.
fn migrations_before_conversations(set: &str, last: &str) -> std::path::PathBuf {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(set);
    let folder = std::env::temp_dir().join(format!("ticketflow-old-migrations-{set}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&folder).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.as_str() <= last {
            std::fs::copy(&path, folder.join(&name)).unwrap();
        }
    }
    folder
}

const OLD_TICKET: &str = "INSERT INTO tickets (id, customer_id, subject, body, channel, metadata, content_hash, \
    created_at, updated_at, status) VALUES ('0191f2a4-0000-7000-8000-000000000001', 'cust_john_doe', 'Old subject', \
    'Old body', 'api', '{}', '0191f2a4-0000-7000-8000-000000000002', '2026-01-01T00:00:00Z', \
    '2026-01-01T00:00:00Z', 'completed')";

#[tokio::test]
async fn tickets_from_before_conversations_get_their_first_message_on_sqlite() {
    let url = support::temp_sqlite();
    let options: sqlx::sqlite::SqliteConnectOptions = url
        .parse::<sqlx::sqlite::SqliteConnectOptions>()
        .unwrap()
        .create_if_missing(true);
    let mut db = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    let old = sqlx::migrate::Migrator::new(migrations_before_conversations("sqlite", "0005_approvals.sql"))
        .await
        .unwrap();
    old.run(&mut db).await.unwrap();
    sqlx::query(OLD_TICKET).execute(&mut db).await.unwrap();
    drop(db);
    assert_ok(&migrate(&url));
    let mut db = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    let (turn, text, message_id): (i64, String, String) =
        sqlx::query_as("SELECT turn, text, message_id FROM ticket_messages WHERE direction = 'inbound'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!((turn, text.as_str()), (1, "Old body"));
    assert_eq!(message_id, "<0191f2a4-0000-7000-8000-000000000001@ticketflow>");
    let ticket_turn: i64 = sqlx::query_scalar("SELECT turn FROM tickets")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(ticket_turn, 1);
}

#[tokio::test]
async fn tickets_from_before_conversations_get_their_first_message_on_postgres() {
    let url = support::fresh_postgres().await;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE SCHEMA ticketflow; SET search_path TO ticketflow")
        .execute(&mut db)
        .await
        .unwrap();
    let old = sqlx::migrate::Migrator::new(migrations_before_conversations("postgres", "0007_approvals.sql"))
        .await
        .unwrap();
    old.run(&mut db).await.unwrap();
    sqlx::query(OLD_TICKET).execute(&mut db).await.unwrap();
    drop(db);
    assert_ok(&migrate(&url));
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let rows: Vec<(i32, String, String)> =
        sqlx::query_as("SELECT turn, text, message_id FROM ticketflow.ticket_messages WHERE direction = 'inbound'")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [(
            1,
            "Old body".to_owned(),
            "<0191f2a4-0000-7000-8000-000000000001@ticketflow>".to_owned()
        )]
    );
}
