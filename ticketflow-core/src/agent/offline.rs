//! The offline planner: deterministic, no network. It looks up what the ticket names (its
//! order, its customer's account when the request needs one, the product it asks about, the
//! help center for a question), then proposes the action the ticket asks for by the
//! pipeline's own rules ([`plan`](crate::plan)), then answers from what it found. Each tool is
//! called at most once, so a run ends after a handful of moves.

use std::sync::LazyLock;

use async_trait::async_trait;
use regex::Regex;
use serde_json::json;

use super::{Move, PlannedCall, Planner};
use crate::engine::{EngineError, Produced};
use crate::facts::Facts;
use crate::tools::{Articles, ToolSpec};
use crate::{ArticleHit, Category, OfflineEngine, Research, TicketState, plan};

/// A question about the catalogue: price, stock, compatibility, what something is.
static ASKS_ABOUT_A_PRODUCT: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(concat!(
        r"(?i)\b(?:in stock|out of stock|back in stock|available|availability|how much (?:is|are|does|do)|price of|",
        r"what does .{1,40} cost|cost of|compatible|compatibility|do you (?:sell|have|carry|stock)|",
        r"specs?|specifications|battery life|difference between)\b"
    ))
    .expect("valid regex")
});

/// A question about the customer's own orders or account, with no order named.
static ASKS_ABOUT_THEIR_ACCOUNT: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(concat!(
        r"(?i)\b(?:my (?:recent |last |previous |past )?orders|order history|purchase history|",
        r"what (?:did|have) i (?:order|ordered|buy|bought|purchase)|my last order|my recent order|",
        r"my (?:account )?tier|my membership|my loyalty)\b"
    ))
    .expect("valid regex")
});

/// The customer's latest order, named without its id.
static THE_LAST_ORDER: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(r"(?i)\bmy (?:last|latest|most recent|recent) (?:order|purchase)\b").expect("valid regex")
});

/// Words of a product question that do not name the product.
const NOT_A_PRODUCT: &[&str] = &[
    "a",
    "an",
    "the",
    "is",
    "are",
    "do",
    "does",
    "you",
    "your",
    "yours",
    "sell",
    "have",
    "carry",
    "stock",
    "in",
    "out",
    "of",
    "back",
    "available",
    "availability",
    "how",
    "much",
    "price",
    "cost",
    "costs",
    "what",
    "which",
    "compatible",
    "compatibility",
    "with",
    "spec",
    "specs",
    "specifications",
    "battery",
    "life",
    "difference",
    "between",
    "and",
    "or",
    "me",
    "i",
    "my",
    "it",
    "this",
    "that",
    "there",
    "any",
    "still",
    "for",
    "to",
    "can",
    "could",
    "would",
    "please",
    "hi",
    "hello",
    "thanks",
    "thank",
    "tell",
    "know",
    "want",
    "like",
    "buy",
    "get",
    "be",
    "will",
    "when",
    "its",
    "they",
    "them",
    "about",
    "if",
    "on",
    "at",
];

/// What the catalogue is searched for: the last two words of the product question's sentence
/// that are not question words, a plural made singular.
fn product_term(text: &str) -> Option<String> {
    let sentence = text
        .split(['.', '?', '!', '\n'])
        .find(|s| ASKS_ABOUT_A_PRODUCT.is_match(s))?;
    let words: Vec<String> = sentence
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .map(str::to_lowercase)
        .filter(|w| w.len() >= 2 && !NOT_A_PRODUCT.contains(&w.as_str()))
        .collect();
    let mut term: Vec<String> = words.iter().rev().take(2).rev().cloned().collect();
    if let Some(last) = term.last_mut()
        && last.len() > 3
        && last.ends_with('s')
        && !last.ends_with("ss")
    {
        last.pop();
    }
    (!term.is_empty()).then(|| term.join(" "))
}

/// A product id as the catalogue writes them (`prod_wh1000`).
static PRODUCT_ID: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(r"\bprod_[A-Za-z0-9]+\b").expect("valid regex")
});

/// The deterministic planner (see the module's documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflinePlanner;

impl OfflinePlanner {
    /// Fills in the ticket's category and entities with the offline engine when they are not
    /// known yet: the planner's rules, the result's filters and the draft templates use them.
    pub fn analyse(state: &mut TicketState) {
        if state.classification.is_none() {
            state.classification = Some(OfflineEngine::classify_text(&state.ticket.subject, &state.ticket.body));
        }
        if state.entities.is_none() {
            let category = state.classification.as_ref().map_or(Category::General, |c| c.category);
            state.entities = Some(OfflineEngine::extract_text(
                &state.ticket.subject,
                &state.ticket.body,
                category,
            ));
        }
    }

