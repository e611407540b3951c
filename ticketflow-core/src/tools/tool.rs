//! One tool: typed arguments and output (their strict JSON Schemas generated from the types),
//! a description, checks made when a call is proposed, and an execution.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Scoped, ToolEnv, ToolError};
use crate::money::Money;
use crate::store::{Applied, Effect, ToolCall};

/// Makes a call's output from what its effect did; an error becomes the call's result.
pub type RenderOutput<O> = Box<dyn Fn(&Applied) -> Result<O, ToolError> + Send + Sync>;

/// What running a call does.
pub enum Run<O> {
    /// Done outside the store (a read, a GitHub issue): the output to journal.
    Done(O),
    /// An effect on the store, committed with the journal; the output is made from what it
    /// did (inside the transaction), or an error that becomes the call's result.
    Effect(Effect, RenderOutput<O>),
}

/// A tool.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Its arguments. Optional ones are `Option`s: nullable and still listed as required in
    /// the strict schema, as OpenAI's strict mode wants.
    type Args: DeserializeOwned + JsonSchema + Send + Sync;
    /// What it returns.
    type Output: Serialize + JsonSchema + Send;

    /// Its name, as the seed has it.
    const NAME: &'static str;
    /// What it does, for the LLM and the API's documentation.
    const DESCRIPTION: &'static str;

    /// Checks scope, existence and limits when a call is proposed; an error is the call's
    /// result and the call never runs. Reads may check nothing and fail when they run.
    async fn check(&self, env: &ToolEnv, scope: &Scoped, args: &Self::Args) -> Result<(), ToolError>;

    /// Runs a call that was journaled and may run.
    async fn run(
        &self,
        env: &ToolEnv,
        scope: &Scoped,
        call: &ToolCall,
        args: Self::Args,
    ) -> Result<Run<Self::Output>, ToolError>;

    /// The amount a call moves, for the approval rule that lets small refunds through.
    fn amount(&self, _args: &Self::Args) -> Option<Money> {
        None
    }

    /// True when a call always waits for a person, whatever the rules say.
    fn always_needs_approval(&self) -> bool {
        false
    }
}

/// What the registry does with a call's output: its JSON, or the error that is its result.
pub(super) type Rendered = Result<serde_json::Value, ToolError>;

/// A type-erased [`Tool`], for the registry.
#[async_trait]
pub(super) trait DynTool: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn parameters(&self) -> serde_json::Value;
    fn output(&self) -> serde_json::Value;
    fn always_needs_approval(&self) -> bool;
    /// The arguments, parsed; an error names what is wrong.
    fn amount(&self, args: &serde_json::Value) -> Result<Option<Money>, ToolError>;
    async fn check(&self, env: &ToolEnv, scope: &Scoped, args: &serde_json::Value) -> Result<(), ToolError>;
    async fn run(&self, env: &ToolEnv, scope: &Scoped, call: &ToolCall) -> Result<Run<serde_json::Value>, ToolError>;
}

fn parse<A: DeserializeOwned>(args: &serde_json::Value) -> Result<A, ToolError> {
    serde_json::from_value(args.clone()).map_err(|e| ToolError::Invalid(e.to_string()))
}

fn to_json(output: impl Serialize) -> Rendered {
    serde_json::to_value(output).map_err(|e| ToolError::Invalid(format!("the output does not serialize: {e}")))
}

#[async_trait]
impl<T: Tool> DynTool for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn description(&self) -> &'static str {
        T::DESCRIPTION
    }

    fn parameters(&self) -> serde_json::Value {
        crate::schema::strict_schema::<T::Args>()
    }

    fn output(&self) -> serde_json::Value {
        schemars::schema_for!(T::Output).to_value()
    }

    fn always_needs_approval(&self) -> bool {
        Tool::always_needs_approval(self)
    }

    fn amount(&self, args: &serde_json::Value) -> Result<Option<Money>, ToolError> {
        Ok(Tool::amount(self, &parse::<T::Args>(args)?))
    }

    async fn check(&self, env: &ToolEnv, scope: &Scoped, args: &serde_json::Value) -> Result<(), ToolError> {
        Tool::check(self, env, scope, &parse::<T::Args>(args)?).await
    }

    async fn run(&self, env: &ToolEnv, scope: &Scoped, call: &ToolCall) -> Result<Run<serde_json::Value>, ToolError> {
        let args = parse::<T::Args>(&call.args)?;
        Ok(match Tool::run(self, env, scope, call, args).await? {
            Run::Done(output) => Run::Done(to_json(output)?),
            Run::Effect(effect, render) => Run::Effect(effect, Box::new(move |applied| to_json(render(applied)?))),
        })
    }
}
