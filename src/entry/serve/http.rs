//! The HTTP face of `serve`: `POST /webhook` (the same signed Patroni callback as the Lambda
//! function URL, same answers), `GET /metrics`, `GET /healthz`, `GET /readyz`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tracing::{error, warn};

use super::App;
use super::metrics::CONTENT_TYPE;
use crate::webhook::{self, MAX_BODY, Rejection};

/// Bodies are read up to this; the verifier answers 413 over `MAX_BODY` with the real size.
const READ_LIMIT: usize = 4 * MAX_BODY;
/// A notification is one small packet: a client still sending after this is stalling.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

pub fn routes(app: Arc<App>) -> axum::Router {
    // A webhook waits for Patroni to confirm (at most `confirm_timeout`), then for one run.
    let request_timeout = app.router.config().webhook.confirm_timeout + Duration::from_secs(30);
    axum::Router::new()
        .route("/webhook", any(post_webhook))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(RequestBodyTimeoutLayer::new(BODY_TIMEOUT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .with_state(app)
}

fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn post_webhook(
    State(app): State<Arc<App>>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (status, answer) = handle_webhook(&app, method, headers, body).await;
    app.metrics.webhook_request(status);
    json_response(status, &answer)
}

/// The webhook as the Lambda answers it: verify and check the scope (no Patroni or AWS call
/// on a rejection), then have the cluster's worker run; the answer is the report of the first
/// run that starts after this request (a request during a run waits for the follow-up).
async fn handle_webhook(app: &App, method: Method, headers: HeaderMap, body: Body) -> (u16, Value) {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > READ_LIMIT) {
        let r = Rejection::TooLarge(n);
        warn!(status = r.status(), reason = %r, "webhook rejected");
        return (r.status(), r.body());
    }
    let body = match to_bytes(body, READ_LIMIT).await {
        Ok(b) => b,
        Err(e) if is_body_timeout(&e) => {
            warn!(status = 408, "webhook rejected: body not received in time");
            let why = format!("the body did not arrive within {}s", BODY_TIMEOUT.as_secs());
            return (408, json!({ "error": why }));
        }
        Err(e) => {
            // Over the limit without a Content-Length, or the client went away.
            let r = Rejection::TooLarge(declared.unwrap_or(READ_LIMIT + 1));
            warn!(status = r.status(), reason = %r, error = %e, "webhook rejected");
            return (r.status(), r.body());
        }
    };
    let headers: HashMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    let req = webhook::Request {
        method: method.as_str().to_string(),
        headers,
        body: body.to_vec(),
        iam_caller: None,
    };
    let n = match webhook::admit(&app.verifier, app.router.config(), &req) {
        Ok(n) => n,
        Err(r) => return (r.status(), r.body()),
    };
    let claimed = n.claimed_leader().map(str::to_string);
    let Some(done) = app.scheduler.request(&n.scope, claimed) else {
        let r = Rejection::UnknownScope(n.scope);
        return (r.status(), r.body());
    };
    match done.await {
        Ok(Ok(report)) => match serde_json::to_value(&*report) {
            Ok(v) => (200, v),
            Err(e) => (500, json!({"error": format!("encoding the report: {e}")})),
        },
        Ok(Err(e)) => {
            error!(scope = %n.scope, error = %e, "webhook run failed");
            (500, json!({"error": e}))
        }
        Err(_) => (
            503,
            json!({"error": "the router is shutting down: the run for this request was not started"}),
        ),
    }
}

/// tower-http's body timeout, as the error reading the body carries it.
fn is_body_timeout(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = s.source();
    }
    false
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        app.metrics.encode(),
    )
        .into_response()
}

async fn healthz() -> Response {
    json_response(200, &json!({"status": "ok"}))
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.health.not_ready(std::time::Instant::now()) {
        None => json_response(200, &json!({"ready": true})),
        Some(n) => json_response(503, &json!({"ready": false, "reason": n.reason})),
    }
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    json_response(
        404,
        &json!({"error": format!(
            "no {method} {}: the endpoints are POST /webhook, GET /metrics, GET /healthz, GET /readyz",
            uri.path()
        )}),
    )
}