    /// The next call for `state`, or `None` when it is time to answer.
    pub fn next_call(state: &TicketState) -> Option<PlannedCall> {
        let made = |tool: &str| state.actions.iter().any(|a| a.tool == tool);
        let call = |tool: &str, args: serde_json::Value| {
            Some(PlannedCall {
                tool: tool.to_owned(),
                args,
                llm_call_id: None,
            })
        };
        let text = state.ticket.text();
        let order_id = state.entities.as_ref().and_then(|e| e.order_id.clone());
        let asks = plan::asks_for(state);
        let facts = Facts::of(state);
        if let Some(order_id) = &order_id
            && !made("check_order_status")
        {
            return call("check_order_status", json!({ "order_id": order_id }));
        }
        let needs_account = match asks {
            Some("reset_password") => true,
            Some("process_refund") => facts.order.is_none(),
            _ => order_id.is_none() && ASKS_ABOUT_THEIR_ACCOUNT.is_match(&text),
        };
        if needs_account && !made("get_customer_history") {
            return call(
                "get_customer_history",
                json!({ "customer_id": state.ticket.customer_id }),
            );
        }
        // "Refund my last order": the account says which order that is.
        if asks == Some("process_refund")
            && order_id.is_none()
            && !made("check_order_status")
            && THE_LAST_ORDER.is_match(&text)
            && let Some(latest) = facts.customer.as_ref().and_then(|c| c.recent_orders.first())
        {
            return call("check_order_status", json!({ "order_id": latest.order_id }));
        }
        if asks.is_none() && order_id.is_none() && !made("lookup_product") {
            if let Some(id) = PRODUCT_ID.find(&text) {
                return call(
                    "lookup_product",
                    json!({ "product_id": id.as_str(), "name_search": null }),
                );
            }
            if let Some(term) = ASKS_ABOUT_A_PRODUCT
                .is_match(&text)
                .then(|| product_term(&text))
                .flatten()
            {
                return call("lookup_product", json!({ "product_id": null, "name_search": term }));
            }
        }
        let looked_up = ["check_order_status", "get_customer_history", "lookup_product"]
            .into_iter()
            .any(made);
        if matches!(asks, None | Some("create_bug_report")) && !looked_up && !made("query_help_articles") {
            let category = state.classification.as_ref().map(|c| c.category);
            let search: String = state.ticket.subject.chars().take(200).collect();
            return call(
                "query_help_articles",
                json!({ "category": category, "search_term": search }),
            );
        }
        match plan::plan(state, &facts) {
            Some(planned) if !made(planned.tool) => call(planned.tool, planned.args),
            _ => None,
        }
    }

    /// The reply from what the run found: the offline templates, with the help articles the
    /// agent looked up as the research.
    pub fn reply(state: &TicketState) -> String {
        let mut answered = state.clone();
        let articles: Vec<ArticleHit> = state
            .actions
            .iter()
            .filter(|a| a.tool == "query_help_articles")
            .filter_map(|a| a.output::<Articles>())
            .flat_map(|found| found.articles)
            .map(|article| ArticleHit {
                id: article.id,
                title: article.title,
                category: article.category,
                score: 0.0,
                passage: article.passage,
            })
            .collect();
        if answered.research.is_none() {
            answered.research = Some(Research {
                articles,
                history: Vec::new(),
            });
        }
        crate::offline::compose(&answered)
    }
}

#[async_trait]
impl Planner for OfflinePlanner {
    async fn next(&self, state: &TicketState, _tools: &[ToolSpec]) -> Result<Produced<Move>, EngineError> {
        let mut state = state.clone();
        Self::analyse(&mut state);
        let value = match Self::next_call(&state) {
            Some(call) => Move::Call(call),
            None => Move::Reply(Self::reply(&state)),
        };
        Ok(Produced {
            value,
            engine: OfflineEngine::engine_use(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_questions_name_the_product() {
        assert_eq!(
            product_term("Is the Wireless Headphones Pro in stock?").as_deref(),
            Some("headphones pro")
        );
        assert_eq!(
            product_term("How much does the ergonomic mouse cost?").as_deref(),
            Some("ergonomic mouse")
        );
        assert_eq!(
            product_term("Do you sell laptop backpacks?").as_deref(),
            Some("laptop backpack")
        );
        assert!(ASKS_ABOUT_A_PRODUCT.is_match("Is the 27-inch monitor compatible with a Mac?"));
        assert!(!ASKS_ABOUT_A_PRODUCT.is_match("My order has not arrived"));
    }

    #[test]
    fn account_questions_and_the_last_order_are_recognised() {
        assert!(ASKS_ABOUT_THEIR_ACCOUNT.is_match("Can you list my recent orders?"));
        assert!(ASKS_ABOUT_THEIR_ACCOUNT.is_match("What did I buy last month?"));
        assert!(!ASKS_ABOUT_THEIR_ACCOUNT.is_match("Where is order ord_12345?"));
        assert!(THE_LAST_ORDER.is_match("Please refund my last order"));
        assert!(!THE_LAST_ORDER.is_match("the last orders of Jane"));
    }
}
