//! What the run's tool calls established, read back from its state: the order and customer the
//! lookups found (or did not), and what the proposed action came to. The draft states these
//! facts (the offline templates and the LLM prompt both take them from here) and the review
//! checks the reply against them.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::commerce::OrderStatus;
use crate::money::Money;
use crate::store::CallStatus;
use crate::tools::{BugReportView, CustomerHistory, OrderView, RefundView, ResetView};
use crate::{ActionTaken, TicketState};

/// What an action came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A refund was made.
    Refunded(RefundView),
    /// A password reset e-mail is on its way.
    ResetSent(ResetView),
    /// A bug report was filed.
    BugFiled(BugReportView),
    /// A person reviewed the request and did not approve it.
    Rejected {
        /// The tool.
        tool: String,
        /// The reviewer's reason, if given.
        reason: Option<String>,
    },
    /// The request could not be carried out (its checks refused it, or its effect did).
    Refused {
        /// The tool.
        tool: String,
        /// Why, as the tool said.
        message: String,
    },
}

/// The facts of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The order the ticket names, when it is the customer's.
    pub order: Option<OrderView>,
    /// The order id the ticket names, when no order of the customer's has it.
    pub order_not_found: Option<String>,
    /// The customer's account, when there is one.
    pub customer: Option<CustomerHistory>,
    /// What the proposed action came to, once settled.
    pub outcome: Option<Outcome>,
}

/// The message of an error result (`{"error": …, "message": …}`).
fn error_message(action: &ActionTaken) -> String {
    action
        .result
        .as_ref()
        .and_then(|r| r.get("message"))
        .and_then(|m| m.as_str())
        .unwrap_or("it could not be done")
        .to_owned()
}

impl Facts {
    /// The facts in `state`'s tool calls.
    pub fn of(state: &TicketState) -> Self {
        let mut facts = Facts::default();
        for action in &state.actions {
            match action.tool.as_str() {
                "check_order_status" => match action.output::<OrderView>() {
                    Some(order) => facts.order = Some(order),
                    None if action.status == CallStatus::Failed => {
                        facts.order_not_found = action.args.get("order_id").and_then(|v| v.as_str()).map(str::to_owned);
                    }
                    None => {}
                },
                "get_customer_history" => facts.customer = action.output(),
                _ => {}
            }
        }
        facts.outcome = state.action().and_then(|action| match action.status {
            CallStatus::Executed => match action.tool.as_str() {
                "process_refund" => action.output().map(Outcome::Refunded),
                "reset_password" => action.output().map(Outcome::ResetSent),
                "create_bug_report" => action.output().map(Outcome::BugFiled),
                _ => None,
            },
            CallStatus::Rejected => Some(Outcome::Rejected {
                tool: action.tool.clone(),
                reason: action
                    .result
                    .as_ref()
                    .and_then(|r| r.get("reason"))
                    .and_then(|m| m.as_str())
                    .map(str::to_owned),
            }),
            CallStatus::Failed => Some(Outcome::Refused {
                tool: action.tool.clone(),
                message: error_message(action),
            }),
            _ => None,
        });
        facts
    }

    /// True when there is anything to state.
    pub fn is_empty(&self) -> bool {
        *self == Facts::default()
    }

    /// True when a refund was made in this run: only then may a reply say so.
    pub fn refunded(&self) -> bool {
        matches!(self.outcome, Some(Outcome::Refunded(_)))
    }

    /// Every order id the reply may name: the ticket's order, and the customer's own.
    pub fn order_ids(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        ids.extend(self.order.iter().map(|o| o.order_id.to_lowercase()));
        if let Some(customer) = &self.customer {
            ids.extend(customer.recent_orders.iter().map(|o| o.order_id.to_lowercase()));
        }
        ids
    }

    /// Every tracking number the reply may give.
    pub fn tracking_numbers(&self) -> BTreeSet<String> {
        let orders = self
            .order
            .iter()
            .chain(self.customer.iter().flat_map(|c| c.recent_orders.iter()));
        orders.filter_map(|o| o.tracking_number.clone()).collect()
    }

    /// Every amount the reply may state: the orders' totals, lines, refunded and refundable
    /// amounts, and the refund made.
    pub fn amounts(&self) -> BTreeSet<Money> {
        let mut amounts = BTreeSet::new();
        let orders = self
            .order
            .iter()
            .chain(self.customer.iter().flat_map(|c| c.recent_orders.iter()));
        for order in orders {
            amounts.extend([order.total, order.refunded, order.refundable]);
            for item in &order.items {
                amounts.insert(item.unit_price);
                if let Some(line) = item.unit_price.times(item.quantity) {
                    amounts.insert(line);
                }
            }
        }
        if let Some(Outcome::Refunded(refund)) = &self.outcome {
            amounts.insert(refund.amount);
            amounts.extend(refund.refundable_remaining);
        }
        amounts
    }

