//! A real HTTP server on loopback that speaks GitHub's "create an issue" API
//! (`POST /repos/{owner}/{repo}/issues`), for the bug-report tool. It checks the bearer token
//! and records every request; failures can be scripted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use poem::web::{Data, Json, Path};
use poem::{EndpointExt, IntoResponse, Response, Route, handler, http::HeaderMap, http::StatusCode, post};
use serde_json::{Value, json};

/// A recorded request.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// `owner/repo`.
    pub repo: String,
    /// The JSON body.
    pub body: Value,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Shared {
    token: String,
    requests: Mutex<Vec<IssueRequest>>,
    failures: Mutex<VecDeque<u16>>,
}

/// The running server; stops when dropped.
pub struct FakeGitHub {
    /// The API base URL to give the client.
    pub api_url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGitHub {
    /// Starts a server that accepts `token` as a bearer token.
    pub async fn start(token: &str) -> Self {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            ..Shared::default()
        });
        let app = Route::new()
            .at("/repos/:owner/:repo/issues", post(create_issue))
            .data(shared.clone());
        let (api_url, task) = super::loopback::serve(app).await;
        Self { api_url, shared, task }
    }

    /// The next requests fail with these statuses, in order.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.shared.failures.lock().unwrap().extend(statuses);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<IssueRequest> {
        self.shared.requests.lock().unwrap().clone()
    }
}

#[handler]
fn create_issue(
    Path((owner, repo)): Path<(String, String)>,
    headers: &HeaderMap,
    body: Json<Value>,
    shared: Data<&Arc<Shared>>,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut requests = shared.requests.lock().unwrap();
    requests.push(IssueRequest {
        repo: format!("{owner}/{repo}"),
        body: body.0.clone(),
        authorization: authorization.clone(),
    });
    let number = requests.len();
    drop(requests);
    if let Some(status) = shared.failures.lock().unwrap().pop_front() {
        return StatusCode::from_u16(status).unwrap().into_response();
    }
    if authorization.as_deref() != Some(&format!("Bearer {}", shared.token)) {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "message": "Bad credentials" }))).into_response();
    }
    if body.0["title"].as_str().is_none_or(str::is_empty) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "message": "Validation Failed" })),
        )
            .into_response();
    }
    (
        StatusCode::CREATED,
        Json(json!({
            "number": number,
            "html_url": format!("https://github.com/{owner}/{repo}/issues/{number}"),
            "title": body.0["title"],
        })),
    )
        .into_response()
}
