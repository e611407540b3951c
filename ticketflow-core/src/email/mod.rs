//! E-mail in: what a mail provider delivered, as one type whatever the provider
//! ([`InboundEmail`]), read from a whole RFC 5322 message ([`parse_rfc5322`]) or from a
//! provider's fields, and threaded into tickets' conversations ([`receive`]). E-mail out: a
//! stored outbound message as the mail that carries it ([`OutgoingEmail`]), handed to a
//! provider by a [`transport::MailTransport`].
//!
//! ```
//! use ticketflow_core::email::parse_rfc5322;
//!
//! let raw = b"From: Jane <Jane@Example.com>\r\nTo: support@example.com\r\nSubject: Hi\r\n\
//!     Message-ID: <a1@example.com>\r\n\r\nWhere is my order?\r\n\r\nOn Mon, Bob wrote:\r\n> earlier\r\n";
//! let email = parse_rfc5322(raw, "raw").unwrap();
//! assert_eq!(email.from, "jane@example.com");
//! assert_eq!(email.reply_text(), "Where is my order?");
//! ```

mod address;
mod automatic;
mod inbound;
mod mime;
mod outgoing;
mod quote;
mod receive;
pub mod transport;

pub use address::{display_name, normalize_address, plus_addressed_ticket};
pub use automatic::automatic_reason;
pub use inbound::{EmailError, InboundEmail, MAX_RECIPIENTS, message_ids};
pub use mime::{parse_rfc5322, thread_headers};
pub use outgoing::{OutgoingEmail, Sender, header_text, html_of, message_id};
pub use quote::strip_quoted;
pub use receive::receive;