    /// Every date the reply may give, as [`date`] writes them.
    pub fn dates(&self) -> BTreeSet<String> {
        let orders = self
            .order
            .iter()
            .chain(self.customer.iter().flat_map(|c| c.recent_orders.iter()));
        let mut dates = BTreeSet::new();
        for order in orders {
            let known = [
                Some(order.placed_at),
                order.shipped_at,
                order.delivered_at,
                order.estimated_delivery,
            ];
            dates.extend(known.into_iter().flatten().map(date));
        }
        if let Some(Outcome::ResetSent(reset)) = &self.outcome {
            dates.insert(date(reset.expires_at));
        }
        dates
    }

    /// The facts as sentences for the customer, in the order a reply gives them.
    pub fn sentences(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(order) = &self.order {
            out.push(describe_order(order));
        }
        if let Some(id) = &self.order_not_found {
            out.push(format!(
                "I could not find an order {id} on your account. Could you check the order number on your \
                 confirmation e-mail and reply with it?"
            ));
        }
        if let Some(outcome) = &self.outcome {
            out.push(describe_outcome(outcome));
        }
        out
    }
}

/// A date as replies write it: `December 9, 2026`.
pub fn date(at: DateTime<Utc>) -> String {
    at.format("%B %-d, %Y").to_string()
}

fn items(order: &OrderView) -> String {
    let names: Vec<String> = order
        .items
        .iter()
        .map(|i| {
            if i.quantity > 1 {
                format!("{} x {}", i.quantity, i.name)
            } else {
                i.name.clone()
            }
        })
        .collect();
    names.join(", ")
}

fn describe_order(order: &OrderView) -> String {
    let id = &order.order_id;
    let what = format!("Your order {id} ({}, {})", items(order), order.total);
    let tracking = match (&order.carrier, &order.tracking_number) {
        (Some(carrier), Some(number)) => format!(" with {carrier}, tracking number {number}"),
        (Some(carrier), None) => format!(" with {carrier}"),
        _ => String::new(),
    };
    match order.status {
        OrderStatus::Pending | OrderStatus::Processing => format!(
            "{what} was placed on {} and is being prepared; it has not shipped yet.",
            date(order.placed_at)
        ),
        OrderStatus::Shipped => {
            let shipped = order.shipped_at.map(|d| format!(" on {}", date(d))).unwrap_or_default();
            let eta = order
                .estimated_delivery
                .map(|d| format!(" It should arrive by {}.", date(d)))
                .unwrap_or_default();
            format!("{what} shipped{shipped}{tracking}.{eta}")
        }
        OrderStatus::Delivered => {
            let delivered = order
                .delivered_at
                .map(|d| format!(" on {}", date(d)))
                .unwrap_or_default();
            format!("{what} was delivered{delivered}{tracking}.")
        }
        OrderStatus::Cancelled => format!("{what} was cancelled before it shipped."),
        OrderStatus::Refunded => format!("{what} has been refunded in full ({}).", order.refunded),
        OrderStatus::PartiallyRefunded => format!(
            "{what} has been partly refunded ({} so far, {} still refundable).",
            order.refunded, order.refundable
        ),
    }
}

fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Refunded(refund) => format!(
            "I have refunded {} for order {} to your original payment method (refund {}). It usually shows on \
             your statement within 5 to 10 business days.",
            refund.amount, refund.order_id, refund.refund_id
        ),
        Outcome::ResetSent(reset) => format!(
            "I have sent a password reset link to {}; it works until {} (reference {}).",
            reset.email,
            reset.expires_at.format("%B %-d, %Y %H:%M UTC"),
            reset.reset_id
        ),
        Outcome::BugFiled(bug) => match &bug.url {
            Some(url) => format!("I have filed this for our engineers as {} ({url}).", bug.bug_id),
            None => format!("I have filed this for our engineers as {}.", bug.bug_id),
        },
        // The reviewer's reason is for the desk (it is the call's result), never quoted to
        // the customer: it may name internal rules or other people.
        Outcome::Rejected { tool, .. } => format!(
            "Your {} was reviewed by our team and was not approved.",
            request_name(tool)
        ),
        Outcome::Refused { tool, message } => {
            format!("I could not go ahead with your {}: {message}.", request_name(tool))
        }
    }
}

fn request_name(tool: &str) -> &'static str {
    match tool {
        "process_refund" => "refund request",
        "reset_password" => "password reset request",
        "create_bug_report" => "bug report",
        "escalate_to_human" => "request for a specialist",
        _ => "request",
    }
}
