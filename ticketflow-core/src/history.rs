//! Where research finds a customer's earlier tickets. The stores implement it.

use async_trait::async_trait;

use crate::PastTicket;
use crate::store::StoreError;

/// A source of a customer's recent tickets.
#[async_trait]
pub trait HistorySource: Send + Sync {
    /// Up to `limit` of the customer's tickets other than `except_ticket`, newest first.
    async fn recent_tickets(
        &self,
        customer_id: &str,
        except_ticket: &str,
        limit: usize,
    ) -> Result<Vec<PastTicket>, StoreError>;
}
