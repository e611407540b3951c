//! The webhook deliveries (README's "Webhooks"): what was sent where, and a person's retry.

use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use ticketflow_core::store::{Role, Store, WebhookQuery};
use uuid::Uuid;

use crate::audit;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, body};
use crate::model::{DeliveryList, DeliveryStatus, DeliveryView, WebhookEventType};

/// The webhook operations.
pub struct WebhooksApi {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) access: Access,
}

#[derive(Debug, ApiResponse)]
enum Retried {
    /// Due now, with a new retry window.
    #[oai(status = 202)]
    Accepted(Json<DeliveryView>),
}

#[OpenApi]
impl WebhooksApi {
    /// List webhook deliveries, newest first: status, attempts, last error, next attempt.
    ///
    /// Role: viewer.
    #[oai(
        path = "/webhooks/deliveries",
        method = "get",
        operation_id = "list_webhook_deliveries"
    )]
    async fn list_deliveries(
        &self,
        /// Only deliveries in this status.
        status: Query<Option<DeliveryStatus>>,
        /// Only deliveries of this event type.
        event_type: Query<Option<WebhookEventType>>,
        /// Only this ticket's deliveries.
        ticket_id: Query<Option<Uuid>>,
        /// 1-based page.
        #[oai(
            default = "crate::api::default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<u32>,
        /// 1 to 100.
        #[oai(
            default = "crate::api::default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<u32>,
        caller: Caller,
    ) -> Result<Json<DeliveryList>, ApiError> {
        caller.require(&self.access, Role::Viewer).await?;
        let found = self
            .store
            .webhook_deliveries(&WebhookQuery {
                status: status.0.map(Into::into),
                event_type: event_type.0.map(|t| t.as_str().to_owned()),
                ticket_id: ticket_id.0,
                page: page.0,
                page_size: page_size.0,
            })
            .await?;
        Ok(Json(DeliveryList {
            deliveries: found.deliveries.into_iter().map(Into::into).collect(),
            total: found.total,
            page: found.page,
            page_size: found.page_size,
        }))
    }

    /// Retry a failed (or pending) delivery now, with a new retry window. A delivered one is a
    /// 409.
    ///
    /// Role: agent.
    #[oai(
        path = "/webhooks/deliveries/:id/retry",
        method = "post",
        operation_id = "retry_webhook_delivery"
    )]
    async fn retry_delivery(
        &self,
        #[oai(validator(minimum(value = "1")))] id: Path<i64>,
        caller: Caller,
    ) -> Result<Retried, ApiError> {
        let actor = caller.require(&self.access, Role::Agent).await?;
        match self.store.retry_webhook(id.0).await? {
            Some(delivery) => {
                let detail = serde_json::json!({ "ticket_id": delivery.ticket_id, "endpoint": delivery.endpoint });
                audit::record(
                    self.store.as_ref(),
                    &actor,
                    "webhook.retried",
                    Some(delivery.id.to_string()),
                    detail,
                )
                .await;
                Ok(Retried::Accepted(Json(delivery.into())))
            }
            None => Err(ApiError::NotFound(body(
                "not_found",
                format!("webhook delivery {} not found", id.0),
                None,
            ))),
        }
    }
}
