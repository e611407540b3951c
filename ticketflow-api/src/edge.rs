//! What every request passes through: its request id, its latency metric, and the
//! normalization of every error into the JSON error shape.

use std::time::Instant;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response, Result};
use poem_openapi::OperationId;
use tracing::Instrument;

use crate::RequestId;
use crate::error::{error_response, is_json};

/// The header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A caller's id is kept if it is 1 to 128 characters of `[A-Za-z0-9._:-]`; otherwise a new
/// one is made (the caller's is never echoed unchecked into logs and headers).
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// The largest inbound e-mail webhook body (`EMAIL_MAX_BYTES`), a request extension set
/// outside this middleware.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EmailBodyLimit(pub usize);

/// The middleware, for `EndpointExt::around`.
pub(crate) async fn edge<E: Endpoint>(next: E, mut req: Request) -> Result<Response> {
    let id = request_id(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let raw_body = match read_body(&mut req).await {
        Ok(raw) => raw,
        Err(too_large) => {
            let mut response = annotate_error_body(error_response(too_large), &id, None, None).await;
            // The rest of the body was not read: the connection cannot be reused.
            response
                .headers_mut()
                .insert(poem::http::header::CONNECTION, HeaderValue::from_static("close"));
            stamp_request_id(&mut response, &id);
            return Ok(response);
        }
    };
    // A form post from a page carries its session's CSRF token as a field; the session check
    // reads headers only, so the field is handed to it as the header.
    if let Some(token) = raw_body
        .as_deref()
        .and_then(|body| crate::auth::form_csrf_token(&req, body))
    {
        req.headers_mut().insert(crate::auth::CSRF_HEADER, token);
    }
    let span = tracing::info_span!("http", request_id = %id, method = %method, path = %req.uri().path());
    // A caller's trace continues here; the ticket's worker spans continue it further.
    let incoming = req.headers().get("traceparent").and_then(|v| v.to_str().ok());
    ticketflow_core::tracing_context::set_parent(&span, incoming);
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let (mut response, route) = match result {
        Ok(response) => {
            let response = response.into_response();
            let route = response.data::<OperationId>().map(|o| o.0);
            (response, route)
        }
        Err(error) => {
            let route = error.data::<OperationId>().map(|o| o.0);
            (error_response(error), route)
        }
    };
    if response.status().as_u16() >= 400 && !is_json(&response) {
        // A plain-text error from below: same status and headers (`Allow`, ...), JSON body.
        let headers = response.headers().clone();
        response = error_response(poem::Error::from_status(response.status()));
        for (name, value) in &headers {
            if name != poem::http::header::CONTENT_TYPE && name != poem::http::header::CONTENT_LENGTH {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
    }
    if response.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(poem::http::header::ALLOW)
        && let Some(allowed) = allowed_methods(&path)
    {
        // RFC 9110 requires it on a 405; poem's router does not add it.
        response
            .headers_mut()
            .insert(poem::http::header::ALLOW, HeaderValue::from_static(allowed));
    }
    if response.status().as_u16() >= 400 {
        response = annotate_error_body(response, &id, route, raw_body.as_deref()).await;
    }
    stamp_request_id(&mut response, &id);
    let status = response.status().as_u16();
    // The route template, never the raw path (ids would explode the label set).
    let route = route.unwrap_or(if status == 404 { "unmatched" } else { "other" });
    metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method.clone(),
        "route" => route,
        "status" => status.to_string()
    )
    .record(started.elapsed().as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status,
            route,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        )
    });
    Ok(response)
}

/// The methods a path answers to, for the `Allow` header of a 405 (the routes of
/// [`crate::app`]).
fn allowed_methods(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["tickets"] | ["tickets", _, "messages"] => Some("GET, POST"),
        ["tickets", _] | ["tickets", _, "events"] | ["tickets", _, "stream"] | ["events", "stream"] => Some("GET"),
        ["webhooks", "email", "inbound", _] => Some("POST"),
        ["webhooks", "deliveries"] => Some("GET"),
        ["webhooks", "deliveries", _, "retry"] => Some("POST"),
        ["tickets", _, "retry"] => Some("POST"),
        ["approvals"] | ["approvals", _] | ["dashboard", "stats"] => Some("GET"),
        ["approvals", _, "decide"] => Some("POST"),
        ["health"] | ["metrics"] | ["openapi.json"] | ["docs", ..] => Some("GET"),
        ["auth", "login"] | ["auth", "logout"] => Some("POST"),
        ["auth", "me"] | ["admin", "audit"] => Some("GET"),
        ["admin", "users"] | ["admin", "keys"] => Some("GET, POST"),
        ["admin", "users", _] => Some("PATCH"),
        ["admin", "keys", _, "revoke"] => Some("POST"),
        _ => None,
    }
}

/// Adds the request id to a JSON error body, and names the field when a payload error did not
/// (poem-openapi's message for a missing or null field does not say which).
async fn annotate_error_body(response: Response, id: &str, route: Option<&str>, raw_body: Option<&[u8]>) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = body.into_bytes().await else {
        return Response::from_parts(parts, poem::Body::empty());
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert("request_id".into(), serde_json::Value::String(id.to_owned()));
            if map.get("field").is_none_or(serde_json::Value::is_null)
                && map.get("error").and_then(|e| e.as_str()) == Some("validation_error")
                && let Some(field) = route.and_then(|r| crate::error::first_invalid_field(r, raw_body?))
            {
                map.insert("field".into(), serde_json::Value::String(field.to_owned()));
            }
            serde_json::Value::Object(map).to_string().into()
        }
        _ => bytes.to_vec().into(),
    };
    parts.headers.remove(poem::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, body)
}

fn stamp_request_id(response: &mut Response, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
}

/// The largest body `path` takes: [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES), or
/// [`MAX_DECISION_BODY_BYTES`](crate::MAX_DECISION_BODY_BYTES) for a decision (so that an
/// over-long reason or edited reply is refused by name, a 422, rather than by size).
/// An inbound e-mail webhook takes up to `EMAIL_MAX_BYTES` ([`EmailBodyLimit`]).
fn body_limit(path: &str, email: Option<&EmailBodyLimit>) -> usize {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["approvals", _, "decide"] => crate::MAX_DECISION_BODY_BYTES,
        ["webhooks", "email", "inbound", _] => email.map_or(crate::inbound::DEFAULT_EMAIL_MAX_BYTES, |l| l.0),
        _ => crate::MAX_BODY_BYTES,
    }
}

/// Reads a request body up to its route's [`body_limit`] (a larger one is a 413: by
/// `Content-Length` when declared, else by reading one byte past the limit) and puts it back,
/// keeping a cheap copy for error messages.
async fn read_body(req: &mut Request) -> Result<Option<bytes::Bytes>, poem::Error> {
    let too_large = || poem::Error::from_status(poem::http::StatusCode::PAYLOAD_TOO_LARGE);
    if req.method() == poem::http::Method::GET || req.method() == poem::http::Method::HEAD {
        return Ok(None);
    }
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let limit = body_limit(req.uri().path(), req.extensions().get::<EmailBodyLimit>());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let bytes = req.take_body().into_bytes_limit(limit).await.map_err(|_| too_large())?;
    req.set_body(bytes.clone());
    Ok(Some(bytes))
}
