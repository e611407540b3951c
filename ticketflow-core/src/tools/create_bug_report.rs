//! `create_bug_report`: a GitHub issue when `GITHUB_TOKEN` and `GITHUB_REPO` are set, else a
//! local report; either way a `bug_reports` row. GitHub takes no idempotency key, so an issue
//! is opened at least once: a run that crashes after opening it and before journaling the
//! call opens another, with the same call id in its body to tell them apart.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Run, Scoped, Tool, ToolEnv, ToolError, bounded};
use crate::store::{Applied, Effect, ToolCall};

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Cosmetic.
    Low,
    /// Annoying.
    Medium,
    /// Blocks some work.
    High,
    /// Blocks the customer entirely, or loses data.
    Critical,
}

impl Priority {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

/// The report.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BugReportArgs {
    /// A short title.
    pub title: String,
    /// What happens, and how to make it happen.
    pub description: String,
    /// How bad it is.
    pub priority: Priority,
}

/// The report made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BugReportView {
    /// Its id.
    pub bug_id: String,
    /// The GitHub issue, when one was opened.
    pub url: Option<String>,
    /// Its priority.
    pub priority: Priority,
}

/// The tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateBugReport;

#[async_trait]
impl Tool for CreateBugReport {
    type Args = BugReportArgs;
    type Output = BugReportView;

    const NAME: &'static str = "create_bug_report";
    const DESCRIPTION: &'static str = "Report a bug in the product (a GitHub issue when configured), with a priority: \
         low, medium, high or critical.";

    async fn check(&self, _env: &ToolEnv, _scope: &Scoped, args: &BugReportArgs) -> Result<(), ToolError> {
        bounded("title", &args.title, 200, true)?;
        bounded("description", &args.description, 5000, true)
    }

    async fn run(
        &self,
        env: &ToolEnv,
        _scope: &Scoped,
        call: &ToolCall,
        args: BugReportArgs,
    ) -> Result<Run<BugReportView>, ToolError> {
        #[cfg(feature = "http")]
        let external_url = match &env.github {
            Some(github) => Some(
                github
                    .open_issue(call, &args.title, &args.description, args.priority)
                    .await?,
            ),
            None => None,
        };
        #[cfg(not(feature = "http"))]
        let external_url = {
            let _ = (env, call);
            None
        };
        let priority = args.priority;
        let url = external_url.clone();
        Ok(Run::Effect(
            Effect::BugReport {
                title: args.title,
                description: args.description,
                priority: priority.as_str().into(),
                external_url,
            },
            Box::new(move |applied| match applied {
                Applied::BugReported { id } => Ok(BugReportView {
                    bug_id: id.clone(),
                    url: url.clone(),
                    priority,
                }),
                other => Err(ToolError::Refused(format!("unexpected effect {other:?}"))),
            }),
        ))
    }
}
