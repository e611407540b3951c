//! The binaries in distributed mode: the API and workers on a fresh PostgreSQL database and
//! RabbitMQ queue of the test's own, with the demo records.

use serde_json::{Value, json};
use sqlx::Connection;

use super::{Running, client, free_port, fresh_postgres, get_json, spawn, wait_for_status, worker_binary};

/// The API and its database, queue and settings, and a way to start workers beside it.
pub struct Desk {
    pub api: Running,
    pub database_url: String,
    shared: Vec<(&'static str, String)>,
    pub http: reqwest::Client,
}

impl Desk {
    /// Distributed mode on a fresh database and queue with the demo records; `env` goes to
    /// both binaries.
    pub async fn start(env: &[(&'static str, String)]) -> Self {
        let database_url = fresh_postgres().await;
        let rabbitmq_url =
            std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        let mut shared = vec![
            ("DATABASE_URL", database_url.clone()),
            ("RABBITMQ_URL", rabbitmq_url),
            ("QUEUE_NAME", format!("tf_test_{}", uuid::Uuid::new_v4().simple())),
            ("LEASE_SECONDS", "2".into()),
            ("SWEEP_INTERVAL_SECONDS", "1".into()),
        ];
        shared.extend_from_slice(env);
        let port = free_port();
        let mut api_env = shared.clone();
        api_env.push(("BIND_ADDR", format!("127.0.0.1:{port}")));
        let api_binary = std::path::Path::new(env!("CARGO_BIN_EXE_ticketflow-api"));
        let api = spawn(api_binary, &api_env, port).await;
        let loaded = std::process::Command::new(api_binary)
            .arg("demo-data")
            .env("DATABASE_URL", &database_url)
            .env_remove("RABBITMQ_URL")
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(loaded.success());
        Self {
            api,
            database_url,
            shared,
            http: client(),
        }
    }

    pub async fn worker(&self) -> Running {
        let port = free_port();
        let mut env = self.shared.clone();
        env.push(("WORKER_BIND_ADDR", format!("127.0.0.1:{port}")));
        spawn(&worker_binary(), &env, port).await
    }

    pub async fn create(&self, customer: &str, subject: &str, body: &str) -> String {
        let response = self
            .http
            .post(format!("{}/tickets", self.api.base))
            .json(&json!({ "customer_id": customer, "subject": subject, "body": body }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.unwrap();
        created["ticket_id"].as_str().unwrap().to_owned()
    }

    pub async fn wait_for(&self, id: &str, status: &str) -> Value {
        wait_for_status(&self.http, &self.api.base, id, status).await
    }

    pub async fn pending_approval(&self, id: &str) -> Value {
        let page = get_json(&self.http, &format!("{}/approvals?ticket_id={id}", self.api.base)).await;
        assert_eq!(page["total"], 1, "{page}");
        page["approvals"][0].clone()
    }

    pub async fn decide(&self, approval: &Value, body: Value) -> Value {
        let response = self
            .http
            .post(format!(
                "{}/approvals/{}/decide",
                self.api.base,
                approval["id"].as_str().unwrap()
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn sql(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.database_url).await.unwrap()
    }

    /// Refund rows of `order`.
    pub async fn refunds(&self, order: &str) -> i64 {
        let mut conn = self.sql().await;
        sqlx::query_scalar("SELECT count(*) FROM ticketflow.refunds WHERE order_id = $1")
            .bind(order)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

pub fn kill(worker: Running) {
    let mut worker = worker;
    worker.child.kill().unwrap();
    worker.child.wait().unwrap();
}
