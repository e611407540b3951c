//! Outbound webhooks as the Standard Webhooks spec says: each delivery signed with the
//! endpoint secret ([`WebhookSecret`], `whsec_` + base64), posted by a [`WebhookSender`]
//! (feature `http`), retried by the
//! [`WebhookRelay`](crate::processing::WebhookRelay) from the database's outbox.

mod secret;
#[cfg(feature = "http")]
mod sender;

pub use secret::{InvalidSecret, WebhookSecret};
#[cfg(feature = "http")]
pub use sender::{Answer, WebhookSender, endpoint_url};
