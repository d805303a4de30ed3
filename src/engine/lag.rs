//! The routing lag of each failover this run routed: the new primary's promotion time (from
//! its own `GET /history`), the router's decision, the AWS write — so every real failover is
//! measured, not only ours on loopback. One request to the new primary per failover.

use futures_util::future::join_all;
use tracing::{info, warn};

use super::Router;
use super::prepare::Prepared;
use crate::domain::aws::Endpoint;
use crate::domain::patroni::promoted_at;
use crate::domain::report::{Action, ChangeStatus, RoutingLag};

/// Did this run write the writer endpoint towards its confirmed primary?
fn moved(p: &Prepared<'_>) -> bool {
    let Some(primary) = p.decision.primary() else {
        return false;
    };
    p.changes.iter().any(|c| {
        c.status == ChangeStatus::Applied
            && c.endpoint == Endpoint::Writer
            && matches!(c.action, Action::Register | Action::Upsert)
            && c.node.as_deref() == Some(primary)
    })
}

pub(super) async fn measure(router: &Router, prepared: &mut [Prepared<'_>]) {
    let applied_at = router.unix_ms();
    let lags = join_all(prepared.iter().map(|p| async move {
        if !moved(p) {
            return None;
        }
        let primary = p.cluster.node(p.decision.primary()?)?;
        let timeline = p.decision.timeline()?;
        let bound = router.config.patroni.request_timeout;
        let history = tokio::time::timeout(bound, router.ports.patroni.history(primary)).await;
        let promoted = match history {
            Ok(Ok(h)) => promoted_at(&h, timeline),
            Ok(Err(e)) => {
                warn!(scope = %p.cluster.scope, error = %e, "no /history: routing lag not measured");
                None
            }
            Err(_) => None,
        }?;
        Some(RoutingLag::between(promoted, p.decided_at_ms, applied_at))
    }))
    .await;
    for (p, lag) in prepared.iter_mut().zip(lags) {
        if let Some(l) = lag {
            info!(scope = %p.cluster.scope, primary = p.decision.primary().unwrap_or(""),
                  routing_lag_ms = l.total_ms, to_decision_ms = l.to_decision_ms,
                  to_applied_ms = l.to_applied_ms, "failover routed");
        }
        p.routing_lag = lag;
    }
}
