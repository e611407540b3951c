//! One JSON error shape everywhere, with the status the API's contract names (README's API
//! table).

use poem::http::StatusCode;
use poem::{Error, IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::error::{ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError};
use poem_openapi::payload::Json;
use ticketflow_core::store::StoreError;

use crate::model::ErrorBody;

/// Every error an operation can answer, declared in the OpenAPI document.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// Malformed request.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or invalid credentials (once the API is closed: people, named keys or
    /// `API_KEYS`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The caller's role may not do this, or a change made with the session cookie lacks its
    /// CSRF token.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such ticket (or approval request).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Conflicts with the ticket's state or an idempotency key's earlier use.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// Body over the size limit.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// Not `application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// A field or parameter is missing or invalid.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Too many tickets created by this client; retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// The database is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

pub(crate) fn body(error: &str, message: impl Into<String>, field: Option<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: error.to_owned(),
        message: message.into(),
        field,
        request_id: None,
    })
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Validation { field, message } => ApiError::Unprocessable(body(
                "validation_error",
                format!("`{field}` {message}"),
                Some(field.into()),
            )),
            StoreError::Taken { field, message } => ApiError::Conflict(body(
                "already_exists",
                format!("`{field}` is taken: {message}"),
                Some(field.into()),
            )),
            StoreError::NotFound(id) => ApiError::NotFound(body("not_found", format!("ticket {id} not found"), None)),
            StoreError::UnknownApproval(id) => {
                ApiError::NotFound(body("not_found", format!("approval {id} not found"), None))
            }
            StoreError::Conflict { message, .. } => ApiError::Conflict(body("conflict", message, None)),
            StoreError::IdempotencyConflict(id) => ApiError::Conflict(body(
                "idempotency_conflict",
                format!("this Idempotency-Key was already used for ticket {id} with different content"),
                Some("Idempotency-Key".into()),
            )),
            StoreError::Unavailable(error) => {
                tracing::warn!(%error, "database unavailable");
                ApiError::Unavailable(body(
                    "database_unavailable",
                    "the database is unavailable; retry later",
                    None,
                ))
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::Unavailable(body("store_error", "the ticket store failed; retry later", None))
            }
        }
    }
}

/// The field a poem-openapi payload error is about (its messages name it in backquotes).
fn field_of(reason: &str) -> Option<String> {
    let start = reason.find("field `")? + "field `".len();
    let end = reason[start..].find('`')?;
    Some(reason[start..start + end].to_owned())
}

fn json_error(status: StatusCode, error: &str, message: String, field: Option<String>) -> Response {
    let mut response = body(error, message, field).into_response();
    response.set_status(status);
    response
}

/// Turns any error (poem's, poem-openapi's, or an [`ApiError`]) into a JSON response.
pub(crate) fn error_response(error: Error) -> Response {
    if let Some(e) = error.downcast_ref::<ParseRequestPayloadError>() {
        let field = field_of(&e.reason);
        return json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            e.reason.clone(),
            field,
        );
    }
    if let Some(e) = error.downcast_ref::<ParseParamError>() {
        let message = format!("invalid parameter `{}`: {}", e.name, e.reason);
        return json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            message,
            Some(e.name.into()),
        );
    }
    if let Some(e) = error.downcast_ref::<ParsePathError>() {
        // poem-openapi renames path variables to `param0`, `param1`...; the only path
        // variable of this API is the ticket `id`.
        let name = if e.name.starts_with("param") { "id" } else { e.name };
        let message = format!("malformed path parameter `{name}`: {}", e.reason);
        return json_error(StatusCode::BAD_REQUEST, "bad_request", message, Some(name.into()));
    }
    if let Some(e) = error.downcast_ref::<ContentTypeError>() {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            e.to_string(),
            None,
        );
    }
    let status = error.status();
    let response = error.into_response();
    if is_json(&response) {
        return response;
    }
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::BAD_REQUEST => "bad_request",
        s if s.is_server_error() => "internal_error",
        _ => "error",
    };
    let message = status.canonical_reason().unwrap_or("error").to_lowercase();
    json_error(status, code, message, None)
}

/// What a required field of a JSON body must be.
#[derive(Clone, Copy)]
enum Required {
    Text,
    Boolean,
}

impl Required {
    fn accepts(self, value: &serde_json::Value) -> bool {
        match self {
            Required::Text => value.is_string(),
            Required::Boolean => value.is_boolean(),
        }
    }
}

/// The required fields of each operation's JSON body, in order.
const REQUIRED_FIELDS: &[(&str, &[(&str, Required)])] = &[
    (
        "create_ticket",
        &[
            ("subject", Required::Text),
            ("body", Required::Text),
            ("customer_id", Required::Text),
        ],
    ),
    ("decide_approval", &[("approved", Required::Boolean)]),
];

/// The first required field of `operation`'s body that is missing or of the wrong type, if the
/// body is a JSON object at all.
pub(crate) fn first_invalid_field(operation: &str, body: &[u8]) -> Option<&'static str> {
    let fields = REQUIRED_FIELDS.iter().find(|(op, _)| *op == operation)?.1;
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    fields
        .iter()
        .find(|(field, required)| !object.get(*field).is_some_and(|v| required.accepts(v)))
        .map(|(field, _)| *field)
}

pub(crate) fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn finds_the_field_in_poem_openapi_messages() {
        assert_eq!(
            field_of("parse request payload error: failed to parse \"CreateTicket\": field `subject` verification failed. minLength(1)").as_deref(),
            Some("subject")
        );
        assert_eq!(field_of("expected value at line 1"), None);
    }
}
