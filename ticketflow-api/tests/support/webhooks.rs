//! A webhook receiver on loopback whose signature check is the Standard Webhooks reference
//! implementation (`standardwebhooks` from PyPI, run by `webhook_receiver.py`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// A test secret (the spec's example key).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn python() -> PathBuf {
    if let Ok(python) = std::env::var("TICKETFLOW_WEBHOOK_PYTHON") {
        return python.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tools/webhooks/bin/python");
    assert!(
        venv.exists(),
        "no standardwebhooks at {}: run scripts/test, which installs it (or set TICKETFLOW_WEBHOOK_PYTHON)",
        venv.display()
    );
    venv
}

/// The receiver: not running until [`start`](Self::start).
pub struct Receiver {
    /// Its port on 127.0.0.1.
    pub port: u16,
    out: PathBuf,
    child: Option<std::process::Child>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.out);
    }
}

impl Receiver {
    /// A receiver on a free port, not started yet.
    pub fn new() -> Self {
        Self {
            port: super::free_port(),
            out: std::env::temp_dir().join(format!("tf_test_webhooks_{}.jsonl", uuid::Uuid::now_v7().simple())),
            child: None,
        }
    }

    /// Its URL, for `WEBHOOK_URLS`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    /// Starts answering: `answers` (`500`, `302`, `slow`, `big`) for the first requests, then
    /// 204 for every request the reference implementation verifies.
    pub async fn start(&mut self, answers: &[&str]) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/webhook_receiver.py");
        let child = std::process::Command::new(python())
            .arg(script)
            .arg(self.port.to_string())
            .arg(SECRET)
            .arg(&self.out)
            .arg(answers.join(","))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start the webhook receiver");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the webhook receiver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// Waits (60 s at most) until `count` requests were accepted (answered 2xx).
    pub async fn wait_for_accepted(&self, count: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let accepted: Vec<Value> = self
                .requests()
                .into_iter()
                .filter(|r| r["answer"] == "204" || r["answer"] == "big")
                .collect();
            if accepted.len() >= count {
                return accepted;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {count} webhooks accepted: {:?}",
                accepted.len(),
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
