//! The testbed's control interface, plain HTTP on loopback, so a bench or a script can inject
//! a failover or a fault mid-run:
//!
//!   GET  /clusters                                every cluster: leader, timeline, nodes, faults
//!   POST /leader/{member}                         every cluster: {member} leads, timeline + 1
//!   POST /clusters/{scope}/leader/{member}        one cluster:   {member} leads, timeline + 1
//!   POST /clusters/{scope}/nodes/{member}/{what}  hang | close | down | up (clears the fault)
//!
//! Answers are JSON; an unknown cluster, member or fault is a 404 naming it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Fault, Testbed, TestbedError};

/// Serve the control interface on `listener` until the task is dropped.
pub async fn serve_control(
    testbed: Arc<Testbed>,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/clusters", get(clusters))
        .route("/leader/{member}", post(leader_everywhere))
        .route("/clusters/{scope}/leader/{member}", post(leader))
        .route("/clusters/{scope}/nodes/{member}/{what}", post(fault))
        .fallback(|| async { answer(StatusCode::NOT_FOUND, &json!({"error": "no such route"})) })
        .with_state(testbed);
    axum::serve(listener, app).await
}

fn answer(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn outcome(r: Result<Value, TestbedError>) -> Response {
    match r {
        Ok(v) => answer(StatusCode::OK, &v),
        Err(e @ (TestbedError::NoCluster(_) | TestbedError::NoMember(_))) => {
            answer(StatusCode::NOT_FOUND, &json!({"error": e.to_string()}))
        }
        Err(e) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": e.to_string()}),
        ),
    }
}

async fn clusters(State(tb): State<Arc<Testbed>>) -> Response {
    answer(StatusCode::OK, &tb.describe())
}

async fn leader_everywhere(State(tb): State<Arc<Testbed>>, Path(member): Path<String>) -> Response {
    outcome(
        tb.set_leader_everywhere(&member)
            .map(|n| json!({"leader": member, "clusters": n})),
    )
}

async fn leader(
    State(tb): State<Arc<Testbed>>,
    Path((scope, member)): Path<(String, String)>,
) -> Response {
    outcome(
        tb.set_leader(&scope, &member)
            .map(|tl| json!({"scope": scope, "leader": member, "timeline": tl})),
    )
}

async fn fault(
    State(tb): State<Arc<Testbed>>,
    Path((scope, member, what)): Path<(String, String, String)>,
) -> Response {
    let fault = match what.as_str() {
        "hang" => Some(Fault::Hang),
        "close" => Some(Fault::Close),
        "down" => Some(Fault::Down),
        "up" => None,
        other => {
            let error = format!("no fault {other:?} (hang, close, down, up)");
            return answer(StatusCode::NOT_FOUND, &json!({ "error": error }));
        }
    };
    outcome(
        tb.set_fault(&scope, &member, fault)
            .await
            .map(|()| json!({"scope": scope, "member": member, "fault": fault})),
    )
}
