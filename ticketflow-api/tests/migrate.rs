//! `ticketflow-api migrate` applies both migration sets to empty databases, and a second run
//! is a no-op.

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
            "outbox",
            "ticket_events",
            "tickets",
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
    assert_eq!(rls, 4, "row-level security is on for every ticketflow table");
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
