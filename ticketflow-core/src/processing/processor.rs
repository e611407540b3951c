//! One ticket, start to finish: claim it with a lease, run the workflow with the store's
//! fenced checkpointer (resuming after the last committed step), then complete it, schedule a
//! retry, or fail it: an engine's transient failure is retried later within the retry budget,
//! a permanent one or an exhausted budget fails the ticket, and a database outage is never
//! charged to it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use ticketflow_graph::{CancellationToken, CheckpointError, Checkpointer, GraphError, Outcome};
use uuid::Uuid;

use crate::queue::TicketMessage;
use crate::state::{Conversation, Said};
use crate::steps::HeldCall;
use crate::store::{
    Approval, ApprovalStatus, Direction, Failed, Fence, Interrupted, ManualRetry, NewApproval, NewEvent,
    RetryScheduled, Store, StoreError, Ticket, TicketStatus, TicketStore, Transition,
};
use crate::{EngineError, TicketInput, TicketState, Workflow};

/// How the processor behaves.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// This worker's id, recorded on the lease (`WORKER_ID`).
    pub worker_id: String,
    /// How long a claim lasts without a heartbeat; heartbeats renew it every third of it.
    pub lease: Duration,
    /// Retries after the LLM gave up, before a ticket fails for good (`MAX_RETRIES`): a ticket
    /// gets `max_retries + 1` attempts in all.
    pub max_retries: u32,
    /// The delay before the first retry; doubles with each failed attempt, up to 10 minutes.
    pub retry_backoff: Duration,
    /// After a database error: how long until the ticket is tried again.
    pub infrastructure_pause: Duration,
    /// Checkpoints kept per ticket once it completes (older history is pruned).
    pub retain_checkpoints: Option<usize>,
    /// Automatic e-mail replies one address gets in an hour, at most
    /// (`EMAIL_MAX_REPLIES_PER_HOUR`): a loop with an auto-responder that escapes the
    /// automatic-mail checks still ends here.
    pub max_replies_per_hour: u32,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            worker_id: default_worker_id(),
            lease: Duration::from_secs(30),
            max_retries: 3,
            retry_backoff: Duration::from_secs(5),
            infrastructure_pause: Duration::from_secs(2),
            retain_checkpoints: None,
            max_replies_per_hour: 5,
        }
    }
}

/// `<host name>-<pid>`.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// The ticket completed.
    Completed,
    /// The LLM gave up; a retry is scheduled (through the outbox, after a delay).
    RetryScheduled {
        /// Failed attempts so far.
        attempt: i32,
    },
    /// The ticket failed for good (`failed_permanent`, error in `result`).
    Failed,
    /// The ticket paused for a human decision (`awaiting_approval`).
    AwaitingApproval,
    /// The ticket was handed to a person (`escalated`): no automatic reply.
    Escalated,
    /// Nothing to do: unknown ticket, already finished, or held by another live worker.
    Skipped(&'static str),
    /// This run lost the ticket to another (its lease expired and was taken over).
    Superseded,
    /// The run hit a database error; the ticket was handed back and will be tried again.
    Released,
}

/// The processor could not even record what happened (the database is down): the message
/// should be requeued after a pause, and no retry budget was spent.
#[derive(Debug, thiserror::Error)]
#[error("infrastructure unavailable: {0}")]
pub struct ProcessError(#[from] pub StoreError);

impl ProcessError {
    /// True when the database is unreachable (worth waiting for), as opposed to an error that
    /// retrying will not fix.
    pub fn is_outage(&self) -> bool {
        self.0.is_outage()
    }
}

/// Removes NUL characters from every string in `value`: an LLM can be talked into emitting
/// them, and PostgreSQL cannot store them in JSON.
fn strip_nul(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) if s.contains('\0') => *s = s.replace('\0', ""),
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nul),
        serde_json::Value::Object(map) => map.values_mut().for_each(strip_nul),
        _ => {}
    }
}

