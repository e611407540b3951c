//! Who may deliver mail: HTTP basic auth with `EMAIL_WEBHOOK_TOKEN`, or Mailgun's signature.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use poem::Request;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use ticketflow_core::store::Store;

use super::fields::Fields;
use crate::ApiError;
use crate::error::body;

/// How far a Mailgun signature's timestamp may be from now.
const MAILGUN_WINDOW_SECONDS: i64 = 5 * 60;

fn unauthorized(message: &str) -> ApiError {
    ApiError::Unauthorized(body("unauthorized", message, None))
}

/// Basic auth whose password is `token` (any user name).
pub(super) fn basic(req: &Request, token: &SecretString) -> Result<(), ApiError> {
    let header = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthorized("basic auth with the webhook token is required"))?;
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))
        .ok_or_else(|| unauthorized("basic auth with the webhook token is required"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| unauthorized("the basic auth credentials are not base64"))?;
    let password = decoded
        .iter()
        .position(|b| *b == b':')
        .map_or(&decoded[..0], |colon| &decoded[colon + 1..]);
    if bool::from(password.ct_eq(token.expose_secret().as_bytes())) {
        Ok(())
    } else {
        Err(unauthorized("wrong webhook token"))
    }
}

/// Mailgun's signature: HMAC-SHA256 with the signing key over `timestamp` followed by
/// `token`, hex in `signature`; the timestamp within five minutes of now, and the token never
/// seen before (a replay of a captured request is refused).
pub(super) async fn mailgun_signature(store: &dyn Store, key: &SecretString, fields: &Fields) -> Result<(), ApiError> {
    let (Some(timestamp), Some(token), Some(signature)) =
        (fields.get("timestamp"), fields.get("token"), fields.get("signature"))
    else {
        return Err(unauthorized("Mailgun's timestamp, token and signature are required"));
    };
    let signature = hex::decode(signature.trim()).map_err(|_| unauthorized("the signature is not hex"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose_secret().as_bytes())
        .map_err(|_| unauthorized("the signing key cannot be used"))?;
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| unauthorized("wrong signature"))?;
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| unauthorized("the timestamp is not a number"))?;
    if (chrono::Utc::now().timestamp() - at).abs() > MAILGUN_WINDOW_SECONDS {
        return Err(unauthorized("the signature is older than 5 minutes"));
    }
    let fresh = store
        .remember_token(
            "mailgun",
            token,
            std::time::Duration::from_secs(2 * MAILGUN_WINDOW_SECONDS as u64),
        )
        .await
        .map_err(super::stored_error)?;
    if fresh {
        Ok(())
    } else {
        Err(unauthorized("this token was used before: a replay"))
    }
}
