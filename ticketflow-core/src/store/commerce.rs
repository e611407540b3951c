//! The support-data aggregate: customers, products, orders and their items, as the tools read
//! them (refunds are made through [`ToolStore`](super::ToolStore), with the call's journal).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::commerce::{Customer, Order, Product, ProductQuery};

/// How many records of each kind a demo-data load inserted (0 for those already there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemoLoaded {
    /// Customers.
    pub customers: u64,
    /// Products.
    pub products: u64,
    /// Orders (with their items).
    pub orders: u64,
}

/// Customers, products and orders.
#[async_trait]
pub trait CommerceStore: Send + Sync {
    /// The customer whose id or e-mail, in any case, is `reference`.
    async fn customer(&self, reference: &str) -> Result<Option<Customer>, StoreError>;

    /// A customer's most recent orders, newest first, with their items.
    async fn customer_orders(&self, customer_id: &str, limit: usize) -> Result<Vec<Order>, StoreError>;

    /// An order by id (in any case), with its items, whoever's it is.
    async fn order(&self, order_id: &str) -> Result<Option<Order>, StoreError>;

    /// Products by exact id, or whose name contains the text (literally, in any case).
    async fn products(&self, query: &ProductQuery) -> Result<Vec<Product>, StoreError>;

    /// Loads the demo records (`crate::demo`), dated relative to `now`; records already there
    /// are left as they are, so a second load inserts nothing.
    async fn load_demo_data(&self, now: DateTime<Utc>) -> Result<DemoLoaded, StoreError>;

    /// True when there is no customer at all (a fresh database).
    async fn has_no_customers(&self) -> Result<bool, StoreError>;
}
