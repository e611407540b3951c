//! Which action a ticket asks for, and with which arguments: the pipeline's rules, the same
//! whatever engine classified and extracted it. At most one action per ticket; the tools'
//! own checks (scope, existence, limits) still run when it is proposed, so a plan built from a
//! hostile ticket can at worst propose a call that is refused.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::json;

use crate::facts::Facts;
use crate::money::Money;
use crate::tools::OrderView;
use crate::{Category, TicketState, Urgency};

/// A call the ticket asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The tool.
    pub tool: &'static str,
    /// Its arguments.
    pub args: serde_json::Value,
}

static ASKS_FOR_A_PERSON: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(concat!(
        r"(?i)\b(?:(?:speak|talk|chat)\s+(?:to|with)\s+(?:a|an|your|some)?\s*(?:human|person|manager|supervisor|",
        r"real person|someone|agent)|(?:^|[^-\w])escalate|(?:your|a)\s+(?:manager|supervisor)|legal action|my lawyer)\b"
    ))
    .expect("valid regex")
});

static ASKS_FOR_A_REFUND: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(r"(?i)\b(?:refund|reimburs|money back|reembolso|rembourse|erstattung|rimborso)").expect("valid regex")
});

/// A refund the customer says they do not want, or one that was made already: the words name a
/// refund without asking for one.
static NOT_ASKING_FOR_A_REFUND: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(concat!(
        r"(?i)\b(?:(?:don'?t|do not|doesn'?t|not|no|never|without)\s+(?:\w+\s+){0,3}?(?:a\s+)?refund",
        r"|(?:already|was|were|been|got)\s+(?:\w+\s+)?refunded)"
    ))
    .expect("valid regex")
});

static ASKS_FOR_A_RESET: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(r"(?i)\b(?:reset|forgot|forgotten|locked out|can'?t (?:log|sign) in)\b").expect("valid regex")
});

static DATA_GONE_WRONG: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(
        r"(?i)\b(?:wrong|missing|disappear\w*|lost|corrupt\w*|duplicat\w*|broken|bug|incorrect|vanish\w*|gone|deleted|error\w*)\b",
    )
    .expect("valid regex")
});

/// The most characters of the ticket's text an action's free-text argument carries.
const TEXT_CHARS: usize = 1_000;

