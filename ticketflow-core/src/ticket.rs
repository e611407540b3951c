//! The ticket as the workflow sees it, and the vocabulary of its labels.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a customer wrote: the workflow's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketInput {
    /// The ticket's id (the workflow's thread id).
    pub id: String,
    /// Who wrote it.
    pub customer_id: String,
    /// The subject line.
    pub subject: String,
    /// The message.
    pub body: String,
}

impl TicketInput {
    /// Subject and body as one text, the subject first.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.subject, self.body)
    }
}

/// The four queues a ticket can be routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Charges, refunds, invoices, subscriptions, payment methods.
    Billing,
    /// The product misbehaves: errors, crashes, sync, API, devices.
    Technical,
    /// Login, password, 2FA, profile, access.
    Account,
    /// Everything else: shipping, returns, feedback, pre-sales.
    General,
}

impl Category {
    /// All categories, in a fixed order.
    pub const ALL: [Category; 4] = [
        Category::Billing,
        Category::Technical,
        Category::Account,
        Category::General,
    ];

    /// The lowercase name used in results and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Billing => "billing",
            Category::Technical => "technical",
            Category::Account => "account",
            Category::General => "general",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How soon the customer needs an answer.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    /// Questions, how-to, feedback.
    Low,
    /// Something is broken or wrong and blocks part of the customer's work.
    #[default]
    Medium,
    /// Outage, data loss, security, or a customer blocked and saying so.
    High,
}

impl Urgency {
    /// The lowercase name used in results and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Low => "low",
            Urgency::Medium => "medium",
            Urgency::High => "high",
        }
    }
}