/// Processes tickets; cheap to clone and share between worker tasks.
#[derive(Clone)]
pub struct Processor {
    store: Arc<dyn Store>,
    workflow: Workflow,
    config: Arc<ProcessorConfig>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Aborts a task when dropped, so a heartbeat never outlives the run it belongs to.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Processor {
    /// A processor over `store` running `workflow`.
    pub fn new(store: Arc<dyn Store>, workflow: Workflow, config: ProcessorConfig) -> Self {
        Self {
            store,
            workflow,
            config: Arc::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProcessorConfig {
        &self.config
    }

    /// Handles one message.
    pub async fn process(&self, message: &TicketMessage) -> Result<Processed, ProcessError> {
        let id = message.ticket_id;
        // Straight to the claim (one statement), which checks that the ticket can be
        // processed; only a refusal, rare, costs a second look to say why.
        let (ticket, fence) = match self.store.claim(id, &self.config.worker_id, self.config.lease).await {
            Ok(Some(claimed)) => claimed,
            Ok(None) => return Ok(self.why_not_claimed(id).await?),
            Err(StoreError::NotFound(_)) => {
                tracing::error!(ticket_id = %id, "message for an unknown ticket: dropped");
                return Ok(Processed::Skipped("unknown ticket"));
            }
            Err(other) => return Err(other.into()),
        };
        tracing::info!(ticket_id = %id, epoch = fence.epoch, "processing ticket");
        let started = std::time::Instant::now();
        let outcome = self.run_claimed(ticket, fence, message).await;
        metrics::histogram!("ticket_processing_duration_seconds").record(started.elapsed().as_secs_f64());
        if let Ok(processed) = &outcome {
            let status = match processed {
                Processed::Completed => Some("completed"),
                Processed::Failed => Some("failed_permanent"),
                Processed::RetryScheduled { .. } => Some("retry"),
                Processed::AwaitingApproval => Some("awaiting_approval"),
                Processed::Escalated => Some("escalated"),
                _ => None,
            };
            if let Some(status) = status {
                metrics::counter!("tickets_processed_total", "status" => status).increment(1);
            }
        }
        outcome
    }

    /// Why a claim was refused, for the log and the caller: one read, on this rare path only.
    async fn why_not_claimed(&self, id: Uuid) -> Result<Processed, StoreError> {
        Ok(match self.store.get(id).await? {
            None => Processed::Skipped("unknown ticket"),
            Some(t) if t.status == TicketStatus::Processing => {
                tracing::info!(ticket_id = %id, "ticket held by another live worker: message dropped");
                Processed::Skipped("held by another worker")
            }
            Some(t) if t.status == TicketStatus::Pending => Processed::Skipped("retry not yet due"),
            Some(_) => Processed::Skipped("not waiting to be processed"),
        })
    }

    fn heartbeat(&self, fence: Fence, lost: CancellationToken) -> AbortOnDrop {
        let store = self.store.clone();
        let lease = self.config.lease;
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match store.heartbeat(fence, lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(ticket_id = %fence.ticket_id, "lease lost: stopping the run");
                        lost.cancel();
                        return;
                    }
                    // The database is down: the checkpoint writes will fail too, and if it
                    // stays down the lease expires and another worker takes over.
                    Err(error) => tracing::warn!(%error, "heartbeat failed"),
                }
            }
        }))
    }

    async fn run_claimed(
        &self,
        ticket: Ticket,
        fence: Fence,
        message: &TicketMessage,
    ) -> Result<Processed, ProcessError> {
        let id = ticket.id;
        let lost = CancellationToken::new();
        let _heartbeat = self.heartbeat(fence, lost.clone());
        let checkpointer = self.store.checkpointer(Some(fence));
        // Each turn of the conversation is a thread of its own, so a reopened ticket runs
        // afresh on the whole conversation while the earlier turns' checkpoints stay.
        let thread = ticket.thread();
        // The first lease ever granted on a ticket: no run has held it, so no checkpoint can
        // exist (every write is fenced by a lease), and the run starts without reading any.
        let (paused, version) = if fence.epoch == 1 {
            (Ok(Paused::Not), None)
        } else {
            match self.paused_on(checkpointer.as_ref(), &thread).await {
                Ok((paused, version)) => (Ok(paused), version),
                Err(error) => (Err(error), None),
            }
        };
        // A ticket checkpointed under the other workflow (before `WORKFLOW` changed) finishes
        // on it.
        let graph = self.workflow.graph_for(version.as_deref());
        let mut runner = graph
            .runner()
            .checkpointer(checkpointer.clone())
            // The ticket's row holds the input: a run that stops before its first step's
            // checkpoint starts over from it, so the input needs no checkpoint of its own.
            .without_input_checkpoint()
            .cancellation(lost)
            .observer(Arc::new(record_step_durations))
            // The steps fence their effects with the lease (see `steps::scope`).
            .metadata(json!({
                "request_id": message.request_id,
                "worker_id": self.config.worker_id,
                "lease_epoch": fence.epoch,
            }));
        if let Some(keep) = self.config.retain_checkpoints {
            runner = runner.retain_history(keep);
        }
        let input = match self.turn_input(&ticket).await {
            Ok(input) => input,
            Err(error) if error.is_outage() => return self.release(fence, &error.to_string()).await,
            Err(error) => return Err(error.into()),
        };
        let request_id = message.request_id.clone();
        let finish = |change: Transition| Transition {
            request_id: request_id.clone(),
            ..change
        };
        let outcome = if fence.epoch == 1 {
            runner.start(&thread, input).await
        } else {
            match paused {
                Ok(Paused::Not) => runner.run_once(&thread, input).await,
                // The decision is read here, from the database, and passed in: the gate
                // decides on what is stored, never on what a message said.
                Ok(Paused::Decided(approval)) => {
                    let decision = serde_json::to_value(&approval).unwrap_or_default();
                    runner.resume_with(&thread, decision).await
                }
                // Nobody has decided (the ticket was handed back by a retry, or a stray
                // delivery): the run never goes on without a decision, so it waits again.
                Ok(Paused::Undecided { payload, node }) => Ok(Outcome::Interrupted {
                    state: input,
                    node,
                    payload,
                    step: 0,
                }),
                Err(error) if error.is_outage() => return self.release(fence, &error.to_string()).await,
                Err(error) => return self.fail(&ticket, "workflow", &error.to_string(), false, finish).await,
            }
        };
        match outcome {
            Ok(Outcome::Finished { state, .. }) => {
                let mut result = serde_json::to_value(self.workflow.result(graph, &state)).unwrap_or_default();
                strip_nul(&mut result);
                let (status, done) = match &state.handoff {
                    Some(handoff) => {
                        tracing::info!(ticket_id = %id, reason = %handoff.reason, "ticket handed to a person");
                        (TicketStatus::Escalated, Processed::Escalated)
                    }
                    None => (TicketStatus::Completed, Processed::Completed),
                };
                if let (Processed::Completed, Some(reply)) = (&done, &state.final_response) {
                    // Before the ticket completes, so a completed ticket always has its reply
                    // (recording it again after a crash records nothing).
                    let max = self.config.max_replies_per_hour;
                    let message = self
                        .while_unavailable(|| super::reply::turn_reply(self.store.as_ref(), &ticket, reply, max))
                        .await?;
                    self.while_unavailable(|| self.store.record_reply(id, ticket.turn, message.clone()))
                        .await?;
                }
                let settled = self
                    .settle(&ticket, finish(Transition::to(status).with_result(result)), done)
                    .await?;
                if settled == Processed::Completed {
                    match self.store.continue_conversation(id, ticket.turn).await {
                        Ok(true) => {
                            tracing::info!(ticket_id = %id, turn = ticket.turn + 1, "newer messages wait: next turn queued");
                        }
                        Ok(false) => {}
                        // The turn's outcome is stored; the waiting messages stay on the
                        // conversation, and the customer's next message reopens the ticket.
                        Err(error) => {
                            tracing::warn!(ticket_id = %id, %error, "could not check for newer messages");
                        }
                    }
                }
                Ok(settled)
            }
            Ok(Outcome::Interrupted { payload, node, .. }) => match held_call(&payload) {
                Some(request) => {
                    let request = NewApproval {
                        interrupted_at: node.to_string(),
                        ..request
                    };
                    let change = finish(Transition::to(TicketStatus::AwaitingApproval));
                    self.hold(&ticket, request, change).await
                }
                // An interrupt that is not a held call (a graph of the embedder's own).
                None => {
                    let event = NewEvent::of(&Interrupted {
                        interrupted_at: node.to_string(),
                        payload,
                    });
                    let change = finish(Transition::to(TicketStatus::AwaitingApproval).with_event(event));
                    self.settle(&ticket, change, Processed::AwaitingApproval).await
                }
            },
            Err(GraphError::NodeFailed {
                node, source, attempts, ..
            }) => match source.downcast_ref::<EngineError>() {
                Some(EngineError::Transient(reason)) if ticket.attempt_count < self.config.max_retries as i32 => {
                    let attempt = ticket.attempt_count + 1;
                    let delay = self.retry_delay(attempt);
                    tracing::warn!(ticket_id = %id, step = %node, attempt, %reason, "LLM gave up: retry scheduled");
                    let event = NewEvent::of(&RetryScheduled {
                        error: reason.clone(),
                        attempt,
                        delay_seconds: delay.as_secs_f64(),
                    })
                    .in_step(node.clone());
                    let change = Transition {
                        count_attempt: true,
                        ..finish(
                            Transition::to(TicketStatus::Pending)
                                .with_event(event)
                                .enqueue_after(delay),
                        )
                    };
                    self.settle(&ticket, change, Processed::RetryScheduled { attempt })
                        .await
                }
                Some(error) => {
                    let exhausted = error.is_transient();
                    let reason = if exhausted {
                        format!("{error} (after {} failed attempts)", ticket.attempt_count + 1)
                    } else {
                        error.to_string()
                    };
                    self.fail(&ticket, &node, &reason, exhausted, finish).await
                }
                // A tool's effect found the lease gone: another run has the ticket.
                None if matches!(source.downcast_ref::<StoreError>(), Some(StoreError::Fenced(_))) => {
                    tracing::warn!(ticket_id = %id, step = %node, "lease lost before an effect: run stopped");
                    Ok(Processed::Superseded)
                }
                // Not the engine: the research step's history query, a bug in a node. A
                // database outage is never charged to the ticket.
                None if source.downcast_ref::<StoreError>().is_some_and(StoreError::is_outage) => {
                    tracing::warn!(ticket_id = %id, step = %node, error = %source, "infrastructure error in a step");
                    self.release(fence, &source.to_string()).await
                }
                None => {
                    let reason = format!("{source} (after {attempts} attempt(s))");
                    self.fail(&ticket, &node, &reason, false, finish).await
                }
            },
            Err(GraphError::Checkpoint(error)) if error.is_superseded() => {
                tracing::warn!(ticket_id = %id, %error, "another run took this ticket over");
                Ok(Processed::Superseded)
            }
            Err(GraphError::Checkpoint(error)) => {
                tracing::warn!(ticket_id = %id, %error, "checkpoint store failed");
                self.release(fence, &error.to_string()).await
            }
            Err(GraphError::Cancelled) => Ok(Processed::Superseded),
            Err(other) => {
                // A checkpoint from another workflow version, a corrupt state, a runaway loop:
                // fail visibly rather than guess.
                self.fail(&ticket, "workflow", &other.to_string(), false, finish).await
            }
        }
    }

    /// The workflow's input for `ticket`'s current turn: its subject and body in the first;
    /// after, the inbound messages this turn answers, with the earlier ones as context.
    async fn turn_input(&self, ticket: &Ticket) -> Result<TicketState, StoreError> {
        let mut body = ticket.body.clone();
        let mut conversation = None;
        if ticket.turn > 1 {
            let messages = self.store.messages(ticket.id).await?;
            let (now, earlier): (Vec<_>, Vec<_>) = messages
                .into_iter()
                // Automatic mail is kept for people, never read by a turn; a reset link is a
                // secret the model must not see (or repeat).
                .filter(|m| m.turn <= ticket.turn && m.automatic().is_none() && !m.is_secret())
                .partition(|m| m.turn == ticket.turn && m.direction == Direction::Inbound);
            if !now.is_empty() {
                body = now
                    .iter()
                    .map(|m| m.reply_text.as_str())
                    .collect::<Vec<_>>()
                    .join("\n\n");
            }
            conversation = Some(Conversation {
                turn: ticket.turn,
                earlier: earlier
                    .into_iter()
                    .map(|m| Said {
                        by_customer: m.direction == Direction::Inbound,
                        text: m.reply_text,
                    })
                    .collect(),
            });
        }
        let mut input = TicketState::new(TicketInput {
            id: ticket.id.to_string(),
            customer_id: ticket.customer_id.clone(),
            subject: ticket.subject.clone(),
            body,
        });
        input.conversation = conversation;
        Ok(input)
    }

    /// Whether the thread's last checkpoint is a pause on a held call, and if so whether a
    /// person has decided on it.
    /// Also the graph version of the latest checkpoint, if there is one.
    async fn paused_on(
        &self,
        checkpointer: &dyn Checkpointer,
        thread: &str,
    ) -> Result<(Paused, Option<String>), StoreError> {
        let latest = checkpointer.latest(thread).await.map_err(|error| match error {
            // The store's own error, so that only an outage is waited out.
            CheckpointError::Storage(source) => match source.downcast::<StoreError>() {
                Ok(store) => *store,
                Err(other) => StoreError::Unavailable(other),
            },
            other => StoreError::Unavailable(Box::new(other)),
        })?;
        let version = latest.as_ref().map(|c| c.graph_version.to_string());
        let Some((payload, node)) = latest.and_then(|c| Some((c.interrupt?, c.next_node?.to_string()))) else {
            return Ok((Paused::Not, version));
        };
        let Some(held) = held_call(&payload) else {
            return Ok((Paused::Not, version));
        };
        let paused = match self.store.approval_for_call(held.call_id).await? {
            Some(approval) if approval.status != ApprovalStatus::Pending => Paused::Decided(approval),
            _ => Paused::Undecided { payload, node },
        };
        Ok((paused, version))
    }

    /// Pauses the ticket on a held call: the approval request and the move to
    /// `awaiting_approval` in one transaction.
    async fn hold(&self, ticket: &Ticket, request: NewApproval, change: Transition) -> Result<Processed, ProcessError> {
        let held = self
            .while_unavailable(|| self.store.hold(ticket, request.clone(), change.clone()))
            .await;
        match held {
            Ok(approval) => {
                tracing::info!(ticket_id = %ticket.id, approval_id = %approval.id, action = %approval.action_type, "waiting for a person's decision");
                Ok(Processed::AwaitingApproval)
            }
            Err(StoreError::Conflict { message, .. }) => {
                tracing::warn!(ticket_id = %ticket.id, %message, "ticket changed under this run: pause discarded");
                Ok(Processed::Superseded)
            }
            Err(other) => Err(ProcessError(other)),
        }
    }

    fn retry_delay(&self, attempt: i32) -> Duration {
        let factor = 2u32.saturating_pow(u32::try_from(attempt - 1).unwrap_or(0));
        (self.config.retry_backoff * factor).min(Duration::from_secs(600))
    }

    async fn fail(
        &self,
        ticket: &Ticket,
        step: &str,
        reason: &str,
        exhausted: bool,
        finish: impl Fn(Transition) -> Transition,
    ) -> Result<Processed, ProcessError> {
        tracing::error!(ticket_id = %ticket.id, %step, %reason, "ticket failed permanently");
        let event = NewEvent::of(&Failed {
            error: reason.to_owned(),
            retries_exhausted: Some(exhausted),
        })
        .in_step(step);
        let result = json!({ "error": reason, "step": step });
        let change = Transition {
            count_attempt: exhausted,
            ..finish(
                Transition::to(TicketStatus::FailedPermanent)
                    .with_result(result)
                    .with_event(event),
            )
        };
        self.settle(ticket, change, Processed::Failed).await
    }

    async fn release(&self, fence: Fence, reason: &str) -> Result<Processed, ProcessError> {
        let pause = self.config.infrastructure_pause;
        self.while_unavailable(|| self.store.release(fence, reason, pause))
            .await?;
        Ok(Processed::Released)
    }

    /// Applies the final transition, guarded by the version the claim left.
    async fn settle(&self, ticket: &Ticket, change: Transition, done: Processed) -> Result<Processed, ProcessError> {
        let outcome = self
            .while_unavailable(|| self.store.finish(ticket, change.clone()))
            .await;
        match outcome {
            Ok(_) => Ok(done),
            Err(StoreError::Conflict { message, .. }) => {
                tracing::warn!(ticket_id = %ticket.id, %message, "ticket changed under this run: result discarded");
                Ok(Processed::Superseded)
            }
            // The database refused what this run produced (not an outage): fail the ticket
            // visibly rather than retry a write that cannot succeed.
            Err(error @ (StoreError::Validation { .. } | StoreError::Corrupt(_))) if done != Processed::Failed => {
                tracing::error!(ticket_id = %ticket.id, %error, "the outcome could not be stored");
                let reason = format!("the outcome could not be stored: {error}");
                let event = NewEvent::of(&Failed {
                    error: reason.clone(),
                    retries_exhausted: None,
                });
                let change = Transition::to(TicketStatus::FailedPermanent)
                    .with_result(json!({ "error": reason }))
                    .with_event(event);
                Box::pin(self.settle(ticket, change, Processed::Failed)).await
            }
            Err(other) => Err(ProcessError(other)),
        }
    }

    /// Retries a final write while the database is unavailable, for up to the lease (the
    /// heartbeat keeps renewing it meanwhile, whenever the database answers): the run's
    /// outcome is in memory, and writing it beats redoing the run.
    async fn while_unavailable<'a, T, Fut>(&'a self, mut write: impl FnMut() -> Fut) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = Result<T, StoreError>> + 'a,
    {
        let deadline = std::time::Instant::now() + self.config.lease;
        let mut pause = self.config.infrastructure_pause;
        loop {
            match write().await {
                Err(StoreError::Unavailable(error)) if std::time::Instant::now() + pause < deadline => {
                    tracing::warn!(%error, pause_ms = pause.as_millis() as u64, "database unavailable; retrying the write");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
                other => return other,
            }
        }
    }
}

