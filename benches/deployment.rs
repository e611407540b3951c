//! Starting the release binaries under test and reading their figures, for the benchmarks
//! that drive a whole deployment (included by path: a bench target has no library to share).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds the release binaries under test (a no-op when they are fresh), so the benchmark is
/// one command. Cargo has released its lock by the time a benchmark runs.
pub fn build_release_binaries() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args([
            "build",
            "--release",
            "--bins",
            "-p",
            "ticketflow-api",
            "-p",
            "ticketflow-worker",
        ])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --release --bins failed");
}

pub fn release_binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/release")
        .join(name);
    assert!(path.exists(), "{} is missing", path.display());
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn spawn(binary: &Path, env: &[(&str, String)], log: &Path) -> Proc {
    let file = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the log")
    };
    let mut command = Command::new(binary);
    command
        .env_remove("OPENAI_API_KEY")
        .env_remove("RABBITMQ_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::from(file()))
        .stderr(Stdio::from(file()));
    for (key, value) in env {
        command.env(key, value);
    }
    Proc(command.spawn().expect("start the binary"))
}

pub async fn wait_healthy(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(response) = http.get(format!("{base}/health")).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} did not become healthy");
}

pub fn resident_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()))
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The PostgreSQL the benchmarks use (`TEST_POSTGRES_URL`).
fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A new database of the run's own; its URL.
pub async fn fresh_database() -> String {
    use sqlx::Connection;
    let admin = admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL");
    let name = format!("tf_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create the database");
    let (prefix, _) = admin.rsplit_once('/').expect("a database in the URL");
    format!("{prefix}/{name}")
}

/// Drops the run's database (what it leaves behind otherwise fills the disk).
pub async fn drop_database(url: &str) {
    use sqlx::Connection;
    if let (Ok(mut conn), Some((_, name))) = (sqlx::PgConnection::connect(&admin_url()).await, url.rsplit_once('/')) {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}
