//! The company's support data — customers, products, orders, refunds — and where it lives:
//! the store's own tables ([`StoreCommerce`], the default) or a company's own order service
//! over HTTP (`HttpCommerce`, `COMMERCE_API_URL`, feature `http`). The tools read and change it
//! through [`Commerce`], always for one ticket's customer.

#[cfg(feature = "http")]
mod http;
mod order_ref;
mod records;
mod store;

use async_trait::async_trait;
use uuid::Uuid;

#[cfg(feature = "http")]
pub use http::HttpCommerce;
pub use order_ref::order_id_candidates;
pub use records::{
    Address, Customer, Order, OrderItem, OrderStatus, Product, ProductQuery, Refund, UnknownOrderStatus,
};
pub use store::StoreCommerce;

use crate::money::Money;

/// Why the support data could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum CommerceError {
    /// Worth trying again later: the service timed out, was unreachable or answered 5xx; the
    /// database is unavailable.
    #[error("the order service is unavailable: {0}")]
    Unavailable(String),
    /// The service refused the request (a 4xx, or a rule of the store): trying again will not
    /// help.
    #[error("the order service refused: {0}")]
    Refused(String),
}

impl CommerceError {
    /// True when trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, CommerceError::Unavailable(_))
    }
}

/// A refund to make.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundRequest {
    /// The tool call asking for it: its identity, and the refund's (a second request with the
    /// same call id is the same refund).
    pub call_id: Uuid,
    /// The ticket it is for.
    pub ticket_id: Uuid,
    /// The order.
    pub order_id: String,
    /// How much, more than 0 and at most what is still refundable.
    pub amount: Money,
    /// Why.
    pub reason: String,
}

/// What a refund made elsewhere returned.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteRefund {
    /// The service's id for it.
    pub id: String,
    /// The order's status after it.
    pub order_status: OrderStatus,
    /// What is still refundable on the order.
    pub refundable: Money,
}

/// Where support data lives.
#[async_trait]
pub trait Commerce: Send + Sync {
    /// The customer whose id or e-mail (in any case) is `reference`.
    async fn customer(&self, reference: &str) -> Result<Option<Customer>, CommerceError>;

    /// A customer's most recent orders, newest first.
    async fn orders(&self, customer_id: &str, limit: usize) -> Result<Vec<Order>, CommerceError>;

    /// The order `order_id` (exactly as the service knows it), whoever's it is: scope is the
    /// caller's to check.
    async fn order(&self, order_id: &str) -> Result<Option<Order>, CommerceError>;

    /// Products by id or by name.
    async fn products(&self, query: &ProductQuery) -> Result<Vec<Product>, CommerceError>;

    /// Makes a refund outside the store, idempotently by `request.call_id`; `None` when refunds
    /// are the store's own (made in the same transaction as the call's journal row).
    async fn refund(&self, request: &RefundRequest) -> Result<Option<RemoteRefund>, CommerceError>;
}
