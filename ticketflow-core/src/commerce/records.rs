//! The support data's records, as the store and the order service return them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Address {
    /// Street and number.
    pub line: String,
    /// City.
    pub city: String,
    /// State or region.
    pub region: String,
    /// Postal code.
    pub postal_code: String,
    /// Country.
    pub country: String,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {}, {} {}, {}",
            self.line, self.city, self.region, self.postal_code, self.country
        )
    }
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Customer {
    /// Its id (`cust_john_doe`).
    pub id: String,
    /// Its e-mail address.
    pub email: String,
    /// Its name.
    pub name: String,
    /// Its phone number.
    pub phone: Option<String>,
    /// `standard`, `premium`, `vip`, ...
    pub tier: String,
    /// What it has spent with the company.
    pub lifetime_value: Money,
    /// Where its orders go.
    pub address: Address,
}

impl Customer {
    /// True when `reference` is this customer's id or e-mail address, in any case.
    pub fn is(&self, reference: &str) -> bool {
        let reference = reference.trim();
        reference.eq_ignore_ascii_case(&self.id) || reference.eq_ignore_ascii_case(&self.email)
    }
}

/// A product of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Product {
    /// Its id (`prod_wh1000`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Its price.
    pub price: Money,
    /// `electronics`, `accessories`, ...
    pub category: String,
    /// Whether it can be bought now.
    pub in_stock: bool,
}

/// Which products to find: by id, or by a piece of the name (at most `limit`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProductQuery {
    /// An exact product id.
    pub id: Option<String>,
    /// Text the name contains, in any case (matched literally: `%` and `_` are characters).
    pub name_contains: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed, not yet paid or confirmed.
    Pending,
    /// Being prepared.
    Processing,
    /// With the carrier.
    Shipped,
    /// Arrived.
    Delivered,
    /// Cancelled before it shipped.
    Cancelled,
    /// Refunded in full.
    Refunded,
    /// Refunded in part.
    PartiallyRefunded,
}

impl OrderStatus {
    /// Every status.
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::Pending,
        OrderStatus::Processing,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
        OrderStatus::Refunded,
        OrderStatus::PartiallyRefunded,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Processing => "processing",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Refunded => "refunded",
            OrderStatus::PartiallyRefunded => "partially_refunded",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An order status name no [`OrderStatus`] has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status `{0}`")]
pub struct UnknownOrderStatus(pub String);

impl FromStr for OrderStatus {
    type Err = UnknownOrderStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownOrderStatus(s.to_owned()))
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderItem {
    /// The product.
    pub product_id: String,
    /// Its name.
    pub name: String,
    /// How many.
    pub quantity: u32,
    /// The price of one, when it was bought.
    pub unit_price: Money,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Order {
    /// Its id (`ord_12345`).
    pub id: String,
    /// Whose it is.
    pub customer_id: String,
    /// Where it is.
    pub status: OrderStatus,
    /// What was bought.
    pub items: Vec<OrderItem>,
    /// What it cost.
    pub total: Money,
    /// What has been refunded of it.
    pub refunded: Money,
    /// `UPS`, `FedEx`, `USPS`, ... once shipped.
    pub carrier: Option<String>,
    /// The carrier's tracking number, once shipped.
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
    pub ship_to: Address,
}

impl Order {
    /// What can still be refunded.
    pub fn refundable(&self) -> Money {
        self.total
            .checked_sub(self.refunded)
            .unwrap_or(Money::ZERO)
            .max(Money::ZERO)
    }
}

/// A refund ticketflow made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Refund {
    /// Its id (`RF-…`; the order service's own id when it made it).
    pub id: String,
    /// The order.
    pub order_id: String,
    /// The ticket it was made for.
    pub ticket_id: Uuid,
    /// The tool call that made it.
    pub call_id: Uuid,
    /// How much.
    pub amount: Money,
    /// Why.
    pub reason: String,
    /// `completed`.
    pub status: String,
    /// The approval it was made under, if a person approved it.
    pub approval_id: Option<Uuid>,
    /// When.
    pub created_at: DateTime<Utc>,
}