/// What a resumed run finds at the end of its thread.
enum Paused {
    /// No pause: the run continues (or starts) as usual.
    Not,
    /// Paused on a call a person has decided on.
    Decided(Approval),
    /// Paused on a call nobody has decided on yet.
    Undecided {
        /// The pause's payload.
        payload: serde_json::Value,
        /// The node that paused.
        node: String,
    },
}

/// The approval request for the held call a gate's pause names.
fn held_call(payload: &serde_json::Value) -> Option<NewApproval> {
    let held = HeldCall::of(payload)?;
    Some(NewApproval {
        call_id: held.call_id,
        action_type: held.action_type,
        action_params: held.action_params,
        interrupted_at: String::new(),
    })
}

/// Records each completed step's duration in `workflow_step_duration_seconds{step}`.
fn record_step_durations(event: &ticketflow_graph::Event<'_>) {
    if let ticketflow_graph::Event::Completed { node, duration, .. } = event {
        metrics::histogram!("workflow_step_duration_seconds", "step" => node.to_string())
            .record(duration.as_secs_f64());
    }
}

/// Re-queues a `failed_permanent` ticket with a fresh retry budget (the API's
/// `POST /tickets/{id}/retry`). It resumes from its last checkpoint. `actor`, who asked (a
/// person's e-mail, `key:<name>`, `api-key-<n>`; `None` when anonymous), is recorded on the
/// `retry` event and its `status_change`. `Conflict` in any other status.
pub async fn requeue_failed(
    store: &dyn TicketStore,
    id: Uuid,
    request_id: Option<String>,
    actor: Option<String>,
) -> Result<Ticket, StoreError> {
    let ticket = store.get(id).await?.ok_or(StoreError::NotFound(id))?;
    if ticket.status != TicketStatus::FailedPermanent {
        return Err(StoreError::Conflict {
            id,
            message: format!(
                "only failed_permanent tickets can be retried; this one is {}",
                ticket.status
            ),
        });
    }
    let change = Transition {
        reset_attempts: true,
        request_id,
        actor: actor.clone(),
        ..Transition::to(TicketStatus::Pending)
            .with_event(NewEvent::of(&ManualRetry { manual: true, actor }))
            .enqueue_after(Duration::ZERO)
    };
    store.transition(&ticket, change).await
}
