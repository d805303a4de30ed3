//! The Lambda entry point: classify the event, run the one reconcile path, answer with the
//! report. Config and clients are built once per cold start and reused across invocations.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use tracing::{error, info};

use crate::aws::AwsClients;
use crate::config::Config;
use crate::logging::{self, LogFormat};
use crate::reconcile::Router;
use crate::report::Mode;

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// EventBridge schedule: reconcile every cluster.
    Scheduled,
    /// `{"action": "plan"|"reconcile", "scope": "pgha"}` (scope optional).
    Direct { mode: Mode, scope: Option<String> },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error(
        "unrecognised event: expected an EventBridge scheduled event, or a direct invoke \
         {{\"action\": \"plan\"|\"reconcile\", \"scope\": \"NAME\"}}"
    )]
    Unknown,
    #[error("direct invoke: `{field}`: {message}")]
    BadField {
        field: &'static str,
        message: String,
    },
}

/// Pure: decide what kind of event this is.
pub fn classify(event: &Value) -> Result<Event, EventError> {
    if event.get("source").and_then(Value::as_str) == Some("aws.events")
        || event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
    {
        return Ok(Event::Scheduled);
    }
    if let Some(action) = event.get("action") {
        let mode = match action.as_str() {
            Some("plan") => Mode::Plan,
            Some("reconcile") => Mode::Reconcile,
            _ => {
                return Err(EventError::BadField {
                    field: "action",
                    message: format!("{action} is not \"plan\" or \"reconcile\""),
                });
            }
        };
        let scope = match event.get("scope") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(other) => {
                return Err(EventError::BadField {
                    field: "scope",
                    message: format!("{other} is not a cluster scope name"),
                });
            }
        };
        if let Some(obj) = event.as_object()
            && let Some(extra) = obj
                .keys()
                .find(|k| !matches!(k.as_str(), "action" | "scope"))
        {
            return Err(EventError::BadField {
                field: "action",
                message: format!(
                    "unknown key {extra:?}: a direct invoke takes only action and scope"
                ),
            });
        }
        return Ok(Event::Direct { mode, scope });
    }
    Err(EventError::Unknown)
}

/// Handle one invocation. Errors here become the invocation's error (and the caller's message).
pub async fn handle(router: &Router, event: Value) -> Result<Value, lambda_runtime::Error> {
    let (mode, scope) = match classify(&event)? {
        Event::Scheduled => (Mode::Reconcile, None),
        Event::Direct { mode, scope } => (mode, scope),
    };
    let report = router.run(mode, scope.as_deref()).await?;
    if report.ok {
        info!(
            clusters = report.clusters.len(),
            duration_ms = report.duration_ms,
            "run done"
        );
    } else {
        let errors: Vec<&String> = report.clusters.iter().flat_map(|c| &c.errors).collect();
        error!(?errors, "run finished with errors");
    }
    Ok(serde_json::to_value(&report).unwrap_or_else(|e| json!({"error": e.to_string()})))
}

/// Start the Lambda runtime loop. Fails the init phase, with the reason, on a bad config.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    logging::init(LogFormat::Json, "info");
    let config = Config::from_env().inspect_err(|e| error!(error = %e, "bad configuration"))?;
    let aws = AwsClients::from_env().await;
    let router = Arc::new(Router::new(config, aws)?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let router = Arc::clone(&router);
        async move { handle(&router, event.payload).await }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_events_are_recognised() {
        let ev = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event",
                        "source": "aws.events", "resources": [], "detail": {}});
        assert_eq!(classify(&ev), Ok(Event::Scheduled));
    }

    #[test]
    fn direct_invokes_are_recognised() {
        assert_eq!(
            classify(&json!({"action": "plan", "scope": "pgha"})),
            Ok(Event::Direct {
                mode: Mode::Plan,
                scope: Some("pgha".into())
            })
        );
        assert_eq!(
            classify(&json!({"action": "reconcile"})),
            Ok(Event::Direct {
                mode: Mode::Reconcile,
                scope: None
            })
        );
    }

    #[test]
    fn bad_events_get_clear_errors() {
        let e = classify(&json!({"action": "delete"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`action`") && e.contains("\"delete\""), "{e}");
        let e = classify(&json!({"action": "plan", "scope": 3}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`scope`"), "{e}");
        let e = classify(&json!({"action": "plan", "scopes": "x"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("scopes"), "{e}");
        assert_eq!(classify(&json!({"hello": 1})), Err(EventError::Unknown));
        assert_eq!(classify(&json!([1, 2])), Err(EventError::Unknown));
    }
}
