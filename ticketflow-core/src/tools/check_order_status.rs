//! `check_order_status`: one of the ticket's customer's orders, whatever form the id is
//! written in. Another customer's order is not found, exactly as a missing one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Run, Scoped, Tool, ToolEnv, ToolError, bounded};
use crate::commerce::{Address, Order, OrderItem, OrderStatus, order_id_candidates};
use crate::money::Money;
use crate::store::ToolCall;

/// Which order.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderStatusArgs {
    /// The order id as the customer wrote it (`ord_12345`, `ORD-12345`, `order #12345`, `12345`).
    pub order_id: String,
}

/// An order, as a tool shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderView {
    /// Its id.
    pub order_id: String,
    /// Where it is.
    pub status: OrderStatus,
    /// What was bought.
    pub items: Vec<OrderItem>,
    /// What it cost.
    pub total: Money,
    /// What has been refunded.
    pub refunded: Money,
    /// What can still be refunded.
    pub refundable: Money,
    /// The carrier, once shipped.
    pub carrier: Option<String>,
    /// The tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// When it shipped.
    pub shipped_at: Option<DateTime<Utc>>,
    /// When it arrived.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it should arrive.
    pub estimated_delivery: Option<DateTime<Utc>>,
    /// Where it goes.
    pub shipping_address: Address,
}

impl From<Order> for OrderView {
    fn from(order: Order) -> Self {
        Self {
            refundable: order.refundable(),
            order_id: order.id,
            status: order.status,
            items: order.items,
            total: order.total,
            refunded: order.refunded,
            carrier: order.carrier,
            tracking_number: order.tracking_number,
            placed_at: order.placed_at,
            shipped_at: order.shipped_at,
            delivered_at: order.delivered_at,
            estimated_delivery: order.estimated_delivery,
            shipping_address: order.ship_to,
        }
    }
}

/// The ticket's customer's order `reference` names (any of the forms customers write), or
/// not found — also when it is another customer's.
pub(super) async fn own_order(env: &ToolEnv, scope: &Scoped, reference: &str) -> Result<Order, ToolError> {
    bounded("order_id", reference, 64, true)?;
    let customer = scope.customer()?;
    for candidate in order_id_candidates(reference) {
        if let Some(order) = env.commerce.order(&candidate).await?
            && order.customer_id.eq_ignore_ascii_case(&customer.id)
        {
            return Ok(order);
        }
    }
    Err(ToolError::NotFound(format!("no order {reference:?} for this customer")))
}

/// The tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOrderStatus;

#[async_trait]
impl Tool for CheckOrderStatus {
    type Args = OrderStatusArgs;
    type Output = OrderView;

    const NAME: &'static str = "check_order_status";
    const DESCRIPTION: &'static str = "Look up one of this customer's orders: status, items, carrier, tracking number, \
         estimated delivery, shipping address and dates.";

    async fn check(&self, _env: &ToolEnv, _scope: &Scoped, args: &OrderStatusArgs) -> Result<(), ToolError> {
        bounded("order_id", &args.order_id, 64, true)
    }

    async fn run(
        &self,
        env: &ToolEnv,
        scope: &Scoped,
        _call: &ToolCall,
        args: OrderStatusArgs,
    ) -> Result<Run<OrderView>, ToolError> {
        Ok(Run::Done(own_order(env, scope, &args.order_id).await?.into()))
    }
}
