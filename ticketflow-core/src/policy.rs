//! The review's policy rules: checks every draft gets, whatever engine wrote it.

use std::sync::LazyLock;

use regex::Regex;

use crate::TicketState;
use crate::facts::Facts;
use crate::money::Money;

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

/// True when a sentence of `text` promises a refund, credit or account change that this run
/// did not make: a sentence may state a refund (and nothing else reserved) only when the run's
/// refund executed.
pub fn promises_what_did_not_happen(facts: &Facts, text: &str) -> bool {
    sentences(text).any(|sentence| {
        promises_reserved_action(sentence)
            && !(facts.refunded() && REFUND_WORDS.is_match(sentence) && !ACCOUNT_WORDS.is_match(sentence))
    })
}

/// The sentences of `text`, each with its closing punctuation (when white space or the end
/// follows it: `$149.99` and `ord_1.` stay whole) or line break.
pub fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while let Some((i, c)) = chars.next() {
            let next = chars.peek().map(|(_, n)| *n);
            let ends = c == '\n' || (matches!(c, '.' | '!' | '?') && next.is_none_or(char::is_whitespace));
            if ends {
                let end = i + c.len_utf8();
                let sentence = &text[start..end];
                start = end;
                return Some(sentence);
            }
        }
        (start < text.len()).then(|| {
            let rest = &text[start..];
            start = text.len();
            rest
        })
    })
}

static REFUND_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(r"(?i)refund").expect("valid regex")
});

static ACCOUNT_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(r"(?i)account|ownership|credit|waive|charge").expect("valid regex")
});

static TRACKING_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(r"\b(?:1Z[0-9A-Z]{8,18}|\d{12,22}|[A-Z]{2}\d{9}[A-Z]{2})\b").expect("valid regex")
});

static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(r"\$\s?(\d{1,3}(?:,\d{3})*|\d+)(?:\.(\d{2}))?\b").expect("valid regex")
});

static ORDER_ID: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(r"(?i)\bord[_-]\w+").expect("valid regex")
});

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(concat!(
        r"\b(?:January|February|March|April|May|June|July|August|September|October|November|December)",
        r" \d{1,2}, \d{4}\b"
    ))
    .expect("valid regex")
});

/// An e-mail address in free text.
pub(crate) static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b").expect("valid regex")
});

/// An amount as a draft writes it (`$1,250` or `$89.99`).
fn amount_of(capture: &regex::Captures<'_>) -> Option<Money> {
    let dollars: i64 = capture.get(1)?.as_str().replace(',', "").parse().ok()?;
    let cents: i64 = capture.get(2).map_or(Some(0), |c| c.as_str().parse().ok())?;
    Some(Money::from_cents(dollars.checked_mul(100)?.checked_add(cents)?))
}

/// What the draft says that the run's facts do not: a tracking number, amount, date or order
/// id no lookup returned, another person's e-mail address. Only checked when the run looked
/// something up; text the customer wrote or a help article says is not invented.
fn contradicts_facts(state: &TicketState, facts: &Facts, draft: &str) -> Vec<String> {
    let mut notes = Vec::new();
    if facts.order.is_none() && facts.customer.is_none() && facts.outcome.is_none() {
        return notes;
    }
    let mut quoted = state.ticket.text();
    if let Some(research) = &state.research {
        for article in &research.articles {
            quoted.push('\n');
            quoted.push_str(&article.passage);
        }
    }
    let tracking = facts.tracking_numbers();
    for found in TRACKING_NUMBER.find_iter(draft) {
        if !tracking.contains(found.as_str()) && !quoted.contains(found.as_str()) {
            notes.push(format!(
                "gives a tracking number ({}) that is not in the order's data",
                found.as_str()
            ));
        }
    }
    let amounts = facts.amounts();
    let quoted_amounts: Vec<Money> = AMOUNT.captures_iter(&quoted).filter_map(|c| amount_of(&c)).collect();
    for capture in AMOUNT.captures_iter(draft) {
        if let Some(amount) = amount_of(&capture)
            && !amounts.contains(&amount)
            && !quoted_amounts.contains(&amount)
        {
            notes.push(format!("states an amount ({amount}) that is not in the order's data"));
        }
    }
    let dates = facts.dates();
    for found in DATE.find_iter(draft) {
        if !dates.contains(found.as_str()) && !quoted.contains(found.as_str()) {
            notes.push(format!(
                "gives a date ({}) that is not in the order's data",
                found.as_str()
            ));
        }
    }
    let orders = facts.order_ids();
    let quoted_lower = quoted.to_lowercase();
    for found in ORDER_ID.find_iter(draft) {
        let id = found.as_str().to_lowercase();
        if !orders.contains(&id) && !quoted_lower.contains(&id) {
            notes.push(format!(
                "names an order ({}) that is not this customer's",
                found.as_str()
            ));
        }
    }
    let own = facts.customer.as_ref().map(|c| c.email.to_lowercase());
    for found in EMAIL.find_iter(draft) {
        let address = found.as_str().to_lowercase();
        let known = own.as_deref() == Some(address.as_str())
            || quoted_lower.contains(&address)
            || address.ends_with("@northwind.example")
            || matches!(&facts.outcome, Some(crate::facts::Outcome::ResetSent(r)) if r.email.eq_ignore_ascii_case(&address));
        if !known {
            notes.push(format!(
                "gives an e-mail address ({}) that is not this customer's",
                found.as_str()
            ));
        }
    }
    notes
}

/// True when `sentence` states something the run's facts do not (an order, tracking number,
/// amount, date or e-mail address that is not this customer's): finalize drops such a sentence
/// from a reply that reached the revision limit still carrying it.
pub fn strays_from_facts(state: &TicketState, facts: &Facts, sentence: &str) -> bool {
    !contradicts_facts(state, facts, sentence).is_empty()
}

/// What is wrong with `draft` for this ticket; empty when it passes.
pub fn check(state: &TicketState, draft: &str) -> Vec<String> {
    let mut notes = Vec::new();
    let facts = Facts::of(state);
    if promises_what_did_not_happen(&facts, draft) {
        notes.push(
            "promises a refund, credit or account change that did not happen: only a specialist may approve \
             those; say the request was passed on instead"
                .to_owned(),
        );
    }
    if let Some(order_id) = state.entities.as_ref().and_then(|e| e.order_id.as_deref()) {
        let canonical = facts.order.as_ref().map(|o| o.order_id.as_str());
        let lower = draft.to_lowercase();
        let cited = [Some(order_id), canonical]
            .into_iter()
            .flatten()
            .any(|id| lower.contains(&id.to_lowercase()));
        if !cited {
            notes.push(format!("does not cite the order id {order_id}"));
        }
    }
    notes.extend(contradicts_facts(state, &facts, draft));
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
    fn sentences_end_at_punctuation_before_white_space() {
        let text = "I have refunded $149.99 (refund RF-1). It shows in 5 days!\nThanks";
        assert_eq!(
            sentences(text).collect::<Vec<_>>(),
            [
                "I have refunded $149.99 (refund RF-1).",
                " It shows in 5 days!",
                "\n",
                "Thanks"
            ]
        );
        assert_eq!(sentences("").count(), 0);
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
