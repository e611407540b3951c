//! Test databases for the API's tests.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sqlx::Connection;

/// Creates a PostgreSQL database of the test's own and returns its URL.
pub async fn fresh_postgres() -> String {
    let admin =
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is not reachable at {admin} ({e}); start it (see .ci/run)"));
    let name = format!("tf_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (base, _) = admin.rsplit_once('/').expect("URL has a database part");
    format!("{base}/{name}")
}

/// A spawned binary, killed when dropped.
pub struct Running {
    pub child: Child,
    pub base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "did not exit within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn worker_binary() -> std::path::PathBuf {
    let api = std::path::PathBuf::from(env!("CARGO_BIN_EXE_ticketflow-api"));
    let worker = api.with_file_name("ticketflow-worker");
    assert!(
        worker.exists(),
        "{} is missing: run the tests for the whole workspace (scripts/test) or `cargo build -p ticketflow-worker`",
        worker.display()
    );
    worker
}

/// Starts the API binary on a free port (`BIND_ADDR` is added to `env`) and waits until it
/// is healthy.
pub async fn spawn_api(env: &[(&str, String)]) -> Running {
    let port = free_port();
    let mut env = env.to_vec();
    env.push(("BIND_ADDR", format!("127.0.0.1:{port}")));
    spawn(std::path::Path::new(env!("CARGO_BIN_EXE_ticketflow-api")), &env, port).await
}

pub async fn spawn(binary: &std::path::Path, env: &[(&str, String)], health_port: u16) -> Running {
    spawn_logging(binary, env, health_port, None).await
}

/// Like [`spawn`], with the process's output appended to `log` when given.
pub async fn spawn_logging(
    binary: &std::path::Path,
    env: &[(&str, String)],
    health_port: u16,
    log: Option<&std::path::Path>,
) -> Running {
    let output = || match log {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("open log file"),
        ),
        None => Stdio::null(),
    };
    let mut command = Command::new(binary);
    command
        .env_remove("OPENAI_API_KEY")
        .env_remove("RABBITMQ_URL")
        .env_remove("API_KEYS")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(output())
        .stderr(output());
    for (key, value) in env {
        command.env(key, value);
    }
    let running = Running {
        child: command.spawn().expect("spawn binary"),
        base: format!("http://127.0.0.1:{health_port}"),
    };
    let client = client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(format!("{}/health", running.base)).send().await
            && response.status().is_success()
        {
            return running;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} did not become healthy",
            binary.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// GETs `url` and parses the JSON answer.
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// Polls a ticket until it has status `wanted` (45 s at most) and returns it.
pub async fn wait_for_status(client: &reqwest::Client, base: &str, id: &str, wanted: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        let ticket = get_json(client, &format!("{base}/tickets/{id}")).await;
        if ticket["status"] == wanted {
            return ticket;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ticket {id} never reached {wanted}: {ticket}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn temp_sqlite() -> String {
    let path = std::env::temp_dir().join(format!("tf_test_{}.db", uuid::Uuid::new_v4().simple()));
    format!("sqlite://{}", path.display())
}
