//! `process_refund`: refunds part or all of one of the ticket's customer's orders. Always
//! held for a person's approval (unless under `AUTO_APPROVE_REFUND_BELOW`). The amount is
//! checked when proposed (more than 0, at most what is refundable) and again, atomically,
//! when the refund is made: the same call is the same refund, any other is capped by what is
//! still refundable then.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check_order_status::own_order;
use super::{Run, Scoped, Tool, ToolEnv, ToolError, bounded};
use crate::commerce::{OrderStatus, RefundRequest};
use crate::money::Money;
use crate::store::{Applied, Effect, ToolCall};

/// The refund.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundArgs {
    /// The order, in any form the customer wrote it.
    pub order_id: String,
    /// How much, in dollars.
    pub amount: Money,
    /// Why.
    pub reason: String,
}

/// The refund made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RefundView {
    /// Its id.
    pub refund_id: String,
    /// The order service's id for it, when it made it.
    pub external_id: Option<String>,
    /// The order.
    pub order_id: String,
    /// How much.
    pub amount: Money,
    /// Why.
    pub reason: String,
    /// The order's status after it.
    pub order_status: Option<OrderStatus>,
    /// What is still refundable.
    pub refundable_remaining: Option<Money>,
}

/// The tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessRefund;

#[async_trait]
impl Tool for ProcessRefund {
    type Args = RefundArgs;
    type Output = RefundView;

    const NAME: &'static str = "process_refund";
    const DESCRIPTION: &'static str = "Refund part or all of one of this customer's orders (needs a person's approval). \
         The amount must be more than 0 and at most what is still refundable.";

    fn amount(&self, args: &RefundArgs) -> Option<Money> {
        Some(args.amount)
    }

    fn always_needs_approval(&self) -> bool {
        true
    }

    async fn check(&self, env: &ToolEnv, scope: &Scoped, args: &RefundArgs) -> Result<(), ToolError> {
        bounded("reason", &args.reason, 500, true)?;
        if !args.amount.is_positive() {
            return Err(ToolError::Invalid(format!(
                "`amount` must be more than 0, not {}",
                args.amount
            )));
        }
        let order = own_order(env, scope, &args.order_id).await?;
        let refundable = order.refundable();
        if refundable == Money::ZERO {
            return Err(ToolError::Refused(format!(
                "order {} has nothing left to refund",
                order.id
            )));
        }
        if args.amount > refundable {
            return Err(ToolError::Refused(format!(
                "{} is more than the {refundable} still refundable on order {}",
                args.amount, order.id
            )));
        }
        Ok(())
    }

    async fn run(
        &self,
        env: &ToolEnv,
        scope: &Scoped,
        call: &ToolCall,
        args: RefundArgs,
    ) -> Result<Run<RefundView>, ToolError> {
        let order = own_order(env, scope, &args.order_id).await?;
        let request = RefundRequest {
            call_id: call.call_id,
            ticket_id: call.ticket_id,
            order_id: order.id.clone(),
            amount: args.amount,
            reason: args.reason.clone(),
        };
        let remote = env.commerce.refund(&request).await?;
        let effect = Effect::Refund {
            order_id: order.id,
            amount: args.amount,
            reason: args.reason,
            remote,
        };
        Ok(Run::Effect(
            effect,
            Box::new(|applied| match applied {
                Applied::Refunded {
                    refund,
                    order_status,
                    refundable,
                } => Ok(RefundView {
                    refund_id: refund.id.clone(),
                    external_id: None,
                    order_id: refund.order_id.clone(),
                    amount: refund.amount,
                    reason: refund.reason.clone(),
                    order_status: *order_status,
                    refundable_remaining: *refundable,
                }),
                Applied::RefundRefused { refundable: Some(left) } => Err(ToolError::Refused(format!(
                    "only {left} is still refundable on this order (another refund came first)"
                ))),
                Applied::RefundRefused { refundable: None } => Err(ToolError::NotFound("the order is gone".into())),
                other => Err(ToolError::Refused(format!("unexpected effect {other:?}"))),
            }),
        ))
    }
}
