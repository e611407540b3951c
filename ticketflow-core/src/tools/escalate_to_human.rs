//! `escalate_to_human`: hands the ticket to a person. The escalation is stored, and the
//! ticket's run ends `escalated` (no automatic reply).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Run, Scoped, Tool, ToolEnv, ToolError, bounded};
use crate::store::{Applied, Effect, ToolCall};

/// Why, and what the person should do.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationArgs {
    /// Why a person must take over.
    pub reason: String,
    /// What they should do.
    pub suggested_action: String,
}

/// The escalation made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EscalationView {
    /// Its id.
    pub escalation_id: String,
    /// `escalated`.
    pub status: String,
}

/// The tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscalateToHuman;

#[async_trait]
impl Tool for EscalateToHuman {
    type Args = EscalationArgs;
    type Output = EscalationView;

    const NAME: &'static str = "escalate_to_human";
    const DESCRIPTION: &'static str =
        "Hand this ticket to a person (no automatic reply is sent), with the reason and a suggested action.";

    async fn check(&self, _env: &ToolEnv, _scope: &Scoped, args: &EscalationArgs) -> Result<(), ToolError> {
        bounded("reason", &args.reason, 1000, true)?;
        bounded("suggested_action", &args.suggested_action, 1000, true)
    }

    async fn run(
        &self,
        _env: &ToolEnv,
        _scope: &Scoped,
        _call: &ToolCall,
        args: EscalationArgs,
    ) -> Result<Run<EscalationView>, ToolError> {
        Ok(Run::Effect(
            Effect::Escalation {
                reason: args.reason,
                suggested_action: args.suggested_action,
            },
            Box::new(|applied| match applied {
                Applied::Escalated { id } => Ok(EscalationView {
                    escalation_id: id.clone(),
                    status: "escalated".into(),
                }),
                other => Err(ToolError::Refused(format!("unexpected effect {other:?}"))),
            }),
        ))
    }
}
