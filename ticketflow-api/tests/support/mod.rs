//! The API's test helpers: the binaries spawned and waited for, a PgBouncer, and (in `app`)
//! the API in-process. Test databases come from `ticketflow_core::testing::database`.
#![allow(dead_code)]

pub mod app;
pub mod desk;
pub mod smtp;
pub mod sse;
pub mod webhooks;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Creates a PostgreSQL database of the test's own and returns its URL.
pub async fn fresh_postgres() -> String {
    ticketflow_core::testing::database::fresh_postgres_url().await
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
    ticketflow_core::testing::database::fresh_sqlite_url()
}

/// A PgBouncer in transaction mode in front of the test PostgreSQL server, as Supabase's
/// transaction pooler behaves: no session state, startup `options` ignored. Killed when
/// dropped.
pub struct PgBouncer {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    _dir: TempDir,
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl PgBouncer {
    /// Starts Debian's `pgbouncer` (`apt-get install pgbouncer`; .ci/run installs it) on a free
    /// port and waits until it accepts connections.
    pub async fn start() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tf_test_pgbouncer_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // PgBouncer refuses to run as root; started as root it switches to `postgres`, which
        // must read its files.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = free_port();
        let ini = dir.join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port=5432\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nauth_type = trust\nauth_file = {dir}/users.txt\npool_mode = transaction\n\
                 ignore_startup_parameters = extra_float_digits,options\nunix_socket_dir =\n\
                 max_client_conn = 1000\ndefault_pool_size = 10\nlogfile = {dir}/pgbouncer.log\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("users.txt"), "\"postgres\" \"\"\n\"root\" \"\"\n").unwrap();
        for file in ["pgbouncer.ini", "users.txt"] {
            std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let mut command = Command::new("pgbouncer");
        if root {
            command.args(["-u", "postgres"]);
        }
        let child = command
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start pgbouncer ({e}): install it with `apt-get install pgbouncer`"));
        let bouncer = Self {
            child,
            port,
            _dir: TempDir(dir),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(tokio::time::Instant::now() < deadline, "pgbouncer did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bouncer
    }

    /// `database_url` (a direct URL of the test server) through this pooler, marked so that
    /// ticketflow knows it is one.
    pub fn url_for(&self, database_url: &str) -> String {
        let (_, database) = database_url.rsplit_once('/').expect("URL has a database part");
        format!("postgres://postgres@127.0.0.1:{}/{database}?pgbouncer=true", self.port)
    }
}