fn clipped(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The kind of action a ticket asks for, from its words and entities alone (what it needs
/// to be carried out, an order or an account, is another matter: see [`plan`]).
pub fn asks_for(state: &TicketState) -> Option<&'static str> {
    let text = state.ticket.text();
    let entities = state.entities.clone().unwrap_or_default();
    let issue = entities.issue_type.as_deref();
    let category = state.classification.as_ref().map(|c| c.category);
    if ASKS_FOR_A_PERSON.is_match(&text) {
        return Some("escalate_to_human");
    }
    if (matches!(issue, Some("refund_request" | "double_charge")) || ASKS_FOR_A_REFUND.is_match(&text))
        && !NOT_ASKING_FOR_A_REFUND.is_match(&text)
    {
        return Some("process_refund");
    }
    if matches!(issue, Some("password_reset"))
        || (matches!(issue, Some("account_locked" | "login_problem")) && ASKS_FOR_A_RESET.is_match(&text))
    {
        return Some("reset_password");
    }
    let a_problem = match issue {
        Some("crash" | "bug") => true,
        // "Export my data" is a question; data that is wrong or gone is a bug.
        Some("data_issue") => DATA_GONE_WRONG.is_match(&text),
        _ => false,
    };
    if a_problem && category == Some(Category::Technical) {
        return Some("create_bug_report");
    }
    None
}

/// The action `state`'s ticket asks for, given what the lookups found; `None` when it asks for
/// none (or for one that needs facts the lookups did not find: a refund of an order that is not
/// the customer's is never proposed, and the reply says the order was not found).
pub fn plan(state: &TicketState, facts: &Facts) -> Option<Planned> {
    let text = state.ticket.text();
    let entities = state.entities.clone().unwrap_or_default();
    match asks_for(state)? {
        "escalate_to_human" => Some(Planned {
            tool: "escalate_to_human",
            args: json!({
                "reason": clipped(&format!("The customer asked for a person: {}", state.ticket.subject), TEXT_CHARS),
                "suggested_action": "Contact the customer and take the ticket over.",
            }),
        }),
        "process_refund" => facts.order.as_ref().map(|order| Planned {
            tool: "process_refund",
            args: json!({
                "order_id": order.order_id,
                "amount": refund_amount(order, &text),
                "reason": clipped(&format!("Customer request: {}", state.ticket.subject), 500),
            }),
        }),
        // A reset for an address that is not the customer's own is not theirs to ask for.
        "reset_password" => facts
            .customer
            .as_ref()
            .filter(|customer| {
                crate::policy::EMAIL
                    .find_iter(&text)
                    .all(|address| address.as_str().eq_ignore_ascii_case(&customer.email))
            })
            .map(|customer| Planned {
                tool: "reset_password",
                args: json!({ "user_email": customer.email }),
            }),
        "create_bug_report" => {
            let priority = match entities.urgency {
                Urgency::High => "high",
                Urgency::Medium => "medium",
                Urgency::Low => "low",
            };
            Some(Planned {
                tool: "create_bug_report",
                args: json!({
                    "title": clipped(&state.ticket.subject, 200),
                    "description": clipped(&state.ticket.body, TEXT_CHARS),
                    "priority": priority,
                }),
            })
        }
        _ => None,
    }
}

/// What to refund: the price of the items the ticket names (by a distinctive word of the
/// item's name), or, when it names none, everything still refundable; never more than that.
pub fn refund_amount(order: &OrderView, text: &str) -> Money {
    let lower = text.to_lowercase();
    let words = |name: &str| -> Vec<String> {
        name.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() >= 4 && !GENERIC.contains(w))
            .map(str::to_owned)
            .collect()
    };
    let named: Vec<Money> = order
        .items
        .iter()
        .filter(|item| words(&item.name).iter().any(|w| lower.contains(w.as_str())))
        .filter_map(|item| item.unit_price.times(item.quantity))
        .collect();
    let asked = named
        .into_iter()
        .try_fold(Money::ZERO, Money::checked_add)
        .filter(|sum| sum.is_positive());
    match asked {
        Some(sum) if sum < order.refundable => sum,
        _ => order.refundable,
    }
}

/// Words of product names too common to say which item a ticket means.
const GENERIC: &[&str] = &["with", "pack", "inch", "wireless", "usb-c", "cable"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_for_a_person_are_recognised() {
        for text in [
            "I want to speak to a human",
            "Let me talk with your manager",
            "Please escalate this",
            "I will take legal action",
        ] {
            assert!(ASKS_FOR_A_PERSON.is_match(text), "{text}");
        }
        for text in [
            "My manager asked me to check the invoice",
            "The human interface device fails",
            "Your agent tried to de-escalate things, thanks",
        ] {
            assert!(!ASKS_FOR_A_PERSON.is_match(text), "{text}");
        }
    }

    #[test]
    fn only_data_gone_wrong_is_a_bug() {
        assert!(DATA_GONE_WRONG.is_match("Half of my data disappeared"));
        assert!(DATA_GONE_WRONG.is_match("the totals are wrong"));
        assert!(!DATA_GONE_WRONG.is_match("Where can I export all my data as CSV?"));
    }

    #[test]
    fn naming_a_refund_is_not_asking_for_one() {
        for text in [
            "I don't want a refund, just the replacement",
            "I do not need a refund",
            "Order 12345 was refunded last month but the charge is still there",
            "No refund please, send a new one",
        ] {
            assert!(NOT_ASKING_FOR_A_REFUND.is_match(text), "{text}");
        }
        for text in ["Please refund my order", "I want my money back", "Can I get a refund?"] {
            assert!(!NOT_ASKING_FOR_A_REFUND.is_match(text), "{text}");
        }
    }
}
