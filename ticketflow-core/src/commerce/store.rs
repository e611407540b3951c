//! Support data in the store's own tables.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Commerce, CommerceError, Customer, Order, Product, ProductQuery, RefundRequest, RemoteRefund};
use crate::store::{Store, StoreError};

/// The store's `customers`, `products`, `orders` and `order_items`; refunds are made in the
/// same transaction as the tool call's journal row.
#[derive(Clone)]
pub struct StoreCommerce {
    store: Arc<dyn Store>,
}

impl StoreCommerce {
    /// Support data in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

fn unavailable(error: StoreError) -> CommerceError {
    if error.is_outage() {
        CommerceError::Unavailable(error.to_string())
    } else {
        CommerceError::Refused(error.to_string())
    }
}

#[async_trait]
impl Commerce for StoreCommerce {
    async fn customer(&self, reference: &str) -> Result<Option<Customer>, CommerceError> {
        self.store.customer(reference).await.map_err(unavailable)
    }

    async fn orders(&self, customer_id: &str, limit: usize) -> Result<Vec<Order>, CommerceError> {
        self.store
            .customer_orders(customer_id, limit)
            .await
            .map_err(unavailable)
    }

    async fn order(&self, order_id: &str) -> Result<Option<Order>, CommerceError> {
        self.store.order(order_id).await.map_err(unavailable)
    }

    async fn products(&self, query: &ProductQuery) -> Result<Vec<Product>, CommerceError> {
        self.store.products(query).await.map_err(unavailable)
    }

    async fn refund(&self, _request: &RefundRequest) -> Result<Option<RemoteRefund>, CommerceError> {
        Ok(None)
    }
}
