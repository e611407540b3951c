//! Replies from templates filled with the entities and the best article.

use std::fmt::Write as _;

use crate::facts::Facts;
use crate::{Category, TicketState};

fn acknowledgement(issue_type: Option<&str>, category: Category) -> &'static str {
    match issue_type {
        Some("double_charge") => "I'm sorry to see a charge appear more than once on your statement.",
        Some("refund_request") => "I understand you would like some of your money back.",
        Some("invoice_request") => "I can help you get the invoice or receipt you need.",
        Some("plan_change") => "I can help you with changing your plan.",
        Some("cancellation") => "I'm sorry to hear you want to cancel, and I'll make the next steps clear.",
        Some("payment_failed") => "I'm sorry your payment did not go through.",
        Some("pricing_question") => "Thanks for asking about our pricing.",
        Some("crash") => "I'm sorry the app is crashing on you; that is frustrating.",
        Some("performance") => "I'm sorry things are running slowly for you.",
        Some("sync_issue") => "I'm sorry your data is not syncing as it should.",
        Some("api_error") => "I'm sorry you are running into errors with our API.",
        Some("integration_issue") => "I'm sorry the integration is not behaving as expected.",
        Some("installation") => "I'm sorry the installation is giving you trouble.",
        Some("connectivity") => "I'm sorry your device is having trouble connecting.",
        Some("data_issue") => "I understand how worrying it is when data looks wrong or missing.",
        Some("bug") => "Thank you for reporting this problem.",
        Some("password_reset") => "I can help you get back into your account with a password reset.",
        Some("two_factor") => "I can help you with two-factor authentication.",
        Some("account_locked") => "I'm sorry you are locked out of your account.",
        Some("security_concern") => "Thank you for telling us right away; we take account security seriously.",
        Some("account_deletion") => "I can explain how account deletion and data export work.",
        Some("profile_update") => "I can help you update your account details.",
        Some("login_problem") => "I'm sorry you are having trouble signing in.",
        Some("shipping") => "Thanks for checking in about your delivery.",
        Some("return") => "I can help you with your return.",
        Some("warranty") => "I'm sorry your device is not working as it should; let's look at your warranty options.",
        Some("feature_request") => "Thank you for the suggestion; ideas like this shape our roadmap.",
        Some("feedback") => "Thank you for taking the time to share your feedback.",
        Some("pre_sales") => "Thanks for your interest in Northwind.",
        Some("partnership") => "Thank you for your interest in partnering with Northwind.",
        _ => match category {
            Category::Billing => "Thank you for reaching out about your billing.",
            Category::Technical => "Thank you for reporting this problem.",
            Category::Account => "Thank you for reaching out about your account.",
            Category::General => "Thank you for getting in touch.",
        },
    }
}

fn next_steps(category: Category) -> &'static str {
    match category {
        Category::Billing => {
            "I have passed your case to our billing specialists. Refunds, credits and charge corrections are \
             reviewed and approved only by them, and you will normally hear back within 3 business days. Please \
             never send us your full card number."
        }
        Category::Technical => {
            "If these steps do not solve it, please reply with your app version, your device and operating \
             system, and the exact error message or a screenshot, and we will investigate further."
        }
        Category::Account => {
            "For your security we will never ask for your password. Any change of account ownership or deletion \
             is confirmed by our security team before it happens."
        }
        Category::General => "If there is anything else we can help with, just reply to this message.",
    }
}

/// The most characters of an article passage quoted in a reply (less on a revision that was
/// too long).
const PASSAGE_CHARS: usize = 600;

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    match cut.rfind(['.', '\n']) {
        Some(end) if end > max / 2 => cut[..=end].trim_end().to_owned(),
        _ => format!("{}...", cut.trim_end()),
    }
}

/// Writes a reply for the state's ticket. A revision (when the last review found problems)
/// quotes less of the article if the last draft was too long.
pub(crate) fn compose(state: &TicketState) -> String {
    let category = state.classification.as_ref().map_or(Category::General, |c| c.category);
    let entities = state.entities.clone().unwrap_or_default();
    let too_long = state
        .review
        .as_ref()
        .is_some_and(|r| r.notes.iter().any(|n| n.starts_with("too long")));
    let passage_chars = if too_long { PASSAGE_CHARS / 3 } else { PASSAGE_CHARS };

    let facts = Facts::of(state);
    let mut reply = String::from("Hello,\n\n");
    reply.push_str(acknowledgement(entities.issue_type.as_deref(), category));
    if let Some(order_id) = &entities.order_id
        && facts.order.is_none()
        && facts.order_not_found.is_none()
    {
        let _ = write!(reply, " I have noted your order {order_id} on this ticket.");
    }
    reply.push_str("\n\n");
    let stated = facts.sentences();
    for sentence in &stated {
        reply.push_str(sentence);
        reply.push_str("\n\n");
    }
    if let Some(article) = state.research.as_ref().and_then(|r| r.articles.first()) {
        let _ = write!(
            reply,
            "Our help article \"{}\" covers this:\n\n{}\n\n",
            article.title,
            shorten(&article.passage, passage_chars)
        );
    }
    if facts.outcome.is_some() {
        reply.push_str(next_steps(Category::General));
    } else {
        reply.push_str(next_steps(category));
    }
    reply.push_str("\n\nBest regards,\nNorthwind Support");
    reply
}
