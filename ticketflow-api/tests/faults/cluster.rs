//! A whole distributed deployment for one scenario: the real `ticketflow-api` and
//! `ticketflow-worker` binaries on a database and a queue of their own, and a loopback LLM
//! that speaks the chat-completions protocol and counts calls per step.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use ticketflow_core::testing::FakeLlm;
use uuid::Uuid;

use crate::support::{Running, client, fresh_postgres, spawn_logging, worker_binary};

/// How a scenario's processes are configured.
#[derive(Clone)]
pub struct Options {
    /// Worker processes started with the cluster.
    pub workers: usize,
    /// Each worker's `PREFETCH_COUNT`.
    pub prefetch: usize,
    /// Short leases, so a crashed worker's tickets come back quickly.
    pub lease_seconds: u64,
    pub max_retries: u32,
    /// One LLM HTTP attempt's limit.
    pub llm_timeout_seconds: f64,
    /// The fake model's answer time.
    pub llm_latency: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 1,
            prefetch: 4,
            lease_seconds: 2,
            max_retries: 3,
            llm_timeout_seconds: 2.0,
            llm_latency: Duration::from_millis(20),
        }
    }
}

/// What a stream of submissions got back.
#[derive(Debug, Default)]
pub struct Submitted {
    /// Tickets the API accepted (201 or 200), in order.
    pub accepted: Vec<Uuid>,
    /// Status codes of refusals (e.g. 503 while the database is down), with how long each took.
    pub refused: Vec<(u16, Duration)>,
    /// Requests that got no answer at all (connection refused or cut).
    pub unanswered: usize,
}

pub struct Cluster {
    pub name: String,
    pub database_url: String,
    pub db: PgPool,
    pub queue_name: String,
    pub rabbitmq_url: String,
    pub llm: FakeLlm,
    pub api: Option<Running>,
    pub api_port: u16,
    workers: Vec<Option<Running>>,
    worker_ids: Vec<String>,
    restarts: usize,
    pub options: Options,
    pub log: PathBuf,
    pub http: reqwest::Client,
}

/// `target/reliability`, beside the binaries' `debug/`.
pub fn output_dir() -> PathBuf {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_ticketflow-api"));
    let dir = binary
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("reliability"))
        .expect("the binary lives in target/<profile>/");
    std::fs::create_dir_all(&dir).expect("create target/reliability");
    dir
}

static SUBMISSIONS: AtomicU64 = AtomicU64::new(0);

/// A distinct, realistic ticket body; `n` makes it unique.
pub fn ticket(n: u64) -> Value {
    json!({
        "customer_id": format!("cust_{}", n % 17),
        "subject": format!("Charged twice ({n})"),
        "body": format!("My card was charged twice for order ORD-{}. Please fix it.", 10_000 + n),
    })
}

