//! The approval operations (README's "Workflows and approval"): the queue of held calls, one
//! request, a person's decision, and the desk's counts.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use ticketflow_core::processing::OutboxRelay;
use ticketflow_core::store::{ApprovalQuery, ApprovalStatus, Decision, Role, SEND_REPLY, Store, StoreError};
use uuid::Uuid;

use crate::RequestId;
use crate::audit;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, body};
use crate::model::{ApprovalFilter, ApprovalList, ApprovalView, DecideRequest, DecisionView, DeskStatsView};

/// The approval and dashboard operations.
pub struct ApprovalsApi {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) relay: Option<OutboxRelay>,
    pub(crate) access: Access,
}

#[OpenApi]
impl ApprovalsApi {
    /// List approval requests, oldest first.
    ///
    /// Role: viewer.
    #[oai(path = "/approvals", method = "get", operation_id = "list_approvals")]
    async fn list_approvals(
        &self,
        /// `pending` (the default), `approved`, `rejected` or `all`.
        #[oai(default = "default_filter")]
        status: Query<ApprovalFilter>,
        /// Only this ticket's requests.
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
    ) -> Result<Json<ApprovalList>, ApiError> {
        caller.require(&self.access, Role::Viewer).await?;
        let query = ApprovalQuery {
            status: status.0.status(),
            ticket_id: ticket_id.0,
            page: page.0,
            page_size: page_size.0,
        };
        let found = self.store.approvals(&query).await?;
        let (page, page_size) = query.bounded();
        Ok(Json(ApprovalList {
            approvals: found.approvals.into_iter().map(Into::into).collect(),
            total: found.total,
            page,
            page_size,
        }))
    }

    /// Get an approval request.
    ///
    /// Role: viewer.
    #[oai(path = "/approvals/:id", method = "get", operation_id = "get_approval")]
    async fn get_approval(&self, id: Path<Uuid>, caller: Caller) -> Result<Json<ApprovalView>, ApiError> {
        caller.require(&self.access, Role::Viewer).await?;
        let approval = self
            .store
            .approval(id.0)
            .await?
            .ok_or(StoreError::UnknownApproval(id.0))?;
        Ok(Json(approval.into()))
    }

    /// Decide a pending approval request: the ticket's run resumes from its gate.
    ///
    /// Approved: the call runs exactly once (a held reply is sent, or its `edited_response`).
    /// Rejected: the call never runs and the reply says so. Of concurrent deciders exactly one
    /// wins; every other gets 409.
    ///
    /// Role: agent.
    #[oai(path = "/approvals/:id/decide", method = "post", operation_id = "decide_approval")]
    async fn decide_approval(
        &self,
        id: Path<Uuid>,
        decision: Json<DecideRequest>,
        request_id: Data<&RequestId>,
        caller: Caller,
    ) -> Result<Json<DecisionView>, ApiError> {
        let actor = caller.require(&self.access, Role::Agent).await?;
        let Json(decision) = decision;
        let approval = self
            .store
            .approval(id.0)
            .await?
            .ok_or(StoreError::UnknownApproval(id.0))?;
        if decision.edited_response.is_some() && approval.action_type != SEND_REPLY {
            return Err(ApiError::Unprocessable(body(
                "validation_error",
                format!(
                    "`edited_response` is only for a held reply (send_reply); this request holds {}",
                    approval.action_type
                ),
                Some("edited_response".into()),
            )));
        }
        let decision = Decision {
            approved: decision.approved,
            reason: decision.reason.map(|t| t.0),
            edited_response: decision.edited_response.map(|t| t.0),
            // Who decided is whoever the request was authenticated as, never a claim in its
            // body (which counts only on an open API).
            decided_by: actor.0.clone().or(decision.decided_by.map(|t| t.0)),
            request_id: Some(request_id.0.0.clone()),
        };
        decision.validate()?;
        let decided = self.store.decide(id.0, decision).await?;
        let detail = serde_json::json!({
            "ticket_id": decided.ticket.id,
            "status": decided.approval.status.as_str(),
            "action_type": decided.approval.action_type,
        });
        audit::record(
            self.store.as_ref(),
            &actor,
            "approval.decided",
            Some(decided.approval.id.to_string()),
            detail,
        )
        .await;
        if let Some(relay) = &self.relay {
            relay.wake();
        }
        tracing::info!(
            approval_id = %decided.approval.id,
            ticket_id = %decided.ticket.id,
            status = %decided.approval.status,
            "approval decided: the run resumes"
        );
        let message = match decided.approval.status {
            ApprovalStatus::Approved => {
                format!("approved: {} runs and the ticket resumes", decided.approval.action_type)
            }
            _ => format!(
                "rejected: {} will not run; the ticket resumes and its reply says so",
                decided.approval.action_type
            ),
        };
        Ok(Json(DecisionView {
            approval_id: decided.approval.id,
            ticket_id: decided.ticket.id,
            status: decided.approval.status.into(),
            resumed: true,
            message,
        }))
    }

    /// The support desk's counts.
    ///
    /// Role: viewer.
    #[oai(path = "/dashboard/stats", method = "get", operation_id = "dashboard_stats")]
    async fn dashboard_stats(&self, caller: Caller) -> Result<Json<DeskStatsView>, ApiError> {
        caller.require(&self.access, Role::Viewer).await?;
        Ok(Json(self.store.desk_stats().await?.into()))
    }
}

fn default_filter() -> ApprovalFilter {
    ApprovalFilter::Pending
}
