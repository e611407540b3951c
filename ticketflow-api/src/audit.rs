//! Writing the audit trail: who (a person, a named key, a key of `API_KEYS`) did what to what.
//! An action by an anonymous caller of an open API has nobody to record.

use ticketflow_core::store::{NewAuditEntry, Store};

use crate::auth::Actor;

/// Records that `actor` did `action` to `target`. The action has already happened: a trail
/// that cannot be written is logged as an error, not turned into a failure of the action.
pub(crate) async fn record(
    store: &dyn Store,
    actor: &Actor,
    action: &str,
    target: Option<String>,
    detail: serde_json::Value,
) {
    let Some(name) = &actor.0 else {
        return;
    };
    let entry = NewAuditEntry {
        actor: name.clone(),
        action: action.to_owned(),
        target,
        detail,
    };
    if let Err(error) = store.audit(entry).await {
        tracing::error!(%error, actor = %name, action, "the audit trail could not be written");
    }
}
