//! The review's policy rules: checks every draft gets, whatever engine wrote it.

use std::sync::LazyLock;

use regex::Regex;

use crate::TicketState;

/// Shortest and longest acceptable reply, in characters.
pub const LENGTH_BOUNDS: (usize, usize) = (120, 2500);

static PROMISE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(concat!(
        r"(?i)\b(?:",
        // "we will refund", "I've already issued a full refund", "we can delete your account"
        r"(?:we|i)(?:'ll|'ve| will| have| am going to| are going to| can| shall| would be happy to)",
        r"(?:\s+(?:already|now|just|gladly|happily|immediately|definitely|fully|go ahead and|be able to|be happy to))*",
        r"\s+(?:refund(?:ed)?|reimburs\w*|credit(?:ed)?|waive\w*",
        r"|(?:issue|issued|process|processed|send|sent|approve|approved)\s+(?:you\s+)?(?:a|the|your)\s+(?:full\s+|partial\s+)?(?:refund|credit)",
        r"|cancel(?:led)? the charge|revers\w* the charge|delete\w* your account|clos\w* your account",
        r"|transfer\w* (?:the )?ownership)",
        // "you will receive a refund"
        r"|you(?:'ll| will)\s+(?:\w+\s+){0,2}?(?:receive|get|see)\s+(?:a |your |the )?(?:full |partial )?(?:refund|credit|money back)",
        // "your refund has been processed"
        r"|(?:refund|credit)\s+(?:has been|was|is being|will be)\s+(?:issued|processed|approved|applied|sent)",
        r"|(?:your account|the account) (?:has been|was|will be) (?:deleted|closed|transferred)",
        r")"
    ))
    .expect("valid regex")
});

const INTERNAL_MARKERS: &[&str] = &[
    "internal note",
    "[internal",
    "note to agent",
    "agent note",
    "agent-only",
    "todo",
    "{{",
    "}}",
    "system prompt",
    "as an ai",
    "<internal",
    "staff only",
];

/// True when `text` promises a refund, credit or account change that needs a specialist's
/// approval.
pub fn promises_reserved_action(text: &str) -> bool {
    PROMISE.is_match(text)
}

/// What is wrong with `draft` for this ticket; empty when it passes.
pub fn check(state: &TicketState, draft: &str) -> Vec<String> {
    let mut notes = Vec::new();
    if promises_reserved_action(draft) {
        notes.push(
            "promises a refund, credit or account change: only a specialist may approve those; say the request \
             was passed on instead"
                .to_owned(),
        );
    }
    if let Some(order_id) = state.entities.as_ref().and_then(|e| e.order_id.as_deref())
        && !draft.contains(order_id)
    {
        notes.push(format!("does not cite the order id {order_id}"));
    }
    let lower = draft.to_lowercase();
    if let Some(marker) = INTERNAL_MARKERS.iter().find(|m| lower.contains(*m)) {
        notes.push(format!("leaks internal text ({marker:?})"));
    }
    let length = draft.chars().count();
    if length < LENGTH_BOUNDS.0 {
        notes.push(format!("too short ({length} characters, at least {})", LENGTH_BOUNDS.0));
    } else if length > LENGTH_BOUNDS.1 {
        notes.push(format!("too long ({length} characters, at most {})", LENGTH_BOUNDS.1));
    }
    if !answers_the_ticket(state, &lower) {
        notes.push("does not address what the customer asked about".to_owned());
    }
    notes
}

/// A reply addresses the ticket when it shares a content word with the ticket or with the
/// title of an article research found for it (which is how replies to non-English tickets,
/// answered in English, still show they are on topic).
fn answers_the_ticket(state: &TicketState, draft_lower: &str) -> bool {
    let content = |text: &str| -> Vec<String> {
        text.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 5 && !STOP.contains(w))
            .map(str::to_owned)
            .collect()
    };
    let mut topic = content(&state.ticket.text());
    if let Some(research) = &state.research {
        for article in research.articles.iter().take(1) {
            topic.extend(content(&article.title));
        }
    }
    let draft_words = content(draft_lower);
    topic.iter().any(|w| draft_words.contains(w))
}

const STOP: &[&str] = &[
    "hello",
    "thanks",
    "thank",
    "please",
    "there",
    "their",
    "about",
    "would",
    "could",
    "should",
    "which",
    "where",
    "while",
    "after",
    "before",
    "again",
    "since",
    "still",
    "today",
    "yesterday",
    "regards",
    "northwind",
    "support",
    "because",
    "really",
    "being",
    "other",
    "these",
    "those",
    "every",
    "never",
    "always",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promises_are_caught() {
        for text in [
            "We will refund the duplicate charge today.",
            "I have issued a full refund.",
            "You will receive a refund within 5 days.",
            "Your refund has been processed.",
            "I'll credit your account for the outage.",
            "We can delete your account right away.",
            "Your account has been deleted.",
        ] {
            assert!(promises_reserved_action(text), "{text}");
        }
    }

    #[test]
    fn careful_wording_passes() {
        for text in [
            "I have passed your refund request to our billing specialists, who review every refund.",
            "A billing specialist will review whether a refund is possible.",
            "Our refund policy explains when refunds are possible.",
        ] {
            assert!(!promises_reserved_action(text), "{text}");
        }
    }
}
