//! Builders of reports for the tests of what consumes them (metrics, EMF, readiness).

use crate::domain::decide::{Decision, Verdict};
use crate::domain::patroni::Lag;
use crate::domain::report::{ClusterReport, NodeReport, Routing};

pub fn confirmed(primary: &str) -> Verdict {
    Verdict::Confirmed {
        primary: primary.into(),
        timeline: Some(1),
    }
}

/// A decision with this verdict and nothing else to say.
pub fn decision(verdict: Verdict) -> Decision {
    Decision {
        verdict,
        reason: "test".into(),
        stale_primaries: vec![],
        misconfigured: Default::default(),
        standby: None,
        replicas: vec![],
        warnings: vec![],
        database: None,
        all_misconfigured: false,
    }
}

pub fn node(name: &str, lag: Option<Lag>) -> NodeReport {
    NodeReport {
        name: name.into(),
        address: "10.0.1.10".into(),
        reachable: true,
        role: None,
        state: None,
        timeline: None,
        lag,
        routed_by: vec![],
        patroni_error: None,
        cluster_error: None,
    }
}

/// Cluster `pgha`: pg1 (no lag), pg2 (1234 bytes behind), pg3 (lag unknown); no change, no
/// error, 12 ms.
pub fn cluster_report(verdict: Verdict) -> ClusterReport {
    ClusterReport {
        scope: "pgha".into(),
        decision: decision(verdict),
        primary_moved: false,
        read_set: None,
        nodes: vec![
            node("pg1", None),
            node("pg2", Some(Lag::Bytes(1234))),
            node("pg3", Some(Lag::Unknown)),
        ],
        routing: Routing::default(),
        changes: vec![],
        drift: vec![],
        left_alone: vec![],
        errors: vec![],
        decided_ms: 3,
        routing_lag: None,
        unread_target_groups: vec![],
        aws_age_ms: None,
        duration_ms: 12,
    }
}
