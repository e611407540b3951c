//! A real SMTP server on loopback for the tests: aiosmtpd (PyPI), which `scripts/test`
//! installs into `target/tools/smtp`. It keeps every message it accepts, with its envelope;
//! it can be stopped and started again on the same port.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The message as sent (headers and body).
    pub raw: Vec<u8>,
    /// The envelope's recipients (`RCPT TO`).
    pub rcpt_tos: Vec<String>,
    /// The envelope's sender (`MAIL FROM`).
    pub mail_from: String,
}

impl Received {
    /// The message, parsed.
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("a message mail-parser reads")
    }

    /// The raw value of header `name` (the first one), unfolded and trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.raw);
        let head = text
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .replace("\r\n ", " ")
            .replace("\r\n\t", " ");
        head.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    }

    /// Every header name, as written.
    pub fn header_names(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.raw);
        let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
        head.split("\r\n")
            .filter(|line| !line.starts_with([' ', '\t']))
            .filter_map(|line| line.split_once(':').map(|(k, _)| k.to_owned()))
            .collect()
    }
}

/// The running server.
pub struct SmtpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    directory: PathBuf,
    child: Option<tokio::process::Child>,
}

fn python() -> PathBuf {
    if let Ok(python) = std::env::var("TICKETFLOW_SMTP_PYTHON") {
        return python.into();
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = workspace.join("target/tools/smtp/bin/python");
    assert!(
        venv.exists(),
        "no aiosmtpd at {}: run scripts/test, which installs it (or set TICKETFLOW_SMTP_PYTHON)",
        venv.display()
    );
    venv
}

impl SmtpServer {
    /// Starts a server on a free port.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let directory = std::env::temp_dir().join(format!("tf_test_smtp_{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&directory).unwrap();
        let mut server = Self {
            port,
            directory,
            child: None,
        };
        server.resume().await;
        server
    }

    /// The URL ticketflow's `SMTP_URL` takes.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts it again after [`stop`](Self::stop), on the same port.
    pub async fn resume(&mut self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut child = tokio::process::Command::new(python())
            .arg(script)
            .arg(self.port.to_string())
            .arg(&self.directory)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the SMTP server starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP server is ready within 20 s")
            .unwrap();
        assert_eq!(ready.as_deref(), Some("ready"), "the SMTP server did not start");
        self.child = Some(child);
    }

    /// Stops it: connections are refused until [`resume`](Self::resume).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
            let _ = child.wait().await;
        }
    }

    /// Every message accepted so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut names: Vec<_> = std::fs::read_dir(&self.directory)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|path| {
                let envelope: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(path.with_extension("json")).unwrap()).unwrap();
                Received {
                    raw: std::fs::read(&path).unwrap(),
                    rcpt_tos: envelope["rcpt_tos"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_owned())
                        .collect(),
                    mail_from: envelope["mail_from"].as_str().unwrap_or_default().to_owned(),
                }
            })
            .collect()
    }

    /// Waits (30 s at most) until `count` messages were accepted, and returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the SMTP server got {} messages, not {count}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}
