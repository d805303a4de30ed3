//! The Lambda entry point: classify the event, run the one reconcile path, answer with the
//! report. Config and clients are built once per cold start and reused across invocations;
//! a config in S3 is looked at again on warm invocations ([`reload`]).

pub mod reload;

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::domain::report::Mode;
use crate::engine::Router;
use crate::entry::logging::{self, LogFormat};
use crate::webhook::{self, Auth, Verifier};

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// EventBridge schedule: reconcile every cluster.
    Scheduled,
    /// `{"action": "plan"|"reconcile", "scope": "pgha"}` (scope optional).
    Direct { mode: Mode, scope: Option<String> },
    /// `{"action": "check"}`: the preflight, from the function's network.
    Check,
    /// A Lambda function URL (or API Gateway HTTP API v2) request: the Patroni callback webhook.
    Http(webhook::Request),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error(
        "unrecognised event: expected an EventBridge scheduled event, a function URL request \
         (the webhook), or a direct invoke {{\"action\": \"plan\"|\"reconcile\"|\"check\", \"scope\": \"NAME\"}}"
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
    if let Some(method) = event
        .pointer("/requestContext/http/method")
        .and_then(Value::as_str)
    {
        return Ok(Event::Http(http_request(event, method)));
    }
    if event.get("source").and_then(Value::as_str) == Some("aws.events")
        || event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
    {
        return Ok(Event::Scheduled);
    }
    if let Some(action) = event.get("action") {
        let mode = match action.as_str() {
            Some("plan") => Mode::Plan,
            Some("reconcile") => Mode::Reconcile,
            Some("check") => return Ok(Event::Check),
            _ => {
                return Err(EventError::BadField {
                    field: "action",
                    message: format!("{action} is not \"plan\", \"reconcile\" or \"check\""),
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

/// The function URL event as a plain request. A body flagged base64 that does not decode is
/// kept as is: verification then fails with 401, as for any tampered body.
fn http_request(event: &Value, method: &str) -> webhook::Request {
    let headers = event
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let raw = event.get("body").and_then(Value::as_str).unwrap_or("");
    let body = if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap_or_else(|_| raw.as_bytes().to_vec())
    } else {
        raw.as_bytes().to_vec()
    };
    let iam_caller = event
        .pointer("/requestContext/authorizer/iam/userArn")
        .and_then(Value::as_str)
        .map(str::to_string);
    webhook::Request {
        method: method.to_string(),
        headers,
        body,
        iam_caller,
    }
}

/// The function URL response shape.
pub fn http_response(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
        "isBase64Encoded": false,
        "cookies": [],
    })
}

/// The router and what a webhook needs, built once per cold start.
pub struct App {
    pub routers: reload::Routers,
    pub verifier: Verifier,
    /// AWS calls and throttles counted at the last scheduled run.
    pub counted: std::sync::Mutex<(u64, u64)>,
}

/// A webhook: verify (401/400/413/415 with no Patroni or AWS call), then wait for Patroni to
/// confirm a primary and reconcile that one cluster; answer with the report.
pub async fn handle_webhook(app: &App, req: &webhook::Request) -> Value {
    let router = app.routers.current();
    let n = match webhook::admit(&app.verifier, router.config(), req) {
        Ok(n) => n,
        Err(rejection) => return http_response(rejection.status(), &rejection.body()),
    };
    match router
        .run_after_callback(&n.scope, n.claimed_leader())
        .await
    {
        Ok(report) => {
            log_outcome(&report);
            http_response(200, &serde_json::to_value(&report).unwrap_or_default())
        }
        Err(e) => http_response(500, &json!({"error": e.to_string()})),
    }
}

/// Metrics of a reconcile as EMF lines on stdout (CloudWatch extracts them; see `emf`).
/// Plan runs change nothing and are not counted.
fn emit_metrics(report: &crate::domain::report::Report) {
    if report.mode != Mode::Reconcile {
        return;
    }
    let namespace = crate::domain::emf::namespace_from_env();
    let now_ms = crate::clock::unix_now_ms();
    let mut out = std::io::stdout().lock();
    for c in &report.clusters {
        let line = crate::domain::emf::document(&namespace, c, now_ms);
        // A failed write to stdout loses a metric, never the routing.
        let _ = writeln!(out, "{line}");
    }
}

/// AWS calls since the last scheduled run and verification's backlog, as one EMF line.
fn emit_process_metrics(app: &App, router: &Router, v: &crate::engine::Verified) {
    let Some(budget) = router.budget() else {
        return;
    };
    let now: (u64, u64) = budget
        .counts()
        .values()
        .fold((0, 0), |(c, t), n| (c + n.calls, t + n.throttled));
    let before = std::mem::replace(
        &mut *app.counted.lock().unwrap_or_else(|p| p.into_inner()),
        now,
    );
    let metrics = crate::domain::emf::process_metrics(
        now.0.saturating_sub(before.0),
        now.1.saturating_sub(before.1),
        v.oldest_s,
        v.unread as u64,
    );
    let namespace = crate::domain::emf::namespace_from_env();
    let line =
        crate::domain::emf::process_document(&namespace, &metrics, crate::clock::unix_now_ms());
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn log_outcome(report: &crate::domain::report::Report) {
    emit_metrics(report);
    if report.ok {
        info!(
            clusters = report.clusters.len(),
            duration_ms = report.duration_ms,
            "run done"
        );
    } else {
        let errors: Vec<String> = report
            .clusters
            .iter()
            .flat_map(|c| c.errors.iter().map(ToString::to_string))
            .collect();
        error!(?errors, "run finished with errors");
    }
}

/// What a scheduled run leaves for verification: the invocation's time up to this margin.
const VERIFY_MARGIN: Duration = Duration::from_secs(3);
/// A scheduled run is cut at the deadline (less the margin) only when the invocation has more
/// than this: with a shorter function timeout (emulators give 3 s, Lambda's default) there is
/// no room to cut it usefully, and it runs to its end as it always did.
const CUT_RUNS_FROM: Duration = Duration::from_secs(10);

/// Handle one invocation; `left`: the time the invocation has. Errors here become the
/// invocation's error (and the caller's message).
pub async fn handle(
    app: &App,
    event: Value,
    left: Duration,
) -> Result<Value, lambda_runtime::Error> {
    let until = tokio::time::Instant::now() + left.saturating_sub(VERIFY_MARGIN);
    let (mode, scope, verify) = match classify(&event)? {
        Event::Scheduled => (Mode::Reconcile, None, true),
        Event::Direct { mode, scope } => (mode, scope, false),
        Event::Http(req) => return Ok(handle_webhook(app, &req).await),
        Event::Check => {
            let report = app.routers.current().check().await;
            info!(ok = report.ok, "check done");
            return Ok(serde_json::to_value(&report).unwrap_or_default());
        }
    };
    app.routers.refresh().await;
    let router = app.routers.current();
    let run = router.run(mode, scope.as_deref());
    let report = if verify && left > CUT_RUNS_FROM {
        // A scheduled run ends before the invocation does: a timeout would reset the
        // environment and lose what was read; cut short, it is kept for the next run.
        match tokio::time::timeout_at(until, run).await {
            Ok(report) => report?,
            Err(_) => return Ok(cut_short(&router)),
        }
    } else {
        run.await?
    };
    log_outcome(&report);
    let mut out = serde_json::to_value(&report).unwrap_or_else(|e| json!({"error": e.to_string()}));
    if verify {
        // The schedule's run leaves its remaining time to verifying what it remembers.
        let verified = router.verify(until).await;
        info!(verified = ?verified, "verified");
        emit_process_metrics(app, &router, &verified);
        if let Some(o) = out.as_object_mut() {
            o.insert(
                "verified".into(),
                serde_json::to_value(&verified).unwrap_or_default(),
            );
        }
    }
    Ok(out)
}

/// A scheduled run that reached the invocation's deadline (a cold start over more clusters
/// than one invocation reads at the budget's share): what it read is remembered and the next
/// run goes on (and counts this run's AWS calls in its metrics).
fn cut_short(router: &Router) -> Value {
    warn!(
        clusters = router.config().clusters.len(),
        "the scheduled run reached the invocation's deadline; what it read is kept and the next \
         run goes on (if this repeats while warm: fewer clusters per function, see ROUTER_SHARD)"
    );
    json!({"cut_short": true})
}

/// Time left before the invocation's deadline (Unix ms).
fn left(deadline_ms: u64) -> Duration {
    Duration::from_millis(deadline_ms.saturating_sub(crate::clock::unix_now_ms()))
}

/// Start the Lambda runtime loop. Fails the init phase, with the reason, on a bad config.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    logging::init(LogFormat::Json, "info");
    let routers = reload::Routers::from_env().await.inspect_err(
        |e| error!(error = %crate::error_chain::one_line(e.as_ref()), "bad configuration"),
    )?;
    let auth = Auth::from_env().inspect_err(|e| error!(error = %e, "bad webhook auth"))?;
    if matches!(auth, Auth::Disabled) {
        warn!("no webhook auth configured: webhook requests will get 401");
    }
    // The replay window of the config read at start (a new config version changes routing,
    // not the webhook's window).
    let skew = routers.current().config().webhook.max_clock_skew;
    let app = Arc::new(App {
        routers,
        verifier: Verifier::new(auth, skew),
        counted: std::sync::Mutex::new((0, 0)),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = Arc::clone(&app);
        async move { handle(&app, event.payload, left(event.context.deadline)).await }
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
    fn function_url_requests_are_recognised() {
        let ev = json!({"version": "2.0", "rawPath": "/", "headers": {"Content-Type": "application/json"},
                        "requestContext": {"http": {"method": "POST"},
                                           "authorizer": {"iam": {"userArn": "arn:aws:iam::1:role/x"}}},
                        "body": "eyJhIjoxfQ==", "isBase64Encoded": true});
        let Ok(Event::Http(req)) = classify(&ev) else {
            panic!("not classified as http")
        };
        assert_eq!(req.method, "POST");
        assert_eq!(req.body, b"{\"a\":1}");
        assert_eq!(
            req.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        assert_eq!(req.iam_caller.as_deref(), Some("arn:aws:iam::1:role/x"));
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