impl Cluster {
    /// Starts the API and `options.workers` workers; returns once all are healthy.
    pub async fn start(name: &str, options: Options) -> Self {
        let database_url = fresh_postgres().await;
        // The services keep their tables in the `ticketflow` schema.
        let connect = database_url
            .parse::<PgConnectOptions>()
            .expect("a PostgreSQL URL")
            .options([("search_path", "ticketflow")]);
        let db = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(connect);
        let llm = FakeLlm::start().await;
        llm.set_latency(options.llm_latency);
        let log = output_dir().join(format!("{name}.log"));
        let _ = std::fs::remove_file(&log);
        let mut cluster = Self {
            name: name.to_owned(),
            database_url,
            db,
            queue_name: format!("tf_test_{}", Uuid::new_v4().simple()),
            rabbitmq_url: std::env::var("TEST_RABBITMQ_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
            llm,
            api: None,
            api_port: crate::support::free_port(),
            workers: Vec::new(),
            worker_ids: Vec::new(),
            restarts: 0,
            options: options.clone(),
            log,
            http: client(),
        };
        cluster.start_api().await;
        for _ in 0..options.workers {
            cluster.workers.push(None);
            cluster.worker_ids.push(String::new());
        }
        for slot in 0..options.workers {
            cluster.start_worker(slot).await;
        }
        cluster
    }

    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    fn shared_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.database_url.clone()),
            ("RABBITMQ_URL", self.rabbitmq_url.clone()),
            ("QUEUE_NAME", self.queue_name.clone()),
            ("SWEEP_INTERVAL_SECONDS", "1".into()),
            ("LOG_FORMAT", "json".into()),
        ]
    }

    pub async fn start_api(&mut self) {
        let mut env = self.shared_env();
        env.push(("BIND_ADDR", format!("127.0.0.1:{}", self.api_port)));
        let api = spawn_logging(
            Path::new(env!("CARGO_BIN_EXE_ticketflow-api")),
            &env,
            self.api_port,
            Some(&self.log),
        )
        .await;
        self.api = Some(api);
    }

    /// Starts (or restarts) the worker in `slot` under a fresh worker id.
    pub async fn start_worker(&mut self, slot: usize) {
        self.restarts += 1;
        let id = format!("{}-w{slot}-{}", self.name, self.restarts);
        let port = crate::support::free_port();
        let mut env = self.shared_env();
        env.extend([
            ("WORKER_BIND_ADDR", format!("127.0.0.1:{port}")),
            ("WORKER_ID", id.clone()),
            ("PREFETCH_COUNT", self.options.prefetch.to_string()),
            ("LEASE_SECONDS", self.options.lease_seconds.to_string()),
            ("MAX_RETRIES", self.options.max_retries.to_string()),
            ("RETRY_BACKOFF_SECONDS", "0.3".into()),
            ("SHUTDOWN_GRACE_SECONDS", "20".into()),
            ("OPENAI_API_KEY", "sk-fault-suite".into()),
            ("OPENAI_BASE_URL", self.llm.base_url.clone()),
            ("LLM_TIMEOUT_SECONDS", self.options.llm_timeout_seconds.to_string()),
        ]);
        let worker = spawn_logging(&worker_binary(), &env, port, Some(&self.log)).await;
        self.workers[slot] = Some(worker);
        self.worker_ids[slot] = id;
    }

    /// SIGKILLs the worker in `slot`; returns how many tickets it held at that moment.
    pub async fn kill_worker(&mut self, slot: usize) -> i64 {
        if let Some(mut worker) = self.workers[slot].take() {
            worker.child.kill().expect("SIGKILL the worker");
            worker.child.wait().expect("reap the worker");
        }
        sqlx::query_scalar("SELECT count(*) FROM tickets WHERE status = 'processing' AND worker_id = $1")
            .bind(&self.worker_ids[slot])
            .fetch_one(&self.db)
            .await
            .expect("count the killed worker's tickets")
    }

    /// SIGTERMs the worker in `slot` and waits for it to exit; true when it exited cleanly.
    pub fn terminate_worker(&mut self, slot: usize) -> bool {
        self.workers[slot]
            .take()
            .map(|worker| worker.terminate().success())
            .unwrap_or(false)
    }

    /// SIGTERMs the API; true when it exited cleanly.
    pub fn terminate_api(&mut self) -> bool {
        self.api.take().map(|api| api.terminate().success()).unwrap_or(false)
    }

    /// The process id of the worker in `slot`, if it runs.
    pub fn worker_pid(&self, slot: usize) -> Option<u32> {
        self.workers[slot].as_ref().map(|w| w.child.id())
    }

    /// A client for the API that can run beside faults injected through `&mut self`.
    pub fn submitter(&self) -> Submitter {
        Submitter {
            http: self.http.clone(),
            base: self.api_base(),
        }
    }

    /// Waits until every ticket in `ids` is completed or failed_permanent, panicking with the
    /// counts and the log's path after `limit`. Returns when it happened.
    pub async fn wait_settled(&self, ids: &[Uuid], limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        loop {
            let settled: Result<i64, _> = sqlx::query_scalar(
                "SELECT count(*) FROM tickets WHERE id = ANY($1) AND status IN ('completed', 'failed_permanent')",
            )
            .bind(ids)
            .fetch_one(&self.db)
            .await;
            if matches!(settled, Ok(n) if n as usize == ids.len()) {
                return Instant::now();
            }
            if Instant::now() > deadline {
                let counts: Vec<(String, i64)> =
                    sqlx::query_as("SELECT status, count(*) FROM tickets WHERE id = ANY($1) GROUP BY status")
                        .bind(ids)
                        .fetch_all(&self.db)
                        .await
                        .unwrap_or_default();
                panic!(
                    "{}: {} tickets not settled after {limit:?}: {counts:?}; logs in {}",
                    self.name,
                    ids.len(),
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every ticket in the database (the source of truth, whatever the clients were told).
    pub async fn all_ticket_ids(&self) -> Vec<Uuid> {
        sqlx::query_scalar("SELECT id FROM tickets")
            .fetch_all(&self.db)
            .await
            .expect("list tickets")
    }
}

/// Submits tickets over HTTP.
#[derive(Clone)]
pub struct Submitter {
    http: reqwest::Client,
    base: String,
}

impl Submitter {
    /// POSTs one ticket. `Ok(id)` when accepted; `Err(Some(status))` when refused,
    /// `Err(None)` when no answer came.
    pub async fn post(&self, body: &Value) -> Result<Uuid, Option<u16>> {
        let response = self
            .http
            .post(format!("{}/tickets", self.base))
            .header(
                "X-Request-ID",
                format!("fault-{}", SUBMISSIONS.fetch_add(1, Ordering::Relaxed)),
            )
            .json(body)
            .send()
            .await
            .map_err(|_| None)?;
        let status = response.status().as_u16();
        if status != 200 && status != 201 {
            return Err(Some(status));
        }
        let created: Value = response.json().await.map_err(|_| None)?;
        created["ticket_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .ok_or(Some(status))
    }

    /// Offers `count` distinct tickets at `per_second`, numbered from `first`, each request on
    /// its own task (an open loop: a slow answer does not slow the offer).
    pub fn stream(&self, first: u64, count: u64, per_second: f64) -> SubmitStream {
        let submitter = self.clone();
        let task = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut requests = Vec::new();
            for n in first..first + count {
                let due = started + Duration::from_secs_f64((n - first) as f64 / per_second);
                tokio::time::sleep_until(due).await;
                let submitter = submitter.clone();
                requests.push(tokio::spawn(async move {
                    let sent = Instant::now();
                    (submitter.post(&ticket(n)).await, sent.elapsed())
                }));
            }
            let mut submitted = Submitted::default();
            for request in requests {
                match request.await.expect("submission task") {
                    (Ok(id), _) => submitted.accepted.push(id),
                    (Err(Some(status)), took) => submitted.refused.push((status, took)),
                    (Err(None), _) => submitted.unanswered += 1,
                }
            }
            submitted
        });
        SubmitStream(task)
    }
}

/// A running [`Submitter::stream`].
pub struct SubmitStream(tokio::task::JoinHandle<Submitted>);

impl SubmitStream {
    pub async fn finish(self) -> Submitted {
        self.0.await.expect("submission stream")
    }
}

/// Resident memory of a process in MiB, from /proc.
pub fn resident_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
