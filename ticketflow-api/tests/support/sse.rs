//! A Server-Sent Events client: reads a stream's frames as they come.

use std::time::Duration;

use serde_json::Value;

/// One event of a stream.
#[derive(Debug, Clone)]
pub struct Frame {
    /// `id:` — the event's seq.
    pub id: i64,
    /// `event:` — its type.
    pub event: String,
    /// `data:` — the event.
    pub data: Value,
}

/// An open stream.
pub struct Sse {
    response: reqwest::Response,
    buffer: String,
    /// Comments seen (keep-alives).
    pub comments: usize,
}

impl Sse {
    /// Opens `url` (with `Last-Event-ID` when given) and checks it is an event stream.
    pub async fn open(url: &str, last_event_id: Option<i64>) -> Sse {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let mut request = client.get(url).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(response.status(), 200, "GET {url}");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        Sse {
            response,
            buffer: String::new(),
            comments: 0,
        }
    }

    /// The next event, waiting at most `wait`: `Err(())` on timeout, `Ok(None)` once the server
    /// ended the stream.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<Frame>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(frame) = self.parse(&block) {
                    return Ok(Some(frame));
                }
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return Err(()),
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(e)) => panic!("stream failed: {e}"),
            }
        }
    }

    /// The next event (30 s at most); `None` once the stream ended.
    pub async fn next(&mut self) -> Option<Frame> {
        self.next_within(Duration::from_secs(30))
            .await
            .expect("no event within 30 s")
    }

    /// Every event until the server ends the stream.
    pub async fn rest(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next().await {
            frames.push(frame);
        }
        frames
    }

    fn parse(&mut self, block: &str) -> Option<Frame> {
        let (mut id, mut event, mut data) = (None, None, String::new());
        for line in block.lines() {
            if line.starts_with(':') {
                self.comments += 1;
            } else if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().parse().expect("a numeric id"));
            } else if let Some(v) = line.strip_prefix("event:") {
                event = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        let id = id?;
        Some(Frame {
            id,
            event: event.expect("an event type"),
            data: serde_json::from_str(&data).expect("JSON data"),
        })
    }
}
