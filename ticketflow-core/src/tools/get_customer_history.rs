//! `get_customer_history`: the ticket's customer, their last five tickets and last five
//! orders. Only the ticket's own customer: any other id or address is not found.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{OrderView, Run, Scoped, Tool, ToolEnv, ToolError, bounded};
use crate::money::Money;
use crate::store::{ListQuery, TicketStatus, ToolCall};

/// How many tickets and orders.
const LIMIT: usize = 5;

/// Whose history.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryArgs {
    /// The customer's id or e-mail address.
    pub customer_id: String,
}

/// One of the customer's tickets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TicketSummary {
    /// Its id.
    pub ticket_id: Uuid,
    /// Its subject.
    pub subject: String,
    /// Its status.
    pub status: TicketStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// The customer and their recent activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerHistory {
    /// Their id.
    pub customer_id: String,
    /// Their name.
    pub name: String,
    /// Their e-mail address.
    pub email: String,
    /// Their tier.
    pub tier: String,
    /// What they have spent.
    pub lifetime_value: Money,
    /// Their last tickets, newest first.
    pub recent_tickets: Vec<TicketSummary>,
    /// Their last orders, newest first.
    pub recent_orders: Vec<OrderView>,
}

/// The tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct GetCustomerHistory;

#[async_trait]
impl Tool for GetCustomerHistory {
    type Args = HistoryArgs;
    type Output = CustomerHistory;

    const NAME: &'static str = "get_customer_history";
    const DESCRIPTION: &'static str =
        "This ticket's customer (by id or e-mail): name, e-mail, tier, lifetime value, last five tickets and orders.";

    async fn check(&self, _env: &ToolEnv, _scope: &Scoped, args: &HistoryArgs) -> Result<(), ToolError> {
        bounded("customer_id", &args.customer_id, 254, true)
    }

    async fn run(
        &self,
        env: &ToolEnv,
        scope: &Scoped,
        _call: &ToolCall,
        args: HistoryArgs,
    ) -> Result<Run<CustomerHistory>, ToolError> {
        let customer = scope.customer()?;
        if !customer.is(&args.customer_id) {
            return Err(ToolError::NotFound(format!("no customer {:?}", args.customer_id)));
        }
        // Tickets name their customer by id, or (e-mail) by address.
        let mut tickets = Vec::new();
        for reference in [customer.id.clone(), customer.email.to_ascii_lowercase()] {
            let page = env
                .store
                .list(&ListQuery {
                    page_size: LIMIT as u32,
                    customer_id: Some(reference),
                    ..ListQuery::default()
                })
                .await?;
            tickets.extend(page.tickets);
        }
        tickets.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        tickets.dedup_by_key(|t| t.id);
        let orders = env.commerce.orders(&customer.id, LIMIT).await?;
        Ok(Run::Done(CustomerHistory {
            customer_id: customer.id.clone(),
            name: customer.name.clone(),
            email: customer.email.clone(),
            tier: customer.tier.clone(),
            lifetime_value: customer.lifetime_value,
            recent_tickets: tickets
                .into_iter()
                .take(LIMIT)
                .map(|t| TicketSummary {
                    ticket_id: t.id,
                    subject: t.subject,
                    status: t.status,
                    created_at: t.created_at,
                })
                .collect(),
            recent_orders: orders.into_iter().map(OrderView::from).collect(),
        }))
    }
}
