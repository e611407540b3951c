//! Deterministic ticket ids: the same submission always gets the same id.

use uuid::Uuid;

/// The namespace of ticketflow's UUIDv5 ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2f4e_8a3b_5d2c_9e07_41b6_0c3d_a5f1);

/// Hashes parts unambiguously: each is length-prefixed, so ("ab", "c") and ("a", "bc") differ.
fn v5(kind: &str, parts: &[&str]) -> Uuid {
    let mut encoded = String::from(kind);
    for part in parts {
        encoded.push_str(&format!("|{}:{part}", part.len()));
    }
    Uuid::new_v5(&NAMESPACE, encoded.as_bytes())
}

/// The hash of a ticket's content.
pub fn content_hash(customer_id: &str, subject: &str, body: &str) -> Uuid {
    v5("content", &[customer_id, subject, body])
}

/// A ticket's id: from its idempotency key (scoped to the customer) when there is one, else
/// from its content.
pub fn ticket_id(customer_id: &str, subject: &str, body: &str, idempotency_key: Option<&str>) -> Uuid {
    match idempotency_key {
        Some(key) => v5("key", &[customer_id, key]),
        None => content_hash(customer_id, subject, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_unambiguous() {
        assert_eq!(ticket_id("c", "s", "b", None), ticket_id("c", "s", "b", None));
        assert_ne!(ticket_id("c", "ab", "c", None), ticket_id("c", "a", "bc", None));
        assert_ne!(
            ticket_id("c1", "s", "b", Some("k")),
            ticket_id("c2", "s", "b", Some("k"))
        );
        assert_eq!(
            ticket_id("c", "s1", "b", Some("k")),
            ticket_id("c", "s2", "b", Some("k"))
        );
        assert_ne!(ticket_id("c", "s", "b", Some("k")), ticket_id("c", "s", "b", None));
    }
}
