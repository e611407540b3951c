//! `reset_password`: a reset link for the ticket's customer's own address only. The token is
//! stored hashed and expires in 24 hours; the e-mail that carries it is queued for the
//! customer.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Run, Scoped, Tool, ToolEnv, ToolError, bounded};
use crate::store::{Applied, Effect, ToolCall};

/// How long a reset link works.
const VALID_FOR: Duration = Duration::hours(24);

/// Whose password.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetArgs {
    /// The account's e-mail address (this ticket's customer's).
    pub user_email: String,
}

/// The reset requested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResetView {
    /// Its id.
    pub reset_id: String,
    /// Where the link goes.
    pub email: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
    /// `queued`: the e-mail waits for delivery.
    pub email_status: String,
}

/// The tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResetPassword;

#[async_trait]
impl Tool for ResetPassword {
    type Args = ResetArgs;
    type Output = ResetView;

    const NAME: &'static str = "reset_password";
    const DESCRIPTION: &'static str = "E-mail a password reset link (valid 24 hours) to this customer's own address.";

    async fn check(&self, _env: &ToolEnv, scope: &Scoped, args: &ResetArgs) -> Result<(), ToolError> {
        bounded("user_email", &args.user_email, 254, true)?;
        let customer = scope.customer()?;
        if !customer.email.eq_ignore_ascii_case(args.user_email.trim()) {
            return Err(ToolError::Refused(
                "a reset link can only go to this ticket's customer's own address".into(),
            ));
        }
        Ok(())
    }

    async fn run(
        &self,
        env: &ToolEnv,
        scope: &Scoped,
        _call: &ToolCall,
        args: ResetArgs,
    ) -> Result<Run<ResetView>, ToolError> {
        self.check(env, scope, &args).await?;
        let customer = scope.customer()?;
        let mut secret = [0_u8; 32];
        getrandom::fill(&mut secret).map_err(|e| ToolError::Unavailable(format!("no randomness: {e}")))?;
        let token = hex::encode(secret);
        let token_hash = hex::encode(Sha256::digest(token.as_bytes()));
        let expires_at = Utc::now() + VALID_FOR;
        let link = format!("{}?token={token}", env.reset_url);
        let message = serde_json::json!({
            "to": customer.email,
            "subject": "Reset your password",
            "text": format!(
                "Hello {},\n\nUse this link within 24 hours to choose a new password:\n{link}\n\n\
                 If you did not ask for it, ignore this e-mail: your password stays as it is.\n",
                customer.name
            ),
        });
        let email = customer.email.clone();
        Ok(Run::Effect(
            Effect::PasswordReset {
                customer_id: customer.id.clone(),
                email: email.clone(),
                token_hash,
                expires_at,
                message,
            },
            Box::new(move |applied| match applied {
                Applied::ResetRequested { id, expires_at } => Ok(ResetView {
                    reset_id: id.clone(),
                    email: email.clone(),
                    expires_at: *expires_at,
                    email_status: "queued".into(),
                }),
                other => Err(ToolError::Refused(format!("unexpected effect {other:?}"))),
            }),
        ))
    }
}
